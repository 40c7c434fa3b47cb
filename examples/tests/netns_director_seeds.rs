//! The seed configurations shipped in `examples/configs/`, run as written by
//! the `director` with the userspace dataplane, in network namespaces built
//! around their addresses: `nat-rr.conf` (NAT round robin with TCP checks,
//! the real servers' gateway an excluded VIP on the inside link) and
//! `vrrp-sync.conf` (two instances, outside and inside, in one sync group).

use lb_testing_netns::lab_or_skip;

mod seedlab;
use seedlab::{nat_rr_lab, nat_rr_scenario, vrrp_sync_scenario};

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

/// `vrrp-sync.conf` as shipped, userspace dataplane: see
/// [`seedlab::vrrp_sync_scenario`].
#[test]
fn netns_director_seed_vrrp_sync_group() {
    let Some(l) = lab_or_skip!("dirvsg", "nft") else {
        return;
    };
    vrrp_sync_scenario(&l, "userspace");
}
