//! The little DNS a DNS_CHECK needs: one query out, the reply's header and
//! question checked (RFC 1035 §4.1).
//!
//! ```text
//!                                 1  1  1  1  1  1
//!   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |                      ID                       |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |                    QDCOUNT                    |
//! |                    ANCOUNT                    |
//! |                    NSCOUNT                    |
//! |                    ARCOUNT                    |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! question: QNAME (labels) QTYPE QCLASS
//! ```
//!
//! Like keepalived's check_dns.c, a reply with another ID or without QR is
//! ignored (not an error: it may be a stray datagram), and a non-zero RCODE
//! fails the check. Beyond keepalived, the question must echo ours and, if
//! asked, ANCOUNT must be non-zero.

use crate::error::ConfigError;

/// Header length.
pub const HEADER_LEN: usize = 12;

/// Record types keepalived's DNS_CHECK accepts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// IPv4 address.
    A,
    /// Name server.
    Ns,
    /// Canonical name.
    Cname,
    /// Start of authority (keepalived's default).
    Soa,
    /// Mail exchange.
    Mx,
    /// Text.
    Txt,
    /// IPv6 address.
    Aaaa,
}

impl QueryType {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Ns => 2,
            Self::Cname => 5,
            Self::Soa => 6,
            Self::Mx => 15,
            Self::Txt => 16,
            Self::Aaaa => 28,
        }
    }

    /// Parses keepalived's `type` keyword (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ("A", Self::A),
            ("NS", Self::Ns),
            ("CNAME", Self::Cname),
            ("SOA", Self::Soa),
            ("MX", Self::Mx),
            ("TXT", Self::Txt),
            ("AAAA", Self::Aaaa),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)
    }
}

/// Encodes a query for `name` (dotted, `.` for the root) into a buffer.
///
/// ```
/// use lb_health::wire::dns::{encode_query, QueryType};
/// let q = encode_query(0x1234, "example.com", QueryType::A).unwrap();
/// assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]); // RD set
/// assert_eq!(&q[12..], b"\x07example\x03com\x00\x00\x01\x00\x01");
/// ```
pub fn encode_query(id: u16, name: &str, qtype: QueryType) -> Result<Vec<u8>, ConfigError> {
    let bad = |reason| ConfigError::DnsName {
        name: name.to_owned(),
        reason,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(bad("empty label"));
            }
            if label.len() > 63 {
                return Err(bad("label longer than 63 bytes"));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - HEADER_LEN > 255 {
        return Err(bad("name longer than 255 bytes"));
    }
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(out)
}

/// What a datagram said about our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVerdict {
    /// Not a reply to our query (short, other ID, or QR clear): keep waiting.
    Ignore,
    /// A reply with RCODE 0, the question echoed, and this many answers.
    Ok {
        /// ANCOUNT.
        answers: u16,
    },
    /// A reply with a non-zero RCODE.
    Rcode(u8),
    /// A reply whose question section is missing or differs from ours.
    QuestionMismatch,
}

/// Checks a received datagram against the query we sent.
///
/// ```
/// use lb_health::wire::dns::{check_reply, encode_query, QueryType, ReplyVerdict};
/// let q = encode_query(7, ".", QueryType::Soa).unwrap();
/// let mut r = q.clone();
/// r[2] |= 0x80; // QR
/// r[7] = 1; // ANCOUNT
/// assert_eq!(check_reply(&q, &r), ReplyVerdict::Ok { answers: 1 });
/// ```
pub fn check_reply(query: &[u8], reply: &[u8]) -> ReplyVerdict {
    if reply.len() < HEADER_LEN || query.len() < HEADER_LEN || reply[..2] != query[..2] {
        return ReplyVerdict::Ignore;
    }
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    if flags & 0x8000 == 0 {
        return ReplyVerdict::Ignore;
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return ReplyVerdict::Rcode(rcode);
    }
    let qdcount = u16::from_be_bytes([reply[4], reply[5]]);
    let question = &query[HEADER_LEN..];
    // Names in the question are compared case-insensitively (RFC 4343).
    if qdcount != 1
        || reply.len() < HEADER_LEN + question.len()
        || !reply[HEADER_LEN..HEADER_LEN + question.len()].eq_ignore_ascii_case(question)
    {
        return ReplyVerdict::QuestionMismatch;
    }
    ReplyVerdict::Ok {
        answers: u16::from_be_bytes([reply[6], reply[7]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply_to(q: &[u8], rcode: u8, ancount: u16) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&ancount.to_be_bytes());
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        r
    }

    #[test]
    fn root_and_names() {
        assert_eq!(
            &encode_query(1, ".", QueryType::Soa).unwrap()[12..],
            b"\0\0\x06\0\x01"
        );
        assert_eq!(
            &encode_query(1, "a.b.", QueryType::Aaaa).unwrap()[12..],
            b"\x01a\x01b\0\0\x1c\0\x01"
        );
        assert!(encode_query(1, "a..b", QueryType::A).is_err());
        assert!(encode_query(1, &"x".repeat(64), QueryType::A).is_err());
        assert!(encode_query(1, &["abcdefghi"; 30].join("."), QueryType::A).is_err());
        assert_eq!(QueryType::from_name("aaaa"), Some(QueryType::Aaaa));
        assert_eq!(QueryType::from_name("SRV"), None);
    }

    #[test]
    fn verdicts() {
        let q = encode_query(0xbeef, "example.com", QueryType::A).unwrap();
        assert_eq!(
            check_reply(&q, &reply_to(&q, 0, 1)),
            ReplyVerdict::Ok { answers: 1 }
        );
        assert_eq!(check_reply(&q, &reply_to(&q, 3, 0)), ReplyVerdict::Rcode(3));
        let mut other_id = reply_to(&q, 0, 1);
        other_id[0] ^= 1;
        assert_eq!(check_reply(&q, &other_id), ReplyVerdict::Ignore);
        assert_eq!(check_reply(&q, &q), ReplyVerdict::Ignore); // QR clear
        assert_eq!(check_reply(&q, &q[..11]), ReplyVerdict::Ignore);
        let mut wrong_q = reply_to(&q, 0, 1);
        wrong_q[13] = b'E';
        assert_eq!(
            check_reply(&q, &wrong_q),
            ReplyVerdict::Ok { answers: 1 },
            "case-insensitive"
        );
        wrong_q[13] = b'z';
        assert_eq!(check_reply(&q, &wrong_q), ReplyVerdict::QuestionMismatch);
        assert_eq!(
            check_reply(&q, &reply_to(&q, 0, 1)[..20]),
            ReplyVerdict::QuestionMismatch
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(q in proptest::collection::vec(any::<u8>(), 0..64),
                                r in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = check_reply(&q, &r);
        }

        #[test]
        fn labels_round_trip(labels in proptest::collection::vec("[a-z0-9-]{1,20}", 1..5), id: u16) {
            let name = labels.join(".");
            let q = encode_query(id, &name, QueryType::Mx).unwrap();
            // Decode the labels back the simple way.
            let mut i = HEADER_LEN;
            let mut got = Vec::new();
            while q[i] != 0 {
                let n = q[i] as usize;
                got.push(String::from_utf8(q[i + 1..i + 1 + n].to_vec()).unwrap());
                i += 1 + n;
            }
            prop_assert_eq!(got, labels);
            prop_assert_eq!(&q[i + 1..], &[0, 15, 0, 1][..]);
            prop_assert_eq!(check_reply(&q, &reply_to(&q, 0, 2)), ReplyVerdict::Ok { answers: 2 });
        }
    }
}
