//! In-place header rewrites with incremental checksum updates (RFC 1624).
//!
//! Every function takes the frame and the [`Parsed`] offsets of that same
//! frame. They never change the frame's length, never allocate, and keep
//! every checksum valid (a checksum that was wrong stays wrong by the same
//! amount, as RFC 1624 updates do).

use crate::addr::{Addr, Mac};
use crate::checksum::{self, update, update_u16};
use crate::parse::Parsed;
use crate::wire::{self, ipv4, ipv6, proto};

/// Which end of a flow to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

/// Writes the Ethernet source and destination addresses.
///
/// # Examples
///
/// ```
/// let mut f = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 1, [10, 0, 0, 9], 2, b"");
/// lb_forward::rewrite::set_macs(&mut f, [2; 6], [4; 6]);
/// assert_eq!(&f[..12], &[4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2]);
/// ```
pub fn set_macs(frame: &mut [u8], src: Mac, dst: Mac) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
}

/// NAT in: destination becomes `addr:port` (the real server).
///
/// `addr` must be in the packet's family (callers check at configuration).
///
/// # Examples
///
/// ```
/// use lb_forward::{addr::Addr, parse::parse, rewrite::nat_dst};
/// let mut f = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 4000, [10, 0, 0, 100], 53, b"q");
/// let p = parse(&f).unwrap();
/// nat_dst(&mut f, &p, Addr::v4([172, 16, 0, 2]), 5353);
/// let q = parse(&f).unwrap();
/// assert_eq!((q.flow.dst, q.flow.dport), (Addr::v4([172, 16, 0, 2]), 5353));
/// ```
pub fn nat_dst(frame: &mut [u8], p: &Parsed, addr: Addr, port: u16) {
    rewrite_l3l4(
        frame,
        p.l3,
        p.l4,
        p.v6,
        p.flow.proto,
        p.end - p.l4,
        End::Dst,
        addr,
        port,
    );
}

/// NAT out: source becomes `addr:port` (the virtual service).
pub fn nat_src(frame: &mut [u8], p: &Parsed, addr: Addr, port: u16) {
    rewrite_l3l4(
        frame,
        p.l3,
        p.l4,
        p.v6,
        p.flow.proto,
        p.end - p.l4,
        End::Src,
        addr,
        port,
    );
}

/// Rewrites one end's address in the IP header at `l3` and its port in the
/// transport header at `l4`, patching the IPv4 header checksum and the
/// TCP/UDP/ICMPv6 checksum. `l4_len` is how much of the transport header is
/// present (quoted packets may be cut short; fields beyond are left alone).
#[allow(clippy::too_many_arguments)]
fn rewrite_l3l4(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    v6: bool,
    l4proto: u8,
    l4_len: usize,
    end: End,
    addr: Addr,
    port: u16,
) {
    let new = addr.wire();
    let (aoff, alen) = match (v6, end) {
        (false, End::Src) => (l3 + ipv4::SRC, 4),
        (false, End::Dst) => (l3 + ipv4::DST, 4),
        (true, End::Src) => (l3 + ipv6::SRC, 16),
        (true, End::Dst) => (l3 + ipv6::DST, 16),
    };
    debug_assert_eq!(new.len(), alen);
    let mut old = [0u8; 16];
    old[..alen].copy_from_slice(&frame[aoff..aoff + alen]);
    let old = &old[..alen];
    frame[aoff..aoff + alen].copy_from_slice(new);
    if !v6 {
        let c = get16(frame, l3 + ipv4::CHECKSUM);
        put16(frame, l3 + ipv4::CHECKSUM, update(c, old, new));
    }
    let poff = l4 + if end == End::Src { 0 } else { 2 };
    match l4proto {
        proto::TCP | proto::UDP => {
            let old_port = get16(frame, poff);
            put16(frame, poff, port);
            let (coff, udp) = if l4proto == proto::TCP {
                (wire::TCP_CHECKSUM, false)
            } else {
                (wire::UDP_CHECKSUM, true)
            };
            if l4_len < coff + 2 {
                return;
            }
            let c = get16(frame, l4 + coff);
            if udp && !v6 && c == 0 {
                return; // IPv4 UDP without a checksum (RFC 768).
            }
            let mut c2 = update(c, old, new);
            c2 = update_u16(c2, old_port, port);
            if udp && c2 == 0 {
                c2 = 0xffff; // RFC 768: a computed zero is sent as all ones.
            }
            put16(frame, l4 + coff, c2);
        }
        proto::ICMPV6 if l4_len >= 4 => {
            // The ICMPv6 checksum covers the pseudo-header (RFC 4443 §2.3).
            let c = get16(frame, l4 + wire::ICMP_CHECKSUM);
            put16(frame, l4 + wire::ICMP_CHECKSUM, update(c, old, new));
        }
        _ => {}
    }
}

