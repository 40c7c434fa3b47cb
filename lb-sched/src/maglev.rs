//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI '16, §3.4).
//!
//! Each backend gets a permutation of the `M` table slots from
//! `offset = h1(name) mod M` and `skip = h2(name) mod (M-1) + 1` (`M` prime,
//! so every `skip` generates the whole table). The table is filled in turns:
//! on its turn a backend claims the next free slot of its permutation. A
//! lookup is one keyed hash and one index, with no allocation.
//!
//! # Weighting
//!
//! Weights use Katran's `MaglevHashV2` credit scheme (facebookincubator/katran
//! `katran/lib/MaglevHashV2.cpp`; no requirement that weights sum to `M`): in
//! every round each backend adds its weight to a credit, and takes one turn
//! whenever the credit reaches the largest weight (then pays the largest
//! weight back). A backend of weight `w` therefore claims `w / w_max` slots
//! per round, i.e. a share of `w / Σw` of the table to within two slots.
//! Backends of weight 0 get no slots. Unlike the kernel `mh` scheduler (which
//! keeps a quiesced dest's slots via `last_weight`), a quiesced backend should
//! keep its weight here and be filtered with [`MaglevTable::get_fallback`].
//! Build cost is `O(M log M)` permutation steps, plus, for unequal weights,
//! `w_max · N` credit steps (one period of the turn order, which repeats;
//! at most `M` rounds).
//! The last `√M`-or-so claims, where walking a permutation to the next free
//! slot would take `M / free` steps, instead compute each free slot's step
//! number along the permutation (`(slot − pos) · skip⁻¹ mod M`) and take the
//! smallest: the same slot, found in `free` steps.
//!
//! # Agreement
//!
//! `h1`/`h2` are the two halves of a 128-bit SipHash-1-3 of the backend name
//! under a key derived from the builder's [`HashKey`], and lookups reduce a
//! 64-bit flow hash with a multiply-shift, so directors that use the same key,
//! `M`, backend names and weights build identical tables and agree on every pick.
//!
//! # Updates
//!
//! Tables are immutable; rebuild with [`MaglevBuilder::build`] off the hot path
//! and publish with [`crate::swap::Swappable`].

use crate::hashkey::{HashKey, fastrange};

/// The paper's default table size (§5.3); prime.
pub const DEFAULT_TABLE_SIZE: u32 = 65537;

/// Errors from [`MaglevBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaglevError {
    /// The table size must be a prime ≥ 2 (else some skips do not generate the table).
    #[error("maglev table size {0} is not a prime >= 2")]
    NotPrime(u32),
    /// More backends with non-zero weight than table slots.
    #[error("{backends} weighted backends do not fit a maglev table of {size} slots")]
    TooManyBackends {
        /// Backends with weight > 0.
        backends: usize,
        /// Table size `M`.
        size: u32,
    },
}

#[derive(Debug, Clone)]
struct Candidate<D> {
    id: D,
    h1: u64,
    h2: u64,
    weight: u32,
}

/// Collects backends and builds a [`MaglevTable`].
///
/// ```
/// use lb_sched::hashkey::HashKey;
/// use lb_sched::maglev::MaglevBuilder;
///
/// let mut b = MaglevBuilder::new(HashKey::new(7, 11));
/// b.backend(0u32, b"10.0.0.1:80", 1).backend(1, b"10.0.0.2:80", 3);
/// let table = b.build()?;
/// let pick = table.get_bytes(b"198.51.100.7:40000->192.0.2.1:80/tcp");
/// assert!(matches!(pick, Some(0 | 1)));
/// // Backend 1 has three times the weight, so three times the slots (±2).
/// let shares = table.shares();
/// assert!((shares[1] as i64 - 3 * shares[0] as i64).abs() <= 8);
/// # Ok::<(), lb_sched::maglev::MaglevError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MaglevBuilder<D> {
    key: HashKey,
    size: u32,
    backends: Vec<Candidate<D>>,
}

impl<D: Copy> MaglevBuilder<D> {
    /// A builder with table size [`DEFAULT_TABLE_SIZE`] and the given key.
    pub fn new(key: HashKey) -> Self {
        Self {
            key,
            size: DEFAULT_TABLE_SIZE,
            backends: Vec::new(),
        }
    }

