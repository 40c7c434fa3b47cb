//! An IPv6 virtual server through the `director`'s userspace dataplane, in
//! network namespaces, with LVS-DR (by address and as an fwmark service
//! marked by the director's classifier) and with LVS-NAT over IPv6: round robin,
//! TCP_CHECK; both real servers answer, and a stopped one is drained. No
//! VRRP: a configuration without `vrrp_instance` serves at once, the VIP
//! put on the director by hand (as
//! `netns_director_seed_dr_persist_drain_and_restore` does).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lb_examples::director::daemon;
use lb_examples::director::lab;
use lb_testing_netns::{Bridge, Host, Lab, Process, lab_or_skip, wait_for};

mod seedlab;

const BIN: &str = env!("CARGO_BIN_EXE_director");

/// The service: `kind` (`DR`, `NAT`) to real servers `rs1` and `rs2`.
fn conf(kind: &str, rs1: &str, rs2: &str) -> String {
    format!(
        "virtual_server 2001:db8::100 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind {kind}
    protocol TCP
    real_server {rs1} 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server {rs2} 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"
    )
}

/// The same service as an IPv6 fwmark service: the director's
/// `fwmark_rules` mark TCP to the VIP on ports 80 and 443, and the
/// userspace dataplane's own classifier (no kernel mangle table) must find
/// the mark for the service to see any traffic.
fn conf_fwmark(rs1: &str, rs2: &str) -> String {
    let plain = conf("DR", rs1, rs2);
    let body = plain
        .strip_prefix("virtual_server 2001:db8::100 80 {\n")
        .unwrap();
    format!(
        "fwmark_rules {{
    tcp daddr 2001:db8::100 dport 80,443 mark 6
}}
virtual_server fwmark 6 {{
    ip_family inet6
{body}"
    )
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// DR: one link 2001:db8::/64 (client ::2, director ::1 holding the VIP
/// ::100, real servers ::11 and ::12 holding it on `lo`).
#[test]
fn netns_director_ipv6_dr_rr_and_drain() {
    let Some(l) = lab_or_skip!("dir6dr", "nft") else {
        return;
    };
    dr_scenario(&l, &conf("DR", "2001:db8::11", "2001:db8::12"));
}

/// DR for an IPv6 fwmark service (`ip_family inet6`), marked by the
/// director's own classifier: same topology and scenario as the plain DR
/// test. (Checked to fail when the rule marks port 81 instead of 80.)
#[test]
fn netns_director_ipv6_fwmark_dr_rr_and_drain() {
    let Some(l) = lab_or_skip!("dir6fwm", "nft") else {
        return;
    };
    dr_scenario(&l, &conf_fwmark("2001:db8::11", "2001:db8::12"));
}

/// Builds the DR topology in `l` and runs [`scenario`] with `conf`.
fn dr_scenario(l: &Lab, conf: &str) {
    let sw = l.add_switch("sw").unwrap();
    let client = l.add_host("client").unwrap();
    let dir = l.add_host("dir").unwrap();
    let rs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("rs{i}")).unwrap())
        .collect();
    for (h, a) in [(&client, "2001:db8::2"), (&dir, "2001:db8::1")]
        .into_iter()
        .chain(rs.iter().zip(["2001:db8::11", "2001:db8::12"]))
    {
        plug(l, &sw, h, "eth0", a);
    }
    for h in &rs {
        // DR: the VIP on lo, so the server accepts packets for it; Linux
        // answers neighbour solicitations only for addresses on the asking
        // link, so the servers never claim the VIP on eth0.
        h.add_loopback_vip(v6(VIP)).unwrap();
    }
    scenario(l, &client, &dir, &rs, conf);
}

/// NAT: outside link 2001:db8::/64 (client ::2, director ::1 holding the
/// VIP ::100), inside link 2001:db8:1::/64 (director ::1, real servers
/// ::11 and ::12 routing through it). The director is told only about
/// `eth0`: it finds `eth1` from its IPv6 routes to the real servers.
#[test]
fn netns_director_ipv6_nat_rr_and_drain() {
    let Some(l) = lab_or_skip!("dir6nat", "nft") else {
        return;
    };
    let outside = l.add_switch("out").unwrap();
    let inside = l.add_switch("in").unwrap();
    let client = l.add_host("client").unwrap();
    let dir = l.add_host("dir").unwrap();
    let rs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("rs{i}")).unwrap())
        .collect();
    plug(&l, &outside, &client, "eth0", "2001:db8::2");
    plug(&l, &outside, &dir, "eth0", "2001:db8::1");
    plug(&l, &inside, &dir, "eth1", "2001:db8:1::1");
    for (h, a) in rs.iter().zip(["2001:db8:1::11", "2001:db8:1::12"]) {
        plug(&l, &inside, h, "eth0", a);
        h.add_default_route(v6("2001:db8:1::1")).unwrap();
    }
    scenario(
        &l,
        &client,
        &dir,
        &rs,
        &conf("NAT", "2001:db8:1::11", "2001:db8:1::12"),
    );
}

