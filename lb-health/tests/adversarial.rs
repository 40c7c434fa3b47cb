//! Adversarial fake servers on 127.0.0.1: each misbehaviour must map to the
//! right failure class, and the total deadline must hold (asserted with a
//! generous slack, not a tight threshold).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lb_health::FailureClass;
use lb_health::probe::{
    ConnectSpec, DnsSpec, FileSpec, HttpSpec, HttpVersion, MiscSpec, PingSpec, Probe, ProbeSpec,
    SmtpSpec, TlsSpec, TlsVerify, UdpSpec, UrlSpec,
};
use lb_health::wire::dns::QueryType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Slack on top of a deadline: the machine is shared and noisy.
const SLACK: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_millis(400);
const HELLO_MD5: &str = "6f5902ac237024bdd0c176cb93063dc4"; // md5("hello world\n")

/// Serves every connection with `handler`.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handler(s));
        }
    });
    addr
}

/// Reads until the blank line ending a request head.
async fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let mut req = Vec::new();
    let mut b = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => req.push(b[0]),
            _ => break,
        }
    }
    req
}

/// An HTTP server replying `reply` in pieces of `piece` bytes, `gap` apart.
async fn http_server(reply: &'static [u8], piece: usize, gap: Duration) -> SocketAddr {
    serve(move |mut s| async move {
        read_request(&mut s).await;
        for c in reply.chunks(piece) {
            if s.write_all(c).await.is_err() {
                return;
            }
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
    })
    .await
}

fn connect(addr: SocketAddr) -> ConnectSpec {
    let mut c = ConnectSpec::new(addr);
    c.timeout(DEADLINE);
    c
}

fn http(addr: SocketAddr, url: UrlSpec) -> Probe {
    Probe::new(&ProbeSpec::Http(HttpSpec::new(connect(addr), vec![url]))).unwrap()
}

fn digest_url() -> UrlSpec {
    let mut u = UrlSpec::new("/");
    u.digest_hex(HELLO_MD5).unwrap();
    u
}

/// Runs the probe and returns its failure class (or None) and the time taken.
async fn run(p: &Probe) -> (Option<FailureClass>, Duration) {
    let t = Instant::now();
    let r = p.run().await;
    (r.err().map(|f| f.class), t.elapsed())
}

async fn class_of(p: &Probe) -> Option<FailureClass> {
    let (c, took) = run(p).await;
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    c
}

/// A port with nothing listening.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

const OK_CL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n";
const OK_CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld\n\r\n0\r\n\r\n";

#[tokio::test]
async fn tcp_check_up_and_refused() {
    let addr = serve(|_s| async {}).await;
    let p = Probe::new(&ProbeSpec::Tcp(connect(addr))).unwrap();
    assert_eq!(class_of(&p).await, None);
    let mut c = connect(addr);
    c.bind("127.0.0.1:0".parse().unwrap());
    assert_eq!(
        class_of(&Probe::new(&ProbeSpec::Tcp(c)).unwrap()).await,
        None
    );
    let p = Probe::new(&ProbeSpec::Tcp(connect(closed_port().await))).unwrap();
    assert_eq!(class_of(&p).await, Some(FailureClass::L4Refused));
}

#[tokio::test]
async fn fwmark_and_bind_if() {
    let addr = serve(|_s| async {}).await;
    let mut c = connect(addr);
    c.fwmark(0x1234).bind_if("lo");
    let p = Probe::new(&ProbeSpec::Tcp(c)).unwrap();
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if is_root.ok() != Some(true) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs this as root"
        );
        // Without the capabilities the options are refused: a local failure.
        assert_eq!(class_of(&p).await, Some(FailureClass::Local));
        eprintln!("skipping the privileged half: SO_MARK needs root");
        return;
    }
    assert_eq!(class_of(&p).await, None);
    // Bound to an interface that does not reach 127.0.0.1 (or does not exist).
    let mut c = connect(addr);
    c.bind_if("lb-health-nonexistent0");
    assert_eq!(
        class_of(&Probe::new(&ProbeSpec::Tcp(c)).unwrap()).await,
        Some(FailureClass::Local)
    );
}

