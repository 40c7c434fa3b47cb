//! A virtual service and its destination list, with the kernel's list order,
//! trash and scheduler notifications (net/netfilter/ipvs/ip_vs_ctl.c).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::ops::BitOr;
use std::time::Instant;

use crate::Error;
use crate::dest::{ConnKind, Dest, DestConfig, DestId, MAX_WEIGHT, next_generation};
use crate::ipvs::Sched;
use crate::packet::{PacketInfo, Protocol};
use crate::rng::RandomSource;
use crate::scheduler::SchedulerConfig;

/// IPv4 or IPv6 (`AF_INET` / `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl AddressFamily {
    /// The family of `addr`.
    #[must_use]
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// A TCP/UDP/SCTP service on an address and port (`-t/-u/--sctp-service`).
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual address and port (port 0 only for persistent services).
        addr: SocketAddr,
    },
    /// A firewall-mark service (`-f mark`), of one address family.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv4 or IPv6.
        family: AddressFamily,
    },
}

impl ServiceKey {
    /// The address family of the service.
    #[must_use]
    pub fn family(&self) -> AddressFamily {
        match *self {
            Self::Addr { addr, .. } => AddressFamily::of(addr.ip()),
            Self::Fwmark { family, .. } => family,
        }
    }
}

/// Service flags (`IP_VS_SVC_F_*` of include/uapi/linux/ip_vs.h).
///
/// ```
/// use lb_sched::ServiceFlags;
/// // ipvsadm -s sh -b sh-fallback,sh-port
/// let f = ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
/// assert_eq!(f.bits(), 0x18);
/// assert!(f.contains(ServiceFlags::SCHED2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServiceFlags(u32);

impl ServiceFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// `IP_VS_SVC_F_PERSISTENT`.
    pub const PERSISTENT: Self = Self(0x1);
    /// `IP_VS_SVC_F_HASHED` (kernel-internal; kept for round trips).
    pub const HASHED: Self = Self(0x2);
    /// `IP_VS_SVC_F_ONEPACKET`.
    pub const ONEPACKET: Self = Self(0x4);
    /// `IP_VS_SVC_F_SCHED1`: scheduler flag 1.
    pub const SCHED1: Self = Self(0x8);
    /// `IP_VS_SVC_F_SCHED2`: scheduler flag 2.
    pub const SCHED2: Self = Self(0x10);
    /// `IP_VS_SVC_F_SCHED3`: scheduler flag 3.
    pub const SCHED3: Self = Self(0x20);
    /// `sh-fallback` (= SCHED1).
    pub const SH_FALLBACK: Self = Self::SCHED1;
    /// `sh-port` (= SCHED2).
    pub const SH_PORT: Self = Self::SCHED2;
    /// `mh-fallback` (= SCHED1, defined in ip_vs_mh.c only).
    pub const MH_FALLBACK: Self = Self::SCHED1;
    /// `mh-port` (= SCHED2, defined in ip_vs_mh.c only).
    pub const MH_PORT: Self = Self::SCHED2;

    /// The raw bits.
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }
    /// Flags from raw bits (unknown bits are kept).
    #[must_use]
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
    /// True if every flag of `other` is set.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for ServiceFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for ServiceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceFlags({:#x})", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    Free,
    Listed,
    Trashed,
}

#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) state: SlotState,
    /// Index in `Service::order` while listed.
    pub(crate) index: u32,
    pub(crate) dest: Dest,
}

/// Read access to the destination list for the schedulers.
///
/// `order` holds the listed slots oldest first. The kernel adds new
/// destinations at the *front* of `svc->destinations` (`list_add_rcu`), so
/// the kernel's list order is `order` reversed: list position `p` is
/// `order[len - 1 - p]`, and "earlier in the list" means "larger index".
#[derive(Debug, Clone, Copy)]
pub(crate) struct DestList<'a> {
    pub(crate) slots: &'a [Slot],
    pub(crate) hot: &'a [Hot],
    pub(crate) order: &'a [u32],
    pub(crate) family: AddressFamily,
    pub(crate) flags: ServiceFlags,
}

