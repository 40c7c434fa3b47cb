//! Interop with real keepalived in network namespaces: two hosts on one
//! veth link, `a` running `lb-vrrpd` (our driver), `b` running keepalived.
//!
//! Needs root, network namespaces and keepalived; skips otherwise (fails
//! with `CI=true`). Run with `--features linux`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod netns_util;

use lb_testing_netns::{Host, Lab, Process, lab_or_skip};

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const A6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
const B6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const ALL_NODES6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

struct Daemon {
    proc: Process,
    log: PathBuf,
}

impl Daemon {
    /// Standard output and error (keepalived `-l` logs to stderr).
    fn log(&self) -> String {
        let out = std::fs::read_to_string(&self.log).unwrap_or_default();
        let err = std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default();
        format!("{out}{err}")
    }
}

fn setup(lab: &Lab) -> (Host, Host) {
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    a.add_addr("eth0", A4, 24).unwrap();
    b.add_addr("eth0", B4, 24).unwrap();
    a.add_addr("eth0", A6, 64).unwrap();
    b.add_addr("eth0", B6, 64).unwrap();
    (a, b)
}

/// Starts keepalived on `host` with one `vrrp_instance` body.
fn keepalived(lab: &Lab, host: &Host, version: u8, instance: &str) -> Daemon {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = lab.dir().unwrap();
    let name = host.name().to_string();
    // Fresh pid files per start: a killed keepalived's pid files must not block the next one.
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{name}{run}");
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  router_id {name}\n  vrrp_version {version}\n  vrrp_garp_master_repeat 1\n}}\n\
             vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n{instance}\n}}\n"
        ),
    )
    .unwrap();
    let log = dir.join(format!("{name}-keepalived.log"));
    let mut cmd = host.command("keepalived");
    cmd.args(["-n", "-l", "-D", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join(format!("{name}.pid")))
        .arg("-r")
        .arg(dir.join(format!("{name}-vrrp.pid")))
        .arg("-c")
        .arg(dir.join(format!("{name}-chk.pid")))
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(log.with_extension("err")).unwrap());
    Daemon {
        proc: Process::spawn(cmd).unwrap(),
        log,
    }
}

/// Starts lb-vrrpd on `host`.
fn lb(lab: &Lab, host: &Host, args: &[&str]) -> Daemon {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = lab.dir().unwrap();
    let log = dir.join(format!("{}{run}-lb.log", host.name()));
    let mut cmd = host.command(env!("CARGO_BIN_EXE_lb-vrrpd"));
    cmd.args(["--iface", "eth0", "--vrid", "51"])
        .args(args)
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(log.with_extension("err")).unwrap());
    Daemon {
        proc: Process::spawn(cmd).unwrap(),
        log,
    }
}

/// Polls `f` every 50 ms until it holds; panics with `what` and the logs after `limit`.
#[track_caller]
fn wait_for(what: &str, limit: Duration, logs: &[&Daemon], f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs: Vec<String> = logs.iter().map(|d| d.log()).collect();
    panic!(
        "timed out waiting for: {what}\n--- logs ---\n{}",
        logs.join("\n---\n")
    );
}

fn has(host: &Host, addr: impl Into<IpAddr>) -> bool {
    host.has_addr("eth0", addr).unwrap()
}

const LIMIT: Duration = Duration::from_secs(20);

/// v3/IPv4: election by priority both ways, our default checksum accepted by
/// keepalived, and the priority-0 handoff on graceful stop.
#[test]
fn netns_keepalived_v3_ipv4_election_and_handoff() {
    let Some(lab) = lab_or_skip!("vrrp3", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 100\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    let mut ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "50",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    // Steady state for a few intervals: VIP on exactly one node.
    std::thread::sleep(Duration::from_secs(2));
    assert!(has(&a, VIP4) && !has(&b, VIP4), "VIP on a only");
    assert!(
        !ka.log().contains("Invalid VRRPv3 checksum"),
        "{}",
        ka.log()
    );
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    // Graceful stop: priority 0, keepalived takes over after Skew_Time.
    ours.proc.terminate().unwrap();
    wait_for(
        "keepalived Master after priority 0",
        LIMIT,
        &[&ours, &ka],
        || has(&b, VIP4),
    );
    assert!(
        ka.log()
            .contains("Backup received priority 0 advertisement"),
        "{}",
        ka.log()
    );
    ours.proc.wait().unwrap();
    assert!(!has(&a, VIP4), "lb-vrrpd removed its VIP on shutdown");
}

/// keepalived with the higher priority wins; SIGKILL on it makes us Master
/// within Master_Down_Interval plus one interval.
#[test]
fn netns_keepalived_v3_ipv4_failover_after_sigkill() {
    let Some(lab) = lab_or_skip!("vrrpk", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let mut ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 200\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    wait_for("keepalived Master", LIMIT, &[&ka], || has(&b, VIP4));
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "100",
            "--interval",
            "50",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd Backup", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Initialize Backup")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(!ours.log().contains("Master"), "{}", ours.log());
    assert!(!has(&a, VIP4));
    ka.proc.kill().unwrap();
    let took = wait_for(
        "lb-vrrpd Master after SIGKILL",
        LIMIT,
        &[&ours, &ka],
        || has(&a, VIP4),
    );
    // Master_Down_Interval for priority 100 at 50 cs: 3 * 0.5 s + 156/256 * 0.5 s = 1.805 s; plus one interval.
    let bound = Duration::from_micros(
        lb_vrrp::timing::down_micros(lb_vrrp::wire::Version::V3, 100, 50) + 500_000,
    );
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
}

/// v2 with PASS authentication: matching passwords elect normally; a
/// mismatch makes each side discard the other (both Master).
#[test]
fn netns_keepalived_v2_pass_auth() {
    let Some(lab) = lab_or_skip!("vrrp2", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        2,
        "  state BACKUP\n  priority 100\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    let ours = lb(
        &lab,
        &a,
        &[
            "--version",
            "2",
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--pass",
            "secret",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(has(&a, VIP4) && !has(&b, VIP4));
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    drop(ours);
    drop(ka);

    let lab2 = lab_or_skip!("vrrp2m", "keepalived").expect("lab");
    let (a, b) = setup(&lab2);
    let ka = keepalived(
        &lab2,
        &b,
        2,
        "  state BACKUP\n  priority 100\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass other\n  }\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    let ours = lb(
        &lab2,
        &a,
        &[
            "--version",
            "2",
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--pass",
            "secret",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("both Master on mismatch", LIMIT, &[&ours, &ka], || {
        has(&a, VIP4) && has(&b, VIP4)
    });
    wait_for(
        "lb-vrrpd reports auth-mismatch",
        LIMIT,
        &[&ours, &ka],
        || ours.log().contains("DISCARD auth-mismatch"),
    );
}

/// v3/IPv6: election by priority, NA and checksum (pseudo-header) interop.
#[test]
fn netns_keepalived_v3_ipv6_election() {
    let Some(lab) = lab_or_skip!("vrrp6", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 100\n  advert_int 0.5\n  virtual_ipaddress {\n    2001:db8::100/128\n  }",
    );
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "fe80::a",
            "--priority",
            "150",
            "--interval",
            "50",
            "--vip",
            "2001:db8::100",
        ],
    );
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        has(&a, VIP6) && !has(&b, VIP6),
        "VIP6 on a only\n{}\n{}",
        ours.log(),
        ka.log()
    );
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    // keepalived higher: we must step down. Restart keepalived with priority 200.
    drop(ka);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 200\n  advert_int 0.5\n  virtual_ipaddress {\n    2001:db8::100/128\n  }",
    );
    wait_for("keepalived Master (preempts)", LIMIT, &[&ours, &ka], || {
        has(&b, VIP6)
    });
    wait_for("lb-vrrpd Backup", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Master Backup")
    });
    assert!(!has(&a, VIP6));
}

