//! Traffic through the director's kernel IPVS dataplane, inside the kernel
//! VM, on network namespaces built around the seed configurations'
//! addresses (the VM kernel has IPVS, veth and bridges; each namespace has
//! its own IPVS table): `nat-rr.conf` (NAT round robin, TCP checks),
//! `dr-persist.conf` (DR, wlc, persistence), `vrrp-sync.conf` (two
//! directors, one sync group), and `director lab`. The VM is emulated
//! (TCG), so request counts are small and every wait generous.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lb_examples::director::{daemon, lab};
use lb_testing_netns::{Host, lab_or_skip};

mod seedlab;
use seedlab::{
    NatPhase, nat_rr_lab, nat_rr_scenario, plug, seed, spawn_director, vrrp_sync_scenario, wait_for,
};

/// `ipvsadm -Ln` in `h`'s namespace.
fn ipvsadm(h: &Host) -> String {
    let out = h.run("ipvsadm", ["-Ln"]).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `-> ADDR Forward Weight` line of `dest` in an `ipvsadm -Ln` listing.
fn dest_line<'a>(listing: &'a str, dest: &str) -> Option<Vec<&'a str>> {
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == "->" && f[1] == dest).then_some(f)
    })
}

/// `nat-rr.conf` as shipped with `--dataplane ipvs`: the scenario of the
/// netns test (round robin, NAT return path, metrics from the kernel's
/// counters, TCP_CHECK drain without a failed request, restore), with the
/// IPVS table checked at each step. The director host forwards (IPVS NAT
/// handles replies on the forward path); nothing else is prepared.
#[test]
fn vm_director_traffic_nat_rr() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(900)), {
        let Some(l) = lab_or_skip!("vmnat") else {
            return;
        };
        let n = nat_rr_lab(&l);
        n.dir.enable_forwarding().unwrap();
        let mut listings = Vec::new();
        nat_rr_scenario(&l, &n, "ipvs", 10, |n, phase| {
            if let NatPhase::Drained = phase {
                // The dataplane thread applies the new plan a moment
                // after the health result.
                wait_for("rs2 out of the kernel's table", 30, || {
                    dest_line(&ipvsadm(&n.dir), "10.11.12.3:80").is_none()
                });
            }
            let t = ipvsadm(&n.dir);
            assert!(t.contains("TCP  192.168.200.10:80 rr"), "{t}");
            let rs1 = dest_line(&t, "10.11.12.2:80");
            assert!(
                rs1.as_ref().is_some_and(|f| f[2] == "Masq" && f[3] == "1"),
                "{t}"
            );
            let rs2 = dest_line(&t, "10.11.12.3:80");
            match phase {
                NatPhase::Serving => {
                    assert!(rs2.is_some_and(|f| f[2] == "Masq" && f[3] == "1"), "{t}");
                }
                // No inhibit_on_failure: the failed server is removed.
                NatPhase::Drained => assert!(rs2.is_none(), "{t}"),
            }
            listings.push(t);
        });
        for t in listings {
            eprintln!("{t}");
        }
        // The director removed its service on SIGTERM.
        let t = ipvsadm(&n.dir);
        assert!(!t.contains("192.168.200.10"), "{t}");
    });
}

/// `vrrp-sync.conf` as shipped with `--dataplane ipvs` (the seed has no
/// virtual server: VRRP only): the scenario of the netns test, the two
/// instances' VIPs moving together between two directors.
#[test]
fn vm_director_seed_vrrp_sync_group() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(600)), {
        let Some(l) = lab_or_skip!("vmvsg") else {
            return;
        };
        vrrp_sync_scenario(&l, "ipvs");
    });
}

