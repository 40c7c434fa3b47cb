use std::collections::HashMap;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use lb_sched::{ConnKind, PacketInfo, SchedulerKind};
use siphasher::sip::SipHasher13;

#[derive(Debug, Clone)]
pub struct RDest {
    pub addr: SocketAddr,
    pub weight: i64,
    pub last_weight: i64,
    pub active: i64,
    pub inactive: i64,
    pub persist: i64,
    pub u: i64,
    pub l: i64,
    pub available: bool,
    pub overload: bool,
}

impl RDest {
    fn overhead(&self) -> i128 {
        i128::from(self.active) * 256 + i128::from(self.inactive)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Head,
    At(SocketAddr),
}

#[derive(Debug, Clone)]
struct LblcEntry {
    addr: IpAddr,
    dest: SocketAddr,
    lastuse: u64,
}

#[derive(Debug, Clone)]
struct LblcrEntry {
    addr: IpAddr,
    set: Vec<SocketAddr>,
    lastmod: u64,
    lastuse: u64,
}

/// One service of the reference model. Time is whole seconds.
#[derive(Debug, Clone)]
pub struct Model {
    pub kind: SchedulerKind,
    pub v6: bool,
    pub sched1: bool,
    pub sched2: bool,
    pub list: Vec<RDest>,
    pub trash: Vec<RDest>,
    // rr / wrr
    cursor: Cursor,
    cw: i64,
    mw: i64,
    di: i64,
    // dh / sh / mh tables
    table: Vec<Option<SocketAddr>>,
    sh_bits: u32,
    mh_size: u32,
    // lblc / lblcr
    lblc: Vec<Vec<LblcEntry>>,
    lblcr: Vec<Vec<LblcrEntry>>,
    entries: i64,
    rover: u32,
    counter: u32,
    timer: u64,
    pub expiration: u64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn fold(v6: bool, a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let s = a.segments();
            let w = |i: usize| (u32::from(s[i]) << 16) | u32::from(s[i + 1]);
            if v6 { w(0) ^ w(2) ^ w(4) ^ w(6) } else { w(0) }
        }
    }
}

/// hash_32(val, bits) of include/linux/hash.h: the top `bits` bits of
/// `val * 0x61C88647` in 32 bits.
fn hash_32(val: u32, bits: u32) -> u64 {
    u64::from(val.wrapping_mul(0x61C8_8647) >> (32 - bits))
}

fn hsiphash(key: u64, v: u32) -> u32 {
    let mut h = SipHasher13::new_with_keys(key, key);
    h.write(&v.to_le_bytes());
    h.finish() as u32
}

const PRIMES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

impl Model {
    pub fn new(
        kind: SchedulerKind,
        v6: bool,
        sched1: bool,
        sched2: bool,
        mh_size: u32,
        sh_bits: u32,
    ) -> Self {
        let mut m = Self {
            kind,
            v6,
            sched1,
            sched2,
            list: Vec::new(),
            trash: Vec::new(),
            cursor: Cursor::Head,
            cw: 0,
            mw: 0,
            di: 1,
            table: Vec::new(),
            sh_bits,
            mh_size,
            lblc: vec![Vec::new(); 1024],
            lblcr: vec![Vec::new(); 1024],
            entries: 0,
            rover: 0,
            counter: 1,
            timer: 60,
            expiration: 24 * 3600,
        };
        m.init();
        m
    }

    fn init(&mut self) {
        match self.kind {
            SchedulerKind::Rr => self.cursor = Cursor::Head,
            SchedulerKind::Wrr => {
                self.cursor = Cursor::Head;
                self.di = self.wrr_gcd();
                self.mw = self.wrr_max() - (self.di - 1);
                self.cw = self.mw;
            }
            SchedulerKind::Dh => self.dh_reassign(),
            SchedulerKind::Sh => self.sh_reassign(),
            SchedulerKind::Mh => {
                self.table = vec![None; self.mh_size as usize];
                self.mh_changed();
            }
            _ => {}
        }
    }