/// Preemption: a higher-priority lb-vrrpd takes over from keepalived; with
/// nopreempt it stays Backup.
#[test]
fn netns_keepalived_preempt_and_nopreempt() {
    let Some(lab) = lab_or_skip!("vrrpp", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 100\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    wait_for("keepalived Master", LIMIT, &[&ka], || has(&b, VIP4));
    let mut nopre = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "50",
            "--nopreempt",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd Backup", LIMIT, &[&nopre, &ka], || {
        nopre.log().contains("STATE Initialize Backup")
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !nopre.log().contains("Master"),
        "nopreempt must not take over\n{}",
        nopre.log()
    );
    assert!(has(&b, VIP4) && !has(&a, VIP4));
    nopre.proc.kill().unwrap();
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "50",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd preempts", LIMIT, &[&ours, &ka], || has(&a, VIP4));
    wait_for("keepalived steps down", LIMIT, &[&ours, &ka], || {
        !has(&b, VIP4)
    });
}

/// Unicast peers on both sides (keepalived `unicast_src_ip` / `unicast_peer`).
#[test]
fn netns_keepalived_unicast_peers() {
    let Some(lab) = lab_or_skip!("vrrpu", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 100\n  advert_int 0.5\n  unicast_src_ip 10.0.0.2\n  unicast_peer {\n    10.0.0.1\n  }\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "50",
            "--unicast-peer",
            "10.0.0.2",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        has(&a, VIP4) && !has(&b, VIP4),
        "{}\n{}",
        ours.log(),
        ka.log()
    );
    assert!(
        !ka.log().contains("Invalid VRRPv3 checksum"),
        "{}",
        ka.log()
    );
    assert!(!ours.log().contains("DISCARD"), "{}", ours.log());
}

/// Why the default v3/IPv4 checksum is the pseudo-header form: the installed
/// keepalived (2.2.7, Debian 12) has no `v3_checksum_as_v2` option, always
/// sends the pseudo-header form and rejects the RFC 9568 message-only form
/// ("Invalid VRRPv3 checksum"), so with `--checksum message` it does not see
/// us and both sides end up Master. (`election_and_handoff` is the positive
/// case with the default.)
#[test]
fn netns_keepalived_rejects_message_only_checksum() {
    let Some(lab) = lab_or_skip!("vrrpc", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 100\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "50",
            "--checksum",
            "message",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for(
        "keepalived rejects the message-only checksum",
        LIMIT,
        &[&ours, &ka],
        || ka.log().contains("Invalid VRRPv3 checksum"),
    );
    wait_for("both Master", LIMIT, &[&ours, &ka], || {
        has(&a, VIP4) && has(&b, VIP4)
    });
    // We accept keepalived's pseudo-header form (no discard) but, being
    // higher, answer it (RFC 9568 §6.4.3) and stay Master.
    assert!(!ours.log().contains("DISCARD"), "{}", ours.log());
}

/// Our gratuitous ARP and unsolicited NA reach the neighbour: with
/// `arp_accept` / `accept_untracked_na` set on `b` (the latter only acts on a
/// router, hence forwarding on), its neighbour table learns the VIPs at `a`'s
/// MAC as soon as `a` (address owner) becomes Master.
#[test]
fn netns_driver_announces_garp_and_na() {
    let Some(lab) = lab_or_skip!("vrrpg") else {
        return;
    };
    let (a, b) = setup(&lab);
    b.sysctl("net.ipv4.conf.eth0.arp_accept", "1").unwrap();
    b.enable_forwarding().unwrap();
    if b.sysctl("net.ipv6.conf.eth0.accept_untracked_na", "1")
        .is_err()
    {
        lb_testing_netns::skip_or_fail(
            lb_testing_netns::test_name!(),
            "kernel without accept_untracked_na",
        );
        return;
    }
    let mac = a.mac("eth0").unwrap();
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let v4 = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "255",
            "--vip",
            "10.0.0.100",
        ],
    );
    let v6 = lb(
        &lab,
        &a,
        &[
            "--src",
            "fe80::a",
            "--priority",
            "255",
            "--vip",
            "2001:db8::100",
        ],
    );
    let neigh = |ip: &str| {
        b.ip(["neigh", "show", ip, "dev", "eth0"])
            .unwrap_or_default()
    };
    wait_for(
        "b learns 10.0.0.100 from the gratuitous ARP",
        LIMIT,
        &[&v4],
        || neigh("10.0.0.100").contains(&mac),
    );
    wait_for(
        "b learns 2001:db8::100 from the unsolicited NA",
        LIMIT,
        &[&v6],
        || neigh("2001:db8::100").contains(&mac),
    );
    // The NA carried the Router flag.
    assert!(
        neigh("2001:db8::100").contains("router"),
        "{}",
        neigh("2001:db8::100")
    );
}

