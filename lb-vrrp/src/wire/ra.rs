//! The ICMPv6 Router Advertisement (RFC 4861 §4.2) an Active IPv6 router
//! sends for its virtual router (RFC 9568 §6.4.3 "MUST send ND Router
//! Advertisements for the Virtual Router", §8.2.3), as an ICMPv6 message for
//! a raw ICMPv6 socket: the kernel adds the IPv6 header; send it to ff02::1
//! with Hop Limit 255 from a link-local source (RFC 4861 §6.1.2 makes hosts
//! drop anything else).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type = 134   |   Code = 0    |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Cur Hop Limit |M|O|H|Prf|Resvd|       Router Lifetime         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Reachable Time                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Retrans Timer                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Type = 1      | Length = 1    |  Source Link-Layer Address    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+             (6)               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Type = 3      | Length = 4    | Prefix Length |L|A| Reserved1 |  Prefix
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  Information
//! |                         Valid Lifetime                        |  (RFC 4861
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  §4.6.2),
//! |                       Preferred Lifetime                      |  zero or
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  more
//! |                           Reserved2                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Prefix (16 bytes)                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `Prf` is the RFC 4191 default router preference. The checksum covers the
//! RFC 8200 pseudo-header (next header 58).
//!
//! ```
//! use core::net::Ipv6Addr;
//! use lb_vrrp::wire::ra::{Packet, Preference, PrefixInfo, Repr};
//!
//! let mut repr = Repr::new(1800);
//! repr.source_mac = Some([0x00, 0x00, 0x5e, 0x00, 0x02, 51]);
//! repr.preference = Preference::Low;
//! repr.prefixes.push(PrefixInfo::new("2001:db8::".parse().unwrap(), 64));
//! let src: Ipv6Addr = "fe80::1".parse().unwrap();
//! let mut buf = [0u8; 128];
//! let n = repr.emit(&mut buf, src, lb_vrrp::wire::ndisc::ALL_NODES).unwrap();
//! assert_eq!(n, 16 + 8 + 32);
//! let p = Packet::new_checked(&buf[..n]).unwrap();
//! assert!(p.verify_checksum(src, lb_vrrp::wire::ndisc::ALL_NODES));
//! assert_eq!(Repr::parse(&p).unwrap(), repr);
//! ```

use core::net::Ipv6Addr;

use smallvec::SmallVec;

use super::Error;
use super::checksum::{finish, pseudo_v6, sum_words};
use super::ndisc::NEXT_HEADER_ICMPV6;

/// ICMPv6 type of a Router Advertisement.
pub const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;
/// ICMPv6 type of a Router Solicitation.
pub const ICMPV6_ROUTER_SOLICITATION: u8 = 133;
/// Length of the fixed part (before the options).
pub const HEADER_LEN: usize = 16;
/// Length of the source link-layer address option (Ethernet).
pub const SLLA_LEN: usize = 8;
/// Length of one Prefix Information option.
pub const PREFIX_LEN: usize = 32;
/// The most Prefix Information options [`Repr::emit`] writes, so that an
/// advertisement fits the IPv6 minimum MTU of 1280 with room to spare.
pub const MAX_PREFIXES: usize = 16;
/// The longest message [`Repr::emit`] writes.
pub const MAX_LEN: usize = HEADER_LEN + SLLA_LEN + MAX_PREFIXES * PREFIX_LEN;

const OPT_SOURCE_LL: u8 = 1;
const OPT_PREFIX: u8 = 3;
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;
const PREFIX_ON_LINK: u8 = 0x80;
const PREFIX_AUTONOMOUS: u8 = 0x40;

mod field {
    use core::ops::Range;
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const HOP_LIMIT: usize = 4;
    pub(super) const FLAGS: usize = 5;
    pub(super) const LIFETIME: Range<usize> = 6..8;
    pub(super) const REACHABLE: Range<usize> = 8..12;
    pub(super) const RETRANS: Range<usize> = 12..16;
}

/// RFC 4191 Default Router Preference (the `Prf` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// 11: a host prefers other default routers.
    Low,
    /// 00: the RFC 4861 behaviour.
    #[default]
    Medium,
    /// 01: preferred over medium and low.
    High,
}

impl Preference {
    const fn bits(self) -> u8 {
        match self {
            Self::Low => 0b11,
            Self::Medium => 0b00,
            Self::High => 0b01,
        }
    }

    /// RFC 4191 §2.2: the reserved value 10 is read as medium.
    const fn from_bits(b: u8) -> Self {
        match b & 0b11 {
            0b11 => Self::Low,
            0b01 => Self::High,
            _ => Self::Medium,
        }
    }
}

/// One Prefix Information option (RFC 4861 §4.6.2): a prefix hosts treat as
/// on-link and may autoconfigure addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix (bits past `len` are sent as found; RFC 4861 says hosts ignore them).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0–128.
    pub len: u8,
    /// The L flag: the prefix is on-link.
    pub on_link: bool,
    /// The A flag: hosts may use it for SLAAC.
    pub autonomous: bool,
    /// Valid lifetime in seconds (`u32::MAX` is infinite).
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds.
    pub preferred_lifetime: u32,
}

