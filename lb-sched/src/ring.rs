//! A ketama-style consistent-hash ring: every backend places
//! `weight × points_per_weight` points on a 64-bit circle and a key belongs to
//! the first point at or after its hash (wrapping). Removing a backend moves
//! only the keys it owned; adding one takes keys only for itself.
//!
//! Points are `SipHash-1-3(key', name ‖ replica)` (not libketama's MD5, so the
//! ring is not byte-compatible with memcached clients, but every director with
//! the same [`HashKey`] builds the same ring). Lookup is a binary search over a
//! sorted `u64` array: `O(log(N · points))`, no allocation.

use crate::hashkey::HashKey;

/// Points per unit of weight by default (libketama and nginx use 160 per server).
pub const DEFAULT_POINTS_PER_WEIGHT: u32 = 160;

/// Collects backends and builds a [`Ring`].
///
/// ```
/// use lb_sched::hashkey::HashKey;
/// use lb_sched::ring::RingBuilder;
///
/// let mut b = RingBuilder::new(HashKey::new(3, 4));
/// b.backend('a', b"10.0.0.1:80", 1).backend('b', b"10.0.0.2:80", 2);
/// let ring = b.build();
/// assert_eq!(ring.points(), 3 * 160);
/// assert!(matches!(ring.get_bytes(b"client-1"), Some('a' | 'b')));
/// ```
#[derive(Debug, Clone)]
pub struct RingBuilder<D> {
    key: HashKey,
    points_per_weight: u32,
    backends: Vec<(D, Vec<u8>, u32)>,
}

impl<D: Copy> RingBuilder<D> {
    /// A builder with [`DEFAULT_POINTS_PER_WEIGHT`].
    pub fn new(key: HashKey) -> Self {
        Self {
            key,
            points_per_weight: DEFAULT_POINTS_PER_WEIGHT,
            backends: Vec::new(),
        }
    }

    /// Points per unit of weight (more points: better balance, bigger ring).
    pub fn points_per_weight(&mut self, points: u32) -> &mut Self {
        self.points_per_weight = points.max(1);
        self
    }

    /// Add a backend placed by `name` with a relative `weight` (0 = absent).
    pub fn backend(&mut self, id: D, name: &[u8], weight: u32) -> &mut Self {
        self.backends.push((id, name.to_vec(), weight));
        self
    }

    /// Place every point and sort the ring (off the hot path).
    #[must_use]
    pub fn build(&self) -> Ring<D> {
        let point_key = self.key.derive(b"lb-sched ring point");
        let live: Vec<&(D, Vec<u8>, u32)> = self.backends.iter().filter(|b| b.2 > 0).collect();
        let total: u64 = live
            .iter()
            .map(|b| u64::from(b.2) * u64::from(self.points_per_weight))
            .sum();
        let mut pts: Vec<(u64, u32)> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut buf = Vec::new();
        for (owner, (_, name, weight)) in live.iter().enumerate() {
            let n = u64::from(*weight) * u64::from(self.points_per_weight);
            for r in 0..n {
                buf.clear();
                buf.extend_from_slice(name);
                buf.extend_from_slice(&r.to_le_bytes());
                pts.push((point_key.hash(&buf), owner as u32));
            }
        }
        // Ties (equal points) are broken by builder order, so every director agrees.
        pts.sort_unstable();
        let mut cumulative = 0u64;
        let cum: Vec<u64> = live
            .iter()
            .map(|b| {
                let c = cumulative;
                cumulative += u64::from(b.2);
                c
            })
            .collect();
        let points: Box<[u64]> = pts.iter().map(|p| p.0).collect();
        // Directory: bucket k covers hashes with top `bits` bits == k and
        // holds the index of its first point ≥ k << (64 - bits).
        let bits = (usize::BITS - points.len().max(1).leading_zeros()).clamp(1, 20);
        let mut dir = vec![0u32; 1 << bits].into_boxed_slice();
        let mut at = 0usize;
        for (k, d) in dir.iter_mut().enumerate() {
            let floor = (k as u64) << (64 - bits);
            while at < points.len() && points[at] < floor {
                at += 1;
            }
            *d = at as u32;
        }
        Ring {
            key: self.key,
            dir,
            shift: 64 - bits,
            points,
            owners: pts.iter().map(|p| p.1).collect(),
            ids: live.iter().map(|b| b.0).collect(),
            weights: live.iter().map(|b| b.2).collect(),
            cumulative: cum.into_boxed_slice(),
            total_weight: cumulative,
        }
    }
}

/// An immutable consistent-hash ring.
#[derive(Debug, Clone)]
pub struct Ring<D> {
    key: HashKey,
    dir: Box<[u32]>,
    shift: u32,
    points: Box<[u64]>,
    owners: Box<[u32]>,
    ids: Box<[D]>,
    weights: Box<[u32]>,
    cumulative: Box<[u64]>,
    total_weight: u64,
}

