//! A bounded, incremental HTTP/1.x response parser (RFC 9112).
//!
//! ```text
//! status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF
//! *( field-name ":" OWS field-value OWS CRLF )
//! CRLF
//! [ message-body ]   ; Content-Length, chunked, or until close
//! ```
//!
//! Bytes arrive in any split (down to one at a time) through
//! [`ResponseParser::feed`]; nothing is buffered beyond the current line and
//! the body, and every piece has a limit ([`Limits`]). The status line must
//! be `HTTP/1.x` followed by exactly three digits: keepalived's
//! CVE-2018-19115 came from accepting less. Bare LF line ends are accepted,
//! as most clients do. `1xx` interim responses are skipped.
//!
//! Bad input never panics; it returns a [`ParseError`] with the byte offset.

/// Size limits. The defaults suit a health-check page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Longest status line, header line or chunk-size line, without CRLF.
    pub max_line: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Largest body kept (after de-chunking).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 8 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
        }
    }
}

/// What was wrong with the response.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The status line is not `HTTP/1.x NNN ...`.
    BadStatusLine,
    /// A header line has no colon or an invalid name.
    BadHeader,
    /// A line exceeds [`Limits::max_line`].
    LineTooLong,
    /// More than [`Limits::max_headers`] header fields.
    TooManyHeaders,
    /// The body exceeds [`Limits::max_body`].
    BodyTooLarge,
    /// `Content-Length` is not a number, or two of them disagree.
    BadContentLength,
    /// A `Transfer-Encoding` other than `chunked` last (RFC 9112 §6.1).
    BadTransferEncoding,
    /// A chunk-size line is not hex, or a chunk is not followed by CRLF.
    BadChunk,
    /// The connection ended before the response was complete.
    Truncated,
    /// A control character (NUL, bare CR) in the head.
    BadByte,
}

/// A parse error and the byte offset (from the start of the response) at
/// which it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed HTTP response at byte {offset}: {kind:?}")]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// Byte offset in the stream.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StatusLine,
    Header,
    Body { remaining: u64 },
    UntilClose,
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailer,
    Done,
}

/// The parsed response, once [`ResponseParser::is_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// HTTP minor version (`HTTP/1.0` = 0, `HTTP/1.1` = 1).
    pub minor_version: u8,
    /// The three-digit status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: &'a [u8],
}

/// The incremental parser. Feed it bytes, then call
/// [`finish`](Self::finish) at end of stream.
///
/// ```
/// use lb_health::wire::http::{Limits, ResponseParser};
/// let mut p = ResponseParser::new(Limits::default());
/// for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" {
///     p.feed(std::slice::from_ref(b)).unwrap();
/// }
/// let r = p.response().unwrap();
/// assert_eq!((r.status, r.body), (200, &b"hi"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    state: State,
    offset: usize,
    line: Vec<u8>,
    headers: usize,
    status: u16,
    minor: u8,
    content_length: Option<u64>,
    chunked: bool,
    body: Vec<u8>,
}

