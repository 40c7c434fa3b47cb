//! Shared by `netns_director_seeds` and `vm_director_traffic`: topologies
//! built around the seed configurations' addresses, and the scenarios run
//! on them with either dataplane.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lb_examples::director::{daemon, lab};
pub(crate) use lb_testing_netns::wait_for;
use lb_testing_netns::{Bridge, Host, Lab, Process};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_director");

/// A shipped configuration.
pub(crate) fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

/// Attaches `h` to `sw` as `ifname` with `addr/24`, offloads off (the
/// packet socket must see whole frames with full checksums).
pub(crate) fn plug(l: &Lab, sw: &Bridge, h: &Host, ifname: &str, addr: Ipv4Addr) {
    let p = l.attach(sw, h, ifname).unwrap();
    sw.host().disable_offloads(&p).unwrap();
    h.disable_offloads(ifname).unwrap();
    h.add_addr(ifname, addr, 24).unwrap();
}

/// Starts `director run -f config --dataplane dataplane` in `host`, its log
/// (`<d>/<name>.log`) and runtime directory under `d`.
pub(crate) fn spawn_director(
    host: &Host,
    d: &Path,
    name: &str,
    config: &Path,
    dataplane: &str,
    extra: &[&str],
) -> (Process, PathBuf) {
    let run_dir = d.join(format!("run-{name}"));
    let mut cmd = host.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(config)
        .args(["--dataplane", dataplane])
        .args(extra)
        .arg("--runtime-dir")
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join(format!("{name}.log"))).unwrap());
    (Process::spawn(cmd).unwrap(), run_dir)
}

/// `GET /metrics` from the director's endpoint, inside its namespace.
pub(crate) fn scrape(host: &Host, addr: &'static str) -> String {
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
pub(crate) fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

/// A real server's `up` in `director status --json`.
pub(crate) fn up_in_status(status: &str, server: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_str(status).ok()?;
    v["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["server"] == server)?["up"]
        .as_bool()
}

/// The topology of `nat-rr.conf`. Outside link 192.168.200.0/24 (client
/// .50, director .2; the VIP .10 comes from VRRP); inside link
/// 10.11.12.0/24 (director .254, real servers .2 and .3 serving HTTP on
/// port 80, whose default route is the seed's excluded VIP 10.11.12.1,
/// which the director adds on its inside interface when master).
pub(crate) struct NatLab {
    pub(crate) client: Host,
    pub(crate) dir: Host,
    pub(crate) rs: Vec<Host>,
    /// Each real server's listener on/off.
    pub(crate) serving: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
}

impl Drop for NatLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn nat_rr_lab(l: &Lab) -> NatLab {
    let outside = l.add_switch("out").unwrap();
    let inside = l.add_switch("in").unwrap();
    let client = l.add_host("client").unwrap();
    let dir = l.add_host("dir").unwrap();
    let rs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("rs{i}")).unwrap())
        .collect();
    plug(
        l,
        &outside,
        &client,
        "eth0",
        Ipv4Addr::new(192, 168, 200, 50),
    );
    plug(l, &outside, &dir, "eth0", Ipv4Addr::new(192, 168, 200, 2));
    plug(l, &inside, &dir, "eth1", Ipv4Addr::new(10, 11, 12, 254));
    let stop = Arc::new(AtomicBool::new(false));
    let mut serving = Vec::new();
    for (i, h) in rs.iter().enumerate() {
        plug(
            l,
            &inside,
            h,
            "eth0",
            Ipv4Addr::new(10, 11, 12, 2 + i as u8),
        );
        h.add_default_route(Ipv4Addr::new(10, 11, 12, 1)).unwrap();
        // Learn addresses from gratuitous ARP (to see the director's).
        h.sysctl("net.ipv4.conf.all.arp_accept", "1").unwrap();
        let (on, stop) = (Arc::new(AtomicBool::new(true)), stop.clone());
        serving.push(on.clone());
        h.spawn_thread(move || lab::http_server(i as u8 + 1, on, stop))
            .unwrap();
    }
    NatLab {
        client,
        dir,
        rs,
        serving,
        stop,
    }
}

/// What the dataplane-specific checks of [`nat_rr_scenario`] are told.
pub(crate) enum NatPhase {
    /// Both servers up and serving.
    Serving,
    /// rs2 (10.11.12.3) failed its check.
    Drained,
}

