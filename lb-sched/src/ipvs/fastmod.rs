//! `a % d` for 32-bit `a` and `d` by two multiplications instead of a
//! division, for divisors that change rarely (a table size, a weight sum)
//! while the pick computes a remainder each time.
//!
//! Lemire, Kaser and Kurz, "Faster remainder by direct computation" (2019):
//! with the 64-bit constant `c = ceil(2^64 / d)`, `a % d` is the high word of
//! `(c * a mod 2^64) * d`, exactly, for every 32-bit `a` and `d >= 1`. So the
//! kernel's `%` is reproduced bit for bit.

/// A divisor with its precomputed constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastMod {
    d: u32,
    magic: u64,
}

impl FastMod {
    /// Divisor `d >= 1` (0 is treated as 1, so `rem` answers 0).
    pub(crate) fn new(d: u32) -> Self {
        let d = d.max(1);
        Self {
            d,
            magic: (u64::MAX / u64::from(d)).wrapping_add(1),
        }
    }

    /// The divisor.
    pub(crate) fn divisor(self) -> u32 {
        self.d
    }

    /// `a % d`.
    #[inline]
    pub(crate) fn rem(self, a: u32) -> u32 {
        let low = self.magic.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        for d in [
            1u32,
            2,
            3,
            251,
            4093,
            131_071,
            1 << 31,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let f = FastMod::new(d);
            for a in [0u32, 1, d - 1, d, d.wrapping_add(1), u32::MAX - 1, u32::MAX] {
                assert_eq!(f.rem(a), a % d, "{a} % {d}");
            }
        }
        assert_eq!(FastMod::new(0).rem(12345), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The reference is `%`.
        #[test]
        fn rem_is_remainder(a in any::<u32>(), d in 1u32..) {
            prop_assert_eq!(FastMod::new(d).rem(a), a % d);
            let small = d % 5000 + 1;
            prop_assert_eq!(FastMod::new(small).rem(a), a % small);
        }
    }
}
