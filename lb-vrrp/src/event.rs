//! What the state machine reports and is ordered: its states, why they
//! change, its events, and sync-group commands.

use core::net::IpAddr;

use crate::discard::DiscardReason;

/// Protocol state. RFC 9568 calls Master "Active"; this crate keeps
/// keepalived's (and RFC 3768's) name. `Fault` is keepalived's: a tracked
/// object with weight 0 failed, or the interface is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before startup, after shutdown).
    Initialize,
    /// Monitoring the Active router.
    Backup,
    /// Active: owns the virtual addresses and advertises.
    Master,
    /// Held out of the election by a failed tracked object or link.
    Fault,
}

/// Why a state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup event (as address owner: straight to Master).
    Startup,
    /// Master_Down_Timer expired (no advertisement, or a priority-0 one).
    MasterDown,
    /// A higher-priority (or equal-priority, higher-address) advertisement.
    HigherPriority,
    /// Shutdown event.
    Shutdown,
    /// A tracked object with weight 0, or the link, failed.
    Fault,
    /// The fault cleared.
    FaultCleared,
    /// A sync group moved this member (also: entering or leaving Fault only
    /// because another member of the group did).
    Sync,
}

/// Something that happened, for the driver and the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The state changed (keepalived `notify_master` / `notify_backup` /
    /// `notify_fault` / `notify_stop`).
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// Install the virtual and excluded addresses ([`VirtualRouter::addresses`](crate::VirtualRouter::addresses)).
    AddAddresses,
    /// Remove them.
    RemoveAddresses,
    /// The effective priority changed (tracking).
    PriorityChanged {
        /// Previous priority.
        from: u8,
        /// New priority.
        to: u8,
    },
    /// A received packet was discarded. Reported at most once per
    /// [`Config::discard_log_interval`](crate::Config::discard_log_interval) per reason; every discard is counted
    /// in [`VirtualRouter::counters`](crate::VirtualRouter::counters).
    Discarded {
        /// Why.
        reason: DiscardReason,
        /// The packet's source.
        src: IpAddr,
        /// Discards of this reason not reported since the last report.
        suppressed: u64,
    },
}

/// A sync group's order to a member (see [`crate::SyncGroup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCommand {
    /// Become Master now (from Backup).
    BecomeMaster,
    /// Become Backup now (from Master).
    BecomeBackup,
    /// Another member is in (true) or left (false) Fault.
    GroupFault(bool),
}
