//! `mh` (ip_vs_mh.c): Maglev hashing with the kernel's keys, turns and fill order.

use crate::ipvs::fastmod::FastMod;
use crate::ipvs::hash::{MH_KEY1, MH_KEY2, mh_hash};
use crate::ipvs::sh::{first_bucket, hash_key};
use crate::packet::PacketInfo;
use crate::scheduler::MH_TABLE_SIZES;
use crate::service::{AddressFamily, DestList, ServiceFlags};

/// An empty `lookup` entry (the kernel's NULL `dest`).
const NO_DEST: u32 = u32::MAX;

/// `struct ip_vs_mh_state`.
#[derive(Debug, Clone)]
pub(crate) struct Mh {
    /// Slots, [`NO_DEST`] for none: 4 bytes an entry, so the default
    /// 4093-entry table is 16 KB and mostly stays in L1.
    lookup: Vec<u32>,
    /// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`.
    tab_bits: u32,
    /// The table size, with its constant for a division-free `% size`
    /// (computed once here instead of a division on every pick).
    modulus: FastMod,
}

/// `struct ip_vs_mh_dest_setup`.
#[derive(Debug, Clone, Copy)]
struct Setup {
    skip: u32,
    perm: u32,
    turns: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Linux `fls()`: 1-based index of the highest set bit, 0 for 0.
fn fls(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl Mh {
    /// `ip_vs_mh_init_svc`. `size` is one of [`MH_TABLE_SIZES`].
    pub(crate) fn new(list: &DestList<'_>, size: u32) -> Self {
        let index = MH_TABLE_SIZES.iter().position(|&p| p == size).unwrap_or(4) as u32;
        let mut s = Self {
            lookup: vec![NO_DEST; size as usize],
            tab_bits: (index + 8) / 2,
            modulus: FastMod::new(size),
        };
        s.dest_changed(list);
        s
    }

    fn size(&self) -> u32 {
        self.modulus.divisor()
    }

    /// `ip_vs_mh_dest_changed`: gcd and shift of the `last_weight`s, then
    /// `ip_vs_mh_reassign`. With more destinations than table slots the
    /// kernel refuses (-EINVAL, ignored by its caller) and keeps the old table.
    pub(crate) fn dest_changed(&mut self, list: &DestList<'_>) {
        let m = self.size();
        if list.len() > m as usize {
            return;
        }
        let mut g = 0;
        let mut max = 0;
        for slot in list.iter() {
            let w = u64::from(list.dest(slot).last_weight);
            if w > 0 {
                g = if g > 0 { gcd(w, g) } else { w };
            }
            max = max.max(w);
        }
        if g < 1 {
            self.lookup.fill(NO_DEST);
            return;
        }
        let shift = fls(max / g).saturating_sub(self.tab_bits);
        // ip_vs_mh_permutate
        let family = list.family;
        let mut setup: Vec<Setup> = list
            .iter()
            .map(|slot| {
                let d = list.dest(slot);
                let (addr, port) = (d.addr.ip(), d.addr.port());
                let offset = mh_hash(family, addr, port, MH_KEY1, 0) % m;
                let skip = mh_hash(family, addr, port, MH_KEY2, 0) % (m - 1) + 1;
                let lw = u64::from(d.last_weight);
                let turns = match (lw / g) >> shift {
                    0 => u64::from(lw != 0),
                    t => t,
                };
                Setup {
                    skip,
                    perm: offset,
                    turns,
                }
            })
            .collect();
        // ip_vs_mh_populate
        let slots: Vec<u32> = list.iter().collect();
        let mut taken = vec![false; m as usize];
        let mut n = 0;
        'fill: loop {
            let mut i = 0;
            let mut dt_count = 0;
            while i < slots.len() {
                let ds = &mut setup[i];
                if ds.turns < 1 {
                    i += 1;
                    continue;
                }
                let mut c = ds.perm;
                while taken[c as usize] {
                    ds.perm += ds.skip;
                    if ds.perm >= m {
                        ds.perm -= m;
                    }
                    c = ds.perm;
                }
                taken[c as usize] = true;
                self.lookup[c as usize] = slots[i];
                n += 1;
                if n == m {
                    break 'fill;
                }
                dt_count += 1;
                if dt_count >= ds.turns {
                    dt_count = 0;
                    i += 1;
                }
            }
        }
    }

    /// The entry for `hash`: `ip_vs_mh_get`'s `s->lookup[hash].dest`.
    #[inline(always)]
    fn get(&self, hash: u32) -> Option<u32> {
        Some(self.lookup[hash as usize]).filter(|&s| s != NO_DEST)
    }

    /// `ip_vs_mh_schedule` with `ip_vs_mh_get`: `Ok` with the pick, or
    /// `Err(hash)` when the bucket's destination is unavailable and
    /// `mh-fallback` asks for `ip_vs_mh_get_fallback`, which
    /// [`fallback`](Self::fallback) does out of line. (So the common path
    /// needs few registers and passes no pointer to a `DestList`, which
    /// would have to be stored to the stack on every pick.)
    ///
    /// One copy per address family, so that the family is a constant inside
    /// and an IPv4 pick never loads bytes 4..16 of the client's `IpAddr`
    /// (see `hash::fold`).
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
        let (addr, port) = hash_key(pkt, list.flags.contains(ServiceFlags::MH_PORT));
        let ihash = self.modulus.rem(mh_hash(family, *addr, port, MH_KEY1, 0));
        first_bucket(list, self.get(ihash), ihash, ServiceFlags::MH_FALLBACK)
    }

    /// `ip_vs_mh_get_fallback`, from the first hash `ihash`: rehash with
    /// each offset from it until a bucket names a usable destination.
    #[cold]
    #[inline(never)]
    pub(crate) fn fallback(
        &self,
        list: &DestList<'_>,
        pkt: &PacketInfo,
        ihash: u32,
    ) -> Option<u32> {
        let (addr, port) = hash_key(pkt, list.flags.contains(ServiceFlags::MH_PORT));
        for offset in 0..self.size() {
            let roffset = self.modulus.rem(offset + ihash);
            let hash = self
                .modulus
                .rem(mh_hash(list.family, *addr, port, MH_KEY1, roffset));
            let slot = self.get(hash)?;
            if list.schedulable(slot) {
                return Some(slot);
            }
        }
        None
    }

    pub(crate) fn holds(&self, slot: u32) -> bool {
        self.lookup.contains(&slot)
    }
}