#[tokio::test]
async fn tcp_connect_timeout_is_l4() {
    // A listener whose backlog is full never completes the handshake.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let p = Probe::new(&ProbeSpec::Tcp(connect(addr))).unwrap();
    let (class, took) = run(&p).await;
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    // Linux may still accept into a full backlog on loopback; if the
    // connection opened, the check rightly passed.
    assert!(
        matches!(class, None | Some(FailureClass::L4Timeout)),
        "{class:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn http_byte_by_byte_content_length_and_chunked() {
    for reply in [OK_CL, OK_CHUNKED] {
        let addr = http_server(reply, 1, Duration::ZERO).await;
        assert_eq!(class_of(&http(addr, digest_url())).await, None);
    }
    // HTTP/1.0 without Content-Length: the body ends at close.
    let addr = http_server(b"HTTP/1.0 200 OK\r\n\r\nhello world\n", 3, Duration::ZERO).await;
    let mut spec = HttpSpec::new(connect(addr), vec![digest_url()]);
    spec.version(HttpVersion::V11);
    assert_eq!(
        class_of(&Probe::new(&ProbeSpec::Http(spec)).unwrap()).await,
        None
    );
}

#[tokio::test]
async fn http_slow_drip_hits_the_total_deadline() {
    // Each byte arrives well within any per-read timeout; the whole reply
    // would take about 60 * 50 ms = 3 s.
    let addr = http_server(OK_CL, 1, Duration::from_millis(50)).await;
    let (class, took) = run(&http(addr, digest_url())).await;
    assert_eq!(class, Some(FailureClass::L7Timeout));
    assert!(took >= DEADLINE, "took {took:?}");
    assert!(took < DEADLINE + SLACK, "took {took:?}");
}

/// Each url is its own exchange with its own deadline (keepalived times each
/// url's connection): two urls that each answer in 0.65 deadlines pass
/// together, where one deadline over the whole check would cut the second;
/// a url slower than the deadline still fails on its own.
#[tokio::test]
async fn http_each_url_has_its_own_deadline() {
    let deadline = Duration::from_secs(2);
    let addr = serve(|mut s| async move {
        let req = read_request(&mut s).await;
        let pause = if req.starts_with(b"GET /slow ") {
            3000
        } else {
            1300
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let _ = s.write_all(OK_CL).await;
    })
    .await;
    let probe = |paths: [&str; 2]| {
        let mut c = ConnectSpec::new(addr);
        c.timeout(deadline);
        let urls = paths
            .map(|p| {
                let mut u = UrlSpec::new(p);
                u.digest_hex(HELLO_MD5).unwrap();
                u
            })
            .into();
        Probe::new(&ProbeSpec::Http(HttpSpec::new(c, urls))).unwrap()
    };
    let (class, took) = run(&probe(["/a", "/b"])).await;
    assert_eq!(class, None);
    assert!(took > deadline, "took {took:?}");
    let (class, took) = run(&probe(["/a", "/slow"])).await;
    assert_eq!(class, Some(FailureClass::L7Timeout));
    assert!(
        took >= deadline + Duration::from_millis(1300),
        "took {took:?}"
    );
    assert!(took < 2 * deadline + SLACK, "took {took:?}");
}

#[tokio::test]
async fn http_silent_server_is_l7_timeout() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Timeout)
    );
}

#[tokio::test]
async fn http_malformed_and_oversized() {
    let cases: [&'static [u8]; 4] = [
        b"aa aaaaHTTP/1.1aa200\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: 1\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ];
    for reply in cases {
        let addr = http_server(reply, 64, Duration::ZERO).await;
        assert_eq!(
            class_of(&http(addr, UrlSpec::new("/"))).await,
            Some(FailureClass::L7Malformed)
        );
    }
    // An endless status line / header line: the line limit stops it.
    for prefix in [&b""[..], &b"HTTP/1.1 200 OK\r\nX-Big: "[..]] {
        let addr = serve(move |mut s| async move {
            read_request(&mut s).await;
            let _ = s.write_all(prefix).await;
            let junk = vec![b'a'; 64 * 1024];
            for _ in 0..100 {
                if s.write_all(&junk).await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert_eq!(
            class_of(&http(addr, UrlSpec::new("/"))).await,
            Some(FailureClass::L7Malformed)
        );
    }
    // A body beyond the read cap.
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
        let junk = vec![b'b'; 64 * 1024];
        for _ in 0..100 {
            if s.write_all(&junk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut c = connect(addr);
    c.max_reply_bytes(100_000);
    let p = Probe::new(&ProbeSpec::Http(HttpSpec::new(c, vec![UrlSpec::new("/")]))).unwrap();
    assert_eq!(class_of(&p).await, Some(FailureClass::L7Malformed));
}

fn rst(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[tokio::test]
async fn http_reset_before_and_after_request() {
    // Before: accept and reset at once (xinetd-style, keepalived #180).
    let addr = serve(|s| async move { rst(s) }).await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Closed)
    );
    // After the request, before any reply.
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        rst(s);
    })
    .await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Closed)
    );
    // In the middle of the body.
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        rst(s);
    })
    .await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Closed)
    );
    // Clean close mid-body is a truncated reply, also L7Closed.
    let addr = http_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf",
        64,
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Closed)
    );
}

