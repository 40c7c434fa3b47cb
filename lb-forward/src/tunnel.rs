//! Tunnel encapsulation (IPIP, IPv6-in-IPv6 and the mixed forms, GUE, GRE)
//! as IPVS's `ip_vs_tunnel_xmit` builds it, and the matching decapsulation
//! a real server needs when its kernel has no tunnel module.

use crate::addr::Addr;
use crate::checksum;
use crate::wire::{gre, gue, ipv4, ipv6, proto};

/// Checksum option of a GUE tunnel (ipvsadm `--tun-nocsum|--tun-csum|--tun-remcsum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GueCsum {
    /// Outer UDP checksum zero (the default).
    #[default]
    None,
    /// Outer UDP checksum computed.
    Csum,
    /// Remote checksum offload (draft-herbert-remotecsumoffload): the outer
    /// UDP checksum is computed, the inner TCP/UDP checksum field carries
    /// only the pseudo-header sum and the GUE option tells the receiver
    /// where to finish it. Packets without a TCP/UDP checksum to defer get
    /// plain [`GueCsum::Csum`] treatment, as in the kernel.
    RemCsum,
}

/// Tunnel type and options of a destination (ipvsadm `--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TunnelKind {
    /// IP-in-IP: IPIP (proto 4) or IPv6 encapsulation (proto 41).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to `port`.
    Gue {
        /// Destination UDP port (ipvsadm `--tun-port`).
        port: u16,
        /// Checksum option.
        csum: GueCsum,
    },
    /// GRE, with or without its checksum (ipvsadm `--tun-csum`).
    Gre {
        /// Whether the GRE checksum is present.
        csum: bool,
    },
}

impl TunnelKind {
    /// Bytes added after the outer IP header, for an inner packet that
    /// can (`remcsum_able`) or cannot defer its checksum.
    #[must_use]
    pub fn overhead(&self, remcsum_able: bool) -> usize {
        match *self {
            Self::Ipip => 0,
            Self::Gue { csum, .. } => {
                8 + gue::HLEN
                    + if csum == GueCsum::RemCsum && remcsum_able {
                        gue::REMCSUM_OPTLEN
                    } else {
                        0
                    }
            }
            Self::Gre { csum } => gre::HLEN + if csum { 4 } else { 0 },
        }
    }
}

/// Outer header fields chosen per packet.
#[derive(Clone, Copy, Debug)]
pub struct Outer {
    /// Outer source (the director's tunnel address).
    pub src: Addr,
    /// Outer destination (the real server).
    pub dst: Addr,
    /// IPv4 identification of the outer header.
    pub ip_id: u16,
    /// GUE source port (a flow hash, so receivers can spread flows).
    pub sport: u16,
}

/// Where the inner packet's TCP/UDP checksum is, for GUE REMCSUM:
/// (offset of the transport header from the inner IP header, offset of
/// the checksum field within it).
pub type CsumLoc = Option<(usize, usize)>;

