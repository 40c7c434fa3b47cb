//! `dh` (ip_vs_dh.c): static table of 256 buckets keyed on the destination address.

use crate::ipvs::hash::addr_hash;
use crate::packet::PacketInfo;
use crate::service::{AddressFamily, DestList};

const BITS: u32 = 8;
const SIZE: usize = 1 << BITS;
const MASK: u32 = (1 << BITS) - 1;

/// `struct ip_vs_dh_state`.
#[derive(Debug, Clone)]
pub(crate) struct Dh {
    buckets: Box<[Option<u32>; SIZE]>,
}

impl Dh {
    pub(crate) fn new(list: &DestList<'_>) -> Self {
        let mut s = Self {
            buckets: Box::new([None; SIZE]),
        };
        s.reassign(list);
        s
    }

    /// `ip_vs_dh_reassign`: one bucket per destination, cycling through the list.
    pub(crate) fn reassign(&mut self, list: &DestList<'_>) {
        let mut it = list.iter().cycle();
        for b in self.buckets.iter_mut() {
            *b = it.next();
        }
    }

    /// `ip_vs_dh_schedule`, one hash per address family (see `hash::fold`
    /// for why the family must be a constant there).
    #[inline]
    pub(crate) fn pick(&self, list: &DestList<'_>, pkt: &PacketInfo) -> Option<u32> {
        let h = match list.family {
            AddressFamily::Inet => addr_hash(AddressFamily::Inet, pkt.dst, MASK),
            AddressFamily::Inet6 => addr_hash(AddressFamily::Inet6, pkt.dst, MASK),
        };
        let slot = self.buckets[h as usize]?;
        list.usable(slot).then_some(slot)
    }

    pub(crate) fn holds(&self, slot: u32) -> bool {
        self.buckets.contains(&Some(slot))
    }
}