const VIP: &str = "2001:db8::100";

/// Connects `h`'s `ifname` to `sw` with `addr`/64, offloads off (the
/// forwarder sees whole frames).
fn plug(l: &Lab, sw: &Bridge, h: &Host, ifname: &str, addr: &str) {
    let p = l.attach(sw, h, ifname).unwrap();
    sw.host().disable_offloads(&p).unwrap();
    h.disable_offloads(ifname).unwrap();
    h.add_addr(ifname, v6(addr), 64).unwrap();
}

/// Starts an HTTP server on port 80 (any IPv6 address) of each real server,
/// answering its number (1, 2, …). Returns the flag that stops them all and
/// each one's "serving" switch.
fn serve(rs: &[Host]) -> (Arc<AtomicBool>, Vec<Arc<AtomicBool>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut serving = Vec::new();
    for (i, h) in rs.iter().enumerate() {
        let (on, stop) = (Arc::new(AtomicBool::new(true)), stop.clone());
        serving.push(on.clone());
        let at = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80);
        h.spawn_thread(move || lab::http_server_at(i as u8 + 1, at, on, stop))
            .unwrap();
    }
    (stop, serving)
}

/// Starts HTTP servers on the real servers and the director with `conf`
/// (`--interface eth0`); checks that both servers answer through the VIP,
/// then that a stopped one goes down and gets no more requests.
fn scenario(l: &Lab, client: &Host, dir: &Host, rs: &[Host], conf: &str) {
    let vip = v6(VIP);
    // Deprecated (preferred_lft 0), as IPv6 VIPs should be: otherwise the
    // newest address wins the kernel's source selection (both /64 on eth0
    // tie on the longest-prefix rule), the director's own health checks
    // leave from the VIP, and a DR real server, holding the VIP too,
    // answers them to itself: every check times out.
    dir.ip([
        "-6",
        "addr",
        "add",
        &format!("{VIP}/64"),
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
    ])
    .unwrap();
    let (stop, serving) = serve(rs);
    let d = l.dir().unwrap().to_owned();
    let cfg = d.join("d.conf");
    std::fs::write(&cfg, conf).unwrap();
    let run_dir = d.join("run");
    let log = d.join("d.log");
    let mut cmd = dir.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(&cfg)
        .args(["--dataplane", "userspace", "--interface", "eth0"])
        .arg("--runtime-dir")
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap());
    let mut p = Process::spawn(cmd).unwrap();
    let logtext = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = |json| daemon::status(&run_dir, json).unwrap_or_default();
    let target = SocketAddr::new(IpAddr::V6(vip), 80);
    let ask = || {
        client
            .run_in(move || lab::request_to(target, Duration::from_millis(500)))
            .unwrap()
    };
    wait_for("both IPv6 servers up", 30, || {
        status(true).matches("\"up\":true").count() == 2
    });
    let text = status(false);
    assert!(text.contains("2001:db8::100"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask().is_none() {
        assert!(
            Instant::now() < deadline,
            "no response through [2001:db8::100]:80\n{}",
            logtext()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Round robin: both servers answer.
    let mut seen = [0u32; 2];
    for _ in 0..20 {
        if let Some(n) = ask() {
            seen[usize::from(n - 1)] += 1;
        }
    }
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}\n{}", logtext());

    // rs2 stops serving: its check fails, it leaves the table, and every
    // request goes to rs1.
    serving[1].store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(true);
        if s.matches("\"up\":false").count() == 1 && s.matches("\"up\":true").count() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped server never went down: {s}\n{}",
            logtext()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answers = Vec::new();
    loop {
        let last: Vec<Option<u8>> = (0..6).map(|_| ask()).collect();
        if last.iter().all(|&a| a == Some(1)) {
            break;
        }
        answers.extend(last);
        let from = answers.len().saturating_sub(24);
        answers.drain(..from);
        assert!(
            Instant::now() < deadline,
            "the client still sees other answers than rs1 (latest: {answers:?})\n{}\n{}\n{}",
            status(true),
            dir.ip(["-6", "neigh"]).unwrap_or_default(),
            logtext()
        );
    }
    let mut after = [0u32; 2];
    for _ in 0..10 {
        if let Some(n) = ask() {
            after[usize::from(n - 1)] += 1;
        }
    }
    assert_eq!(after, [10, 0], "{}", logtext());

    p.terminate().unwrap();
    let st = p.wait().unwrap();
    assert!(st.success(), "{st:?}");
    stop.store(true, Ordering::Relaxed);
}

/// Two directors with an IPv6 VRRP instance (VRRPv3 over link-local
/// sources, VIP 2001:db8::100) in front of the DR service: dir1 (150) is
/// master and serves; its link going down moves the VIP to dir2 (100), whose
/// unsolicited neighbour advertisement turns the client's neighbour entry,
/// and the service keeps answering through dir2's dataplane, while dir1 is
/// FAULT without the VIP; the link back up returns the VIP to dir1
/// (preemption), whose dataplane (the same packet socket, through the
/// flap) serves again.
#[test]
fn netns_director_ipv6_vrrp_failover() {
    let Some(l) = lab_or_skip!("dir6vr", "nft") else {
        return;
    };
    let sw = l.add_switch("sw").unwrap();
    let client = l.add_host("client").unwrap();
    let dirs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("dir{i}")).unwrap())
        .collect();
    let rs: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("rs{i}")).unwrap())
        .collect();
    for (h, a) in [
        (&client, "2001:db8::2"),
        (&dirs[0], "2001:db8::1"),
        (&dirs[1], "2001:db8::3"),
    ]
    .into_iter()
    .chain(rs.iter().zip(["2001:db8::11", "2001:db8::12"]))
    {
        plug(&l, &sw, h, "eth0", a);
    }
    for h in &dirs {
        // Keep the static address across the link flap (Linux flushes
        // IPv6 addresses on link down by default).
        h.sysctl("net.ipv6.conf.eth0.keep_addr_on_down", "1")
            .unwrap();
    }
    for h in &rs {
        h.add_loopback_vip(v6(VIP)).unwrap();
    }
    let (stop, _) = serve(&rs);
    // A /128 VIP: the director adds it deprecated, so its own health checks
    // keep leaving from its static address.
    let conf = |prio: u8| {
        format!(
            "vrrp_instance VI_6 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority {prio}
    advert_int 0.1
    virtual_ipaddress {{
        2001:db8::100/128
    }}
}}
{}",
            conf("DR", "2001:db8::11", "2001:db8::12")
        )
    };
    let d = l.dir().unwrap().to_owned();
    let mut procs: Vec<Process> = dirs
        .iter()
        .zip([150u8, 100])
        .enumerate()
        .map(|(i, (h, prio))| {
            let name = format!("dir{}", i + 1);
            let cfg = d.join(format!("{name}.conf"));
            std::fs::write(&cfg, conf(prio)).unwrap();
            let extra = ["--interface", "eth0"];
            seedlab::spawn_director(h, &d, &name, &cfg, "userspace", &extra).0
        })
        .collect();
    let logs = || {
        ["dir1", "dir2"]
            .iter()
            .map(|n| std::fs::read_to_string(d.join(format!("{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let vip = v6(VIP);
    let owner = |i: usize| dirs[i].has_addr("eth0", vip).unwrap();
    let target = SocketAddr::new(IpAddr::V6(vip), 80);
    let answered = || {
        client
            .run_in(move || lab::request_to(target, Duration::from_millis(500)))
            .unwrap()
            .is_some()
    };
    let until = |what: &str, secs: u64, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("dir1 (150) to own the VIP", 15, &|| owner(0) && !owner(1));
    until("an answer through dir1", 30, &answered);
    let s = daemon::status(&d.join("run-dir1"), true).unwrap();
    assert!(s.contains("\"MASTER\""), "{s}");

    dirs[0].set_link("eth0", false).unwrap();
    let t0 = Instant::now();
    // Its own link down, dir1's instance is FAULT and gives up the VIP (the
    // director reads the link on rtnetlink's event, not on its next poll).
    let fault = |i: usize| {
        daemon::status(&d.join(format!("run-dir{}", i + 1)), true)
            .unwrap_or_default()
            .contains("\"FAULT\"")
    };
    until("dir1 FAULT, without the VIP", 5, &|| fault(0) && !owner(0));
    let t_fault = t0.elapsed();
    until("dir2 to take the VIP", 10, &|| owner(1));
    until("an answer through dir2", 15, &answered);
    eprintln!(
        "IPv6 failover: dir1 FAULT after {t_fault:?}; VIP on dir2 and an answer after {:?}",
        t0.elapsed()
    );
    let s = daemon::status(&d.join("run-dir2"), true).unwrap();
    assert!(s.contains("\"MASTER\""), "{s}");
    eprintln!(
        "DEBUG link down at {:?}\n{}",
        std::time::SystemTime::now() - t0.elapsed(),
        logs()
    );

    dirs[0].set_link("eth0", true).unwrap();
    until("dir1 to take the VIP back", 15, &|| owner(0) && !owner(1));
    until("an answer through dir1 again", 15, &answered);

    for p in &mut procs {
        p.terminate().unwrap();
        assert!(p.wait().unwrap().success(), "{}", logs());
    }
    stop.store(true, Ordering::Relaxed);
}