impl<'a> DestList<'a> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
    #[inline]
    pub(crate) fn dest(&self, slot: u32) -> &'a Dest {
        &self.slots[slot as usize].dest
    }
    /// The dest at `order` index `i`.
    pub(crate) fn at(&self, i: usize) -> &'a Dest {
        self.dest(self.order[i])
    }
    /// Weight > 0 and no OVERLOAD: what `sh` and `mh` require of the
    /// destination a bucket names, read from its one-byte [`Hot`] copy.
    #[inline]
    pub(crate) fn schedulable(&self, slot: u32) -> bool {
        self.hot(slot) & Hot::SCHEDULABLE != 0
    }
    /// [`schedulable`](Self::schedulable) and `AVAILABLE`: what `dh` requires.
    #[inline]
    pub(crate) fn usable(&self, slot: u32) -> bool {
        self.hot(slot) == Hot::SCHEDULABLE | Hot::AVAILABLE
    }
    /// The [`Hot`] byte of `slot`, checked against the destination in
    /// debug builds.
    #[inline(always)]
    fn hot(&self, slot: u32) -> u8 {
        let h = self.hot[slot as usize];
        debug_assert_eq!(h, Hot::of(self.dest(slot)), "stale Hot of slot {slot}");
        h.0
    }
    /// Index in `order` of a listed slot.
    #[inline]
    pub(crate) fn index_of(&self, slot: u32) -> usize {
        self.slots[slot as usize].index as usize
    }
    /// Listed slots in kernel list order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + Clone + 'a {
        self.order.iter().rev().copied()
    }
}

/// What the hashing schedulers (`sh`, `mh`, `dh`) test of the destination
/// their bucket names, on every pick: one byte per slot, kept in
/// `Service::hot` beside the slot table and refreshed whenever a slot's
/// weight, OVERLOAD or AVAILABLE flag can change. A pick then reads this
/// byte (a 1 000-destination service has 1 KB of them, in L1) rather than
/// the destination itself (72 bytes each, 72 KB, mostly not in L1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Hot(u8);

impl Hot {
    /// Weight > 0 and no OVERLOAD.
    const SCHEDULABLE: u8 = 1;
    /// `IP_VS_DEST_F_AVAILABLE`.
    const AVAILABLE: u8 = 2;

    pub(crate) fn of(d: &Dest) -> Self {
        let schedulable = d.weight > 0 && !d.overloaded;
        Self(u8::from(schedulable) * Self::SCHEDULABLE + u8::from(d.available) * Self::AVAILABLE)
    }
}

/// Unit-test fixtures for the index structures: listed slots with the given
/// `(weight, overloaded)`, slot `i` at `order` index `i`.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{AddressFamily, Dest, DestList, ServiceFlags, Slot, SlotState};

    pub(crate) fn slots(values: &[(u32, bool)]) -> Vec<Slot> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(weight, overloaded))| {
                let mut dest = Dest::new(std::net::SocketAddr::from(([10, 0, 0, 1], i as u16)));
                dest.weight = weight;
                dest.overloaded = overloaded;
                Slot {
                    state: SlotState::Listed,
                    index: i as u32,
                    dest,
                }
            })
            .collect()
    }

    /// A list over `slots` in `order` (no `Hot` bytes: for structures that
    /// read the destinations).
    pub(crate) fn list<'a>(slots: &'a [Slot], order: &'a [u32]) -> DestList<'a> {
        DestList {
            slots,
            hot: &[],
            order,
            family: AddressFamily::Inet,
            flags: ServiceFlags::NONE,
        }
    }
}

/// A [`DestList`] over the service's fields, borrowing them disjointly
/// from `sched`.
macro_rules! list {
    ($s:expr) => {
        DestList {
            slots: &$s.slots,
            hot: &$s.hot,
            order: &$s.order,
            family: $s.family,
            flags: $s.flags,
        }
    };
}

