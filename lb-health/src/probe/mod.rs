//! The probes (tokio). One call of [`Probe::run`] is one check.
//!
//! Every network probe runs its whole exchange (connect, TLS, request,
//! reply) under **one** deadline, [`ConnectSpec::timeout`], so a server that
//! drips one byte at a time cannot stretch a check (keepalived #1822 applied
//! the timeout per read). Every read counts against
//! [`ConnectSpec::max_reply_bytes`]. A timeout is classed by the phase it
//! hit: connecting (L4), TLS handshake (L6) or waiting for the reply (L7).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{ConfigError, Failure, FailureClass};
use crate::state::Outcome;

pub mod dns;
pub mod file;
pub mod http;
pub mod misc;
pub mod ping;
pub mod smtp;
pub mod tcp;
mod tls;
pub mod udp;

pub use dns::DnsSpec;
pub use file::FileSpec;
pub use http::{HttpSpec, HttpVersion, TlsSpec, TlsVerify, UrlSpec};
pub use misc::MiscSpec;
pub use ping::PingSpec;
pub use smtp::SmtpSpec;
pub use udp::UdpSpec;

/// Where and how to connect, shared by the network probes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectSpec {
    /// The server (keepalived `connect_ip` / `connect_port`).
    pub addr: SocketAddr,
    /// Local address and port to bind (keepalived `bindto` / `bind_port`).
    pub bind: Option<SocketAddr>,
    /// Total deadline of one check, connect to last byte (keepalived
    /// `connect_timeout`, default 5 s).
    pub timeout: Duration,
    /// Most bytes read from the server in one check (default 1 MiB).
    pub max_reply_bytes: usize,
    /// Firewall mark on the check's socket (keepalived `fwmark`, SO_MARK;
    /// needs CAP_NET_ADMIN).
    pub fwmark: Option<u32>,
    /// Interface to bind the socket to (keepalived `bind_if`,
    /// SO_BINDTODEVICE; needs CAP_NET_RAW).
    pub bind_if: Option<String>,
}

impl ConnectSpec {
    /// Defaults: no bind, 5 s deadline, 1 MiB cap.
    ///
    /// ```
    /// let c = lb_health::probe::ConnectSpec::new("127.0.0.1:80".parse().unwrap());
    /// assert_eq!(c.timeout, std::time::Duration::from_secs(5));
    /// ```
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            bind: None,
            timeout: Duration::from_secs(5),
            max_reply_bytes: 1024 * 1024,
            fwmark: None,
            bind_if: None,
        }
    }

    /// Sets the firewall mark.
    pub fn fwmark(&mut self, mark: u32) -> &mut Self {
        self.fwmark = Some(mark);
        self
    }

    /// Binds the socket to an interface.
    pub fn bind_if(&mut self, interface: impl Into<String>) -> &mut Self {
        self.bind_if = Some(interface.into());
        self
    }

    /// Applies `fwmark` and `bind_if` to a socket before it connects.
    pub(crate) fn apply_socket_options(&self, sock: socket2::SockRef<'_>) -> Result<(), Failure> {
        let local =
            |what: &str, e: io::Error| Failure::new(FailureClass::Local, format!("{what}: {e}"));
        if let Some(mark) = self.fwmark {
            sock.set_mark(mark).map_err(|e| local("SO_MARK", e))?;
        }
        if let Some(dev) = &self.bind_if {
            sock.bind_device(Some(dev.as_bytes()))
                .map_err(|e| local("SO_BINDTODEVICE", e))?;
        }
        Ok(())
    }

    /// Sets the deadline of one whole exchange (HTTP: of each url's).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Sets the local bind address.
    pub fn bind(&mut self, bind: SocketAddr) -> &mut Self {
        self.bind = Some(bind);
        self
    }

    /// Sets the read cap.
    pub fn max_reply_bytes(&mut self, max: usize) -> &mut Self {
        self.max_reply_bytes = max;
        self
    }
}

/// What to check. Data only (hashable, so the engine can deduplicate);
/// [`Probe::new`] validates and compiles it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbeSpec {
    /// TCP_CHECK: the connection opens.
    Tcp(ConnectSpec),
    /// HTTP_GET / SSL_GET.
    Http(HttpSpec),
    /// SMTP_CHECK.
    Smtp(SmtpSpec),
    /// DNS_CHECK.
    Dns(DnsSpec),
    /// UDP_CHECK.
    Udp(UdpSpec),
    /// PING_CHECK.
    Ping(PingSpec),
    /// MISC_CHECK.
    Misc(MiscSpec),
    /// FILE_CHECK.
    File(FileSpec),
}

#[derive(Debug)]
enum Kind {
    Tcp(ConnectSpec),
    // The rest are boxed so that a TCP check (the common, cheap one) stays
    // small in memory.
    Http(Box<http::HttpProbe>),
    Smtp(Box<SmtpSpec>),
    Dns(Box<dns::DnsProbe>),
    Udp(Box<udp::UdpProbe>),
    Ping(Box<PingSpec>),
    Misc(Box<MiscSpec>),
    File(Box<FileSpec>),
}

/// A validated, ready-to-run probe.
///
/// ```no_run
/// # async fn f() {
/// use lb_health::probe::{ConnectSpec, Probe, ProbeSpec};
/// let p = Probe::new(&ProbeSpec::Tcp(ConnectSpec::new("10.0.0.1:80".parse().unwrap()))).unwrap();
/// match p.run().await {
///     Ok(_) => println!("up"),
///     Err(e) => println!("down: {e}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Probe {
    kind: Kind,
}

