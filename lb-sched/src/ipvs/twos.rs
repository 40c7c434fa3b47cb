//! `twos` (ip_vs_twos.c): weighted power of two choices.

use crate::ipvs::sumtree::SumTree;
use crate::rng::RandomSource;
use crate::service::DestList;

/// `twos` keeps no kernel state; the sum tree only replaces its list walks.
#[derive(Debug, Clone)]
pub(crate) struct Twos {
    pub(crate) tree: SumTree,
}

impl Twos {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        Self {
            tree: SumTree::new(list),
        }
    }

    /// `ip_vs_twos_schedule`. Draws `r1` then `r2` from `rng`, each with
    /// the kernel's `get_random_u32_below(total_weight + 1)`.
    ///
    /// The kernel walks the eligible destinations subtracting weights and
    /// takes the first where `r <= 0`: the first at which the running sum
    /// reaches `r`, or the first eligible one when `r == 0`, i.e. where the
    /// sum reaches `max(r, 1)`. Arithmetic is exact (the kernel's `int` sums
    /// and products overflow past 2^31; identical below that).
    #[inline]
    pub(crate) fn pick<R: RandomSource + ?Sized>(
        &self,
        list: &DestList<'_>,
        rng: &mut R,
    ) -> Option<u32> {
        let sum = self.tree.total();
        if sum == 0 {
            return None;
        }
        let (r1, r2) = match u32::try_from(sum + 1) {
            Ok(ceil) => (
                u64::from(random_u32_below(rng, ceil)),
                u64::from(random_u32_below(rng, ceil)),
            ),
            // Past the kernel's int range: the same method on 64-bit words.
            Err(_) => (
                random_u64_below(rng, sum + 1),
                random_u64_below(rng, sum + 1),
            ),
        };
        let (i1, i2) = self.tree.find2(r1.max(1), r2.max(1));
        let (d1, d2) = (self.tree.leaf(i1), self.tree.leaf(i2));
        // if (choice2 && (weight2 * overhead1) > (weight1 * overhead2))
        //         choice1 = choice2;
        let lhs = u128::from(d2.weight) * u128::from(d1.overhead);
        let rhs = u128::from(d1.weight) * u128::from(d2.overhead);
        Some(list.order[if lhs > rhs { i2 } else { i1 }])
    }
}

/// `__get_random_u32_below(ceil)` (drivers/char/random.c), with `rng`
/// standing in for `get_random_u32()`: a value in `0..ceil` from the high
/// half of `ceil * rand`, drawing again while the low half falls below
/// `2^32 % ceil` (so every value is equally likely). Almost always one
/// draw; a second one has probability below `ceil / 2^32`.
///
/// This is not `rand % ceil`: the same words give other values, so a
/// scripted `twos` pick only matches the kernel through this function.
///
/// ```text
/// get_random_u32_below(5) of 0x3333_3333 = (5 * 0x3333_3333) >> 32 = 0
/// get_random_u32_below(5) of 0xCCCC_CCCD = (5 * 0xCCCC_CCCD) >> 32 = 4
/// ```
#[inline]
pub(crate) fn random_u32_below<R: RandomSource + ?Sized>(rng: &mut R, ceil: u32) -> u32 {
    let rand = rng.next_u32();
    if ceil == 0 {
        return rand;
    }
    let mut mult = u64::from(ceil) * u64::from(rand);
    if (mult as u32) < ceil {
        let bound = ceil.wrapping_neg() % ceil;
        while (mult as u32) < bound {
            mult = u64::from(ceil) * u64::from(rng.next_u32());
        }
    }
    (mult >> 32) as u32
}

/// `__get_random_u64_below(ceil)` for `ceil > u32::MAX` (newer kernels
/// have it; `twos` only reaches it with total weights no kernel's `int`
/// holds): the same multiply-and-reject on 64-bit words.
fn random_u64_below<R: RandomSource + ?Sized>(rng: &mut R, ceil: u64) -> u64 {
    let mut mult = u128::from(ceil) * u128::from(rng.next_u64());
    if (mult as u64) < ceil {
        let bound = ceil.wrapping_neg() % ceil;
        while (mult as u64) < bound {
            mult = u128::from(ceil) * u128::from(rng.next_u64());
        }
    }
    (mult >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Scripted;
    use proptest::prelude::*;

    #[test]
    fn below_is_multiply_shift_not_modulo() {
        let below = |ceil, words: &[u32]| random_u32_below(&mut Scripted::new(words), ceil);
        assert_eq!(below(5, &[0x3333_3333]), 0);
        assert_eq!(below(5, &[0xCCCC_CCCD]), 4);
        assert_eq!(below(5, &[10]), 0, "10 % 5 would also be 0 ...");
        assert_eq!(below(5, &[0xFFFF_FFFF]), 4, "... but u32::MAX % 5 is 0");
        // 2^32 % 3 = 1: the low half of 3 * 0 is 0 < 1, so 0 is rejected
        // and the next word decides.
        assert_eq!(below(3, &[0, 0x8000_0000]), 1);
        // ceil 0: the word itself.
        assert_eq!(below(0, &[77]), 77);
        // A power of two never rejects: the low half is a multiple of ceil.
        assert_eq!(below(4, &[0, 0xFFFF_FFFF]), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against the kernel's definition written out with 64-bit
        /// arithmetic: accept the first word whose `ceil * w mod 2^32` is
        /// at least `2^32 mod ceil`, answer `ceil * w / 2^32`. Uniform:
        /// each value has exactly `floor(2^32 / ceil)` accepted words.
        /// `Scripted` yields `u32::MAX` once the words run out, which is
        /// never rejected, so inputs whose every word is rejected run too.
        #[test]
        fn below_matches_its_definition(ceil in 1u32.., words in proptest::collection::vec(any::<u32>(), 1..4)) {
            let threshold = (1u64 << 32) % u64::from(ceil);
            let want = words
                .iter()
                .chain([&u32::MAX])
                .map(|&w| u64::from(ceil) * u64::from(w))
                .find(|m| m % (1 << 32) >= threshold)
                .map(|m| (m >> 32) as u32);
            prop_assert!(want.is_some(), "u32::MAX is never rejected");
            let got = random_u32_below(&mut Scripted::new(&words), ceil);
            prop_assert_eq!(Some(got), want);
            prop_assert!(got < ceil);
        }

        #[test]
        fn below_u64_stays_below(ceil in (1u64 << 32)..,  w in any::<u64>()) {
            let mut r = crate::rng::SplitMix64::new(w);
            prop_assert!(random_u64_below(&mut r, ceil) < ceil);
        }
    }
}
