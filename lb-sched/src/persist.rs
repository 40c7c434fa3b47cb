//! IPVS persistence templates (`ipvsadm -p`), keyed and expired exactly as
//! the kernel does it, in a compact table with amortised `O(1)` expiry.
//!
//! # Kernel semantics (net/netfilter/ipvs/ip_vs_core.c `ip_vs_sched_persist`, ip_vs_conn.c)
//!
//! * **Key** ([`TemplateKey::for_packet`]): the client address masked by the
//!   service netmask (IPv4 mask, IPv6 prefix length), client port 0, and
//!   - packet to the service port, non-FTP: `<protocol, caddr&mask, vaddr, vport>`;
//!   - packet to the service port, FTP (21): `<protocol, caddr&mask, vaddr, 0>`;
//!   - fwmark service, other port: `<IPPROTO_IP, caddr&mask, fwmark, 0>` (one
//!     template covers every protocol and port under the mark);
//!   - port-zero service, other port: `<protocol, caddr&mask, vaddr, 0>`.
//!
//!   The address family is part of the key (separate v4 and v6 tables).
//! * **Lookup** ([`PersistTable::schedule`]): a live template whose dest is
//!   still usable is reused and its timer restarted (`now + timeout`). If the
//!   dest is not available, or `expire_quiescent_template` is set and its
//!   weight is 0, the template is *invalidated*: it no longer matches (the
//!   kernel rehashes it with port 0xffff) and its timer is **not** restarted,
//!   but it lives, and counts in the dest's `persistconns`, until it expires.
//!   A new dest is then scheduled and a new template created.
//! * **Control**: every connection scheduled through a template is its
//!   controlled child (`ip_vs_control_add`); callers [`PersistTable::release`]
//!   when the connection goes away. A template whose timer fires while it
//!   still controls connections is kept and re-armed 60 s later, and from
//!   then on its timeout is 60 s (`ip_vs_conn_expire`, `expire_later`).
//! * **Counting**: [`PersistDests::template_bound`] / `template_unbound` are
//!   the kernel's `persistconns` increments (`ip_vs_bind_dest` /
//!   `ip_vs_unbind_dest`); they pair exactly.
//!
//! Not modelled: persistence engines (`--pe sip`), sync-daemon templates,
//! and the kernel quirk where an invalidated template of a service on port
//! 65535 could match again.
//!
//! # Time and expiry
//!
//! Time is an input in milliseconds on a monotonic clock the caller picks
//! (within `u64::MAX − 2^32` ms; beyond that expiries saturate).
//! A template with expiry `e` is live at `e − 1` and gone at `e`, however time
//! jumps. Expiry runs in a hashed timing wheel with one slot per millisecond
//! (`wheel_slots`, default 65536 ≈ 65 s per revolution). Entries whose expiry
//! is further away than one revolution are revisited once per revolution, so
//! the work per template is `O(timeout / revolution)`; a jump of more than one
//! revolution visits every entry once. [`PersistTable::get`] is exact even
//! between advances.
//!
//! # Memory
//!
//! IPv4 and IPv6 templates live in separate slabs (32 and 44 bytes per entry
//! with a `u32` dest id; an IPv6 entry names its virtual address by an index
//! into the table's list of distinct ones) indexed by an open-addressing
//! table of 4-byte slots (26-bit entry index + 6-bit hash tag, load ≤ 7/8,
//! linear probing with backward-shift deletion). Expiry is stored as 32 bits relative to the last
//! advance, which bounds timeouts to [`MAX_TIMEOUT_MS`].

use crate::AddressFamily;
use crate::hashkey::{HashKey, KeyedBuildHasher, fastrange};
use std::collections::HashMap;
use std::net::IpAddr;

/// `IPPROTO_IP`: the protocol of fwmark templates.
pub const IPPROTO_IP: u8 = 0;
/// The FTP control port (`FTPPORT`).
pub const FTP_PORT: u16 = 21;
/// Longest template timeout: 2^31 ms ≈ 24.8 days.
pub const MAX_TIMEOUT_MS: u32 = 1 << 31;
/// The kernel's re-arm delay for a template that still controls connections.
pub const EXPIRE_LATER_MS: u32 = 60_000;
/// Most templates per address family.
pub const MAX_ENTRIES: usize = (1 << 26) - 2;
/// Distinct IPv6 virtual addresses a pre-sized table
/// ([`PersistTable::with_capacity`]) holds before creating a template can
/// allocate.
pub const VIP_RESERVE: usize = 256;

