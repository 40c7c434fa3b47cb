//! `rr` (ip_vs_rr.c): round robin from the last pick.

use crate::ipvs::maxtree::MaxTree;
use crate::service::DestList;

/// `svc->sched_data`: the last picked destination, or the list head; plus
/// an index that finds the next eligible destination in O(log n).
#[derive(Debug, Clone)]
pub(crate) struct Rr {
    cursor: Option<u32>,
    pub(crate) tree: MaxTree,
}

impl Rr {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        Self {
            cursor: None,
            tree: MaxTree::new(list),
        }
    }

    /// Walks on from the cursor (positions after it, then from the head up to
    /// and including it) and takes the first destination with weight > 0
    /// and no OVERLOAD. The cursor only moves on a hit.
    #[inline]
    pub(crate) fn pick(&mut self, list: &DestList<'_>) -> Option<u32> {
        // List order is descending `order` index.
        let hit = match self.cursor {
            None => self.tree.prev_at_least(list.len(), 1),
            Some(slot) => {
                let c = list.index_of(slot);
                self.tree
                    .prev_at_least(c, 1)
                    .or_else(|| self.tree.prev_at_least(list.len(), 1).filter(|&i| i >= c))
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
        self.tree.rebuild(list);
    }
}
