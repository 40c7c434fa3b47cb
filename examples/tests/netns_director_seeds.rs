//! The seed configurations shipped in `examples/configs/`, run as written by
//! the `director` with the userspace dataplane, in network namespaces built
//! around their addresses: `nat-rr.conf` (NAT round robin with TCP checks,
//! the real servers' gateway an excluded VIP on the inside link) and
//! `vrrp-sync.conf` (two instances, outside and inside, in one sync group).

use std::net::Ipv4Addr;

use lb_examples::director::daemon;
use lb_testing_netns::lab_or_skip;

mod seedlab;
use seedlab::{nat_rr_lab, nat_rr_scenario, plug, seed, spawn_director, wait_for};

/// `nat-rr.conf` as shipped, userspace dataplane: see
/// [`seedlab::nat_rr_scenario`] (round robin, NAT return path, metrics,
/// TCP_CHECK drain and restore, shutdown).
#[test]
fn netns_director_seed_nat_rr() {
    let Some(l) = lab_or_skip!("dirnat", "nft") else {
        return;
    };
    let n = nat_rr_lab(&l);
    nat_rr_scenario(&l, &n, "userspace", 40, |n, _| {
        // The kernel never sees the VIP traffic: the forwarder takes it
        // and nftables drops the kernel's copy.
        let rules = n
            .dir
            .run("nft", ["list", "table", "inet", "lb_director"])
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(
            rules.contains("ip daddr 192.168.200.10 tcp dport 80 drop"),
            "{rules}"
        );
    });
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
    let start1 = |name: &str| {
        spawn_director(
            &dirs[0],
            &d,
            name,
            &seed("vrrp-sync.conf"),
            "userspace",
            &[],
        )
    };
    let (mut p1, run1) = start1("dir1");
    let (mut p2, _) = spawn_director(&dirs[1], &d, "dir2", &backup, "userspace", &[]);
    let logs = || {
        ["dir1", "dir2", "dir1-again"]
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