    /// Set the table size `M` (a prime; the paper advises `M > 100·N` for ≤ 1 % imbalance).
    pub fn table_size(&mut self, size: u32) -> &mut Self {
        self.size = size;
        self
    }

    /// Add a backend identified by `id`, placed by `name` (e.g. `"10.0.0.1:80"`;
    /// must be the same on every director), with a relative `weight`.
    pub fn backend(&mut self, id: D, name: &[u8], weight: u32) -> &mut Self {
        let (h1, h2) = self
            .key
            .derive(b"lb-sched maglev permutation")
            .hash128(name);
        self.backends.push(Candidate { id, h1, h2, weight });
        self
    }

    /// Remove every backend.
    pub fn clear(&mut self) -> &mut Self {
        self.backends.clear();
        self
    }

    /// Populate the table (off the hot path).
    pub fn build(&self) -> Result<MaglevTable<D>, MaglevError> {
        let m = self.size;
        if !is_prime(m) {
            return Err(MaglevError::NotPrime(m));
        }
        let live: Vec<&Candidate<D>> = self.backends.iter().filter(|c| c.weight > 0).collect();
        if live.len() > m as usize {
            return Err(MaglevError::TooManyBackends {
                backends: live.len(),
                size: m,
            });
        }
        let ids: Vec<D> = live.iter().map(|c| c.id).collect();
        let params: Vec<(u64, u64, u32)> = live.iter().map(|c| (c.h1, c.h2, c.weight)).collect();
        let (slots, shares) = populate(m, &params, &ids);
        let slots = slots.into_boxed_slice();
        Ok(MaglevTable {
            key: self.key,
            slots,
            ids: ids.into_boxed_slice(),
            shares,
        })
    }
}

/// `offset` and `skip` of one backend for table size `m`.
fn permutation(m: u32, h1: u64, h2: u64) -> (u64, u64) {
    let m = u64::from(m);
    let offset = h1 % m;
    let skip = if m > 1 { h2 % (m - 1) + 1 } else { 1 };
    (offset, skip)
}

/// Free slots left when the fill stops probing permutations and scans the
/// free slots instead. Probing costs about `M / free` steps per claim, a
/// scan `free` modular products, so they cross near `sqrt(M)`; about half
/// of all probes of a 65537-slot build fall below 256 free slots. Any value
/// gives the same table.
const SCAN_BELOW: u32 = 256;

/// Fill state of one backend.
#[derive(Debug, Clone, Copy)]
struct Perm {
    /// Next permutation position to try (every earlier one is taken).
    pos: u64,
    skip: u64,
    /// `skip⁻¹ mod M`, 0 until the scan phase needs it.
    inv: u64,
}

/// Fill a table of `m` slots with backend ids (Katran V2 credit turns) and
/// count each backend's slots. `m` is prime, `backends.len() == ids.len() <=
/// m`, all weights > 0.
fn populate<D: Copy>(m: u32, backends: &[(u64, u64, u32)], ids: &[D]) -> (Vec<D>, Vec<u32>) {
    let n = backends.len();
    let Some(&first) = ids.first() else {
        return (Vec::new(), Vec::new());
    };
    let mut table = vec![first; m as usize];
    let mut shares = vec![0u32; n];
    if n == 1 {
        shares[0] = m;
        return (table, shares);
    }
    let mut perms: Vec<Perm> = backends
        .iter()
        .map(|&(h1, h2, _)| {
            let (pos, skip) = permutation(m, h1, h2);
            Perm { pos, skip, inv: 0 }
        })
        .collect();
    let turns = turn_order(m, backends);
    let mut fill = Fill::new(m);
    // Free slots; kept here, in a register, rather than in `fill`.
    let mut free = m;
    loop {
        for &i in &turns {
            let i = i as usize;
            let p = fill.claim(&mut perms[i], free);
            table[p] = ids[i];
            shares[i] += 1;
            free -= 1;
            if free == 0 {
                return (table, shares);
            }
        }
    }
}