#[tokio::test]
async fn http_reply_before_request_then_close_is_up() {
    // xinetd-style (keepalived #180): the whole reply is written at accept,
    // before the request is read, then the socket is closed (so our request
    // may draw a RST). The complete reply was queued before any RST.
    let addr = serve(|mut s| async move {
        let _ = s.write_all(OK_CL).await;
        drop(s);
    })
    .await;
    for _ in 0..5 {
        assert_eq!(class_of(&http(addr, digest_url())).await, None);
    }
}

#[tokio::test]
async fn http_status_digest_regex_and_host_header() {
    let addr = http_server(
        b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        64,
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        class_of(&http(addr, UrlSpec::new("/"))).await,
        Some(FailureClass::L7Status)
    );
    let mut u = UrlSpec::new("/");
    u.status_codes(&[500..=503]);
    assert_eq!(class_of(&http(addr, u)).await, None);

    let addr = http_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello World\n",
        5,
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        class_of(&http(addr, digest_url())).await,
        Some(FailureClass::L7Digest)
    );
    let mut u = UrlSpec::new("/");
    u.regex("(?i)^hello world", false);
    assert_eq!(class_of(&http(addr, u)).await, None);
    let mut u = UrlSpec::new("/");
    u.regex("World", true);
    assert_eq!(class_of(&http(addr, u)).await, Some(FailureClass::L7Regex));

    // The Host header and path reach the server.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let addr = serve(move |mut s| {
        let seen = seen2.clone();
        async move {
            let req = read_request(&mut s).await;
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req).into_owned());
            let _ = s.write_all(OK_CL).await;
        }
    })
    .await;
    let mut u1 = digest_url();
    u1.virtualhost("www.example");
    let mut u2 = UrlSpec::new("/second");
    u2.status_codes(&[200..=200]);
    let spec = HttpSpec::new(connect(addr), vec![u1, u2]);
    assert_eq!(
        class_of(&Probe::new(&ProbeSpec::Http(spec)).unwrap()).await,
        None
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one connection per url");
    assert!(seen[0].starts_with("GET / HTTP/1.0\r\n") && seen[0].contains("Host: www.example\r\n"));
    assert!(
        seen[1].starts_with("GET /second HTTP/1.0\r\n")
            && seen[1].contains(&format!("Host: {addr}\r\n"))
    );
}

// ---- TLS ----

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
}

fn tls_server_config() -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: ck.cert.pem(),
    }
}

