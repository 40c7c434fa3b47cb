//! SMTP reply parsing (RFC 5321 §4.2), incremental and bounded.
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! ```
//!
//! Every line of a multi-line reply must carry the same three-digit code.
//! Lines are limited to 512 bytes (RFC 5321 §4.5.3.1.5) and a reply to
//! [`MAX_LINES`] lines.

/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
pub const MAX_LINE: usize = 512;
/// Most lines in one reply.
pub const MAX_LINES: usize = 64;

/// What was wrong with the reply.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line does not start with three digits followed by SP, `-` or CRLF.
    #[error("malformed SMTP reply line {line}")]
    BadLine {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// A continuation line carries another code.
    #[error("SMTP reply line {line} changes the reply code")]
    CodeChanged {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// A line exceeds [`MAX_LINE`].
    #[error("SMTP reply line {line} is longer than 512 bytes")]
    LineTooLong {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// More than [`MAX_LINES`] lines.
    #[error("SMTP reply has more than 64 lines")]
    TooManyLines,
}

/// Incremental reply parser; reuse it with [`reset`](Self::reset).
///
/// ```
/// use lb_health::wire::smtp::ReplyParser;
/// let mut p = ReplyParser::default();
/// assert_eq!(p.feed(b"220-mx.example ESMTP\r\n220 ready\r\n").unwrap(), Some((220, 33)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplyParser {
    line: Vec<u8>,
    lines: usize,
    code: Option<u16>,
}

impl ReplyParser {
    /// Forgets the previous reply.
    pub fn reset(&mut self) {
        self.line.clear();
        self.lines = 0;
        self.code = None;
    }

    /// Feeds bytes. Returns `Some((code, consumed))` when the final line of
    /// a reply ended after `consumed` bytes of `data`; `None` if more bytes
    /// are needed.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<(u16, usize)>, ReplyError> {
        for (i, &b) in data.iter().enumerate() {
            if b != b'\n' {
                if self.line.len() >= MAX_LINE {
                    return Err(ReplyError::LineTooLong {
                        line: self.lines + 1,
                    });
                }
                self.line.push(b);
                continue;
            }
            self.lines += 1;
            if self.lines > MAX_LINES {
                return Err(ReplyError::TooManyLines);
            }
            let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            let bad = ReplyError::BadLine { line: self.lines };
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) || line[0] == b'0' {
                return Err(bad);
            }
            let code = line[..3]
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            if self.code.is_some_and(|c| c != code) {
                return Err(ReplyError::CodeChanged { line: self.lines });
            }
            self.code = Some(code);
            let last = match line.get(3) {
                None | Some(b' ') => true,
                Some(b'-') => false,
                Some(_) => return Err(bad),
            };
            self.line.clear();
            if last {
                self.lines = 0;
                self.code = None;
                return Ok(Some((code, i + 1)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_multi_and_split() {
        let mut p = ReplyParser::default();
        assert_eq!(p.feed(b"250 ok\r\n").unwrap(), Some((250, 8)));
        assert_eq!(p.feed(b"250").unwrap(), None);
        assert_eq!(p.feed(b"\n").unwrap(), Some((250, 1)));
        assert_eq!(p.feed(b"250-a\r\n250-b\r\n").unwrap(), None);
        assert_eq!(p.feed(b"250 c\r\nEXTRA").unwrap(), Some((250, 7)));
    }

    #[test]
    fn bad_replies() {
        let err = |d: &[u8]| ReplyParser::default().feed(d).unwrap_err();
        assert_eq!(err(b"2x0 hi\r\n"), ReplyError::BadLine { line: 1 });
        assert_eq!(err(b"25\r\n"), ReplyError::BadLine { line: 1 });
        assert_eq!(err(b"250+x\r\n"), ReplyError::BadLine { line: 1 });
        assert_eq!(
            err(b"250-a\r\n220 b\r\n"),
            ReplyError::CodeChanged { line: 2 }
        );
        assert_eq!(err(&[b'2'; 600]), ReplyError::LineTooLong { line: 1 });
        assert_eq!(err(&b"250-x\n".repeat(70)), ReplyError::TooManyLines);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(d in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut p = ReplyParser::default();
            let _ = p.feed(&d);
            prop_assert!(p.line.len() <= MAX_LINE);
        }

        #[test]
        fn any_multiline_reply_parses(code in 200u16..600, n in 1usize..10, split in 1usize..30) {
            let mut wire = Vec::new();
            for i in 0..n {
                let sep = if i + 1 == n { ' ' } else { '-' };
                wire.extend_from_slice(format!("{code}{sep}line {i}\r\n").as_bytes());
            }
            let mut p = ReplyParser::default();
            let mut got = None;
            for c in wire.chunks(split) {
                if let Some((code, used)) = p.feed(c)? {
                    prop_assert_eq!(used, c.len());
                    got = Some(code);
                }
            }
            prop_assert_eq!(got, Some(code));
        }
    }
}
