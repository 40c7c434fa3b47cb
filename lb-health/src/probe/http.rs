//! HTTP_GET and SSL_GET.
//!
//! Each `url` block is fetched on its own connection, in order, and checked
//! like keepalived does: status code first, then the MD5 digest of the body
//! (as `genhash` prints it: lowercase hex over the de-chunked body only),
//! then `regex` / `regex_no_match`. The check passes only if every url
//! passes. Each url's exchange (connect, TLS, request, reply) has its own
//! deadline, `connect_timeout`: keepalived also times each url's
//! connection separately, so a check of several urls may take longer than
//! one timeout. Unlike keepalived, whose timeout restarts on every read, the
//! deadline covers the whole exchange, so a dripping server cannot stretch it.
//!
//! The request is keepalived's, byte for byte (check_http.c
//! `request_template`): `GET <path> HTTP/1.x`, `User-Agent: KeepAliveClient`,
//! `Connection: close` for `1.0C` and `1.1`, then `Host: <virtualhost>` or
//! `Host: <ip>:<port>` (`[ip]:port` for IPv6).

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use md5::{Digest, Md5};
use regex::bytes::Regex;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::{ConnectSpec, Phase, abort, connect_tcp, read_capped, tls, with_deadline};
use crate::error::{ConfigError, Failure, FailureClass};
use crate::wire::http::{Limits, ParseErrorKind, ResponseParser};

/// `http_protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// `HTTP/1.0` (keepalived's default).
    #[default]
    V10,
    /// `HTTP/1.0` with `Connection: close` (`1.0C`).
    V10Close,
    /// `HTTP/1.1` (always with `Connection: close`).
    V11,
}

/// Certificate verification for SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum TlsVerify {
    /// Accept any certificate (keepalived's behaviour). The handshake
    /// signature is still checked against the presented certificate.
    #[default]
    None,
    /// Verify the chain against the CA certificates in this PEM file, and
    /// the name (SNI name, else the IP address).
    CaFile(PathBuf),
}

/// SSL_GET settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsSpec {
    /// Server name to send (keepalived `sni_name`, or the virtualhost with
    /// `enable_sni`). `None` sends no SNI.
    pub sni: Option<String>,
    /// Certificate verification.
    pub verify: TlsVerify,
}

impl TlsSpec {
    /// No SNI, no verification.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the SNI name.
    pub fn sni(&mut self, name: impl Into<String>) -> &mut Self {
        self.sni = Some(name.into());
        self
    }

    /// Sets the verification mode.
    pub fn verify(&mut self, verify: TlsVerify) -> &mut Self {
        self.verify = verify;
        self
    }
}

/// One `url { }` block.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlSpec {
    /// `path`.
    pub path: String,
    /// `status_code`: accepted codes (default `200-299`).
    pub status: Vec<RangeInclusive<u16>>,
    /// `digest`: expected MD5 of the body.
    pub digest: Option<[u8; 16]>,
    /// `regex` pattern, matched against the body.
    pub regex: Option<String>,
    /// `regex_no_match`: the check passes when the regex does NOT match.
    pub regex_no_match: bool,
    /// `regex_min_offset`: matching starts at this body offset.
    pub regex_min_offset: usize,
    /// `regex_max_offset`: a match must start at or before this offset.
    pub regex_max_offset: Option<usize>,
    /// `regex_options`.
    pub regex_options: RegexOptions,
    /// `virtualhost`: the Host header (overrides the check's).
    pub virtualhost: Option<String>,
}

