//! UDP_CHECK: send `payload`; with `require_reply`, a reply of the right
//! length that matches the pattern passes; without, the check passes unless
//! an ICMP error (port unreachable) comes back before the deadline, as in
//! keepalived (so it always takes the full deadline).

use std::ops::RangeInclusive;

use super::dns::udp_connect;
use super::{ConnectSpec, connect_failure};
use crate::error::{ConfigError, Failure, FailureClass};
use crate::wire::udp::{ReplyPattern, parse_hex};

/// UDP_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UdpSpec {
    /// The server and deadline.
    pub connect: ConnectSpec,
    /// `payload` as hex.
    pub payload: String,
    /// `require_reply` pattern (hex, `X` nibble wildcards), or `None`.
    pub require_reply: Option<String>,
    /// `min_reply_length` ..= `max_reply_length` (default 0..=255).
    pub reply_length: RangeInclusive<usize>,
}

impl UdpSpec {
    /// A check sending `payload_hex` and not requiring a reply.
    ///
    /// ```
    /// let mut u = lb_health::probe::UdpSpec::new(
    ///     lb_health::probe::ConnectSpec::new("127.0.0.1:9".parse().unwrap()), "68656c6c6f");
    /// u.require_reply("6X");
    /// ```
    pub fn new(connect: ConnectSpec, payload_hex: impl Into<String>) -> Self {
        Self {
            connect,
            payload: payload_hex.into(),
            require_reply: None,
            reply_length: 0..=255,
        }
    }

    /// Requires a reply matching `pattern`.
    pub fn require_reply(&mut self, pattern: impl Into<String>) -> &mut Self {
        self.require_reply = Some(pattern.into());
        self
    }
}

#[derive(Debug)]
pub(crate) struct UdpProbe {
    connect: ConnectSpec,
    payload: Vec<u8>,
    reply: Option<ReplyPattern>,
    length: RangeInclusive<usize>,
}

impl UdpProbe {
    pub(crate) fn new(spec: &UdpSpec) -> Result<Self, ConfigError> {
        Ok(Self {
            connect: spec.connect.clone(),
            payload: parse_hex(&spec.payload)?,
            reply: spec
                .require_reply
                .as_deref()
                .map(ReplyPattern::parse)
                .transpose()?,
            length: spec.reply_length.clone(),
        })
    }

    pub(crate) async fn run(&self) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + self.connect.timeout;
        let sock = tokio::time::timeout_at(deadline, udp_connect(&self.connect))
            .await
            .map_err(|_| Failure::new(FailureClass::L4Timeout, "socket setup"))??;
        sock.send(&self.payload)
            .await
            .map_err(|e| connect_failure(&e))?;
        let mut buf = vec![0u8; self.length.end().saturating_add(1).min(65536)];
        match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) if self.reply.is_none() => Ok(()),
            Err(_) => Err(Failure::new(FailureClass::L7Timeout, "no reply")),
            Ok(Err(e)) => Err(connect_failure(&e)),
            Ok(Ok(_)) if self.reply.is_none() => Ok(()),
            Ok(Ok(n)) => {
                let reply = &buf[..n];
                if !self.length.contains(&n) {
                    return Err(Failure::new(
                        FailureClass::L7Mismatch,
                        format!("reply length {n} outside {:?}", self.length),
                    ));
                }
                match &self.reply {
                    Some(p) if !p.matches(reply) => Err(Failure::new(
                        FailureClass::L7Mismatch,
                        "reply does not match",
                    )),
                    _ => Ok(()),
                }
            }
        }
    }
}