const IDX_BITS: u32 = 26;
const IDX_MASK: u32 = (1 << IDX_BITS) - 1;
const EMPTY: u32 = u32::MAX;
const NIL: u32 = u32::MAX;
const F_USED: u8 = 1;
const F_LINKED: u8 = 2;

/// Errors of the persistence table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Client, virtual address and netmask are not of the same family.
    #[error("client, virtual address and netmask mix IPv4 and IPv6")]
    FamilyMismatch,
    /// IPv6 prefix longer than 128.
    #[error("ipv6 prefix length {0} is longer than 128")]
    BadPrefix(u8),
    /// Timeout 0 or above [`MAX_TIMEOUT_MS`].
    #[error("template timeout {0} ms is outside 1..={MAX_TIMEOUT_MS}")]
    BadTimeout(u32),
    /// The family table holds [`MAX_ENTRIES`] templates.
    #[error("persistence table full ({MAX_ENTRIES} templates per family)")]
    Full,
    /// `release` of a template that controls no connection (or is gone).
    #[error("template {0:?} controls no connection")]
    NotControlling(TemplateId),
}

/// Template granularity: `svc->netmask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// IPv4 mask in host byte order (default `0xffff_ffff`).
    V4(u32),
    /// IPv6 prefix length (default 128).
    V6(u8),
}

/// The persistence parameters of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersistService {
    /// Firewall mark of a fwmark service, else 0.
    pub fwmark: u32,
    /// Service port (0 for fwmark and port-zero services).
    pub port: u16,
    /// Client address granularity.
    pub netmask: Netmask,
}

/// A template key in the kernel's layout (client port is always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// IPv4 or IPv6 (separate tables).
    pub family: AddressFamily,
    /// Packet protocol, or [`IPPROTO_IP`] for fwmark templates.
    pub protocol: u8,
    /// Masked client address (first 4 bytes used for IPv4).
    pub client: [u8; 16],
    /// Virtual address, or the fwmark in network order in the first 4 bytes.
    pub vaddr: [u8; 16],
    /// Virtual port, or 0 (FTP, fwmark, port-zero).
    pub vport: u16,
}

impl TemplateKey {
    /// The key `ip_vs_sched_persist` builds for a packet `client → vaddr:vport`
    /// of `protocol` hitting `svc` (for ICMP errors pass the inner, inverted
    /// addresses, as the kernel does).
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use lb_sched::persist::{Netmask, PersistService, TemplateKey, IPPROTO_IP};
    ///
    /// let fwm = PersistService { fwmark: 80, port: 0, netmask: Netmask::V4(0xffff_ff00) };
    /// let k = TemplateKey::for_packet(&fwm, 6, "198.51.100.77".parse()?, "192.0.2.1".parse()?, 443)?;
    /// assert_eq!(k.protocol, IPPROTO_IP);
    /// assert_eq!(&k.client[..4], &[198, 51, 100, 0]);
    /// assert_eq!(&k.vaddr[..4], &80u32.to_be_bytes());
    /// assert_eq!(k.vport, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_packet(
        svc: &PersistService,
        protocol: u8,
        client: IpAddr,
        vaddr: IpAddr,
        vport: u16,
    ) -> Result<Self, PersistError> {
        let mut c = [0u8; 16];
        let mut v = [0u8; 16];
        let family = match (client, vaddr, svc.netmask) {
            (IpAddr::V4(ca), IpAddr::V4(va), Netmask::V4(mask)) => {
                c[..4].copy_from_slice(&(u32::from(ca) & mask).to_be_bytes());
                v[..4].copy_from_slice(&va.octets());
                AddressFamily::Inet
            }
            (IpAddr::V6(ca), IpAddr::V6(va), Netmask::V6(plen)) => {
                if plen > 128 {
                    return Err(PersistError::BadPrefix(plen));
                }
                let mask = if plen == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(plen))
                };
                c = (u128::from(ca) & mask).to_be_bytes();
                v = va.octets();
                AddressFamily::Inet6
            }
            _ => return Err(PersistError::FamilyMismatch),
        };
        let mut key = Self {
            family,
            protocol,
            client: c,
            vaddr: v,
            vport: 0,
        };
        if vport == svc.port {
            if svc.port != FTP_PORT {
                key.vport = vport;
            }
        } else if svc.fwmark != 0 {
            key.protocol = IPPROTO_IP;
            key.vaddr = [0; 16];
            key.vaddr[..4].copy_from_slice(&svc.fwmark.to_be_bytes());
        }
        Ok(key)
    }
}