    pub fn find(&self, addr: SocketAddr) -> Option<&RDest> {
        self.list
            .iter()
            .chain(self.trash.iter())
            .find(|d| d.addr == addr)
    }

    fn find_mut(&mut self, addr: SocketAddr) -> Option<&mut RDest> {
        self.list
            .iter_mut()
            .chain(self.trash.iter_mut())
            .find(|d| d.addr == addr)
    }

    fn pos(&self, addr: SocketAddr) -> Option<usize> {
        self.list.iter().position(|d| d.addr == addr)
    }

    // ---- ip_vs_ctl.c ----

    /// ip_vs_add_dest; false = refused.
    pub fn add(&mut self, addr: SocketAddr, weight: i64, u: i64, l: i64) -> bool {
        if l > u || self.pos(addr).is_some() {
            return false;
        }
        let mut d = match self.trash.iter().position(|d| d.addr == addr) {
            Some(i) => self.trash.remove(i),
            None => RDest {
                addr,
                weight: 0,
                last_weight: 0,
                active: 0,
                inactive: 0,
                persist: 0,
                u: 0,
                l: 0,
                available: false,
                overload: false,
            },
        };
        Self::update_fields(&mut d, weight, u, l, true);
        self.list.insert(0, d);
        self.hook_add_upd_del();
        true
    }

    fn update_fields(d: &mut RDest, weight: i64, u: i64, l: i64, add: bool) {
        if add || weight != 0 {
            d.last_weight = weight;
        }
        d.weight = weight;
        d.available = true;
        if u != d.u || l != d.l {
            d.u = u;
            d.l = l;
            Self::update_overload(d);
        }
    }

    /// ip_vs_dest_update_overload (ip_vs_conn.c).
    fn update_overload(d: &mut RDest) {
        if d.u == 0 {
            d.overload = false;
            return;
        }
        let conns = d.active + d.inactive;
        if conns >= d.u {
            d.overload = true;
            return;
        }
        let l = if d.l != 0 { d.l } else { d.u - (d.u >> 2) };
        if conns < l {
            d.overload = false;
        }
    }

    /// ip_vs_edit_dest.
    pub fn edit(&mut self, addr: SocketAddr, weight: i64, u: i64, l: i64) -> bool {
        if l > u {
            return false;
        }
        let Some(i) = self.pos(addr) else {
            return false;
        };
        Self::update_fields(&mut self.list[i], weight, u, l, false);
        self.hook_add_upd_del();
        true
    }

    /// ip_vs_del_dest.
    pub fn del(&mut self, addr: SocketAddr) -> bool {
        let Some(i) = self.pos(addr) else {
            return false;
        };
        let mut d = self.list.remove(i);
        d.available = false;
        self.trash.push(d);
        if self.kind == SchedulerKind::Rr && self.cursor == Cursor::At(addr) {
            // p->next->prev after unlinking: the predecessor, or the head.
            self.cursor = if i == 0 {
                Cursor::Head
            } else {
                Cursor::At(self.list[i - 1].addr)
            };
        }
        self.hook_add_upd_del();
        true
    }

    fn hook_add_upd_del(&mut self) {
        match self.kind {
            SchedulerKind::Wrr => {
                self.cursor = Cursor::Head;
                self.di = self.wrr_gcd();
                self.mw = self.wrr_max() - (self.di - 1);
                if self.cw > self.mw || self.cw == 0 {
                    self.cw = self.mw;
                } else if self.di > 1 {
                    self.cw = (self.cw / self.di) * self.di + 1;
                }
            }
            SchedulerKind::Dh => self.dh_reassign(),
            SchedulerKind::Sh => self.sh_reassign(),
            SchedulerKind::Mh => self.mh_changed(),
            _ => {}
        }
    }

    // ---- ip_vs_conn.c ----