impl Probe {
    /// Validates `spec` (regexes, TLS material, names, patterns).
    pub fn new(spec: &ProbeSpec) -> Result<Self, ConfigError> {
        let kind = match spec {
            ProbeSpec::Tcp(c) => Kind::Tcp(c.clone()),
            ProbeSpec::Http(h) => Kind::Http(Box::new(http::HttpProbe::new(h)?)),
            ProbeSpec::Smtp(s) => Kind::Smtp(Box::new(s.clone())),
            ProbeSpec::Dns(d) => Kind::Dns(Box::new(dns::DnsProbe::new(d)?)),
            ProbeSpec::Udp(u) => Kind::Udp(Box::new(udp::UdpProbe::new(u)?)),
            ProbeSpec::Ping(p) => Kind::Ping(Box::new(p.clone())),
            ProbeSpec::Misc(m) => {
                if m.program.as_os_str().is_empty() {
                    return Err(ConfigError::MiscCommand("empty program"));
                }
                Kind::Misc(Box::new(m.clone()))
            }
            ProbeSpec::File(f) => Kind::File(Box::new(f.clone())),
        };
        Ok(Self { kind })
    }

    /// Runs one check. `Ok(weight)` on success, with a dynamic weight for
    /// MISC_CHECK `misc_dynamic` and FILE_CHECK.
    pub async fn run(&self) -> Result<Option<u32>, Failure> {
        match &self.kind {
            Kind::Tcp(c) => tcp::run(c).await.map(|()| None),
            Kind::Http(h) => h.run().await.map(|()| None),
            Kind::Smtp(s) => smtp::run(s).await.map(|()| None),
            Kind::Dns(d) => d.run().await.map(|()| None),
            Kind::Udp(u) => u.run().await.map(|()| None),
            Kind::Ping(p) => ping::run(p).await.map(|()| None),
            Kind::Misc(m) => misc::run(m).await,
            Kind::File(f) => file::run(f).await,
        }
    }

    /// Runs one check and returns it as the state machine's input.
    pub async fn check(&self) -> Outcome {
        match self.run().await {
            Ok(weight) => Outcome::Success { weight },
            Err(f) => Outcome::Failure(f.class),
        }
    }
}

/// The phase of an exchange, to class a timeout.
#[derive(Debug, Default)]
pub(crate) struct Phase(AtomicU8);

impl Phase {
    pub(crate) const CONNECT: u8 = 0;
    pub(crate) const TLS: u8 = 1;
    pub(crate) const REPLY: u8 = 2;

    pub(crate) fn set(&self, p: u8) {
        self.0.store(p, Ordering::Relaxed);
    }

    fn timeout_failure(&self, after: Duration) -> Failure {
        let (class, what) = match self.0.load(Ordering::Relaxed) {
            Self::CONNECT => (FailureClass::L4Timeout, "connect"),
            Self::TLS => (FailureClass::L6Timeout, "TLS handshake"),
            _ => (FailureClass::L7Timeout, "reply"),
        };
        Failure::new(class, format!("{what} not done after {after:?}"))
    }
}

/// Runs `f` under one total deadline; a timeout is classed by the phase.
pub(crate) async fn with_deadline<T>(
    timeout: Duration,
    phase: &Phase,
    f: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(phase.timeout_failure(timeout)),
    }
}

/// Classes a connect error.
pub(crate) fn connect_failure(e: &io::Error) -> Failure {
    let class = match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureClass::L4Refused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            FailureClass::L4Unreachable
        }
        io::ErrorKind::TimedOut => FailureClass::L4Timeout,
        _ => FailureClass::L4Error,
    };
    Failure::new(class, format!("connect: {e}"))
}

/// Opens a TCP connection, binding first if asked.
pub(crate) async fn connect_tcp(spec: &ConnectSpec) -> Result<TcpStream, Failure> {
    let local = |e: io::Error| Failure::new(FailureClass::Local, format!("socket: {e}"));
    let sock = if spec.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(local)?;
    spec.apply_socket_options(socket2::SockRef::from(&sock))?;
    if let Some(bind) = spec.bind {
        sock.set_reuseaddr(true).map_err(local)?;
        sock.bind(bind).map_err(local)?;
    }
    let stream = sock
        .connect(spec.addr)
        .await
        .map_err(|e| connect_failure(&e))?;
    // Health checks are tiny request/reply exchanges.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Closes with RST instead of FIN, as HAProxy does for checks: no
/// TIME_WAIT on our side, so thousands of checks a second do not exhaust
/// local ports.
pub(crate) fn abort(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Reads once into `buf`, counting against the cap. `Ok(0)` is EOF.
pub(crate) async fn read_capped<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    total: &mut usize,
    cap: usize,
) -> Result<usize, Failure> {
    let n = match stream.read(buf).await {
        Ok(n) => n,
        // A TLS peer that closes without close_notify: treat it as the end
        // of the stream; the reply parser still catches a truncated reply.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
        Err(e) => return Err(Failure::new(FailureClass::L7Closed, format!("read: {e}"))),
    };
    *total += n;
    if *total > cap {
        return Err(Failure::new(
            FailureClass::L7Malformed,
            format!("reply longer than {cap} bytes"),
        ));
    }
    Ok(n)
}

/// A per-process random 64-bit value (for DNS IDs and ICMP cookies).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}
