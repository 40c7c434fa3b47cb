//! Weighted random, weighted power-of-two choices (P2C) and HAProxy's
//! `random(<draws>)`, with an injected random source.
//!
//! Candidates are drawn in proportion to weight from an alias table
//! (Walker/Vose, built in integer arithmetic off the hot path), so a draw is
//! one random word, one multiply and two loads, whatever the backend count.
//! The keep-or-alias coin and the final comparison are conditional moves
//! (`std::hint::select_unpredictable`): they are coin flips, and as branches
//! they cost a misprediction on about every other pick (P2C went from ~18 to
//! ~6.5 ns of CPU per pick with that change alone).
//! Among the drawn candidates the least loaded *per unit of weight* wins
//! (`load_a · w_b < load_b · w_a`, cross-multiplied like IPVS `twos`/`wlc`, no
//! floats); ties go to the earlier draw. Draws are independent, so both draws
//! may name the same backend, as in the kernel `twos` scheduler.
//!
//! Load is whatever the caller counts (active connections, the IPVS overhead
//! `active·256 + inactive`, in-flight requests): it is read through a closure
//! so the scheduler holds no counters of its own.

pub use crate::rng::{RandomSource, SplitMix64};

const ONE: u64 = 1 << 32;

/// Weighted sampler over backends (alias method). Weight-0 backends are
/// never drawn.
///
/// ```
/// use lb_sched::p2c::{SplitMix64, WeightedRandom};
/// let pool = WeightedRandom::new(&[("a", 1), ("b", 0), ("c", 3)]);
/// let mut rng = SplitMix64::new(1);
/// let pick = pool.pick(&mut rng).unwrap();
/// assert!(pick == "a" || pick == "c");
/// // HAProxy `random(2)` / P2C: the less loaded (per weight) of two draws.
/// let loads = |d: &&str| if *d == "a" { 0 } else { 10 };
/// assert!(pool.pick_least_loaded(&mut rng, 2, loads).is_some());
/// ```
#[derive(Debug, Clone)]
pub struct WeightedRandom<D> {
    ids: Box<[D]>,
    /// One cache-friendly record per slot.
    slots: Box<[Slot]>,
}

/// Alias slot `i`: keep `i` if the coin is below `prob` (in units of
/// 2^-32), else take `alias`. A slot of probability one has `alias == i`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    prob: u32,
    alias: u32,
    weight: u32,
}