    pub fn bind(&mut self, addr: SocketAddr, kind: ConnKind) -> bool {
        let Some(d) = self.find_mut(addr) else {
            return false;
        };
        match kind {
            ConnKind::Active => d.active += 1,
            ConnKind::Inactive => d.inactive += 1,
            ConnKind::Template => d.persist += 1,
        }
        Self::update_overload(d);
        true
    }

    pub fn unbind(&mut self, addr: SocketAddr, kind: ConnKind) -> bool {
        let Some(d) = self.find_mut(addr) else {
            return false;
        };
        let c = match kind {
            ConnKind::Active => &mut d.active,
            ConnKind::Inactive => &mut d.inactive,
            ConnKind::Template => &mut d.persist,
        };
        if *c == 0 {
            return false;
        }
        *c -= 1;
        if d.overload {
            Self::update_overload(d);
        }
        true
    }

    pub fn set_active(&mut self, addr: SocketAddr, active: bool) -> bool {
        let Some(d) = self.find_mut(addr) else {
            return false;
        };
        if active {
            if d.inactive == 0 {
                return false;
            }
            d.inactive -= 1;
            d.active += 1;
        } else {
            if d.active == 0 {
                return false;
            }
            d.active -= 1;
            d.inactive += 1;
        }
        true
    }

    // ---- schedulers ----

    pub fn pick(
        &mut self,
        now: u64,
        pkt: &PacketInfo,
        rnd: &mut dyn FnMut() -> u32,
    ) -> Option<SocketAddr> {
        match self.kind {
            SchedulerKind::Rr => self.rr(),
            SchedulerKind::Wrr => self.wrr(),
            SchedulerKind::Lc => self.lc(),
            SchedulerKind::Wlc => self.wlc(),
            SchedulerKind::Sed => self.sed(),
            SchedulerKind::Nq => self.nq(),
            SchedulerKind::Fo => self.fo(),
            SchedulerKind::Ovf => self.ovf(),
            SchedulerKind::Lblc => self.lblc(now, pkt.dst),
            SchedulerKind::Lblcr => self.lblcr(now, pkt.dst),
            SchedulerKind::Dh => self.dh(pkt),
            SchedulerKind::Sh => self.sh(pkt),
            SchedulerKind::Mh => self.mh(pkt),
            SchedulerKind::Twos => self.twos(rnd),
        }
    }

    fn rr(&mut self) -> Option<SocketAddr> {
        let n = self.list.len();
        let start = match self.cursor {
            Cursor::Head => None,
            Cursor::At(a) => self.pos(a),
        };
        // list_for_each_entry_continue from the cursor, wrapping once past the head.
        let order: Vec<usize> = match start {
            None => (0..n).collect(),
            Some(c) => (c + 1..n).chain(0..=c).collect(),
        };
        for i in order {
            let d = &self.list[i];
            if !d.overload && d.weight > 0 {
                self.cursor = Cursor::At(d.addr);
                return Some(d.addr);
            }
        }
        None
    }

    fn wrr_gcd(&self) -> i64 {
        let mut g = 0;
        for d in &self.list {
            if d.weight > 0 {
                g = if g > 0 { gcd(d.weight, g) } else { d.weight };
            }
        }
        if g != 0 { g } else { 1 }
    }

    fn wrr_max(&self) -> i64 {
        self.list.iter().map(|d| d.weight).fold(0, i64::max)
    }