impl PrefixInfo {
    /// An on-link, autonomous prefix with RFC 4861's default lifetimes
    /// (valid 30 days, preferred 7 days).
    pub const fn new(prefix: Ipv6Addr, len: u8) -> Self {
        Self {
            prefix,
            len,
            on_link: true,
            autonomous: true,
            valid_lifetime: 2_592_000,
            preferred_lifetime: 604_800,
        }
    }
}

/// A view of a Router Advertisement.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer, checking that it holds the fixed part and that the
    /// options are well formed (no zero length, none running past the end;
    /// RFC 4861 §6.1.2 makes a host discard an advertisement that fails this).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: b.len(),
                needed: HEADER_LEN,
            });
        }
        let mut off = HEADER_LEN;
        while off < b.len() {
            let needed = off + 2;
            let opt_len = b.get(off + 1).map(|l| usize::from(*l) * 8);
            match opt_len {
                Some(l) if l > 0 && off + l <= b.len() => off += l,
                Some(l) => {
                    return Err(Error::Truncated {
                        len: b.len(),
                        needed: off + l.max(8),
                    });
                }
                None => {
                    return Err(Error::Truncated {
                        len: b.len(),
                        needed,
                    });
                }
            }
        }
        Ok(Self { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// ICMPv6 type.
    pub fn icmp_type(&self) -> u8 {
        self.b()[field::TYPE]
    }

    /// ICMPv6 code (0).
    pub fn code(&self) -> u8 {
        self.b()[field::CODE]
    }

    /// Cur Hop Limit (0: unspecified).
    pub fn cur_hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// The flags byte (M, O, H, Prf).
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// Router Lifetime in seconds (0: not a default router).
    pub fn router_lifetime(&self) -> u16 {
        let b = &self.b()[field::LIFETIME];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Reachable Time in milliseconds (0: unspecified).
    pub fn reachable_time(&self) -> u32 {
        be32(&self.b()[field::REACHABLE])
    }

    /// Retrans Timer in milliseconds (0: unspecified).
    pub fn retrans_timer(&self) -> u32 {
        be32(&self.b()[field::RETRANS])
    }

    /// The options as (type, bytes including the type and length).
    pub fn options(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        let b = self.b();
        let mut off = HEADER_LEN;
        core::iter::from_fn(move || {
            // `new_checked` proved every option is whole and non-empty.
            let len = usize::from(*b.get(off + 1)?) * 8;
            let opt = b.get(off..off + len)?;
            off += len;
            Some((opt[0], opt))
        })
    }

    /// The source link-layer address option's MAC, when there is one.
    pub fn source_mac(&self) -> Option<[u8; 6]> {
        self.options()
            .find(|(t, o)| *t == OPT_SOURCE_LL && o.len() == SLLA_LEN)
            .map(|(_, o)| [o[2], o[3], o[4], o[5], o[6], o[7]])
    }

    /// Whether the checksum is right for a message from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.b();
        finish(sum_words(
            pseudo_v6(src, dst, NEXT_HEADER_ICMPV6, b.len()),
            b,
        )) == 0
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What a Router Advertisement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// Cur Hop Limit for hosts (0: unspecified).
    pub cur_hop_limit: u8,
    /// M: addresses are available via DHCPv6.
    pub managed: bool,
    /// O: other configuration is available via DHCPv6.
    pub other: bool,
    /// RFC 4191 default router preference.
    pub preference: Preference,
    /// Router Lifetime in seconds; 0 says "not a default router" (RFC 4861
    /// §6.2.5 also sends 0 when a router stops advertising).
    pub router_lifetime: u16,
    /// Reachable Time in milliseconds (0: unspecified).
    pub reachable_time: u32,
    /// Retrans Timer in milliseconds (0: unspecified).
    pub retrans_timer: u32,
    /// The source link-layer address option (the MAC hosts should send to).
    pub source_mac: Option<[u8; 6]>,
    /// Prefix Information options (at most [`MAX_PREFIXES`] are written).
    pub prefixes: SmallVec<[PrefixInfo; 2]>,
}

impl Repr {
    /// An advertisement with `router_lifetime` seconds, every other field
    /// zero / unspecified, no options.
    pub fn new(router_lifetime: u16) -> Self {
        Self {
            cur_hop_limit: 0,
            managed: false,
            other: false,
            preference: Preference::Medium,
            router_lifetime,
            reachable_time: 0,
            retrans_timer: 0,
            source_mac: None,
            prefixes: SmallVec::new(),
        }
    }

    /// Parses a Router Advertisement; `None` if it is another ICMPv6 type.
    /// Unknown options are skipped (RFC 4861 §4.6); a malformed Prefix
    /// Information option (length ≠ 4) is skipped too.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Option<Self> {
        if p.icmp_type() != ICMPV6_ROUTER_ADVERTISEMENT {
            return None;
        }
        let flags = p.flags();
        let mut r = Self {
            cur_hop_limit: p.cur_hop_limit(),
            managed: flags & FLAG_MANAGED != 0,
            other: flags & FLAG_OTHER != 0,
            preference: Preference::from_bits(flags >> 3),
            router_lifetime: p.router_lifetime(),
            reachable_time: p.reachable_time(),
            retrans_timer: p.retrans_timer(),
            source_mac: p.source_mac(),
            prefixes: SmallVec::new(),
        };
        for (_, o) in p
            .options()
            .filter(|(t, o)| *t == OPT_PREFIX && o.len() == PREFIX_LEN)
        {
            let mut prefix = [0u8; 16];
            prefix.copy_from_slice(&o[16..32]);
            r.prefixes.push(PrefixInfo {
                prefix: Ipv6Addr::from(prefix),
                len: o[2],
                on_link: o[3] & PREFIX_ON_LINK != 0,
                autonomous: o[3] & PREFIX_AUTONOMOUS != 0,
                valid_lifetime: be32(&o[4..8]),
                preferred_lifetime: be32(&o[8..12]),
            });
        }
        Some(r)
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + if self.source_mac.is_some() {
                SLLA_LEN
            } else {
                0
            }
            + self.prefixes.len().min(MAX_PREFIXES) * PREFIX_LEN
    }

    /// Writes the message, checksum computed for `src` (a link-local
    /// address) to `dst` (normally [`ALL_NODES`](super::ndisc::ALL_NODES)).
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize, Error> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: len,
            });
        }
        let b = &mut buf[..len];
        b[field::TYPE] = ICMPV6_ROUTER_ADVERTISEMENT;
        b[field::CODE] = 0;
        b[field::CHECKSUM].fill(0);
        b[field::HOP_LIMIT] = self.cur_hop_limit;
        b[field::FLAGS] = if self.managed { FLAG_MANAGED } else { 0 }
            | if self.other { FLAG_OTHER } else { 0 }
            | self.preference.bits() << 3;
        b[field::LIFETIME].copy_from_slice(&self.router_lifetime.to_be_bytes());
        b[field::REACHABLE].copy_from_slice(&self.reachable_time.to_be_bytes());
        b[field::RETRANS].copy_from_slice(&self.retrans_timer.to_be_bytes());
        let mut off = HEADER_LEN;
        if let Some(mac) = self.source_mac {
            b[off] = OPT_SOURCE_LL;
            b[off + 1] = 1;
            b[off + 2..off + 8].copy_from_slice(&mac);
            off += SLLA_LEN;
        }
        for p in self.prefixes.iter().take(MAX_PREFIXES) {
            let o = &mut b[off..off + PREFIX_LEN];
            o[0] = OPT_PREFIX;
            o[1] = 4;
            o[2] = p.len;
            o[3] = if p.on_link { PREFIX_ON_LINK } else { 0 }
                | if p.autonomous { PREFIX_AUTONOMOUS } else { 0 };
            o[4..8].copy_from_slice(&p.valid_lifetime.to_be_bytes());
            o[8..12].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
            o[12..16].fill(0);
            o[16..32].copy_from_slice(&p.prefix.octets());
            off += PREFIX_LEN;
        }
        let c = finish(sum_words(pseudo_v6(src, dst, NEXT_HEADER_ICMPV6, len), b));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }
}