/// Encapsulates the IP datagram `inner` into `out` (which receives the
/// outer IP header onwards) and returns the length written, or `None` if
/// `out` is too small.
///
/// The outer header copies TTL/hop limit and DF from the inner one and
/// encapsulates ECN (RFC 6040 "normal mode": CE becomes ECT(0)), as the
/// kernel's `ip_vs_prepare_tunneled_skb` does.
///
/// # Examples
///
/// ```
/// use lb_forward::{addr::Addr, tunnel::*};
/// let f = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 1, [10, 0, 0, 100], 2, b"x");
/// let mut out = [0u8; 128];
/// let outer = Outer { src: Addr::v4([172, 16, 0, 1]), dst: Addr::v4([172, 16, 0, 2]), ip_id: 1, sport: 0 };
/// let n = encapsulate(&mut out, &f[14..], TunnelKind::Ipip, outer, None).unwrap();
/// assert_eq!(n, 20 + f.len() - 14);
/// let inner = decapsulate(&out[..n], None).unwrap();
/// assert_eq!(&out[inner], &f[14..]);
/// ```
pub fn encapsulate(
    out: &mut [u8],
    inner: &[u8],
    kind: TunnelKind,
    o: Outer,
    csum_loc: CsumLoc,
) -> Option<usize> {
    let inner_v6 = inner.first()? >> 4 == 6;
    let (ds, ttl, df) = if inner_v6 {
        let b = inner.get(..2)?;
        (
            ((b[0] & 0x0f) << 4) | (b[1] >> 4),
            *inner.get(ipv6::HOP_LIMIT)?,
            false,
        )
    } else {
        (
            *inner.get(1)?,
            *inner.get(ipv4::TTL)?,
            inner.get(ipv4::FRAG)? & 0x40 != 0,
        )
    };
    // RFC 6040 §4.1 normal mode: copy DSCP, CE → ECT(0).
    let ds = if ds & 3 == 3 { (ds & !3) | 2 } else { ds };
    let inner_proto = if inner_v6 { proto::IPV6 } else { proto::IPIP };
    let remcsum = matches!(
        kind,
        TunnelKind::Gue {
            csum: GueCsum::RemCsum,
            ..
        }
    ) && csum_loc.is_some();
    let ohl = if o.dst.is_v4() {
        ipv4::HLEN
    } else {
        ipv6::HLEN
    };
    let mid = kind.overhead(remcsum);
    let total = ohl + mid + inner.len();
    if out.len() < total || (o.dst.is_v4() && total > 0xffff) || o.src.is_v4() != o.dst.is_v4() {
        return None;
    }
    out[ohl + mid..total].copy_from_slice(inner);
    let next = match kind {
        TunnelKind::Ipip => inner_proto,
        TunnelKind::Gue { port, csum: _ } => {
            let u = ohl;
            let g = u + 8;
            out[u..u + 2].copy_from_slice(&o.sport.to_be_bytes());
            out[u + 2..u + 4].copy_from_slice(&port.to_be_bytes());
            out[u + 4..u + 6].copy_from_slice(&((total - ohl) as u16).to_be_bytes());
            out[u + 6..u + 8].fill(0);
            out[g] = if remcsum {
                (gue::REMCSUM_OPTLEN / 4) as u8
            } else {
                0
            };
            out[g + 1] = inner_proto;
            let flags = if remcsum { gue::FLAG_PRIV } else { 0 };
            out[g + 2..g + 4].copy_from_slice(&flags.to_be_bytes());
            if let (true, Some((l4, coff))) = (remcsum, csum_loc) {
                out[g + 4..g + 8].copy_from_slice(&gue::PFLAG_REMCSUM.to_be_bytes());
                out[g + 8..g + 10].copy_from_slice(&(l4 as u16).to_be_bytes());
                out[g + 10..g + 12].copy_from_slice(&((l4 + coff) as u16).to_be_bytes());
                // Leave only the pseudo-header sum in the inner checksum, as a
                // CHECKSUM_PARTIAL packet carries it; the receiver adds the rest.
                let i = ohl + mid;
                let (src, dst, plen) = if inner_v6 {
                    (&out[i + 8..i + 24], &out[i + 24..i + 40], inner.len() - l4)
                } else {
                    (&out[i + 12..i + 16], &out[i + 16..i + 20], inner.len() - l4)
                };
                let tproto = if coff == crate::wire::TCP_CHECKSUM {
                    proto::TCP
                } else {
                    proto::UDP
                };
                let ph = checksum::fold(checksum::pseudo_header(src, dst, tproto, plen as u32));
                out[i + l4 + coff..i + l4 + coff + 2].copy_from_slice(&ph.to_be_bytes());
            }
            proto::UDP
        }
        TunnelKind::Gre { csum } => {
            let g = ohl;
            let flags = if csum { gre::FLAG_CSUM } else { 0 };
            out[g..g + 2].copy_from_slice(&flags.to_be_bytes());
            let ethertype = if inner_v6 {
                crate::wire::ETHERTYPE_IPV6
            } else {
                crate::wire::ETHERTYPE_IPV4
            };
            out[g + 2..g + 4].copy_from_slice(&ethertype.to_be_bytes());
            if csum {
                out[g + 4..g + 8].fill(0);
                let c = checksum::checksum(&out[g..total]);
                out[g + 4..g + 6].copy_from_slice(&c.to_be_bytes());
            }
            proto::GRE
        }
    };
    if o.dst.is_v4() {
        let h = &mut out[..ipv4::HLEN];
        h[0] = 0x45;
        h[1] = ds;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..6].copy_from_slice(&o.ip_id.to_be_bytes());
        h[6..8].copy_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
        h[8] = ttl;
        h[9] = next;
        h[10..12].fill(0);
        h[12..16].copy_from_slice(o.src.wire());
        h[16..20].copy_from_slice(o.dst.wire());
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        let h = &mut out[..ipv6::HLEN];
        h[0] = 0x60 | (ds >> 4);
        h[1] = ds << 4;
        h[2..4].fill(0);
        h[4..6].copy_from_slice(&((total - ipv6::HLEN) as u16).to_be_bytes());
        h[6] = next;
        h[7] = ttl;
        h[8..24].copy_from_slice(o.src.wire());
        h[24..40].copy_from_slice(o.dst.wire());
    }
    if let TunnelKind::Gue {
        csum: GueCsum::Csum | GueCsum::RemCsum,
        ..
    } = kind
    {
        let u = ohl;
        let (s, d) = if o.dst.is_v4() {
            (12..16, 16..20)
        } else {
            (8..24, 24..40)
        };
        let acc = checksum::pseudo_header(&out[s], &out[d], proto::UDP, (total - u) as u32);
        let mut c = !checksum::fold(checksum::sum(acc, &out[u..total]));
        if c == 0 {
            c = 0xffff;
        }
        out[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
    }
    Some(total)
}

