//! Mastership per VIP, end to end in network namespaces (userspace
//! dataplane): two directors and two VRRP instances with crossed
//! priorities, the classic active/active pair. Each director is master of
//! one instance and programs only that instance's service; when one dies
//! the other takes its VIP and serves both; restarted, it preempts its VIP
//! back and each serves its own again.

mod seedlab;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lb_examples::director::{daemon, lab};
use lb_testing_netns::{Host, Process, lab_or_skip, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_director");

const VIP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const VIP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);

/// VI_1 owns VIP A (service A → rs1), VI_2 owns VIP B (service B → rs2);
/// `p1` and `p2` are this director's priorities for them.
fn conf(p1: u8, p2: u8) -> String {
    let instance = |name: &str, vrid: u8, prio: u8, vip: Ipv4Addr| {
        format!(
            "vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {prio}
    advert_int 0.1
    version 3
    virtual_ipaddress {{ {vip}/24 }}
}}
"
        )
    };
    let service = |vip: Ipv4Addr, rs: u8| {
        format!(
            "virtual_server {vip} 80 {{
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.{rs} 80 {{
        weight 1
    }}
}}
"
        )
    };
    [
        instance("VI_1", 91, p1, VIP_A),
        instance("VI_2", 92, p2, VIP_B),
        service(VIP_A, 21),
        service(VIP_B, 22),
    ]
    .concat()
}

fn spawn(host: &Host, d: &Path, name: &str, text: &str) -> Process {
    let cfg = d.join(format!("{name}.conf"));
    std::fs::write(&cfg, text).unwrap();
    let mut cmd = host.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(&cfg)
        .args(["--dataplane", "userspace", "--runtime-dir"])
        .arg(d.join(format!("run-{name}")))
        .env("NO_COLOR", "1")
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join(format!("{name}.log")))
                .unwrap(),
        );
    Process::spawn(cmd).unwrap()
}

/// The services a director programs, from its status.
fn services(d: &Path, name: &str) -> Vec<String> {
    let Ok(s) = daemon::status(&d.join(format!("run-{name}")), true) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
    let mut out: Vec<String> = v["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["service"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

#[test]
fn netns_director_active_active() {
    let Some(l) = lab_or_skip!("diraa", "nft") else {
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
    for (h, a) in [(&client, 2u8)]
        .into_iter()
        .chain(dirs.iter().zip([11u8, 12]))
        .chain(rs.iter().zip([21u8, 22]))
    {
        seedlab::plug(&l, &sw, h, "eth0", Ipv4Addr::new(10, 0, 0, a));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for (i, h) in rs.iter().enumerate() {
        h.add_loopback_vip(VIP_A).unwrap();
        h.add_loopback_vip(VIP_B).unwrap();
        let (on, stop) = (Arc::new(AtomicBool::new(true)), stop.clone());
        h.spawn_thread(move || lab::http_server(i as u8 + 1, on, stop))
            .unwrap();
    }
    let d = l.dir().unwrap().to_owned();
    // dir1 prefers VI_1 (VIP A), dir2 prefers VI_2 (VIP B).
    let conf1 = conf(150, 100);
    let mut p1 = spawn(&dirs[0], &d, "dir1", &conf1);
    let mut p2 = spawn(&dirs[1], &d, "dir2", &conf(100, 150));
    let owns = |i: usize, vip: Ipv4Addr| dirs[i].has_addr("eth0", vip).unwrap();
    let svc_a = format!("TCP  {VIP_A}:80");
    let svc_b = format!("TCP  {VIP_B}:80");
    let split = || {
        owns(0, VIP_A)
            && !owns(0, VIP_B)
            && owns(1, VIP_B)
            && !owns(1, VIP_A)
            && services(&d, "dir1") == [svc_a.clone()]
            && services(&d, "dir2") == [svc_b.clone()]
    };
    wait_for("each director to hold and serve its own VIP", 20, split);
    let answer = |vip: Ipv4Addr| {
        let a = SocketAddr::new(IpAddr::V4(vip), 80);
        client
            .run_in(move || lab::request_to(a, Duration::from_millis(500)))
            .unwrap()
    };
    let both_answer = || answer(VIP_A) == Some(1) && answer(VIP_B) == Some(2);
    wait_for("responses through both VIPs (split)", 10, both_answer);

    // dir1 dies (SIGKILL). A dead machine holds no addresses: remove the
    // VIP its kernel still has, as the crash would.
    p1.kill().unwrap();
    dirs[0]
        .run("ip", ["addr", "del", &format!("{VIP_A}/24"), "dev", "eth0"])
        .unwrap();
    wait_for("dir2 to hold and serve both VIPs", 10, || {
        owns(1, VIP_A) && owns(1, VIP_B) && services(&d, "dir2") == [svc_a.clone(), svc_b.clone()]
    });
    wait_for("responses through both VIPs (dir2 alone)", 10, both_answer);

    // dir1 back: it preempts VI_1, dir2 withdraws service A.
    let mut p1 = spawn(&dirs[0], &d, "dir1", &conf1);
    wait_for("the split again after dir1's restart", 20, split);
    wait_for("responses through both VIPs (split again)", 10, both_answer);
    let log2 = std::fs::read_to_string(d.join("dir2.log")).unwrap();
    assert!(
        log2.contains("instance=VI_1") && log2.contains("to=Master"),
        "{log2}"
    );

    for p in [&mut p1, &mut p2] {
        p.terminate().unwrap();
        assert!(p.wait().unwrap().success());
    }
    stop.store(true, Ordering::Relaxed);
}