/// What the table needs to know about destinations, and how it reports
/// template counts. Implement it on the service's dest set.
pub trait PersistDests<D> {
    /// `IP_VS_DEST_F_AVAILABLE`: the dest still belongs to the service.
    fn is_available(&self, dest: &D) -> bool;
    /// Current weight (0 = quiesced).
    fn weight(&self, dest: &D) -> u32;
    /// A template now points at `dest` (`persistconns += 1`).
    fn template_bound(&mut self, dest: &D) {
        let _ = dest;
    }
    /// A template that pointed at `dest` is gone (`persistconns -= 1`).
    fn template_unbound(&mut self, dest: &D) {
        let _ = dest;
    }
}

/// Handle of a template, for [`PersistTable::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId {
    v6: bool,
    index: u32,
}

impl TemplateId {
    /// The handle packed in 32 bits (family in bit 31, slab index below), for
    /// callers that store it in a compact per-connection record; per-packet
    /// and allocation-free.
    ///
    /// ```
    /// use lb_sched::persist::*;
    /// struct D;
    /// impl PersistDests<u8> for D {
    ///     fn is_available(&self, _: &u8) -> bool { true }
    ///     fn weight(&self, _: &u8) -> u32 { 1 }
    /// }
    /// let svc = PersistService { fwmark: 0, port: 80, netmask: Netmask::V6(64) };
    /// let key = TemplateKey::for_packet(&svc, 6, "2001:db8::9".parse()?, "2001:db8::1".parse()?, 80)?;
    /// let mut t = PersistTable::new(PersistConfig::default());
    /// let p = t.schedule(1, &key, 1_000, &mut D, |_| Some(0))?.unwrap();
    /// let raw = p.template.to_raw();
    /// assert_eq!(TemplateId::from_raw(raw), p.template);
    /// t.release(2, TemplateId::from_raw(raw), &mut D)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to_raw(self) -> u32 {
        (u32::from(self.v6) << 31) | self.index
    }

    /// The handle [`Self::to_raw`] packed. A value that names no template
    /// controlling a connection makes [`PersistTable::release`] fail with
    /// [`PersistError::NotControlling`]; it never panics.
    #[must_use]
    pub fn from_raw(raw: u32) -> Self {
        Self {
            v6: raw >> 31 != 0,
            index: raw & !(1 << 31),
        }
    }
}

/// Result of [`PersistTable::schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Persisted<D> {
    /// The template the new connection is attached to (release it later).
    pub template: TemplateId,
    /// The destination for the connection.
    pub dest: D,
    /// True if the template was created by this call.
    pub created: bool,
}

/// Table configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistConfig {
    /// sysctl `expire_quiescent_template`: a weight-0 dest invalidates its
    /// templates at their next use. Default false (the kernel default).
    pub expire_quiescent_template: bool,
    /// Timing-wheel slots, one per millisecond (rounded up to a power of two,
    /// clamped to 2..=2^24). Default 65536.
    pub wheel_slots: usize,
    /// Key for the index hash.
    pub hash_key: HashKey,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self {
            expire_quiescent_template: false,
            wheel_slots: 1 << 16,
            hash_key: HashKey::default(),
        }
    }
}

impl PersistConfig {
    /// Default configuration with the given index hash key.
    #[must_use]
    pub fn new(hash_key: HashKey) -> Self {
        Self {
            hash_key,
            ..Self::default()
        }
    }
}