/// The order in which backends take turns, as one period to be repeated
/// (or at least `m` turns, whichever is shorter). After `w_max` credit
/// rounds every credit is back to 0 (`w_max · w_i` added, `w_max` paid per
/// turn), so the credit scheme repeats with that period, `Σw` turns long;
/// computing it once costs `w_max · n` credit steps instead of one per
/// backend per round of the whole fill. Each round gives at least one turn
/// (to a backend of weight `w_max`), so building stops within `m` rounds.
fn turn_order(m: u32, backends: &[(u64, u64, u32)]) -> Vec<u32> {
    let n = backends.len() as u32;
    let w_max = backends.iter().map(|b| b.2).max().unwrap_or(1);
    if backends.iter().all(|b| b.2 == w_max) {
        return (0..n).collect();
    }
    let total: u64 = backends.iter().map(|b| u64::from(b.2)).sum();
    let mut turns = Vec::with_capacity(total.min(u64::from(m)) as usize);
    let mut credit = vec![0u32; backends.len()];
    for _ in 0..w_max {
        for (i, (c, b)) in credit.iter_mut().zip(backends).enumerate() {
            // c < w_max, so c + w >= w_max is c >= w_max - w (no overflow).
            if *c >= w_max - b.2 {
                *c -= w_max - b.2;
                turns.push(i as u32);
            } else {
                *c += b.2;
            }
        }
        if turns.len() >= m as usize {
            break;
        }
    }
    turns
}

/// Slot occupancy during a build: a bitmap (8 KiB for M = 65537, L1
/// resident) while many slots are free, then the list of free slots.
struct Fill {
    m: u64,
    taken: Vec<u64>,
    /// The free slots once at most `SCAN_BELOW` are left (empty before).
    free: Vec<u32>,
    modulus: Barrett,
}

impl Fill {
    fn new(m: u32) -> Self {
        Self {
            m: u64::from(m),
            taken: vec![0u64; (m as usize).div_ceil(64)],
            free: Vec::new(),
            modulus: Barrett::new(u64::from(m)),
        }
    }

    /// Claim the first free slot of `perm`'s permutation from `perm.pos` on,
    /// and move `perm.pos` past it; `free` slots (at least one) are left.
    #[inline]
    fn claim(&mut self, perm: &mut Perm, free: u32) -> usize {
        let m = self.m;
        if free > SCAN_BELOW {
            let (mut p, s) = (perm.pos, perm.skip);
            while self.taken[(p >> 6) as usize] & (1 << (p & 63)) != 0 {
                p += s;
                if p >= m {
                    p -= m;
                }
            }
            self.taken[(p >> 6) as usize] |= 1 << (p & 63);
            perm.pos = if p + s >= m { p + s - m } else { p + s };
            return p as usize;
        }
        if self.free.is_empty() {
            // First claim of the scan phase: list what is left.
            self.free.extend(
                (0..self.m as u32)
                    .filter(|&q| self.taken[(q >> 6) as usize] & (1 << (q & 63)) == 0),
            );
        }
        if perm.inv == 0 {
            perm.inv = mod_inverse(perm.skip, m);
        }
        // Slot q is step j = (q - pos) / skip (mod M) along the permutation
        // from pos; every step before the smallest j over free q is taken.
        let (pos, inv) = (perm.pos, perm.inv);
        let mut best = (u64::MAX, 0usize);
        for (k, &q) in self.free.iter().enumerate() {
            let q = u64::from(q);
            let d = if q >= pos { q - pos } else { q + m - pos };
            let j = self.modulus.reduce(d * inv);
            if j < best.0 {
                best = (j, k);
            }
        }
        let p = u64::from(self.free.swap_remove(best.1));
        perm.pos = if p + perm.skip >= m {
            p + perm.skip - m
        } else {
            p + perm.skip
        };
        p as usize
    }
}

/// `x mod m` for `x < m^2` by multiplication (Barrett reduction).
#[derive(Debug, Clone, Copy)]
struct Barrett {
    m: u64,
    /// `floor(2^64 / m)` (up to one short of it for m = 2^k, harmless).
    c: u64,
}

impl Barrett {
    fn new(m: u64) -> Self {
        Self { m, c: u64::MAX / m }
    }

    /// The quotient estimate `floor(x · c / 2^64)` is at most one short of
    /// `floor(x / m)` for any `x < 2^64`, so one correction step suffices.
    #[inline]
    fn reduce(self, x: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.c)) >> 64) as u64;
        let r = x - q * self.m;
        if r >= self.m { r - self.m } else { r }
    }
}

