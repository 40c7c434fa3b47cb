//! A sum tree of eligible weights over `order` indices, so `twos` finds
//! "the first destination in list order at which the running sum of
//! eligible weights reaches `r`" in O(log n) instead of walking the list.
//!
//! The tree is 4-ary: each internal node holds the *suffix sums* of its four
//! children, `s[j] = c[j] + … + c[3]`, in one 32-byte, 32-byte-aligned
//! record. List order is descending `order` index, so the children to the
//! right of child `j` (higher indices) come first in list order and `s[j]`
//! is the running sum on leaving child `j`. One level of a search then reads
//! one record and decides by three comparisons, with no branch:
//!
//! ```text
//!   node:  s[0] ≥ s[1] ≥ s[2] ≥ s[3]        (s[0] = the node's total)
//!   enter child j = #{ k ∈ 1..=3 : s[k] ≥ t }   (the last child whose suffix reaches t)
//!   then  t -= s[j + 1]                     (what its right siblings hold; s[4] = 0)
//! ```
//!
//! A binary tree needs twice the levels, and at each level its branch
//! (go right or left) is a coin flip for a random target.

use crate::dest::Dest;
use crate::service::DestList;

/// The weight `twos` draws by: 0 for OVERLOADed destinations.
fn value(d: &Dest) -> u64 {
    if d.overloaded { 0 } else { u64::from(d.weight) }
}

/// What `twos` compares of a drawn destination, by `order` index: its
/// drawing weight (the weight: a drawn destination is never OVERLOADed)
/// and `ip_vs_dest_conn_overhead`. Kept here, 16 bytes each, so a pick
/// reads two entries of this small array rather than two destinations
/// from the slot table, which for 1 000 destinations does not fit in L1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub(crate) weight: u64,
    pub(crate) overhead: u64,
}

impl Leaf {
    fn of(d: &Dest) -> Self {
        Self {
            weight: value(d),
            overhead: d.overhead(),
        }
    }
}

/// Suffix sums of one internal node's four children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(32))]
struct Node([u64; 4]);

#[derive(Debug, Clone, Default)]
pub(crate) struct SumTree {
    len: usize,
    /// Leaves: `4^depth >= len`, at least 4.
    cap: usize,
    /// Internal levels (>= 1); every leaf is at this depth below the root.
    depth: u32,
    /// Internal nodes in heap order: the root is 0, the children of node
    /// `k` are `4k + 1 ..= 4k + 4`; the last level's nodes hold the leaves,
    /// four each, from node `first_bottom` on.
    nodes: Vec<Node>,
    first_bottom: usize,
    leaves: Vec<Leaf>,
}

