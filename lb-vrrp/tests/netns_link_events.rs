//! The Linux driver notices its link going down and coming back through
//! rtnetlink link events, not only through its operstate poll: with the
//! poll set to an hour, a Master whose link goes down still leaves Master
//! and drops its VIP, and becomes Master again once the link is back.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod netns_util;

use lb_testing_netns::{lab_or_skip, wait_for};
use lb_vrrp::State;
use lb_vrrp::wire::Version;

#[test]
fn netns_multidriver_follows_link_events() {
    let Some(lab) = lab_or_skip!("vrrplink") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    a.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
    // Keep the primary address while the link is down.
    a.sysctl("net.ipv6.conf.eth0.keep_addr_on_down", "1")
        .unwrap();
    let vip: IpAddr = "10.0.0.100".parse().unwrap();
    let state = Arc::new(Mutex::new(State::Initialize));
    let seen = state.clone();
    let driver = netns_util::spawn_multi(&a, move |d| {
        let mut cfg = lb_vrrp::Config::new(Version::V3, 9, "10.0.0.1".parse().unwrap());
        cfg.priority = 150;
        cfg.interval = 10;
        cfg.virtual_addresses = vec![vip];
        d.add(lb_vrrp::VirtualRouter::new(cfg).unwrap(), "eth0")
            .unwrap();
        // The first tick of the poll comes at start-up, the next in an
        // hour: whatever happens to the link in between is seen through the
        // event socket or not at all.
        d.set_link_poll(Some(Duration::from_secs(3600)));
        d.on_event(move |_, r, _| *seen.lock().unwrap() = r.state());
    });
    let now = || *state.lock().unwrap();
    wait_for("Master with the VIP", 10, || {
        now() == State::Master && a.has_addr("eth0", vip).unwrap()
    });
    a.set_link("eth0", false).unwrap();
    wait_for(
        "leaving Master, VIP dropped, on the link-down event",
        10,
        || now() != State::Master && !a.has_addr("eth0", vip).unwrap(),
    );
    a.set_link("eth0", true).unwrap();
    wait_for("Master again on the link-up event", 10, || {
        now() == State::Master && a.has_addr("eth0", vip).unwrap()
    });
    driver.stop().unwrap();
}