impl ResponseParser {
    /// A parser expecting a response to a GET request.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::StatusLine,
            offset: 0,
            line: Vec::new(),
            headers: 0,
            status: 0,
            minor: 0,
            content_length: None,
            chunked: false,
            body: Vec::new(),
        }
    }

    /// Whether a complete response has been parsed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The status code, as soon as the status line is parsed.
    pub fn status(&self) -> Option<u16> {
        (self.status != 0).then_some(self.status)
    }

    /// The response, once complete.
    pub fn response(&self) -> Option<Response<'_>> {
        self.is_done().then_some(Response {
            minor_version: self.minor,
            status: self.status,
            body: &self.body,
        })
    }

    /// Consumes `data`. Returns how many bytes were used: all of them, or
    /// fewer if the response completed (the rest is not part of it).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, ParseError> {
        let mut i = 0;
        while i < data.len() && self.state != State::Done {
            match self.state {
                State::Body { remaining } | State::ChunkData { remaining } => {
                    let n = (data.len() - i).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.push_body(&data[i..i + n])?;
                    i += n;
                    self.offset += n;
                    let left = remaining - n as u64;
                    self.state = match (self.state, left) {
                        (State::Body { .. }, 0) => State::Done,
                        (State::Body { .. }, _) => State::Body { remaining: left },
                        (_, 0) => State::ChunkDataEnd,
                        (_, _) => State::ChunkData { remaining: left },
                    };
                }
                State::UntilClose => {
                    let n = data.len() - i;
                    self.push_body(&data[i..])?;
                    i += n;
                    self.offset += n;
                }
                _ => {
                    let b = data[i];
                    i += 1;
                    self.offset += 1;
                    if b == b'\n' {
                        let mut line = std::mem::take(&mut self.line);
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        let r = self.on_line(&line);
                        line.clear();
                        self.line = line;
                        r?;
                    } else if self.line.len() >= self.limits.max_line {
                        return Err(self.err(ParseErrorKind::LineTooLong));
                    } else {
                        self.line.push(b);
                    }
                }
            }
        }
        Ok(i)
    }

    /// Signals end of stream. A body delimited by the connection close
    /// completes here; anything else incomplete is [`ParseErrorKind::Truncated`].
    pub fn finish(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(self.err(ParseErrorKind::Truncated)),
        }
    }

    fn err(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            offset: self.offset,
        }
    }

    fn push_body(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if self.body.len() + bytes.len() > self.limits.max_body {
            return Err(self.err(ParseErrorKind::BodyTooLarge));
        }
        self.body.extend_from_slice(bytes);
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        match self.state {
            State::StatusLine => self.on_status_line(line),
            State::Header if line.is_empty() => self.on_end_of_head(),
            State::Header => self.on_header(line),
            State::ChunkSize => self.on_chunk_size(line),
            State::ChunkDataEnd if line.is_empty() => {
                self.state = State::ChunkSize;
                Ok(())
            }
            State::ChunkDataEnd => Err(self.err(ParseErrorKind::BadChunk)),
            State::Trailer if line.is_empty() => {
                self.state = State::Done;
                Ok(())
            }
            State::Trailer => {
                self.headers += 1;
                if self.headers > self.limits.max_headers {
                    return Err(self.err(ParseErrorKind::TooManyHeaders));
                }
                Ok(())
            }
            // Body states never reach here; Done stops the loop.
            _ => Ok(()),
        }
    }

    fn on_status_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        let bad = || self.err(ParseErrorKind::BadStatusLine);
        let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
        let (&minor, rest) = rest.split_first().ok_or_else(bad)?;
        if !minor.is_ascii_digit() {
            return Err(bad());
        }
        let rest = rest.strip_prefix(b" ").ok_or_else(bad)?;
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        if rest.len() > 3 && rest[3] != b' ' {
            return Err(bad());
        }
        if line.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(self.err(ParseErrorKind::BadByte));
        }
        let status = rest[..3]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if status < 100 {
            return Err(bad());
        }
        self.status = status;
        self.minor = minor - b'0';
        self.state = State::Header;
        Ok(())
    }

    fn on_header(&mut self, line: &[u8]) -> Result<(), ParseError> {
        self.headers += 1;
        if self.headers > self.limits.max_headers {
            return Err(self.err(ParseErrorKind::TooManyHeaders));
        }
        if line.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(self.err(ParseErrorKind::BadByte));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| self.err(ParseErrorKind::BadHeader))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(self.err(ParseErrorKind::BadHeader));
        }
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n =
                parse_decimal(value).ok_or_else(|| self.err(ParseErrorKind::BadContentLength))?;
            if self.content_length.is_some_and(|old| old != n) {
                return Err(self.err(ParseErrorKind::BadContentLength));
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if !last.eq_ignore_ascii_case(b"chunked") {
                return Err(self.err(ParseErrorKind::BadTransferEncoding));
            }
            self.chunked = true;
        }
        Ok(())
    }

    fn on_end_of_head(&mut self) -> Result<(), ParseError> {
        if (100..200).contains(&self.status) && self.status != 101 {
            // Interim response: the real one follows.
            self.status = 0;
            self.headers = 0;
            self.content_length = None;
            self.chunked = false;
            self.state = State::StatusLine;
            return Ok(());
        }
        self.state = if self.status == 204 || self.status == 304 {
            State::Done
        } else if self.chunked {
            // RFC 9112 §6.3: chunked overrides Content-Length.
            State::ChunkSize
        } else {
            match self.content_length {
                Some(0) => State::Done,
                Some(n) => {
                    if n > self.limits.max_body as u64 {
                        return Err(self.err(ParseErrorKind::BodyTooLarge));
                    }
                    State::Body { remaining: n }
                }
                None => State::UntilClose,
            }
        };
        Ok(())
    }

    fn on_chunk_size(&mut self, line: &[u8]) -> Result<(), ParseError> {
        let size = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.err(ParseErrorKind::BadChunk));
        }
        let n = size.iter().fold(0u64, |acc, &d| {
            acc << 4 | u64::from((d as char).to_digit(16).unwrap_or(0))
        });
        if n == 0 {
            self.state = State::Trailer;
        } else if self.body.len() as u64 + n > self.limits.max_body as u64 {
            return Err(self.err(ParseErrorKind::BodyTooLarge));
        } else {
            self.state = State::ChunkData { remaining: n };
        }
        Ok(())
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(data: &[u8]) -> Result<(u16, Vec<u8>), ParseError> {
        let mut p = ResponseParser::new(Limits::default());
        p.feed(data)?;
        p.finish()?;
        let r = p.response().unwrap();
        Ok((r.status, r.body.to_vec()))
    }

    fn kind(data: &[u8]) -> ParseErrorKind {
        parse_all(data).unwrap_err().kind
    }

    #[test]
    fn content_length_body_and_leftover() {
        let mut p = ResponseParser::new(Limits::default());
        let wire = b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        let n = p.feed(wire).unwrap();
        assert_eq!(n, wire.len() - b"EXTRA".len());
        let r = p.response().unwrap();
        assert_eq!((r.minor_version, r.status, r.body), (0, 404, &b"abc"[..]));
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let got = parse_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
              4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(got, (200, b"Wikipedia in\r\n\r\nchunks.".to_vec()));
    }

    #[test]
    fn until_close_and_interim_and_no_body_statuses() {
        assert_eq!(
            parse_all(b"HTTP/1.0 200 OK\nServer: x\n\nbody").unwrap(),
            (200, b"body".to_vec())
        );
        assert_eq!(
            parse_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nz"
            )
            .unwrap(),
            (201, b"z".to_vec())
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 204 No\r\n\r\n").unwrap(),
            (204, vec![])
        );
        assert_eq!(parse_all(b"HTTP/1.1 200 \r\n\r\n").unwrap().0, 200);
        assert_eq!(parse_all(b"HTTP/1.1 503\r\n\r\n").unwrap().0, 503);
    }

    #[test]
    fn malformed_status_lines() {
        // The CVE-2018-19115 shape.
        assert_eq!(
            kind(b"aa aaaaHTTP/1.1aa200\r\n\r\n"),
            ParseErrorKind::BadStatusLine
        );
        assert_eq!(kind(b"HTTP/1.1 20\r\n\r\n"), ParseErrorKind::BadStatusLine);
        assert_eq!(
            kind(b"HTTP/1.1 2000 OK\r\n\r\n"),
            ParseErrorKind::BadStatusLine
        );
        assert_eq!(
            kind(b"HTTP/1.1 -20 OK\r\n\r\n"),
            ParseErrorKind::BadStatusLine
        );
        assert_eq!(
            kind(b"HTTP/2 200 OK\r\n\r\n"),
            ParseErrorKind::BadStatusLine
        );
        assert_eq!(
            kind(b"HTTP/1.1 099 OK\r\n\r\n"),
            ParseErrorKind::BadStatusLine
        );
        assert_eq!(kind(b"HTTP/1.1 200 O\0K\r\n\r\n"), ParseErrorKind::BadByte);
    }

    #[test]
    fn malformed_heads_and_bodies() {
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"),
            ParseErrorKind::BadHeader
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            ParseErrorKind::BadHeader
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            ParseErrorKind::BadContentLength
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            ParseErrorKind::BadContentLength
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            ParseErrorKind::BadTransferEncoding
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            ParseErrorKind::BadChunk
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n"),
            ParseErrorKind::BadChunk
        );
        assert_eq!(
            kind(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
            ParseErrorKind::Truncated
        );
        assert_eq!(kind(b"HTTP/1.1 200 OK\r\n"), ParseErrorKind::Truncated);
    }

    #[test]
    fn limits_hold() {
        let limits = Limits {
            max_line: 32,
            max_headers: 2,
            max_body: 8,
        };
        let run = |d: &[u8]| {
            let mut p = ResponseParser::new(limits);
            p.feed(d).and_then(|_| p.finish()).unwrap_err().kind
        };
        assert_eq!(run(&[b'H'; 100]), ParseErrorKind::LineTooLong);
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n"),
            ParseErrorKind::TooManyHeaders
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
            ParseErrorKind::BodyTooLarge
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\n\r\n123456789"),
            ParseErrorKind::BodyTooLarge
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n"),
            ParseErrorKind::BodyTooLarge
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n"),
            ParseErrorKind::BadChunk
        );
    }

    /// Builds a response the simple way.
    fn encode(status: u16, body: &[u8], chunks: Option<&[usize]>) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} X\r\nServer: t\r\n").into_bytes();
        match chunks {
            None => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = body;
                for &s in sizes.iter().chain(std::iter::once(&usize::MAX)) {
                    let n = s.clamp(1, rest.len().max(1)).min(rest.len());
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any split of a valid response parses to the same thing.
        #[test]
        fn any_split_parses_the_same(
            status in 200u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            chunked: bool,
            chunks in proptest::collection::vec(1usize..50, 1..10),
            cuts in proptest::collection::vec(1usize..20, 1..50),
        ) {
            prop_assume!(status != 204 && status != 304);
            let wire = encode(status, &body, chunked.then_some(&chunks[..]));
            let mut p = ResponseParser::new(Limits::default());
            let mut rest = &wire[..];
            for c in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let n = (*c).min(rest.len());
                prop_assert_eq!(p.feed(&rest[..n])?, n);
                rest = &rest[n..];
            }
            p.finish()?;
            let r = p.response().unwrap();
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(r.body, &body[..]);
        }

        /// Garbage never panics and never grows past the limits.
        #[test]
        fn garbage_is_bounded(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let limits = Limits { max_line: 64, max_headers: 4, max_body: 128 };
            let mut p = ResponseParser::new(limits);
            let _ = p.feed(&data).and_then(|_| p.finish());
            prop_assert!(p.line.len() <= 64 && p.body.len() <= 128);
        }
    }
}
