//! ipvsadm's listing order, reproduced exactly.
//!
//! ipvsadm sorts with glibc `qsort`, which is a top-down merge sort, and
//! with comparators that subtract unsigned 32-bit values and read the
//! result as `int` (`ipvs_cmp_services`, `ipvs_cmp_dests` in libipvs). For
//! addresses more than 2^31 apart that wraps, so the order is not numeric
//! order (and the comparator is not even transitive); the merge sort below
//! follows glibc's `msort_with_tmp` step by step so that the result is the
//! same as ipvsadm's for any input.

use std::{cmp::Ordering, net::IpAddr};

use crate::types::{Dest, Family, Service, ServiceKey, inet_addr};

/// glibc's `msort_with_tmp`: split `n/2`, sort both halves, merge taking
/// from the left while `cmp(left, right) <= 0`.
///
/// ```
/// let mut v = [3u32, 1, 2];
/// lb_ipvs::sort::glibc_msort(&mut v, &|a: &u32, b: &u32| a.wrapping_sub(*b) as i32);
/// assert_eq!(v, [1, 2, 3]);
/// ```
pub fn glibc_msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut tmp = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp.push(v[i].clone());
            i += 1;
        } else {
            tmp.push(v[j].clone());
            j += 1;
        }
    }
    tmp.extend_from_slice(&v[i..n1]);
    let k = tmp.len();
    v[..k].clone_from_slice(&tmp);
}

/// The four big-endian words of an `nf_inet_addr`.
fn words(addr: &IpAddr) -> [u32; 4] {
    let a = inet_addr(addr);
    std::array::from_fn(|i| {
        u32::from_be_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]])
    })
}

/// `int r = a - b` for unsigned 32-bit `a`, `b`.
fn diff32(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_cmp(first_is_v6: bool, a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if first_is_v6 {
        let mut r = 0;
        for i in 0..4 {
            r = diff32(wa[i], wb[i]);
            if r != 0 {
                break;
            }
        }
        r
    } else {
        diff32(wa[0], wb[0])
    }
}

/// The fields libipvs compares: (fwmark, af, protocol, addr, port), with
/// zeros where the kernel does not report a field.
fn svc_fields(k: &ServiceKey) -> (u32, u16, u16, IpAddr, u16) {
    match k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (0, Family::of(addr).af(), protocol.number(), *addr, *port),
        ServiceKey::Fwmark { family, mark } => {
            let zero = match family {
                Family::Inet => IpAddr::from([0u8; 4]),
                Family::Inet6 => IpAddr::from([0u8; 16]),
            };
            (*mark, family.af(), 0, zero, 0)
        }
    }
}

/// `ipvs_cmp_services`.
pub fn cmp_services(s1: &Service, s2: &Service) -> i32 {
    let (f1, af1, p1, a1, port1) = svc_fields(&s1.key);
    let (f2, af2, p2, a2, port2) = svc_fields(&s2.key);
    let r = diff32(f1, f2);
    if r != 0 {
        return r;
    }
    let r = i32::from(af1) - i32::from(af2);
    if r != 0 {
        return r;
    }
    let r = i32::from(p1) - i32::from(p2);
    if r != 0 {
        return r;
    }
    let r = addr_cmp(af1 == crate::types::AF_INET6, &a1, &a2);
    if r != 0 {
        return r;
    }
    i32::from(port1) - i32::from(port2)
}

/// `ipvs_cmp_dests`.
pub fn cmp_dests(d1: &Dest, d2: &Dest) -> i32 {
    let r = addr_cmp(d1.addr.is_ipv6(), &d1.addr, &d2.addr);
    if r != 0 {
        return r;
    }
    i32::from(d1.port) - i32::from(d2.port)
}

/// Converts a C comparator result to an [`Ordering`].
pub fn ordering(r: i32) -> Ordering {
    r.cmp(&0)
}
