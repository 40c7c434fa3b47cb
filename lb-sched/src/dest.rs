//! Destinations (real servers): address, weight, connection counters,
//! thresholds and the `AVAILABLE` / `OVERLOAD` flags of the kernel's
//! `struct ip_vs_dest` (include/net/ip_vs.h).

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};

use crate::Error;

/// The largest weight the kernel accepts (its weight is an `int`; negative
/// weights are refused with `-ERANGE`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// Names one destination of one [`Service`](crate::Service).
///
/// Ids are small and `Copy`; they stay valid while the destination is in the
/// service *or* in its trash (removed, but still holding connections or
/// scheduler references). Re-adding a trashed destination with the same
/// address brings back the same id with its counters, as the kernel brings
/// back the same `struct ip_vs_dest` from `dest_trash`. A freed slot is reused
/// with a new generation, so stale ids are refused instead of aliasing.
///
/// One `u64`, slot in the high half (so ids order by slot, then
/// generation) and the generation, never 0, in the low half. So
/// `Option<DestId>` is one `u64` too, and a pick's result comes back in one
/// register and is stored and reloaded as one 8-byte word. As two `u32`s it
/// was written as two 4-byte stores and read back as one 8-byte load (by
/// `black_box`, or any caller moving the value through memory): a load
/// spanning two stores cannot be store-forwarded, and that stall cost every
/// `Service::pick` call several nanoseconds (benches/README.md).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(NonZeroU64);

impl DestId {
    #[inline]
    pub(crate) fn new(slot: u32, generation: NonZeroU32) -> Self {
        Self(NonZeroU64::from(generation) | (u64::from(slot) << 32))
    }

    /// The slot index, dense from 0: usable to index side tables kept by the
    /// caller (at most one live destination per slot at a time).
    #[must_use]
    #[inline]
    pub fn slot(self) -> u32 {
        (self.0.get() >> 32) as u32
    }

    #[inline]
    pub(crate) fn generation(self) -> u32 {
        self.0.get() as u32
    }
}

/// The generation a slot gets when it is freed: the next one, skipping 0.
pub(crate) fn next_generation(g: NonZeroU32) -> NonZeroU32 {
    g.checked_add(1).unwrap_or(NonZeroU32::MIN)
}

impl fmt::Debug for DestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DestId({}#{})", self.slot(), self.generation())
    }
}

impl fmt::Display for DestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dest {}#{}", self.slot(), self.generation())
    }
}

/// What a caller sets on a destination (`ipvsadm -a/-e -r addr:port -w W -x U -y L`).
///
/// ```
/// use lb_sched::DestConfig;
/// // ipvsadm -a ... -r 10.0.0.1:80 -w 3 -x 100 -y 80
/// let cfg = DestConfig::new("10.0.0.1:80".parse().unwrap(), 3).thresholds(100, 80);
/// assert_eq!((cfg.weight, cfg.u_threshold, cfg.l_threshold), (3, 100, 80));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestConfig {
    /// Address and port of the real server. Port 0 is allowed (fwmark and
    /// port-zero persistent services).
    pub addr: SocketAddr,
    /// Weight, `0..=MAX_WEIGHT`; 0 quiesces (no new connections).
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none. When `active + inactive`
    /// reaches it the destination is `OVERLOAD`ed.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = use `u - u / 4` (75 % of the upper one).
    pub l_threshold: u32,
}

impl DestConfig {
    /// A destination at `addr` with `weight` and no thresholds.
    #[must_use]
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        Self {
            addr,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    /// Sets both thresholds (`-x upper -y lower`).
    #[must_use]
    pub fn thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.weight > MAX_WEIGHT {
            return Err(Error::WeightRange(self.weight));
        }
        // ip_vs_add_dest / ip_vs_edit_dest: checked even when u_threshold is 0.
        if self.l_threshold > self.u_threshold {
            return Err(Error::ThresholdRange {
                lower: self.l_threshold,
                upper: self.u_threshold,
            });
        }
        Ok(())
    }
}

/// The kind of a connection bound to a destination, which decides the counter
/// it is held in (`ip_vs_bind_dest` / `ip_vs_unbind_dest` in ip_vs_conn.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnKind {
    /// A normal connection without `IP_VS_CONN_F_INACTIVE` (e.g. TCP ESTABLISHED).
    Active,
    /// A normal connection with `IP_VS_CONN_F_INACTIVE`: how every new
    /// connection starts, and where UDP and closing TCP connections stay.
    Inactive,
    /// A persistence template (`IP_VS_CONN_F_TEMPLATE`), counted in `persistconns`.
    Template,
}

/// A destination with its live state, as the schedulers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    pub(crate) last_weight: u32,
    pub(crate) active: u32,
    pub(crate) inactive: u32,
    pub(crate) persistent: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) available: bool,
    pub(crate) overloaded: bool,
}

