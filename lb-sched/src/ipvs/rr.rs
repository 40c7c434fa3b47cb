//! `rr` (ip_vs_rr.c): round robin from the last pick.

use crate::service::DestList;

/// `svc->sched_data`: the last picked destination, or the list head.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rr {
    cursor: Option<u32>,
}

impl Rr {
    /// Walks on from the cursor (positions after it, then from the head up to
    /// and including it) and takes the first destination with weight > 0
    /// and no OVERLOAD. The cursor only moves on a hit.
    pub(crate) fn pick(&mut self, list: &DestList<'_>) -> Option<u32> {
        let n = list.len();
        let ok = |i: usize| {
            let d = list.at(i);
            !d.overloaded && d.weight > 0
        };
        // List order is descending `order` index.
        let hit = match self.cursor {
            None => (0..n).rev().find(|&i| ok(i)),
            Some(slot) => {
                let c = list.index_of(slot);
                (0..c).rev().chain((c..n).rev()).find(|&i| ok(i))
            }
        }?;
        let slot = list.order[hit];
        self.cursor = Some(slot);
        Some(slot)
    }

    /// `ip_vs_rr_del_dest`: a cursor on the removed destination moves to its
    /// predecessor in the list (or the head). `removed` is its old `order`
    /// index; `list` is already without it.
    pub(crate) fn on_del(&mut self, list: &DestList<'_>, slot: u32, removed: usize) {
        if self.cursor == Some(slot) {
            // The predecessor had the next larger index, now shifted to `removed`.
            self.cursor = list.order.get(removed).copied();
        }
    }
}
