//! The Internet checksum (RFC 1071) and the pseudo-headers VRRP puts under it.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum, as 16-bit big-endian words
/// (an odd trailing byte is padded with zero).
pub(crate) fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early so the accumulator can never overflow, whatever the length.
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a running sum and complements it: the value to put in a checksum field.
pub(crate) fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The RFC 1071 checksum of `data` (its checksum field included as found).
pub fn internet_checksum(data: &[u8]) -> u16 {
    finish(sum_words(0, data))
}

/// The sum of an IPv4 pseudo-header (source, destination, zero, protocol,
/// 16-bit length), as RFC 5798 §5.2.8 read literally and keepalived use it.
pub(crate) fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    acc = acc.wrapping_add(u32::from(proto));
    acc.wrapping_add((len as u32) & 0xffff)
}

/// The sum of the RFC 8200 §8.1 IPv6 pseudo-header (source, destination,
/// 32-bit upper-layer length, three zero bytes, next header).
pub(crate) fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u32 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    let len = len as u32;
    acc = acc.wrapping_add(len >> 16).wrapping_add(len & 0xffff);
    acc.wrapping_add(u32::from(next_header))
}

/// The pseudo-header sum for any pair of addresses of one family; `None`
/// when the families differ.
pub(crate) fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Option<u32> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(pseudo_v4(s, d, proto, len)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(pseudo_v6(s, d, proto, len)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0x12]), internet_checksum(&[0x12, 0x00]));
    }

    #[test]
    fn verifying_a_filled_buffer_gives_zero() {
        let mut data = [
            0x45u8, 0, 0, 0x1c, 0xab, 0xcd, 0, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1,
        ];
        let c = internet_checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&data), 0);
    }

    #[test]
    fn long_input_does_not_overflow() {
        let data = vec![0xffu8; 200_000];
        assert_eq!(internet_checksum(&data), 0);
    }
}
