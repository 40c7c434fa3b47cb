//! Zero-copy parsing of an Ethernet frame into the offsets and flow fields
//! the forwarder needs.
//!
//! [`parse`] reads the frame once and returns a small `Copy` value
//! ([`Parsed`]) of offsets, addresses and ports; it never allocates and
//! never panics on bad input. The rewrite functions then patch the frame in
//! place at those offsets.
//!
//! Handled: Ethernet II, IPv4 (with options), IPv6 (with hop-by-hop,
//! routing and destination-options extension headers), TCP, UDP, ICMP and
//! ICMPv6, including the packet quoted inside an ICMP error.
//! Not handled (reported as errors, so the caller passes or drops them):
//! VLAN tags, IP fragments (IPVS reassembles them first; a userspace
//! forwarder on a raw socket cannot), other transports.

use crate::addr::Addr;
use crate::error::ParseError;
use crate::wire::{self, proto};

/// The five-tuple of a packet (ports are zero for ICMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Where the IP packet quoted by an ICMP error sits, and its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Offset of the quoted IP header in the frame.
    pub l3: usize,
    /// Offset of the quoted transport header.
    pub l4: usize,
    /// Bytes of the quoted transport header present (at least 4: the ports).
    pub l4_len: usize,
    /// The quoted packet's flow, as it was sent.
    pub flow: FlowKey,
}

/// A parsed frame: offsets into it plus the fields the forwarder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Offset of the IP header (14 for Ethernet II).
    pub l3: usize,
    /// Offset of the transport header.
    pub l4: usize,
    /// End of the IP datagram in the frame (Ethernet padding excluded).
    pub end: usize,
    /// True for IPv6.
    pub v6: bool,
    /// The packet's five-tuple.
    pub flow: FlowKey,
    /// TCP flags byte (zero for other protocols).
    pub tcp_flags: u8,
    /// IPv4 Don't Fragment bit (always true for IPv6, which never
    /// fragments in flight).
    pub df: bool,
    /// For an ICMP error: the packet it quotes.
    pub quoted: Option<Quoted>,
}

impl Parsed {
    /// Length of the IP datagram.
    #[must_use]
    pub fn ip_len(&self) -> usize {
        self.end - self.l3
    }
}

/// Parses an Ethernet II frame.
///
/// # Examples
///
/// ```
/// use lb_forward::parse::parse;
/// let frame = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 4000, [10, 0, 0, 100], 53, b"hi");
/// let p = parse(&frame).unwrap();
/// assert_eq!((p.flow.proto, p.flow.sport, p.flow.dport), (17, 4000, 53));
/// ```
pub fn parse(frame: &[u8]) -> Result<Parsed, ParseError> {
    let ethertype = be16(frame, 12).ok_or(ParseError::Truncated { offset: 0 })?;
    match ethertype {
        wire::ETHERTYPE_IPV4 | wire::ETHERTYPE_IPV6 => parse_ip(frame, wire::ETH_HLEN),
        other => Err(ParseError::NotIp { ethertype: other }),
    }
}

/// Parses an IP packet starting at `l3` (the frame may carry anything before).
pub fn parse_ip(frame: &[u8], l3: usize) -> Result<Parsed, ParseError> {
    let hdr = parse_l3(frame, l3, frame.len(), true)?;
    let (sport, dport, tcp_flags, quoted) = match hdr.proto {
        proto::TCP => {
            let t = frame
                .get(hdr.l4..hdr.end)
                .ok_or(ParseError::Truncated { offset: hdr.l4 })?;
            if t.len() < 20
                || usize::from(t[12] >> 4) * 4 < 20
                || usize::from(t[12] >> 4) * 4 > t.len()
            {
                return Err(ParseError::BadHeader {
                    offset: hdr.l4,
                    what: "tcp data offset",
                });
            }
            (
                u16::from_be_bytes([t[0], t[1]]),
                u16::from_be_bytes([t[2], t[3]]),
                t[13],
                None,
            )
        }
        proto::UDP => {
            let t = frame
                .get(hdr.l4..hdr.end)
                .ok_or(ParseError::Truncated { offset: hdr.l4 })?;
            if t.len() < 8 {
                return Err(ParseError::Truncated { offset: hdr.l4 });
            }
            let ulen = usize::from(u16::from_be_bytes([t[4], t[5]]));
            if ulen < 8 || ulen > t.len() {
                return Err(ParseError::BadHeader {
                    offset: hdr.l4 + 4,
                    what: "udp length",
                });
            }
            (
                u16::from_be_bytes([t[0], t[1]]),
                u16::from_be_bytes([t[2], t[3]]),
                0,
                None,
            )
        }
        proto::ICMP | proto::ICMPV6 => {
            let t = frame
                .get(hdr.l4..hdr.end)
                .ok_or(ParseError::Truncated { offset: hdr.l4 })?;
            if t.len() < 8 {
                return Err(ParseError::Truncated { offset: hdr.l4 });
            }
            let is_err = if hdr.proto == proto::ICMP {
                !hdr.v6 && wire::icmpv4_is_error(t[0])
            } else {
                hdr.v6 && wire::icmpv6_is_error(t[0])
            };
            let quoted = if is_err {
                Some(parse_quoted(frame, hdr.l4 + 8, hdr.end, hdr.v6)?)
            } else {
                None
            };
            (0, 0, 0, quoted)
        }
        other => return Err(ParseError::UnsupportedProtocol { proto: other }),
    };
    Ok(Parsed {
        l3,
        l4: hdr.l4,
        end: hdr.end,
        v6: hdr.v6,
        flow: FlowKey {
            proto: hdr.proto,
            src: hdr.src,
            dst: hdr.dst,
            sport,
            dport,
        },
        tcp_flags,
        df: hdr.df,
        quoted,
    })
}