/// The driver polls the link: interface down is FAULT (VIP withdrawn),
/// up again is Backup and, with no other router, Master.
#[test]
fn netns_driver_link_down_is_fault() {
    let Some(lab) = lab_or_skip!("vrrpl") else {
        return;
    };
    let (a, _b) = setup(&lab);
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "20",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("Master", LIMIT, &[&ours], || has(&a, VIP4));
    a.set_link("eth0", false).unwrap();
    wait_for("Fault on link down", LIMIT, &[&ours], || {
        ours.log().contains("STATE Master Fault")
    });
    wait_for("VIP withdrawn", LIMIT, &[&ours], || !has(&a, VIP4));
    a.set_link("eth0", true).unwrap();
    wait_for("Backup on link up", LIMIT, &[&ours], || {
        ours.log().contains("STATE Fault Backup")
    });
    wait_for("Master again", LIMIT, &[&ours], || has(&a, VIP4));
}

/// RFC 9568 §6.4.3: as Active with `--router-advert`, lb-vrrpd sends Router
/// Advertisements from the virtual router's link-local address (the first
/// VIP), Hop Limit 255, to ff02::1, with our MAC in the source link-layer
/// option; a Linux host on the link installs its default route through the
/// virtual address. Without the option (the default) it sends none, and the
/// graceful stop sends no zero-lifetime one (the virtual router lives on).
#[test]
fn netns_driver_router_advertisement() {
    let Some(lab) = lab_or_skip!("vrrpra", "tcpdump") else {
        return;
    };
    let (a, b) = setup(&lab);
    b.sysctl("net.ipv6.conf.eth0.forwarding", "0").unwrap();
    b.sysctl("net.ipv6.conf.eth0.accept_ra", "1").unwrap();
    let mac = a.mac("eth0").unwrap();
    let vll: Ipv6Addr = "fe80::100".parse().unwrap();
    let default_route = || b.ip(["-6", "route", "show", "default"]).unwrap_or_default();
    let args = [
        "--src",
        "fe80::a",
        "--priority",
        "255",
        "--vip",
        "fe80::100",
        "--vip",
        "2001:db8::100",
    ];
    // 1. Off (the default): Master, and no Router Advertisement.
    let (mut dump, pcap) = capture_with(&lab, &b, "ra-off", "icmp6");
    let mut off = lb(&lab, &a, &args);
    wait_for("Master", LIMIT, &[&off], || has(&a, VIP6));
    std::thread::sleep(Duration::from_secs(2));
    off.proc.terminate().unwrap();
    off.proc.wait().unwrap();
    dump.terminate().unwrap();
    dump.wait().unwrap();
    assert!(pcap_router_adverts(&pcap).is_empty(), "RA sent while off");
    assert!(
        !default_route().contains("fe80::100"),
        "{}",
        default_route()
    );
    // 2. On.
    let (mut dump, pcap) = capture_with(&lab, &b, "ra-on", "icmp6");
    let mut with_ra = args.to_vec();
    with_ra.extend(["--router-advert", "--ra-prefix", "2001:db8::/64"]);
    let mut on = lb(&lab, &a, &with_ra);
    wait_for(
        "b's default route via the virtual link-local address",
        LIMIT,
        &[&on],
        || default_route().contains("via fe80::100 dev eth0"),
    );
    on.proc.terminate().unwrap();
    on.proc.wait().unwrap();
    assert!(!has(&a, vll), "VIP withdrawn on stop");
    std::thread::sleep(Duration::from_millis(500));
    dump.terminate().unwrap();
    dump.wait().unwrap();
    let ras = pcap_router_adverts(&pcap);
    assert!(!ras.is_empty(), "no Router Advertisement captured");
    for (src_mac, src, dst, hops, msg) in &ras {
        assert_eq!((*src, *dst, *hops), (vll, ALL_NODES6, 255));
        assert_eq!(*src_mac, mac);
        let p = lb_vrrp::wire::ra::Packet::new_checked(&msg[..]).unwrap();
        assert!(p.verify_checksum(*src, *dst), "bad checksum {msg:02x?}");
        let r = lb_vrrp::wire::ra::Repr::parse(&p).unwrap();
        assert_eq!(
            r.router_lifetime, 1800,
            "no zero-lifetime RA from the virtual address"
        );
        assert_eq!(r.source_mac, Some(mac));
        assert_eq!(
            r.prefixes.as_slice(),
            &[lb_vrrp::wire::ra::PrefixInfo::new(
                "2001:db8::".parse().unwrap(),
                64
            )]
        );
    }
    // tcpdump's decoder reads the same fields.
    let out = std::process::Command::new("tcpdump")
        .args(["-r"])
        .arg(&pcap)
        .args(["-v", "-n", "icmp6 and ip6[40] == 134"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "fe80::100 > ff02::1: [icmp6 sum ok] ICMP6, router advertisement",
        "hlim 255",
        "router lifetime 1800s",
        "source link-address option",
        "2001:db8::/64, Flags [onlink, auto]",
    ] {
        assert!(text.contains(want), "tcpdump lacks {want:?}:\n{text}");
    }
}

/// RFC 4861 §6.2.6 as the Active router with `--router-advert`: a host's
/// Router Solicitation (sent when b re-enables IPv6 on its interface) is
/// received, validated and answered: lb-vrrpd counts it, an RA from the
/// virtual link-local address follows it on the wire, and b gets its
/// default route back.
#[test]
fn netns_driver_answers_router_solicitation() {
    let Some(lab) = lab_or_skip!("vrrprs", "tcpdump") else {
        return;
    };
    let (a, b) = setup(&lab);
    b.sysctl("net.ipv6.conf.eth0.forwarding", "0").unwrap();
    b.sysctl("net.ipv6.conf.eth0.accept_ra", "1").unwrap();
    let default_route = || b.ip(["-6", "route", "show", "default"]).unwrap_or_default();
    let mut ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "fe80::a",
            "--priority",
            "255",
            "--vip",
            "fe80::100",
            "--vip",
            "2001:db8::100",
            "--router-advert",
        ],
    );
    wait_for("b's default route (takeover RA)", LIMIT, &[&ours], || {
        default_route().contains("via fe80::100 dev eth0")
    });
    let (mut dump, pcap) = capture_with(&lab, &b, "rs", "icmp6");
    // Re-enabling IPv6 flushes b's routes and makes it solicit routers.
    b.sysctl("net.ipv6.conf.eth0.disable_ipv6", "1").unwrap();
    assert!(!default_route().contains("fe80::100"));
    b.sysctl("net.ipv6.conf.eth0.accept_ra", "1").unwrap();
    b.sysctl("net.ipv6.conf.eth0.disable_ipv6", "0").unwrap();
    wait_for("b's default route again", LIMIT, &[&ours], || {
        default_route().contains("via fe80::100 dev eth0")
    });
    ours.proc.terminate().unwrap();
    ours.proc.wait().unwrap();
    // Let tcpdump read what the kernel already queued for it.
    std::thread::sleep(Duration::from_millis(500));
    dump.terminate().unwrap();
    dump.wait().unwrap();
    let log = ours.log();
    let solicited: u64 = log
        .lines()
        .find_map(|l| l.split("router_solicitations=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no COUNTERS line\n{log}"));
    assert!(solicited >= 1, "no Router Solicitation handled\n{log}");
    // On the wire: b's solicitation, then our advertisement.
    let frames = pcap_frames(&pcap);
    let icmp_type =
        |f: &Vec<u8>| (f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[20] == 58).then(|| f[54]);
    let rs_at = frames
        .iter()
        .position(|f| icmp_type(f) == Some(133))
        .expect("b sent a Router Solicitation");
    assert!(
        frames[rs_at..]
            .iter()
            .any(|f| icmp_type(f) == Some(134) && f[22..38] == vll_octets()),
        "no Router Advertisement after the solicitation:\n{}",
        String::from_utf8_lossy(
            &std::process::Command::new("tcpdump")
                .arg("-r")
                .arg(&pcap)
                .args(["-n", "-e"])
                .output()
                .unwrap()
                .stdout
        )
    );
}

