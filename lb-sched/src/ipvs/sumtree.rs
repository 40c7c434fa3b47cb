//! A sum segment tree of eligible weights over `order` indices, so `twos`
//! finds "the first destination in list order at which the running sum of
//! eligible weights reaches `r`" in O(log n) instead of walking the list.

use crate::dest::Dest;
use crate::service::DestList;

/// The weight `twos` draws by: 0 for OVERLOADed destinations.
fn value(d: &Dest) -> u64 {
    if d.overloaded { 0 } else { u64::from(d.weight) }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SumTree {
    len: usize,
    cap: usize,
    nodes: Vec<u64>,
}

impl SumTree {
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
            self.nodes[n] = self.nodes[2 * n] + self.nodes[2 * n + 1];
        }
    }

    pub(crate) fn push(&mut self, list: &DestList<'_>) {
        if self.len == self.cap || list.len() != self.len + 1 {
            self.rebuild(list);
            return;
        }
        self.len += 1;
        self.update(list, self.len - 1);
    }

    pub(crate) fn update(&mut self, list: &DestList<'_>, i: usize) {
        if i >= self.len {
            return;
        }
        let mut n = self.cap + i;
        self.nodes[n] = value(list.at(i));
        while n > 1 {
            n /= 2;
            self.nodes[n] = self.nodes[2 * n] + self.nodes[2 * n + 1];
        }
    }

    /// Sum of all eligible weights.
    pub(crate) fn total(&self) -> u64 {
        self.nodes.get(1).copied().unwrap_or(0)
    }

    /// The first index in list order (largest index first) at which the
    /// running sum reaches `target` (>= 1, <= total).
    pub(crate) fn find(&self, mut target: u64) -> Option<usize> {
        if target == 0 || target > self.total() {
            return None;
        }
        let mut n = 1;
        while n < self.cap {
            let right = self.nodes[2 * n + 1];
            if right >= target {
                n = 2 * n + 1;
            } else {
                target -= right;
                n *= 2;
            }
        }
        Some(n - self.cap)
    }
}
