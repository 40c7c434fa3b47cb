//! Adapter from `lb-sched` (every kernel IPVS scheduler, plus Maglev, P2C
//! and others) to this crate's [`Scheduler`] trait: wrap an
//! [`lb_sched::Service`] in [`LbSched`] and hand it to
//! [`Forwarder::add_service`](crate::Forwarder::add_service).
//!
//! Destinations, weights and connection counts flow into the wrapped
//! service exactly as the kernel feeds its scheduler (`conn_bind` inactive
//! for a new connection, `conn_set_active` on establishment, `conn_unbind`
//! at expiry), so least-connection schedulers see the kernel's counters.

use crate::parse::FlowKey;
use crate::sched::{ConnEvent, ConnKind, DestIndex, Scheduler};
use lb_sched::{DestConfig, DestId, PacketInfo, Protocol, RandomSource, Service, SplitMix64};
use std::net::SocketAddr;
use std::time::Instant;

/// An `lb_sched::Service` driven by the forwarder.
///
/// # Examples
///
/// ```
/// use lb_forward::lbsched::LbSched;
/// use lb_forward::sched::Scheduler;
/// use lb_sched::{Protocol, SchedulerKind, Service, ServiceFlags, ServiceKey, SplitMix64};
/// let now = std::time::Instant::now();
/// let key = ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.100:53".parse().unwrap() };
/// let svc = Service::new(key, ServiceFlags::NONE, SchedulerKind::Wlc, now).unwrap();
/// let mut s = LbSched::new(svc, SplitMix64::new(7));
/// s.dest_changed(0, "172.16.0.2:53".parse().unwrap(), Some(1));
/// s.dest_changed(1, "172.16.0.3:53".parse().unwrap(), Some(1));
/// assert!(s.pick(now, &Default::default()).is_some());
/// ```
#[derive(Debug)]
pub struct LbSched<R = SplitMix64> {
    svc: Service,
    by_index: Vec<Option<DestId>>,
    by_slot: Vec<Option<DestIndex>>,
    rng: R,
}

impl<R: RandomSource> LbSched<R> {
    /// Wraps a service (with no destinations yet: the forwarder adds them)
    /// and the randomness its scheduler draws from.
    #[must_use]
    pub fn new(svc: Service, rng: R) -> Self {
        Self {
            svc,
            by_index: Vec::new(),
            by_slot: Vec::new(),
            rng,
        }
    }

    /// The wrapped service (counters, destinations).
    #[must_use]
    pub fn service(&self) -> &Service {
        &self.svc
    }

    /// The wrapped service, e.g. to run its timers (`lblc`/`lblcr`).
    pub fn service_mut(&mut self) -> &mut Service {
        &mut self.svc
    }

    fn id(&self, dest: DestIndex) -> Option<DestId> {
        self.by_index.get(usize::from(dest)).copied().flatten()
    }

    fn add(&mut self, dest: DestIndex, addr: SocketAddr, weight: u32) {
        let Ok(id) = self.svc.add_dest(DestConfig::new(addr, weight)) else {
            return;
        };
        let (i, s) = (usize::from(dest), id.slot() as usize);
        if self.by_index.len() <= i {
            self.by_index.resize(i + 1, None);
        }
        if self.by_slot.len() <= s {
            self.by_slot.resize(s + 1, None);
        }
        self.by_index[i] = Some(id);
        self.by_slot[s] = Some(dest);
    }
}

impl<R: RandomSource> Scheduler for LbSched<R> {
    fn pick(&mut self, now: Instant, flow: &FlowKey) -> Option<DestIndex> {
        let pkt = PacketInfo {
            protocol: Protocol::from_number(flow.proto),
            src: flow.src.into(),
            dst: flow.dst.into(),
            src_port: flow.sport,
            dst_port: flow.dport,
            inverse: false,
        };
        let id = self.svc.pick(now, &pkt, &mut self.rng)?;
        self.by_slot.get(id.slot() as usize).copied().flatten()
    }

    fn dest_changed(&mut self, dest: DestIndex, addr: SocketAddr, weight: Option<u32>) {
        match (self.id(dest), weight) {
            (Some(id), Some(w)) => {
                // A reused index whose old destination was removed: add anew.
                if self.svc.set_weight(id, w).is_err() {
                    self.add(dest, addr, w);
                }
            }
            (None, Some(w)) => self.add(dest, addr, w),
            // Keep the mapping: the removed destination's connections
            // still unbind from it (it waits in lb-sched's trash).
            (Some(id), None) => {
                let _ = self.svc.remove_dest(id);
            }
            (None, None) => {}
        }
    }

    fn conn_event(&mut self, dest: DestIndex, event: ConnEvent) {
        let Some(id) = self.id(dest) else { return };
        let kind = |k: ConnKind| match k {
            ConnKind::Active => lb_sched::ConnKind::Active,
            ConnKind::Inactive => lb_sched::ConnKind::Inactive,
            ConnKind::Template => lb_sched::ConnKind::Template,
        };
        // Counter errors cannot happen for events the forwarder pairs up;
        // ignoring them keeps a scheduler bug from stopping the dataplane.
        let _ = match event {
            ConnEvent::Bound(k) => self.svc.conn_bind(id, kind(k)),
            ConnEvent::Unbound(k) => self.svc.conn_unbind(id, kind(k)),
            ConnEvent::SetActive(a) => self.svc.conn_set_active(id, a),
        };
    }
}
