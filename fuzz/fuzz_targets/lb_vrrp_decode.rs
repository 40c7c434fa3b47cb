//! Decodes arbitrary bytes as a VRRP advertisement (IPv4 and IPv6) and as an
//! ICMPv6 Router Advertisement, and feeds them through a virtual router's
//! receive path. The first byte picks
//! the TTL, the rest is the IP payload. Checksums pass under `cfg(fuzzing)`.
#![no_main]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_vrrp::wire::{AddressFamily, MULTICAST_V4, MULTICAST_V6, Packet, Repr, Version};
use lb_vrrp::{Config, Instant, RxMeta, VirtualRouter};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&ttl, payload)) = data.split_first() else { return };
    let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3));
    for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        if let Ok(p) = Packet::new_checked(payload, family) {
            let _ = p.verify_checksum(v4, IpAddr::V4(MULTICAST_V4));
            let _ = p.verify_checksum(v6, IpAddr::V6(MULTICAST_V6));
            if let Ok(r) = Repr::parse(&p) {
                let mut buf = [0u8; lb_vrrp::MAX_TRANSMIT_LEN];
                let src = if family == AddressFamily::Ipv4 { v4 } else { v6 };
                let dst = if family == AddressFamily::Ipv4 { IpAddr::V4(MULTICAST_V4) } else { IpAddr::V6(MULTICAST_V6) };
                if let Ok(n) = r.emit(&mut buf, src, dst, Default::default()) {
                    let again = Packet::new_checked(&buf[..n], family).expect("emitted packet parses");
                    assert_eq!(Repr::parse(&again).expect("emitted packet parses"), r);
                }
            }
        }
    }
    if let Ok(p) = lb_vrrp::wire::ra::Packet::new_checked(payload) {
        let all_nodes = lb_vrrp::wire::ndisc::ALL_NODES;
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
        let _ = p.verify_checksum(src, all_nodes);
        if let Some(r) = lb_vrrp::wire::ra::Repr::parse(&p) {
            let mut buf = [0u8; lb_vrrp::wire::ra::MAX_LEN];
            let n = r.emit(&mut buf, src, all_nodes).expect("fits MAX_LEN");
            let again = lb_vrrp::wire::ra::Packet::new_checked(&buf[..n]).expect("emitted RA parses");
            assert!(again.verify_checksum(src, all_nodes));
            let back = lb_vrrp::wire::ra::Repr::parse(&again).expect("emitted RA parses");
            if r.prefixes.len() <= lb_vrrp::wire::ra::MAX_PREFIXES {
                assert_eq!(back, r);
            }
        }
    }
    for (version, primary, src, dst) in [
        (Version::V2, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), v4, IpAddr::V4(MULTICAST_V4)),
        (Version::V3, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), v4, IpAddr::V4(MULTICAST_V4)),
        (Version::V3, IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)), v6, IpAddr::V6(MULTICAST_V6)),
    ] {
        let mut c = Config::new(version, 1, primary);
        c.check_address_list = false;
        let mut r = VirtualRouter::new(c).expect("valid config");
        r.handle_startup(Instant::ZERO);
        r.handle_packet(Instant::from_millis(1), RxMeta { src, dst, ttl }, payload);
        while r.poll_event().is_some() {}
        let mut buf = [0u8; lb_vrrp::MAX_TRANSMIT_LEN];
        while r.poll_transmit(&mut buf).is_some() {}
    }
});
