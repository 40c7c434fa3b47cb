//! SMTP_CHECK: banner `220`, then `HELO <name>` answered by `250`, then
//! `QUIT` (its reply is not awaited), as keepalived's check_smtp.c.

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::{ConnectSpec, Phase, abort, connect_tcp, read_capped, with_deadline};
use crate::error::{Failure, FailureClass};
use crate::wire::smtp::ReplyParser;

/// SMTP_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmtpSpec {
    /// Where to connect, deadline and read cap.
    pub connect: ConnectSpec,
    /// `helo_name` (keepalived defaults to the local host name).
    pub helo_name: String,
}

impl SmtpSpec {
    /// An SMTP check saying `HELO helo_name`.
    ///
    /// ```
    /// let s = lb_health::probe::SmtpSpec::new(
    ///     lb_health::probe::ConnectSpec::new("127.0.0.1:25".parse().unwrap()), "lb.example");
    /// assert_eq!(s.helo_name, "lb.example");
    /// ```
    pub fn new(connect: ConnectSpec, helo_name: impl Into<String>) -> Self {
        Self {
            connect,
            helo_name: helo_name.into(),
        }
    }
}

pub(crate) async fn run(spec: &SmtpSpec) -> Result<(), Failure> {
    let phase = Phase::default();
    with_deadline(spec.connect.timeout, &phase, async {
        let mut stream = connect_tcp(&spec.connect).await?;
        phase.set(Phase::REPLY);
        let r = dialogue(&mut stream, spec).await;
        abort(stream);
        r
    })
    .await
}

async fn dialogue(stream: &mut tokio::net::TcpStream, spec: &SmtpSpec) -> Result<(), Failure> {
    let mut parser = ReplyParser::default();
    let mut total = 0;
    let cap = spec.connect.max_reply_bytes;
    expect(stream, &mut parser, &mut total, cap, 220, "banner").await?;
    let helo = format!("HELO {}\r\n", spec.helo_name);
    send(stream, helo.as_bytes()).await?;
    expect(stream, &mut parser, &mut total, cap, 250, "HELO").await?;
    let _ = stream.write_all(b"QUIT\r\n").await;
    Ok(())
}

async fn send(stream: &mut tokio::net::TcpStream, data: &[u8]) -> Result<(), Failure> {
    stream
        .write_all(data)
        .await
        .map_err(|e| Failure::new(FailureClass::L7Closed, format!("send: {e}")))
}

/// Reads one reply and checks its code. Bytes after it (pipelining by a
/// misbehaving server) are ignored.
async fn expect<S: AsyncRead + Unpin>(
    stream: &mut S,
    parser: &mut ReplyParser,
    total: &mut usize,
    cap: usize,
    want: u16,
    what: &str,
) -> Result<(), Failure> {
    parser.reset();
    let mut buf = [0u8; 512];
    loop {
        let n = read_capped(stream, &mut buf, total, cap).await?;
        if n == 0 {
            return Err(Failure::new(
                FailureClass::L7Closed,
                format!("closed before {what} reply"),
            ));
        }
        match parser.feed(&buf[..n]) {
            Err(e) => return Err(Failure::new(FailureClass::L7Malformed, e.to_string())),
            Ok(None) => {}
            Ok(Some((code, _))) if code == want => return Ok(()),
            Ok(Some((code, _))) => {
                return Err(Failure::new(
                    FailureClass::L7Status,
                    format!("{what} reply {code}, want {want}"),
                ));
            }
        }
    }
}