/// An address family's addresses, and how its entries store the virtual
/// address in 32 bits: IPv4 stores it as is; IPv6 stores an index into the
/// table's list of distinct virtual addresses (a director has few), so that
/// an IPv6 entry is 44 bytes rather than 56.
trait Addr: Copy + Eq + std::hash::Hash + std::fmt::Debug {
    const LEN: usize;
    fn from_key(b: &[u8; 16]) -> Self;
    fn bytes(&self) -> &[u8];
    /// The stored form of `vaddr` for one more entry.
    fn vip_acquire(vips: &mut Vips<Self>, vaddr: Self) -> u32;
    /// One entry storing `vip` is gone.
    fn vip_release(vips: &mut Vips<Self>, vip: u32);
    /// The virtual address an entry stores as `vip`.
    fn vip_addr(vips: &Vips<Self>, vip: u32) -> Self;
    /// Room for `n` distinct virtual addresses.
    fn vip_reserve(vips: &mut Vips<Self>, n: usize);
}
impl Addr for [u8; 4] {
    const LEN: usize = 4;
    fn from_key(b: &[u8; 16]) -> Self {
        [b[0], b[1], b[2], b[3]]
    }
    fn bytes(&self) -> &[u8] {
        self
    }
    fn vip_acquire(_: &mut Vips<Self>, vaddr: Self) -> u32 {
        u32::from_ne_bytes(vaddr)
    }
    fn vip_release(_: &mut Vips<Self>, _: u32) {}
    #[inline]
    fn vip_addr(_: &Vips<Self>, vip: u32) -> Self {
        vip.to_ne_bytes()
    }
    fn vip_reserve(_: &mut Vips<Self>, _: usize) {}
}
impl Addr for [u8; 16] {
    const LEN: usize = 16;
    fn from_key(b: &[u8; 16]) -> Self {
        *b
    }
    fn bytes(&self) -> &[u8] {
        self
    }
    fn vip_acquire(vips: &mut Vips<Self>, vaddr: Self) -> u32 {
        vips.acquire(vaddr)
    }
    fn vip_release(vips: &mut Vips<Self>, vip: u32) {
        vips.release(vip);
    }
    #[inline]
    fn vip_addr(vips: &Vips<Self>, vip: u32) -> Self {
        vips.addrs[vip as usize]
    }
    fn vip_reserve(vips: &mut Vips<Self>, n: usize) {
        vips.reserve(n);
    }
}

/// Distinct virtual addresses of one family's templates, each counted by
/// the entries (live or invalidated) that name it; an address is dropped
/// with its last entry. Touched when a template is created or freed; a
/// lookup only reads `addrs`.
#[derive(Debug, Clone)]
struct Vips<A> {
    addrs: Vec<A>,
    refs: Vec<u32>,
    ids: HashMap<A, u32, KeyedBuildHasher>,
    free: Vec<u32>,
}

impl<A: Addr> Vips<A> {
    fn new(key: HashKey) -> Self {
        Self {
            addrs: Vec::new(),
            refs: Vec::new(),
            ids: HashMap::with_hasher(key.derive(b"lb-sched persist vips").build_hasher()),
            free: Vec::new(),
        }
    }

    /// The index of `vaddr`, counting one more entry.
    fn acquire(&mut self, vaddr: A) -> u32 {
        if let Some(&id) = self.ids.get(&vaddr) {
            self.refs[id as usize] += 1;
            return id;
        }
        let id = if let Some(id) = self.free.pop() {
            self.addrs[id as usize] = vaddr;
            self.refs[id as usize] = 1;
            id
        } else {
            self.addrs.push(vaddr);
            self.refs.push(1);
            (self.addrs.len() - 1) as u32
        };
        self.ids.insert(vaddr, id);
        id
    }

    fn reserve(&mut self, n: usize) {
        self.addrs.reserve(n.saturating_sub(self.addrs.len()));
        self.refs.reserve(n.saturating_sub(self.refs.len()));
        self.free.reserve(n.saturating_sub(self.free.len()));
        self.ids.reserve(n.saturating_sub(self.ids.len()));
    }

    /// One entry naming index `vip` is gone.
    fn release(&mut self, vip: u32) {
        let r = &mut self.refs[vip as usize];
        *r -= 1;
        if *r == 0 {
            self.ids.remove(&self.addrs[vip as usize]);
            self.free.push(vip);
        }
    }

    fn clear(&mut self) {
        self.addrs.clear();
        self.refs.clear();
        self.ids.clear();
        self.free.clear();
    }

    fn memory_bytes(&self) -> usize {
        // hashbrown: one (key, value) bucket plus one control byte each.
        self.addrs.capacity() * size_of::<A>()
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + match self.ids.capacity() {
                0 => 0,
                c => (c * 8 / 7).next_power_of_two() * (size_of::<(A, u32)>() + 1),
            }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry<A, D> {
    client: A,
    /// The virtual address in its stored form ([`Addr::vip_acquire`]).
    vip: u32,
    vport: u16,
    protocol: u8,
    flags: u8,
    dest: D,
    /// Low 32 bits of the absolute expiry (see `Core::full_expiry`).
    expires: u32,
    timeout: u32,
    n_control: u32,
    /// Wheel-slot list link, or free-list link.
    next: u32,
}

#[derive(Debug, Clone)]
struct Core<A, D> {
    entries: Vec<Entry<A, D>>,
    free: u32,
    used: usize,
    index: Vec<u32>,
    linked: usize,
    wheel: Box<[u32]>,
    vips: Vips<A>,
    hash_key: HashKey,
}

struct Ctx<'a, C> {
    now: u64,
    last: u64,
    dests: &'a mut C,
}

impl<A: Addr, D: Copy> Core<A, D> {
    fn new(slots: usize, hash_key: HashKey) -> Self {
        Self {
            entries: Vec::new(),
            free: NIL,
            used: 0,
            index: Vec::new(),
            linked: 0,
            wheel: vec![NIL; slots].into_boxed_slice(),
            vips: Vips::new(hash_key),
            hash_key,
        }
    }