fn vll_octets() -> [u8; 16] {
    "fe80::100".parse::<Ipv6Addr>().unwrap().octets()
}

/// Accept_Mode (RFC 9568 §6.4.3). By default (true, as keepalived) a host
/// on the link pings the VIP. With `--no-accept` the non-owner Master holds
/// the VIPs but drops traffic to them (nftables table `inet lb_vrrp`), while
/// IPv6 neighbour discovery for the VIP still works (NS/NA exempt). Leaving
/// Master (a higher-priority router preempts) and a graceful stop remove the
/// drop.
#[test]
fn netns_driver_accept_mode() {
    let Some(lab) = lab_or_skip!("vrrpacc", "nft", "ping") else {
        return;
    };
    let (a, b) = setup(&lab);
    // Global addresses so that b can reach the IPv6 VIP and a can answer.
    a.add_addr("eth0", "2001:db8::1".parse::<Ipv6Addr>().unwrap(), 64)
        .unwrap();
    b.add_addr("eth0", "2001:db8::2".parse::<Ipv6Addr>().unwrap(), 64)
        .unwrap();
    let v4_args = [
        "--src",
        "10.0.0.1",
        "--priority",
        "150",
        "--interval",
        "20",
        "--vip",
        "10.0.0.100",
    ];
    let v6_args = [
        "--src",
        "fe80::a",
        "--priority",
        "150",
        "--interval",
        "20",
        "--vip",
        "2001:db8::100",
    ];
    let set = |name: &str| {
        a.run("nft", ["list", "set", "inet", "lb_vrrp", name])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    // 1. Accept_Mode True (the default): the VIPs answer.
    let mut v4 = lb(&lab, &a, &v4_args);
    let mut v6 = lb(&lab, &a, &v6_args);
    wait_for("Masters", LIMIT, &[&v4, &v6], || {
        has(&a, VIP4) && has(&a, VIP6)
    });
    b.ping_wait(VIP4, Duration::from_secs(5))
        .expect("accept mode: the IPv4 VIP answers");
    b.ping_wait(VIP6, Duration::from_secs(5))
        .expect("accept mode: the IPv6 VIP answers");
    assert!(!set("vips4").contains("10.0.0.100"));
    v4.proc.terminate().unwrap();
    v6.proc.terminate().unwrap();
    v4.proc.wait().unwrap();
    v6.proc.wait().unwrap();
    let _ = b.ip(["-6", "neigh", "flush", "dev", "eth0"]);
    // 2. Accept_Mode False: the VIPs are held but do not answer.
    let no_accept = |args: &[&str]| {
        let mut v = args.to_vec();
        v.push("--no-accept");
        lb(&lab, &a, &v)
    };
    let mut v4 = no_accept(&v4_args);
    let mut v6 = no_accept(&v6_args);
    wait_for("Masters", LIMIT, &[&v4, &v6], || {
        has(&a, VIP4) && has(&a, VIP6)
    });
    assert!(set("vips4").contains("10.0.0.100"), "{}", set("vips4"));
    assert!(set("vips6").contains("2001:db8::100"), "{}", set("vips6"));
    assert!(
        b.ping_wait(VIP4, Duration::from_secs(2)).is_err(),
        "the IPv4 VIP answered with Accept_Mode False"
    );
    assert!(
        b.ping_wait(VIP6, Duration::from_secs(2)).is_err(),
        "the IPv6 VIP answered with Accept_Mode False"
    );
    // Neighbour discovery for the VIP was not dropped: b resolved it to a's MAC.
    let mac = a
        .mac("eth0")
        .unwrap()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let neigh = b
        .ip(["-6", "neigh", "show", "2001:db8::100", "dev", "eth0"])
        .unwrap_or_default();
    assert!(neigh.contains(&mac), "NS/NA for the VIP: {neigh:?}");
    // 3. Leaving Master: a higher-priority router on b preempts, a's drop goes.
    let hi = lb(
        &lab,
        &b,
        &[
            "--src",
            "10.0.0.2",
            "--priority",
            "200",
            "--interval",
            "20",
            "--vip",
            "10.0.0.100",
        ],
    );
    wait_for("a leaves Master", LIMIT, &[&v4, &hi], || !has(&a, VIP4));
    wait_for("a's IPv4 drop removed", LIMIT, &[&v4], || {
        !set("vips4").contains("10.0.0.100")
    });
    assert!(has(&b, VIP4));
    // 4. Graceful stop: the IPv6 drop goes with the address.
    v6.proc.terminate().unwrap();
    v6.proc.wait().unwrap();
    assert!(!has(&a, VIP6));
    assert!(!set("vips6").contains("2001:db8::100"), "{}", set("vips6"));
    v4.proc.terminate().unwrap();
    v4.proc.wait().unwrap();
    // Both gone with both sets empty: no table left behind.
    assert!(
        a.run("nft", ["list", "table", "inet", "lb_vrrp"]).is_err(),
        "the table outlived its users"
    );
}

/// RFC 9568 §8.4.2 interop mode against a VRRPv2 keepalived: lb-vrrpd (v3
/// with `--v2-interop`) sends both versions; keepalived follows our VRRPv2
/// advertisements, we follow its. (1) We win by priority; (2) a
/// higher-priority keepalived preempts us and we stay Backup; (3) its
/// graceful stop (VRRPv2 priority 0) hands the VIP back. VIP on exactly one
/// node after each step; the wire: keepalived's packets pass our validation,
/// tcpdump decodes ours in both versions.
#[test]
fn netns_keepalived_v2_interop_mode() {
    let Some(lab) = lab_or_skip!("vrrpmix", "keepalived", "tcpdump") else {
        return;
    };
    let (a, b) = setup(&lab);
    let (mut dump, pcap) = capture(&lab, &b);
    let instance = |prio: u8| {
        format!(
            "  state BACKUP\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.0.0.100/32\n  }}"
        )
    };
    let ka = keepalived(&lab, &b, 2, &instance(100));
    let ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "100",
            "--v2-interop",
            "--vip",
            "10.0.0.100",
        ],
    );
    // 1. We win.
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(has(&a, VIP4) && !has(&b, VIP4), "VIP on a only");
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    // 2. A higher-priority keepalived preempts; we follow its VRRPv2 adverts.
    drop(ka);
    let mut ka = keepalived(&lab, &b, 2, &instance(200));
    wait_for("keepalived Master", LIMIT, &[&ours, &ka], || has(&b, VIP4));
    wait_for("lb-vrrpd Backup", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Master Backup")
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(has(&b, VIP4) && !has(&a, VIP4), "VIP on b only");
    assert_eq!(
        ours.log().matches("STATE Backup Master").count(),
        1,
        "we must stay Backup behind a VRRPv2 Master\n{}",
        ours.log()
    );
    // 3. keepalived stops gracefully: its VRRPv2 priority 0 hands over.
    ka.proc.terminate().unwrap();
    ka.proc.wait().unwrap();
    wait_for(
        "lb-vrrpd Master after priority 0",
        LIMIT,
        &[&ours, &ka],
        || has(&a, VIP4),
    );
    assert!(!has(&b, VIP4));
    std::thread::sleep(Duration::from_secs(1));
    dump.terminate().unwrap();
    dump.wait().unwrap();
    drop(ours);
    // keepalived's VRRPv2 packets pass our validation in interop mode.
    let mut cfg = lb_vrrp::Config::new(lb_vrrp::wire::Version::V3, 51, IpAddr::V4(A4));
    cfg.virtual_addresses = vec![IpAddr::V4(VIP4)];
    cfg.v2_interop = true;
    let mut checker = lb_vrrp::VirtualRouter::new(cfg).unwrap();
    checker.handle_startup(lb_vrrp::Instant::ZERO);
    let mut theirs = Vec::new();
    for (src, dst, ttl, payload) in pcap_vrrp(&pcap) {
        if src != IpAddr::V4(B4) {
            continue;
        }
        assert_eq!(payload[0] >> 4, 2, "keepalived sent VRRPv2");
        checker.handle_packet(
            lb_vrrp::Instant::ZERO,
            lb_vrrp::RxMeta { src, dst, ttl },
            &payload,
        );
        assert_eq!(checker.counters().total_discards(), 0, "{payload:02x?}");
        theirs.push(payload[2]);
    }
    // Its Master advertisements (step 2) and its priority 0 (step 3); at 100
    // (step 1) it was Backup and silent.
    for p in [0u8, 200] {
        assert!(theirs.contains(&p), "keepalived priority {p}: {theirs:?}");
    }
    // tcpdump decodes ours in both versions.
    let out = std::process::Command::new("tcpdump")
        .args(["-r"])
        .arg(&pcap)
        .args(["-v", "-n"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("10.0.0.1 > ")).collect();
    for v in [
        "VRRPv2, Advertisement, vrid 51, prio 150",
        "VRRPv3, Advertisement, vrid 51, prio 150",
    ] {
        assert!(ours.iter().any(|l| l.contains(v)), "no {v:?} in\n{text}");
    }
    for l in &ours {
        assert!(!l.contains("bad") && !l.contains("[|vrrp]"), "tcpdump: {l}");
        assert!(l.contains("addrs: 10.0.0.100"), "tcpdump: {l}");
    }
}

/// RFC 9568 §8.4.2 against a VRRPv3-only keepalived: in v2 interoperation
/// mode we follow a higher-priority Master that speaks VRRPv3 only (we stay
/// Backup, the VIP is on keepalived's node only), and we report it once, as
/// the section asks: "a VRRPv3 Active … not configured for VRRPv2
/// interoperation" (`Counters::v3_speaker_without_v2`, printed by lb-vrrpd
/// on exit).
#[test]
fn netns_keepalived_v2_interop_reports_a_v3_only_master() {
    let Some(lab) = lab_or_skip!("vrrpv3only", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let mut ka = keepalived(
        &lab,
        &b,
        3,
        "  state BACKUP\n  priority 200\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.100/32\n  }",
    );
    wait_for("keepalived Master", LIMIT, &[&ka], || has(&b, VIP4));
    let mut ours = lb(
        &lab,
        &a,
        &[
            "--src",
            "10.0.0.1",
            "--priority",
            "150",
            "--interval",
            "100",
            "--v2-interop",
            "--vip",
            "10.0.0.100",
        ],
    );
    // Several advertisements of keepalived's, none with a VRRPv2 copy.
    std::thread::sleep(Duration::from_secs(5));
    assert!(has(&b, VIP4) && !has(&a, VIP4), "VIP on b only");
    assert!(
        !ours.log().contains("STATE Backup Master"),
        "we must stay Backup behind a VRRPv3 Master\n{}",
        ours.log()
    );
    ours.proc.terminate().unwrap();
    ours.proc.wait().unwrap();
    let log = ours.log();
    assert!(log.contains("v3_speaker_without_v2=1 "), "{log}");
    ka.proc.terminate().unwrap();
    ka.proc.wait().unwrap();
}

// ===== The interop matrix: election, SIGKILL failover, nopreempt and the
// priority-0 handoff in both directions, with the wire decoded by both sides.

/// One cell of the matrix: protocol version and address family.
#[derive(Clone, Copy)]
struct Cell {
    version: u8,
    v6: bool,
    /// Unicast peers on both sides (keepalived `unicast_src_ip` /
    /// `unicast_peer`, lb-vrrpd `--unicast-peer`) instead of the group.
    unicast: bool,
}

impl Cell {
    fn ours(self) -> IpAddr {
        if self.v6 { A6.into() } else { A4.into() }
    }
    fn theirs(self) -> IpAddr {
        if self.v6 { B6.into() } else { B4.into() }
    }
    fn vip(self) -> IpAddr {
        if self.v6 { VIP6.into() } else { VIP4.into() }
    }
    /// keepalived's `advert_int` and ours (`--interval`, centiseconds in v3, seconds in v2).
    fn intervals(self) -> (&'static str, &'static str, u64) {
        if self.version == 2 {
            ("1", "1", 1_000_000)
        } else {
            ("0.5", "50", 500_000)
        }
    }
    fn keepalived_instance(self, priority: u8, extra: &str) -> String {
        let vip = if self.v6 {
            "2001:db8::100/128"
        } else {
            "10.0.0.100/32"
        };
        let unicast = if self.unicast {
            format!(
                "  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n",
                self.theirs(),
                self.ours()
            )
        } else {
            String::new()
        };
        format!(
            "  state BACKUP\n  priority {priority}\n  advert_int {}\n{unicast}{extra}  virtual_ipaddress {{\n    {vip}\n  }}",
            self.intervals().0
        )
    }
    fn lb_args(self, priority: u8, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--version".into(),
            self.version.to_string(),
            "--src".into(),
            self.ours().to_string(),
            "--priority".into(),
            priority.to_string(),
            "--interval".into(),
            self.intervals().1.into(),
            "--vip".into(),
            self.vip().to_string(),
        ];
        if self.unicast {
            v.extend(["--unicast-peer".into(), self.theirs().to_string()]);
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }
}

fn lb_owned(lab: &Lab, host: &Host, args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lb(lab, host, &args)
}

/// `tcpdump -w` of VRRP on `host`'s eth0 into the lab directory.
fn capture(lab: &Lab, host: &Host) -> (Process, PathBuf) {
    capture_with(lab, host, "vrrp", "ip proto 112 or ip6 proto 112")
}

/// `tcpdump -w` of `filter` on `host`'s eth0 into `<host>-<tag>.pcap` in the lab directory.
fn capture_with(lab: &Lab, host: &Host, tag: &str, filter: &str) -> (Process, PathBuf) {
    let file = lab
        .dir()
        .unwrap()
        .join(format!("{}-{tag}.pcap", host.name()));
    let mut cmd = host.command("tcpdump");
    // --immediate-mode: hand each packet to tcpdump at once (not in blocks
    // that a prompt SIGTERM would leave unread).
    cmd.args(["-i", "eth0", "-U", "--immediate-mode", "-n", "-w"])
        .arg(&file)
        .arg(filter)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let p = Process::spawn(cmd).unwrap();
    // tcpdump needs a moment to attach before the daemons start.
    std::thread::sleep(Duration::from_millis(500));
    (p, file)
}

/// The Ethernet frames of a pcap file.
fn pcap_frames(file: &std::path::Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(file).unwrap();
    assert!(data.len() >= 24, "pcap too short");
    let le = data[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |o: usize| {
        let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        out.push(data[off + 16..(off + 16 + caplen).min(data.len())].to_vec());
        off += 16 + caplen;
    }
    out
}

/// The VRRP packets of a pcap file (Ethernet link type): (source, destination, TTL, payload).
fn pcap_vrrp(file: &std::path::Path) -> Vec<(IpAddr, IpAddr, u8, Vec<u8>)> {
    let mut out = Vec::new();
    for frame in pcap_frames(file) {
        if frame.len() < 14 {
            continue;
        }
        let ip = &frame[14..];
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 if ip.len() >= 20 && ip[9] == 112 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
                let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
                out.push((src.into(), dst.into(), ip[8], ip[ihl..].to_vec()));
            }
            0x86dd if ip.len() >= 40 && ip[6] == 112 => {
                let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
                let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
                out.push((src.into(), dst.into(), ip[7], ip[40..].to_vec()));
            }
            _ => {}
        }
    }
    out
}

/// A captured ICMPv6 message: (source MAC, source, destination, Hop Limit, message).
type Icmp6Capture = ([u8; 6], Ipv6Addr, Ipv6Addr, u8, Vec<u8>);

/// The ICMPv6 Router Advertisements of a pcap file.
fn pcap_router_adverts(file: &std::path::Path) -> Vec<Icmp6Capture> {
    let mut out = Vec::new();
    for frame in pcap_frames(file) {
        if frame.len() < 14 + 40 + 16 || frame[12..14] != [0x86, 0xdd] {
            continue;
        }
        let ip = &frame[14..];
        if ip[6] != 58 || ip[40] != 134 {
            continue;
        }
        let mac = <[u8; 6]>::try_from(&frame[6..12]).unwrap();
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        out.push((mac, src, dst, ip[7], ip[40..].to_vec()));
    }
    out
}

/// Both decoders agree with the wire: every keepalived packet passes our
/// receive validation (no discard reason), and tcpdump's VRRP decoder reads
/// ours with the right VRID, priorities and address. Returns the priorities
/// keepalived sent.
fn check_wire(cell: Cell, pcap: &std::path::Path, our_prios: &[u8]) -> Vec<u8> {
    use lb_vrrp::wire::{Auth, Version};
    let packets = pcap_vrrp(pcap);
    let version = if cell.version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    let mut cfg = lb_vrrp::Config::new(version, 51, cell.ours());
    cfg.virtual_addresses = vec![cell.vip()];
    cfg.interval = if cell.version == 2 { 1 } else { 50 };
    cfg.auth = Auth::None;
    let mut checker = lb_vrrp::VirtualRouter::new(cfg).unwrap();
    checker.handle_startup(lb_vrrp::Instant::from_micros(0));
    let mut theirs = Vec::new();
    for (src, dst, ttl, payload) in &packets {
        if *src != cell.theirs() {
            continue;
        }
        let before = checker.counters().adverts_received;
        let meta = lb_vrrp::RxMeta {
            src: *src,
            dst: *dst,
            ttl: *ttl,
        };
        checker.handle_packet(lb_vrrp::Instant::from_micros(0), meta, payload);
        while let Some(ev) = checker.poll_event() {
            assert!(
                !matches!(ev, lb_vrrp::Event::Discarded { .. }),
                "keepalived packet discarded by our codec: {ev:?} {payload:02x?}"
            );
        }
        assert_eq!(checker.counters().total_discards(), 0);
        assert_eq!(checker.counters().adverts_received, before + 1);
        theirs.push(payload[2]);
    }
    assert!(!theirs.is_empty(), "no keepalived packet captured");
    // tcpdump's decoder on our packets.
    let out = std::process::Command::new("tcpdump")
        .args(["-r"])
        .arg(pcap)
        .args(["-v", "-n"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("{} > ", cell.ours())))
        .collect();
    assert!(!ours.is_empty(), "no packet of ours in\n{text}");
    for l in &ours {
        assert!(
            l.contains(&format!("VRRPv{}, Advertisement, vrid 51,", cell.version)),
            "tcpdump: {l}"
        );
        assert!(!l.contains("bad") && !l.contains("[|vrrp]"), "tcpdump: {l}");
        assert!(
            l.contains(&format!("addrs: {}", cell.vip())),
            "tcpdump: {l}"
        );
    }
    for p in our_prios {
        assert!(
            ours.iter().any(|l| l.contains(&format!("prio {p},"))),
            "tcpdump shows no advertisement of ours with priority {p}\n{text}"
        );
    }
    theirs
}

/// Runs the matrix steps for one cell:
/// 1. election by priority (we win), VIP on exactly one node;
/// 2. SIGKILL of our side: keepalived takes over within
///    Master_Down_Interval + one interval;
/// 3. a higher-priority `--nopreempt` lb-vrrpd stays Backup;
/// 4. a lower-priority lb-vrrpd; keepalived stops gracefully: its
///    priority-0 advertisement hands the VIP to us;
/// 5. a higher-priority keepalived with `nopreempt` stays Backup behind us;
/// 6. we stop gracefully: priority 0, keepalived takes over;
///
/// then checks the captured wire with both decoders.
fn matrix(lab: &Lab, cell: Cell) {
    let (a, b) = setup(lab);
    let (mut dump, pcap) = capture(lab, &b);
    let vip = cell.vip();
    let (_, _, interval_us) = cell.intervals();
    // 1. Election.
    let ka = keepalived(lab, &b, cell.version, &cell.keepalived_instance(100, ""));
    let mut ours = lb_owned(lab, &a, &cell.lb_args(150, &[]));
    wait_for("lb-vrrpd Master", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Backup Master")
    });
    wait_for("keepalived Backup", LIMIT, &[&ours, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_micros(3 * interval_us));
    assert!(has(&a, vip) && !has(&b, vip), "VIP on a only");
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    // 2. SIGKILL of our side.
    ours.proc.kill().unwrap();
    let took = wait_for("keepalived Master after SIGKILL", LIMIT, &[&ka], || {
        has(&b, vip)
    });
    let version = if cell.version == 2 {
        lb_vrrp::wire::Version::V2
    } else {
        lb_vrrp::wire::Version::V3
    };
    let units = if cell.version == 2 { 1 } else { 50 };
    let bound =
        Duration::from_micros(lb_vrrp::timing::down_micros(version, 100, units) + interval_us);
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
    // The killed lb-vrrpd left its VIP behind (no shutdown ran); clean up
    // as a restarted daemon's host would.
    let _ = a.del_addr("eth0", vip, if cell.v6 { 128 } else { 32 });
    // 3. nopreempt on our side.
    let mut nopre = lb_owned(lab, &a, &cell.lb_args(150, &["--nopreempt"]));
    wait_for("nopreempt lb-vrrpd Backup", LIMIT, &[&nopre, &ka], || {
        nopre.log().contains("STATE Initialize Backup")
    });
    std::thread::sleep(Duration::from_micros(5 * interval_us));
    assert!(!nopre.log().contains("Master"), "{}", nopre.log());
    assert!(has(&b, vip) && !has(&a, vip), "VIP on b only");
    nopre.proc.kill().unwrap();
    // 4. keepalived stops gracefully: its priority 0 hands over to us.
    let low = lb_owned(lab, &a, &cell.lb_args(50, &[]));
    wait_for("low lb-vrrpd Backup", LIMIT, &[&low, &ka], || {
        low.log().contains("STATE Initialize Backup")
    });
    std::thread::sleep(Duration::from_micros(2 * interval_us));
    assert!(!low.log().contains("Master"), "{}", low.log());
    let mut ka = ka;
    ka.proc.terminate().unwrap();
    ka.proc.wait().unwrap();
    wait_for(
        "lb-vrrpd Master after priority 0",
        LIMIT,
        &[&low, &ka],
        || has(&a, vip),
    );
    assert!(!has(&b, vip), "keepalived removed its VIP on stop");
    // 5. keepalived nopreempt with a higher priority stays Backup.
    let ka = keepalived(
        lab,
        &b,
        cell.version,
        &cell.keepalived_instance(200, "  nopreempt\n"),
    );
    wait_for("keepalived nopreempt Backup", LIMIT, &[&low, &ka], || {
        ka.log().contains("Entering BACKUP STATE")
    });
    std::thread::sleep(Duration::from_micros(5 * interval_us));
    assert!(!ka.log().contains("Entering MASTER STATE"), "{}", ka.log());
    assert!(has(&a, vip) && !has(&b, vip), "VIP on a only");
    // 6. Our graceful stop: priority 0, keepalived takes over.
    low.proc.terminate().unwrap();
    wait_for(
        "keepalived Master after our priority 0",
        LIMIT,
        &[&low, &ka],
        || has(&b, vip),
    );
    let mut low = low;
    low.proc.wait().unwrap();
    assert!(!has(&a, vip));
    std::thread::sleep(Duration::from_micros(2 * interval_us));
    dump.terminate().unwrap();
    dump.wait().unwrap();
    drop(ka);
    let theirs = check_wire(cell, &pcap, &[150, 50, 0]);
    // keepalived's priority 0 (step 4) and its Master adverts at 100 and 200.
    for p in [0u8, 100, 200] {
        assert!(
            theirs.contains(&p),
            "no keepalived advertisement with priority {p}: {theirs:?}"
        );
    }
}

#[test]
fn netns_keepalived_matrix_v2_ipv4() {
    let Some(lab) = lab_or_skip!("vrrpm2", "keepalived", "tcpdump") else {
        return;
    };
    matrix(
        &lab,
        Cell {
            version: 2,
            v6: false,
            unicast: false,
        },
    );
}

#[test]
fn netns_keepalived_matrix_v3_ipv4() {
    let Some(lab) = lab_or_skip!("vrrpm3", "keepalived", "tcpdump") else {
        return;
    };
    matrix(
        &lab,
        Cell {
            version: 3,
            v6: false,
            unicast: false,
        },
    );
}

#[test]
fn netns_keepalived_matrix_v3_ipv6() {
    let Some(lab) = lab_or_skip!("vrrpm6", "keepalived", "tcpdump") else {
        return;
    };
    matrix(
        &lab,
        Cell {
            version: 3,
            v6: true,
            unicast: false,
        },
    );
}

/// The matrix with unicast peers on both sides, VRRPv2 (the multicast cells
/// above; v3/IPv4 unicast is `netns_keepalived_unicast_peers`).
#[test]
fn netns_keepalived_matrix_v2_ipv4_unicast() {
    let Some(lab) = lab_or_skip!("vrrpu2", "keepalived", "tcpdump") else {
        return;
    };
    matrix(
        &lab,
        Cell {
            version: 2,
            v6: false,
            unicast: true,
        },
    );
}

/// The matrix with unicast peers on both sides, v3 over IPv6 (link-local
/// peers, keepalived's pseudo-header with the unicast destination).
#[test]
fn netns_keepalived_matrix_v3_ipv6_unicast() {
    let Some(lab) = lab_or_skip!("vrrpu6", "keepalived", "tcpdump") else {
        return;
    };
    matrix(
        &lab,
        Cell {
            version: 3,
            v6: true,
            unicast: true,
        },
    );
}

/// keepalived is Master (higher priority) and is SIGKILLed: lb-vrrpd takes
/// the VIP within Master_Down_Interval + one interval.
fn keepalived_killed(lab: &Lab, cell: Cell) {
    let (a, b) = setup(lab);
    let (_, _, interval_us) = cell.intervals();
    let vip = cell.vip();
    let mut ka = keepalived(lab, &b, cell.version, &cell.keepalived_instance(200, ""));
    wait_for("keepalived Master", LIMIT, &[&ka], || has(&b, vip));
    let ours = lb_owned(lab, &a, &cell.lb_args(100, &[]));
    wait_for("lb-vrrpd Backup", LIMIT, &[&ours, &ka], || {
        ours.log().contains("STATE Initialize Backup")
    });
    std::thread::sleep(Duration::from_micros(5 * interval_us));
    assert!(!ours.log().contains("Master"), "{}", ours.log());
    assert!(has(&b, vip) && !has(&a, vip), "VIP on b only");
    ka.proc.kill().unwrap();
    let took = wait_for(
        "lb-vrrpd Master after SIGKILL",
        LIMIT,
        &[&ours, &ka],
        || has(&a, vip),
    );
    let (version, units) = if cell.version == 2 {
        (lb_vrrp::wire::Version::V2, 1)
    } else {
        (lb_vrrp::wire::Version::V3, 50)
    };
    let bound =
        Duration::from_micros(lb_vrrp::timing::down_micros(version, 100, units) + interval_us);
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
}

#[test]
fn netns_keepalived_v2_ipv4_failover_after_sigkill() {
    let Some(lab) = lab_or_skip!("vrrpk2", "keepalived") else {
        return;
    };
    keepalived_killed(
        &lab,
        Cell {
            version: 2,
            v6: false,
            unicast: false,
        },
    );
}

#[test]
fn netns_keepalived_v3_ipv6_failover_after_sigkill() {
    let Some(lab) = lab_or_skip!("vrrpk6", "keepalived") else {
        return;
    };
    keepalived_killed(
        &lab,
        Cell {
            version: 3,
            v6: true,
            unicast: false,
        },
    );
}

/// `MultiDriver`: ten VRIDs on one shared socket against keepalived running
/// ten `vrrp_instance`s on the same link. Ours have the higher priority and
/// win every VRID (the packets of each VRID reach the right router); a
/// graceful stop hands every VIP to keepalived with priority 0.
#[test]
fn netns_multidriver_ten_vrids_against_keepalived() {
    use lb_vrrp::wire::Version;
    let Some(lab) = lab_or_skip!("vrrpmd", "keepalived") else {
        return;
    };
    let (a, b) = setup(&lab);
    let vrids = 1..=10u8;
    let vip = |v: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 1, v));
    let dir = lab.dir().unwrap();
    let conf = dir.join("multi.conf");
    let mut text = String::from("global_defs {\n  router_id multi\n  vrrp_version 3\n}\n");
    for v in vrids.clone() {
        text.push_str(&format!(
            "vrrp_instance VI_{v} {{\n  interface eth0\n  virtual_router_id {v}\n  state BACKUP\n  \
             priority 100\n  advert_int 0.5\n  virtual_ipaddress {{\n    {}/32\n  }}\n}}\n",
            vip(v)
        ));
    }
    std::fs::write(&conf, text).unwrap();
    let log = dir.join("multi-keepalived.log");
    let mut cmd = b.command("keepalived");
    cmd.args(["-n", "-l", "-D", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("multi.pid"))
        .arg("-r")
        .arg(dir.join("multi-vrrp.pid"))
        .arg("-c")
        .arg(dir.join("multi-chk.pid"))
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(log.with_extension("err")).unwrap());
    let ka = Daemon {
        proc: Process::spawn(cmd).unwrap(),
        log,
    };
    let all_on = |h: &Host| vrids.clone().all(|v| has(h, vip(v)));
    let none_on = |h: &Host| vrids.clone().all(|v| !has(h, vip(v)));
    wait_for("keepalived Master of all VRIDs", LIMIT, &[&ka], || {
        all_on(&b)
    });

    let vrids2 = vrids.clone();
    let ours = netns_util::spawn_multi(&a, move |d| {
        for v in vrids2 {
            let mut cfg = lb_vrrp::Config::new(Version::V3, v, A4.into());
            cfg.priority = 150;
            cfg.interval = 50;
            cfg.virtual_addresses = vec![vip(v)];
            d.add(lb_vrrp::VirtualRouter::new(cfg).unwrap(), "eth0")
                .unwrap();
        }
    });
    wait_for("MultiDriver Master of all VRIDs", LIMIT, &[&ka], || {
        all_on(&a) && none_on(&b)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(all_on(&a) && none_on(&b), "every VIP on a only");
    for v in vrids.clone() {
        assert!(
            ka.log()
                .contains(&format!("(VI_{v}) Entering BACKUP STATE")),
            "VI_{v}\n{}",
            ka.log()
        );
    }
    ours.stop().unwrap();
    assert!(none_on(&a), "MultiDriver removed its VIPs on shutdown");
    wait_for(
        "keepalived Master of all VRIDs again",
        LIMIT,
        &[&ka],
        || all_on(&b),
    );
    let received_zero = ka
        .log()
        .matches("Backup received priority 0 advertisement")
        .count();
    assert_eq!(received_zero, 10, "{}", ka.log());
}