impl SumTree {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        let mut t = Self::default();
        t.rebuild(list);
        t
    }

    pub(crate) fn rebuild(&mut self, list: &DestList<'_>) {
        self.len = list.len();
        self.depth = 1;
        self.cap = 4;
        while self.cap < self.len {
            self.cap *= 4;
            self.depth += 1;
        }
        // 1 + 4 + … + 4^(depth-1) internal nodes.
        let internal = (self.cap - 1) / 3;
        self.first_bottom = internal - self.cap / 4;
        self.nodes.clear();
        self.nodes.resize(internal, Node::default());
        self.leaves.clear();
        self.leaves
            .extend((0..self.len).map(|i| Leaf::of(list.at(i))));
        for b in 0..self.cap / 4 {
            let mut sum = 0;
            for j in (0..4).rev() {
                let i = 4 * b + j;
                if let Some(leaf) = self.leaves.get(i) {
                    sum += leaf.weight;
                }
                self.nodes[self.first_bottom + b].0[j] = sum;
            }
        }
        for k in (0..self.first_bottom).rev() {
            let mut sum = 0;
            for j in (0..4).rev() {
                sum += self.nodes[4 * k + 1 + j].0[0];
                self.nodes[k].0[j] = sum;
            }
        }
    }

    pub(crate) fn push(&mut self, list: &DestList<'_>) {
        if self.len == self.cap || list.len() != self.len + 1 {
            self.rebuild(list);
            return;
        }
        self.len += 1;
        self.leaves.push(Leaf::default());
        self.update(list, self.len - 1);
    }

    pub(crate) fn update(&mut self, list: &DestList<'_>, i: usize) {
        if i >= self.len {
            return;
        }
        let new = Leaf::of(list.at(i));
        let old = std::mem::replace(&mut self.leaves[i], new);
        let delta = new.weight.wrapping_sub(old.weight);
        if delta == 0 {
            return;
        }
        let (mut k, mut j) = (self.first_bottom + i / 4, i % 4);
        // The leaf's suffix sums in its node, then each ancestor's up to the
        // child on the path. Sums stay below 2^63 (weights < 2^31, at most
        // 2^32 leaves), so the wrapping adds give the exact new sums.
        loop {
            for s in &mut self.nodes[k].0[..=j] {
                *s = s.wrapping_add(delta);
            }
            if k == 0 {
                break;
            }
            (k, j) = ((k - 1) / 4, (k - 1) % 4);
        }
    }

    /// Sum of all eligible weights.
    #[inline]
    pub(crate) fn total(&self) -> u64 {
        self.nodes.first().map_or(0, |n| n.0[0])
    }

    /// The drawing weight and overhead of the destination at `order` index `i`.
    #[inline]
    pub(crate) fn leaf(&self, i: usize) -> Leaf {
        self.leaves[i]
    }

    /// The first indices in list order (largest index first) at which the
    /// running sum reaches `t1` and `t2` (each in `1..=total`).
    ///
    /// Two descents, interleaved so that their dependency chains (load a
    /// node, compare, pick the child) overlap.
    #[inline]
    pub(crate) fn find2(&self, t1: u64, t2: u64) -> (usize, usize) {
        debug_assert!((1..=self.total()).contains(&t1) && (1..=self.total()).contains(&t2));
        let (mut a, mut b) = ((0, t1), (0, t2));
        for _ in 1..self.depth {
            a = self.down(a);
            b = self.down(b);
        }
        let ((ka, ja), (kb, jb)) = (self.child(a), self.child(b));
        (
            4 * (ka - self.first_bottom) + ja,
            4 * (kb - self.first_bottom) + jb,
        )
    }

    /// One level down from internal node `k` towards running sum `t`.
    #[inline(always)]
    fn down(&self, at: (usize, u64)) -> (usize, u64) {
        let (k, j, t) = self.choose(at);
        (4 * k + 1 + j, t)
    }

    /// The child of internal node `k` that `t` falls in (as the node and
    /// the child's position in it).
    #[inline(always)]
    fn child(&self, at: (usize, u64)) -> (usize, usize) {
        let (k, j, _) = self.choose(at);
        (k, j)
    }

    #[inline(always)]
    fn choose(&self, (k, t): (usize, u64)) -> (usize, usize, u64) {
        use std::hint::select_unpredictable as select;
        let [_, s1, s2, s3] = self.nodes[k].0;
        let j = usize::from(s1 >= t) + usize::from(s2 >= t) + usize::from(s3 >= t);
        // s[j + 1]: the largest of s1..s3 below t, or 0.
        let right = select(s1 < t, s1, select(s2 < t, s2, select(s3 < t, s3, 0)));
        (k, j, t - right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixture::{list, slots};
    use proptest::prelude::*;

    /// The kernel's walk: list order is descending index.
    fn walk(values: &[u64], t: u64) -> usize {
        let mut sum = 0;
        for i in (0..values.len()).rev() {
            sum += values[i];
            if sum >= t {
                return i;
            }
        }
        unreachable!("t <= total");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every target, after building and after random updates and
        /// pushes, lands where the list walk lands.
        #[test]
        fn finds_what_the_walk_finds(
            dests in proptest::collection::vec((0u32..6, proptest::bool::weighted(0.2)), 0..80),
            edits in proptest::collection::vec((any::<usize>(), 0u32..6, any::<bool>()), 0..40),
            pushed in proptest::collection::vec(1u32..4, 0..20),
        ) {
            let mut all = dests.clone();
            all.extend(pushed.iter().map(|&w| (w, false)));
            let mut slots = slots(&all);
            let order: Vec<u32> = (0..all.len() as u32).collect();
            let mut tree = SumTree::new(&list(&slots, &order[..dests.len()]));
            for n in dests.len()..all.len() {
                tree.push(&list(&slots, &order[..=n]));
            }
            let n = all.len();
            for (i, w, o) in edits {
                if n == 0 {
                    break;
                }
                let i = i % n;
                slots[i].dest.weight = w;
                slots[i].dest.overloaded = o;
                tree.update(&list(&slots, &order), i);
            }
            let values: Vec<u64> = slots.iter().map(|s| value(&s.dest)).collect();
            let total: u64 = values.iter().sum();
            prop_assert_eq!(tree.total(), total);
            let fresh = SumTree::new(&list(&slots, &order));
            prop_assert_eq!(&tree.nodes, &fresh.nodes);
            prop_assert_eq!(&tree.leaves, &fresh.leaves);
            for t in 1..=total {
                let (a, b) = tree.find2(t, total + 1 - t);
                prop_assert_eq!(a, walk(&values, t));
                prop_assert_eq!(b, walk(&values, total + 1 - t));
            }
        }
    }
}