impl Dest {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            weight: 0,
            last_weight: 0,
            active: 0,
            inactive: 0,
            persistent: 0,
            u_threshold: 0,
            l_threshold: 0,
            available: false,
            overloaded: false,
        }
    }

    /// Address and port of the real server.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Current weight (0 = quiesced).
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// The latest non-zero weight (the weight set when the destination was
    /// added, if it was 0 then). `mh` builds its table from it, so quiescing
    /// keeps the table.
    #[must_use]
    pub fn last_weight(&self) -> u32 {
        self.last_weight
    }
    /// `activeconns`.
    #[must_use]
    pub fn active_conns(&self) -> u32 {
        self.active
    }
    /// `inactconns`.
    #[must_use]
    pub fn inactive_conns(&self) -> u32 {
        self.inactive
    }
    /// `persistconns` (templates).
    #[must_use]
    pub fn persistent_conns(&self) -> u32 {
        self.persistent
    }
    /// Upper threshold, 0 = none.
    #[must_use]
    pub fn u_threshold(&self) -> u32 {
        self.u_threshold
    }
    /// Lower threshold, 0 = derived from the upper one.
    #[must_use]
    pub fn l_threshold(&self) -> u32 {
        self.l_threshold
    }
    /// `IP_VS_DEST_F_AVAILABLE`: in the service's list (false once removed).
    #[must_use]
    pub fn is_available(&self) -> bool {
        self.available
    }
    /// `IP_VS_DEST_F_OVERLOAD`: the upper threshold was reached and the
    /// lower one not yet passed on the way down (re-evaluated whenever a
    /// threshold changes). Every scheduler skips it.
    #[must_use]
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }
    /// `ip_vs_dest_conn_overhead`: `active * 256 + inactive`, computed
    /// exactly in 64 bits (the kernel's `int` wraps once `active` passes 2^23).
    #[must_use]
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }
    /// `ip_vs_dest_totalconns`: `active + inactive` (templates not counted).
    #[must_use]
    pub fn total_conns(&self) -> u64 {
        u64::from(self.active) + u64::from(self.inactive)
    }

    /// Applies `cfg` as `__ip_vs_update_dest` does. `add` is true when the
    /// destination is (re)added to the list.
    pub(crate) fn apply(&mut self, cfg: &DestConfig, add: bool) {
        // "keep the last_weight with latest non-0 weight"
        if add || cfg.weight != 0 {
            self.last_weight = cfg.weight;
        }
        self.weight = cfg.weight;
        self.available = true;
        // Changed thresholds re-evaluate the flag against the counters at
        // once ("ipvs: properly update the overload flag on dest edit",
        // which the Debian 6.1 kernel carries; before it, removing or
        // raising u_threshold cleared the flag and nothing set it).
        let changed = cfg.u_threshold != self.u_threshold || cfg.l_threshold != self.l_threshold;
        self.u_threshold = cfg.u_threshold;
        self.l_threshold = cfg.l_threshold;
        if changed {
            self.update_overload();
        }
    }

    /// `ip_vs_dest_update_overload`: set when `active + inactive` reaches
    /// the upper threshold; cleared when there is none, or when the count is
    /// below the lower threshold (default `u - u / 4`, the kernel's 75 %
    /// with its integer rounding); kept in between.
    fn update_overload(&mut self) {
        let u = u64::from(self.u_threshold);
        if u == 0 {
            self.overloaded = false;
            return;
        }
        let conns = self.total_conns();
        if conns >= u {
            self.overloaded = true;
            return;
        }
        let l = match u64::from(self.l_threshold) {
            0 => u - (u >> 2),
            l => l,
        };
        if conns < l {
            self.overloaded = false;
        }
    }

    /// Counter increment of `ip_vs_bind_dest`, then the OVERLOAD update.
    pub(crate) fn bind(&mut self, kind: ConnKind) -> Option<()> {
        let c = self.counter(kind);
        *c = c.checked_add(1)?;
        self.update_overload();
        Some(())
    }

    /// Counter decrement of `ip_vs_unbind_dest`, then, if OVERLOADed, the
    /// OVERLOAD update.
    pub(crate) fn unbind(&mut self, kind: ConnKind) -> Option<()> {
        let c = self.counter(kind);
        *c = c.checked_sub(1)?;
        if self.overloaded {
            self.update_overload();
        }
        Some(())
    }

    /// A state change between active and inactive (the protocol's
    /// `state_transition`): moves one count, no OVERLOAD re-evaluation.
    pub(crate) fn set_active(&mut self, active: bool) -> Option<()> {
        let (from, to) = if active {
            (self.inactive, self.active)
        } else {
            (self.active, self.inactive)
        };
        let from = from.checked_sub(1)?;
        let to = to.checked_add(1)?;
        if active {
            self.inactive = from;
            self.active = to;
        } else {
            self.active = from;
            self.inactive = to;
        }
        Some(())
    }

    pub(crate) fn conns_held(&self) -> bool {
        self.active != 0 || self.inactive != 0 || self.persistent != 0
    }

    fn counter(&mut self, kind: ConnKind) -> &mut u32 {
        match kind {
            ConnKind::Active => &mut self.active,
            ConnKind::Inactive => &mut self.inactive,
            ConnKind::Template => &mut self.persistent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pick's result must stay one register (see [`DestId`]).
    #[test]
    fn option_dest_id_is_one_word() {
        assert_eq!(size_of::<Option<DestId>>(), 8);
    }

    #[test]
    fn ids_order_by_slot_then_generation_and_round_trip() {
        let g = |n| NonZeroU32::new(n).unwrap();
        let a = DestId::new(1, g(u32::MAX));
        let b = DestId::new(2, g(1));
        assert!(a < b);
        assert!(DestId::new(2, g(1)) < DestId::new(2, g(2)));
        assert_eq!((a.slot(), a.generation()), (1, u32::MAX));
        assert_eq!((b.slot(), b.generation()), (2, 1));
        let top = DestId::new(u32::MAX, g(7));
        assert_eq!((top.slot(), top.generation()), (u32::MAX, 7));
    }

    #[test]
    fn generations_skip_zero_when_they_wrap() {
        let g = |n| NonZeroU32::new(n).unwrap();
        assert_eq!(next_generation(g(1)), g(2));
        assert_eq!(next_generation(g(u32::MAX)), NonZeroU32::MIN);
    }
}
