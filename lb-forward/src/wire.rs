//! Header layouts: field offsets and constants of the wire formats this
//! crate reads and writes.
//!
//! The parser ([`crate::parse`]) and the rewriters work on raw byte slices
//! at offsets; the layouts they rely on are collected here, each with its
//! RFC diagram, so the magic numbers live in one place.

/// Ethernet II header length (no VLAN tag).
pub const ETH_HLEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// IP protocol numbers (IANA).
pub mod proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation (IPIP, RFC 2003).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation (RFC 2473, RFC 4213).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// GRE (RFC 2784).
    pub const GRE: u8 = 47;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
}

/// IPv4 header (RFC 791 §3.1); offsets from the start of the header.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |Type of Service|          Total Length         |
/// |         Identification        |Flags|      Fragment Offset    |
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// |                       Source Address                          |
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub mod ipv4 {
    /// Total length.
    pub const TOTAL_LEN: usize = 2;
    /// Flags and fragment offset.
    pub const FRAG: usize = 6;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Header checksum.
    pub const CHECKSUM: usize = 10;
    /// Source address.
    pub const SRC: usize = 12;
    /// Destination address.
    pub const DST: usize = 16;
    /// Header length without options.
    pub const HLEN: usize = 20;
}

/// IPv6 fixed header (RFC 8200 §3); offsets from the start of the header.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// |                 Source Address (16 bytes)                     |
/// |              Destination Address (16 bytes)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub mod ipv6 {
    /// Payload length.
    pub const PAYLOAD_LEN: usize = 4;
    /// Next header.
    pub const NEXT: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: usize = 8;
    /// Destination address.
    pub const DST: usize = 24;
    /// Header length.
    pub const HLEN: usize = 40;
    /// Minimum link MTU (RFC 8200 §5).
    pub const MIN_MTU: usize = 1280;
}

/// Offset of the checksum field in a TCP header (RFC 793 §3.1).
pub const TCP_CHECKSUM: usize = 16;
/// Offset of the checksum field in a UDP header (RFC 768).
pub const UDP_CHECKSUM: usize = 6;
/// Offset of the checksum field in an ICMP/ICMPv6 header.
pub const ICMP_CHECKSUM: usize = 2;

/// TCP flag bits (RFC 793 §3.1, byte 13 of the header).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// ICMPv4 types that quote the offending datagram (RFC 792): destination
/// unreachable, source quench, time exceeded, parameter problem.
#[must_use]
pub fn icmpv4_is_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 11 | 12)
}

/// ICMPv6 error messages (RFC 4443 §2.1: types below 128), of the kinds
/// that quote the invoking packet.
#[must_use]
pub fn icmpv6_is_error(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

/// GUE header, variant 0 (draft-ietf-intarea-gue, Linux `include/net/gue.h`).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Ver|C|  Hlen   | Proto/ctype   |        Standard flags       |P|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |            Private flags (optional, P bit is set)             |
/// |          csum start           |          csum offset          |  (REMCSUM)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub mod gue {
    /// Base header length.
    pub const HLEN: usize = 4;
    /// The P bit in the standard flags: private flags follow.
    pub const FLAG_PRIV: u16 = 0x0001;
    /// Private flag: remote checksum offload option present.
    pub const PFLAG_REMCSUM: u32 = 1 << 31;
    /// Length of the private flags word plus the REMCSUM option.
    pub const REMCSUM_OPTLEN: usize = 8;
}

/// GRE header (RFC 2784 §2); the optional checksum covers the GRE header
/// and payload.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |C|       Reserved0       | Ver |         Protocol Type         |
/// |      Checksum (optional)      |       Reserved1 (Optional)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub mod gre {
    /// Base header length.
    pub const HLEN: usize = 4;
    /// The C (checksum present) bit.
    pub const FLAG_CSUM: u16 = 0x8000;
}