/// keepalived's `regex_options`: the PCRE2 options that change what a
/// pattern matches, as flags of the `regex` crate.
///
/// keepalived compiles `regex` with PCRE2; this crate uses the `regex`
/// crate, whose syntax is close to PCRE2's but not equal (no
/// back-references or look-around). `$` here only matches at the very end
/// (PCRE2's `dollar_endonly`) unless `multiline` is set, and `.` and `\w`
/// are Unicode-aware unless `never_utf` / `never_ucp` is given.
///
/// ```
/// let mut o = lb_health::probe::http::RegexOptions::default();
/// o.set("caseless").unwrap().set("no_start_optimize").unwrap();
/// assert!(o.caseless);
/// assert!(o.set("alt_bsux").is_err()); // a syntax change the regex crate lacks
/// assert!(o.set("caseles").is_err());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RegexOptions {
    /// `caseless`: letters match either case.
    pub caseless: bool,
    /// `dotall`: `.` matches a newline too.
    pub dotall: bool,
    /// `multiline`: `^` and `$` match at line starts and ends.
    pub multiline: bool,
    /// `extended`: whitespace and `#` comments in the pattern are ignored.
    pub extended: bool,
    /// `ungreedy`: quantifiers are lazy unless followed by `?`.
    pub ungreedy: bool,
    /// `firstline`: a match must start at or before the first newline
    /// (counted from `regex_min_offset`).
    pub firstline: bool,
    /// `utf` / `ucp` (true) or `never_utf` / `never_ucp` (false): whether
    /// `.`, classes and case folding work on UTF-8 characters or on bytes.
    /// Unset is Unicode-aware.
    pub unicode: Option<bool>,
}

impl RegexOptions {
    /// Adds one option by its keepalived name. Options that only tune
    /// PCRE2's matcher or compiler (`no_start_optimize`, `no_auto_possess`,
    /// `dupnames`, ...) are accepted and change nothing here; those that
    /// change PCRE2's pattern syntax in ways the `regex` crate cannot follow
    /// (`alt_bsux`, `allow_empty_class`, `match_unset_backref`,
    /// `alt_circumflex`, `alt_verbnames`) are refused, as are unknown names
    /// (keepalived ignores those silently).
    pub fn set(&mut self, name: &str) -> Result<&mut Self, ConfigError> {
        let refuse = |reason| {
            Err(ConfigError::RegexOption {
                name: name.to_owned(),
                reason,
            })
        };
        match name {
            "caseless" => self.caseless = true,
            "dotall" => self.dotall = true,
            "multiline" => self.multiline = true,
            "extended" => self.extended = true,
            "ungreedy" => self.ungreedy = true,
            "firstline" => self.firstline = true,
            "utf" | "ucp" => self.unicode = Some(true),
            "never_utf" | "never_ucp" => self.unicode = Some(false),
            // Already the regex crate's behaviour, or matcher tuning only.
            "dollar_endonly" | "no_auto_capture" | "no_auto_possess" | "no_dotstar_anchor"
            | "no_start_optimize" | "auto_callout" | "dupnames" | "never_backslash_c"
            | "use_offset_limit" => {}
            "alt_bsux"
            | "allow_empty_class"
            | "match_unset_backref"
            | "alt_circumflex"
            | "alt_verbnames" => {
                return refuse("changes PCRE2 syntax in a way the regex crate cannot follow");
            }
            _ => return refuse("is not a keepalived regex option"),
        }
        Ok(self)
    }

    fn compile(&self, pattern: &str) -> Result<Regex, regex::Error> {
        let mut b = regex::bytes::RegexBuilder::new(pattern);
        b.case_insensitive(self.caseless)
            .dot_matches_new_line(self.dotall)
            .multi_line(self.multiline)
            .ignore_whitespace(self.extended)
            .swap_greed(self.ungreedy);
        if let Some(u) = self.unicode {
            b.unicode(u);
        }
        b.build()
    }
}