    fn reserve(&mut self, n: usize) {
        self.entries.reserve(n.saturating_sub(self.entries.len()));
        if n > 0 {
            A::vip_reserve(&mut self.vips, VIP_RESERVE);
        }
        let want = index_cap(n);
        if want > self.index.len() {
            self.rebuild_index(want);
        }
    }

    fn hash(&self, client: &A, vaddr: &A, vport: u16, protocol: u8) -> u64 {
        let mut buf = [0u8; 35];
        let l = A::LEN;
        buf[..l].copy_from_slice(client.bytes());
        buf[l..2 * l].copy_from_slice(vaddr.bytes());
        buf[2 * l..2 * l + 2].copy_from_slice(&vport.to_be_bytes());
        buf[2 * l + 2] = protocol;
        self.hash_key.hash(&buf[..2 * l + 3])
    }

    fn entry_hash(&self, i: u32) -> u64 {
        let e = &self.entries[i as usize];
        self.hash(
            &e.client,
            &A::vip_addr(&self.vips, e.vip),
            e.vport,
            e.protocol,
        )
    }

    /// Absolute expiry from the stored low 32 bits: every stored expiry lies
    /// in `(last, last + 2^32)` after an advance to `last`.
    #[inline]
    fn full_expiry(e: &Entry<A, D>, last: u64) -> u64 {
        last.saturating_add(u64::from(e.expires.wrapping_sub(last as u32)))
    }

    fn find(&self, k: &TemplateKey) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        let client = A::from_key(&k.client);
        let vaddr = A::from_key(&k.vaddr);
        let h = self.hash(&client, &vaddr, k.vport, k.protocol);
        let cap = self.index.len();
        let tag = (h as u32) & 63;
        let mut pos = fastrange(h, cap as u64) as usize;
        loop {
            let s = self.index[pos];
            if s == EMPTY {
                return None;
            }
            if s >> IDX_BITS == tag {
                let i = s & IDX_MASK;
                let e = &self.entries[i as usize];
                if e.client == client
                    && e.vport == k.vport
                    && e.protocol == k.protocol
                    && A::vip_addr(&self.vips, e.vip) == vaddr
                {
                    return Some(i);
                }
            }
            pos += 1;
            if pos == cap {
                pos = 0;
            }
        }
    }

    fn index_insert(&mut self, i: u32) {
        if (self.linked + 1) * 8 > self.index.len() * 7 {
            let cap = index_cap((self.linked + 1).max(self.index.len()));
            self.rebuild_index(cap.max(self.index.len() * 2));
        }
        let h = self.entry_hash(i);
        self.place(h, i);
        self.linked += 1;
        self.entries[i as usize].flags |= F_LINKED;
    }

    fn place(&mut self, h: u64, i: u32) {
        let cap = self.index.len();
        let mut pos = fastrange(h, cap as u64) as usize;
        while self.index[pos] != EMPTY {
            pos += 1;
            if pos == cap {
                pos = 0;
            }
        }
        self.index[pos] = (((h as u32) & 63) << IDX_BITS) | i;
    }

    fn rebuild_index(&mut self, cap: usize) {
        self.index = vec![EMPTY; cap];
        for i in 0..self.entries.len() as u32 {
            if self.entries[i as usize].flags & F_LINKED != 0 {
                let h = self.entry_hash(i);
                self.place(h, i);
            }
        }
    }

