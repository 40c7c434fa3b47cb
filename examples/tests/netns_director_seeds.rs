//! The seed configurations shipped in `examples/configs/`, run as written by
//! the `director` with the userspace dataplane, in network namespaces built
//! around their addresses: `nat-rr.conf` (NAT round robin with TCP checks,
//! the real servers' gateway an excluded VIP on the inside link) and
//! `vrrp-sync.conf` (two instances, outside and inside, in one sync group).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lb_examples::director::{daemon, lab};
use lb_testing_netns::{Bridge, Host, Lab, Process, lab_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_director");

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Attaches `h` to `sw` as `ifname` with `addr/24`, offloads off (the
/// packet socket must see whole frames with full checksums).
fn plug(l: &Lab, sw: &Bridge, h: &Host, ifname: &str, addr: Ipv4Addr) {
    let p = l.attach(sw, h, ifname).unwrap();
    sw.host().disable_offloads(&p).unwrap();
    h.disable_offloads(ifname).unwrap();
    h.add_addr(ifname, addr, 24).unwrap();
}

/// Starts `director run -f config` in `host`, its log and runtime
/// directory under the lab directory as `name`.
fn spawn_director(
    host: &Host,
    d: &Path,
    name: &str,
    config: &Path,
    extra: &[&str],
) -> (Process, PathBuf) {
    let run_dir = d.join(format!("run-{name}"));
    let mut cmd = host.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(config)
        .args(["--dataplane", "userspace"])
        .args(extra)
        .arg("--runtime-dir")
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join(format!("{name}.log"))).unwrap());
    (Process::spawn(cmd).unwrap(), run_dir)
}

