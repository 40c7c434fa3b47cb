//! UDP_CHECK reply patterns: hex with `X` nibble wildcards
//! (keepalived `require_reply`).

use crate::error::ConfigError;

/// An expected reply: each nibble is either fixed or a wildcard.
///
/// ```
/// use lb_health::wire::udp::ReplyPattern;
/// let p = ReplyPattern::parse("0a Xb").unwrap();
/// assert!(p.matches(&[0x0a, 0x3b, 0xff])); // a prefix match
/// assert!(!p.matches(&[0x0a, 0x3c]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplyPattern {
    /// `(value, mask)` per byte: a byte `b` matches if `b & mask == value`.
    bytes: Vec<(u8, u8)>,
}

impl ReplyPattern {
    /// Parses hex digits and `X`/`x` wildcards; spaces are ignored. An odd
    /// count of nibbles gets a trailing wildcard nibble.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut nibbles = Vec::new();
        for (offset, c) in text.char_indices() {
            match c {
                ' ' | '\t' => {}
                'x' | 'X' => nibbles.push(None),
                _ => nibbles.push(Some(
                    c.to_digit(16).ok_or(ConfigError::UdpPattern { offset })? as u8,
                )),
            }
        }
        if nibbles.len() % 2 == 1 {
            nibbles.push(None);
        }
        let bytes = nibbles
            .chunks(2)
            .map(|p| {
                let (hv, hm) = p[0].map_or((0, 0), |v| (v << 4, 0xf0));
                let (lv, lm) = p[1].map_or((0, 0), |v| (v, 0x0f));
                (hv | lv, hm | lm)
            })
            .collect();
        Ok(Self { bytes })
    }

    /// Bytes the reply must at least have.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the pattern is empty (matches anything).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether `reply` starts with bytes matching the pattern.
    pub fn matches(&self, reply: &[u8]) -> bool {
        reply.len() >= self.bytes.len()
            && self.bytes.iter().zip(reply).all(|(&(v, m), &b)| b & m == v)
    }
}

/// Decodes plain hex (keepalived `payload`), spaces ignored.
///
/// ```
/// assert_eq!(lb_health::wire::udp::parse_hex("de ad").unwrap(), vec![0xde, 0xad]);
/// ```
pub fn parse_hex(text: &str) -> Result<Vec<u8>, ConfigError> {
    let p = ReplyPattern::parse(text)?;
    if p.bytes.iter().any(|&(_, m)| m != 0xff) {
        let offset = text.find(['x', 'X']).unwrap_or(text.len());
        return Err(ConfigError::UdpPattern { offset });
    }
    Ok(p.bytes.into_iter().map(|(v, _)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards_and_errors() {
        let p = ReplyPattern::parse("XX 0X x1").unwrap();
        assert!(p.matches(&[0x55, 0x0f, 0xa1]));
        assert!(!p.matches(&[0x55, 0x1f, 0xa1]));
        assert!(!p.matches(&[0x55, 0x0f]));
        assert!(ReplyPattern::parse("0g").is_err());
        assert!(parse_hex("0X").is_err());
        assert_eq!(
            parse_hex("abc").unwrap_err().to_string(),
            "udp reply pattern: bad character at offset 3"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn exact_hex_matches_itself_only(data in proptest::collection::vec(any::<u8>(), 0..40), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            let p = ReplyPattern::parse(&hex).unwrap();
            prop_assert!(p.matches(&data));
            prop_assert_eq!(parse_hex(&hex).unwrap(), data.clone());
            if !data.is_empty() {
                let mut other = data.clone();
                other[flip.index(data.len())] ^= 1 << bit;
                prop_assert!(!p.matches(&other));
            }
        }
    }
}
