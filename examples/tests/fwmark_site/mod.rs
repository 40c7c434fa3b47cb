//! The site of `configs/fwmark-dr.conf`, shared by the fwmark tests (in
//! network namespaces on the host and inside the kernel VM):
//!
//! ```text
//!   client (10.1.1.10, 10.1.1.20, 10.1.2.10, 10.1.3.10, 10.1.4.10)
//!     │ wan
//!    gw (10.1.N.1 / 192.168.1.254, routing)
//!     │ lan 192.168.1.0/24
//!   ┌─┴───────────────┬────────────┬────────────┐
//!  dir .1           rs1 .11      rs2 .12      sorry .250
//!  VIP .100 on eth0 (VIP on lo, HTTP on :80 and :443)
//! ```

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_testing_netns::{Host, Lab};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_director");
pub(crate) const GENHASH: &str = env!("CARGO_BIN_EXE_genhash");
/// The digest the seed's HTTP_GET checks expect (keepalived's sample value:
/// the page it was made from is unknown, so no server here can match it).
pub(crate) const SEED_DIGEST: &str = "9b3a0c85a887a256d6939da88aabd8cd";
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
/// The page both real servers serve at `/index.html` to begin with.
pub(crate) const GOOD_PAGE: &str = "<html><body>web farm</body></html>\n";

pub(crate) fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fwmark-dr.conf")
}

/// Polls `f` until it holds; panics after `secs` with `what` and
/// `context()` (the director's log, say).
pub(crate) fn wait_for(
    what: &str,
    secs: u64,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", context());
}

/// A web server on `port`: `/index.html` is `page` (changed by the tests to
/// fail the digest check), `/health` is 200, anything else names the server.
fn web(name: &'static str, port: u16, page: Arc<Mutex<String>>, stop: Arc<AtomicBool>) {
    let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let page = page.clone();
        std::thread::spawn(move || {
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 8192 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
            }
            let req = String::from_utf8_lossy(&got);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let body = match path {
                "/index.html" => page.lock().unwrap().clone(),
                "/health" => "ok\n".to_owned(),
                _ => format!("{name}\n"),
            };
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        });
    }
}

/// One HTTP request from `src` to `dst`; the name of the server that
/// answered.
fn ask_from(src: Ipv4Addr, dst: SocketAddr) -> Option<String> {
    use socket2::{Domain, Socket, Type};
    let timeout = Duration::from_millis(700);
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::new(src.into(), 0).into()).ok()?;
    s.connect_timeout(&dst.into(), timeout).ok()?;
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: www\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split("\r\n\r\n").nth(1)?.trim().to_owned())
}

/// The built site, its servers running.
pub(crate) struct Site {
    pub(crate) client: Host,
    pub(crate) dir: Host,
    /// Client addresses: four /24s, two in the first.
    pub(crate) clients: Vec<Ipv4Addr>,
    /// rs1's, rs2's and the sorry server's `/index.html`.
    pub(crate) pages: Vec<Arc<Mutex<String>>>,
    stop: Arc<AtomicBool>,
}

impl Site {
    /// Builds the topology in `l` and starts the web servers.
    pub(crate) fn build(l: &Lab) -> Self {
        let lan = l.add_switch("lan").unwrap();
        let wan = l.add_switch("wan").unwrap();
        let client = l.add_host("client").unwrap();
        let gw = l.add_host("gw").unwrap();
        let dir = l.add_host("dir").unwrap();
        let rs1 = l.add_host("rs1").unwrap();
        let rs2 = l.add_host("rs2").unwrap();
        let sorry = l.add_host("sorry").unwrap();
        let lan_addr = |n: u8| Ipv4Addr::new(192, 168, 1, n);
        for (h, ifname, sw) in [
            (&gw, "eth0", &lan),
            (&dir, "eth0", &lan),
            (&rs1, "eth0", &lan),
            (&rs2, "eth0", &lan),
            (&sorry, "eth0", &lan),
            (&gw, "eth1", &wan),
            (&client, "eth0", &wan),
        ] {
            let p = l.attach(sw, h, ifname).unwrap();
            sw.host().disable_offloads(&p).unwrap();
            h.disable_offloads(ifname).unwrap();
        }
        for (h, n) in [(&gw, 254), (&dir, 1), (&rs1, 11), (&rs2, 12), (&sorry, 250)] {
            h.add_addr("eth0", lan_addr(n), 24).unwrap();
        }
        gw.enable_forwarding().unwrap();
        let clients: Vec<Ipv4Addr> = [(1, 10), (1, 20), (2, 10), (3, 10), (4, 10)]
            .iter()
            .map(|&(net, host)| Ipv4Addr::new(10, 1, net, host))
            .collect();
        for net in 1..=4 {
            gw.add_addr("eth1", Ipv4Addr::new(10, 1, net, 1), 24)
                .unwrap();
        }
        for &c in &clients {
            client.add_addr("eth0", c, 24).unwrap();
        }
        client
            .add_default_route(Ipv4Addr::new(10, 1, 1, 1))
            .unwrap();
        dir.add_addr("eth0", VIP, 24).unwrap();
        dir.add_default_route(lan_addr(254)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut pages = Vec::new();
        for (h, name) in [(&rs1, "rs1"), (&rs2, "rs2"), (&sorry, "sorry")] {
            h.add_loopback_vip(VIP).unwrap();
            h.add_default_route(lan_addr(254)).unwrap();
            let page = Arc::new(Mutex::new(GOOD_PAGE.to_owned()));
            pages.push(page.clone());
            for port in [80, 443] {
                let (page, stop) = (page.clone(), stop.clone());
                h.spawn_thread(move || web(name, port, page, stop)).unwrap();
            }
        }
        Self {
            client,
            dir,
            clients,
            pages,
            stop,
        }
    }

    /// One request from the client address `src` to VIP:`port`; the server
    /// that answered.
    pub(crate) fn ask(&self, src: Ipv4Addr, port: u16) -> Option<String> {
        let dst = SocketAddr::new(IpAddr::V4(VIP), port);
        self.client.run_in(move || ask_from(src, dst)).unwrap()
    }

    /// The seed with its digest replaced by the one of the servers' page,
    /// as `genhash` (run on the director) prints it: the only change.
    pub(crate) fn seed_with_our_digest(&self) -> String {
        let out = self
            .dir
            .run(
                GENHASH,
                ["-s", "192.168.1.11", "-p", "80", "-u", "/index.html"],
            )
            .unwrap();
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(digest.len(), 32, "{digest}");
        let text = std::fs::read_to_string(seed()).unwrap();
        assert_eq!(text.matches(SEED_DIGEST).count(), 2);
        text.replace(SEED_DIGEST, &digest)
    }

    /// Asks from every client on :80 and :443 twice; checks each client
    /// stays on one server across both ports and returns that server per
    /// client. Answers from the sorry server are retried (templates made
    /// while quorum was lost expire on their next use).
    pub(crate) fn servers_per_client(&self, context: impl Fn() -> String + Copy) -> Vec<String> {
        let mut by_client = Vec::new();
        for &c in &self.clients {
            let mut seen = Vec::new();
            for port in [80, 443, 80, 443] {
                let mut a = None;
                wait_for("an answer", 10, context, || {
                    a = self.ask(c, port).filter(|s| s != "sorry");
                    a.is_some()
                });
                seen.push(a.unwrap());
            }
            assert!(
                seen.iter().all(|s| *s == seen[0]),
                "{c}: :80 and :443 on different servers {seen:?}\n{}",
                context()
            );
            by_client.push(seen[0].clone());
        }
        by_client
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
