//! The gratuitous ARP an Active router broadcasts for each IPv4 virtual
//! address on takeover (RFC 9568 §6.4.1, §6.4.2), as a whole Ethernet frame
//! for a packet socket.
//!
//! ```text
//! Ethernet:  dst ff:ff:ff:ff:ff:ff | src MAC | type 0x0806
//! ARP (RFC 826, RFC 5227 §3 announcement):
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      HTYPE = 1 (Ethernet)     |     PTYPE = 0x0800 (IPv4)     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   HLEN = 6    |   PLEN = 4    |        OPER = 1 (request)     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  sender MAC (6) | sender IP = VIP (4) | target MAC = 0 (6) | target IP = VIP (4)
//! ```
//!
//! Like keepalived, we send ARP *requests* whose sender and target IP are both
//! the virtual address: every host on the link updates its cache from them.

use core::net::Ipv4Addr;

use super::Error;

/// Length of the frame [`Repr::emit`] writes (14-byte Ethernet header + 28-byte ARP).
pub const FRAME_LEN: usize = 42;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

mod field {
    use core::ops::Range;
    pub(super) const ETH_DST: Range<usize> = 0..6;
    pub(super) const ETH_SRC: Range<usize> = 6..12;
    pub(super) const ETH_TYPE: Range<usize> = 12..14;
    pub(super) const HTYPE: Range<usize> = 14..16;
    pub(super) const PTYPE: Range<usize> = 16..18;
    pub(super) const HLEN: usize = 18;
    pub(super) const PLEN: usize = 19;
    pub(super) const OPER: Range<usize> = 20..22;
    pub(super) const SHA: Range<usize> = 22..28;
    pub(super) const SPA: Range<usize> = 28..32;
    pub(super) const THA: Range<usize> = 32..38;
    pub(super) const TPA: Range<usize> = 38..42;
}

/// A view of an Ethernet frame carrying ARP.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer, checking that it holds a whole Ethernet+ARP frame.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < FRAME_LEN {
            return Err(Error::Truncated {
                len,
                needed: FRAME_LEN,
            });
        }
        Ok(Self { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Ethernet destination.
    pub fn eth_dst(&self) -> [u8; 6] {
        mac(&self.b()[field::ETH_DST])
    }

    /// Ethernet source.
    pub fn eth_src(&self) -> [u8; 6] {
        mac(&self.b()[field::ETH_SRC])
    }

    /// EtherType.
    pub fn ethertype(&self) -> u16 {
        be16(&self.b()[field::ETH_TYPE])
    }

    /// ARP operation (1 request, 2 reply).
    pub fn operation(&self) -> u16 {
        be16(&self.b()[field::OPER])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> [u8; 6] {
        mac(&self.b()[field::SHA])
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip(&self.b()[field::SPA])
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip(&self.b()[field::TPA])
    }

    /// Whether HTYPE/PTYPE/HLEN/PLEN are Ethernet/IPv4.
    pub fn is_ethernet_ipv4(&self) -> bool {
        let b = self.b();
        be16(&b[field::HTYPE]) == 1
            && be16(&b[field::PTYPE]) == 0x0800
            && b[field::HLEN] == 6
            && b[field::PLEN] == 4
    }
}

fn mac(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}
fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A gratuitous ARP announcement of `ip` at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The Ethernet source and ARP sender hardware address (the interface's
    /// MAC, or the virtual MAC when one is used).
    pub mac: [u8; 6],
    /// The virtual address announced.
    pub ip: Ipv4Addr,
}

impl Repr {
    /// Parses a gratuitous ARP (request or reply whose sender IP equals target IP).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Option<Self> {
        (p.ethertype() == ETHERTYPE_ARP && p.is_ethernet_ipv4() && p.sender_ip() == p.target_ip())
            .then(|| Self {
                mac: p.sender_mac(),
                ip: p.sender_ip(),
            })
    }

    /// Writes the [`FRAME_LEN`]-byte frame into `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < FRAME_LEN {
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: FRAME_LEN,
            });
        }
        let b = &mut buf[..FRAME_LEN];
        b[field::ETH_DST].copy_from_slice(&BROADCAST);
        b[field::ETH_SRC].copy_from_slice(&self.mac);
        b[field::ETH_TYPE].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        b[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&0x0800u16.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&1u16.to_be_bytes());
        b[field::SHA].copy_from_slice(&self.mac);
        b[field::SPA].copy_from_slice(&self.ip.octets());
        b[field::THA].fill(0);
        b[field::TPA].copy_from_slice(&self.ip.octets());
        Ok(FRAME_LEN)
    }
}
