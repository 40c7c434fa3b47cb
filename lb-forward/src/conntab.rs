//! The connection table: a fixed-capacity slab of 52-byte entries, two
//! chained hash indexes (client side and, for NAT, real-server side) and a
//! timer wheel for expiry.
//!
//! Sizes: an entry is 52 bytes, and each of the two bucket arrays holds one
//! `u32` per entry at full load (capacity rounded up to a power of two), so
//! a full table costs 60 bytes per connection (IPVS: 400–512). IPv4 and
//! IPv6 share one layout because addresses are stored IPv4-mapped; the
//! virtual address is interned into a 16-bit index, since a director has
//! few VIPs.
//!
//! Expiry: the wheel has 4096 slots of 256 ms, one lap = 17.5 min, longer
//! than every default timeout (ESTABLISHED: 15 min). Each entry sits in the
//! slot of its expiry time (doubly linked, moved in O(1) when a packet
//! pushes the time into another slot); entries further away than one lap
//! are looked at once per lap and put back. So expiry costs amortized O(1)
//! per entry, and an entry goes at most 256 ms after its timeout.
//!
//! Hashing: a keyed multiply-fold hash (the seed is an argument, so the
//! caller draws it at random), so remote clients cannot aim at one chain.
//!
//! Nothing here allocates after [`ConnTable::new`], except when more than
//! 64 distinct VIPs are in use at once (the VIP index then grows).

use crate::addr::Addr;
use std::collections::HashMap;

/// Index of an entry.
pub type ConnId = u32;

const NIL: u32 = u32::MAX;
const SLOT_SHIFT: u32 = 8; // 256 ms
const NSLOTS: u32 = 4096;

/// Entry flags.
pub mod flags {
    /// Not established (`IP_VS_CONN_F_INACTIVE`), for the dest counters.
    pub const INACTIVE: u8 = 0x02;
    /// No reply seen through the director yet (`IP_VS_CONN_F_NOOUTPUT`).
    pub const NOOUTPUT: u8 = 0x04;
    /// Linked into the real-server-side (NAT reply) index.
    pub const OUT_INDEXED: u8 = 0x08;
    /// Linked into the timer wheel.
    pub const ON_WHEEL: u8 = 0x10;
    /// In use (not on the free list).
    pub const LIVE: u8 = 0x20;
}

/// No persistence template ([`Entry::template`]).
pub const NO_TEMPLATE: u32 = u32::MAX;

/// One connection. Persistence templates live in `lb-sched`'s
/// [`PersistTable`](lb_sched::persist::PersistTable), not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    /// Client address.
    pub caddr: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Interned virtual address.
    pub vip: u16,
    /// Destination slot.
    pub dest: u16,
    /// IP protocol.
    pub proto: u8,
    /// [`crate::state::State`] as a byte.
    pub state: u8,
    /// [`flags`].
    pub flags: u8,
    _pad: u8,
    /// Expiry time, milliseconds since the table's epoch (wrapping).
    pub expires: u32,
    in_next: u32,
    out_next: u32,
    wheel_next: u32,
    wheel_prev: u32,
    /// The persistence template controlling it
    /// ([`TemplateId::to_raw`](lb_sched::persist::TemplateId::to_raw)), or
    /// [`NO_TEMPLATE`].
    pub template: u32,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            caddr: Addr::default(),
            cport: 0,
            vport: 0,
            vip: 0,
            dest: 0,
            proto: 0,
            state: 0,
            flags: 0,
            _pad: 0,
            expires: 0,
            in_next: 0,
            out_next: 0,
            wheel_next: 0,
            wheel_prev: 0,
            template: NO_TEMPLATE,
        }
    }
}

