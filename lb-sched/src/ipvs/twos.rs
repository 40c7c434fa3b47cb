//! `twos` (ip_vs_twos.c): weighted power of two choices.

use crate::rng::RandomSource;
use crate::service::DestList;

/// `ip_vs_twos_schedule`, transcribed. Draws two values from `rng` (first
/// for choice 1, then for choice 2), each reduced modulo `total_weight + 1`.
///
/// Arithmetic is exact (the kernel's `int` sums and products overflow past
/// 2^31; identical below that).
pub(crate) fn pick<R: RandomSource + ?Sized>(list: &DestList<'_>, rng: &mut R) -> Option<u32> {
    let eligible = |slot: u32| {
        let d = list.dest(slot);
        !d.overloaded && d.weight > 0
    };
    let mut total: u64 = 0;
    let mut any = false;
    for slot in list.iter().filter(|&s| eligible(s)) {
        total += u64::from(list.dest(slot).weight);
        any = true;
    }
    if !any {
        return None;
    }
    total += 1;
    let mut r1 = (u64::from(rng.next_u32()) % total) as i64;
    let mut r2 = (u64::from(rng.next_u32()) % total) as i64;
    let mut c1: Option<u32> = None;
    let mut c2: Option<u32> = None;
    for slot in list.iter().filter(|&s| eligible(s)) {
        let w = i64::from(list.dest(slot).weight);
        r1 -= w;
        r2 -= w;
        if r1 <= 0 && c1.is_none() {
            c1 = Some(slot);
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some(slot);
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    // r1, r2 <= total - 1 = sum of weights, so both are always found.
    let (c1, c2) = (c1?, c2?);
    let (d1, d2) = (list.dest(c1), list.dest(c2));
    let lhs = u128::from(d2.weight) * u128::from(d1.overhead());
    let rhs = u128::from(d1.weight) * u128::from(d2.overhead());
    Some(if lhs > rhs { c2 } else { c1 })
}