/// Replies `reply` over TLS, then shuts down cleanly (close_notify) or
/// just drops the connection.
async fn tls_server_replying(
    acceptor: tokio_rustls::TlsAcceptor,
    reply: &'static [u8],
    close_notify: bool,
) -> SocketAddr {
    serve(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            let mut b = [0u8; 512];
            let _ = tls.read(&mut b).await;
            let _ = tls.write_all(reply).await;
            let _ = tls.flush().await;
            if close_notify {
                let _ = tls.shutdown().await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn ssl_get_body_until_close_without_close_notify() {
    let tls = tls_server_config();
    // HTTP/1.0, no Content-Length: the body ends when the connection does.
    let reply: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nhello world\n";
    for close_notify in [true, false] {
        let addr = tls_server_replying(tls.acceptor.clone(), reply, close_notify).await;
        assert_eq!(
            class_of(&ssl_probe(addr, TlsSpec::new())).await,
            None,
            "close_notify {close_notify}"
        );
    }
    // A truncated Content-Length body is still caught.
    let addr = tls_server_replying(
        tls.acceptor.clone(),
        b"HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\nhello",
        false,
    )
    .await;
    assert_eq!(
        class_of(&ssl_probe(addr, TlsSpec::new())).await,
        Some(FailureClass::L7Closed)
    );
}

async fn tls_http_server(
    acceptor: tokio_rustls::TlsAcceptor,
    sni_seen: Arc<std::sync::Mutex<Option<String>>>,
) -> SocketAddr {
    serve(move |s| {
        let acceptor = acceptor.clone();
        let sni_seen = sni_seen.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            *sni_seen.lock().unwrap() = tls.get_ref().1.server_name().map(str::to_owned);
            let mut req = Vec::new();
            let mut b = [0u8; 256];
            while !req.ends_with(b"\r\n\r\n") {
                match tls.read(&mut b).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = tls.write_all(OK_CHUNKED).await;
            let _ = tls.shutdown().await;
        }
    })
    .await
}

fn ssl_probe(addr: SocketAddr, tls: TlsSpec) -> Probe {
    let mut spec = HttpSpec::new(connect(addr), vec![digest_url()]);
    spec.tls(tls).version(HttpVersion::V11);
    Probe::new(&ProbeSpec::Http(spec)).unwrap()
}

#[tokio::test]
async fn ssl_get_no_verify_verify_and_sni() {
    let tls = tls_server_config();
    let sni = Arc::new(std::sync::Mutex::new(None));
    let addr = tls_http_server(tls.acceptor.clone(), sni.clone()).await;
    // keepalived's default: no verification, no SNI.
    assert_eq!(class_of(&ssl_probe(addr, TlsSpec::new())).await, None);
    assert_eq!(*sni.lock().unwrap(), None);
    // Verification against the self-signed CA, with the right SNI name.
    let dir = std::env::temp_dir().join(format!("lb-health-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let mut t = TlsSpec::new();
    t.sni("localhost").verify(TlsVerify::CaFile(ca.clone()));
    assert_eq!(class_of(&ssl_probe(addr, t)).await, None);
    assert_eq!(sni.lock().unwrap().as_deref(), Some("localhost"));
    // The wrong name fails verification: L6.
    let mut t = TlsSpec::new();
    t.sni("other.example").verify(TlsVerify::CaFile(ca));
    assert_eq!(
        class_of(&ssl_probe(addr, t)).await,
        Some(FailureClass::L6Tls)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ssl_get_handshake_failures() {
    // A plain-HTTP server on the TLS port answers the ClientHello with text.
    let a = serve(move |mut s| async move {
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    assert_eq!(
        class_of(&ssl_probe(a, TlsSpec::new())).await,
        Some(FailureClass::L6Tls)
    );
    // A server that never answers the ClientHello: L6 timeout.
    let a = serve(|s| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    assert_eq!(
        class_of(&ssl_probe(a, TlsSpec::new())).await,
        Some(FailureClass::L6Timeout)
    );
}

// ---- SMTP ----

async fn smtp_server(banner: &'static [u8], helo_reply: &'static [u8]) -> SocketAddr {
    serve(move |mut s| async move {
        let _ = s.write_all(banner).await;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\n") {
            match s.read(&mut b).await {
                Ok(1) => line.push(b[0]),
                _ => return,
            }
        }
        if line.starts_with(b"HELO lb.test\r\n") {
            let _ = s.write_all(helo_reply).await;
        }
        let _ = s.read(&mut b).await;
    })
    .await
}

fn smtp(addr: SocketAddr) -> Probe {
    Probe::new(&ProbeSpec::Smtp(SmtpSpec::new(connect(addr), "lb.test"))).unwrap()
}

#[tokio::test]
async fn smtp_right_and_wrong() {
    let ok = smtp_server(b"220-mx ESMTP\r\n220 ready\r\n", b"250 hi\r\n").await;
    assert_eq!(class_of(&smtp(ok)).await, None);
    let busy = smtp_server(b"554 go away\r\n", b"250 hi\r\n").await;
    assert_eq!(class_of(&smtp(busy)).await, Some(FailureClass::L7Status));
    let helo = smtp_server(b"220 ready\r\n", b"501 bad helo\r\n").await;
    assert_eq!(class_of(&smtp(helo)).await, Some(FailureClass::L7Status));
    let garbage = smtp_server(b"SSH-2.0-OpenSSH\r\n", b"").await;
    assert_eq!(
        class_of(&smtp(garbage)).await,
        Some(FailureClass::L7Malformed)
    );
    let mixed = smtp_server(b"220-a\r\n250 b\r\n", b"").await;
    assert_eq!(
        class_of(&smtp(mixed)).await,
        Some(FailureClass::L7Malformed)
    );
    let silent = smtp_server(b"", b"").await;
    assert_eq!(class_of(&smtp(silent)).await, Some(FailureClass::L7Timeout));
}

// ---- DNS ----

/// A UDP server answering each query with `reply(query)` (None: silence).
async fn udp_server(reply: fn(&[u8]) -> Vec<Vec<u8>>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            for r in reply(&buf[..n]) {
                let _ = sock.send_to(&r, from).await;
            }
        }
    });
    addr
}

fn dns_answer(q: &[u8], rcode: u8, ancount: u16) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2] |= 0x80;
    r[3] = 0x80 | rcode;
    r[6..8].copy_from_slice(&ancount.to_be_bytes());
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    r
}

fn dns(addr: SocketAddr) -> Probe {
    let mut d = DnsSpec::new(connect(addr));
    d.query("www.example.com", QueryType::A);
    Probe::new(&ProbeSpec::Dns(d)).unwrap()
}

#[tokio::test]
async fn dns_right_and_wrong() {
    let ok = udp_server(|q| vec![dns_answer(q, 0, 1)]).await;
    assert_eq!(class_of(&dns(ok)).await, None);
    // A stray reply with another ID first is ignored.
    let stray = udp_server(|q| {
        let mut other = dns_answer(q, 0, 1);
        other[0] ^= 0xff;
        vec![other, dns_answer(q, 0, 1)]
    })
    .await;
    assert_eq!(class_of(&dns(stray)).await, None);
    let nx = udp_server(|q| vec![dns_answer(q, 3, 0)]).await;
    assert_eq!(class_of(&dns(nx)).await, Some(FailureClass::L7Status));
    let empty = udp_server(|q| vec![dns_answer(q, 0, 0)]).await;
    assert_eq!(class_of(&dns(empty)).await, Some(FailureClass::L7Mismatch));
    let wrong_q = udp_server(|q| {
        let mut r = dns_answer(q, 0, 1);
        r[13] = b'z';
        vec![r]
    })
    .await;
    assert_eq!(
        class_of(&dns(wrong_q)).await,
        Some(FailureClass::L7Mismatch)
    );
    let silent = udp_server(|_| vec![]).await;
    assert_eq!(class_of(&dns(silent)).await, Some(FailureClass::L7Timeout));
    let closed = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(class_of(&dns(closed)).await, Some(FailureClass::L4Refused));
}

// ---- UDP ----

fn udp(addr: SocketAddr, pattern: Option<&str>) -> Probe {
    let mut u = UdpSpec::new(connect(addr), "70696e67"); // "ping"
    if let Some(p) = pattern {
        u.require_reply(p);
    }
    Probe::new(&ProbeSpec::Udp(u)).unwrap()
}

#[tokio::test]
async fn udp_reply_patterns_and_refusal() {
    let pong = udp_server(|q| {
        vec![if q == b"ping" {
            b"pong".to_vec()
        } else {
            b"what".to_vec()
        }]
    })
    .await;
    assert_eq!(class_of(&udp(pong, Some("70 6f XX"))).await, None);
    assert_eq!(
        class_of(&udp(pong, Some("70 70"))).await,
        Some(FailureClass::L7Mismatch)
    );
    assert_eq!(class_of(&udp(pong, None)).await, None);
    let silent = udp_server(|_| vec![]).await;
    assert_eq!(
        class_of(&udp(silent, Some("70"))).await,
        Some(FailureClass::L7Timeout)
    );
    // Without require_reply, silence is success (keepalived relies on ICMP errors).
    assert_eq!(class_of(&udp(silent, None)).await, None);
    let closed = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        class_of(&udp(closed, None)).await,
        Some(FailureClass::L4Refused)
    );
    assert_eq!(
        class_of(&udp(closed, Some("70"))).await,
        Some(FailureClass::L4Refused)
    );
}

// ---- PING ----

fn ping(addr: &str) -> Probe {
    let mut p = PingSpec::new(addr.parse().unwrap());
    p.timeout = DEADLINE;
    Probe::new(&ProbeSpec::Ping(p)).unwrap()
}

/// Whether this process may open an ICMP socket at all (datagram via
/// ping_group_range, or raw with CAP_NET_RAW).
fn icmp_allowed() -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).is_ok()
        || Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).is_ok()
}

