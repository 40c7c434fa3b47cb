//! A max segment tree over `order` indices answering "the next destination
//! in list order, after a position, whose weight is at least `t` and which
//! is not OVERLOADed" in O(log n): `rr` and `wrr` use it instead of walking
//! the list one destination at a time. The list runs in descending `order`
//! index, so "next in list order before index `end`" is the *largest*
//! qualifying index below `end`.

use crate::dest::Dest;
use crate::service::DestList;

/// A destination's value: its weight, or 0 when OVERLOADed.
fn value(d: &Dest) -> u32 {
    if d.overloaded { 0 } else { d.weight }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct MaxTree {
    len: usize,
    cap: usize,
    /// `nodes[cap + i]` is the value of index `i`; internal nodes hold maxima.
    nodes: Vec<u32>,
}

impl MaxTree {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        let mut t = Self::default();
        t.rebuild(list);
        t
    }

    pub(crate) fn rebuild(&mut self, list: &DestList<'_>) {
        self.len = list.len();
        self.cap = self.len.next_power_of_two().max(1);
        self.nodes.clear();
        self.nodes.resize(2 * self.cap, 0);
        for i in 0..self.len {
            self.nodes[self.cap + i] = value(list.at(i));
        }
        for n in (1..self.cap).rev() {
            self.nodes[n] = self.nodes[2 * n].max(self.nodes[2 * n + 1]);
        }
    }

    /// A destination was appended at `order` index `len`.
    pub(crate) fn push(&mut self, list: &DestList<'_>) {
        if self.len == self.cap || list.len() != self.len + 1 {
            self.rebuild(list);
            return;
        }
        self.len += 1;
        self.update(list, self.len - 1);
    }

    /// The destination at `order` index `i` changed.
    pub(crate) fn update(&mut self, list: &DestList<'_>, i: usize) {
        if i >= self.len {
            return;
        }
        let v = value(list.at(i));
        let mut n = self.cap + i;
        if self.nodes[n] == v {
            return;
        }
        self.nodes[n] = v;
        while n > 1 {
            n /= 2;
            let m = self.nodes[2 * n].max(self.nodes[2 * n + 1]);
            if self.nodes[n] == m {
                break;
            }
            self.nodes[n] = m;
        }
    }

    /// The largest value (0 if none).
    #[inline]
    pub(crate) fn max(&self) -> u32 {
        self.nodes.get(1).copied().unwrap_or(0)
    }

    /// Whether index `i` has value `>= t`.
    #[inline]
    pub(crate) fn at_least(&self, i: usize, t: u64) -> bool {
        i < self.len
            && self
                .nodes
                .get(self.cap + i)
                .is_some_and(|&v| u64::from(v) >= t)
    }

    /// [`prev_at_least`](Self::prev_at_least) when the answer is one of
    /// the 8 indices just below `end`, else `None`. A `wrr` pass at `cw`
    /// skips the destinations lighter than `cw`, so the next pick is often
    /// a few places on: this finds it in one cache line, without branching
    /// on the weights, and only the rest walk the tree.
    #[inline]
    pub(crate) fn prev_near(&self, end: usize, t: u64) -> Option<usize> {
        const W: usize = 8;
        let end = end.min(self.len);
        let Ok(t) = u32::try_from(t) else {
            return None;
        };
        if end < W {
            return None;
        }
        let start = end - W;
        let window: &[u32; W] = self.nodes[self.cap + start..self.cap + end]
            .try_into()
            .ok()?;
        let mut mask = 0u32;
        for (k, &v) in window.iter().enumerate() {
            mask |= u32::from(v >= t) << k;
        }
        // The highest qualifying index comes first in list order.
        (mask != 0).then(|| start + 31 - mask.leading_zeros() as usize)
    }

    /// The largest index `i < end` with value `>= t` (`t >= 1`).
    #[inline]
    pub(crate) fn prev_at_least(&self, end: usize, t: u64) -> Option<usize> {
        let end = end.min(self.len);
        if end == 0 || u64::from(self.max()) < t {
            return None;
        }
        // Walk up from the leaf just left of `end`, looking at whole left
        // siblings; then descend into the first one that qualifies.
        let ok = |n: usize| u64::from(self.nodes[n]) >= t;
        let mut n = self.cap + end - 1;
        if ok(n) {
            return Some(end - 1);
        }
        loop {
            // Move to the nearest node covering indices just left of `n`.
            while n & 1 == 0 {
                n /= 2;
                if n <= 1 {
                    return None;
                }
            }
            if n == 1 {
                return None;
            }
            n -= 1;
            if ok(n) {
                break;
            }
        }
        while n < self.cap {
            n = if ok(2 * n + 1) { 2 * n + 1 } else { 2 * n };
        }
        Some(n - self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixture::{list, slots};
    use proptest::prelude::*;

    fn tree(values: &[(u32, bool)]) -> MaxTree {
        let slots = slots(values);
        let order: Vec<u32> = (0..values.len() as u32).collect();
        MaxTree::new(&list(&slots, &order))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against the list walk: the largest `i < end` whose weight (0 if
        /// OVERLOADed) is at least `t`; `prev_near` answers exactly when
        /// that index is one of the 8 below `end`.
        #[test]
        fn searches_match_the_walk(
            values in proptest::collection::vec((0u32..9, proptest::bool::weighted(0.1)), 0..70),
            end in 0usize..80,
            t in 1u64..10,
        ) {
            let t_ = tree(&values);
            let want = (0..end.min(values.len()))
                .rev()
                .find(|&i| !values[i].1 && u64::from(values[i].0) >= t);
            prop_assert_eq!(t_.prev_at_least(end, t), want);
            let near = want.filter(|&i| end.min(values.len()) >= 8 && i + 8 >= end.min(values.len()));
            prop_assert_eq!(t_.prev_near(end, t), near);
            for i in 0..values.len() + 2 {
                let v = values.get(i).map_or(0, |&(w, o)| if o { 0 } else { w });
                prop_assert_eq!(t_.at_least(i, t), u64::from(v) >= t);
            }
        }
    }
}