impl UrlSpec {
    /// A url accepting 200-299 with no digest or regex.
    ///
    /// ```
    /// let mut u = lb_health::probe::UrlSpec::new("/health");
    /// u.status_codes(&[200..=200, 301..=302]).digest_hex("6f5902ac237024bdd0c176cb93063dc4").unwrap();
    /// ```
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            status: vec![200..=299],
            digest: None,
            regex: None,
            regex_no_match: false,
            regex_min_offset: 0,
            regex_max_offset: None,
            regex_options: RegexOptions::default(),
            virtualhost: None,
        }
    }

    /// Sets `regex_options`.
    pub fn regex_options(&mut self, options: RegexOptions) -> &mut Self {
        self.regex_options = options;
        self
    }

    /// Sets `regex_min_offset` and `regex_max_offset`.
    pub fn regex_offsets(&mut self, min: usize, max: Option<usize>) -> &mut Self {
        self.regex_min_offset = min;
        self.regex_max_offset = max;
        self
    }

    /// Sets the accepted status codes.
    pub fn status_codes(&mut self, codes: &[RangeInclusive<u16>]) -> &mut Self {
        self.status = codes.to_vec();
        self
    }

    /// Sets the digest from 32 hex digits (`genhash` output).
    pub fn digest_hex(&mut self, hex: &str) -> Result<&mut Self, ConfigError> {
        let bytes = crate::wire::udp::parse_hex(hex)?;
        let digest: [u8; 16] = bytes
            .try_into()
            .map_err(|_| ConfigError::UdpPattern { offset: hex.len() })?;
        self.digest = Some(digest);
        Ok(self)
    }

    /// Sets `regex` (or `regex_no_match` when `no_match`).
    pub fn regex(&mut self, pattern: impl Into<String>, no_match: bool) -> &mut Self {
        self.regex = Some(pattern.into());
        self.regex_no_match = no_match;
        self
    }

    /// Sets the Host header for this url.
    pub fn virtualhost(&mut self, host: impl Into<String>) -> &mut Self {
        self.virtualhost = Some(host.into());
        self
    }
}

/// HTTP_GET (without `tls`) or SSL_GET (with).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpSpec {
    /// Where to connect, deadline and read cap.
    pub connect: ConnectSpec,
    /// The `url` blocks (at least one).
    pub urls: Vec<UrlSpec>,
    /// `http_protocol`.
    pub version: HttpVersion,
    /// The check-level `virtualhost`.
    pub virtualhost: Option<String>,
    /// `Some` for SSL_GET.
    pub tls: Option<TlsSpec>,
    /// Parser limits.
    pub limits: Limits,
}

impl HttpSpec {
    /// An HTTP_GET with the given urls, HTTP/1.0, no TLS.
    pub fn new(connect: ConnectSpec, urls: Vec<UrlSpec>) -> Self {
        Self {
            connect,
            urls,
            version: HttpVersion::V10,
            virtualhost: None,
            tls: None,
            limits: Limits::default(),
        }
    }

    /// Makes it an SSL_GET.
    pub fn tls(&mut self, tls: TlsSpec) -> &mut Self {
        self.tls = Some(tls);
        self
    }

    /// Sets `http_protocol`.
    pub fn version(&mut self, version: HttpVersion) -> &mut Self {
        self.version = version;
        self
    }

    /// Sets the check-level virtualhost.
    pub fn virtualhost(&mut self, host: impl Into<String>) -> &mut Self {
        self.virtualhost = Some(host.into());
        self
    }
}

#[derive(Debug)]
struct CompiledUrl {
    request: Vec<u8>,
    status: Vec<RangeInclusive<u16>>,
    digest: Option<[u8; 16]>,
    regex: Option<(Regex, bool)>,
    regex_offsets: (usize, Option<usize>),
    firstline: bool,
}

/// A compiled HTTP_GET / SSL_GET.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    connect: ConnectSpec,
    limits: Limits,
    urls: Vec<CompiledUrl>,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

