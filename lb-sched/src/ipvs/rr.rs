//! `rr` (ip_vs_rr.c): round robin from the last pick.

use crate::ipvs::maxtree::MaxTree;
use crate::service::DestList;

/// `svc->sched_data`: the last picked destination, or the list head; plus
/// an index that finds the next eligible destination in O(log n).
#[derive(Debug, Clone)]
pub(crate) struct Rr {
    /// The last pick as its `order` index, `None` = the list head.
    ///
    /// An index rather than a slot: adding a destination appends to
    /// `order` and leaves every index in place, and `on_del` shifts this one
    /// as `order` shifts, so it names the same destination as the kernel's
    /// pointer would. Each pick then starts from the index itself, where a
    /// slot would first cost a load from the slot table, a load that sat on
    /// the chain from one pick to the next (`benches/README.md`).
    cursor: Option<usize>,
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
        // List order is descending `order` index. Most picks take the very
        // next destination: one load and a well-predicted branch (so the
        // next cursor does not wait for the load), inline; the rest walk
        // the tree.
        let end = self.cursor.unwrap_or(list.len());
        let hit = if self.tree.at_least(end.wrapping_sub(1), 1) {
            end - 1
        } else {
            self.walk(list.len())?
        };
        self.cursor = Some(hit);
        Some(list.order[hit])
    }

    #[inline(never)]
    fn walk(&self, len: usize) -> Option<usize> {
        match self.cursor {
            None => self.tree.prev_at_least(len, 1),
            Some(c) => self
                .tree
                .prev_at_least(c, 1)
                .or_else(|| self.tree.prev_at_least(len, 1).filter(|&i| i >= c)),
        }
    }

    /// `ip_vs_rr_del_dest`: a cursor on the removed destination moves to its
    /// predecessor in the list (or the head). `removed` is its old `order`
    /// index; `list` is already without it, so later indices moved down one.
    pub(crate) fn on_del(&mut self, list: &DestList<'_>, removed: usize) {
        self.cursor = match self.cursor {
            // The predecessor had the next larger index, now shifted to
            // `removed`; none if the removed one was the head.
            Some(c) if c == removed => (removed < list.len()).then_some(removed),
            Some(c) if c > removed => Some(c - 1),
            c => c,
        };
        self.tree.rebuild(list);
    }
}
