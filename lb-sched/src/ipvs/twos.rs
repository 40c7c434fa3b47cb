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

    /// `ip_vs_twos_schedule`. Draws two values from `rng` (first for choice
    /// 1, then for choice 2), each reduced modulo `total_weight + 1`.
    ///
    /// The kernel walks the eligible destinations subtracting weights and
    /// takes the first where `r <= 0`: the first at which the running sum
    /// reaches `r`, or the first eligible one when `r == 0`, i.e. where the
    /// sum reaches `max(r, 1)`. Arithmetic is exact (the kernel's `int` sums
    /// and products overflow past 2^31; identical below that).
    pub(crate) fn pick<R: RandomSource + ?Sized>(
        &self,
        list: &DestList<'_>,
        rng: &mut R,
    ) -> Option<u32> {
        let sum = self.tree.total();
        if sum == 0 {
            return None;
        }
        let total = sum + 1;
        let r1 = u64::from(rng.next_u32()) % total;
        let r2 = u64::from(rng.next_u32()) % total;
        let c1 = list.order[self.tree.find(r1.max(1))?];
        let c2 = list.order[self.tree.find(r2.max(1))?];
        let (d1, d2) = (list.dest(c1), list.dest(c2));
        let lhs = u128::from(d2.weight) * u128::from(d1.overhead());
        let rhs = u128::from(d1.weight) * u128::from(d2.overhead());
        Some(if lhs > rhs { c2 } else { c1 })
    }
}