#[tokio::test]
async fn ping_loopback_v4_v6_and_unreachable() {
    if !icmp_allowed() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs ICMP sockets"
        );
        eprintln!("skipping: no ICMP socket (neither ping_group_range nor CAP_NET_RAW)");
        return;
    }
    assert_eq!(class_of(&ping("127.0.0.1")).await, None);
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        assert_eq!(class_of(&ping("::1")).await, None);
    }
    // The IPv6 documentation prefix (RFC 3849): no reply, or no route.
    // (Not an IPv4 TEST-NET address: in some sandboxes that is the gateway.)
    let c = class_of(&ping("2001:db8::1")).await;
    assert!(
        matches!(
            c,
            Some(FailureClass::L4Timeout | FailureClass::L4Unreachable | FailureClass::L4Error)
        ),
        "{c:?}"
    );
}

// ---- MISC ----

fn misc(cmd: &str, dynamic: bool) -> Probe {
    let mut m = MiscSpec::from_command_line(cmd, DEADLINE).unwrap();
    m.dynamic(dynamic);
    Probe::new(&ProbeSpec::Misc(m)).unwrap()
}

#[tokio::test]
async fn misc_exit_codes_dynamic_weight_and_timeout() {
    assert_eq!(misc("/bin/true", false).run().await, Ok(None));
    assert_eq!(
        class_of(&misc("/bin/false", false)).await,
        Some(FailureClass::ScriptFailed)
    );
    assert_eq!(misc("/bin/sh -c \"exit 7\"", true).run().await, Ok(Some(5)));
    assert_eq!(
        class_of(&misc("/bin/sh -c \"exit 1\"", true)).await,
        Some(FailureClass::ScriptFailed)
    );
    assert_eq!(
        class_of(&misc("/bin/sh -c \"exit 7\"", false)).await,
        Some(FailureClass::ScriptFailed)
    );
    assert_eq!(
        class_of(&misc("/nonexistent/script", false)).await,
        Some(FailureClass::ScriptFailed)
    );
    // A script (and its child) running past the timeout: the group is killed.
    let dir = std::env::temp_dir().join(format!("lb-health-misc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("child-survived");
    let cmd = format!(
        "/bin/sh -c \"(sleep 1; touch {}) & sleep 30\"",
        marker.display()
    );
    let (class, took) = run(&misc(&cmd, false)).await;
    assert_eq!(class, Some(FailureClass::ScriptTimeout));
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "the script's child outlived the timeout");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn misc_runs_as_another_user() {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if is_root.ok() != Some(true) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs this as root"
        );
        eprintln!("skipping: changing uid needs root");
        return;
    }
    let mut m =
        MiscSpec::from_command_line("/bin/sh -c \"test $(id -u) = 65534\"", DEADLINE).unwrap();
    m.user(65534, 65534);
    assert_eq!(
        Probe::new(&ProbeSpec::Misc(m)).unwrap().run().await,
        Ok(None)
    );
}