/// A virtual service: its destinations in the kernel's list order, their
/// counters and flags, and one of the fourteen kernel schedulers.
///
/// # Call order
///
/// * Configuration: [`add_dest`](Self::add_dest), [`edit_dest`](Self::edit_dest),
///   [`set_weight`](Self::set_weight), [`remove_dest`](Self::remove_dest),
///   [`set_scheduler`](Self::set_scheduler) — each notifies the scheduler
///   exactly as `__ip_vs_update_dest` / `__ip_vs_unlink_dest` do.
/// * Per new connection: [`pick`](Self::pick), then, if the caller creates the
///   connection, [`conn_bind`](Self::conn_bind) with [`ConnKind::Inactive`]
///   (the kernel binds every new connection inactive, a template as
///   [`ConnKind::Template`]).
/// * On a protocol state change between established and not:
///   [`conn_set_active`](Self::conn_set_active).
/// * When the connection expires: [`conn_unbind`](Self::conn_unbind) with its
///   current kind. This also works for a removed destination still in the trash.
/// * Timers: `lblc`/`lblcr` run a garbage collector every 60 s; call
///   [`handle_timeout`](Self::handle_timeout) when
///   [`poll_timeout`](Self::poll_timeout) is reached.
///
/// Picks do not allocate, except that `lblc`/`lblcr` insert a cache entry for
/// a destination address they have not seen (the kernel `kmalloc`s there too).
///
/// ```
/// use std::time::Instant;
/// use lb_sched::{ConnKind, DestConfig, PacketInfo, Protocol, SchedulerKind, Service,
///                ServiceFlags, ServiceKey, SplitMix64};
/// let now = Instant::now();
/// let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
/// let mut svc = Service::new(key, ServiceFlags::NONE, SchedulerKind::Wlc, now).unwrap();
/// let a = svc.add_dest(DestConfig::new("10.0.0.1:80".parse().unwrap(), 1)).unwrap();
/// let b = svc.add_dest(DestConfig::new("10.0.0.2:80".parse().unwrap(), 2)).unwrap();
/// let pkt = PacketInfo::new(Protocol::Tcp, "198.51.100.9:5555".parse().unwrap(),
///                           "192.0.2.1:80".parse().unwrap());
/// let mut rng = SplitMix64::new(1);
/// // Both idle: wlc keeps the first in list order, and `b` was added last, so it is first.
/// assert_eq!(svc.pick(now, &pkt, &mut rng), Some(b));
/// svc.conn_bind(b, ConnKind::Inactive).unwrap();
/// assert_eq!(svc.pick(now, &pkt, &mut rng), Some(a));
/// ```
#[derive(Debug)]
pub struct Service {
    key: ServiceKey,
    /// `key.family()`, kept so a pick does not match on the key.
    family: AddressFamily,
    flags: ServiceFlags,
    slots: Vec<Slot>,
    /// Each slot's generation, beside `slots` rather than in it: every
    /// pick reads one to build the `DestId`, and 4 bytes a slot stay in L1
    /// where the 76-byte slots (1 000 of them: 76 KB) do not.
    gens: Vec<NonZeroU32>,
    /// Each slot's [`Hot`] byte, beside `slots` for the same reason.
    hot: Vec<Hot>,
    free: Vec<u32>,
    order: Vec<u32>,
    trash: Vec<u32>,
    /// Listed and trashed slots by address.
    by_addr: HashMap<SocketAddr, u32>,
    config: SchedulerConfig,
    sched: Sched,
}

impl Service {
    /// A service with no destinations.
    ///
    /// # Errors
    /// [`Error::ShTableBits`] / [`Error::MhTableSize`] for a bad scheduler parameter.
    pub fn new(
        key: ServiceKey,
        flags: ServiceFlags,
        scheduler: impl Into<SchedulerConfig>,
        now: Instant,
    ) -> Result<Self, Error> {
        let config = scheduler.into();
        config.validate()?;
        let family = key.family();
        let list = DestList {
            slots: &[],
            hot: &[],
            order: &[],
            family,
            flags,
        };
        let sched = Sched::new(&config, &list, now);
        Ok(Self {
            key,
            family,
            flags,
            slots: Vec::new(),
            gens: Vec::new(),
            hot: Vec::new(),
            free: Vec::new(),
            order: Vec::new(),
            trash: Vec::new(),
            by_addr: HashMap::new(),
            config,
            sched,
        })
    }