/// Finds the inner IP datagram of a tunnelled packet (`pkt` starts at the
/// outer IP header). Handles IPIP/IPv6 encapsulation, GRE (version 0, with
/// or without checksum, which is verified) and GUE to `gue_port` (whose
/// REMCSUM option is applied in place, hence `&mut`-free: it returns the
/// range and the caller applies [`apply_remcsum`] if it wants).
///
/// Returns `None` for anything else, or malformed input.
pub fn decapsulate(pkt: &[u8], gue_port: Option<u16>) -> Option<core::ops::Range<usize>> {
    decap_inner(pkt, gue_port).map(|d| d.range)
}

/// What [`decapsulate`] found, including a GUE REMCSUM request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decap {
    /// The inner datagram.
    pub range: core::ops::Range<usize>,
    /// GUE REMCSUM (start, checksum field) offsets relative to the inner datagram.
    pub remcsum: Option<(usize, usize)>,
}

/// Like [`decapsulate`], but also reports a GUE REMCSUM option.
pub fn decap_inner(pkt: &[u8], gue_port: Option<u16>) -> Option<Decap> {
    let v = pkt.first()? >> 4;
    let (hl, total, next) = match v {
        4 => {
            let hl = usize::from(pkt[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*pkt.get(2)?, *pkt.get(3)?]));
            (hl, total, *pkt.get(9)?)
        }
        6 => (
            ipv6::HLEN,
            ipv6::HLEN + usize::from(u16::from_be_bytes([*pkt.get(4)?, *pkt.get(5)?])),
            *pkt.get(6)?,
        ),
        _ => return None,
    };
    if hl < 20 || total < hl || total > pkt.len() {
        return None;
    }
    let body = &pkt[hl..total];
    let plain = |start: usize| {
        Some(Decap {
            range: hl + start..total,
            remcsum: None,
        })
    };
    match next {
        proto::IPIP | proto::IPV6 => plain(0),
        proto::GRE => {
            let flags = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
            if flags & !gre::FLAG_CSUM != 0 {
                return None; // version != 0 or key/sequence present
            }
            if flags & gre::FLAG_CSUM != 0 {
                if body.len() < 8 || checksum::checksum(body) != 0 {
                    return None;
                }
                plain(8)
            } else {
                plain(4)
            }
        }
        proto::UDP => {
            let port = gue_port?;
            if body.len() < 12 || u16::from_be_bytes([body[2], body[3]]) != port {
                return None;
            }
            let g = &body[8..];
            if g[0] >> 6 != 0 || g[0] & 0x20 != 0 {
                return None; // not variant 0 data
            }
            let optlen = usize::from(g[0] & 0x1f) * 4;
            if g.len() < gue::HLEN + optlen {
                return None;
            }
            let flags = u16::from_be_bytes([g[2], g[3]]);
            let mut remcsum = None;
            if flags & gue::FLAG_PRIV != 0 && optlen >= gue::REMCSUM_OPTLEN {
                let pf = u32::from_be_bytes([g[4], g[5], g[6], g[7]]);
                if pf & gue::PFLAG_REMCSUM != 0 {
                    let s = usize::from(u16::from_be_bytes([g[8], g[9]]));
                    let c = usize::from(u16::from_be_bytes([g[10], g[11]]));
                    remcsum = Some((s, c));
                }
            }
            Some(Decap {
                range: hl + 8 + gue::HLEN + optlen..total,
                remcsum,
            })
        }
        _ => None,
    }
}

/// Completes a checksum deferred with GUE REMCSUM: sums `inner[start..]`
/// (whose checksum field holds the pseudo-header sum) and stores the
/// result at `field`. Returns false if the offsets do not fit.
pub fn apply_remcsum(inner: &mut [u8], start: usize, field: usize) -> bool {
    if start > inner.len() || field < start || field + 2 > inner.len() {
        return false;
    }
    let c = checksum::checksum(&inner[start..]);
    inner[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}
