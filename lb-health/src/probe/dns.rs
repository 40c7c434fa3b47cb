//! DNS_CHECK: one query over UDP; a reply with RCODE 0 that echoes the
//! question (and, by default, has an answer) passes.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::{ConnectSpec, Phase, connect_failure, random_u64, with_deadline};
use crate::error::{ConfigError, Failure, FailureClass};
use crate::wire::dns::{QueryType, ReplyVerdict, check_reply, encode_query};

/// DNS_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsSpec {
    /// The server, deadline and cap.
    pub connect: ConnectSpec,
    /// `name` (default `.`).
    pub name: String,
    /// `type` (default SOA).
    pub qtype: QueryType,
    /// Require ANCOUNT > 0 (default true). keepalived accepts any NOERROR
    /// reply; set false for that.
    pub require_answer: bool,
}

impl DnsSpec {
    /// keepalived's defaults: `name .`, `type SOA`, plus an answer required.
    ///
    /// ```
    /// let d = lb_health::probe::DnsSpec::new(
    ///     lb_health::probe::ConnectSpec::new("127.0.0.1:53".parse().unwrap()));
    /// assert_eq!(d.name, ".");
    /// ```
    pub fn new(connect: ConnectSpec) -> Self {
        Self {
            connect,
            name: ".".into(),
            qtype: QueryType::Soa,
            require_answer: true,
        }
    }

    /// Sets the query name and type.
    pub fn query(&mut self, name: impl Into<String>, qtype: QueryType) -> &mut Self {
        self.name = name.into();
        self.qtype = qtype;
        self
    }
}

#[derive(Debug)]
pub(crate) struct DnsProbe {
    spec: DnsSpec,
}

impl DnsProbe {
    pub(crate) fn new(spec: &DnsSpec) -> Result<Self, ConfigError> {
        encode_query(0, &spec.name, spec.qtype)?;
        Ok(Self { spec: spec.clone() })
    }

    pub(crate) async fn run(&self) -> Result<(), Failure> {
        let phase = Phase::default();
        phase.set(Phase::REPLY);
        with_deadline(self.spec.connect.timeout, &phase, self.exchange()).await
    }

    async fn exchange(&self) -> Result<(), Failure> {
        let c = &self.spec.connect;
        let sock = udp_connect(c).await?;
        let query = encode_query(random_u64() as u16, &self.spec.name, self.spec.qtype)
            .map_err(|e| Failure::new(FailureClass::Local, e.to_string()))?;
        sock.send(&query).await.map_err(|e| connect_failure(&e))?;
        let mut buf = vec![0u8; 4096.min(c.max_reply_bytes.max(512))];
        let mut total = 0usize;
        loop {
            let n = sock.recv(&mut buf).await.map_err(|e| connect_failure(&e))?;
            total += n;
            if total > c.max_reply_bytes {
                return Err(Failure::new(
                    FailureClass::L7Malformed,
                    "too many reply bytes",
                ));
            }
            match check_reply(&query, &buf[..n]) {
                ReplyVerdict::Ignore => {}
                ReplyVerdict::Rcode(r) => {
                    return Err(Failure::new(FailureClass::L7Status, format!("rcode {r}")));
                }
                ReplyVerdict::QuestionMismatch => {
                    return Err(Failure::new(
                        FailureClass::L7Mismatch,
                        "question not echoed",
                    ));
                }
                ReplyVerdict::Ok { answers: 0 } if self.spec.require_answer => {
                    return Err(Failure::new(FailureClass::L7Mismatch, "no answer"));
                }
                ReplyVerdict::Ok { .. } => return Ok(()),
            }
        }
    }
}

/// A UDP socket connected to the server (so ICMP errors come back as
/// `ECONNREFUSED` on receive).
pub(crate) async fn udp_connect(c: &ConnectSpec) -> Result<UdpSocket, Failure> {
    let local: SocketAddr = match (c.bind, c.addr) {
        (Some(b), _) => b,
        (None, SocketAddr::V4(_)) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        (None, SocketAddr::V6(_)) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| Failure::new(FailureClass::Local, format!("bind: {e}")))?;
    c.apply_socket_options(socket2::SockRef::from(&sock))?;
    sock.connect(c.addr)
        .await
        .map_err(|e| connect_failure(&e))?;
    Ok(sock)
}