impl<D: Copy> WeightedRandom<D> {
    /// Build from `(backend, weight)` pairs; weight-0 backends are dropped.
    /// At most `u32::MAX` backends.
    #[must_use]
    pub fn new(backends: &[(D, u32)]) -> Self {
        let live: Vec<(D, u32)> = backends.iter().copied().filter(|b| b.1 > 0).collect();
        let n = live.len();
        let total: u128 = live.iter().map(|b| u128::from(b.1)).sum();
        let mut prob = vec![ONE; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        // Vose: scaled_i = w_i · n, compared against the mean `total`.
        let mut scaled: Vec<u128> = live.iter().map(|b| u128::from(b.1) * n as u128).collect();
        let mut small: Vec<usize> = (0..n).filter(|&i| scaled[i] < total).collect();
        let mut large: Vec<usize> = (0..n).filter(|&i| scaled[i] >= total).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            prob[s] = ((scaled[s] << 32) / total) as u64;
            alias[s] = l as u32;
            scaled[l] -= total - scaled[s];
            if scaled[l] < total {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers (rounding) keep probability one: alias to themselves.
        let slots = (0..n)
            .map(|i| Slot {
                prob: u32::try_from(prob[i]).unwrap_or(u32::MAX),
                alias: if prob[i] >= ONE { i as u32 } else { alias[i] },
                weight: live[i].1,
            })
            .collect();
        Self {
            ids: live.iter().map(|b| b.0).collect(),
            slots,
        }
    }

    /// Backends that can be drawn (weight > 0), in input order.
    #[must_use]
    pub fn backends(&self) -> &[D] {
        &self.ids
    }

    /// Number of drawable backends.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no backend has weight > 0.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Draw one backend index with probability `w_i / Σw`.
    #[inline]
    pub fn draw_index<R: RandomSource + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        if self.ids.is_empty() {
            return None;
        }
        Some(self.alias_draw(rng.next_u64()))
    }

    /// The alias draw for one random word (the table is not empty). The
    /// high word picks the slot (32-bit multiply-shift), the low word is the
    /// coin. Keep-or-alias is a coin flip the branch predictor cannot learn,
    /// so it is a conditional move, not a branch.
    #[inline(always)]
    fn alias_draw(&self, r: u64) -> usize {
        let i = (((r >> 32) * self.slots.len() as u64) >> 32) as usize;
        let slot = self.slots[i];
        let keep = ((r & 0xffff_ffff) as u32) < slot.prob;
        std::hint::select_unpredictable(keep, i, slot.alias as usize)
    }

    /// Weighted random pick (HAProxy `random(1)`).
    #[inline]
    pub fn pick<R: RandomSource + ?Sized>(&self, rng: &mut R) -> Option<D> {
        self.draw_index(rng).map(|i| self.ids[i])
    }

    /// Weighted power of two choices: two weighted draws, the lower
    /// `load / weight` wins, ties to the first draw. The same pick as
    /// `pick_least_loaded(rng, 2, load)` (two words from `rng`, in order),
    /// written without a loop or a data-dependent branch.
    #[inline]
    pub fn pick_two<R, L>(&self, rng: &mut R, load: L) -> Option<D>
    where
        R: RandomSource + ?Sized,
        L: FnMut(&D) -> u64,
    {
        if self.ids.is_empty() {
            return None;
        }
        let mut load = load;
        let a = self.alias_draw(rng.next_u64());
        let b = self.alias_draw(rng.next_u64());
        let (da, db) = (self.ids[a], self.ids[b]);
        let (wa, wb) = (self.slots[a].weight, self.slots[b].weight);
        let (la, lb) = (load(&da), load(&db));
        let b_wins = u128::from(lb) * u128::from(wa) < u128::from(la) * u128::from(wb);
        Some(std::hint::select_unpredictable(b_wins, db, da))
    }

    /// HAProxy `random(<draws>)`: `draws` weighted draws (at least one), the
    /// lowest `load / weight` wins, ties to the earliest draw.
    #[inline]
    pub fn pick_least_loaded<R, L>(&self, rng: &mut R, draws: u32, mut load: L) -> Option<D>
    where
        R: RandomSource + ?Sized,
        L: FnMut(&D) -> u64,
    {
        if self.ids.is_empty() {
            return None;
        }
        let best = self.alias_draw(rng.next_u64());
        let (mut best_id, mut best_w) = (self.ids[best], self.slots[best].weight);
        let mut best_load = load(&best_id);
        for _ in 1..draws {
            let c = self.alias_draw(rng.next_u64());
            let (c_id, c_w) = (self.ids[c], self.slots[c].weight);
            let c_load = load(&c_id);
            // c_load / c_w < best_load / best_w, without division.
            let c_wins =
                u128::from(c_load) * u128::from(best_w) < u128::from(best_load) * u128::from(c_w);
            best_id = std::hint::select_unpredictable(c_wins, c_id, best_id);
            best_w = std::hint::select_unpredictable(c_wins, c_w, best_w);
            best_load = std::hint::select_unpredictable(c_wins, c_load, best_load);
        }
        Some(best_id)
    }

    /// The exact probability mass of backend index `i`, in units of
    /// `1 / (len · 2^32)` (for tests and gauges).
    #[must_use]
    pub fn mass(&self, i: usize) -> u64 {
        (0..self.ids.len())
            .map(|j| {
                let slot = self.slots[j];
                if slot.alias as usize == j {
                    return if j == i { ONE } else { 0 };
                }
                let mut m = 0;
                if j == i {
                    m += u64::from(slot.prob);
                }
                if slot.alias as usize == i {
                    m += ONE - u64::from(slot.prob);
                }
                m
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Replays a fixed list of words.
    struct Script(Vec<u64>, usize);
    impl RandomSource for Script {
        fn next_u64(&mut self) -> u64 {
            let v = self.0[self.1 % self.0.len()];
            self.1 += 1;
            v
        }
    }

    #[test]
    fn splitmix_golden() {
        // First outputs for seed 0 (reference values of SplitMix64).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn empty_and_zero_weights() {
        let p = WeightedRandom::<u32>::new(&[(1, 0), (2, 0)]);
        assert!(p.is_empty());
        assert_eq!(p.pick(&mut SplitMix64::new(1)), None);
        assert_eq!(p.pick_two(&mut SplitMix64::new(1), |_| 0), None);
    }

    #[test]
    fn p2c_prefers_lower_load_per_weight() {
        // Two backends, equal weights: scripted draws land on 0 then 1.
        let p = WeightedRandom::new(&[(10u32, 1), (20, 1)]);
        let mut s = Script(vec![0, u64::MAX], 0);
        assert_eq!(
            p.pick_two(&mut s, |&d| if d == 10 { 5 } else { 3 }),
            Some(20)
        );
        let mut s = Script(vec![0, u64::MAX], 0);
        assert_eq!(
            p.pick_two(&mut s, |&d| if d == 10 { 3 } else { 5 }),
            Some(10)
        );
        // Tie goes to the first draw.
        let mut s = Script(vec![u64::MAX, 0], 0);
        assert_eq!(p.pick_two(&mut s, |_| 7), Some(20));
        // Weighted: 6 conns on weight 3 (2/unit) beats 3 conns on weight 1.
        let p = WeightedRandom::new(&[(1u32, 1), (2, 3)]);
        // Word 0 draws slot 0 with coin 0 (backend 1); the all-ones word draws
        // slot 1, which has no alias (backend 2).
        let (i, j) = (0u64, u64::MAX);
        assert_eq!(p.draw_index(&mut Script(vec![i], 0)), Some(0));
        assert_eq!(p.draw_index(&mut Script(vec![j], 0)), Some(1));
        let mut s = Script(vec![i, j], 0);
        assert_eq!(p.pick_two(&mut s, |&d| if d == 1 { 3 } else { 6 }), Some(2));
        let mut s = Script(vec![i, j], 0);
        assert_eq!(p.pick_two(&mut s, |&d| if d == 1 { 2 } else { 7 }), Some(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Exact alias masses match w_i / Σw (reference: the weights) to
        /// within the integer rounding of one unit per slot.
        #[test]
        fn alias_mass_is_proportional(ws in prop::collection::vec(0u32..1000, 1..50)) {
            let items: Vec<(usize, u32)> = ws.iter().copied().enumerate().collect();
            let p = WeightedRandom::new(&items);
            let live: Vec<u32> = ws.iter().copied().filter(|&w| w > 0).collect();
            prop_assert_eq!(p.len(), live.len());
            let n = live.len() as u128;
            let total: u128 = live.iter().map(|&w| u128::from(w)).sum();
            let mut sum = 0u128;
            for (i, &w) in live.iter().enumerate() {
                let got = u128::from(p.mass(i));
                sum += got;
                let want = u128::from(w) * n * u128::from(ONE) / total.max(1);
                prop_assert!(got.abs_diff(want) <= n + 1, "i={} got={} want={}", i, got, want);
            }
            if !live.is_empty() {
                prop_assert_eq!(sum, n * u128::from(ONE));
            }
        }

        /// P2C / random(N) picks exactly what a naive model picks from the
        /// same words: each word drawn with the textbook alias step (slot
        /// `⌊hi·n / 2^32⌋`, keep it if the low word is below its probability,
        /// else its alias), then min load/weight, earliest on ties. Weights
        /// and loads span the full ranges, so the cross products need 96 bits.
        #[test]
        fn least_loaded_matches_model(
            ws in prop::collection::vec(
                prop_oneof![1u32..10, 1u32..=u32::MAX],
                1..20,
            ),
            loads in prop::collection::vec(prop_oneof![0u64..50, any::<u64>()], 20),
            draws in 1u32..5,
            seed in any::<u64>(),
        ) {
            let items: Vec<(usize, u32)> = ws.iter().copied().enumerate().collect();
            let p = WeightedRandom::new(&items);
            let mut rng = SplitMix64::new(seed);
            let got = p.pick_least_loaded(&mut rng, draws, |&d| loads[d]);
            let mut rng = SplitMix64::new(seed);
            let drawn: Vec<usize> = (0..draws)
                .map(|_| {
                    let r = rng.next_u64();
                    let i = (((r >> 32) * ws.len() as u64) >> 32) as usize;
                    if ((r & 0xffff_ffff) as u32) < p.slots[i].prob {
                        i
                    } else {
                        p.slots[i].alias as usize
                    }
                })
                .collect();
            let mut rng = SplitMix64::new(seed);
            for &d in &drawn {
                prop_assert_eq!(p.draw_index(&mut rng), Some(d));
            }
            let mut best = drawn[0];
            for &c in &drawn[1..] {
                // Exact rational comparison loads[c]/ws[c] < loads[best]/ws[best].
                if u128::from(loads[c]) * u128::from(ws[best])
                    < u128::from(loads[best]) * u128::from(ws[c])
                {
                    best = c;
                }
            }
            prop_assert_eq!(got, Some(best));
            if draws == 2 {
                let mut rng = SplitMix64::new(seed);
                prop_assert_eq!(p.pick_two(&mut rng, |&d| loads[d]), got);
            }
        }
    }
}