/// What to insert.
#[derive(Clone, Copy, Debug)]
pub struct NewConn {
    /// IP protocol.
    pub proto: u8,
    /// Client address.
    pub caddr: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: Addr,
    /// Virtual port.
    pub vport: u16,
    /// Destination slot.
    pub dest: u16,
    /// Initial state byte.
    pub state: u8,
    /// Initial flags ([`flags::NOOUTPUT`], [`flags::INACTIVE`]).
    pub flags: u8,
    /// Its persistence template, raw, or [`NO_TEMPLATE`].
    pub template: u32,
    /// Also index by the real-server side (NAT).
    pub index_out: bool,
    /// Expiry, ms since epoch.
    pub expires: u32,
}

/// The connection table. See the module docs.
#[derive(Debug)]
pub struct ConnTable {
    entries: Vec<Entry>,
    cap: usize,
    free: u32,
    len: usize,
    in_heads: Vec<u32>,
    out_heads: Vec<u32>,
    mask: usize,
    wheel: Vec<u32>,
    cursor: u32,
    sweep: u32,
    seed: u64,
    vips: Vec<Addr>,
    vip_refs: Vec<u32>,
    vip_index: HashMap<Addr, u16>,
    vip_free: Vec<u16>,
    dest_addr: Vec<(Addr, u16)>,
}

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn words(a: &Addr) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&a.0[..8]);
    hi.copy_from_slice(&a.0[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

const K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

#[inline]
fn hash4(seed: u64, a: &Addr, b: &Addr, tail: u64) -> u64 {
    let (a0, a1) = words(a);
    let (b0, b1) = words(b);
    let h = mix(a0 ^ seed ^ K[0], a1 ^ K[1]);
    let h = mix(h ^ b0 ^ K[2], b1 ^ K[3]);
    mix(h ^ tail, seed ^ K[1])
}

#[inline]
fn due(expires: u32, now: u32) -> bool {
    (now.wrapping_sub(expires) as i32) >= 0
}

#[inline]
fn slot_of(t: u32) -> usize {
    ((t >> SLOT_SHIFT) & (NSLOTS - 1)) as usize
}

impl ConnTable {
    /// A table for `capacity` connections, whose
    /// clock starts at `now_ms`, hashing with `seed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use lb_forward::{addr::Addr, conntab::*};
    /// let mut t = ConnTable::new(1024, 0, 42);
    /// let c = Addr::v4([10, 0, 0, 2]);
    /// let v = Addr::v4([10, 0, 0, 100]);
    /// let id = t
    ///     .insert(NewConn { proto: 6, caddr: c, cport: 40000, vaddr: v, vport: 80, dest: 0,
    ///         state: 0, flags: 0, template: NO_TEMPLATE, index_out: false, expires: 3000 })
    ///     .unwrap();
    /// assert_eq!(t.lookup_in(6, &c, 40000, &v, 80), Some(id));
    /// assert_eq!(t.next_expired(2999), None);
    /// assert_eq!(t.next_expired(3300), Some(id));
    /// ```
    #[must_use]
    pub fn new(capacity: usize, now_ms: u32, seed: u64) -> Self {
        let cap = capacity.clamp(1, (NIL - 1) as usize);
        let buckets = cap.next_power_of_two();
        Self {
            entries: Vec::with_capacity(cap),
            cap,
            free: NIL,
            len: 0,
            in_heads: vec![NIL; buckets],
            out_heads: vec![NIL; buckets],
            mask: buckets - 1,
            wheel: vec![NIL; NSLOTS as usize],
            cursor: now_ms >> SLOT_SHIFT,
            sweep: NIL,
            seed,
            vips: Vec::with_capacity(64),
            vip_refs: Vec::with_capacity(64),
            vip_index: HashMap::with_capacity(64),
            vip_free: Vec::with_capacity(64),
            dest_addr: Vec::new(),
        }
    }

    /// Live entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of memory per entry at full capacity (slab plus both bucket
    /// arrays), the figure the module docs quote.
    #[must_use]
    pub fn bytes_per_entry(&self) -> f64 {
        let buckets = (self.mask + 1) * 2 * size_of::<u32>();
        (self.cap * size_of::<Entry>() + buckets) as f64 / self.cap as f64
    }

    /// Registers (or changes) the address of destination slot `dest`, used
    /// by the real-server-side index.
    pub fn set_dest(&mut self, dest: u16, addr: Addr, port: u16) {
        let i = usize::from(dest);
        if self.dest_addr.len() <= i {
            self.dest_addr.resize(i + 1, (Addr::UNSPECIFIED, 0));
        }
        self.dest_addr[i] = (addr, port);
    }

    /// The entry `id` (which must be live).
    #[must_use]
    pub fn get(&self, id: ConnId) -> &Entry {
        &self.entries[id as usize]
    }

    /// The entry `id`, mutably. Change `expires` only through
    /// [`ConnTable::set_expires`].
    pub fn get_mut(&mut self, id: ConnId) -> &mut Entry {
        &mut self.entries[id as usize]
    }

    /// The virtual address of an entry.
    #[must_use]
    pub fn vaddr(&self, e: &Entry) -> Addr {
        self.vips
            .get(usize::from(e.vip))
            .copied()
            .unwrap_or_default()
    }

    fn in_hash(&self, proto: u8, caddr: &Addr, cport: u16, vaddr: &Addr, vport: u16) -> usize {
        let tail =
            u64::from(cport) | (u64::from(vport) << 16) | (u64::from(proto) << 32) | (1 << 40);
        hash4(self.seed, caddr, vaddr, tail) as usize & self.mask
    }

    fn out_hash(&self, proto: u8, daddr: &Addr, dport: u16, caddr: &Addr, cport: u16) -> usize {
        let tail =
            u64::from(cport) | (u64::from(dport) << 16) | (u64::from(proto) << 32) | (2 << 40);
        hash4(self.seed, caddr, daddr, tail) as usize & self.mask
    }

    /// Finds the connection of a client-to-VIP packet.
    #[must_use]
    #[inline]
    pub fn lookup_in(
        &self,
        proto: u8,
        caddr: &Addr,
        cport: u16,
        vaddr: &Addr,
        vport: u16,
    ) -> Option<ConnId> {
        let mut i = self.in_heads[self.in_hash(proto, caddr, cport, vaddr, vport)];
        while i != NIL {
            let e = &self.entries[i as usize];
            if e.cport == cport
                && e.vport == vport
                && e.proto == proto
                && e.caddr == *caddr
                && self.vips[usize::from(e.vip)] == *vaddr
            {
                return Some(i);
            }
            i = e.in_next;
        }
        None
    }

    /// Finds the NAT connection of a real-server-to-client packet.
    #[must_use]
    pub fn lookup_out(
        &self,
        proto: u8,
        daddr: &Addr,
        dport: u16,
        caddr: &Addr,
        cport: u16,
    ) -> Option<ConnId> {
        let mut i = self.out_heads[self.out_hash(proto, daddr, dport, caddr, cport)];
        while i != NIL {
            let e = &self.entries[i as usize];
            if e.cport == cport && e.proto == proto && e.caddr == *caddr {
                let (a, p) = self
                    .dest_addr
                    .get(usize::from(e.dest))
                    .copied()
                    .unwrap_or_default();
                // A destination port of zero means "the virtual port".
                let p = if p == 0 { e.vport } else { p };
                if p == dport && a == *daddr {
                    return Some(i);
                }
            }
            i = e.out_next;
        }
        None
    }

    fn intern(&mut self, v: Addr) -> Option<u16> {
        if let Some(&i) = self.vip_index.get(&v) {
            self.vip_refs[usize::from(i)] += 1;
            return Some(i);
        }
        let i = if let Some(i) = self.vip_free.pop() {
            self.vips[usize::from(i)] = v;
            self.vip_refs[usize::from(i)] = 1;
            i
        } else {
            let i = u16::try_from(self.vips.len()).ok()?;
            self.vips.push(v);
            self.vip_refs.push(1);
            i
        };
        self.vip_index.insert(v, i);
        Some(i)
    }

    fn unintern(&mut self, i: u16) {
        let r = &mut self.vip_refs[usize::from(i)];
        *r -= 1;
        if *r == 0 {
            self.vip_index.remove(&self.vips[usize::from(i)]);
            self.vip_free.push(i);
        }
    }

    /// Inserts an entry; `None` when the table is full. The caller has
    /// checked that no entry with the same key exists.
    pub fn insert(&mut self, n: NewConn) -> Option<ConnId> {
        if self.len >= self.cap {
            return None;
        }
        let vip = self.intern(n.vaddr)?;
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.entries[id as usize].in_next;
            id
        } else {
            self.entries.push(Entry::default());
            (self.entries.len() - 1) as u32
        };
        let bucket = self.in_hash(n.proto, &n.caddr, n.cport, &n.vaddr, n.vport);
        let mut f = (n.flags & (flags::INACTIVE | flags::NOOUTPUT)) | flags::LIVE;
        let mut out_next = NIL;
        if n.index_out {
            let (a, p) = self
                .dest_addr
                .get(usize::from(n.dest))
                .copied()
                .unwrap_or_default();
            let p = if p == 0 { n.vport } else { p };
            let ob = self.out_hash(n.proto, &a, p, &n.caddr, n.cport);
            out_next = self.out_heads[ob];
            self.out_heads[ob] = id;
            f |= flags::OUT_INDEXED;
        }
        self.entries[id as usize] = Entry {
            caddr: n.caddr,
            cport: n.cport,
            vport: n.vport,
            vip,
            dest: n.dest,
            proto: n.proto,
            state: n.state,
            flags: f,
            _pad: 0,
            expires: n.expires,
            in_next: self.in_heads[bucket],
            out_next,
            wheel_next: NIL,
            wheel_prev: NIL,
            template: n.template,
        };
        self.in_heads[bucket] = id;
        self.wheel_link(id);
        self.len += 1;
        Some(id)
    }

    fn wheel_link(&mut self, id: ConnId) {
        let s = slot_of(self.entries[id as usize].expires);
        let head = self.wheel[s];
        if head != NIL {
            self.entries[head as usize].wheel_prev = id;
        }
        let e = &mut self.entries[id as usize];
        e.wheel_next = head;
        e.wheel_prev = NIL;
        e.flags |= flags::ON_WHEEL;
        self.wheel[s] = id;
    }

    fn wheel_unlink(&mut self, id: ConnId) {
        let e = self.entries[id as usize];
        if e.flags & flags::ON_WHEEL == 0 {
            return;
        }
        if e.wheel_prev == NIL {
            // The head of either its slot or of the list being swept.
            if self.sweep == id {
                self.sweep = e.wheel_next;
            } else {
                self.wheel[slot_of(e.expires)] = e.wheel_next;
            }
        } else {
            self.entries[e.wheel_prev as usize].wheel_next = e.wheel_next;
        }
        if e.wheel_next != NIL {
            self.entries[e.wheel_next as usize].wheel_prev = e.wheel_prev;
        }
        let e = &mut self.entries[id as usize];
        e.flags &= !flags::ON_WHEEL;
        e.wheel_next = NIL;
        e.wheel_prev = NIL;
    }

    /// Sets an entry's expiry time, moving it on the wheel if its slot
    /// changes (O(1)).
    #[inline]
    pub fn set_expires(&mut self, id: ConnId, expires: u32) {
        let e = &self.entries[id as usize];
        if e.flags & flags::ON_WHEEL != 0 && slot_of(e.expires) == slot_of(expires) {
            self.entries[id as usize].expires = expires;
            return;
        }
        self.wheel_unlink(id);
        self.entries[id as usize].expires = expires;
        self.wheel_link(id);
    }

    /// The next entry whose time has come at `now_ms`, taken off the wheel
    /// (the caller then [`remove`](Self::remove)s it, or gives it a new
    /// time with [`set_expires`](Self::set_expires)). `None` once every due
    /// entry has been returned. Call it in a loop from the driver's timer.
    pub fn next_expired(&mut self, now_ms: u32) -> Option<ConnId> {
        let now_slot = now_ms >> SLOT_SHIFT;
        loop {
            while self.sweep != NIL {
                let id = self.sweep;
                let e = &mut self.entries[id as usize];
                self.sweep = e.wheel_next;
                e.wheel_next = NIL;
                e.wheel_prev = NIL;
                e.flags &= !flags::ON_WHEEL;
                if self.sweep != NIL {
                    self.entries[self.sweep as usize].wheel_prev = NIL;
                }
                if due(self.entries[id as usize].expires, now_ms) {
                    return Some(id);
                }
                self.wheel_link(id);
            }
            // Slots strictly before the current one are complete.
            let behind = now_slot.wrapping_sub(self.cursor) as i32;
            if behind <= 0 {
                return None;
            }
            if behind as u32 > NSLOTS {
                self.cursor = now_slot.wrapping_sub(NSLOTS);
            }
            let s = (self.cursor & (NSLOTS - 1)) as usize;
            self.sweep = std::mem::replace(&mut self.wheel[s], NIL);
            self.cursor = self.cursor.wrapping_add(1);
        }
    }

    /// Removes entry `id` from every index and frees it.
    pub fn remove(&mut self, id: ConnId) {
        let e = self.entries[id as usize];
        if e.flags & flags::LIVE == 0 {
            return;
        }
        self.wheel_unlink(id);
        let v = self.vips[usize::from(e.vip)];
        let b = self.in_hash(e.proto, &e.caddr, e.cport, &v, e.vport);
        unlink(&mut self.in_heads[b], &mut self.entries, id, |e| {
            &mut e.in_next
        });
        if e.flags & flags::OUT_INDEXED != 0 {
            let (a, p) = self
                .dest_addr
                .get(usize::from(e.dest))
                .copied()
                .unwrap_or_default();
            let p = if p == 0 { e.vport } else { p };
            let ob = self.out_hash(e.proto, &a, p, &e.caddr, e.cport);
            unlink(&mut self.out_heads[ob], &mut self.entries, id, |e| {
                &mut e.out_next
            });
        }
        self.unintern(e.vip);
        let slot = &mut self.entries[id as usize];
        slot.flags = 0;
        slot.in_next = self.free;
        self.free = id;
        self.len -= 1;
    }

    /// Ids of all live entries (for listing and for flushing a destination;
    /// walks the whole slab).
    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.flags & flags::LIVE != 0)
            .map(|(i, _)| i as ConnId)
    }
}