    /// The service key.
    #[must_use]
    pub fn key(&self) -> ServiceKey {
        self.key
    }
    /// The service flags.
    #[must_use]
    pub fn flags(&self) -> ServiceFlags {
        self.flags
    }
    /// The scheduler and its parameters.
    #[must_use]
    pub fn scheduler(&self) -> SchedulerConfig {
        self.config
    }
    /// Number of destinations in the list (`svc->num_dests`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// True if the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Changes the flags (`ipvsadm -E`). The schedulers read them live at
    /// each pick (`sh-port`, `mh-fallback`, ...), as in the kernel; no state
    /// is rebuilt.
    pub fn set_flags(&mut self, flags: ServiceFlags) {
        self.flags = flags;
    }

    /// Binds a new scheduler (`ip_vs_edit_service` with another name): the old
    /// scheduler's state is dropped and the new one initialised from the list.
    /// The same scheduler with only the `lblc`/`lblcr` expiration changed
    /// keeps its state (those are sysctls the kernel reads live); setting the
    /// same configuration again is a no-op, as in the kernel.
    ///
    /// # Errors
    /// As [`Service::new`].
    pub fn set_scheduler(
        &mut self,
        scheduler: impl Into<SchedulerConfig>,
        now: Instant,
    ) -> Result<(), Error> {
        let config = scheduler.into();
        config.validate()?;
        if config == self.config {
            return Ok(());
        }
        let live_only = SchedulerConfig {
            lblc_expiration: self.config.lblc_expiration,
            lblcr_expiration: self.config.lblcr_expiration,
            ..config
        } == self.config;
        self.config = config;
        if live_only {
            self.sched.set_expiration(&config);
            return Ok(());
        }
        let list = list!(self);
        self.sched = Sched::new(&self.config, &list, now);
        self.sweep_trash();
        Ok(())
    }

    /// Adds a destination at the front of the list (`ip_vs_add_dest`). A
    /// removed destination with the same address still in the trash comes
    /// back with its id and counters.
    ///
    /// # Errors
    /// [`Error::WeightRange`], [`Error::ThresholdRange`], [`Error::DestExists`],
    /// [`Error::TooManyDests`].
    pub fn add_dest(&mut self, cfg: DestConfig) -> Result<DestId, Error> {
        cfg.validate()?;
        if self.find_dest(cfg.addr).is_some() {
            return Err(Error::DestExists(cfg.addr));
        }
        let slot = if let Some(&slot) = self.by_addr.get(&cfg.addr) {
            // Not listed (checked above), so it is in the trash.
            if let Some(pos) = self.trash.iter().position(|&s| s == slot) {
                self.trash.swap_remove(pos);
            }
            slot
        } else if let Some(slot) = self.free.pop() {
            self.slots[slot as usize].dest = Dest::new(cfg.addr);
            slot
        } else {
            let Ok(slot) = u32::try_from(self.slots.len()) else {
                return Err(Error::TooManyDests);
            };
            self.gens.push(NonZeroU32::MIN);
            self.hot.push(Hot::default());
            self.slots.push(Slot {
                state: SlotState::Free,
                index: 0,
                dest: Dest::new(cfg.addr),
            });
            slot
        };
        self.by_addr.insert(cfg.addr, slot);
        let index = self.order.len() as u32;
        let s = &mut self.slots[slot as usize];
        s.dest.apply(&cfg, true);
        s.state = SlotState::Listed;
        s.index = index;
        self.refresh_hot(slot);
        self.order.push(slot);
        let list = list!(self);
        self.sched.on_add(&list, slot);
        self.sweep_trash();
        Ok(self.id(slot))
    }

