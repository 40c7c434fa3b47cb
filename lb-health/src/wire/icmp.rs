//! ICMP / ICMPv6 echo messages (RFC 792, RFC 4443 §4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data ...
//! ```
//!
//! The checksum is computed for ICMPv4 only; for ICMPv6 the kernel fills it
//! in (it covers a pseudo-header we do not know on an unconnected socket).

/// Echo Request type for IPv4.
pub const V4_ECHO_REQUEST: u8 = 8;
/// Echo Reply type for IPv4.
pub const V4_ECHO_REPLY: u8 = 0;
/// Destination Unreachable type for IPv4.
pub const V4_UNREACHABLE: u8 = 3;
/// Echo Request type for IPv6.
pub const V6_ECHO_REQUEST: u8 = 128;
/// Echo Reply type for IPv6.
pub const V6_ECHO_REPLY: u8 = 129;
/// Destination Unreachable type for IPv6.
pub const V6_UNREACHABLE: u8 = 1;

/// An echo message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    /// ICMP type.
    pub kind: u8,
    /// Identifier (rewritten by the kernel on ping sockets).
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Data.
    pub payload: &'a [u8],
}

impl EchoRepr<'_> {
    /// Serialises, with the RFC 1071 checksum when `checksum` is set.
    ///
    /// ```
    /// use lb_health::wire::icmp::{EchoRepr, V4_ECHO_REQUEST};
    /// let m = EchoRepr { kind: V4_ECHO_REQUEST, ident: 1, seq: 2, payload: b"ab" }.emit(true);
    /// assert_eq!(lb_health::wire::icmp::checksum(&m), 0);
    /// ```
    pub fn emit(&self, checksum_on: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.payload.len());
        out.extend_from_slice(&[self.kind, 0, 0, 0]);
        out.extend_from_slice(&self.ident.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(self.payload);
        if checksum_on {
            let c = checksum(&out);
            out[2..4].copy_from_slice(&c.to_be_bytes());
        }
        out
    }
}

/// Parses an ICMP message (without IP header). Returns `None` if shorter
/// than the 8-byte header. The checksum is not verified: the kernel did.
pub fn parse(data: &[u8]) -> Option<EchoRepr<'_>> {
    if data.len() < 8 {
        return None;
    }
    Some(EchoRepr {
        kind: data[0],
        ident: u16::from_be_bytes([data[4], data[5]]),
        seq: u16::from_be_bytes([data[6], data[7]]),
        payload: &data[8..],
    })
}

/// Strips an IPv4 header (raw IPv4 sockets deliver it). `None` if malformed.
pub fn strip_ipv4_header(data: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(data.first()? & 0x0f) * 4;
    if data[0] >> 4 != 4 || ihl < 20 {
        return None;
    }
    data.get(ihl..)
}

/// The RFC 1071 internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_checksum() {
        // RFC 1071 §3 example bytes: 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        let m = EchoRepr {
            kind: 8,
            ident: 0x1234,
            seq: 1,
            payload: b"x",
        }
        .emit(true);
        assert_eq!(&m[..2], &[8, 0]);
        assert_eq!(checksum(&m), 0);
        assert_eq!(strip_ipv4_header(&[0x45; 19]), None);
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&m);
        assert_eq!(strip_ipv4_header(&ip), Some(&m[..]));
        assert_eq!(strip_ipv4_header(&[0x60; 40]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(ident: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let m = EchoRepr { kind: V6_ECHO_REQUEST, ident, seq, payload: &payload }.emit(true);
            prop_assert_eq!(checksum(&m), 0);
            prop_assert_eq!(parse(&m), Some(EchoRepr { kind: V6_ECHO_REQUEST, ident, seq, payload: &payload }));
        }
    }
}
