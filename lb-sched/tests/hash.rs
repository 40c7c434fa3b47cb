//! Known-answer tests of the kernel hash functions.
//!
//! The hsiphash values come from an independent C implementation of
//! SipHash-1-3 (the 64-bit kernel's `hsiphash`, lib/siphash.c), keyed as
//! ip_vs_mh.c keys it, run on x86-64.

use std::net::IpAddr;

use lb_sched::AddressFamily;
use lb_sched::ipvs::hash::{MH_KEY1, MH_KEY2, addr_hash, fold, hsiphash_u32, mh_hash, sh_hash};

#[test]
fn hsiphash_matches_c() {
    // (input, hsiphash with key 2654435761, hsiphash with key 2654446892)
    let kat: [(u32, u32, u32); 7] = [
        (0x0000_0000, 0x1d5a_77c2, 0xf882_433f),
        (0x0000_0001, 0x16ec_66b2, 0x8210_aad1),
        (0x0a00_0001, 0x0308_0ce4, 0x48f9_d0c1),
        (0x0a00_0051, 0x439c_0cbe, 0x97b3_dc47),
        (0xc000_0201, 0x9288_9c88, 0xc6fe_83e5),
        (0xffff_ffff, 0x22c5_d719, 0xf75a_0f5d),
        (0x00bc_614e, 0x277d_37a1, 0x682f_0178),
    ];
    for (v, h1, h2) in kat {
        assert_eq!(hsiphash_u32(MH_KEY1, v), h1, "key1 {v:#x}");
        assert_eq!(hsiphash_u32(MH_KEY2, v), h2, "key2 {v:#x}");
    }
}

#[test]
fn mh_hash_sums_offset_port_and_address() {
    // 10.0.0.1 port 80: v = 0x0a000001 + 80 = 0x0a000051.
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(mh_hash(AddressFamily::Inet, a, 80, MH_KEY1, 0), 0x439c_0cbe);
    assert_eq!(mh_hash(AddressFamily::Inet, a, 0, MH_KEY2, 80), 0x97b3_dc47);
}

#[test]
fn ipv6_folds_four_words() {
    let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
    let want = 0x2001_0db8 ^ 0x0001_0002 ^ 0x0003_0004 ^ 0x0005_0006;
    assert_eq!(fold(AddressFamily::Inet6, a), want);
    // An IPv6 address read through an IPv4 service's `addr->ip`: the first word.
    assert_eq!(fold(AddressFamily::Inet, a), 0x2001_0db8);
    // An IPv4 destination of an IPv6 service: the other union words are zero.
    let b: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(fold(AddressFamily::Inet6, b), 0x0a00_0001);
}

#[test]
fn hash_32_matches_c() {
    // hash_32(x, bits) = (x * 0x61C88647) >> (32 - bits) in 32 bits
    // (include/linux/hash.h); values computed independently in Python.
    for (a, b8, b10) in [
        ("10.0.0.1", 39, 159),
        ("192.0.2.1", 50, 203),
        ("203.0.113.1", 50, 200),
    ] {
        let a: IpAddr = a.parse().unwrap();
        assert_eq!(addr_hash(AddressFamily::Inet, a, 255), b8);
        assert_eq!(addr_hash(AddressFamily::Inet, a, 1023), b10);
    }
    // sh adds the port before hashing and the offset after, then masks.
    let a: IpAddr = "0.0.0.1".parse().unwrap();
    assert_eq!(sh_hash(AddressFamily::Inet, a, 1, 0, 255), 195);
    assert_eq!(sh_hash(AddressFamily::Inet, a, 0, 5, 255), (5 + 97) & 255);
    assert_eq!(
        sh_hash(AddressFamily::Inet, a, 0, 200, 255),
        (200 + 97) & 255
    );
}