/// `GET /metrics` from the director's endpoint, inside its namespace.
fn scrape(host: &Host, addr: &'static str) -> String {
    host.run_in(move || {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(addr) else {
            return String::new();
        };
        let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    })
    .unwrap()
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

/// `nat-rr.conf` as shipped. Outside link 192.168.200.0/24 (client .50,
/// director .2, the VIP .10 by VRRP); inside link 10.11.12.0/24 (director
/// .254, the real servers .2 and .3, whose default route is the excluded
/// VIP 10.11.12.1 the director adds on its inside interface when master).
/// Round robin alternates between the two servers; every reply comes back
/// through the director (the client talks to the VIP only, and the real
/// servers have no other way out); the metrics count each server's
/// packets and bytes; a stopped server fails its TCP check and is removed
/// without a failed request, and comes back when it listens again.
#[test]
fn netns_director_seed_nat_rr() {
    let Some(l) = lab_or_skip!("dirnat", "nft") else {
        return;
    };
    let outside = l.add_switch("out").unwrap();
    let inside = l.add_switch("in").unwrap();
    let client = l.add_host("client").unwrap();
    let dir = l.add_host("dir").unwrap();
    let rs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("rs{i}")).unwrap())
        .collect();
    plug(
        &l,
        &outside,
        &client,
        "eth0",
        Ipv4Addr::new(192, 168, 200, 50),
    );
    plug(&l, &outside, &dir, "eth0", Ipv4Addr::new(192, 168, 200, 2));
    plug(&l, &inside, &dir, "eth1", Ipv4Addr::new(10, 11, 12, 254));
    let gateway = Ipv4Addr::new(10, 11, 12, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut serving = Vec::new();
    for (i, h) in rs.iter().enumerate() {
        plug(
            &l,
            &inside,
            h,
            "eth0",
            Ipv4Addr::new(10, 11, 12, 2 + i as u8),
        );
        h.add_default_route(gateway).unwrap();
        let (on, stop) = (Arc::new(AtomicBool::new(true)), stop.clone());
        serving.push(on.clone());
        h.spawn_thread(move || lab::http_server(i as u8 + 1, on, stop))
            .unwrap();
    }
    let d = l.dir().unwrap().to_owned();
    let (mut p, run_dir) = spawn_director(
        &dir,
        &d,
        "dir",
        &seed("nat-rr.conf"),
        &["--metrics", "127.0.0.1:9102"],
    );
    let log = || std::fs::read_to_string(d.join("dir.log")).unwrap_or_default();
    let status = || daemon::status(&run_dir, true).unwrap_or_default();
    wait_for("MASTER with both servers up", 30, || {
        let s = status();
        s.contains("\"MASTER\"") && s.matches("\"up\":true").count() == 2
    });
    // The VIPs where the seed puts them: the outside one on eth0, the
    // excluded inside gateway on eth1, both /24.
    let addrs = |dev: &str| dir.ip(["-o", "-4", "addr", "show", "dev", dev]).unwrap();
    assert!(
        addrs("eth0").contains("192.168.200.10/24"),
        "{}",
        addrs("eth0")
    );
    assert!(addrs("eth1").contains("10.11.12.1/24"), "{}", addrs("eth1"));
    assert!(!addrs("eth0").contains("10.11.12.1"), "{}", addrs("eth0"));

    let vip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 200, 10)), 80);
    let ask = move || {
        client
            .run_in(move || lab::request_to(vip, Duration::from_secs(2)))
            .unwrap()
    };
    wait_for("a response through the VIP", 20, || ask().is_some());
    let before = scrape(&dir, "127.0.0.1:9102");
    let got: Vec<Option<u8>> = (0..40).map(|_| ask()).collect();
    assert!(got.iter().all(Option::is_some), "{got:?}\n{}", log());
    // Round robin over two equal servers: strict alternation.
    assert!(
        got.windows(2).all(|w| w[0] != w[1]),
        "not round robin: {got:?}"
    );
    let count = |n: u8| got.iter().filter(|&&x| x == Some(n)).count();
    assert_eq!((count(1), count(2)), (20, 20), "{got:?}");

    // Per-server packets and bytes grew by at least what those 20
    // exchanges carried (SYN, request, ACKs, FIN in; SYN-ACK, reply, FIN
    // out: more than 3 packets each way per request).
    let svc = "service=\"TCP  192.168.200.10:80\"";
    let mut after = String::new();
    wait_for("the metrics to count the requests", 5, || {
        after = scrape(&dir, "127.0.0.1:9102");
        (2..=3).all(|h| {
            let k = format!(
                "lb_director_real_server_in_packets_total{{{svc},server=\"10.11.12.{h}:80\"}}"
            );
            metric(&after, &k).unwrap_or(0) >= metric(&before, &k).unwrap_or(0) + 60
        })
    });
    for h in 2..=3 {
        let server = format!("server=\"10.11.12.{h}:80\"");
        for (name, at_least) in [
            ("in_packets_total", 60),
            ("out_packets_total", 60),
            ("in_bytes_total", 20 * 40),
            ("out_bytes_total", 20 * 80),
            ("connections_total", 20),
        ] {
            let k = format!("lb_director_real_server_{name}{{{svc},{server}}}");
            let (b, a) = (
                metric(&before, &k).unwrap_or(0),
                metric(&after, &k).unwrap_or_else(|| panic!("no {k}:\n{after}")),
            );
            assert!(a >= b + at_least, "{k}: {b} -> {a}\n{after}");
        }
    }
    let k = format!("lb_director_service_connections_total{{{svc}}}");
    assert!(
        metric(&after, &k).unwrap_or(0) >= metric(&before, &k).unwrap_or(0) + 40,
        "{after}"
    );

    // rs2 stops listening: its TCP check fails (delay_loop 6, one retry),
    // it leaves the table, and every request goes to rs1 without failing.
    serving[1].store(false, Ordering::Relaxed);
    let up = |server: &str| -> Option<bool> {
        let v: serde_json::Value = serde_json::from_str(&status()).ok()?;
        v["real_servers"]
            .as_array()?
            .iter()
            .find(|r| r["server"] == server)?["up"]
            .as_bool()
    };
    wait_for("rs2 to go down", 60, || up("10.11.12.3:80") == Some(false));
    let s = status();
    assert!(!s.contains("\"address\":\"10.11.12.3:80\""), "{s}");
    let drained: Vec<Option<u8>> = (0..10).map(|_| ask()).collect();
    assert!(drained.iter().all(|&x| x == Some(1)), "{drained:?}");
    assert_eq!(
        metric(
            &scrape(&dir, "127.0.0.1:9102"),
            &format!("lb_director_real_server_up{{{svc},server=\"10.11.12.3:80\"}}")
        ),
        Some(0)
    );

    // Back: the check passes, rs2 is in the table and alternation resumes.
    serving[1].store(true, Ordering::Relaxed);
    wait_for("rs2 to come back", 60, || up("10.11.12.3:80") == Some(true));
    wait_for("rs2 to serve again", 10, || ask() == Some(2));
    let back: Vec<Option<u8>> = (0..10).map(|_| ask()).collect();
    assert!(back.iter().all(Option::is_some), "{back:?}");
    assert!(back.windows(2).all(|w| w[0] != w[1]), "{back:?}");

    p.terminate().unwrap();
    assert!(p.wait().unwrap().success(), "{}", log());
    assert!(!addrs("eth1").contains("10.11.12.1/"), "{}", addrs("eth1"));
    stop.store(true, Ordering::Relaxed);
}

