//! Interop with real keepalived in network namespaces: two hosts on one
//! veth link, `a` running `lb-vrrpd` (our driver), `b` running keepalived.
//!
//! Needs root, network namespaces and keepalived; skips otherwise (fails
//! with `CI=true`). Run with `--features linux`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lb_testing_netns::{Host, Lab, Process, lab_or_skip};

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const A6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
const B6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

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
    let dir = lab.dir().unwrap();
    let log = dir.join(format!("{}-lb.log", host.name()));
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
