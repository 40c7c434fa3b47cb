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
