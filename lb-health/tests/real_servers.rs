//! Checks against real servers: python3's http.server (digest compared with
//! keepalived's own `genhash`) and haproxy (HTTP and TLS). When a tool is
//! missing the test skips with a reason, unless `CI=true`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lb_health::probe::http::fetch;
use lb_health::probe::{ConnectSpec, HttpSpec, HttpVersion, Probe, ProbeSpec, TlsSpec, UrlSpec};

/// Kills the child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs {tool}"
        );
        eprintln!("skipping: {tool} not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lb-health-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits until something accepts on `addr`.
async fn wait_listening(addr: SocketAddr) {
    let t = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{addr} never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spec(addr: SocketAddr, url: UrlSpec) -> HttpSpec {
    HttpSpec::new(ConnectSpec::new(addr), vec![url])
}

#[tokio::test]
async fn python_http_server_digest_matches_keepalived_genhash() {
    if !have("python3") {
        return;
    }
    let dir = scratch("py");
    std::fs::write(dir.join("index.html"), "hello from python\n".repeat(100)).unwrap();
    let port = free_port();
    let _server = Guard(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr).await;
    let ours = fetch(&spec(addr, UrlSpec::new("/index.html")), 0)
        .await
        .unwrap();
    assert_eq!(ours.status, 200);
    if have("genhash") {
        let out = Command::new("genhash")
            .args([
                "-s",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-u",
                "/index.html",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            ours.digest_hex()
        );
    }
    let mut url = UrlSpec::new("/index.html");
    url.digest_hex(&ours.digest_hex()).unwrap();
    let p = Probe::new(&ProbeSpec::Http(spec(addr, url))).unwrap();
    assert_eq!(p.run().await, Ok(None));
    let p = Probe::new(&ProbeSpec::Http(spec(addr, UrlSpec::new("/missing")))).unwrap();
    assert_eq!(
        p.run().await.unwrap_err().class,
        lb_health::FailureClass::L7Status
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn haproxy_config(dir: &Path, port: u16, tls_port: u16, pem: &Path) -> PathBuf {
    let cfg = format!(
        "global\n  log stdout format raw local0 emerg\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout connect 5s\n  timeout server 5s\n\
         frontend plain\n  bind 127.0.0.1:{port}\n  http-request return status 200 content-type text/plain string \"haproxy ok\" if {{ path /health }}\n  http-request return status 503 content-type text/plain string \"maintenance\"\n\
         frontend tls\n  bind 127.0.0.1:{tls_port} ssl crt {}\n  http-request return status 200 content-type text/plain string \"secure ok\"\n",
        pem.display()
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[tokio::test]
async fn haproxy_http_and_tls() {
    if !have("haproxy") {
        return;
    }
    let dir = scratch("haproxy");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = dir.join("site.pem");
    std::fs::write(
        &pem,
        format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()),
    )
    .unwrap();
    let (port, tls_port) = (free_port(), free_port());
    let cfg = haproxy_config(&dir, port, tls_port, &pem);
    let _server = Guard(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let tls_addr: SocketAddr = ([127, 0, 0, 1], tls_port).into();
    wait_listening(addr).await;
    wait_listening(tls_addr).await;

    let mut url = UrlSpec::new("/health");
    url.regex("^haproxy ok$", false);
    let mut s = spec(addr, url);
    s.version(HttpVersion::V11);
    assert_eq!(
        Probe::new(&ProbeSpec::Http(s)).unwrap().run().await,
        Ok(None)
    );
    let s = spec(addr, UrlSpec::new("/other"));
    let err = Probe::new(&ProbeSpec::Http(s))
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.class, lb_health::FailureClass::L7Status);

    let mut s = spec(tls_addr, UrlSpec::new("/"));
    s.version(HttpVersion::V11).tls(TlsSpec::new());
    let page = fetch(&s, 0).await.unwrap();
    assert_eq!((page.status, &page.body[..]), (200, &b"secure ok"[..]));
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let mut t = TlsSpec::new();
    t.sni("localhost")
        .verify(lb_health::probe::TlsVerify::CaFile(ca));
    s.tls(t);
    assert_eq!(
        Probe::new(&ProbeSpec::Http(s)).unwrap().run().await,
        Ok(None)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
