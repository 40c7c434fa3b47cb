//! `sh` (ip_vs_sh.c): source hashing over a weight-tiled table.

use std::net::IpAddr;

use crate::ipvs::hash::sh_hash;
use crate::packet::PacketInfo;
use crate::service::{AddressFamily, DestList, ServiceFlags};

/// `struct ip_vs_sh_state`.
#[derive(Debug, Clone)]
pub(crate) struct Sh {
    buckets: Vec<Option<u32>>,
    mask: u32,
}

/// The port `sh`/`mh` hash with `*-port`: the source port, or the destination
/// port of an inverse (ICMP-quoted) packet; 0 for portless protocols.
#[inline]
pub(crate) fn hash_port(pkt: &PacketInfo) -> u16 {
    if !pkt.protocol.has_ports() {
        0
    } else if pkt.inverse {
        pkt.dst_port
    } else {
        pkt.src_port
    }
}

/// What `sh` and `mh` hash: the client address (the destination of an
/// inverse, ICMP-quoted packet) and, with `sh-port` / `mh-port`
/// (`with_port`), its port.
#[inline(always)]
pub(crate) fn hash_key(pkt: &PacketInfo, with_port: bool) -> (&IpAddr, u16) {
    let addr = if pkt.inverse { &pkt.dst } else { &pkt.src };
    let port = if with_port { hash_port(pkt) } else { 0 };
    (addr, port)
}

/// What the first bucket of an `sh` / `mh` pick gives: its destination if
/// that is schedulable, `Err(ihash)` if not and the service has the
/// scheduler's fallback flag (the caller then walks out of line), else
/// no destination.
#[inline(always)]
pub(crate) fn first_bucket(
    list: &DestList<'_>,
    slot: Option<u32>,
    ihash: u32,
    fallback: ServiceFlags,
) -> Result<Option<u32>, u32> {
    let Some(slot) = slot else {
        return Ok(None);
    };
    if list.schedulable(slot) {
        Ok(Some(slot))
    } else if list.flags.contains(fallback) {
        Err(ihash)
    } else {
        Ok(None)
    }
}

impl Sh {
    pub(crate) fn new(list: &DestList<'_>, bits: u8) -> Self {
        let size = 1usize << bits;
        let mut s = Self {
            buckets: vec![None; size],
            mask: (size - 1) as u32,
        };
        s.reassign(list);
        s
    }

    /// `ip_vs_sh_reassign`: walk the list in order, giving each destination
    /// `weight` consecutive buckets (a weight-0 destination still gets one:
    /// `++d_count >= weight` holds at once), wrapping until the table is full.
    pub(crate) fn reassign(&mut self, list: &DestList<'_>) {
        if list.len() == 0 {
            self.buckets.fill(None);
            return;
        }
        let mut it = list.iter().cycle();
        let mut cur = it.next();
        let mut d_count: u64 = 0;
        for b in &mut self.buckets {
            *b = cur;
            d_count += 1;
            if let Some(slot) = cur
                && d_count >= u64::from(list.dest(slot).weight)
            {
                cur = it.next();
                d_count = 0;
            }
        }
    }

    /// `ip_vs_sh_schedule` with `ip_vs_sh_get`, one copy per address
    /// family (see `hash::fold` for why). `Err(ihash)`: the bucket's
    /// destination is unusable and `sh-fallback` is set, so the caller
    /// goes on with [`fallback`](Self::fallback) (`ip_vs_sh_get_fallback`)
    /// out of line.
    #[inline]
    pub(crate) fn pick(&self, list: &DestList<'_>, pkt: &PacketInfo) -> Result<Option<u32>, u32> {
        match list.family {
            AddressFamily::Inet => self.pick_in(AddressFamily::Inet, list, pkt),
            AddressFamily::Inet6 => self.pick_in(AddressFamily::Inet6, list, pkt),
        }
    }

    #[inline(always)]
    fn pick_in(
        &self,
        family: AddressFamily,
        list: &DestList<'_>,
        pkt: &PacketInfo,
    ) -> Result<Option<u32>, u32> {
        let (addr, port) = hash_key(pkt, list.flags.contains(ServiceFlags::SH_PORT));
        let ihash = sh_hash(family, *addr, port, 0, self.mask);
        first_bucket(
            list,
            self.buckets[ihash as usize],
            ihash,
            ServiceFlags::SH_FALLBACK,
        )
    }

    /// `ip_vs_sh_get_fallback`, from the first hash `ihash`: rehash with
    /// each offset from it until a bucket names a usable destination.
    #[cold]
    #[inline(never)]
    pub(crate) fn fallback(
        &self,
        list: &DestList<'_>,
        pkt: &PacketInfo,
        ihash: u32,
    ) -> Option<u32> {
        let (addr, port) = hash_key(pkt, list.flags.contains(ServiceFlags::SH_PORT));
        let size = self.mask + 1;
        for offset in 0..size {
            let roffset = (offset + ihash) % size;
            let hash = sh_hash(list.family, *addr, port, roffset, self.mask);
            let slot = self.buckets[hash as usize]?;
            if list.schedulable(slot) {
                return Some(slot);
            }
        }
        None
    }

    pub(crate) fn holds(&self, slot: u32) -> bool {
        self.buckets.contains(&Some(slot))
    }
}
