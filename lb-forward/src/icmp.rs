//! ICMP errors the director originates: fragmentation needed / packet too
//! big (when a packet plus tunnel overhead exceeds the egress MTU) and port
//! unreachable (when a service has no destination), as IPVS sends them.

use crate::addr::Mac;
use crate::checksum;
use crate::parse::Parsed;
use crate::wire::{self, ipv4, ipv6, proto};

/// Which error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// ICMP type 3 code 4 (RFC 1191) / ICMPv6 type 2 (RFC 4443 §3.2),
    /// carrying the MTU the packet must fit.
    TooBig {
        /// The path MTU to report.
        mtu: u16,
    },
    /// ICMP type 3 code 3 / ICMPv6 type 1 code 4.
    PortUnreachable,
}

/// Largest ICMPv4 error datagram (RFC 1812 §4.3.2.3: 576 bytes).
const V4_MAX: usize = 576;

/// Writes an Ethernet frame carrying an ICMP error about the packet in
/// `frame` (parsed as `p`) into `out`, from the packet's destination back
/// to its source, and returns its length (`None` if `out` is too small or
/// the packet must not be answered: ICMP errors are never sent about ICMP
/// errors, RFC 1122 §3.2.2).
///
/// # Examples
///
/// ```
/// use lb_forward::{icmp::*, parse::parse};
/// let f = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 1, [10, 0, 0, 100], 2, &[0; 1400]);
/// let p = parse(&f).unwrap();
/// let mut out = [0u8; 1514];
/// let n = error_frame(&f, &p, IcmpError::TooBig { mtu: 1400 }, [2; 6], [4; 6], &mut out).unwrap();
/// let q = parse(&out[..n]).unwrap();
/// assert_eq!(q.quoted.unwrap().flow, p.flow);
/// ```
pub fn error_frame(
    frame: &[u8],
    p: &Parsed,
    err: IcmpError,
    src_mac: Mac,
    dst_mac: Mac,
    out: &mut [u8],
) -> Option<usize> {
    if p.quoted.is_some() {
        return None;
    }
    if p.flow.proto == proto::ICMP || p.flow.proto == proto::ICMPV6 {
        let ty = *frame.get(p.l4)?;
        if ty < 128 && p.v6 || !p.v6 && wire::icmpv4_is_error(ty) {
            return None;
        }
    }
    let orig = &frame[p.l3..p.end];
    let (hl, max) = if p.v6 {
        (ipv6::HLEN, ipv6::MIN_MTU)
    } else {
        (ipv4::HLEN, V4_MAX)
    };
    let quote = orig.len().min(max - hl - 8);
    let total = hl + 8 + quote;
    let e = wire::ETH_HLEN;
    if out.len() < e + total {
        return None;
    }
    out[0..6].copy_from_slice(&dst_mac);
    out[6..12].copy_from_slice(&src_mac);
    let et = if p.v6 {
        wire::ETHERTYPE_IPV6
    } else {
        wire::ETHERTYPE_IPV4
    };
    out[12..14].copy_from_slice(&et.to_be_bytes());
    let (src, dst) = (p.flow.dst.wire(), p.flow.src.wire());
    let icmp = e + hl;
    let (ty, code, rest) = match (p.v6, err) {
        (false, IcmpError::TooBig { mtu }) => (3, 4, u32::from(mtu)),
        (false, IcmpError::PortUnreachable) => (3, 3, 0),
        (true, IcmpError::TooBig { mtu }) => (2, 0, u32::from(mtu)),
        (true, IcmpError::PortUnreachable) => (1, 4, 0),
    };
    out[icmp] = ty;
    out[icmp + 1] = code;
    out[icmp + 2..icmp + 4].fill(0);
    out[icmp + 4..icmp + 8].copy_from_slice(&rest.to_be_bytes());
    out[icmp + 8..icmp + 8 + quote].copy_from_slice(&orig[..quote]);
    let h = &mut out[e..e + hl];
    if p.v6 {
        h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        h[4..6].copy_from_slice(&((total - hl) as u16).to_be_bytes());
        h[6] = proto::ICMPV6;
        h[7] = 64;
        h[8..24].copy_from_slice(src);
        h[24..40].copy_from_slice(dst);
    } else {
        h[0] = 0x45;
        h[1] = 0xc0; // internetwork control precedence, as Linux's icmp_send
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..8].fill(0);
        h[8] = 64;
        h[9] = proto::ICMP;
        h[10..12].fill(0);
        h[12..16].copy_from_slice(src);
        h[16..20].copy_from_slice(dst);
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let acc = if p.v6 {
        checksum::pseudo_header(src, dst, proto::ICMPV6, (total - hl) as u32)
    } else {
        0
    };
    let c = !checksum::fold(checksum::sum(acc, &out[icmp..e + total]));
    out[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
    Some(e + total)
}
