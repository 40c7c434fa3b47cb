//! Frame builders for examples, tests, benchmarks and fuzz seeds: valid
//! Ethernet/IP/TCP|UDP frames with correct checksums.

use crate::checksum;
use crate::wire::{self, proto};

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xd1];

/// A transport header to build.
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    /// UDP.
    Udp,
    /// TCP with these flags (sequence numbers are fixed test values).
    Tcp(u8),
}

/// An IPv4 frame `src:sport → dst:dport` with `payload` (DF set, TTL 64).
#[must_use]
pub fn frame4(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    l4: L4,
    payload: &[u8],
) -> Vec<u8> {
    build(&src, sport, &dst, dport, l4, payload)
}

/// An IPv6 frame `src:sport → dst:dport` with `payload` (hop limit 64).
#[must_use]
pub fn frame6(
    src: [u8; 16],
    sport: u16,
    dst: [u8; 16],
    dport: u16,
    l4: L4,
    payload: &[u8],
) -> Vec<u8> {
    build(&src, sport, &dst, dport, l4, payload)
}

/// Shorthand for an IPv4 UDP frame.
#[must_use]
pub fn udp4_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    frame4(src, sport, dst, dport, L4::Udp, payload)
}

fn build(src: &[u8], sport: u16, dst: &[u8], dport: u16, l4: L4, payload: &[u8]) -> Vec<u8> {
    let v6 = src.len() == 16;
    let (p, thl) = match l4 {
        L4::Udp => (proto::UDP, 8),
        L4::Tcp(_) => (proto::TCP, 20),
    };
    let ihl = if v6 { 40 } else { 20 };
    let tlen = thl + payload.len();
    let mut f = Vec::with_capacity(14 + ihl + tlen);
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    let et = if v6 {
        wire::ETHERTYPE_IPV6
    } else {
        wire::ETHERTYPE_IPV4
    };
    f.extend_from_slice(&et.to_be_bytes());
    if v6 {
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(tlen as u16).to_be_bytes());
        f.extend_from_slice(&[p, 64]);
        f.extend_from_slice(src);
        f.extend_from_slice(dst);
    } else {
        let total = (ihl + tlen) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, p, 0, 0]);
        f.extend_from_slice(src);
        f.extend_from_slice(dst);
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    let t = f.len();
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    match l4 {
        L4::Udp => {
            f.extend_from_slice(&(tlen as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        L4::Tcp(flags) => {
            f.extend_from_slice(&[
                0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0,
            ]);
        }
    }
    f.extend_from_slice(payload);
    let acc = checksum::pseudo_header(src, dst, p, tlen as u32);
    let mut c = !checksum::fold(checksum::sum(acc, &f[t..]));
    if c == 0 && p == proto::UDP {
        c = 0xffff;
    }
    let off = t + if p == proto::UDP {
        wire::UDP_CHECKSUM
    } else {
        wire::TCP_CHECKSUM
    };
    f[off..off + 2].copy_from_slice(&c.to_be_bytes());
    f
}