fn unlink(head: &mut u32, entries: &mut [Entry], id: ConnId, next: fn(&mut Entry) -> &mut u32) {
    if *head == id {
        *head = *next(&mut entries[id as usize]);
        return;
    }
    let mut i = *head;
    while i != NIL {
        let n = *next(&mut entries[i as usize]);
        if n == id {
            let after = *next(&mut entries[id as usize]);
            *next(&mut entries[i as usize]) = after;
            return;
        }
        i = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap as Model;

    fn conn(c: u8, cport: u16, expires: u32) -> NewConn {
        NewConn {
            proto: 17,
            caddr: Addr::v4([10, 0, 0, c]),
            cport,
            vaddr: Addr::v4([10, 9, 9, 9]),
            vport: 53,
            dest: u16::from(c % 3),
            state: 11,
            flags: 0,
            template: NO_TEMPLATE,
            index_out: c.is_multiple_of(2),
            expires,
        }
    }

    #[test]
    fn entry_is_52_bytes() {
        assert_eq!(size_of::<Entry>(), 52);
        let t = ConnTable::new(1 << 20, 0, 1);
        assert!(t.bytes_per_entry() <= 64.0, "{}", t.bytes_per_entry());
    }

    #[test]
    fn capacity_is_enforced() {
        let mut t = ConnTable::new(2, 0, 1);
        assert!(t.insert(conn(1, 1, 10)).is_some());
        assert!(t.insert(conn(1, 2, 10)).is_some());
        assert!(t.insert(conn(1, 3, 10)).is_none());
    }

    #[test]
    fn far_expiry_survives_laps() {
        // 1 hour is several wheel laps (1048 s each).
        let mut t = ConnTable::new(8, 0, 7);
        let id = t.insert(conn(1, 1, 3_600_000)).unwrap();
        let mut now = 0;
        while now < 3_599_000 {
            now += 10_000;
            assert_eq!(t.next_expired(now.min(3_599_000)), None, "at {now}");
        }
        assert_eq!(t.next_expired(3_600_300), Some(id));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16, u32),
        Touch(u8, u16, u32),
        Remove(u8, u16),
        Advance(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..8, 0u16..4, 1u32..3_000_000).prop_map(|(a, b, c)| Op::Insert(a, b, c)),
            (0u8..8, 0u16..4, 1u32..3_000_000).prop_map(|(a, b, c)| Op::Touch(a, b, c)),
            (0u8..8, 0u16..4).prop_map(|(a, b)| Op::Remove(a, b)),
            (1u32..1_500_000, 0u32..2000).prop_map(|(d, p)| Op::Advance(d, p)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Against a HashMap model: lookups agree, and expiry returns each
        /// entry no earlier than its time and no later than 256 ms after.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..80)) {
            let mut t = ConnTable::new(64, 0, 99);
            for d in 0..3u16 { t.set_dest(d, Addr::v4([172, 16, 0, d as u8]), 8000 + d); }
            let mut model: Model<(u8, u16), (ConnId, u32)> = Model::new();
            let mut now = 0u32;
            for op in ops {
                match op {
                    Op::Insert(c, p, ttl) => {
                        if let std::collections::hash_map::Entry::Vacant(v) = model.entry((c, p)) {
                            let id = t.insert(conn(c, p, now + ttl)).unwrap();
                            v.insert((id, now + ttl));
                        }
                    }
                    Op::Touch(c, p, ttl) => {
                        if let Some((id, exp)) = model.get_mut(&(c, p)) {
                            t.set_expires(*id, now + ttl);
                            *exp = now + ttl;
                        }
                    }
                    Op::Remove(c, p) => {
                        if let Some((id, _)) = model.remove(&(c, p)) { t.remove(id); }
                    }
                    Op::Advance(d, poke) => {
                        now += d;
                        while let Some(id) = t.next_expired(now) {
                            let key = *model.iter().find(|(_, v)| v.0 == id).expect("expired id is live").0;
                            let exp = model[&key].1;
                            prop_assert!(exp <= now);
                            t.remove(id);
                            model.remove(&key);
                            // Mid-sweep, move another entry (possibly one still
                            // in the list being swept) or remove it.
                            if poke > 0 {
                                let other = model.iter().map(|(k, v)| (*k, v.0)).min();
                                if let Some((k, oid)) = other {
                                    if poke % 3 == 0 {
                                        t.remove(oid);
                                        model.remove(&k);
                                    } else {
                                        t.set_expires(oid, now + poke);
                                        model.get_mut(&k).unwrap().1 = now + poke;
                                    }
                                }
                            }
                        }
                        for (_, exp) in model.values() {
                            prop_assert!(*exp + 256 > now, "overdue entry left: {} at {}", exp, now);
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                for ((c, p), (id, _)) in &model {
                    let n = conn(*c, *p, 0);
                    prop_assert_eq!(t.lookup_in(17, &n.caddr, *p, &n.vaddr, 53), Some(*id));
                    let (a, dp) = (Addr::v4([172, 16, 0, c % 3]), 8000 + u16::from(c % 3));
                    let want = if c.is_multiple_of(2) { Some(*id) } else { None };
                    prop_assert_eq!(t.lookup_out(17, &a, dp, &n.caddr, *p), want);
                }
            }
        }
    }
}