// ---- FILE ----

#[tokio::test]
async fn file_check_values() {
    let dir = std::env::temp_dir().join(format!("lb-health-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rs1");
    let mut spec = FileSpec::new(&path);
    let p = Probe::new(&ProbeSpec::File(spec.clone())).unwrap();
    assert_eq!(
        class_of(&p).await,
        Some(FailureClass::FileState),
        "missing file"
    );
    std::fs::write(&path, "0\n").unwrap();
    assert_eq!(p.run().await, Ok(None));
    std::fs::write(&path, "1\n").unwrap();
    assert_eq!(class_of(&p).await, Some(FailureClass::FileState));
    spec.weight = 10;
    spec.base_weight = 5;
    let p = Probe::new(&ProbeSpec::File(spec)).unwrap();
    std::fs::write(&path, "2").unwrap();
    assert_eq!(p.run().await, Ok(Some(25)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts connections accepted.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let addr = serve(move |_s| {
        n2.fetch_add(1, Ordering::SeqCst);
        async {}
    })
    .await;
    (addr, n)
}

#[tokio::test]
async fn tcp_check_opens_one_connection_per_run() {
    let (addr, n) = counting_server().await;
    let p = Probe::new(&ProbeSpec::Tcp(connect(addr))).unwrap();
    for _ in 0..3 {
        assert_eq!(p.run().await, Ok(None));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(n.load(Ordering::SeqCst), 3);
}
