//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Every rewrite in this crate changes a few 16-bit words of a header that a
//! checksum covers, so it patches the checksum with RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')`, instead of summing the packet again.

/// One's-complement sum of `data` added to `acc`, not yet folded.
///
/// An odd trailing byte is padded with zero on the right (RFC 1071 §4.1).
#[must_use]
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Add the two 32-bit halves so the 64-bit accumulator never overflows
        // for any packet shorter than 2^32 bytes.
        acc += w >> 32;
        acc += w & 0xffff_ffff;
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds a sum into 16 bits (end-around carry), without complementing.
#[must_use]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data`: the complement of the folded sum.
#[must_use]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793 §3.1, RFC 8200 §8.1).
///
/// `src`/`dst` are 4 bytes for IPv4 and 16 for IPv6; `len` is the transport
/// length.
#[must_use]
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, len: u32) -> u64 {
    let acc = sum(sum(0, src), dst);
    acc + u64::from(proto) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// Patches checksum `hc` for `old` bytes replaced by `new` (same even length),
/// per RFC 1624 eqn. 3.
#[must_use]
pub fn update(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    // ~HC + sum(~m) + sum(m'): sum(~m) over 16-bit words is
    // words*0xffff - sum(m), computed word by word to stay exact.
    let mut acc = u64::from(!hc);
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        let ow = u16::from_be_bytes([o[0], *o.get(1).unwrap_or(&0)]);
        let nw = u16::from_be_bytes([n[0], *n.get(1).unwrap_or(&0)]);
        acc += u64::from(!ow) + u64::from(nw);
    }
    !fold(acc)
}

/// [`update`] for one 16-bit word.
#[must_use]
pub fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A from-scratch reference: 16-bit words, 32-bit accumulator, fold.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = u32::from(data[i]) << 8;
            let lo = data.get(i + 1).map_or(0, |b| u32::from(*b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
            i += 2;
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn incremental_equals_full(
            mut data in proptest::collection::vec(any::<u8>(), 2..100),
            at in any::<prop::sample::Index>(),
            new in any::<[u8; 2]>(),
        ) {
            if data.len() % 2 == 1 { data.push(0); }
            let i = at.index(data.len() / 2) * 2;
            let before = checksum(&data);
            let old = [data[i], data[i + 1]];
            data[i..i + 2].copy_from_slice(&new);
            let patched = update(before, &old, &new);
            // One's complement has two zeros; compare as verifying sums.
            let mut with = data.clone();
            with.extend_from_slice(&patched.to_be_bytes());
            prop_assert_eq!(fold(sum(0, &with)), 0xffff);
            prop_assert_eq!(update_u16(before, u16::from_be_bytes(old), u16::from_be_bytes(new)), patched);
        }
    }
}
