//! `lblc` and `lblcr` (ip_vs_lblc.c, ip_vs_lblcr.c): locality-based least
//! connections, keyed on the destination address, with the kernel's cache
//! table, garbage collector and expiry.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::dest::Dest;
use crate::ipvs::hash::addr_hash;
use crate::ipvs::least::{Rule, Tournament};
use crate::service::{AddressFamily, DestList};

/// `CONFIG_IP_VS_LBLC_TAB_BITS` / `CONFIG_IP_VS_LBLCR_TAB_BITS`.
const TAB_BITS: u32 = 10;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: u32 = (1 << TAB_BITS) - 1;
/// `max_size = IP_VS_LBLC_TAB_SIZE * 16`.
const MAX_SIZE: usize = TAB_SIZE * 16;
/// `CHECK_EXPIRE_INTERVAL`.
pub(crate) const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`.
const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// `at + d`, saturating far in the future instead of overflowing.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or(at)
}

/// `now >= since + d`; never, if `since + d` is not representable.
fn reached(now: Instant, since: Instant, d: Duration) -> bool {
    since.checked_add(d).is_some_and(|t| now >= t)
}

/// What an `lblc` entry maps to: one destination; `lblcr`: a set.
pub(crate) trait Target: std::fmt::Debug {
    fn for_each_dest(&self, f: &mut dyn FnMut(u32));
}

impl Target for u32 {
    fn for_each_dest(&self, f: &mut dyn FnMut(u32)) {
        f(*self);
    }
}

/// `struct ip_vs_dest_set`: most recently inserted first (`list_add_rcu`).
#[derive(Debug, Clone)]
pub(crate) struct DestSet {
    dests: Vec<u32>,
    lastmod: Instant,
}

impl Target for DestSet {
    fn for_each_dest(&self, f: &mut dyn FnMut(u32)) {
        self.dests.iter().for_each(|&d| f(d));
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    addr: IpAddr,
    target: T,
    lastuse: Instant,
}

/// The hash table of entries with the periodic collector; shared by both.
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    buckets: Vec<Vec<Entry<T>>>,
    entries: usize,
    rover: u32,
    counter: u32,
    next_timer: Instant,
    pub(crate) expiration: Duration,
    /// References from entries per slot (the kernel's `ip_vs_dest_hold`).
    refs: Vec<u32>,
}

impl<T: Target> Table<T> {
    fn new(now: Instant, expiration: Duration) -> Self {
        Self {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_timer: later(now, CHECK_EXPIRE_INTERVAL),
            expiration,
            refs: Vec::new(),
        }
    }

    fn hold(&mut self, slot: u32) {
        let i = slot as usize;
        if self.refs.len() <= i {
            self.refs.resize(i + 1, 0);
        }
        self.refs[i] += 1;
    }

    fn put(&mut self, slot: u32) {
        if let Some(r) = self.refs.get_mut(slot as usize) {
            *r = r.saturating_sub(1);
        }
    }

    pub(crate) fn holds(&self, slot: u32) -> bool {
        self.refs.get(slot as usize).is_some_and(|&r| r > 0)
    }

    fn find(&mut self, family: AddressFamily, addr: IpAddr) -> Option<&mut Entry<T>> {
        let b = addr_hash(family, addr, TAB_MASK) as usize;
        self.buckets[b].iter_mut().find(|e| e.addr == addr)
    }

    fn insert(&mut self, family: AddressFamily, addr: IpAddr, target: T, now: Instant) {
        target.for_each_dest(&mut |d| self.hold(d));
        let b = addr_hash(family, addr, TAB_MASK) as usize;
        self.buckets[b].push(Entry {
            addr,
            target,
            lastuse: now,
        });
        self.entries += 1;
    }

    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next_timer
    }

    /// `ip_vs_lblc_check_expire` / `ip_vs_lblcr_check_expire`, run when due;
    /// the timer is re-armed 60 s after the run, as `mod_timer` does.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_timer {
            return;
        }
        self.next_timer = later(now, CHECK_EXPIRE_INTERVAL);
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let exp = self.expiration;
            // Full check: every bucket, starting after the rover; the rover
            // ends where it started.
            self.sweep(TAB_SIZE, None, |e| reached(now, e.lastuse, exp));
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
        self.sweep(TAB_SIZE, Some(goal as i64), |e| {
            reached(now, e.lastuse, ENTRY_TIMEOUT)
        });
    }

    /// Frees expired entries bucket by bucket from `rover + 1`, stopping after
    /// a bucket once `goal` (if any) is used up; leaves the rover on the last
    /// bucket visited.
    fn sweep(
        &mut self,
        buckets: usize,
        mut goal: Option<i64>,
        expired: impl Fn(&Entry<T>) -> bool,
    ) {
        let mut j = self.rover;
        for _ in 0..buckets {
            j = (j + 1) & TAB_MASK;
            let refs = &mut self.refs;
            let before = self.buckets[j as usize].len();
            self.buckets[j as usize].retain(|e| {
                if !expired(e) {
                    return true;
                }
                e.target.for_each_dest(&mut |d| {
                    if let Some(r) = refs.get_mut(d as usize) {
                        *r = r.saturating_sub(1);
                    }
                });
                false
            });
            let removed = before - self.buckets[j as usize].len();
            self.entries -= removed;
            if let Some(g) = goal.as_mut() {
                *g -= removed as i64;
                if *g <= 0 {
                    break;
                }
            }
        }
        self.rover = j;
    }
}

/// The wlc fallback shared by both (`__ip_vs_lblc_schedule`), plus the count
/// of listed destinations with `active * 2 < weight` for `is_overloaded`.
#[derive(Debug, Clone)]
pub(crate) struct Fallback {
    pub(crate) wlc: Tournament,
    light: Vec<bool>,
    light_count: usize,
}

fn is_light(d: &Dest) -> bool {
    u64::from(d.active) * 2 < u64::from(d.weight)
}

impl Fallback {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        let mut f = Self {
            wlc: Tournament::new(Rule::Wlc, list),
            light: Vec::new(),
            light_count: 0,
        };
        f.recount(list);
        f
    }

    fn recount(&mut self, list: &DestList<'_>) {
        self.light.clear();
        self.light
            .extend((0..list.len()).map(|i| is_light(list.at(i))));
        self.light_count = self.light.iter().filter(|&&l| l).count();
    }

    pub(crate) fn on_add(&mut self, list: &DestList<'_>) {
        self.wlc.push(list);
        self.recount(list);
    }

    pub(crate) fn rebuild(&mut self, list: &DestList<'_>) {
        self.wlc.rebuild(list);
        self.recount(list);
    }

    pub(crate) fn update(&mut self, list: &DestList<'_>, i: usize) {
        self.wlc.update(list, i);
        if let Some(l) = self.light.get_mut(i) {
            let now = is_light(list.at(i));
            if *l != now {
                *l = now;
                if now {
                    self.light_count += 1;
                } else {
                    self.light_count -= 1;
                }
            }
        }
    }

    /// `is_overloaded(dest, svc)`: more active connections than weight while
    /// some listed destination is under half its weight.
    fn is_overloaded(&self, d: &Dest) -> bool {
        d.active > d.weight && self.light_count > 0
    }

    fn pick(&self, list: &DestList<'_>) -> Option<u32> {
        self.wlc.winner().map(|i| list.order[i])
    }
}

/// `lblc` state.
#[derive(Debug, Clone)]
pub(crate) struct Lblc {
    pub(crate) table: Table<u32>,
    pub(crate) fallback: Fallback,
}

impl Lblc {
    pub(crate) fn new(list: &DestList<'_>, now: Instant, expiration: Duration) -> Self {
        Self {
            table: Table::new(now, expiration),
            fallback: Fallback::new(list),
        }
    }

    /// `ip_vs_lblc_schedule`.
    #[inline]
    pub(crate) fn pick(&mut self, list: &DestList<'_>, now: Instant, daddr: IpAddr) -> Option<u32> {
        if let Some(en) = self.table.find(list.family, daddr) {
            en.lastuse = now;
            let d = list.dest(en.target);
            if d.available && d.weight > 0 && !self.fallback.is_overloaded(d) {
                return Some(en.target);
            }
        }
        let dest = self.fallback.pick(list)?;
        // ip_vs_lblc_new: create, or re-point the existing entry.
        match self.table.find(list.family, daddr) {
            Some(en) => {
                let old = en.target;
                if old != dest {
                    en.target = dest;
                    self.table.put(old);
                    self.table.hold(dest);
                }
            }
            None => self.table.insert(list.family, daddr, dest, now),
        }
        Some(dest)
    }
}

/// `lblcr` state.
#[derive(Debug, Clone)]
pub(crate) struct Lblcr {
    pub(crate) table: Table<DestSet>,
    pub(crate) fallback: Fallback,
}

/// `ip_vs_dest_set_min`: weighted least-connection available member.
fn set_min(list: &DestList<'_>, set: &[u32]) -> Option<u32> {
    let mut it = set.iter().copied();
    let (mut least, mut loh) = loop {
        let s = it.next()?;
        let d = list.dest(s);
        if d.overloaded {
            continue;
        }
        if d.weight > 0 && d.available {
            break (s, d.overhead());
        }
    };
    for s in it {
        let d = list.dest(s);
        if d.overloaded {
            continue;
        }
        let doh = d.overhead();
        let lw = list.dest(least).weight;
        if u128::from(loh) * u128::from(d.weight) > u128::from(doh) * u128::from(lw) && d.available
        {
            least = s;
            loh = doh;
        }
    }
    Some(least)
}

/// `ip_vs_dest_set_max`: weighted most-connection member with weight > 0.
fn set_max(list: &DestList<'_>, set: &[u32]) -> Option<u32> {
    let mut it = set.iter().copied();
    let (mut most, mut moh) = loop {
        let s = it.next()?;
        let d = list.dest(s);
        if d.weight > 0 {
            break (s, d.overhead());
        }
    };
    for s in it {
        let d = list.dest(s);
        let doh = d.overhead();
        let mw = list.dest(most).weight;
        if u128::from(moh) * u128::from(d.weight) < u128::from(doh) * u128::from(mw) && d.weight > 0
        {
            most = s;
            moh = doh;
        }
    }
    Some(most)
}

impl Lblcr {
    pub(crate) fn new(list: &DestList<'_>, now: Instant, expiration: Duration) -> Self {
        Self {
            table: Table::new(now, expiration),
            fallback: Fallback::new(list),
        }
    }

    /// `ip_vs_lblcr_schedule`.
    #[inline]
    pub(crate) fn pick(&mut self, list: &DestList<'_>, now: Instant, daddr: IpAddr) -> Option<u32> {
        let exp = self.table.expiration;
        let Some(en) = self.table.find(list.family, daddr) else {
            let dest = self.fallback.pick(list)?;
            let set = DestSet {
                dests: vec![dest],
                lastmod: now,
            };
            self.table.insert(list.family, daddr, set, now);
            return Some(dest);
        };
        en.lastuse = now;
        let dest = set_min(list, &en.target.dests);
        let mut erased = None;
        if en.target.dests.len() > 1
            && en.target.lastmod.checked_add(exp).is_some_and(|t| now > t)
            && let Some(m) = set_max(list, &en.target.dests)
            && let Some(pos) = en.target.dests.iter().position(|&s| s == m)
        {
            en.target.dests.remove(pos);
            en.target.lastmod = now;
            erased = Some(m);
        }
        if let Some(dest) = dest
            && !self.fallback.is_overloaded(list.dest(dest))
        {
            if let Some(m) = erased {
                self.table.put(m);
            }
            return Some(dest);
        }
        let fallback = self.fallback.pick(list);
        let mut inserted = false;
        if let Some(f) = fallback
            && !en.target.dests.contains(&f)
        {
            en.target.dests.insert(0, f);
            en.target.lastmod = now;
            inserted = true;
        }
        if let Some(m) = erased {
            self.table.put(m);
        }
        if inserted && let Some(f) = fallback {
            self.table.hold(f);
        }
        fallback
    }
}