    /// ip_vs_wrr_schedule, literally (positions: None = head).
    fn wrr(&mut self) -> Option<SocketAddr> {
        let mut pos: Option<usize> = match self.cursor {
            Cursor::Head => None,
            Cursor::At(a) => self.pos(a),
        };
        if self.mw == 0 {
            return None;
        }
        let last = pos;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut guard = 0u64;
        loop {
            guard += 1;
            assert!(guard < 10_000_000, "reference wrr looping");
            let from = pos.map_or(0, |p| p + 1);
            for i in from..self.list.len() {
                let d = &self.list[i];
                if !d.overload && d.weight >= self.cw {
                    self.cursor = Cursor::At(d.addr);
                    return Some(d.addr);
                }
                if stop == Some(i) {
                    self.cursor = Cursor::At(d.addr);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cursor = Cursor::Head;
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

    fn lc(&self) -> Option<SocketAddr> {
        let mut least: Option<&RDest> = None;
        for d in &self.list {
            if d.overload || d.weight == 0 {
                continue;
            }
            if least.is_none_or(|l| d.overhead() < l.overhead()) {
                least = Some(d);
            }
        }
        least.map(|d| d.addr)
    }

    fn weighted(&self, oh: impl Fn(&RDest) -> i128) -> Option<SocketAddr> {
        let first = self.list.iter().position(|d| !d.overload && d.weight > 0)?;
        let mut least = &self.list[first];
        let mut loh = oh(least);
        for d in &self.list[first + 1..] {
            if d.overload {
                continue;
            }
            let doh = oh(d);
            if loh * i128::from(d.weight) > doh * i128::from(least.weight) {
                least = d;
                loh = doh;
            }
        }
        Some(least.addr)
    }

    fn wlc(&self) -> Option<SocketAddr> {
        self.weighted(RDest::overhead)
    }

    fn sed(&self) -> Option<SocketAddr> {
        self.weighted(|d| i128::from(d.active) + 1)
    }

    fn nq(&self) -> Option<SocketAddr> {
        let mut least: Option<(&RDest, i128)> = None;
        for d in &self.list {
            if d.overload || d.weight == 0 {
                continue;
            }
            let doh = i128::from(d.active) + 1;
            if d.active == 0 {
                return Some(d.addr);
            }
            if least.is_none_or(|(l, loh)| loh * i128::from(d.weight) > doh * i128::from(l.weight))
            {
                least = Some((d, doh));
            }
        }
        least.map(|(d, _)| d.addr)
    }

    fn fo(&self) -> Option<SocketAddr> {
        let mut h = None;
        let mut hw = 0;
        for d in &self.list {
            if !d.overload && d.weight > hw {
                h = Some(d.addr);
                hw = d.weight;
            }
        }
        h
    }

    fn ovf(&self) -> Option<SocketAddr> {
        let mut h = None;
        let mut hw = 0;
        for d in &self.list {
            let w = d.weight;
            if d.overload || d.active > w || w == 0 {
                continue;
            }
            if h.is_none() || w > hw {
                h = Some(d.addr);
                hw = w;
            }
        }
        h
    }

    fn is_overloaded_lblc(&self, d: &RDest) -> bool {
        d.active > d.weight && self.list.iter().any(|x| x.active * 2 < x.weight)
    }

    fn lblc_bucket(&self, a: IpAddr) -> usize {
        hash_32(fold(self.v6, a), 10) as usize
    }

    fn lblc(&mut self, now: u64, daddr: IpAddr) -> Option<SocketAddr> {
        let b = self.lblc_bucket(daddr);
        if let Some(i) = self.lblc[b].iter().position(|e| e.addr == daddr) {
            self.lblc[b][i].lastuse = now;
            let d = self.find(self.lblc[b][i].dest).expect("held dest").clone();
            if d.available && d.weight > 0 && !self.is_overloaded_lblc(&d) {
                return Some(d.addr);
            }
        }
        let dest = self.wlc()?;
        match self.lblc[b].iter_mut().find(|e| e.addr == daddr) {
            Some(e) => e.dest = dest,
            None => {
                self.lblc[b].insert(
                    0,
                    LblcEntry {
                        addr: daddr,
                        dest,
                        lastuse: now,
                    },
                );
                self.entries += 1;
            }
        }
        Some(dest)
    }

    fn set_min(&self, set: &[SocketAddr]) -> Option<SocketAddr> {
        let ds: Vec<RDest> = set
            .iter()
            .map(|a| self.find(*a).expect("held").clone())
            .collect();
        let mut k = 0;
        let mut least;
        loop {
            let d = ds.get(k)?;
            k += 1;
            least = d;
            if least.overload {
                continue;
            }
            if least.weight > 0 && least.available {
                break;
            }
        }
        let mut loh = least.overhead();
        for d in &ds[k..] {
            if d.overload {
                continue;
            }
            let doh = d.overhead();
            if loh * i128::from(d.weight) > doh * i128::from(least.weight) && d.available {
                least = d;
                loh = doh;
            }
        }
        Some(least.addr)
    }

    fn set_max(&self, set: &[SocketAddr]) -> Option<SocketAddr> {
        let ds: Vec<RDest> = set
            .iter()
            .map(|a| self.find(*a).expect("held").clone())
            .collect();
        let k = ds.iter().position(|d| d.weight > 0)?;
        let mut most = &ds[k];
        let mut moh = most.overhead();
        for d in &ds[k + 1..] {
            let doh = d.overhead();
            if moh * i128::from(d.weight) < doh * i128::from(most.weight) && d.weight > 0 {
                most = d;
                moh = doh;
            }
        }
        Some(most.addr)
    }

    fn lblcr(&mut self, now: u64, daddr: IpAddr) -> Option<SocketAddr> {
        let b = self.lblc_bucket(daddr);
        let Some(i) = self.lblcr[b].iter().position(|e| e.addr == daddr) else {
            let dest = self.wlc()?;
            self.lblcr[b].insert(
                0,
                LblcrEntry {
                    addr: daddr,
                    set: vec![dest],
                    lastmod: now,
                    lastuse: now,
                },
            );
            self.entries += 1;
            return Some(dest);
        };
        self.lblcr[b][i].lastuse = now;
        let set = self.lblcr[b][i].set.clone();
        let dest = self.set_min(&set);
        if set.len() > 1
            && now > self.lblcr[b][i].lastmod + self.expiration
            && let Some(m) = self.set_max(&set)
        {
            let e = &mut self.lblcr[b][i];
            if let Some(p) = e.set.iter().position(|&x| x == m) {
                e.set.remove(p);
                e.lastmod = now;
            }
        }
        if let Some(d) = dest {
            let d = self.find(d).expect("held").clone();
            if !self.is_overloaded_lblc(&d) {
                return Some(d.addr);
            }
        }
        let dest = self.wlc()?;
        let e = &mut self.lblcr[b][i];
        if !e.set.contains(&dest) {
            e.set.insert(0, dest);
            e.lastmod = now;
        }
        Some(dest)
    }

    /// The periodic collector, if due at `now` (seconds).
    pub fn timer(&mut self, now: u64) {
        if now < self.timer || !matches!(self.kind, SchedulerKind::Lblc | SchedulerKind::Lblcr) {
            return;
        }
        self.timer = now + 60;
        let max_size = 1024 * 16;
        if self.counter.is_multiple_of(30) {
            let exp = self.expiration;
            self.collect(now, exp, None);
            self.counter = 1;
            return;
        }
        if self.entries <= max_size {
            self.counter += 1;
            return;
        }
        let goal = ((self.entries - max_size) * 4 / 3).min(max_size / 2);
        self.collect(now, 360, Some(goal));
    }

    fn collect(&mut self, now: u64, timeout: u64, mut goal: Option<i64>) {
        let mut j = self.rover;
        for _ in 0..1024 {
            j = (j + 1) & 1023;
            let b = j as usize;
            let before = self.lblc[b].len() + self.lblcr[b].len();
            self.lblc[b].retain(|e| now < e.lastuse + timeout);
            self.lblcr[b].retain(|e| now < e.lastuse + timeout);
            let removed = before - self.lblc[b].len() - self.lblcr[b].len();
            self.entries -= removed as i64;
            if let Some(g) = goal.as_mut() {
                *g -= removed as i64;
                if *g <= 0 {
                    break;
                }
            }
        }
        self.rover = j;
    }

    /// Number of cache entries (lblc/lblcr).
    pub fn entries(&self) -> i64 {
        self.entries
    }

    pub fn next_timer(&self) -> Option<u64> {
        matches!(self.kind, SchedulerKind::Lblc | SchedulerKind::Lblcr).then_some(self.timer)
    }

    fn dh_reassign(&mut self) {
        self.table = (0..256)
            .map(|i| (!self.list.is_empty()).then(|| self.list[i % self.list.len()].addr))
            .collect();
    }

    fn dh(&self, pkt: &PacketInfo) -> Option<SocketAddr> {
        let h = hash_32(fold(self.v6, pkt.dst), 8) as usize;
        let a = self.table[h]?;
        let d = self.find(a)?;
        (d.available && d.weight > 0 && !d.overload).then_some(a)
    }

    fn sh_reassign(&mut self) {
        let size = 1usize << self.sh_bits;
        self.table = vec![None; size];
        if self.list.is_empty() {
            return;
        }
        let mut p = 0;
        let mut d_count = 0;
        for i in 0..size {
            self.table[i] = Some(self.list[p].addr);
            d_count += 1;
            if d_count >= self.list[p].weight {
                p = (p + 1) % self.list.len();
                d_count = 0;
            }
        }
    }

    fn port(&self, pkt: &PacketInfo) -> u16 {
        if !self.sched2 || !pkt.protocol.has_ports() {
            0
        } else if pkt.inverse {
            pkt.dst_port
        } else {
            pkt.src_port
        }
    }

    fn unavailable(&self, a: SocketAddr) -> bool {
        let d = self.find(a).expect("table dest");
        d.weight <= 0 || d.overload
    }

    fn sh(&self, pkt: &PacketInfo) -> Option<SocketAddr> {
        let addr = if pkt.inverse { pkt.dst } else { pkt.src };
        let port = self.port(pkt);
        let size = 1u64 << self.sh_bits;
        let key = |offset: u64| -> usize {
            let base = u32::from(port).wrapping_add(fold(self.v6, addr));
            ((offset + hash_32(base, self.sh_bits)) & (size - 1)) as usize
        };
        let ihash = key(0);
        let a = self.table[ihash]?;
        if !self.unavailable(a) {
            return Some(a);
        }
        if !self.sched1 {
            return None;
        }
        for offset in 0..size {
            let roffset = (offset + ihash as u64) % size;
            let a = self.table[key(roffset)]?;
            if !self.unavailable(a) {
                return Some(a);
            }
        }
        None
    }

    fn mh_key(&self, a: IpAddr, port: u16, key: u64, offset: u32) -> u32 {
        let v = offset
            .wrapping_add(u32::from(port))
            .wrapping_add(fold(self.v6, a));
        hsiphash(key, v)
    }

    fn mh_changed(&mut self) {
        let m = self.mh_size;
        if self.list.len() > m as usize {
            return;
        }
        let g = self
            .list
            .iter()
            .filter(|d| d.last_weight > 0)
            .fold(0, |g, d| {
                if g > 0 {
                    gcd(d.last_weight, g)
                } else {
                    d.last_weight
                }
            });
        if g < 1 {
            self.table = vec![None; m as usize];
            return;
        }
        let index = PRIMES.iter().position(|&p| p == m).unwrap() as i64 + 8;
        let bits = index / 2;
        let mw = self.list.iter().map(|d| d.last_weight).max().unwrap() / g;
        let fls = 64 - i64::from(mw.leading_zeros());
        let shift = (fls - bits).max(0);
        let mut setup: Vec<(u32, u32, i64)> = self
            .list
            .iter()
            .map(|d| {
                let off = self.mh_key(d.addr.ip(), d.addr.port(), 2_654_435_761, 0) % m;
                let skip = self.mh_key(d.addr.ip(), d.addr.port(), 2_654_446_892, 0) % (m - 1) + 1;
                let t = (d.last_weight / g) >> shift;
                let turns = if t != 0 {
                    t
                } else {
                    i64::from(d.last_weight != 0)
                };
                (off, skip, turns)
            })
            .collect();
        let mut taken = vec![false; m as usize];
        let mut n = 0;
        let mut dt_count = 0;
        loop {
            let mut p = 0;
            while p < self.list.len() {
                if setup[p].2 < 1 {
                    p += 1;
                    continue;
                }
                let mut c = setup[p].0;
                while taken[c as usize] {
                    setup[p].0 = (setup[p].0 + setup[p].1) % m;
                    c = setup[p].0;
                }
                taken[c as usize] = true;
                self.table[c as usize] = Some(self.list[p].addr);
                n += 1;
                if n == m {
                    return;
                }
                dt_count += 1;
                if dt_count >= setup[p].2 {
                    dt_count = 0;
                    p += 1;
                }
            }
        }
    }

    fn mh(&self, pkt: &PacketInfo) -> Option<SocketAddr> {
        let addr = if pkt.inverse { pkt.dst } else { pkt.src };
        let port = self.port(pkt);
        let m = self.mh_size;
        let ihash = self.mh_key(addr, port, 2_654_435_761, 0) % m;
        let a = self.table[ihash as usize]?;
        if !self.unavailable(a) {
            return Some(a);
        }
        if !self.sched1 {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let h = self.mh_key(addr, port, 2_654_435_761, roffset) % m;
            let a = self.table[h as usize]?;
            if !self.unavailable(a) {
                return Some(a);
            }
        }
        None
    }

    fn twos(&self, rnd: &mut dyn FnMut() -> u32) -> Option<SocketAddr> {
        let el: Vec<&RDest> = self
            .list
            .iter()
            .filter(|d| !d.overload && d.weight > 0)
            .collect();
        if el.is_empty() {
            return None;
        }
        let total: i64 = el.iter().map(|d| d.weight).sum::<i64>() + 1;
        // total_weight += 1;
        // rweight1 = get_random_u32_below(total_weight);
        // rweight2 = get_random_u32_below(total_weight);
        let ceil = u32::try_from(total).expect("model weights stay in the kernel's int range");
        let mut r1 = i64::from(get_random_u32_below(rnd, ceil));
        let mut r2 = i64::from(get_random_u32_below(rnd, ceil));
        let (mut c1, mut c2) = (None, None);
        for d in &el {
            r1 -= d.weight;
            r2 -= d.weight;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(*d);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(*d);
            }
        }
        let (c1, c2) = (c1.unwrap(), c2.unwrap());
        if i128::from(c2.weight) * c1.overhead() > i128::from(c1.weight) * c2.overhead() {
            Some(c2.addr)
        } else {
            Some(c1.addr)
        }
    }
}

/// Counts per address, for comparisons.
pub fn counters(m: &Model) -> HashMap<SocketAddr, (i64, i64, i64, bool, bool)> {
    m.list
        .iter()
        .chain(m.trash.iter())
        .filter(|d| d.available || d.active + d.inactive + d.persist > 0)
        .map(|d| {
            (
                d.addr,
                (d.active, d.inactive, d.persist, d.overload, d.available),
            )
        })
        .collect()
}

/// `__get_random_u32_below` of drivers/char/random.c, line by line (`rnd`
/// is `get_random_u32`).
fn get_random_u32_below(rnd: &mut dyn FnMut() -> u32, ceil: u32) -> u32 {
    let rand = rnd();
    if ceil == 0 {
        return rand;
    }
    // mult = (u64)ceil * rand;
    let mut mult: u64 = u64::from(ceil) * u64::from(rand);
    // if (unlikely((u32)mult < ceil)) {
    if (mult as u32) < ceil {
        // u32 bound = -ceil % ceil;
        let bound: u32 = (0u32.wrapping_sub(ceil)) % ceil;
        // while (unlikely((u32)mult < bound))
        //         mult = (u64)ceil * get_random_u32();
        while (mult as u32) < bound {
            mult = u64::from(ceil) * u64::from(rnd());
        }
    }
    // return mult >> 32;
    (mult >> 32) as u32
}