/// `dr-persist.conf` as shipped with `--dataplane ipvs` (no VRRP: the VIP
/// is put on the director by hand, as keepalived expects): the table has
/// the persistent wlc service over three Route destinations; a client
/// sticks to one server; when that server fails its check it leaves the
/// table (rs3, `inhibit_on_failure`: weight 0) and the client moves; when
/// it comes back it is in the table again with its weight.
#[test]
fn vm_director_traffic_dr_persist() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(900)), {
        let Some(l) = lab_or_skip!("vmdr") else {
            return;
        };
        let sw = l.add_switch("sw").unwrap();
        let client = l.add_host("client").unwrap();
        let dir = l.add_host("dir").unwrap();
        let rs: Vec<_> = (1..=3)
            .map(|i| l.add_host(&format!("rs{i}")).unwrap())
            .collect();
        plug(&l, &sw, &client, "eth0", Ipv4Addr::new(10, 0, 0, 50));
        plug(&l, &sw, &dir, "eth0", Ipv4Addr::new(10, 0, 0, 1));
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        dir.add_addr("eth0", vip, 24).unwrap();
        // rs3 has `inhibit_on_failure` (weight 0, not removed): what
        // keepalived users set so that a persistent client leaves a
        // quiesced server (the userspace dataplane does this itself).
        lb_testing_vm::sh("modprobe ip_vs");
        dir.sysctl("net.ipv4.vs.expire_quiescent_template", "1")
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut serving = Vec::new();
        for (i, h) in rs.iter().enumerate() {
            plug(&l, &sw, h, "eth0", Ipv4Addr::new(10, 0, 0, 11 + i as u8));
            h.add_loopback_vip(vip).unwrap();
            let (on, stop) = (Arc::new(AtomicBool::new(true)), stop.clone());
            serving.push(on.clone());
            h.spawn_thread(move || lab::http_server_on(i as u8 + 1, 443, on, stop))
                .unwrap();
        }
        let d = l.dir().unwrap().to_owned();
        let (mut p, run_dir) =
            spawn_director(&dir, &d, "dir", &seed("dr-persist.conf"), "ipvs", &[]);
        let log = || std::fs::read_to_string(d.join("dir.log")).unwrap_or_default();
        let status = || daemon::status(&run_dir, true).unwrap_or_default();
        wait_for("the three servers up", 120, || {
            status().matches("\"up\":true").count() == 3
        });
        // The dataplane thread programs the kernel a moment after the
        // health results arrive.
        wait_for("the table", 30, || {
            let t = ipvsadm(&dir);
            (11..=13).all(|h| dest_line(&t, &format!("10.0.0.{h}:443")).is_some())
        });
        let t = ipvsadm(&dir);
        assert!(t.contains("TCP  10.0.0.100:443 wlc persistent 9600"), "{t}");
        for h in 11..=13 {
            let f = dest_line(&t, &format!("10.0.0.{h}:443"));
            assert!(f.is_some_and(|f| f[2] == "Route"), "{t}");
        }
        let target = SocketAddr::new(IpAddr::V4(vip), 443);
        let ask = || {
            client
                .run_in(move || lab::request_to(target, Duration::from_secs(5)))
                .unwrap()
        };
        wait_for("a response through the VIP", 60, || ask().is_some());
        let first = ask().unwrap();
        for _ in 0..5 {
            assert_eq!(ask(), Some(first), "persistence broken\n{}", log());
        }
        let server = format!("10.0.0.1{first}:443");
        serving[usize::from(first - 1)].store(false, Ordering::Relaxed);
        // delay_loop 15 with one retry: up to about two rounds of checks.
        wait_for("the failed server to go down", 180, || {
            seedlab::up_in_status(&status(), &server) == Some(false)
        });
        wait_for("the failed server to be drained", 30, || {
            let t = ipvsadm(&dir);
            let f = dest_line(&t, &server);
            if first == 3 {
                f.is_some_and(|f| f[3] == "0")
            } else {
                f.is_none()
            }
        });
        // The client's template points at a removed (or quiesced) server:
        // the kernel drops it when next used (ip_vs_check_template) and
        // reschedules.
        wait_for("the client to move", 60, || {
            ask().is_some_and(|n| n != first)
        });
        let moved = ask().unwrap();
        serving[usize::from(first - 1)].store(true, Ordering::Relaxed);
        wait_for("the server to come back", 180, || {
            seedlab::up_in_status(&status(), &server) == Some(true)
        });
        let weight = if first == 3 { "50" } else { "100" };
        wait_for("the server back in the table", 30, || {
            dest_line(&ipvsadm(&dir), &server).is_some_and(|f| f[3] == weight)
        });
        // The client stays where it moved (its template).
        assert_eq!(ask(), Some(moved));
        eprintln!("{}", ipvsadm(&dir));
        p.terminate().unwrap();
        assert!(p.wait().unwrap().success(), "{}", log());
        let t = ipvsadm(&dir);
        assert!(!t.contains("10.0.0.100"), "{t}");
        stop.store(true, Ordering::Relaxed);
    });
}

/// `director lab` inside the VM, where `--dataplane auto` finds kernel
/// IPVS: the same scenario as on the host (wlc over three DR servers, one
/// drained by its failing HTTP check, the master killed and the backup
/// taking over), now through the kernel. A low request rate: the VM is
/// emulated.
#[test]
fn vm_director_lab_ipvs() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(900)), {
        let Some(l) = lab_or_skip!("vmlab") else {
            return;
        };
        let args = lab::LabArgs {
            rate: 10,
            phase_secs: 6,
            v3: true,
            director_bin: Some(seedlab::BIN.into()),
            quiet: true,
        };
        let r = lab::run_in(&l, &args).unwrap();
        eprintln!("{r:?}");
        let d = l.dir().unwrap();
        let log1 = std::fs::read_to_string(d.join("dir1.log")).unwrap();
        assert!(log1.contains("dataplane=Ipvs"), "{log1}");
        assert!(r.before.iter().all(|&n| n > 0), "{r:?}");
        assert_eq!(
            r.drained[2], 0,
            "rs3 still served after its check failed: {r:?}"
        );
        assert!(r.drained[0] > 0 && r.drained[1] > 0, "{r:?}");
        assert!(
            r.failover.is_some(),
            "no response after the master died: {r:?}"
        );
        assert!(r.after[0] > 0 && r.after[1] > 0 && r.after[2] == 0, "{r:?}");
        assert!(
            r.vrrp_log
                .iter()
                .any(|l| l.starts_with("dir2:") && l.contains("to=Master")),
            "the backup never became master: {r:?}"
        );
    });
}