/// `a⁻¹ mod m` for prime `m` and `0 < a < m` (extended Euclid).
fn mod_inverse(a: u64, m: u64) -> u64 {
    let (mut r0, mut r1) = (m as i64, a as i64);
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(m as i64) as u64
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// An immutable, populated Maglev lookup table.
#[derive(Debug, Clone)]
pub struct MaglevTable<D> {
    key: HashKey,
    slots: Box<[D]>,
    ids: Box<[D]>,
    shares: Vec<u32>,
}

impl<D: Copy> MaglevTable<D> {
    /// Table size `M`, or 0 when there is no backend.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no backend has weight > 0 (every lookup returns `None`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The backends in the table, in builder order (weight-0 ones omitted).
    #[must_use]
    pub fn backends(&self) -> &[D] {
        &self.ids
    }

    /// Slots owned by each backend of [`Self::backends`] (Envoy's
    /// min/max-entries-per-host gauges).
    #[must_use]
    pub fn shares(&self) -> &[u32] {
        &self.shares
    }

    /// The backend for a 64-bit flow hash (any uniform hash; directors must
    /// use the same one). One multiply, one load.
    #[inline]
    #[must_use]
    pub fn get(&self, hash: u64) -> Option<D> {
        let i = fastrange(hash, self.slots.len() as u64) as usize;
        self.slots.get(i).copied()
    }

    /// The backend for a flow key (e.g. the packed 5-tuple), hashed with the
    /// table's key.
    #[inline]
    #[must_use]
    pub fn get_bytes(&self, flow: &[u8]) -> Option<D> {
        self.get(self.key.hash(flow))
    }

    /// Like [`Self::get`], but if the owner is rejected by `usable` (down or
    /// quiesced) walk the following slots to the first usable backend, like
    /// the kernel's `mh-fallback`. `None` if none is usable.
    #[must_use]
    pub fn get_fallback(&self, hash: u64, mut usable: impl FnMut(&D) -> bool) -> Option<D> {
        let m = self.slots.len();
        let start = fastrange(hash, m as u64) as usize;
        (0..m)
            .map(|k| self.slots[(start + k) % m])
            .find(|d| usable(d))
    }

    /// Number of slots whose owner differs between two tables of equal size
    /// (the fraction of flows a rebuild moves is `diff / M`).
    #[must_use]
    pub fn diff(&self, other: &Self) -> usize
    where
        D: PartialEq,
    {
        self.slots
            .iter()
            .zip(other.slots.iter())
            .filter(|(a, b)| a != b)
            .count()
            + self.slots.len().abs_diff(other.slots.len())
    }

    /// The raw slot array (index `i` serves hashes with `fastrange(hash, M) == i`).
    #[must_use]
    pub fn slots(&self) -> &[D] {
        &self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: HashKey = HashKey::new(0x5eed, 0xfeed);

    /// The paper's algorithm, literally: `(offset + j·skip) mod M`, an
    /// `Option` table, Katran V2 credit turns.
    fn naive(m: u32, backends: &[(u64, u64, u32)]) -> Vec<Option<usize>> {
        let n = backends.len();
        let mut table = vec![None; m as usize];
        if n == 0 {
            return table;
        }
        let w_max = backends.iter().map(|b| b.2).max().unwrap();
        let mut next = vec![0u64; n];
        let mut credit = vec![0u32; n];
        let mut filled = 0;
        loop {
            for i in 0..n {
                credit[i] += backends[i].2;
                if credit[i] < w_max {
                    continue;
                }
                credit[i] -= w_max;
                let (off, skip) = permutation(m, backends[i].0, backends[i].1);
                let mut cur = (off + next[i] * skip) % u64::from(m);
                while table[cur as usize].is_some() {
                    next[i] += 1;
                    cur = (off + next[i] * skip) % u64::from(m);
                }
                table[cur as usize] = Some(i);
                next[i] += 1;
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }

    fn builder(n: u32, weight: impl Fn(u32) -> u32, m: u32) -> MaglevBuilder<u32> {
        let mut b = MaglevBuilder::new(KEY);
        b.table_size(m);
        for i in 0..n {
            b.backend(
                i,
                format!("10.0.{}.{}:80", i / 256, i % 256).as_bytes(),
                weight(i),
            );
        }
        b
    }

    #[test]
    fn paper_example_shape() {
        // §3.4 worked example size: M = 7, three backends, every backend gets
        // ⌊M/N⌋ or ⌈M/N⌉ slots.
        let t = builder(3, |_| 1, 7).build().unwrap();
        let mut s = t.shares().to_vec();
        s.sort_unstable();
        assert_eq!(s, vec![2, 2, 3]);
    }

    #[test]
    fn equal_weights_get_floor_or_ceil_of_m_over_n() {
        for n in [1u32, 2, 10, 100, 1000] {
            let t = builder(n, |_| 1, DEFAULT_TABLE_SIZE).build().unwrap();
            let lo = DEFAULT_TABLE_SIZE / n;
            let hi = DEFAULT_TABLE_SIZE.div_ceil(n);
            assert!(t.shares().iter().all(|&s| s == lo || s == hi), "n={n}");
            assert_eq!(t.shares().iter().sum::<u32>(), DEFAULT_TABLE_SIZE);
        }
    }

    #[test]
    fn weighted_shares_are_proportional() {
        let t = builder(100, |i| 1 + i % 4, DEFAULT_TABLE_SIZE)
            .build()
            .unwrap();
        let total: u32 = (0..100).map(|i| 1 + i % 4).sum();
        for (i, &s) in t.shares().iter().enumerate() {
            let w = 1 + i as u32 % 4;
            let ideal = f64::from(DEFAULT_TABLE_SIZE) * f64::from(w) / f64::from(total);
            assert!(
                (f64::from(s) - ideal).abs() <= 2.0,
                "backend {i}: {s} vs {ideal}"
            );
        }
    }

    #[test]
    fn weight_zero_backends_get_nothing() {
        let t = builder(5, |i| if i == 2 { 0 } else { 1 }, 251)
            .build()
            .unwrap();
        assert_eq!(t.backends(), &[0, 1, 3, 4]);
        assert!(t.slots().iter().all(|&d| d != 2));
    }

    #[test]
    fn errors() {
        assert_eq!(
            builder(3, |_| 1, 65536).build().unwrap_err(),
            MaglevError::NotPrime(65536)
        );
        assert_eq!(
            builder(3, |_| 1, 1).build().unwrap_err(),
            MaglevError::NotPrime(1)
        );
        assert_eq!(
            builder(8, |_| 1, 7).build().unwrap_err(),
            MaglevError::TooManyBackends {
                backends: 8,
                size: 7
            }
        );
        let empty = builder(0, |_| 1, 7).build().unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.get(42), None);
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        // Removing backend k must move every slot it owned (M/N) and as few
        // others as possible.
        for (n, m) in [
            (10u32, DEFAULT_TABLE_SIZE),
            (100, DEFAULT_TABLE_SIZE),
            (1000, DEFAULT_TABLE_SIZE),
            (1000, 655_373),
        ] {
            let full = builder(n, |_| 1, m).build().unwrap();
            let mut b = MaglevBuilder::new(KEY);
            b.table_size(m);
            for i in (0..n).filter(|&i| i != n / 2) {
                b.backend(i, format!("10.0.{}.{}:80", i / 256, i % 256).as_bytes(), 1);
            }
            let less = b.build().unwrap();
            let moved = full.diff(&less) as f64 / f64::from(m);
            let minimal = 1.0 / f64::from(n);
            assert!(moved >= minimal * 0.99, "n={n} moved {moved}");
            // Maglev trades disruption for balance: the cascade of re-claimed
            // slots grows with N/M (Envoy: ~2x ring hash at 100 hosts). Measured
            // with this key: 1.02x (N=10), 1.53x (N=100), 6.5x (N=1000,
            // M=65537), 4.3x (N=1000, M=655373).
            let bound = if n <= 100 { 2.0 } else { 8.0 };
            assert!(
                moved <= minimal * bound,
                "n={n} m={m} moved {moved} > {bound} x {minimal}"
            );
        }
    }

    #[test]
    fn same_key_agrees_other_key_differs() {
        let a = builder(50, |i| 1 + i % 3, 4093).build().unwrap();
        let b = builder(50, |i| 1 + i % 3, 4093).build().unwrap();
        assert_eq!(a.diff(&b), 0);
        let mut c = MaglevBuilder::new(HashKey::new(1, 1));
        c.table_size(4093);
        for i in 0..50u32 {
            c.backend(
                i,
                format!("10.0.{}.{}:80", i / 256, i % 256).as_bytes(),
                1 + i % 3,
            );
        }
        assert!(a.diff(&c.build().unwrap()) > 1000);
    }

    #[test]
    fn fallback_skips_unusable() {
        let t = builder(3, |_| 1, 7).build().unwrap();
        for h in [0u64, 1 << 62, u64::MAX] {
            let first = t.get(h).unwrap();
            assert_eq!(t.get_fallback(h, |_| true), Some(first));
            let other = t.get_fallback(h, |&d| d != first).unwrap();
            assert_ne!(other, first);
        }
        assert_eq!(t.get_fallback(5, |_| false), None);
    }

    fn perm_key_params(key: HashKey, names: &[Vec<u8>], ws: &[u32]) -> Vec<(u64, u64, u32)> {
        let perm_key = key.derive(b"lb-sched maglev permutation");
        names
            .iter()
            .zip(ws)
            .map(|(name, &w)| {
                let (h1, h2) = perm_key.hash128(name);
                (h1, h2, w)
            })
            .collect()
    }

    /// The benchmark's table (M = 65537, 1000 backends of weights 1..4) is
    /// slot for slot the paper's algorithm: both fill phases (probing, then
    /// the free-slot scan) at full size.
    #[test]
    fn full_size_weighted_table_matches_naive() {
        let n = 1000u32;
        let w = |i: u32| 1 + i % 4;
        let t = builder(n, w, DEFAULT_TABLE_SIZE).build().unwrap();
        let names: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256).into_bytes())
            .collect();
        let ws: Vec<u32> = (0..n).map(w).collect();
        let want = naive(DEFAULT_TABLE_SIZE, &perm_key_params(KEY, &names, &ws));
        let got: Vec<Option<usize>> = t.slots().iter().map(|&d| Some(d as usize)).collect();
        assert!(got == want, "tables differ");
    }

    #[test]
    fn inverse_and_reduction_edges() {
        for m in [2u64, 3, 7, 65537, 4_294_967_291] {
            let f = Barrett::new(m);
            for a in [1, 2, m / 2, m - 2, m - 1]
                .into_iter()
                .filter(|&a| a >= 1 && a < m)
            {
                let inv = mod_inverse(a, m);
                assert!(inv < m);
                assert_eq!(
                    u128::from(a) * u128::from(inv) % u128::from(m),
                    1,
                    "{a}^-1 mod {m}"
                );
            }
            for x in [0, 1, m - 1, m, m * m - 1, (m - 1) * (m - 1)] {
                assert_eq!(f.reduce(x), x % m, "{x} mod {m}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Barrett reduction and the modular inverse against `%`.
        #[test]
        fn reduce_and_inverse_match_division(m in 2u32.., a in any::<u64>(), b in any::<u64>()) {
            let m64 = u64::from(m);
            let f = Barrett::new(m64);
            let x = (a % m64) * (b % m64);
            prop_assert_eq!(f.reduce(x), x % m64);
            if is_prime(m) {
                let a = a % (m64 - 1) + 1;
                prop_assert_eq!(u128::from(a) * u128::from(mod_inverse(a, m64)) % u128::from(m64), 1);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_naive_population(
            m in prop::sample::select(vec![2u32, 7, 13, 251, 257, 509, 1021, 4093]),
            ws in prop::collection::vec(prop_oneof![4 => 0u32..6, 1 => 0u32..(1 << 30)], 0..40),
            seed in any::<u64>(),
        ) {
            let key = HashKey::new(seed, !seed);
            let mut b = MaglevBuilder::new(key);
            b.table_size(m);
            for (i, &w) in ws.iter().enumerate() {
                b.backend(i, &(i as u64).to_le_bytes(), w);
            }
            let live: Vec<usize> = (0..ws.len()).filter(|&i| ws[i] > 0).collect();
            match b.build() {
                Err(MaglevError::TooManyBackends { .. }) => prop_assert!(live.len() > m as usize),
                Err(e) => prop_assert!(false, "unexpected {e}"),
                Ok(t) => {
                    let perm_key = key.derive(b"lb-sched maglev permutation");
                    let params: Vec<(u64, u64, u32)> = live.iter().map(|&i| {
                        let (h1, h2) = perm_key.hash128(&(i as u64).to_le_bytes());
                        (h1, h2, ws[i])
                    }).collect();
                    let expect = naive(m, &params);
                    if live.is_empty() {
                        prop_assert!(t.is_empty());
                    } else {
                        let got: Vec<usize> = t.slots().to_vec();
                        let want: Vec<usize> = expect.iter().map(|s| live[s.unwrap()]).collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}
