//! The kernel schedulers' hash functions, bit for bit.

use std::net::IpAddr;

use crate::service::AddressFamily;

/// `GOLDEN_RATIO_32` of include/linux/hash.h, the multiplier of `hash_32`.
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)` of include/linux/hash.h (the generic version, which
/// x86-64 and arm64 use): `(val * GOLDEN_RATIO_32) >> (32 - bits)`, the
/// *high* bits of the product.
///
/// `sh`, `dh`, `lblc` and `lblcr` hash with it. (Kernels before the
/// `hash_32` conversion masked the low bits of `val * 2654435761UL`
/// instead; Debian 12's 6.1, which the differential test runs, and mainline
/// use `hash_32`.)
#[inline]
#[must_use]
pub fn hash_32(val: u32, bits: u32) -> u32 {
    if bits == 0 {
        0
    } else {
        val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits.min(32))
    }
}

/// `ntohl(addr_fold)`: an IPv4 address as a host-order `u32`; an IPv6 address
/// folded as `ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]` (XOR commutes with the byte
/// swap, so the words are XORed in host order here).
///
/// `family` is the *service's* family, as the kernel folds with `svc->af`:
/// an IPv4 destination of an IPv6 service folds to its address (the other
/// union words are zero); an IPv6 address in an IPv4 service reads only its
/// first word (`addr->ip`).
///
/// On a per-pick path, call it with a constant `family` (the hashing
/// schedulers run one copy of their pick per family). With the family only
/// known at run time, LLVM makes this branch-free and loads all 16 address
/// bytes on every IPv4 pick; those 12 unneeded bytes can partially overlap
/// a store still in flight (a caller reusing the stack slot of its last
/// result), and a load that partially overlaps a store cannot be
/// store-forwarded: it waits for the store to retire, which chains each
/// pick to the one before (`mh` per call was 26.5 ns, 13–15 ns without;
/// benches/README.md, "Third pass").
#[inline]
#[must_use]
pub fn fold(family: AddressFamily, addr: IpAddr) -> u32 {
    match family {
        AddressFamily::Inet => match addr {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => word(&a, 0),
        },
        AddressFamily::Inet6 => match addr {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => fold_words(&a),
        },
    }
}

/// `ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]` in host order: the XOR of the four
/// big-endian words is the big-endian reading of the bytewise XOR of the
/// four 4-byte chunks, which two 8-byte loads and one byte swap compute.
#[inline(always)]
fn fold_words(a: &std::net::Ipv6Addr) -> u32 {
    let o = a.octets();
    let (lo, hi) = o.split_at(8);
    let x = u64::from_ne_bytes(lo.try_into().unwrap_or_default())
        ^ u64::from_ne_bytes(hi.try_into().unwrap_or_default());
    let [b0, b1, b2, b3, b4, b5, b6, b7] = x.to_ne_bytes();
    u32::from_be_bytes([b0 ^ b4, b1 ^ b5, b2 ^ b6, b3 ^ b7])
}

/// Word `i` (0..4) of an IPv6 address, host order.
#[inline(always)]
fn word(a: &std::net::Ipv6Addr, i: usize) -> u32 {
    let o = a.octets();
    u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
}

/// `ip_vs_dh_hashkey` / `ip_vs_lblc_hashkey` / `ip_vs_lblcr_hashkey`:
/// `hash_32(ntohl(addr_fold), bits)` for a table of `mask + 1 = 2^bits`
/// buckets.
#[inline]
#[must_use]
pub fn addr_hash(family: AddressFamily, addr: IpAddr, mask: u32) -> u32 {
    hash_32(fold(family, addr), mask.count_ones())
}

/// `ip_vs_sh_hashkey`:
/// `(offset + hash_32(ntohs(port) + ntohl(addr_fold), bits)) & mask` for a
/// table of `mask + 1 = 2^bits` buckets.
#[inline]
#[must_use]
pub fn sh_hash(family: AddressFamily, addr: IpAddr, port: u16, offset: u32, mask: u32) -> u32 {
    let base = u32::from(port).wrapping_add(fold(family, addr));
    offset.wrapping_add(hash_32(base, mask.count_ones())) & mask
}

/// `hsiphash(&v, 4, key)` on a 64-bit little-endian kernel: there hsiphash
/// is SipHash-1-3 with the two `unsigned long` key words as the 128-bit key,
/// truncated to 32 bits (lib/siphash.c, "on 64-bit, we make HalfSipHash1-3
/// actually be SipHash1-3"). `v` is hashed in its in-memory (little-endian)
/// byte order.
///
/// Specialised for the one 4-byte message: no full block, so the whole hash
/// is one compression round on the final block `(4 << 56) | v` and three
/// finalisation rounds, with no buffering or length bookkeeping. With a
/// constant key (`MH_KEY1`/`MH_KEY2`) the initial state folds to constants.
/// Bit-identical to the generic SipHash-1-3 (checked against `siphasher` in
/// this module's tests and against C known answers in `tests/hash.rs`).
#[inline]
#[must_use]
pub fn hsiphash_u32(key: [u64; 2], v: u32) -> u32 {
    // "somepseudorandomlygeneratedbytes", as in every SipHash.
    let mut s = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let b = (4u64 << 56) | u64::from(v);
    s[3] ^= b;
    sip_round(&mut s);
    s[0] ^= b;
    s[2] ^= 0xff;
    sip_round(&mut s);
    sip_round(&mut s);
    sip_round(&mut s);
    (s[0] ^ s[1] ^ s[2] ^ s[3]) as u32
}

/// One SipRound on `(v0, v1, v2, v3)`.
#[inline(always)]
fn sip_round(s: &mut [u64; 4]) {
    s[0] = s[0].wrapping_add(s[1]);
    s[1] = s[1].rotate_left(13) ^ s[0];
    s[0] = s[0].rotate_left(32);
    s[2] = s[2].wrapping_add(s[3]);
    s[3] = s[3].rotate_left(16) ^ s[2];
    s[0] = s[0].wrapping_add(s[3]);
    s[3] = s[3].rotate_left(21) ^ s[0];
    s[2] = s[2].wrapping_add(s[1]);
    s[1] = s[1].rotate_left(17) ^ s[2];
    s[2] = s[2].rotate_left(32);
}

/// `mh`'s first key (`generate_hash_secret`: both words 2654435761).
pub const MH_KEY1: [u64; 2] = [2_654_435_761, 2_654_435_761];
/// `mh`'s second key (both words 2654446892).
pub const MH_KEY2: [u64; 2] = [2_654_446_892, 2_654_446_892];

/// `ip_vs_mh_hashkey`: `hsiphash(offset + ntohs(port) + ntohl(addr_fold))`.
#[inline]
#[must_use]
pub fn mh_hash(family: AddressFamily, addr: IpAddr, port: u16, key: [u64; 2], offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(fold(family, addr));
    hsiphash_u32(key, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use siphasher::sip::SipHasher13;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The two-load IPv6 fold is the kernel's four-word XOR.
        #[test]
        fn ipv6_fold_is_the_word_xor(a in any::<u128>()) {
            let a = std::net::Ipv6Addr::from(a);
            let want = word(&a, 0) ^ word(&a, 1) ^ word(&a, 2) ^ word(&a, 3);
            prop_assert_eq!(fold(AddressFamily::Inet6, IpAddr::V6(a)), want);
        }

        /// The specialised 4-byte SipHash-1-3 equals the generic one
        /// (`siphasher`) on the same little-endian bytes, for any key.
        #[test]
        fn hsiphash_u32_is_generic_siphash13(k0 in any::<u64>(), k1 in any::<u64>(), v in any::<u32>()) {
            let want = SipHasher13::new_with_keys(k0, k1).hash(&v.to_le_bytes()) as u32;
            prop_assert_eq!(hsiphash_u32([k0, k1], v), want);
            for key in [MH_KEY1, MH_KEY2] {
                let want = SipHasher13::new_with_keys(key[0], key[1]).hash(&v.to_le_bytes()) as u32;
                prop_assert_eq!(hsiphash_u32(key, v), want);
            }
        }
    }
}
