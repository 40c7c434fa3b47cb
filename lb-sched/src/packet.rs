//! What a scheduler may look at in the packet that opens a connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Transport protocol, as IPVS distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (`IPPROTO_TCP`, 6).
    Tcp,
    /// UDP (`IPPROTO_UDP`, 17).
    Udp,
    /// SCTP (`IPPROTO_SCTP`, 132).
    Sctp,
    /// Any other IP protocol number (ICMP, AH, ESP, ...).
    Other(u8),
}

impl Protocol {
    /// The IP protocol number.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
            Self::Other(n) => n,
        }
    }

    /// The protocol with IP protocol number `n`.
    #[must_use]
    pub fn from_number(n: u8) -> Self {
        match n {
            6 => Self::Tcp,
            17 => Self::Udp,
            132 => Self::Sctp,
            n => Self::Other(n),
        }
    }

    /// TCP, UDP and SCTP carry ports in the same place (`sh-port`, `mh-port`).
    #[must_use]
    pub fn has_ports(self) -> bool {
        matches!(self, Self::Tcp | Self::Udp | Self::Sctp)
    }
}

/// The packet fields the kernel schedulers read (`struct ip_vs_iphdr` plus
/// the first transport ports).
///
/// `inverse` is the kernel's `ip_vs_iph_inverse()`: the packet is an ICMP
/// error quoting a client packet, so source and destination are swapped
/// (`sh`/`mh` then hash the destination address and port).
///
/// ```
/// use lb_sched::{PacketInfo, Protocol};
/// let p = PacketInfo::new(Protocol::Tcp, "192.0.2.7:40000".parse().unwrap(),
///                         "198.51.100.1:80".parse().unwrap());
/// assert_eq!(p.src_port, 40000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketInfo {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Source address (the client).
    pub src: IpAddr,
    /// Destination address (the virtual address; `dh`, `lblc` and `lblcr` key on it).
    pub dst: IpAddr,
    /// Source port (0 when the protocol has none).
    pub src_port: u16,
    /// Destination port (0 when the protocol has none).
    pub dst_port: u16,
    /// The packet is an ICMP error about a client packet (`ip_vs_iph_inverse`).
    pub inverse: bool,
}

impl PacketInfo {
    /// A forward packet from `src` to `dst`.
    #[must_use]
    pub fn new(protocol: Protocol, src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            protocol,
            src: src.ip(),
            dst: dst.ip(),
            src_port: src.port(),
            dst_port: dst.port(),
            inverse: false,
        }
    }
}

impl Default for PacketInfo {
    fn default() -> Self {
        Self {
            protocol: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            inverse: false,
        }
    }
}
