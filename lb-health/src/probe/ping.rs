//! PING_CHECK: one ICMP / ICMPv6 echo, answered before the deadline.
//!
//! It uses an unprivileged ICMP datagram socket (`SOCK_DGRAM`,
//! `IPPROTO_ICMP`) when `net.ipv4.ping_group_range` admits our group, and
//! falls back to a raw socket (needs `CAP_NET_RAW`). Both are opened through
//! `socket2` and driven as a tokio `UdpSocket` (the datagram system calls
//! are the same), so no `unsafe` is needed. A random cookie in the payload
//! and the sequence number identify our reply (datagram sockets rewrite the
//! identifier).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::random_u64;
use crate::error::{Failure, FailureClass};
use crate::wire::icmp;

/// PING_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PingSpec {
    /// The host to ping.
    pub addr: IpAddr,
    /// Source address to bind.
    pub bind: Option<IpAddr>,
    /// Deadline for the echo reply (keepalived `connect_timeout`).
    pub timeout: Duration,
}

impl PingSpec {
    /// Ping `addr` with a 5 s deadline.
    ///
    /// ```
    /// let p = lb_health::probe::PingSpec::new("::1".parse().unwrap());
    /// assert_eq!(p.timeout.as_secs(), 5);
    /// ```
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            bind: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a datagram ICMP socket, else a raw one. Returns it and whether it
/// is raw.
fn open(addr: IpAddr) -> io::Result<(Socket, bool)> {
    let (domain, proto) = match addr {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(_) => Socket::new(domain, Type::RAW, Some(proto)).map(|s| (s, true)),
    }
}

pub(crate) async fn run(spec: &PingSpec) -> Result<(), Failure> {
    let local = |e: io::Error| Failure::new(FailureClass::Local, format!("ICMP socket: {e}"));
    let (sock, raw) = open(spec.addr).map_err(local)?;
    if let Some(b) = spec.bind {
        sock.bind(&SocketAddr::new(b, 0).into()).map_err(local)?;
    }
    sock.set_nonblocking(true).map_err(local)?;
    let sock = UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(local)?;
    let v4 = spec.addr.is_ipv4();
    let cookie = random_u64().to_be_bytes();
    let ident = u16::from_be_bytes([cookie[0], cookie[1]]);
    let seq = u16::from_be_bytes([cookie[2], cookie[3]]);
    let request = icmp::EchoRepr {
        kind: if v4 {
            icmp::V4_ECHO_REQUEST
        } else {
            icmp::V6_ECHO_REQUEST
        },
        ident,
        seq,
        payload: &cookie,
    }
    .emit(v4);
    let dst = SocketAddr::new(spec.addr, 0);
    let exchange = async {
        sock.send_to(&request, dst)
            .await
            .map_err(|e| super::connect_failure(&e))?;
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = sock
                .recv_from(&mut buf)
                .await
                .map_err(|e| super::connect_failure(&e))?;
            let mut data = &buf[..n];
            if raw && v4 {
                match icmp::strip_ipv4_header(data) {
                    Some(d) => data = d,
                    None => continue,
                }
            }
            let Some(msg) = icmp::parse(data) else {
                continue;
            };
            let (reply, unreach) = if v4 {
                (icmp::V4_ECHO_REPLY, icmp::V4_UNREACHABLE)
            } else {
                (icmp::V6_ECHO_REPLY, icmp::V6_UNREACHABLE)
            };
            if msg.kind == reply
                && from.ip() == spec.addr
                && msg.seq == seq
                && msg.payload == cookie
                && (!raw || msg.ident == ident)
            {
                return Ok(());
            }
            // An unreachable error quoting our request (raw sockets only see these).
            if msg.kind == unreach && msg.payload.windows(cookie.len()).any(|w| w == cookie) {
                return Err(Failure::new(
                    FailureClass::L4Unreachable,
                    format!("ICMP unreachable from {}", from.ip()),
                ));
            }
        }
    };
    match tokio::time::timeout(spec.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(FailureClass::L4Timeout, "no echo reply")),
    }
}