/// `nat-rr.conf` as shipped on [`NatLab`] with `dataplane`: the VIPs where
/// the seed puts them; round robin alternating between the two servers
/// over `requests` requests, every reply back through the director (the
/// client talks to the VIP only and the real servers have no other way
/// out); the metrics counting each server's connections, packets and bytes
/// both ways; rs2 stopped → its TCP check fails, it leaves the table and
/// no request fails; rs2 back → in the table and alternation resumes;
/// SIGTERM → exit 0 and the VIPs gone. `check` runs the dataplane's own
/// checks at each phase. Timeouts are generous (the VM is emulated).
pub(crate) fn nat_rr_scenario(
    l: &Lab,
    n: &NatLab,
    dataplane: &str,
    requests: usize,
    mut check: impl FnMut(&NatLab, NatPhase),
) {
    const METRICS: &str = "127.0.0.1:9102";
    let d = l.dir().unwrap().to_owned();
    let (mut p, run_dir) = spawn_director(
        &n.dir,
        &d,
        "dir",
        &seed("nat-rr.conf"),
        dataplane,
        &["--metrics", METRICS],
    );
    let log = || std::fs::read_to_string(d.join("dir.log")).unwrap_or_default();
    let status = || daemon::status(&run_dir, true).unwrap_or_default();
    wait_for("MASTER with both servers up", 90, || {
        let s = status();
        s.contains("\"MASTER\"") && s.matches("\"up\":true").count() == 2
    });
    // The outside VIP on eth0, the excluded inside gateway on eth1, /24.
    let addrs = |dev: &str| n.dir.ip(["-o", "-4", "addr", "show", "dev", dev]).unwrap();
    // (The state is reported a moment before the addresses are added.)
    wait_for("the VIPs on their interfaces", 10, || {
        addrs("eth0").contains("192.168.200.10/24") && addrs("eth1").contains("10.11.12.1/24")
    });
    assert!(!addrs("eth0").contains("10.11.12.1"), "{}", addrs("eth0"));
    // The gateway's gratuitous ARP came on the inside link with the inside
    // interface's MAC (before any client traffic made rs1 ask for it).
    let mac = n.dir.mac("eth1").unwrap();
    let mac = mac.map(|b| format!("{b:02x}")).join(":");
    wait_for(
        "rs1 to learn the gateway from its gratuitous ARP",
        30,
        || {
            n.rs[0]
                .ip(["neigh", "show", "10.11.12.1"])
                .is_ok_and(|t| t.contains(&mac))
        },
    );

    let vip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 200, 10)), 80);
    let ask = || {
        n.client
            .run_in(move || lab::request_to(vip, Duration::from_secs(5)))
            .unwrap()
    };
    wait_for("a response through the VIP", 60, || ask().is_some());
    check(n, NatPhase::Serving);
    let before = scrape(&n.dir, METRICS);
    let got: Vec<Option<u8>> = (0..requests).map(|_| ask()).collect();
    assert!(got.iter().all(Option::is_some), "{got:?}\n{}", log());
    assert!(
        got.windows(2).all(|w| w[0] != w[1]),
        "not round robin: {got:?}"
    );
    let count = |s: u8| got.iter().filter(|&&x| x == Some(s)).count();
    let half = requests / 2;
    assert!(
        count(1).abs_diff(half) <= 1 && count(1) + count(2) == requests,
        "{got:?}"
    );
    eprintln!("{requests} requests: rs1 {}, rs2 {}", count(1), count(2));

    // Each request is at least 3 packets each way (SYN, request, FIN in;
    // SYN-ACK, reply, FIN out) of at least 40 bytes.
    let svc = "service=\"TCP  192.168.200.10:80\"";
    let grew = |b: &str, a: &str, k: &str, at_least: u64| {
        metric(a, k).unwrap_or(0) >= metric(b, k).unwrap_or(0) + at_least
    };
    let per = count(2) as u64;
    let mut want = Vec::new();
    for h in 2..=3 {
        let server = format!("server=\"10.11.12.{h}:80\"");
        for (name, at_least) in [
            ("connections_total", per),
            ("in_packets_total", 3 * per),
            ("out_packets_total", 3 * per),
            ("in_bytes_total", 120 * per),
            ("out_bytes_total", 120 * per),
        ] {
            want.push((
                format!("lb_director_real_server_{name}{{{svc},{server}}}"),
                at_least,
            ));
        }
    }
    want.push((
        format!("lb_director_service_connections_total{{{svc}}}"),
        2 * per,
    ));
    want.push((
        format!("lb_director_service_out_packets_total{{{svc}}}"),
        6 * per,
    ));
    // The dataplane publishes its counters periodically: a scrape may lag
    // the last requests, so poll until every counter has caught up (they
    // only grow), then report each.
    let mut after = String::new();
    for _ in 0..100 {
        after = scrape(&n.dir, METRICS);
        if want.iter().all(|(k, m)| grew(&before, &after, k, *m)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for (k, at_least) in &want {
        let (b, a) = (metric(&before, k).unwrap_or(0), metric(&after, k));
        assert!(
            grew(&before, &after, k, *at_least),
            "{k}: {b} -> {a:?}, want +{at_least}\n{after}"
        );
        eprintln!("{k}: {b} -> {}", a.unwrap_or(0));
    }

    // rs2 stops listening: its TCP check fails (delay_loop 6, one retry),
    // it leaves the table, and every request goes to rs1 without failing.
    n.serving[1].store(false, Ordering::Relaxed);
    wait_for("rs2 to go down", 120, || {
        up_in_status(&status(), "10.11.12.3:80") == Some(false)
    });
    let s = status();
    assert!(!s.contains("\"address\":\"10.11.12.3:80\""), "{s}");
    // The dataplane applies the new plan a moment later; its published
    // figures (taken after applying) tell when it has.
    let rs2_weight = format!("lb_director_real_server_weight{{{svc},server=\"10.11.12.3:80\"}}");
    wait_for("the dataplane to drop rs2", 30, || {
        let m = scrape(&n.dir, METRICS);
        m.contains("lb_director_real_server_weight{") && !m.contains(&rs2_weight)
    });
    check(n, NatPhase::Drained);
    let drained: Vec<Option<u8>> = (0..requests / 2).map(|_| ask()).collect();
    assert!(drained.iter().all(|&x| x == Some(1)), "{drained:?}");
    assert_eq!(
        metric(
            &scrape(&n.dir, METRICS),
            &format!("lb_director_real_server_up{{{svc},server=\"10.11.12.3:80\"}}")
        ),
        Some(0)
    );

    // Back: the check passes, rs2 is in the table, alternation resumes.
    n.serving[1].store(true, Ordering::Relaxed);
    wait_for("rs2 to come back", 120, || {
        up_in_status(&status(), "10.11.12.3:80") == Some(true)
    });
    wait_for("rs2 to serve again", 30, || ask() == Some(2));
    check(n, NatPhase::Serving);
    let back: Vec<Option<u8>> = (0..requests / 2).map(|_| ask()).collect();
    assert!(back.iter().all(Option::is_some), "{back:?}");
    assert!(back.windows(2).all(|w| w[0] != w[1]), "{back:?}");

    p.terminate().unwrap();
    assert!(p.wait().unwrap().success(), "{}", log());
    assert!(
        !addrs("eth0").contains("192.168.200.10/"),
        "{}",
        addrs("eth0")
    );
    assert!(!addrs("eth1").contains("10.11.12.1/"), "{}", addrs("eth1"));
}

/// `vrrp-sync.conf` as shipped on dir1 with `dataplane`, and on dir2 the
/// same file with only `state BACKUP` and a lower priority (the peer side
/// the seed leaves to the reader). Both instances, the outside VIP and the inside gateway,
/// live on dir1; killing dir1 moves both to dir2 together; dir1 back takes
/// both again (preemption); dir1 losing its inside link gives up both.
/// `chk_haproxy` fails on both (no haproxy runs): weight -20 on each side.
pub(crate) fn vrrp_sync_scenario(l: &Lab, dataplane: &str) {
    let outside = l.add_switch("out").unwrap();
    let inside = l.add_switch("in").unwrap();
    let dirs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("dir{i}")).unwrap())
        .collect();
    for (h, a) in dirs.iter().zip([2u8, 3]) {
        plug(l, &outside, h, "eth0", Ipv4Addr::new(192, 168, 200, a));
        plug(l, &inside, h, "eth1", Ipv4Addr::new(10, 11, 12, 250 + a));
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
    let start1 =
        |name: &str| spawn_director(&dirs[0], &d, name, &seed("vrrp-sync.conf"), dataplane, &[]);
    let (mut p1, run1) = start1("dir1");
    let (mut p2, _) = spawn_director(&dirs[1], &d, "dir2", &backup, dataplane, &[]);
    let logs = || {
        ["dir1", "dir2", "dir1-again"]
            .map(|n| std::fs::read_to_string(d.join(format!("{n}.log"))).unwrap_or_default())
            .join("\n----\n")
    };
    wait_for("dir1 to own both VIPs", 30, || owns_both(0) && owns_none(1));
    wait_for("dir1's status to show both instances MASTER", 10, || {
        daemon::status(&run1, true).is_ok_and(|s| s.matches("\"MASTER\"").count() == 2)
    });
    // The failing chk_haproxy (fall 2, interval 2) takes its weight off
    // dir1's VI_OUT (150 - 20); status and the log report it whether the
    // script failed before or after the instance became master.
    wait_for("the track_script weight", 20, || {
        daemon::status(&run1, true).is_ok_and(|s| {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            v["vrrp"].as_array().unwrap().iter().any(|i| {
                i["instance"] == "VI_OUT" && i["priority"] == 130 && i["state"] == "MASTER"
            })
        })
    });
    assert!(logs().contains("VRRP effective priority"), "{}", logs());

    p1.kill().unwrap();
    wait_for("dir2 to own both VIPs after dir1 died", 20, || owns_both(1));
    // dir1 died without removing its addresses (SIGKILL); only dir2 is
    // master now.
    let (mut p1, _) = {
        for (dev, v) in vips {
            let _ = dirs[0].del_addr(dev, v, 24);
        }
        start1("dir1-again")
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
    eprintln!("{}", logs());
    assert!(owns_none(0) && owns_none(1));
}