    /// Changes weight and thresholds of the destination at `cfg.addr`
    /// (`ip_vs_edit_dest`).
    ///
    /// # Errors
    /// [`Error::WeightRange`], [`Error::ThresholdRange`], [`Error::NoSuchAddr`].
    pub fn edit_dest(&mut self, cfg: DestConfig) -> Result<DestId, Error> {
        cfg.validate()?;
        let id = self
            .find_dest(cfg.addr)
            .ok_or(Error::NoSuchAddr(cfg.addr))?;
        self.update(id.slot(), &cfg);
        Ok(id)
    }

    /// Sets the weight of a listed destination, keeping its thresholds.
    ///
    /// # Errors
    /// [`Error::WeightRange`], [`Error::NoSuchDest`], [`Error::NotListed`].
    pub fn set_weight(&mut self, id: DestId, weight: u32) -> Result<(), Error> {
        if weight > MAX_WEIGHT {
            return Err(Error::WeightRange(weight));
        }
        let slot = self.listed(id)?;
        let d = &self.slots[slot as usize].dest;
        let cfg = DestConfig {
            addr: d.addr,
            weight,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
        };
        self.update(slot, &cfg);
        Ok(())
    }

    /// Sets the thresholds of a listed destination, keeping its weight.
    ///
    /// # Errors
    /// [`Error::ThresholdRange`], [`Error::NoSuchDest`], [`Error::NotListed`].
    pub fn set_thresholds(&mut self, id: DestId, upper: u32, lower: u32) -> Result<(), Error> {
        let slot = self.listed(id)?;
        let d = &self.slots[slot as usize].dest;
        let cfg = DestConfig {
            addr: d.addr,
            weight: d.weight,
            u_threshold: upper,
            l_threshold: lower,
        };
        cfg.validate()?;
        self.update(slot, &cfg);
        Ok(())
    }

    fn update(&mut self, slot: u32, cfg: &DestConfig) {
        self.slots[slot as usize].dest.apply(cfg, false);
        self.refresh_hot(slot);
        let list = list!(self);
        self.sched.on_update(&list, slot);
        self.sweep_trash();
    }

    /// Removes a destination from the list (`ip_vs_del_dest`): it loses
    /// `AVAILABLE`, the scheduler is told, and it waits in the trash while
    /// connections or scheduler caches still refer to it.
    ///
    /// # Errors
    /// [`Error::NoSuchDest`], [`Error::NotListed`].
    pub fn remove_dest(&mut self, id: DestId) -> Result<(), Error> {
        let slot = self.listed(id)?;
        let index = self.slots[slot as usize].index as usize;
        self.order.remove(index);
        for (i, &s) in self.order.iter().enumerate().skip(index) {
            self.slots[s as usize].index = i as u32;
        }
        let s = &mut self.slots[slot as usize];
        s.dest.available = false;
        s.state = SlotState::Trashed;
        self.refresh_hot(slot);
        self.trash.push(slot);
        let list = list!(self);
        self.sched.on_del(&list, index);
        self.sweep_trash();
        Ok(())
    }

    /// The id of the listed destination at `addr`.
    #[must_use]
    pub fn find_dest(&self, addr: SocketAddr) -> Option<DestId> {
        let &slot = self.by_addr.get(&addr)?;
        (self.slots[slot as usize].state == SlotState::Listed).then(|| self.id(slot))
    }

