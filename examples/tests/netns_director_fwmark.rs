//! fwmark services end to end in network namespaces, with the userspace
//! dataplane (this host has no IPVS): the seed `configs/fwmark-dr.conf`,
//! its `fwmark_rules` classified by the forwarder.
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

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_examples::director::daemon;
use lb_testing_netns::{Host, Process, lab_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_director");
const GENHASH: &str = env!("CARGO_BIN_EXE_genhash");
/// The digest the seed's HTTP_GET checks expect (keepalived's sample value:
/// the page it was made from is unknown, so no server here can match it).
const SEED_DIGEST: &str = "9b3a0c85a887a256d6939da88aabd8cd";
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fwmark-dr.conf")
}

/// Polls `f` until it holds; panics after `secs` with `what` and `context()`
/// (the director's log).
fn wait_for(what: &str, secs: u64, context: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", context());
}

/// A web server on `port`: `/index.html` is `page` (changed by the test to
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

struct Site {
    client: Host,
    dir: Host,
}

impl Site {
    fn ask(&self, src: Ipv4Addr, port: u16) -> Option<String> {
        let dst = SocketAddr::new(IpAddr::V4(VIP), port);
        self.client.run_in(move || ask_from(src, dst)).unwrap()
    }
}

/// Health of `server` (`"192.168.1.11:80"`) in `director status --json`.
fn up(status: &str, server: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_str(status).ok()?;
    v["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["server"] == server)?["up"]
        .as_bool()
}

/// The seed `fwmark-dr.conf`: mark 100 on VIP:80 and VIP:443 from its
/// `fwmark_rules`, DR, wlc, persistence 300 s per /24, HTTP_GET checks with
/// digests, a sorry server.
///
/// 1. As shipped: the seed's digest is of a page nobody has, so both servers
///    fail their checks and the sorry server answers, on both ports.
/// 2. With the digest of the servers' page (made with `genhash`, as an
///    operator would; the only change) and SIGHUP: both servers up; a
///    client's :80 and :443 land on one server (one mark, one persistence
///    template), a neighbour in its /24 follows it, clients from other /24s
///    reach both servers; a port the rule does not mark is not balanced.
/// 3. rs1's page changes: its digest fails, it is drained, everyone is on
///    rs2.
/// 4. SIGTERM: exit 0, the director's nftables tables gone.
#[test]
fn netns_director_fwmark_dr_seed() {
    let Some(l) = lab_or_skip!("dirfwm", "nft") else {
        return;
    };
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
    // Clients in four /24s, two in the first.
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
    let good = "<html><body>web farm</body></html>\n";
    let mut pages = Vec::new();
    for (h, name) in [(&rs1, "rs1"), (&rs2, "rs2"), (&sorry, "sorry")] {
        h.add_loopback_vip(VIP).unwrap();
        h.add_default_route(lan_addr(254)).unwrap();
        let page = Arc::new(Mutex::new(good.to_owned()));
        pages.push(page.clone());
        for port in [80, 443] {
            let (page, stop) = (page.clone(), stop.clone());
            h.spawn_thread(move || web(name, port, page, stop)).unwrap();
        }
    }
    let site = Site {
        client: client.clone(),
        dir: dir.clone(),
    };

    // 1. The seed as shipped.
    let d = l.dir().unwrap().to_owned();
    let run_dir = d.join("run");
    let cfg = d.join("fwmark-dr.conf");
    std::fs::copy(seed(), &cfg).unwrap();
    let log = d.join("d.log");
    let mut cmd = dir.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(&cfg)
        .args([
            "--dataplane",
            "userspace",
            "--interface",
            "eth0",
            "--runtime-dir",
        ])
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut p = Process::spawn(cmd).unwrap();
    let status = || daemon::status(&run_dir, true).unwrap_or_default();
    let show = || {
        format!(
            "{}\nstatus: {}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            status()
        )
    };
    // delay_loop 10, three retries 2 s apart: a failing server is down
    // within about 17 s of its first check.
    wait_for("both servers to fail the seed's digest", 60, show, || {
        let s = status();
        up(&s, "192.168.1.11:80") == Some(false) && up(&s, "192.168.1.12:80") == Some(false)
    });
    let s = status();
    assert!(s.contains("\"service\":\"FWM  100\""), "{s}");
    assert!(s.contains("\"quorum_lost\":true"), "{s}");
    assert!(s.contains("L7Digest"), "{s}");
    let first = clients[0];
    wait_for("the sorry server on :80", 10, show, || {
        site.ask(first, 80).as_deref() == Some("sorry")
    });
    assert_eq!(site.ask(first, 443).as_deref(), Some("sorry"), "{}", show());
    let table = site
        .dir
        .run("nft", ["list", "table", "inet", "lb_director_mark"])
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains("ip daddr 192.168.1.100 tcp dport { 80, 443 } drop"),
        "{table}"
    );

    // 2. The digest of the page the servers serve, as genhash prints it.
    let out = dir
        .run(
            GENHASH,
            ["-s", "192.168.1.11", "-p", "80", "-u", "/index.html"],
        )
        .unwrap();
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(digest.len(), 32, "{digest}");
    let text = std::fs::read_to_string(seed()).unwrap();
    assert_eq!(text.matches(SEED_DIGEST).count(), 2);
    std::fs::write(&cfg, text.replace(SEED_DIGEST, &digest)).unwrap();
    p.signal(libc::SIGHUP).unwrap();
    wait_for("both servers up with the right digest", 60, show, || {
        let s = status();
        up(&s, "192.168.1.11:80") == Some(true) && up(&s, "192.168.1.12:80") == Some(true)
    });
    wait_for("the sorry server to leave", 10, show, || {
        !status().contains("\"quorum_lost\":true")
    });
    // Persistence templates from the sorry phase point at a server that is
    // gone; they expire on their next use.
    let mut by_client = Vec::new();
    for &c in &clients {
        let mut seen = Vec::new();
        for port in [80, 443, 80, 443] {
            let mut a = None;
            wait_for("an answer", 10, show, || {
                a = site.ask(c, port).filter(|s| s != "sorry");
                a.is_some()
            });
            seen.push(a.unwrap());
        }
        assert!(
            seen.iter().all(|s| *s == seen[0]),
            "{c}: :80 and :443 on different servers {seen:?}\n{}",
            show()
        );
        by_client.push(seen[0].clone());
    }
    eprintln!("server per client (:80 and :443 alike): {clients:?} -> {by_client:?}");
    assert_eq!(by_client[0], by_client[1], "one /24, one server");
    assert!(
        by_client.iter().any(|s| s == "rs1") && by_client.iter().any(|s| s == "rs2"),
        "{by_client:?}"
    );
    // Port 8080 is not marked: the forwarder leaves it alone and the
    // director's kernel refuses it.
    assert_eq!(site.ask(first, 8080), None);
    let text = daemon::status(&run_dir, false).unwrap();
    assert!(text.contains("FWM  100 wlc persistent 300"), "{text}");

    // 3. rs1's page changes: its digest fails and it is drained.
    *pages[0].lock().unwrap() = "<html><body>maintenance</body></html>\n".to_owned();
    wait_for("rs1 to fail its digest", 60, show, || {
        up(&status(), "192.168.1.11:80") == Some(false)
    });
    for &c in &clients {
        for port in [80, 443] {
            assert_eq!(
                site.ask(c, port).as_deref(),
                Some("rs2"),
                "{c}:{port}\n{}",
                show()
            );
        }
    }

    // 4. SIGTERM: clean exit, the nftables tables removed.
    p.terminate().unwrap();
    assert!(p.wait().unwrap().success(), "{}", show());
    for table in ["lb_director_mark", "lb_director"] {
        assert!(
            dir.run("nft", ["list", "table", "inet", table]).is_err(),
            "{table} left behind"
        );
    }
    let logtext = std::fs::read_to_string(&log).unwrap();
    assert!(logtext.contains("fwmark rules installed"), "{logtext}");
    stop.store(true, Ordering::Relaxed);
}
