//! `wrr` (ip_vs_wrr.c): interleaved weighted round robin.

use crate::ipvs::maxtree::MaxTree;
use crate::service::DestList;

/// `struct ip_vs_wrr_mark`, plus an index that finds the next destination
/// with `weight >= cw` and no OVERLOAD in O(log n).
#[derive(Debug, Clone)]
pub(crate) struct Wrr {
    pub(crate) tree: MaxTree,
    /// Current destination as its `order` index, `None` = the list head.
    /// `order` only changes on add/remove, and both reset this through
    /// `dest_changed`, so the index stays valid; keeping it (rather than the
    /// slot) saves a lookup in the slot table on every pick.
    cl: Option<usize>,
    /// Current weight.
    cw: i64,
    /// Maximum weight, minus `di - 1`.
    mw: i64,
    /// Decreasing interval: gcd of the positive weights (1 if none).
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Wrr {
    /// `ip_vs_wrr_init_svc`.
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        let (di, mw) = Self::weights(list);
        Self {
            tree: MaxTree::new(list),
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    fn weights(list: &DestList<'_>) -> (i64, i64) {
        let mut g = 0;
        let mut max = 0;
        for slot in list.iter() {
            let w = i64::from(list.dest(slot).weight);
            if w > 0 {
                g = if g > 0 { gcd(w, g) } else { w };
            }
            max = max.max(w);
        }
        let di = if g > 0 { g } else { 1 };
        (di, max - (di - 1))
    }

    /// `ip_vs_wrr_dest_changed`, the add/del/upd hook.
    pub(crate) fn dest_changed(&mut self, list: &DestList<'_>) {
        self.tree.rebuild(list);
        self.cl = None;
        (self.di, self.mw) = Self::weights(list);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// `ip_vs_wrr_schedule`.
    ///
    /// Most picks take a destination a few places on in the list (the
    /// first with `weight >= cw` and no OVERLOAD): that is one cache line,
    /// inline; the rest of the kernel's loop is [`walk`](Self::walk).
    #[inline]
    pub(crate) fn pick(&mut self, list: &DestList<'_>) -> Option<u32> {
        let end = self.cl.unwrap_or(list.len());
        // cw >= 1 whenever mw > 0 (see `walk`).
        if self.mw > 0 {
            let cw = self.cw.max(1) as u64;
            let hit = if self.tree.at_least(end.wrapping_sub(1), cw) {
                Some(end - 1)
            } else {
                self.tree.prev_near(end, cw)
            };
            if let Some(hit) = hit {
                self.cl = Some(hit);
                return Some(list.order[hit]);
            }
        }
        self.walk(list.len()).map(|h| list.order[h])
    }

    /// `ip_vs_wrr_schedule`, transcribed, over a list of `n`; `pos`/`last`/
    /// `stop` are `order` indices (`None` = the list head). Returns the
    /// `order` index picked.
    #[inline(never)]
    fn walk(&mut self, n: usize) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let last = self.cl;
        let mut pos = last;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let end = pos.unwrap_or(n);
            // The kernel walks on from `pos` (descending index below `end`)
            // to the first destination with weight >= cw and no OVERLOAD,
            // unless it meets `stop` first. cw >= 1 here: mw > 0, a pass
            // lowering cw to 0 or below resets it to mw, and
            // ip_vs_wrr_dest_changed never leaves it below 1.
            let cw = u64::try_from(self.cw).unwrap_or(0).max(1);
            let hit = self.tree.prev_at_least(end, cw);
            match (hit, stop) {
                (_, Some(s)) if s < end && hit.is_none_or(|h| h < s) => {
                    self.cl = Some(s);
                    return None;
                }
                (Some(h), _) => {
                    self.cl = Some(h);
                    return Some(h);
                }
                (None, _) => {}
            }
            pos = None;
            // A pass from the head that finds nothing depends on `cw` only, so
            // passes that cannot hit are skipped in one step (the kernel walks
            // them one by one; the state afterwards is the same).
            if stop.is_none() {
                self.skip_passes(i64::from(self.tree.max()));
            }
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    /// Lowers `cw` by whole `di` steps over passes that cannot hit
    /// (`cw > w`, the largest weight not OVERLOADed). It stops while the
    /// caller's next step, `cw -= di`, still leaves `cw > max(w, 0)`; so no
    /// skipped step reaches `cw <= 0` (restart) and none is a last pass
    /// (`cw <= di`, which would arm `stop`), and `last_pass`, recomputed by
    /// the caller's step, is never read stale.
    fn skip_passes(&mut self, w: i64) {
        let target = w.max(0);
        if self.cw - self.di <= target {
            return;
        }
        // Largest k with cw - (k + 1) * di > target.
        let k = (self.cw - self.di - target - 1) / self.di;
        self.cw -= k * self.di;
    }
}
