//! Sync groups (keepalived `vrrp_sync_group`): members change state together.

use crate::event::{Event, Reason, State, SyncCommand};
use crate::router::VirtualRouter;
use crate::time::Instant;

/// A set of routers (indices into the caller's slice of
/// [`VirtualRouter`]s) that change state together:
///
/// * one becomes Master: the others in Backup become Master;
/// * one drops from Master to Backup: the other Masters become Backup;
/// * one enters Fault: the others go to Fault until it leaves.
///
/// Feed it every [`Event::StateChanged`] a member emits (changes it caused
/// itself carry [`Reason::Sync`] and are ignored, so it cannot loop), then
/// poll all members again.
///
/// ```
/// use core::net::{IpAddr, Ipv4Addr};
/// use lb_vrrp::{Config, Event, Instant, State, SyncGroup, VirtualRouter, wire::Version};
///
/// let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// let mut routers: Vec<_> = [1u8, 2]
///     .iter()
///     .map(|&vrid| {
///         let mut c = Config::new(Version::V3, vrid, ip);
///         c.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + vrid))];
///         VirtualRouter::new(c).unwrap()
///     })
///     .collect();
/// let group = SyncGroup::new(vec![0, 1]);
/// let now = Instant::ZERO;
/// for r in &mut routers {
///     r.handle_startup(now);
/// }
/// // Member 0's Master_Down_Timer fires first.
/// routers[0].handle_timeout(Instant::from_secs(4));
/// while let Some(ev) = routers[0].poll_event() {
///     group.handle_event(Instant::from_secs(4), 0, ev, &mut routers);
/// }
/// assert_eq!(routers[1].state(), State::Master);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    members: Vec<usize>,
}

impl SyncGroup {
    /// A group of the routers at these indices.
    pub fn new(members: Vec<usize>) -> Self {
        Self { members }
    }

    /// The members' indices.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// What the other members must be told after `member` emitted `event`
    /// (`None`: nothing, e.g. a change the group caused itself). For callers
    /// that do not hold the routers in one slice, such as
    /// the Linux driver's `MultiDriver` (feature `linux`).
    pub fn command(&self, member: usize, event: &Event) -> Option<SyncCommand> {
        let Event::StateChanged { from, to, reason } = *event else {
            return None;
        };
        if reason == Reason::Sync || !self.members.contains(&member) {
            return None;
        }
        match (from, to) {
            (_, State::Master) => Some(SyncCommand::BecomeMaster),
            (State::Master, State::Backup) => Some(SyncCommand::BecomeBackup),
            (_, State::Fault) => Some(SyncCommand::GroupFault(true)),
            (State::Fault, _) => Some(SyncCommand::GroupFault(false)),
            _ => None,
        }
    }

    /// Applies the group rule after `member` emitted `event`.
    pub fn handle_event(
        &self,
        now: Instant,
        member: usize,
        event: Event,
        routers: &mut [VirtualRouter],
    ) {
        let Some(cmd) = self.command(member, &event) else {
            return;
        };
        for &m in &self.members {
            if m != member
                && let Some(r) = routers.get_mut(m)
            {
                r.handle_sync(now, cmd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: State, to: State, reason: Reason) -> Event {
        Event::StateChanged { from, to, reason }
    }

    #[test]
    fn command_per_transition() {
        let g = SyncGroup::new(vec![0, 2]);
        let cases = [
            (
                State::Backup,
                State::Master,
                Some(SyncCommand::BecomeMaster),
            ),
            (
                State::Master,
                State::Backup,
                Some(SyncCommand::BecomeBackup),
            ),
            (
                State::Master,
                State::Fault,
                Some(SyncCommand::GroupFault(true)),
            ),
            (
                State::Fault,
                State::Backup,
                Some(SyncCommand::GroupFault(false)),
            ),
            (State::Initialize, State::Backup, None),
        ];
        for (from, to, want) in cases {
            assert_eq!(g.command(0, &change(from, to, Reason::MasterDown)), want);
            // Changes the group caused, and non-members, are ignored.
            assert_eq!(g.command(0, &change(from, to, Reason::Sync)), None);
            assert_eq!(g.command(1, &change(from, to, Reason::MasterDown)), None);
        }
        assert_eq!(g.command(0, &Event::AddAddresses), None);
    }
}