    /// Remove entry `i` from the index (backward-shift deletion).
    fn unlink(&mut self, i: u32) {
        let cap = self.index.len();
        let h = self.entry_hash(i);
        let mut pos = fastrange(h, cap as u64) as usize;
        while self.index[pos] & IDX_MASK != i || self.index[pos] == EMPTY {
            pos += 1;
            if pos == cap {
                pos = 0;
            }
        }
        let mut hole = pos;
        let mut j = pos;
        loop {
            j += 1;
            if j == cap {
                j = 0;
            }
            let s = self.index[j];
            if s == EMPTY {
                break;
            }
            let home = fastrange(self.entry_hash(s & IDX_MASK), cap as u64) as usize;
            // Move s into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.index[hole] = s;
                hole = j;
            }
        }
        self.index[hole] = EMPTY;
        self.linked -= 1;
        self.entries[i as usize].flags &= !F_LINKED;
    }

    fn wheel_push(&mut self, i: u32, expiry: u64) {
        let slot = (expiry as usize) & (self.wheel.len() - 1);
        self.entries[i as usize].next = self.wheel[slot];
        self.wheel[slot] = i;
    }

    fn alloc(&mut self, e: Entry<A, D>) -> Result<u32, PersistError> {
        if self.free != NIL {
            let i = self.free;
            self.free = self.entries[i as usize].next;
            self.entries[i as usize] = e;
            self.used += 1;
            return Ok(i);
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(PersistError::Full);
        }
        self.entries.push(e);
        self.used += 1;
        Ok((self.entries.len() - 1) as u32)
    }

    fn free_entry<C: PersistDests<D>>(&mut self, i: u32, dests: &mut C) {
        if self.entries[i as usize].flags & F_LINKED != 0 {
            self.unlink(i);
        }
        let e = &mut self.entries[i as usize];
        e.flags = 0;
        e.next = self.free;
        let (d, vip) = (e.dest, e.vip);
        self.free = i;
        self.used -= 1;
        A::vip_release(&mut self.vips, vip);
        dests.template_unbound(&d);
    }

    /// Process every wheel slot for the milliseconds in `(last, now]`. A jump
    /// of a revolution or more rebuilds the wheel from the slab instead, so no
    /// entry is visited twice in one pass (stored expiries are relative to
    /// `last` until visited, relative to `now` after).
    fn advance<C: PersistDests<D>>(&mut self, ctx: &mut Ctx<'_, C>) {
        let (last, now) = (ctx.last, ctx.now);
        if now <= last || self.used == 0 {
            return;
        }
        let mask = self.wheel.len() - 1;
        if now - last > mask as u64 {
            self.wheel.iter_mut().for_each(|h| *h = NIL);
            for i in 0..self.entries.len() as u32 {
                if self.entries[i as usize].flags & F_USED != 0 {
                    self.visit(i, ctx);
                }
            }
            return;
        }
        for t in 1..=(now - last) {
            let slot = ((last + t) as usize) & mask;
            let mut i = std::mem::replace(&mut self.wheel[slot], NIL);
            while i != NIL {
                let next = self.entries[i as usize].next;
                self.visit(i, ctx);
                i = next;
            }
        }
    }

    /// Re-file, defer (still controls connections) or free entry `i`.
    fn visit<C: PersistDests<D>>(&mut self, i: u32, ctx: &mut Ctx<'_, C>) {
        let e = self.entries[i as usize];
        let exp = Self::full_expiry(&e, ctx.last);
        if exp > ctx.now {
            self.wheel_push(i, exp);
        } else if e.n_control > 0 {
            let exp = defer(exp, ctx.now);
            let ent = &mut self.entries[i as usize];
            ent.expires = exp as u32;
            ent.timeout = EXPIRE_LATER_MS;
            self.wheel_push(i, exp);
        } else {
            self.free_entry(i, ctx.dests);
        }
    }
}

/// First `exp + k·60 s` after `now` (the kernel re-arms at each firing).
fn defer(exp: u64, now: u64) -> u64 {
    let step = u64::from(EXPIRE_LATER_MS);
    exp.saturating_add(((now - exp) / step).saturating_add(1).saturating_mul(step))
}

fn index_cap(n: usize) -> usize {
    (n * 8 / 7 + 1).max(16)
}

/// The persistence-template table.
///
/// ```
/// use std::net::IpAddr;
/// use lb_sched::persist::*;
///
/// struct Dests([u32; 2]); // weights; persistconns kept by the table's callbacks
/// impl PersistDests<usize> for Dests {
///     fn is_available(&self, _: &usize) -> bool { true }
///     fn weight(&self, d: &usize) -> u32 { self.0[*d] }
/// }
///
/// let svc = PersistService { fwmark: 0, port: 443, netmask: Netmask::V4(0xffff_ffff) };
/// let key = TemplateKey::for_packet(&svc, 6, "203.0.113.9".parse()?, "192.0.2.1".parse()?, 443)?;
/// let mut t: PersistTable<usize> = PersistTable::new(PersistConfig::default());
/// let mut dests = Dests([1, 1]);
/// let p = t.schedule(1_000, &key, 300_000, &mut dests, |_| Some(1))?.unwrap();
/// assert!(p.created && p.dest == 1);
/// // Later connections from the same client stick to dest 1, whatever the scheduler says.
/// let q = t.schedule(2_000, &key, 300_000, &mut dests, |_| Some(0))?.unwrap();
/// assert!(!q.created && q.dest == 1);
/// t.release(2_500, p.template, &mut dests)?;
/// t.release(2_500, q.template, &mut dests)?;
/// assert_eq!(t.get(301_999, &key), Some(1)); // refreshed at 2 000 → expires at 302 000
/// assert_eq!(t.get(302_000, &key), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PersistTable<D> {
    v4: Core<[u8; 4], D>,
    v6: Core<[u8; 16], D>,
    last: u64,
    expire_quiescent: bool,
}

