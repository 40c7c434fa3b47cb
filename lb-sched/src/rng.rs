//! Randomness as an input.
//!
//! Schedulers that draw random numbers (`twos`, and the beyond-IPVS random
//! algorithms) take a [`RandomSource`] argument instead of reading a global
//! generator, so tests and simulations replay exactly.

/// A source of uniformly distributed random words. `next_u32` stands in for
/// the kernel's `prandom_u32()` / `get_random_u32()` (`twos`); the
/// beyond-IPVS samplers draw `next_u64`. Inject one per thread; nothing in
/// this crate reads a global RNG.
pub trait RandomSource {
    /// The next uniformly distributed 64-bit value.
    fn next_u64(&mut self) -> u64;

    /// The next uniformly distributed 32-bit value: the high half of
    /// [`next_u64`](Self::next_u64).
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (**self).next_u32()
    }
}

/// SplitMix64: a tiny, fast, seedable generator for tests and simulations.
/// Not cryptographic.
///
/// ```
/// use lb_sched::{RandomSource, SplitMix64};
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u32(), b.next_u32());
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Replays a fixed list of values, then returns `u32::MAX` for ever: lets a
/// golden test state exactly what the kernel's `get_random_u32()` returned.
///
/// `u32::MAX` is a word that the kernel's bounded draw
/// (`get_random_u32_below`, which `twos` uses) never rejects, so a script
/// that runs out cannot make a pick draw for ever.
///
/// ```
/// use lb_sched::{RandomSource, Scripted};
/// let mut r = Scripted::new(&[7, 9]);
/// assert_eq!((r.next_u32(), r.next_u32(), r.next_u32()), (7, 9, u32::MAX));
/// ```
#[derive(Debug, Clone)]
pub struct Scripted<'a> {
    values: &'a [u32],
    next: usize,
}

impl<'a> Scripted<'a> {
    /// A source that returns `values` in order.
    #[must_use]
    pub fn new(values: &'a [u32]) -> Self {
        Self { values, next: 0 }
    }
}

impl RandomSource for Scripted<'_> {
    /// The scripted value in the high half, so `next_u32` returns it
    /// exactly; `u64::MAX` once the script has run out.
    fn next_u64(&mut self) -> u64 {
        match self.values.get(self.next) {
            Some(&v) => {
                self.next += 1;
                u64::from(v) << 32
            }
            None => u64::MAX,
        }
    }

    fn next_u32(&mut self) -> u32 {
        let v = self.values.get(self.next).copied().unwrap_or(u32::MAX);
        self.next = self.next.saturating_add(1);
        v
    }
}