impl<D: Copy> Ring<D> {
    /// Number of points on the ring.
    #[must_use]
    pub fn points(&self) -> usize {
        self.points.len()
    }

    /// Backends on the ring (weight > 0), in builder order; indices into this
    /// slice are the `backend index` used by [`Self::walk`].
    #[must_use]
    pub fn backends(&self) -> &[D] {
        &self.ids
    }

    /// Weight of backend index `i`.
    #[must_use]
    pub fn weight(&self, i: usize) -> u32 {
        self.weights[i]
    }

    /// Sum of the weights of the backends before index `i` (HAProxy's
    /// `cumulative_weight`).
    #[must_use]
    pub fn cumulative_weight(&self, i: usize) -> u64 {
        self.cumulative[i]
    }

    /// Sum of all weights.
    #[must_use]
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// True when the ring has no point.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Position of the first point at or after `hash` (wrapping).
    #[inline]
    fn start(&self, hash: u64) -> usize {
        let k = (hash >> self.shift) as usize;
        let lo = self.dir[k] as usize;
        let hi = self
            .dir
            .get(k + 1)
            .map_or(self.points.len(), |&h| h as usize);
        let mut i = lo;
        while i < hi && self.points[i] < hash {
            i += 1;
        }
        if i == self.points.len() { 0 } else { i }
    }

    /// The backend owning `hash`.
    #[inline]
    #[must_use]
    pub fn get(&self, hash: u64) -> Option<D> {
        if self.points.is_empty() {
            return None;
        }
        Some(self.ids[self.owners[self.start(hash)] as usize])
    }

    /// The backend owning `key`, hashed with the ring's key.
    #[inline]
    #[must_use]
    pub fn get_bytes(&self, key: &[u8]) -> Option<D> {
        self.get(self.key.hash(key))
    }

    /// Backend indices of every point clockwise from `hash`, once around the
    /// ring (repeats included); used by bounded-load walks.
    pub fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let n = self.points.len();
        let s = if n == 0 { 0 } else { self.start(hash) };
        (0..n).map(move |k| self.owners[(s + k) % n] as usize)
    }

    /// The id of backend index `i`.
    #[must_use]
    pub fn id(&self, i: usize) -> D {
        self.ids[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(ws: &[u32], skip: Option<usize>, ppw: u32) -> Ring<usize> {
        let mut b = RingBuilder::new(HashKey::new(1, 2));
        b.points_per_weight(ppw);
        for (i, &w) in ws.iter().enumerate() {
            if Some(i) != skip {
                b.backend(i, format!("s{i}").as_bytes(), w);
            }
        }
        b.build()
    }

    #[test]
    fn golden_wrap_and_empty() {
        let r = ring(&[1, 1], None, 4);
        assert_eq!(r.points(), 8);
        // Beyond the last point wraps to the first.
        let last = *r.points.last().unwrap();
        assert_eq!(r.get(last), Some(r.ids[*r.owners.last().unwrap() as usize]));
        if last < u64::MAX {
            assert_eq!(r.get(last + 1), Some(r.ids[r.owners[0] as usize]));
        }
        assert_eq!(r.get(0), Some(r.ids[r.owners[0] as usize]));
        assert_eq!(ring(&[0, 0], None, 4).get(5), None);
    }

    #[test]
    fn weights_shape_the_share() {
        let r = ring(&[1, 3], None, 160);
        let mut count = [0u32; 2];
        for k in 0..20_000u32 {
            count[r.get_bytes(&k.to_le_bytes()).unwrap()] += 1;
        }
        let share = f64::from(count[1]) / 20_000.0;
        assert!((0.65..0.85).contains(&share), "share {share}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a naive model (linear scan for the smallest point ≥ hash),
        /// and: removing a backend only moves the keys it owned.
        #[test]
        fn matches_naive_and_moves_only_removed_keys(
            ws in prop::collection::vec(0u32..4, 1..12),
            victim in 0usize..12,
            hashes in prop::collection::vec(any::<u64>(), 50),
        ) {
            let full = ring(&ws, None, 8);
            let less = ring(&ws, Some(victim), 8);
            for &h in &hashes {
                let naive = full
                    .points
                    .iter()
                    .zip(full.owners.iter())
                    .filter(|(p, _)| **p >= h)
                    .min_by_key(|(p, _)| **p)
                    .or_else(|| full.points.iter().zip(full.owners.iter()).min_by_key(|(p, _)| **p))
                    .map(|(_, &o)| full.ids[o as usize]);
                prop_assert_eq!(full.get(h), naive);
                let before = full.get(h);
                if before != Some(victim) {
                    prop_assert_eq!(less.get(h), before);
                }
            }
        }
    }
}