impl<D: Copy> PersistTable<D> {
    /// An empty table.
    #[must_use]
    pub fn new(config: PersistConfig) -> Self {
        let slots = config.wheel_slots.clamp(2, 1 << 24).next_power_of_two();
        Self {
            v4: Core::new(slots, config.hash_key),
            v6: Core::new(slots, config.hash_key),
            last: 0,
            expire_quiescent: config.expire_quiescent_template,
        }
    }

    /// An empty table pre-sized for `v4` and `v6` templates (no growth, and
    /// no rehash pause, until then), and for [`VIP_RESERVE`] distinct IPv6
    /// virtual addresses when `v6 > 0`: creating a template does not
    /// allocate within those bounds.
    #[must_use]
    pub fn with_capacity(config: PersistConfig, v4: usize, v6: usize) -> Self {
        let mut t = Self::new(config);
        t.v4.reserve(v4);
        t.v6.reserve(v6);
        t
    }

    /// Templates held (including invalidated ones awaiting expiry).
    #[must_use]
    pub fn len(&self) -> usize {
        self.v4.used + self.v6.used
    }

    /// True when no template is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (slabs, index, wheels, the IPv6 virtual-address list).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        fn core<A: Addr, D>(c: &Core<A, D>) -> usize {
            c.entries.capacity() * size_of::<Entry<A, D>>()
                + c.index.capacity() * 4
                + c.wheel.len() * 4
                + c.vips.memory_bytes()
        }
        core(&self.v4) + core(&self.v6)
    }

    /// Bytes of one IPv4 and one IPv6 slab entry.
    #[must_use]
    pub fn entry_sizes() -> (usize, usize) {
        (
            size_of::<Entry<[u8; 4], D>>(),
            size_of::<Entry<[u8; 16], D>>(),
        )
    }

    /// Expire every template whose time has come (`now_ms` is clamped to be
    /// monotonic). Called by `schedule`/`release`; call it from a timer too if
    /// you want `template_unbound` promptly while no packet arrives.
    pub fn advance<C: PersistDests<D>>(&mut self, now_ms: u64, dests: &mut C) {
        if now_ms <= self.last {
            return;
        }
        let mut ctx = Ctx {
            now: now_ms,
            last: self.last,
            dests,
        };
        self.v4.advance(&mut ctx);
        self.v6.advance(&mut ctx);
        self.last = now_ms;
    }

    /// The dest of the live, valid-looking template for `key` at `now_ms`,
    /// without touching it (no refresh, no dest check).
    #[must_use]
    pub fn get(&self, now_ms: u64, key: &TemplateKey) -> Option<D> {
        fn look<A: Addr, D: Copy>(
            c: &Core<A, D>,
            k: &TemplateKey,
            last: u64,
            now: u64,
        ) -> Option<D> {
            let i = c.find(k)?;
            let e = &c.entries[i as usize];
            let live = Core::<A, D>::full_expiry(e, last) > now || e.n_control > 0;
            live.then_some(e.dest)
        }
        if key.family == AddressFamily::Inet6 {
            look(&self.v6, key, self.last, now_ms)
        } else {
            look(&self.v4, key, self.last, now_ms)
        }
    }

    /// The persistent scheduling step of `ip_vs_sched_persist`: reuse the
    /// template for `key` if its dest is usable, else invalidate it, call
    /// `pick` (the service's scheduler) and create a template with
    /// `timeout_ms` (`svc->timeout`). The returned template controls one more
    /// connection; [`Self::release`] it when that connection ends.
    /// `Ok(None)`: no template and `pick` found no dest.
    pub fn schedule<C, F>(
        &mut self,
        now_ms: u64,
        key: &TemplateKey,
        timeout_ms: u32,
        dests: &mut C,
        pick: F,
    ) -> Result<Option<Persisted<D>>, PersistError>
    where
        C: PersistDests<D>,
        F: FnOnce(&mut C) -> Option<D>,
    {
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(PersistError::BadTimeout(timeout_ms));
        }
        self.advance(now_ms, dests);
        let now = self.last.max(now_ms);
        let quiescent = self.expire_quiescent;
        if key.family == AddressFamily::Inet6 {
            sched_core(
                &mut self.v6,
                true,
                now,
                key,
                timeout_ms,
                quiescent,
                dests,
                pick,
            )
        } else {
            sched_core(
                &mut self.v4,
                false,
                now,
                key,
                timeout_ms,
                quiescent,
                dests,
                pick,
            )
        }
    }

    /// A connection controlled by `template` ended (`ip_vs_control_del`).
    pub fn release<C: PersistDests<D>>(
        &mut self,
        now_ms: u64,
        template: TemplateId,
        dests: &mut C,
    ) -> Result<(), PersistError> {
        self.advance(now_ms, dests);
        let ok = if template.v6 {
            dec_control(&mut self.v6, template.index)
        } else {
            dec_control(&mut self.v4, template.index)
        };
        if ok {
            Ok(())
        } else {
            Err(PersistError::NotControlling(template))
        }
    }

    /// Drop every template (calls `template_unbound` for each).
    pub fn flush<C: PersistDests<D>>(&mut self, dests: &mut C) {
        fn flush_core<A: Addr, D: Copy, C: PersistDests<D>>(c: &mut Core<A, D>, dests: &mut C) {
            for e in &c.entries {
                if e.flags & F_USED != 0 {
                    dests.template_unbound(&e.dest);
                }
            }
            c.entries.clear();
            c.free = NIL;
            c.used = 0;
            c.linked = 0;
            c.vips.clear();
            c.index.iter_mut().for_each(|s| *s = EMPTY);
            c.wheel.iter_mut().for_each(|s| *s = NIL);
        }
        flush_core(&mut self.v4, dests);
        flush_core(&mut self.v6, dests);
    }
}