struct L3 {
    l4: usize,
    end: usize,
    v6: bool,
    proto: u8,
    src: Addr,
    dst: Addr,
    df: bool,
}

/// Parses an IP header at `l3`; `outer` enforces the length fields exactly
/// (a quoted header may be cut short by the ICMP error's size limit).
fn parse_l3(frame: &[u8], l3: usize, limit: usize, outer: bool) -> Result<L3, ParseError> {
    let b = frame
        .get(l3..limit)
        .ok_or(ParseError::Truncated { offset: l3 })?;
    let version = b.first().ok_or(ParseError::Truncated { offset: l3 })? >> 4;
    match version {
        4 => {
            if b.len() < 20 {
                return Err(ParseError::Truncated { offset: l3 });
            }
            let ihl = usize::from(b[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
            if ihl < 20 || ihl > b.len() {
                return Err(ParseError::BadHeader {
                    offset: l3,
                    what: "ipv4 header length",
                });
            }
            if outer && (total < ihl || total > b.len()) {
                return Err(ParseError::BadHeader {
                    offset: l3 + 2,
                    what: "ipv4 total length",
                });
            }
            if outer && !cfg!(fuzzing) && crate::checksum::checksum(&b[..ihl]) != 0 {
                return Err(ParseError::BadChecksum { offset: l3 + 10 });
            }
            let frag = u16::from_be_bytes([b[6], b[7]]);
            if frag & 0x3fff != 0 {
                return Err(ParseError::Fragment { offset: l3 + 6 });
            }
            let end = if outer {
                l3 + total
            } else {
                l3 + total.clamp(ihl, b.len())
            };
            Ok(L3 {
                l4: l3 + ihl,
                end,
                v6: false,
                proto: b[9],
                src: Addr::v4([b[12], b[13], b[14], b[15]]),
                dst: Addr::v4([b[16], b[17], b[18], b[19]]),
                df: frag & 0x4000 != 0,
            })
        }
        6 => {
            if b.len() < 40 {
                return Err(ParseError::Truncated { offset: l3 });
            }
            let plen = usize::from(u16::from_be_bytes([b[4], b[5]]));
            if outer && 40 + plen > b.len() {
                return Err(ParseError::BadHeader {
                    offset: l3 + 4,
                    what: "ipv6 payload length",
                });
            }
            let end = if outer {
                l3 + 40 + plen
            } else {
                l3 + (40 + plen).min(b.len())
            };
            let mut next = b[6];
            let mut off = l3 + 40;
            // Walk at most a few extension headers; anything longer is odd
            // enough to leave to the kernel.
            for _ in 0..4 {
                match next {
                    proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS => {
                        let h = frame.get(off..off + 2).filter(|_| off + 2 <= end);
                        let h = h.ok_or(ParseError::Truncated { offset: off })?;
                        next = h[0];
                        off += (usize::from(h[1]) + 1) * 8;
                    }
                    proto::IPV6_FRAG => return Err(ParseError::Fragment { offset: off }),
                    _ => break,
                }
            }
            if off > end {
                return Err(ParseError::Truncated { offset: off });
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&b[8..24]);
            dst.copy_from_slice(&b[24..40]);
            Ok(L3 {
                l4: off,
                end,
                v6: true,
                proto: next,
                src: Addr(src),
                dst: Addr(dst),
                df: true,
            })
        }
        _ => Err(ParseError::BadHeader {
            offset: l3,
            what: "ip version",
        }),
    }
}

fn parse_quoted(frame: &[u8], l3: usize, end: usize, outer_v6: bool) -> Result<Quoted, ParseError> {
    let h = parse_l3(frame, l3, end, false)?;
    if h.v6 != outer_v6 {
        return Err(ParseError::BadHeader {
            offset: l3,
            what: "quoted ip version",
        });
    }
    let l4_len = end.saturating_sub(h.l4);
    let (sport, dport) = match h.proto {
        proto::TCP | proto::UDP => {
            if l4_len < 4 {
                return Err(ParseError::Truncated { offset: h.l4 });
            }
            (
                be16(frame, h.l4).unwrap_or(0),
                be16(frame, h.l4 + 2).unwrap_or(0),
            )
        }
        other => return Err(ParseError::UnsupportedProtocol { proto: other }),
    };
    Ok(Quoted {
        l3,
        l4: h.l4,
        l4_len,
        flow: FlowKey {
            proto: h.proto,
            src: h.src,
            dst: h.dst,
            sport,
            dport,
        },
    })
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