/// A fetched response, for `genhash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// The de-chunked body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// MD5 of the body, lowercase hex, as `genhash` prints it.
    ///
    /// ```
    /// let f = lb_health::probe::http::Fetched { status: 200, body: b"hello world\n".to_vec() };
    /// assert_eq!(f.digest_hex(), "6f5902ac237024bdd0c176cb93063dc4");
    /// ```
    pub fn digest_hex(&self) -> String {
        Md5::digest(&self.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl HttpProbe {
    pub(crate) fn new(spec: &HttpSpec) -> Result<Self, ConfigError> {
        if spec.urls.is_empty() {
            return Err(ConfigError::NoUrl);
        }
        let tls = match &spec.tls {
            None => None,
            Some(t) => {
                let config = tls::client_config(&t.verify)?;
                let name = match &t.sni {
                    Some(n) => ServerName::try_from(n.clone())
                        .map_err(|e| ConfigError::Tls(format!("sni {n:?}: {e}")))?,
                    None => ServerName::IpAddress(spec.connect.addr.ip().into()),
                };
                Some((config, name))
            }
        };
        let urls = spec
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let regex = u
                    .regex
                    .as_deref()
                    .map(|p| u.regex_options.compile(p).map(|r| (r, u.regex_no_match)))
                    .transpose()
                    .map_err(|source| ConfigError::Regex { url: i, source })?;
                Ok(CompiledUrl {
                    request: request(spec, u),
                    status: u.status.clone(),
                    digest: u.digest,
                    regex,
                    regex_offsets: (u.regex_min_offset, u.regex_max_offset),
                    firstline: u.regex_options.firstline,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self {
            connect: spec.connect.clone(),
            limits: spec.limits,
            urls,
            tls,
        })
    }

    pub(crate) async fn run(&self) -> Result<(), Failure> {
        for url in &self.urls {
            let phase = Phase::default();
            let fetched =
                with_deadline(self.connect.timeout, &phase, self.fetch(url, &phase)).await?;
            url.verify(&fetched)?;
        }
        Ok(())
    }

    async fn fetch(&self, url: &CompiledUrl, phase: &Phase) -> Result<Fetched, Failure> {
        phase.set(Phase::CONNECT);
        let stream = connect_tcp(&self.connect).await?;
        match &self.tls {
            None => {
                let mut stream = stream;
                let r = exchange(
                    &mut stream,
                    &url.request,
                    self.limits,
                    self.connect.max_reply_bytes,
                    phase,
                )
                .await;
                abort(stream);
                r
            }
            Some((config, name)) => {
                phase.set(Phase::TLS);
                let mut tls = TlsConnector::from(config.clone())
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| {
                        Failure::new(FailureClass::L6Tls, format!("TLS handshake: {e}"))
                    })?;
                let r = exchange(
                    &mut tls,
                    &url.request,
                    self.limits,
                    self.connect.max_reply_bytes,
                    phase,
                )
                .await;
                let (tcp, _) = tls.into_inner();
                abort(tcp);
                r
            }
        }
    }
}

impl CompiledUrl {
    fn verify(&self, f: &Fetched) -> Result<(), Failure> {
        if !self.status.iter().any(|r| r.contains(&f.status)) {
            return Err(Failure::new(
                FailureClass::L7Status,
                format!("status {}", f.status),
            ));
        }
        if let Some(want) = self.digest {
            let got: [u8; 16] = Md5::digest(&f.body).into();
            if got != want {
                return Err(Failure::new(
                    FailureClass::L7Digest,
                    format!("digest {}", f.digest_hex()),
                ));
            }
        }
        if let Some((re, no_match)) = &self.regex
            && self.regex_matches(re, &f.body) == *no_match
        {
            let what = if *no_match {
                "matches"
            } else {
                "does not match"
            };
            return Err(Failure::new(
                FailureClass::L7Regex,
                format!("body {what} the regex"),
            ));
        }
        Ok(())
    }
}

impl CompiledUrl {
    /// Whether a match starts within `[min_offset, max_offset]`. The
    /// leftmost match at or after `min` decides: if it starts after `max`,
    /// none starts in range.
    /// `firstline` lowers `max_offset` to the first newline at or after
    /// `min_offset`.
    fn regex_matches(&self, re: &Regex, body: &[u8]) -> bool {
        let (min, mut max) = self.regex_offsets;
        if min > body.len() {
            return false;
        }
        if self.firstline
            && let Some(nl) = body[min..].iter().position(|&b| b == b'\n')
        {
            max = Some(max.map_or(min + nl, |m| m.min(min + nl)));
        }
        re.find_at(body, min)
            .is_some_and(|m| max.is_none_or(|max| m.start() <= max))
    }
}

/// keepalived's request bytes.
fn request(spec: &HttpSpec, url: &UrlSpec) -> Vec<u8> {
    let host = match url.virtualhost.as_ref().or(spec.virtualhost.as_ref()) {
        Some(h) => h.clone(),
        None => match spec.connect.addr {
            std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        },
    };
    let (v, close) = match spec.version {
        HttpVersion::V10 => ("1.0", ""),
        HttpVersion::V10Close => ("1.0", "Connection: close\r\n"),
        HttpVersion::V11 => ("1.1", "Connection: close\r\n"),
    };
    format!(
        "GET {} HTTP/{v}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n",
        url.path
    )
    .into_bytes()
}

/// Sends the request and parses the reply, within the caller's deadline.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    limits: Limits,
    cap: usize,
    phase: &Phase,
) -> Result<Fetched, Failure> {
    phase.set(Phase::REPLY);
    stream
        .write_all(request)
        .await
        .map_err(|e| Failure::new(FailureClass::L7Closed, format!("send request: {e}")))?;
    let _ = stream.flush().await;
    let mut parser = ResponseParser::new(limits);
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let malformed = |e: crate::wire::http::ParseError| {
        let class = if e.kind == ParseErrorKind::Truncated {
            FailureClass::L7Closed
        } else {
            FailureClass::L7Malformed
        };
        Failure::new(class, e.to_string())
    };
    while !parser.is_done() {
        let n = read_capped(stream, &mut buf, &mut total, cap).await?;
        if n == 0 {
            parser.finish().map_err(malformed)?;
            break;
        }
        parser.feed(&buf[..n]).map_err(malformed)?;
    }
    let r = parser.response().ok_or_else(|| {
        Failure::new(
            FailureClass::L7Closed,
            "connection closed before a response",
        )
    })?;
    Ok(Fetched {
        status: r.status,
        body: r.body.to_vec(),
    })
}

/// Fetches `spec.urls[index]` once (no checks), for `genhash`.
///
/// ```no_run
/// # async fn f() {
/// use lb_health::probe::{ConnectSpec, HttpSpec, UrlSpec, http::fetch};
/// let spec = HttpSpec::new(ConnectSpec::new("127.0.0.1:80".parse().unwrap()), vec![UrlSpec::new("/")]);
/// let page = fetch(&spec, 0).await.unwrap();
/// println!("{}", page.digest_hex());
/// # }
/// ```
pub async fn fetch(spec: &HttpSpec, index: usize) -> Result<Fetched, Failure> {
    let probe =
        HttpProbe::new(spec).map_err(|e| Failure::new(FailureClass::Local, e.to_string()))?;
    let url = probe
        .urls
        .get(index)
        .ok_or_else(|| Failure::new(FailureClass::Local, "no such url"))?;
    let phase = Phase::default();
    with_deadline(spec.connect.timeout, &phase, probe.fetch(url, &phase)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn request_bytes_match_keepalived() {
        let mut spec = HttpSpec::new(
            ConnectSpec::new("10.0.0.1:8080".parse().unwrap()),
            vec![UrlSpec::new("/a")],
        );
        assert_eq!(
            request(&spec, &spec.urls[0]),
            b"GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:8080\r\n\r\n"
        );
        spec.version(HttpVersion::V11).virtualhost("www.example");
        assert_eq!(
            request(&spec, &spec.urls[0]),
            b"GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example\r\n\r\n"
        );
        let v6 = HttpSpec::new(
            ConnectSpec::new("[::1]:80".parse().unwrap()),
            vec![UrlSpec::new("/")],
        );
        assert_eq!(
            request(&v6, &v6.urls[0]),
            b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:80\r\n\r\n"
        );
        let mut u = UrlSpec::new("/b");
        u.virtualhost("url.example");
        assert!(
            String::from_utf8(request(&spec, &u))
                .unwrap()
                .contains("Host: url.example\r\n")
        );
    }

    #[test]
    fn verify_order_and_classes() {
        let mut u = UrlSpec::new("/");
        u.status_codes(&[200..=200])
            .digest_hex("6f5902ac237024bdd0c176cb93063dc4")
            .unwrap();
        u.regex("^hello", false);
        let spec = HttpSpec::new(ConnectSpec::new("127.0.0.1:1".parse().unwrap()), vec![u]);
        let p = HttpProbe::new(&spec).unwrap();
        let ok = Fetched {
            status: 200,
            body: b"hello world\n".to_vec(),
        };
        assert_eq!(p.urls[0].verify(&ok), Ok(()));
        let class = |status, body: &[u8]| {
            p.urls[0]
                .verify(&Fetched {
                    status,
                    body: body.to_vec(),
                })
                .unwrap_err()
                .class
        };
        assert_eq!(class(500, b"hello world\n"), FailureClass::L7Status);
        assert_eq!(class(200, b"hello world!"), FailureClass::L7Digest);
        let mut u = UrlSpec::new("/");
        u.regex("error", true);
        let spec = HttpSpec::new(ConnectSpec::new("127.0.0.1:1".parse().unwrap()), vec![u]);
        let p = HttpProbe::new(&spec).unwrap();
        assert_eq!(
            p.urls[0]
                .verify(&Fetched {
                    status: 200,
                    body: b"an error".to_vec()
                })
                .unwrap_err()
                .class,
            FailureClass::L7Regex
        );
        assert!(
            p.urls[0]
                .verify(&Fetched {
                    status: 200,
                    body: b"fine".to_vec()
                })
                .is_ok()
        );
    }

    /// A byte every 50 ms of virtual time: the one deadline ends the
    /// exchange at exactly 400 ms, whatever the per-byte pace.
    #[tokio::test(start_paused = true)]
    async fn drip_is_cut_at_the_deadline_on_a_virtual_clock() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut req = [0u8; 128];
            let _ = server.read(&mut req).await;
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                .iter()
                .chain(&[b'x'; 1000])
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if server.write_all(std::slice::from_ref(b)).await.is_err() {
                    return;
                }
            }
        });
        let start = tokio::time::Instant::now();
        let phase = Phase::default();
        let r = with_deadline(
            Duration::from_millis(400),
            &phase,
            exchange(
                &mut client,
                b"GET / HTTP/1.0\r\n\r\n",
                Limits::default(),
                1 << 20,
                &phase,
            ),
        )
        .await;
        assert_eq!(r.unwrap_err().class, FailureClass::L7Timeout);
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_classed_by_phase() {
        for (p, class) in [
            (Phase::CONNECT, FailureClass::L4Timeout),
            (Phase::TLS, FailureClass::L6Timeout),
            (Phase::REPLY, FailureClass::L7Timeout),
        ] {
            let phase = Phase::default();
            let r: Result<(), Failure> = with_deadline(Duration::from_secs(5), &phase, async {
                phase.set(p);
                std::future::pending().await
            })
            .await;
            assert_eq!(r.unwrap_err().class, class);
        }
    }

    #[test]
    fn regex_options_change_what_matches() {
        let matches = |pattern: &str, options: &[&str], body: &[u8]| {
            let mut o = RegexOptions::default();
            for name in options {
                o.set(name).unwrap();
            }
            let mut u = UrlSpec::new("/");
            u.regex(pattern, false).regex_options(o);
            let spec = HttpSpec::new(ConnectSpec::new("127.0.0.1:1".parse().unwrap()), vec![u]);
            let f = Fetched {
                status: 200,
                body: body.to_vec(),
            };
            HttpProbe::new(&spec).unwrap().urls[0].verify(&f).is_ok()
        };
        assert!(!matches("status: ok", &[], b"STATUS: OK"));
        assert!(matches("status: ok", &["caseless"], b"STATUS: OK"));
        assert!(!matches("a.b", &[], b"a\nb"));
        assert!(matches("a.b", &["dotall"], b"a\nb"));
        assert!(!matches("^ok$", &[], b"x\nok\ny"));
        assert!(matches("^ok$", &["multiline"], b"x\nok\ny"));
        assert!(matches("o k # a comment", &["extended"], b"ok"));
        // Ungreedy swaps `+` and `+?` (it moves where a match ends, never
        // whether one exists).
        let mut o = RegexOptions::default();
        let span = |o: &RegexOptions, p| o.compile(p).unwrap().find(b"<a><b>").unwrap().end();
        assert_eq!((span(&o, "<.+>"), span(&o, "<.+?>")), (6, 3));
        o.set("ungreedy").unwrap();
        assert_eq!((span(&o, "<.+>"), span(&o, "<.+?>")), (3, 6));
        assert!(matches("é", &["never_utf"], "café".as_bytes()));
        assert!(matches("^caf.$", &["utf"], "café".as_bytes()));
        assert!(!matches("^caf.$", &["never_utf"], "café".as_bytes()));
        // Firstline: the match must start on the first line.
        assert!(matches("ok", &[], b"header\nok"));
        assert!(!matches("ok", &["firstline"], b"header\nok"));
        assert!(matches("ok", &["firstline"], b"ok\nheader"));
        assert!(matches("er\nok", &["firstline"], b"header\nok"));
        // Matcher tuning only: accepted, no effect.
        assert!(matches(
            "ok",
            &["no_start_optimize", "dupnames", "dollar_endonly"],
            b"ok"
        ));
        for bad in ["alt_bsux", "allow_empty_class", "CASELESS", ""] {
            assert!(
                matches!(
                    RegexOptions::default().set(bad),
                    Err(ConfigError::RegexOption { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn regex_offsets_bound_where_a_match_starts() {
        let body = Fetched {
            status: 200,
            body: b"aaa OK bbb OK".to_vec(),
        };
        let check = |min, max| {
            let mut u = UrlSpec::new("/");
            u.regex("OK", false).regex_offsets(min, max);
            let spec = HttpSpec::new(ConnectSpec::new("127.0.0.1:1".parse().unwrap()), vec![u]);
            HttpProbe::new(&spec).unwrap().urls[0].verify(&body).is_ok()
        };
        assert!(check(0, None));
        assert!(check(4, Some(4)));
        assert!(!check(5, Some(10)));
        assert!(check(5, Some(11)));
        assert!(!check(12, None));
        assert!(!check(100, None));
    }

    #[test]
    fn bad_specs_are_config_errors() {
        let c = ConnectSpec::new("127.0.0.1:1".parse().unwrap());
        assert!(matches!(
            HttpProbe::new(&HttpSpec::new(c.clone(), vec![])),
            Err(ConfigError::NoUrl)
        ));
        let mut u = UrlSpec::new("/");
        u.regex("(", false);
        assert!(matches!(
            HttpProbe::new(&HttpSpec::new(c.clone(), vec![UrlSpec::new("/"), u])),
            Err(ConfigError::Regex { url: 1, .. })
        ));
        assert!(UrlSpec::new("/").digest_hex("abcd").is_err());
        let mut spec = HttpSpec::new(c, vec![UrlSpec::new("/")]);
        spec.tls(TlsSpec {
            sni: None,
            verify: TlsVerify::CaFile("/nonexistent/ca.pem".into()),
        });
        assert!(matches!(HttpProbe::new(&spec), Err(ConfigError::Tls(_))));
    }
}