fn dec_control<A: Addr, D: Copy>(c: &mut Core<A, D>, i: u32) -> bool {
    match c.entries.get_mut(i as usize) {
        Some(e) if e.flags & F_USED != 0 && e.n_control > 0 => {
            e.n_control -= 1;
            true
        }
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn sched_core<A: Addr, D: Copy, C: PersistDests<D>, F: FnOnce(&mut C) -> Option<D>>(
    core: &mut Core<A, D>,
    v6: bool,
    now: u64,
    key: &TemplateKey,
    timeout: u32,
    expire_quiescent: bool,
    dests: &mut C,
    pick: F,
) -> Result<Option<Persisted<D>>, PersistError> {
    if let Some(i) = core.find(key) {
        let e = core.entries[i as usize];
        let usable =
            dests.is_available(&e.dest) && !(expire_quiescent && dests.weight(&e.dest) == 0);
        if usable {
            // ip_vs_conn_put(ct): restart the timer with the template's own timeout.
            let exp = now.saturating_add(u64::from(e.timeout));
            let ent = &mut core.entries[i as usize];
            ent.expires = exp as u32;
            ent.n_control += 1;
            // The entry stays in its wheel slot; the wheel re-files it lazily
            // (the new expiry is never earlier than the old one).
            return Ok(Some(Persisted {
                template: TemplateId { v6, index: i },
                dest: e.dest,
                created: false,
            }));
        }
        // ip_vs_check_template failed: invalidate, keep until expiry.
        core.unlink(i);
    }
    let Some(dest) = pick(dests) else {
        return Ok(None);
    };
    let exp = now.saturating_add(u64::from(timeout));
    let vip = A::vip_acquire(&mut core.vips, A::from_key(&key.vaddr));
    let entry = Entry {
        client: A::from_key(&key.client),
        vip,
        vport: key.vport,
        protocol: key.protocol,
        flags: F_USED,
        dest,
        expires: exp as u32,
        timeout,
        n_control: 1,
        next: NIL,
    };
    let i = core
        .alloc(entry)
        .inspect_err(|_| A::vip_release(&mut core.vips, vip))?;
    core.index_insert(i);
    core.wheel_push(i, exp);
    dests.template_bound(&dest);
    Ok(Some(Persisted {
        template: TemplateId { v6, index: i },
        dest,
        created: true,
    }))
}

#[cfg(test)]
mod tests;
