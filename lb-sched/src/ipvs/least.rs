//! `lc`, `wlc`, `sed`, `nq`, `fo` and `ovf` in O(1) per pick.
//!
//! Each of these kernel schedulers scans the list and keeps the *first*
//! destination that is strictly better than the best so far. All six reduce
//! to one rule: among the eligible destinations, the first in list order that
//! minimises a ratio `num / den` (den > 0), compared by cross-multiplication:
//!
//! | rule | eligible | num | den |
//! |---|---|---|---|
//! | lc  | weight != 0, not OVERLOAD | `active*256 + inactive` | 1 |
//! | wlc | weight > 0, not OVERLOAD  | `active*256 + inactive` | weight |
//! | sed | weight > 0, not OVERLOAD  | `active + 1` | weight |
//! | nq  | weight != 0, not OVERLOAD | 0 if `active == 0`, else `active + 1` | weight (1 if idle) |
//! | fo  | weight > 0, not OVERLOAD  | 1 | weight |
//! | ovf | weight != 0, not OVERLOAD, `active <= weight` | 1 | weight |
//!
//! Why this is the kernel's answer: `wlc`'s first stage takes the first
//! eligible destination; its second stage replaces `least` only when
//! `loh * dw > doh * lw`, i.e. `doh/dw < loh/lw` strictly, and a weight-0
//! destination can never satisfy it (`loh * 0 > x` is false). `nq` returns
//! the first idle eligible destination at once — ratio 0 beats every busy
//! ratio `(a+1)/w > 0`, and idle ties go to the earlier one. `fo`/`ovf` keep
//! the first strictly heavier weight: minimal `1/w`. Ratios of positive
//! denominators form a total preorder, and breaking ties by list position
//! makes it a strict total order, so a tournament tree over list positions
//! whose root holds the overall winner returns the same destination as the
//! scan. `tests/least_tree.rs` checks this against a literal transcription
//! of the C loops.

use crate::dest::Dest;
use crate::service::DestList;

const NONE: u32 = u32::MAX;

/// Which of the six comparator rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Lc,
    Wlc,
    Sed,
    Nq,
    Fo,
    Ovf,
}

/// A destination's ratio; `den == 0` means not eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    num: u64,
    den: u64,
}

const INELIGIBLE: Key = Key { num: 0, den: 0 };

impl Rule {
    pub(crate) fn key(self, d: &Dest) -> Key {
        if d.overloaded || d.weight == 0 {
            return INELIGIBLE;
        }
        let w = u64::from(d.weight);
        let a = u64::from(d.active);
        match self {
            Self::Lc => Key {
                num: d.overhead(),
                den: 1,
            },
            Self::Wlc => Key {
                num: d.overhead(),
                den: w,
            },
            Self::Sed => Key { num: a + 1, den: w },
            Self::Nq if a == 0 => Key { num: 0, den: 1 },
            Self::Nq => Key { num: a + 1, den: w },
            Self::Fo => Key { num: 1, den: w },
            Self::Ovf if a > w => INELIGIBLE,
            Self::Ovf => Key { num: 1, den: w },
        }
    }
}

/// A tournament (segment) tree over `order` indices; each internal node holds
/// the index of the better of its two children. Larger index = earlier in
/// the kernel's list, so it wins ties.
#[derive(Debug, Clone)]
pub(crate) struct Tournament {
    rule: Rule,
    len: usize,
    cap: usize,
    keys: Vec<Key>,
    nodes: Vec<u32>,
}

impl Tournament {
    pub(crate) fn new(rule: Rule, list: &DestList<'_>) -> Self {
        let mut t = Self {
            rule,
            len: 0,
            cap: 0,
            keys: Vec::new(),
            nodes: Vec::new(),
        };
        t.rebuild(list);
        t
    }

    /// Recomputes everything from the list: O(n).
    pub(crate) fn rebuild(&mut self, list: &DestList<'_>) {
        self.len = list.len();
        self.cap = self.len.next_power_of_two().max(1);
        self.keys.clear();
        self.keys
            .extend((0..self.len).map(|i| self.rule.key(list.at(i))));
        self.keys.resize(self.cap, INELIGIBLE);
        self.nodes.clear();
        self.nodes.resize(2 * self.cap, NONE);
        for i in 0..self.len {
            self.nodes[self.cap + i] = i as u32;
        }
        for n in (1..self.cap).rev() {
            self.nodes[n] = self.better(self.nodes[2 * n], self.nodes[2 * n + 1]);
        }
    }

    /// A destination was appended at `order` index `len` (front of the list).
    pub(crate) fn push(&mut self, list: &DestList<'_>) {
        if self.len == self.cap || list.len() != self.len + 1 {
            self.rebuild(list);
            return;
        }
        let i = self.len;
        self.len += 1;
        self.nodes[self.cap + i] = i as u32;
        self.set(i, self.rule.key(list.at(i)));
    }

    /// The destination at `order` index `i` changed.
    pub(crate) fn update(&mut self, list: &DestList<'_>, i: usize) {
        if i < self.len {
            self.set(i, self.rule.key(list.at(i)));
        }
    }

    fn set(&mut self, i: usize, key: Key) {
        if self.keys[i] == key {
            return;
        }
        self.keys[i] = key;
        let mut n = (self.cap + i) / 2;
        while n >= 1 {
            let w = self.better(self.nodes[2 * n], self.nodes[2 * n + 1]);
            // Once a node's winner is unchanged *and* it is not the leaf that
            // moved, the ancestors cannot change either.
            if self.nodes[n] == w && w != i as u32 {
                break;
            }
            self.nodes[n] = w;
            n /= 2;
        }
    }

    /// The winning `order` index, if any destination is eligible.
    #[inline]
    pub(crate) fn winner(&self) -> Option<usize> {
        let w = *self.nodes.get(1)?;
        if w == NONE || self.keys[w as usize].den == 0 {
            None
        } else {
            Some(w as usize)
        }
    }

    #[inline]
    fn better(&self, a: u32, b: u32) -> u32 {
        if a == NONE {
            return b;
        }
        if b == NONE {
            return a;
        }
        let ka = self.keys[a as usize];
        let kb = self.keys[b as usize];
        if ka.den == 0 {
            return if kb.den == 0 { a.max(b) } else { b };
        }
        if kb.den == 0 {
            return a;
        }
        let lhs = u128::from(ka.num) * u128::from(kb.den);
        let rhs = u128::from(kb.num) * u128::from(ka.den);
        match lhs.cmp(&rhs) {
            std::cmp::Ordering::Less => a,
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal => a.max(b),
        }
    }
}