    /// A listed or trashed destination.
    #[must_use]
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.live(id)
            .ok()
            .map(|slot| &self.slots[slot as usize].dest)
    }

    /// The listed destinations in the kernel's list order (most recently added first).
    pub fn dests(&self) -> impl DoubleEndedIterator<Item = (DestId, &Dest)> + '_ {
        self.order
            .iter()
            .rev()
            .map(|&s| (self.id(s), &self.slots[s as usize].dest))
    }

    /// Removed destinations still held by connections or scheduler caches.
    pub fn trashed(&self) -> impl Iterator<Item = (DestId, &Dest)> + '_ {
        self.trash
            .iter()
            .map(|&s| (self.id(s), &self.slots[s as usize].dest))
    }

    /// Picks a destination for a new connection, exactly as the kernel's
    /// scheduler would. `None` is the kernel's "no destination available".
    ///
    /// This is the scheduler's `schedule` hook. What `ip_vs_schedule()` does
    /// around it (persistence templates, refusing port-zero non-persistent
    /// services, one-packet scheduling) belongs to the layer above, e.g. the
    /// `persist` module.
    ///
    /// `rr`, `wrr` and the least-connection family are inline (their
    /// common case is a load or two); each other scheduler is one call to a
    /// function of its own, so no pick pays for the registers and stack of
    /// the largest (`benches/README.md`, "Fourth pass").
    #[inline]
    pub fn pick<R: RandomSource + ?Sized>(
        &mut self,
        now: Instant,
        pkt: &PacketInfo,
        rng: &mut R,
    ) -> Option<DestId> {
        let list = list!(self);
        let slot = match &mut self.sched {
            Sched::Rr(r) => r.pick(&list),
            Sched::Wrr(w) => w.pick(&list),
            Sched::Least(t) => t.winner().map(|i| list.order[i]),
            Sched::Mh(_) => return self.pick_mh(pkt),
            Sched::Sh(_) => return self.pick_sh(pkt),
            Sched::Dh(_) => return self.pick_dh(pkt),
            Sched::Twos(_) => return self.pick_twos(rng),
            Sched::Lblc(_) | Sched::Lblcr(_) => return self.pick_locality(now, pkt),
        }?;
        Some(self.id(slot))
    }

    #[inline(never)]
    fn pick_mh(&self, pkt: &PacketInfo) -> Option<DestId> {
        let Sched::Mh(m) = &self.sched else {
            return None;
        };
        match m.pick(&list!(self), pkt) {
            Ok(slot) => Some(self.id(slot?)),
            Err(ihash) => self.pick_fallback(pkt, ihash),
        }
    }

    #[inline(never)]
    fn pick_sh(&self, pkt: &PacketInfo) -> Option<DestId> {
        let Sched::Sh(s) = &self.sched else {
            return None;
        };
        match s.pick(&list!(self), pkt) {
            Ok(slot) => Some(self.id(slot?)),
            Err(ihash) => self.pick_fallback(pkt, ihash),
        }
    }

    /// `sh`'s and `mh`'s fallback walks from the first hash `ihash`,
    /// behind a call of their own: the common path then keeps no
    /// `DestList` field alive across the hash (they were spilled to the
    /// stack on every pick: 10 instructions of `mh`'s).
    #[cold]
    #[inline(never)]
    fn pick_fallback(&self, pkt: &PacketInfo, ihash: u32) -> Option<DestId> {
        let list = list!(self);
        let slot = match &self.sched {
            Sched::Mh(m) => m.fallback(&list, pkt, ihash),
            Sched::Sh(s) => s.fallback(&list, pkt, ihash),
            _ => None,
        }?;
        Some(self.id(slot))
    }

    #[inline(never)]
    fn pick_dh(&self, pkt: &PacketInfo) -> Option<DestId> {
        let Sched::Dh(d) = &self.sched else {
            return None;
        };
        let slot = d.pick(&list!(self), pkt)?;
        Some(self.id(slot))
    }

    #[inline(never)]
    fn pick_twos<R: RandomSource + ?Sized>(&self, rng: &mut R) -> Option<DestId> {
        let Sched::Twos(t) = &self.sched else {
            return None;
        };
        let slot = t.pick(&list!(self), rng)?;
        Some(self.id(slot))
    }

    #[inline(never)]
    fn pick_locality(&mut self, now: Instant, pkt: &PacketInfo) -> Option<DestId> {
        let list = list!(self);
        let slot = match &mut self.sched {
            Sched::Lblc(l) => l.pick(&list, now, pkt.dst),
            Sched::Lblcr(l) => l.pick(&list, now, pkt.dst),
            _ => None,
        }?;
        let id = self.id(slot);
        if !self.trash.is_empty() {
            // A pick may drop cache references (lblcr erasing a set member).
            self.sweep_trash();
        }
        Some(id)
    }

    /// Counts a new connection on `id` (`ip_vs_bind_dest`) and sets
    /// `OVERLOAD` when `active + inactive` reaches the upper threshold.
    ///
    /// # Errors
    /// [`Error::NoSuchDest`], [`Error::CounterOverflow`].
    pub fn conn_bind(&mut self, id: DestId, kind: ConnKind) -> Result<(), Error> {
        let slot = self.live(id)?;
        self.slots[slot as usize]
            .dest
            .bind(kind)
            .ok_or(Error::CounterOverflow(id))?;
        self.counters_changed(slot);
        Ok(())
    }

    /// Uncounts a connection of `kind` (`ip_vs_unbind_dest`) and clears
    /// `OVERLOAD` by the kernel's rule: below `l_threshold` if set, else below
    /// `u - u / 4` if `u_threshold` is set, else always.
    ///
    /// # Errors
    /// [`Error::NoSuchDest`], [`Error::CounterUnderflow`].
    pub fn conn_unbind(&mut self, id: DestId, kind: ConnKind) -> Result<(), Error> {
        let slot = self.live(id)?;
        self.slots[slot as usize]
            .dest
            .unbind(kind)
            .ok_or(Error::CounterUnderflow(id))?;
        self.counters_changed(slot);
        Ok(())
    }

    /// Moves one connection between inactive and active (`active = true`:
    /// inactive → active). No OVERLOAD re-evaluation, as in the kernel.
    ///
    /// # Errors
    /// [`Error::NoSuchDest`], [`Error::CounterUnderflow`].
    pub fn conn_set_active(&mut self, id: DestId, active: bool) -> Result<(), Error> {
        let slot = self.live(id)?;
        self.slots[slot as usize]
            .dest
            .set_active(active)
            .ok_or(Error::CounterUnderflow(id))?;
        self.counters_changed(slot);
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sched.poll_timeout()
    }

    /// Runs due timers (the `lblc`/`lblcr` garbage collector).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sched.handle_timeout(now);
        self.sweep_trash();
    }

    fn counters_changed(&mut self, slot: u32) {
        self.refresh_hot(slot);
        match self.slots[slot as usize].state {
            SlotState::Listed => {
                let list = list!(self);
                self.sched.on_counters(&list, slot);
            }
            SlotState::Trashed => self.sweep_trash(),
            SlotState::Free => {}
        }
    }

    fn refresh_hot(&mut self, slot: u32) {
        self.hot[slot as usize] = Hot::of(&self.slots[slot as usize].dest);
    }

    /// Frees trashed destinations that nothing refers to any more.
    fn sweep_trash(&mut self) {
        let mut i = 0;
        while i < self.trash.len() {
            let slot = self.trash[i];
            let s = &self.slots[slot as usize];
            if s.dest.conns_held() || self.sched.holds(slot) {
                i += 1;
                continue;
            }
            self.trash.swap_remove(i);
            let s = &mut self.slots[slot as usize];
            self.by_addr.remove(&s.dest.addr);
            s.state = SlotState::Free;
            self.gens[slot as usize] = next_generation(self.gens[slot as usize]);
            self.free.push(slot);
        }
    }

    #[inline]
    fn id(&self, slot: u32) -> DestId {
        DestId::new(slot, self.gens[slot as usize])
    }

    fn live(&self, id: DestId) -> Result<u32, Error> {
        let i = id.slot() as usize;
        match (self.slots.get(i), self.gens.get(i)) {
            (Some(s), Some(g)) if g.get() == id.generation() && s.state != SlotState::Free => {
                Ok(id.slot())
            }
            _ => Err(Error::NoSuchDest(id)),
        }
    }

    fn listed(&self, id: DestId) -> Result<u32, Error> {
        let slot = self.live(id)?;
        if self.slots[slot as usize].state == SlotState::Listed {
            Ok(slot)
        } else {
            Err(Error::NotListed(id))
        }
    }
}
