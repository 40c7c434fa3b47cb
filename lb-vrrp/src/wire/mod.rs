//! Wire formats: the VRRP advertisement ([`vrrp`]), the gratuitous ARP
//! ([`arp`]) and unsolicited Neighbor Advertisement ([`ndisc`]) an Active
//! router sends on takeover, and the IPv6 Router Advertisement ([`ra`]) it
//! sends while Active when configured to.
//!
//! Every type follows one pattern: a zero-copy `Packet<T: AsRef<[u8]>>` view
//! with named field offsets, and a `Repr` holding what the bytes mean, with
//! `parse` and `emit`. Use `new_checked` on untrusted input: after it
//! succeeds no accessor panics. `new_unchecked` is for emission into a
//! buffer you sized yourself.
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use lb_vrrp::wire::{AddressFamily, Auth, ChecksumMode, Packet, Repr, Version};
//!
//! let repr = Repr {
//!     version: Version::V3,
//!     vrid: 51,
//!     priority: 150,
//!     interval: 100, // centiseconds in v3
//!     auth: Auth::None,
//!     addresses: [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))].into_iter().collect(),
//! };
//! let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
//! let dst = IpAddr::V4(lb_vrrp::wire::MULTICAST_V4);
//! let mut buf = [0u8; 64];
//! let n = repr.emit(&mut buf, src, dst, ChecksumMode::default()).unwrap();
//! let packet = Packet::new_checked(&buf[..n], AddressFamily::Ipv4).unwrap();
//! assert!(packet.verify_checksum(src, dst).is_some());
//! assert_eq!(Repr::parse(&packet).unwrap(), repr);
//! ```

pub mod arp;
mod checksum;
pub mod ndisc;
pub mod ra;
pub mod vrrp;

use core::net::IpAddr;

pub use checksum::internet_checksum;
pub use vrrp::{
    Addresses, Auth, ChecksumMode, ChecksumVariant, MULTICAST_V4, MULTICAST_V6, PROTOCOL, Packet,
    Repr, TTL, Version,
};

/// The IP version a VRRP message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (4-byte addresses).
    Ipv4,
    /// IPv6 (16-byte addresses).
    Ipv6,
}

impl AddressFamily {
    /// The family of an address.
    pub const fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }
}

/// Why bytes could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the message it announces.
    #[error("truncated: {len} bytes where {needed} are needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header requires.
        needed: usize,
    },
    /// The Version field is neither 2 nor 3.
    #[error("unknown VRRP version {0}")]
    Version(u8),
    /// The Type field is not ADVERTISEMENT (1).
    #[error("unknown VRRP packet type {0}")]
    Type(u8),
    /// VRRP version 2 is defined over IPv4 only.
    #[error("VRRP version 2 over IPv6")]
    V2OverIpv6,
    /// Addresses of two families in one message.
    #[error("addresses of mixed families")]
    MixedFamilies,
    /// More than 255 addresses.
    #[error("more than 255 addresses")]
    TooManyAddresses,
    /// An interval the version cannot carry (v2: 1–255 s; v3: 12 bits of cs).
    #[error("advertisement interval {0} out of range for the version")]
    Interval(u16),
    /// The output buffer is too small.
    #[error("buffer of {len} bytes where {needed} are needed")]
    BufferTooSmall {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

/// The Ethernet address of a virtual router (RFC 9568 §7.3):
/// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub const fn virtual_mac(family: AddressFamily, vrid: u8) -> [u8; 6] {
    let fam = match family {
        AddressFamily::Ipv4 => 0x01,
        AddressFamily::Ipv6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, fam, vrid]
}

#[cfg(test)]
mod tests;
