//! Kernel-style O(n) scans of `lc`, `wlc`, `sed`, `nq`, `fo`, `ovf` and `twos`.
//!
//! Each function is a line-by-line transcription of the kernel's
//! `ip_vs_*_schedule` loop over `svc->destinations`. They are the reference
//! model the O(1) tournament tree is tested against and the baseline of the
//! `sched_kernel` benchmark. Input: the destinations in list order (as
//! [`Service::dests`](crate::Service::dests) yields them); output: the
//! position of the pick in that sequence.
//!
//! ```
//! use std::time::Instant;
//! use lb_sched::{ipvs::scan, DestConfig, Protocol, SchedulerKind, Service, ServiceFlags, ServiceKey};
//! let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
//! let mut svc = Service::new(key, ServiceFlags::NONE, SchedulerKind::Wlc, Instant::now()).unwrap();
//! svc.add_dest(DestConfig::new("10.0.0.1:80".parse().unwrap(), 1)).unwrap();
//! assert_eq!(scan::wlc(svc.dests().map(|(_, d)| d)), Some(0));
//! ```

use crate::dest::Dest;
use crate::ipvs::twos::random_u32_below;
use crate::rng::RandomSource;

/// `ip_vs_lc_schedule`: least `active*256 + inactive`, weight 0 and OVERLOAD skipped.
pub fn lc<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    let mut least: Option<usize> = None;
    let mut loh = 0;
    for (i, d) in dests.into_iter().enumerate() {
        if d.is_overloaded() || d.weight() == 0 {
            continue;
        }
        let doh = d.overhead();
        if least.is_none() || doh < loh {
            least = Some(i);
            loh = doh;
        }
    }
    least
}

/// The shared two-stage loop of `wlc` and `sed` (and of `lblc`/`lblcr`'s
/// fallback): the first eligible destination, then any later non-OVERLOAD one
/// with `loh * dw > doh * lw`.
fn two_stage<'a>(
    dests: impl IntoIterator<Item = &'a Dest>,
    overhead: impl Fn(&Dest) -> u64,
) -> Option<usize> {
    let mut it = dests.into_iter().enumerate();
    let (mut least, mut lw, mut loh) = loop {
        let (i, d) = it.next()?;
        if !d.is_overloaded() && d.weight() > 0 {
            break (i, d.weight(), overhead(d));
        }
    };
    for (i, d) in it {
        if d.is_overloaded() {
            continue;
        }
        let doh = overhead(d);
        if u128::from(loh) * u128::from(d.weight()) > u128::from(doh) * u128::from(lw) {
            least = i;
            lw = d.weight();
            loh = doh;
        }
    }
    Some(least)
}

/// `ip_vs_wlc_schedule`: weighted least connections.
pub fn wlc<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    two_stage(dests, Dest::overhead)
}

/// `ip_vs_sed_schedule`: `(active + 1) / weight`.
pub fn sed<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    two_stage(dests, |d| u64::from(d.active_conns()) + 1)
}

/// `ip_vs_nq_schedule`: the first idle eligible destination, else as `sed`.
pub fn nq<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    let mut least: Option<(usize, u32, u64)> = None;
    for (i, d) in dests.into_iter().enumerate() {
        if d.is_overloaded() || d.weight() == 0 {
            continue;
        }
        let doh = u64::from(d.active_conns()) + 1;
        if d.active_conns() == 0 {
            return Some(i);
        }
        let better = match least {
            None => true,
            Some((_, lw, loh)) => {
                u128::from(loh) * u128::from(d.weight()) > u128::from(doh) * u128::from(lw)
            }
        };
        if better {
            least = Some((i, d.weight(), doh));
        }
    }
    least.map(|(i, _, _)| i)
}

/// `ip_vs_fo_schedule`: the first destination with the highest weight (> 0).
pub fn fo<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    let mut h = None;
    let mut hw = 0;
    for (i, d) in dests.into_iter().enumerate() {
        if !d.is_overloaded() && d.weight() > hw {
            h = Some(i);
            hw = d.weight();
        }
    }
    h
}

/// `ip_vs_ovf_schedule`: the first highest-weight destination whose active
/// count does not exceed its weight.
pub fn ovf<'a>(dests: impl IntoIterator<Item = &'a Dest>) -> Option<usize> {
    let mut h = None;
    let mut hw = 0;
    for (i, d) in dests.into_iter().enumerate() {
        let w = d.weight();
        if d.is_overloaded() || d.active_conns() > w || w == 0 {
            continue;
        }
        if h.is_none() || w > hw {
            h = Some(i);
            hw = w;
        }
    }
    h
}

/// `ip_vs_twos_schedule`: one walk to sum the eligible weights (not
/// OVERLOADed, weight > 0), two draws `get_random_u32_below(total + 1)` from
/// `rng`, and a second walk subtracting each eligible weight from both
/// draws until each has reached 0 or below; then choice 2 if
/// `weight2 * overhead1 > weight1 * overhead2`, else choice 1.
///
/// Products are exact here (the kernel's are `int`), and the total must fit
/// the kernel's `int` (below 2^31), as it does in the kernel.
pub fn twos<'a, I, R>(dests: I, rng: &mut R) -> Option<usize>
where
    I: IntoIterator<Item = &'a Dest>,
    I::IntoIter: Clone,
    R: RandomSource + ?Sized,
{
    let dests = dests.into_iter();
    let eligible = |d: &Dest| !d.is_overloaded() && d.weight() > 0;
    let mut total: u64 = 0;
    let mut any = false;
    for d in dests.clone() {
        if eligible(d) {
            total += u64::from(d.weight());
            any = true;
        }
    }
    if !any {
        return None;
    }
    let ceil = u32::try_from(total + 1).ok()?;
    let mut r1 = i64::from(random_u32_below(rng, ceil));
    let mut r2 = i64::from(random_u32_below(rng, ceil));
    let mut c1: Option<(usize, &Dest)> = None;
    let mut c2: Option<(usize, &Dest)> = None;
    for (i, d) in dests.enumerate() {
        if !eligible(d) {
            continue;
        }
        r1 -= i64::from(d.weight());
        r2 -= i64::from(d.weight());
        if r1 <= 0 && c1.is_none() {
            c1 = Some((i, d));
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some((i, d));
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    let ((i1, d1), (i2, d2)) = (c1?, c2?);
    let lhs = u128::from(d2.weight()) * u128::from(d1.overhead());
    let rhs = u128::from(d1.weight()) * u128::from(d2.overhead());
    Some(if lhs > rhs { i2 } else { i1 })
}
