//! `MultiDriver::place_address` in network namespaces: a router on `eth0`
//! whose excluded addresses are placed on `eth1` (keepalived's
//! `virtual_ipaddress_excluded { 10.1.0.1/24 dev eth1 }`). As Master, the
//! placed addresses are on `eth1` with their own prefixes and announced
//! there from `eth1`'s MAC (gratuitous ARP, unsolicited NA); the unplaced
//! VIP stays on `eth0` with the driver-wide prefix; on shutdown all go.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

mod netns_util;

use lb_testing_netns::{Host, Process, lab_or_skip, wait_for};
use lb_vrrp::wire::Version;

fn addrs(h: &Host, dev: &str) -> String {
    h.ip(["-o", "addr", "show", "dev", dev]).unwrap()
}

#[test]
fn netns_multidriver_places_addresses_on_their_interface() {
    let Some(lab) = lab_or_skip!("vrrpplace", "tcpdump") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let peer = lab.add_host("peer").unwrap();
    let w = lab.add_host("w").unwrap();
    lab.link(&a, "eth0", &peer, "eth0").unwrap();
    lab.link(&a, "eth1", &w, "eth0").unwrap();
    a.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
    peer.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 2), 24)
        .unwrap();
    a.add_addr("eth1", Ipv4Addr::new(10, 1, 0, 254), 24)
        .unwrap();
    w.add_addr("eth0", Ipv4Addr::new(10, 1, 0, 7), 24).unwrap();
    // Learn addresses from gratuitous ARP.
    w.sysctl("net.ipv4.conf.all.arp_accept", "1").unwrap();
    let mac = a.mac("eth1").unwrap().map(|b| format!("{b:02x}")).join(":");

    let pcap = lab.dir().unwrap().join("w.pcap");
    let mut cmd = w.command("tcpdump");
    cmd.args(["-i", "eth0", "-n", "-U", "--immediate-mode", "-w"])
        .arg(&pcap)
        .arg("arp or icmp6")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut tcpdump = Process::spawn(cmd).unwrap();
    wait_for("tcpdump to start", 10, || {
        std::fs::metadata(&pcap).is_ok_and(|m| m.len() > 0)
    });

    let vip: IpAddr = "10.0.0.100".parse().unwrap();
    let inside: IpAddr = "10.1.0.1".parse().unwrap();
    let inside6: IpAddr = "2001:db8:1::1".parse().unwrap();
    let vip6: IpAddr = "2001:db8::100".parse().unwrap();
    let driver = netns_util::spawn_multi(&a, move |d| {
        let mut cfg = lb_vrrp::Config::new(Version::V3, 7, "10.0.0.1".parse().unwrap());
        cfg.priority = 150;
        cfg.interval = 10;
        cfg.virtual_addresses = vec![vip];
        cfg.excluded_addresses = vec![inside, inside6, vip6];
        let i = d
            .add(lb_vrrp::VirtualRouter::new(cfg).unwrap(), "eth0")
            .unwrap();
        d.place_address(i, inside, 24, "eth1").unwrap();
        d.place_address(i, inside6, 64, "eth1").unwrap();
        // Out of range: an error, not a panic.
        assert!(d.place_address(9, inside, 24, "eth1").is_err());
    });
    wait_for("the addresses", 10, || {
        let (e0, e1) = (addrs(&a, "eth0"), addrs(&a, "eth1"));
        e0.contains("10.0.0.100/32")
            && e1.contains("10.1.0.1/24")
            && e1.contains("2001:db8:1::1/64")
    });
    let e0 = addrs(&a, "eth0");
    assert!(
        !e0.contains("10.1.0.1") && !e0.contains("2001:db8:1::1"),
        "{e0}"
    );
    // A /128 (excluded, unplaced) address is added deprecated (preferred lifetime 0), as keepalived
    // does, so it is never chosen as a source address; the placed /64 is not.
    let line = |text: &str, addr: &str| {
        text.lines()
            .find(|l| l.contains(addr))
            .unwrap_or_default()
            .to_owned()
    };
    let v = line(&e0, "2001:db8::100/128");
    assert!(v.contains("deprecated") && v.contains("nodad"), "{e0}");
    let e1 = addrs(&a, "eth1");
    let p = line(&e1, "2001:db8:1::1/64");
    assert!(!p.is_empty() && !p.contains("deprecated"), "{e1}");
    wait_for("w to learn 10.1.0.1 from the gratuitous ARP", 10, || {
        w.ip(["neigh", "show", "10.1.0.1"])
            .is_ok_and(|t| t.contains(&mac))
    });
    // Let the NA (sent with the ARPs) reach the capture.
    std::thread::sleep(Duration::from_millis(500));
    driver.stop().unwrap();
    let e1 = addrs(&a, "eth1");
    assert!(
        !e1.contains("10.1.0.1/") && !e1.contains("2001:db8:1::1"),
        "{e1}"
    );
    let e0 = addrs(&a, "eth0");
    assert!(
        !e0.contains("10.0.0.100") && !e0.contains("2001:db8::100"),
        "{e0}"
    );
    tcpdump.terminate().unwrap();
    let _ = tcpdump.wait();

    let out = std::process::Command::new("tcpdump")
        .args(["-r"])
        .arg(&pcap)
        .args(["-e", "-v", "-n"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The gratuitous ARP from eth1's MAC (its sender hardware address is
    // what w learned above).
    let from = format!("{mac} > ");
    assert!(
        text.lines()
            .any(|l| l.contains(&from) && l.contains("Request who-has 10.1.0.1 tell 10.1.0.1")),
        "{text}"
    );
    // The unsolicited NA for the IPv6 address, from eth1's MAC and with it
    // as the target link-layer address.
    let lines: Vec<&str> = text.lines().collect();
    let option = format!("link-address option (2), length 8 (1): {mac}");
    assert!(
        lines.windows(2).any(|w| w[0].contains(&from)
            && w[0].contains("neighbor advertisement")
            && w[0].contains("tgt is 2001:db8:1::1")
            && w[1].contains(&option)),
        "{text}"
    );
    // Nothing about the eth0 VIP leaked onto eth1.
    assert!(!text.contains("10.0.0.100"), "{text}");
}