/// `vrrp-sync.conf` as shipped on dir1, and on dir2 the same file with
/// only `state BACKUP` and a lower priority (the peer side the seed leaves
/// to the reader). Both instances, the outside VIP and the inside gateway,
/// live on dir1; killing dir1 moves both to dir2 together; dir1 back takes
/// both again (preemption); dir1 losing its inside link gives up both.
/// `chk_haproxy` fails on both (no haproxy runs): weight -20 on each side.
#[test]
fn netns_director_seed_vrrp_sync_group() {
    let Some(l) = lab_or_skip!("dirvsg", "nft") else {
        return;
    };
    let outside = l.add_switch("out").unwrap();
    let inside = l.add_switch("in").unwrap();
    let dirs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("dir{i}")).unwrap())
        .collect();
    for (h, a) in dirs.iter().zip([2u8, 3]) {
        plug(&l, &outside, h, "eth0", Ipv4Addr::new(192, 168, 200, a));
        plug(&l, &inside, h, "eth1", Ipv4Addr::new(10, 11, 12, 250 + a));
    }
    let d = l.dir().unwrap().to_owned();
    let text = std::fs::read_to_string(seed("vrrp-sync.conf")).unwrap();
    assert_eq!(text.matches("state MASTER").count(), 2);
    assert_eq!(text.matches("priority 150").count(), 2);
    let backup = d.join("vrrp-sync-backup.conf");
    std::fs::write(
        &backup,
        text.replace("state MASTER", "state BACKUP")
            .replace("priority 150", "priority 100"),
    )
    .unwrap();
    let vips = [
        ("eth0", Ipv4Addr::new(192, 168, 200, 18)),
        ("eth1", Ipv4Addr::new(10, 11, 12, 1)),
    ];
    let owns_both = |i: usize| {
        vips.iter()
            .all(|(dev, v)| dirs[i].has_addr(dev, *v).unwrap())
    };
    let owns_none = |i: usize| {
        vips.iter()
            .all(|(dev, v)| !dirs[i].has_addr(dev, *v).unwrap())
    };
    let start1 = || spawn_director(&dirs[0], &d, "dir1", &seed("vrrp-sync.conf"), &[]);
    let (mut p1, run1) = start1();
    let (mut p2, _) = spawn_director(&dirs[1], &d, "dir2", &backup, &[]);
    let logs = || {
        ["dir1", "dir2"]
            .map(|n| std::fs::read_to_string(d.join(format!("{n}.log"))).unwrap_or_default())
            .join("\n----\n")
    };
    wait_for("dir1 to own both VIPs", 30, || owns_both(0) && owns_none(1));
    let s = daemon::status(&run1, true).unwrap();
    assert_eq!(s.matches("\"MASTER\"").count(), 2, "{s}");
    // The failing chk_haproxy took its weight off dir1's VI_OUT (150 - 20).
    wait_for("the track_script weight", 15, || {
        logs().contains("priority=130")
    });

    p1.kill().unwrap();
    wait_for("dir2 to own both VIPs after dir1 died", 20, || owns_both(1));
    // dir1 died without removing its addresses (SIGKILL); only dir2 is
    // master now.
    let (mut p1, _) = {
        for (dev, v) in vips {
            let _ = dirs[0].del_addr(dev, v, 24);
        }
        start1()
    };
    wait_for("dir1 to take both VIPs back", 30, || {
        owns_both(0) && owns_none(1)
    });
    // dir1's inside link fails: VI_IN faults and the group takes VI_OUT
    // along, so dir2 holds the outside VIP and the gateway together.
    dirs[0].set_link("eth1", false).unwrap();
    wait_for("dir2 to own both VIPs after dir1's link failed", 20, || {
        owns_both(1) && !dirs[0].has_addr("eth0", vips[0].1).unwrap()
    });
    dirs[0].set_link("eth1", true).unwrap();
    wait_for("dir1 to own both VIPs again", 30, || {
        owns_both(0) && owns_none(1)
    });
    for p in [&mut p1, &mut p2] {
        p.terminate().unwrap();
        assert!(p.wait().unwrap().success(), "{}", logs());
    }
    assert!(owns_none(0) && owns_none(1));
}
