//! The unsolicited Neighbor Advertisement an Active router sends for each
//! IPv6 virtual address on takeover (RFC 9568 §6.4.1, §6.4.2 with erratum
//! 7949: Router flag set, Solicited clear, Override set), as an ICMPv6
//! message for a raw ICMPv6 socket (the kernel adds the IPv6 header; send it
//! to ff02::1 with Hop Limit 255).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type = 136   |   Code = 0    |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|S|O|                     Reserved                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Target Address (16)                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Type = 2      | Length = 1    |  Target Link-Layer Address    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+             (6)               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The checksum covers the RFC 8200 pseudo-header (next header 58).

use core::net::Ipv6Addr;

use super::Error;
use super::checksum::{finish, pseudo_v6, sum_words};

/// Length of the message [`Repr::emit`] writes.
pub const MESSAGE_LEN: usize = 32;
/// ICMPv6 type of a Neighbor Advertisement.
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Next-header number of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// All-nodes multicast, the destination of an unsolicited NA.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Router flag.
pub const FLAG_ROUTER: u8 = 0x80;
/// Solicited flag.
pub const FLAG_SOLICITED: u8 = 0x40;
/// Override flag.
pub const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use core::ops::Range;
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const FLAGS: usize = 4;
    pub(super) const RESERVED: Range<usize> = 5..8;
    pub(super) const TARGET: Range<usize> = 8..24;
    pub(super) const OPT_TYPE: usize = 24;
    pub(super) const OPT_LEN: usize = 25;
    pub(super) const OPT_MAC: Range<usize> = 26..32;
}

/// A view of a Neighbor Advertisement with a target link-layer address option.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer, checking that it is long enough.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < MESSAGE_LEN {
            return Err(Error::Truncated {
                len,
                needed: MESSAGE_LEN,
            });
        }
        Ok(Self { buffer })
    }

    /// ICMPv6 type.
    pub fn icmp_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The R/S/O flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Target address.
    pub fn target(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(o)
    }

    /// The target link-layer address option's MAC, when the option is there.
    pub fn target_mac(&self) -> Option<[u8; 6]> {
        let b = self.buffer.as_ref();
        (b[field::OPT_TYPE] == 2 && b[field::OPT_LEN] == 1).then(|| {
            let m = &b[field::OPT_MAC];
            [m[0], m[1], m[2], m[3], m[4], m[5]]
        })
    }

    /// Whether the checksum is right for a message from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        finish(sum_words(
            pseudo_v6(src, dst, NEXT_HEADER_ICMPV6, b.len()),
            b,
        )) == 0
    }
}

/// An unsolicited Neighbor Advertisement of `target` at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The virtual address announced.
    pub target: Ipv6Addr,
    /// The link-layer address to announce for it.
    pub mac: [u8; 6],
    /// The Router flag (RFC 9568 says set).
    pub router: bool,
}

impl Repr {
    /// Parses an NA with a target link-layer address option.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Option<Self> {
        if p.icmp_type() != ICMPV6_NEIGHBOR_ADVERTISEMENT {
            return None;
        }
        Some(Self {
            target: p.target(),
            mac: p.target_mac()?,
            router: p.flags() & FLAG_ROUTER != 0,
        })
    }

    /// Writes the [`MESSAGE_LEN`]-byte message, checksum computed for `src`
    /// (the interface's link-local address) to `dst` (normally [`ALL_NODES`]).
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize, Error> {
        if buf.len() < MESSAGE_LEN {
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: MESSAGE_LEN,
            });
        }
        let b = &mut buf[..MESSAGE_LEN];
        b[field::TYPE] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
        b[field::CODE] = 0;
        b[field::CHECKSUM].fill(0);
        b[field::FLAGS] = if self.router { FLAG_ROUTER } else { 0 } | FLAG_OVERRIDE;
        b[field::RESERVED].fill(0);
        b[field::TARGET].copy_from_slice(&self.target.octets());
        b[field::OPT_TYPE] = 2;
        b[field::OPT_LEN] = 1;
        b[field::OPT_MAC].copy_from_slice(&self.mac);
        let c = finish(sum_words(
            pseudo_v6(src, dst, NEXT_HEADER_ICMPV6, MESSAGE_LEN),
            b,
        ));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(MESSAGE_LEN)
    }
}
