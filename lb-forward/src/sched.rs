//! The boundary to the scheduler: a small trait the forwarder calls for new
//! flows, and tells about destination and connection-count changes.
//!
//! `lb-sched` implements the kernel's schedulers; an adapter from them to
//! this trait is all that is needed to use them here. [`RoundRobin`] (the
//! kernel's `rr`) is included for tests and for running without `lb-sched`.

use crate::parse::FlowKey;
use std::net::SocketAddr;
use std::time::Instant;

/// A destination's slot number in the forwarder (stable for its lifetime).
pub type DestIndex = u16;

/// A destination's connection counters, as IPVS keeps them
/// (`activeconns`, `inactconns`, `persistconns`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Established TCP connections.
    pub active: u32,
    /// Other connections (every new one starts here; UDP stays here).
    pub inactive: u32,
    /// Persistence templates.
    pub persist: u32,
}

/// Which counter a connection is held in (`IP_VS_CONN_F_INACTIVE`,
/// `IP_VS_CONN_F_TEMPLATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// Established TCP.
    Active,
    /// Any other connection.
    Inactive,
    /// A persistence template.
    Template,
}

/// A change of a destination's connections, as the kernel's
/// `ip_vs_bind_dest`, `ip_vs_unbind_dest` and the protocol state handlers
/// make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// A connection (or template) was created on the destination.
    Bound(ConnKind),
    /// One went away.
    Unbound(ConnKind),
    /// One moved from inactive to active (`true`) or back (`false`).
    SetActive(bool),
}

/// Chooses a destination for each new flow of one service.
///
/// Call order: `dest_changed` for every destination added, before
/// `pick` can return it; then any mix of `pick`, `dest_changed` and
/// `conn_event`.
pub trait Scheduler {
    /// Picks a destination for a new flow, or `None` when none is
    /// available (the forwarder then answers port-unreachable).
    fn pick(&mut self, now: Instant, flow: &FlowKey) -> Option<DestIndex>;

    /// Destination `dest` (the real server at `addr`) was added or
    /// re-weighted (`Some(weight)`; weight 0 quiesces it) or removed
    /// (`None`).
    fn dest_changed(&mut self, dest: DestIndex, addr: SocketAddr, weight: Option<u32>);

    /// A destination's connections changed (for least-connection
    /// schedulers); [`ConnCounts`] follow the same events.
    fn conn_event(&mut self, dest: DestIndex, event: ConnEvent) {
        let _ = (dest, event);
    }
}

impl ConnCounts {
    /// Applies an event (saturating).
    pub fn apply(&mut self, e: ConnEvent) {
        fn slot(c: &mut ConnCounts, k: ConnKind) -> &mut u32 {
            match k {
                ConnKind::Active => &mut c.active,
                ConnKind::Inactive => &mut c.inactive,
                ConnKind::Template => &mut c.persist,
            }
        }
        match e {
            ConnEvent::Bound(k) => *slot(self, k) += 1,
            ConnEvent::Unbound(k) => {
                let v = slot(self, k);
                *v = v.saturating_sub(1);
            }
            ConnEvent::SetActive(true) => {
                self.inactive = self.inactive.saturating_sub(1);
                self.active += 1;
            }
            ConnEvent::SetActive(false) => {
                self.active = self.active.saturating_sub(1);
                self.inactive += 1;
            }
        }
    }
}

/// The kernel's `rr`: walk on from the last pick, skipping weight 0.
///
/// # Examples
///
/// ```
/// use lb_forward::sched::{RoundRobin, Scheduler};
/// let mut rr = RoundRobin::default();
/// let a = "10.0.0.1:80".parse().unwrap();
/// rr.dest_changed(3, a, Some(1));
/// rr.dest_changed(5, a, Some(0));
/// rr.dest_changed(7, a, Some(2));
/// let now = std::time::Instant::now();
/// let f = Default::default();
/// let picks: Vec<_> = (0..4).map(|_| rr.pick(now, &f).unwrap()).collect();
/// assert_eq!(picks, [3, 7, 3, 7]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    dests: Vec<(DestIndex, u32)>,
    /// Index of the last pick (`None`: start at the first destination).
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, _now: Instant, _flow: &FlowKey) -> Option<DestIndex> {
        let n = self.dests.len();
        let start = self.last.map_or(0, |l| l + 1);
        for k in 0..n {
            let i = (start + k) % n;
            if self.dests[i].1 > 0 {
                self.last = Some(i);
                return Some(self.dests[i].0);
            }
        }
        None
    }

    fn dest_changed(&mut self, dest: DestIndex, _addr: SocketAddr, weight: Option<u32>) {
        let at = self.dests.iter().position(|d| d.0 == dest);
        match (at, weight) {
            (Some(i), Some(w)) => self.dests[i].1 = w,
            (None, Some(w)) => self.dests.push((dest, w)),
            (Some(i), None) => {
                self.dests.remove(i);
                // As ip_vs_rr_del_dest: the walk goes on with the one after.
                self.last = match self.last {
                    Some(l) if l >= i => l.checked_sub(1),
                    other => other,
                };
            }
            (None, None) => {}
        }
    }
}