/// Whether `msg` (an ICMPv6 message whose checksum the kernel verified)
/// is a valid Router Solicitation from `src` received with `hop_limit`,
/// per RFC 4861 §6.1.1: Hop Limit 255, type 133, code 0, at least 8 bytes,
/// every option of non-zero length and within the message, and no source
/// link-layer address option when the source is unspecified.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Type = 133   |   Code = 0    |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            Reserved                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Options ...
/// ```
///
/// ```
/// use lb_vrrp::wire::ra::is_valid_solicitation;
///
/// let rs = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1];
/// assert!(is_valid_solicitation(&rs, "fe80::1".parse().unwrap(), 255));
/// assert!(!is_valid_solicitation(&rs, "fe80::1".parse().unwrap(), 64));
/// assert!(!is_valid_solicitation(&rs, "::".parse().unwrap(), 255), "SLLA from ::");
/// ```
pub fn is_valid_solicitation(msg: &[u8], src: Ipv6Addr, hop_limit: u8) -> bool {
    const RS_LEN: usize = 8;
    if hop_limit != 255 || msg.len() < RS_LEN || msg[0] != ICMPV6_ROUTER_SOLICITATION || msg[1] != 0
    {
        return false;
    }
    let mut off = RS_LEN;
    while off < msg.len() {
        let len = msg.get(off + 1).map_or(0, |l| usize::from(*l) * 8);
        if len == 0 || off + len > msg.len() {
            return false;
        }
        if msg[off] == OPT_SOURCE_LL && src.is_unspecified() {
            return false;
        }
        off += len;
    }
    true
}
