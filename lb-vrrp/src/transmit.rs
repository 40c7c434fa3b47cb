//! The packet-level inputs and outputs of the state machine.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The largest datagram or frame [`VirtualRouter::poll_transmit`](crate::VirtualRouter::poll_transmit) writes:
/// a v3/IPv6 advertisement with 255 addresses (4088 bytes) rounded up.
pub const MAX_TRANSMIT_LEN: usize = 4096;

/// Metadata of a received packet, from the IP header / control messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (multicast group, or ours for unicast).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 Hop Limit.
    pub ttl: u8,
}

/// Something to send, written by [`VirtualRouter::poll_transmit`](crate::VirtualRouter::poll_transmit) into the
/// caller's buffer (the first `len` bytes).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmit {
    /// A VRRP advertisement: the IP payload, to send with protocol 112 and
    /// TTL / Hop Limit 255 from `src` to `dst`.
    Advertisement {
        /// Source address (our primary address).
        src: IpAddr,
        /// Destination (the multicast group or a unicast peer).
        dst: IpAddr,
        /// The priority advertised (0 when leaving).
        priority: u8,
        /// Bytes written.
        len: usize,
    },
    /// A whole Ethernet frame (gratuitous ARP) for a packet socket.
    GratuitousArp {
        /// The address announced.
        address: Ipv4Addr,
        /// Bytes written.
        len: usize,
    },
    /// An ICMPv6 unsolicited Neighbor Advertisement, to send to `dst`
    /// (ff02::1) with Hop Limit 255 from `src`. When `src` is unspecified
    /// (an IPv6 excluded address on an IPv4 router), let the kernel choose
    /// the source; a raw ICMPv6 socket recomputes the checksum anyway.
    NeighborAdvertisement {
        /// The address announced.
        address: Ipv6Addr,
        /// Source the checksum was computed for.
        src: Ipv6Addr,
        /// Destination, all-nodes.
        dst: Ipv6Addr,
        /// Bytes written.
        len: usize,
    },
    /// An ICMPv6 Router Advertisement for the virtual router (IPv6 Active
    /// only, when [`Config::router_advert`](crate::Config::router_advert) is
    /// set), to send to `dst` (ff02::1) with Hop Limit 255 from `src`, a
    /// link-local address the interface holds.
    RouterAdvertisement {
        /// Source the checksum was computed for.
        src: Ipv6Addr,
        /// Destination, all-nodes.
        dst: Ipv6Addr,
        /// The Router Lifetime advertised (0 in a final advertisement).
        lifetime: u16,
        /// Bytes written.
        len: usize,
    },
}

impl Transmit {
    /// Bytes written into the buffer.
    pub const fn len(&self) -> usize {
        match *self {
            Self::Advertisement { len, .. }
            | Self::GratuitousArp { len, .. }
            | Self::NeighborAdvertisement { len, .. }
            | Self::RouterAdvertisement { len, .. } => len,
        }
    }

    /// Whether nothing was written (never the case for a returned transmit).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