/// NAT of an ICMP error travelling towards the real server (the client, or
/// a router near it, complains about a reply the real server sent):
/// outer destination becomes `rip`, the quoted packet's source becomes
/// `rip:rport`; inner and outer checksums are fixed (cf. the kernel's
/// `ip_vs_nat_icmp`, which also fixes the quoted transport checksum only
/// partially — here it is patched whenever it was quoted).
///
/// Does nothing if `p` is not an ICMP error.
pub fn nat_icmp_to_real(frame: &mut [u8], p: &Parsed, rip: Addr, rport: u16) {
    let Some(q) = p.quoted else { return };
    rewrite_outer(frame, p, End::Dst, rip);
    rewrite_l3l4(
        frame,
        q.l3,
        q.l4,
        p.v6,
        q.flow.proto,
        q.l4_len,
        End::Src,
        rip,
        rport,
    );
    fix_icmp_checksum(frame, p);
}

/// NAT of an ICMP error travelling towards the client (the real server, or
/// a router near it, complains about a packet the client sent): the quoted
/// packet's destination becomes `vip:vport`, and the outer source becomes
/// `vip` when it was the real server `rip` itself.
pub fn nat_icmp_to_client(frame: &mut [u8], p: &Parsed, rip: Addr, vip: Addr, vport: u16) {
    let Some(q) = p.quoted else { return };
    if p.flow.src == rip {
        rewrite_outer(frame, p, End::Src, vip);
    }
    rewrite_l3l4(
        frame,
        q.l3,
        q.l4,
        p.v6,
        q.flow.proto,
        q.l4_len,
        End::Dst,
        vip,
        vport,
    );
    fix_icmp_checksum(frame, p);
}

/// Rewrites one outer address only (its ICMP checksum is recomputed later).
fn rewrite_outer(frame: &mut [u8], p: &Parsed, end: End, addr: Addr) {
    let new = addr.wire();
    let off = match (p.v6, end) {
        (false, End::Src) => p.l3 + ipv4::SRC,
        (false, End::Dst) => p.l3 + ipv4::DST,
        (true, End::Src) => p.l3 + ipv6::SRC,
        (true, End::Dst) => p.l3 + ipv6::DST,
    };
    let mut old = [0u8; 16];
    old[..new.len()].copy_from_slice(&frame[off..off + new.len()]);
    frame[off..off + new.len()].copy_from_slice(new);
    if !p.v6 {
        let c = get16(frame, p.l3 + ipv4::CHECKSUM);
        put16(frame, p.l3 + ipv4::CHECKSUM, update(c, &old[..4], new));
    }
}

/// Recomputes the ICMP (or ICMPv6, with its pseudo-header) checksum over
/// the whole message; ICMP errors are rare, so a full sum is fine.
pub fn fix_icmp_checksum(frame: &mut [u8], p: &Parsed) {
    put16(frame, p.l4 + wire::ICMP_CHECKSUM, 0);
    let msg = &frame[p.l4..p.end];
    let acc = if p.v6 {
        let src = &frame[p.l3 + ipv6::SRC..p.l3 + ipv6::SRC + 16];
        let dst = &frame[p.l3 + ipv6::DST..p.l3 + ipv6::DST + 16];
        checksum::pseudo_header(src, dst, proto::ICMPV6, msg.len() as u32)
    } else {
        0
    };
    let c = !checksum::fold(checksum::sum(acc, msg));
    put16(frame, p.l4 + wire::ICMP_CHECKSUM, c);
}

pub(crate) fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
