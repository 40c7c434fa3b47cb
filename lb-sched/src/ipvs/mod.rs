//! The fourteen Linux IPVS schedulers.
//!
//! Each submodule transcribes one `net/netfilter/ipvs/ip_vs_<name>.c`.
//! Where the kernel walks the destination list on every pick, an index over
//! list positions gives the same answer faster:
//!
//! * `lc wlc sed nq fo ovf` (and the wlc fallback of `lblc`/`lblcr`): a
//!   tournament tree, pick in O(1), update in O(log n); [`scan`] keeps the
//!   kernel's O(n) loops as the reference;
//! * `rr`, `wrr`: a max segment tree finds the next destination with
//!   `weight >= t` and no OVERLOAD in O(log n);
//! * `twos`: a 4-ary suffix-sum tree finds both weighted draws in O(log n).
//!
//! The indexes are updated from the same hooks that keep the counters, so
//! the answers, ties included, are the kernel's.

use std::time::Instant;

use crate::scheduler::{SchedulerConfig, SchedulerKind};
use crate::service::DestList;

mod dh;
mod fastmod;
pub mod hash;
mod lblc;
mod least;
mod maxtree;
mod mh;
mod rr;
pub mod scan;
mod sh;
mod sumtree;
pub(crate) mod twos;
mod wrr;

use least::{Rule, Tournament};

/// Scheduler state (`svc->sched_data`) with the kernel's hooks.
#[derive(Debug, Clone)]
pub(crate) enum Sched {
    Rr(rr::Rr),
    Wrr(wrr::Wrr),
    Least(Tournament),
    Lblc(Box<lblc::Lblc>),
    Lblcr(Box<lblc::Lblcr>),
    Dh(dh::Dh),
    Sh(sh::Sh),
    Mh(mh::Mh),
    Twos(twos::Twos),
}

impl Sched {
    /// `init_service`.
    pub(crate) fn new(cfg: &SchedulerConfig, list: &DestList<'_>, now: Instant) -> Self {
        let least = |rule| Self::Least(Tournament::new(rule, list));
        match cfg.kind {
            SchedulerKind::Rr => Self::Rr(rr::Rr::new(list)),
            SchedulerKind::Wrr => Self::Wrr(wrr::Wrr::new(list)),
            SchedulerKind::Lc => least(Rule::Lc),
            SchedulerKind::Wlc => least(Rule::Wlc),
            SchedulerKind::Sed => least(Rule::Sed),
            SchedulerKind::Nq => least(Rule::Nq),
            SchedulerKind::Fo => least(Rule::Fo),
            SchedulerKind::Ovf => least(Rule::Ovf),
            SchedulerKind::Lblc => {
                Self::Lblc(Box::new(lblc::Lblc::new(list, now, cfg.lblc_expiration)))
            }
            SchedulerKind::Lblcr => {
                Self::Lblcr(Box::new(lblc::Lblcr::new(list, now, cfg.lblcr_expiration)))
            }
            SchedulerKind::Dh => Self::Dh(dh::Dh::new(list)),
            SchedulerKind::Sh => Self::Sh(sh::Sh::new(list, cfg.sh_table_bits)),
            SchedulerKind::Mh => Self::Mh(mh::Mh::new(list, cfg.mh_table_size)),
            SchedulerKind::Twos => Self::Twos(twos::Twos::new(list)),
        }
    }

    /// `add_dest`: `slot` was just put at the front of the list.
    pub(crate) fn on_add(&mut self, list: &DestList<'_>, _slot: u32) {
        match self {
            // rr and twos register no add_dest; only their indexes learn the slot.
            Self::Twos(t) => t.tree.push(list),
            Self::Rr(r) => r.tree.push(list),
            Self::Wrr(w) => w.dest_changed(list),
            Self::Least(t) => t.push(list),
            Self::Lblc(l) => l.fallback.on_add(list),
            Self::Lblcr(l) => l.fallback.on_add(list),
            Self::Dh(d) => d.reassign(list),
            Self::Sh(s) => s.reassign(list),
            Self::Mh(m) => m.dest_changed(list),
        }
    }

    /// `del_dest`: the destination at `order` index `removed` left; `list` is without it.
    pub(crate) fn on_del(&mut self, list: &DestList<'_>, removed: usize) {
        match self {
            Self::Twos(t) => t.tree.rebuild(list),
            Self::Rr(r) => r.on_del(list, removed),
            Self::Wrr(w) => w.dest_changed(list),
            Self::Least(t) => t.rebuild(list),
            Self::Lblc(l) => l.fallback.rebuild(list),
            Self::Lblcr(l) => l.fallback.rebuild(list),
            Self::Dh(d) => d.reassign(list),
            Self::Sh(s) => s.reassign(list),
            Self::Mh(m) => m.dest_changed(list),
        }
    }

    /// `upd_dest`: weight or thresholds of a listed `slot` changed.
    pub(crate) fn on_update(&mut self, list: &DestList<'_>, slot: u32) {
        match self {
            // dh registers no upd_dest: its table does not depend on weights.
            Self::Dh(_) => {}
            Self::Twos(t) => t.tree.update(list, list.index_of(slot)),
            Self::Rr(r) => r.tree.update(list, list.index_of(slot)),
            Self::Wrr(w) => w.dest_changed(list),
            Self::Least(t) => t.update(list, list.index_of(slot)),
            Self::Lblc(l) => l.fallback.update(list, list.index_of(slot)),
            Self::Lblcr(l) => l.fallback.update(list, list.index_of(slot)),
            Self::Sh(s) => s.reassign(list),
            Self::Mh(m) => m.dest_changed(list),
        }
    }

    /// Counters or OVERLOAD of a listed `slot` changed (the kernel reads
    /// them live; only the derived indexes need telling).
    pub(crate) fn on_counters(&mut self, list: &DestList<'_>, slot: u32) {
        match self {
            Self::Rr(r) => r.tree.update(list, list.index_of(slot)),
            Self::Wrr(w) => w.tree.update(list, list.index_of(slot)),
            Self::Twos(t) => t.tree.update(list, list.index_of(slot)),
            Self::Least(t) => t.update(list, list.index_of(slot)),
            Self::Lblc(l) => l.fallback.update(list, list.index_of(slot)),
            Self::Lblcr(l) => l.fallback.update(list, list.index_of(slot)),
            _ => {}
        }
    }

    /// True if scheduler state still refers to `slot` (the kernel's
    /// `ip_vs_dest_hold` from `sched_data`), which keeps a removed
    /// destination in the trash.
    pub(crate) fn holds(&self, slot: u32) -> bool {
        match self {
            Self::Lblc(l) => l.table.holds(slot),
            Self::Lblcr(l) => l.table.holds(slot),
            Self::Dh(d) => d.holds(slot),
            Self::Sh(s) => s.holds(slot),
            Self::Mh(m) => m.holds(slot),
            _ => false,
        }
    }

    /// The `lblc_expiration` / `lblcr_expiration` sysctls changed.
    pub(crate) fn set_expiration(&mut self, cfg: &SchedulerConfig) {
        match self {
            Self::Lblc(l) => l.table.expiration = cfg.lblc_expiration,
            Self::Lblcr(l) => l.table.expiration = cfg.lblcr_expiration,
            _ => {}
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Lblc(l) => Some(l.table.poll_timeout()),
            Self::Lblcr(l) => Some(l.table.poll_timeout()),
            _ => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Lblc(l) => l.table.handle_timeout(now),
            Self::Lblcr(l) => l.table.handle_timeout(now),
            _ => {}
        }
    }
}
