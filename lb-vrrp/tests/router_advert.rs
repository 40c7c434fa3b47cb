//! IPv6 Router Advertisements of the Active router (RFC 9568 §6.4.2,
//! §6.4.3, §8.2.3; schedule and final advertisement from RFC 4861 §6.2):
//! byte-exact wire format, when they are sent and when they must not be.

mod util;

use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;

use lb_vrrp::wire::ndisc::ALL_NODES;
use lb_vrrp::wire::ra::{self, Packet, Preference, PrefixInfo, Repr};
use lb_vrrp::{ConfigError, Instant, RouterAdvertConfig, State, Transmit, VirtualRouter};
use proptest::prelude::*;
use util::*;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const VLL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100);

/// The one's-complement sum of RFC 1071, written out independently of the crate.
fn reference_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(msg);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn router_advert_bytes() {
    let mut repr = Repr::new(1800);
    repr.cur_hop_limit = 64;
    repr.other = true;
    repr.preference = Preference::High;
    repr.reachable_time = 30_000;
    repr.retrans_timer = 1000;
    repr.source_mac = Some([0x00, 0x00, 0x5e, 0x00, 0x02, 0x33]);
    repr.prefixes
        .push(PrefixInfo::new("2001:db8:1::".parse().unwrap(), 64));
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let mut buf = [0u8; 64];
    let n = repr.emit(&mut buf, src, ALL_NODES).unwrap();
    assert_eq!(n, 56);
    #[rustfmt::skip]
    let mut want: Vec<u8> = vec![
        134, 0, 0, 0,                 // type, code, checksum (filled below)
        64, 0x48, 0x07, 0x08,         // hop limit; O=0x40 | Prf high 01<<3; lifetime 1800
        0, 0, 0x75, 0x30,             // reachable 30000 ms
        0, 0, 0x03, 0xe8,             // retrans 1000 ms
        1, 1, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x33, // SLLA
        3, 4, 64, 0xc0,               // prefix info, /64, L|A
        0x00, 0x27, 0x8d, 0x00,       // valid 2592000 s
        0x00, 0x09, 0x3a, 0x80,       // preferred 604800 s
        0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let c = reference_checksum(src, ALL_NODES, &want);
    want[2..4].copy_from_slice(&c.to_be_bytes());
    assert_eq!(&buf[..n], &want[..]);
    let p = Packet::new_checked(&buf[..n]).unwrap();
    assert!(p.verify_checksum(src, ALL_NODES));
    assert!(!p.verify_checksum("fe80::2".parse().unwrap(), ALL_NODES));
    assert_eq!(Repr::parse(&p).unwrap(), repr);
}

#[test]
fn router_advert_rejects_malformed_options() {
    let mut buf = [0u8; 24];
    buf[0] = ra::ICMPV6_ROUTER_ADVERTISEMENT;
    // An option of length 0 (RFC 4861 §6.1.2: discard).
    buf[16] = 1;
    assert!(Packet::new_checked(&buf[..]).is_err());
    // An option running past the end.
    buf[17] = 2;
    assert!(Packet::new_checked(&buf[..]).is_err());
    buf[17] = 1;
    assert!(Packet::new_checked(&buf[..]).is_ok());
    assert!(Packet::new_checked(&buf[..15]).is_err());
    // Another ICMPv6 type is not a Router Advertisement.
    buf[0] = 136;
    assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn router_advert_arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = p.source_mac();
            prop_assert!(p.options().map(|(_, o)| o.len()).sum::<usize>() + ra::HEADER_LEN == data.len());
            if let Some(r) = Repr::parse(&p) {
                // What we parse, we emit and parse back unchanged.
                let src: Ipv6Addr = "fe80::1".parse().unwrap();
                let mut buf = [0u8; ra::MAX_LEN];
                let n = r.emit(&mut buf, src, ALL_NODES).unwrap();
                let back = Repr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
                prop_assert_eq!(back, r);
            }
        }
    }

    #[test]
    fn router_advert_round_trips(
        hop in any::<u8>(), flags in any::<u8>(), lifetime in any::<u16>(),
        reach in any::<u32>(), retrans in any::<u32>(),
        mac in proptest::option::of(any::<[u8; 6]>()),
        prefixes in proptest::collection::vec((any::<u128>(), 0u8..=128, any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>()), 0..=ra::MAX_PREFIXES),
    ) {
        let mut r = Repr::new(lifetime);
        r.cur_hop_limit = hop;
        r.managed = flags & 1 != 0;
        r.other = flags & 2 != 0;
        r.preference = [Preference::Low, Preference::Medium, Preference::High][usize::from(flags >> 2) % 3];
        r.reachable_time = reach;
        r.retrans_timer = retrans;
        r.source_mac = mac;
        for (p, len, l, a, v, pr) in prefixes {
            r.prefixes.push(PrefixInfo { prefix: Ipv6Addr::from(p), len, on_link: l, autonomous: a, valid_lifetime: v, preferred_lifetime: pr });
        }
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut buf = [0u8; ra::MAX_LEN];
        let n = r.emit(&mut buf, src, ALL_NODES).unwrap();
        prop_assert_eq!(n, r.buffer_len());
        let p = Packet::new_checked(&buf[..n]).unwrap();
        prop_assert!(p.verify_checksum(src, ALL_NODES));
        prop_assert_eq!(Repr::parse(&p).unwrap(), r);
    }
}

/// An IPv6 router with Router Advertisements on (intervals 200–600 s).
fn ra_cfg(prio: u8, vips: &[Ipv6Addr]) -> lb_vrrp::Config {
    let mut c = cfg6(prio);
    c.virtual_addresses = vips.iter().copied().map(IpAddr::V6).collect();
    c.mac = MAC;
    c.router_advert = Some(RouterAdvertConfig::default());
    c
}

/// The Router Advertisements among the pending transmissions: (src, lifetime, parsed).
fn router_adverts(r: &mut VirtualRouter) -> Vec<(Ipv6Addr, u16, Repr)> {
    transmits(r)
        .into_iter()
        .filter_map(|(t, bytes)| match t {
            Transmit::RouterAdvertisement {
                src, dst, lifetime, ..
            } => {
                assert_eq!(dst, ALL_NODES);
                let p = Packet::new_checked(&bytes[..]).unwrap();
                assert!(p.verify_checksum(src, dst));
                let repr = Repr::parse(&p).unwrap();
                assert_eq!(repr.router_lifetime, lifetime);
                Some((src, lifetime, repr))
            }
            _ => None,
        })
        .collect()
}

fn to_master(r: &mut VirtualRouter) -> Instant {
    r.handle_startup(Instant::ZERO);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(r.state(), State::Master);
    let _ = events(r);
    t
}

#[test]
fn active_sends_router_advert_on_takeover_from_virtual_link_local() {
    let mut r = router(ra_cfg(100, &[VLL, "2001:db8::100".parse().unwrap()]));
    r.handle_startup(Instant::ZERO);
    let _ = events(&mut r);
    assert!(router_adverts(&mut r).is_empty(), "Backup sent an RA");
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    let _ = events(&mut r);
    let sent = transmits(&mut r);
    // Order: the VRRP advertisement first, then the RA, then the NAs.
    assert!(matches!(sent[0].0, Transmit::Advertisement { .. }));
    assert!(matches!(sent[1].0, Transmit::RouterAdvertisement { .. }));
    assert!(matches!(sent[2].0, Transmit::NeighborAdvertisement { .. }));
    let Transmit::RouterAdvertisement { src, lifetime, .. } = sent[1].0 else {
        unreachable!()
    };
    assert_eq!(src, VLL, "from the virtual router's link-local address");
    assert_eq!(lifetime, 1800);
    let p = Packet::new_checked(&sent[1].1[..]).unwrap();
    assert_eq!(p.source_mac(), Some(MAC));
    assert_eq!(r.counters().router_adverts_sent, 1);
}

#[test]
fn router_advert_schedule_follows_rfc4861() {
    let mut c = ra_cfg(255, &["2001:db8::100".parse().unwrap()]);
    c.router_advert.as_mut().unwrap().seed = 7;
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let _ = events(&mut r);
    assert_eq!(router_adverts(&mut r).len(), 1);
    let mut last = Instant::ZERO;
    let mut gaps = Vec::new();
    // Walk 40 minutes of virtual time, timer by timer.
    while last < Instant::from_secs(2400) {
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        let n = router_adverts(&mut r).len();
        if n > 0 {
            assert_eq!(n, 1);
            gaps.push(t.micros_since(last));
            last = t;
        }
    }
    // The first advertisements after the takeover one: capped at 16 s (the
    // takeover one counts as the first of MAX_INITIAL_RTR_ADVERTISEMENTS = 3).
    assert_eq!(&gaps[..2], &[16_000_000, 16_000_000]);
    // Then uniformly in [200 s, 600 s], and not all equal (jitter).
    assert!(gaps.len() >= 5, "{gaps:?}");
    for g in &gaps[2..] {
        assert!((200_000_000..=600_000_000).contains(g), "{gaps:?}");
    }
    assert!(gaps[2..].windows(2).any(|w| w[0] != w[1]), "{gaps:?}");
}

#[test]
fn no_router_advert_unless_configured_or_active() {
    // Off by default: a Master never sends one.
    let mut c = cfg6(255);
    c.mac = MAC;
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    for _ in 0..50 {
        assert!(router_adverts(&mut r).is_empty());
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
    }
    // A Backup following a higher-priority Active never sends one, whatever
    // the timers and solicitations do.
    let mut r = router(ra_cfg(100, &[VLL]));
    r.handle_startup(Instant::ZERO);
    let mut now = Instant::ZERO;
    for _ in 0..100 {
        now = now.add_micros(500_000);
        rx(&mut r, now, PEER6, 200);
        r.handle_router_solicitation(now);
        r.handle_timeout(now);
        assert_eq!(r.state(), State::Backup);
        assert!(router_adverts(&mut r).is_empty());
    }
    assert_eq!(r.counters().router_adverts_sent, 0);
}

#[test]
fn leaving_active_from_virtual_source_sends_nothing_more() {
    let mut r = router(ra_cfg(100, &[VLL]));
    let t = to_master(&mut r);
    assert_eq!(router_adverts(&mut r).len(), 1);
    // Preempted by a higher priority: Backup, and no RA now or later.
    rx(&mut r, t.add_micros(1000), PEER6, 200);
    assert_eq!(r.state(), State::Backup);
    assert!(router_adverts(&mut r).is_empty());
    let later = t.add_micros(60_000_000);
    r.handle_timeout(later);
    // (The down timer made it Master again: that is a new takeover RA.)
    let _ = events(&mut r);
    let n = router_adverts(&mut r).len();
    assert_eq!(n, usize::from(r.state() == State::Master));
    // Shutdown from Master: priority 0, and no zero-lifetime RA (the
    // virtual router lives on at the next Active).
    r.handle_shutdown(later);
    assert!(router_adverts(&mut r).is_empty());
}

#[test]
fn leaving_active_from_own_address_sends_final_zero_lifetime() {
    let mut r = router(ra_cfg(100, &["2001:db8::100".parse().unwrap()]));
    let t = to_master(&mut r);
    let first = router_adverts(&mut r);
    assert_eq!(first.len(), 1);
    assert_eq!(
        IpAddr::V6(first[0].0),
        ME6,
        "no link-local VIP: the primary address"
    );
    r.handle_shutdown(t.add_micros(1000));
    let sent = transmits(&mut r);
    assert!(matches!(
        sent[0].0,
        Transmit::Advertisement { priority: 0, .. }
    ));
    let finals: Vec<_> = sent
        .iter()
        .filter_map(|(t, _)| match t {
            Transmit::RouterAdvertisement { lifetime, .. } => Some(*lifetime),
            _ => None,
        })
        .collect();
    assert_eq!(
        finals,
        [0],
        "one final advertisement with Router Lifetime 0"
    );
    // And nothing after that.
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn router_solicitation_is_answered_within_half_a_second_and_rate_limited() {
    let mut r = router(ra_cfg(255, &[VLL]));
    r.handle_startup(Instant::ZERO);
    assert_eq!(router_adverts(&mut r).len(), 1);
    // 1 s after the takeover RA: the answer waits until 3 s after it.
    r.handle_router_solicitation(Instant::from_secs(1));
    assert_eq!(next_router_advert(&mut r), Instant::from_secs(3));
    // 10 s later: answered within MAX_RA_DELAY_TIME.
    let now = Instant::from_secs(13);
    r.handle_router_solicitation(now);
    let t = next_router_advert(&mut r);
    assert!(t >= now && t <= now.add_micros(500_000), "{t:?}");
}

/// Runs the timers until a Router Advertisement goes out; returns when.
fn next_router_advert(r: &mut VirtualRouter) -> Instant {
    loop {
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        if !router_adverts(r).is_empty() {
            return t;
        }
    }
}

#[test]
fn router_advert_config_is_validated() {
    let mut c = cfg(lb_vrrp::wire::Version::V3, 100);
    c.router_advert = Some(RouterAdvertConfig::default());
    assert!(matches!(
        VirtualRouter::new(c),
        Err(ConfigError::RouterAdvert(_))
    ));
    let bad = [
        (Duration::from_secs(3), Duration::from_secs(3), 1800), // max < 4 s
        (Duration::from_secs(3), Duration::from_secs(1801), 1800), // max > 1800 s
        (Duration::from_secs(2), Duration::from_secs(600), 1800), // min < 3 s
        (Duration::from_secs(451), Duration::from_secs(600), 1800), // min > 0.75 max
        (Duration::from_secs(200), Duration::from_secs(600), 599), // lifetime < max
        (Duration::from_secs(200), Duration::from_secs(600), 9001), // lifetime > 9000
    ];
    for (min, max, lifetime) in bad {
        let mut c = ra_cfg(100, &[VLL]);
        let ra = c.router_advert.as_mut().unwrap();
        ra.min_interval = min;
        ra.max_interval = max;
        ra.message.router_lifetime = lifetime;
        assert!(
            matches!(VirtualRouter::new(c), Err(ConfigError::RouterAdvert(_))),
            "{min:?} {max:?} {lifetime}"
        );
    }
    for lifetime in [0, 600, 9000] {
        let mut c = ra_cfg(100, &[VLL]);
        c.router_advert.as_mut().unwrap().message.router_lifetime = lifetime;
        assert!(VirtualRouter::new(c).is_ok());
    }
}

#[test]
fn router_solicitation_validation() {
    use lb_vrrp::wire::ra::is_valid_solicitation;
    let host: Ipv6Addr = "fe80::1".parse().unwrap();
    let bare = [133, 0, 0, 0, 0, 0, 0, 0];
    assert!(is_valid_solicitation(&bare, host, 255));
    assert!(is_valid_solicitation(&bare, Ipv6Addr::UNSPECIFIED, 255));
    // RFC 4861 §6.1.1: Hop Limit 255, code 0, at least 8 bytes.
    assert!(!is_valid_solicitation(&bare, host, 254));
    assert!(!is_valid_solicitation(
        &[133, 1, 0, 0, 0, 0, 0, 0],
        host,
        255
    ));
    assert!(!is_valid_solicitation(&bare[..7], host, 255));
    assert!(!is_valid_solicitation(
        &[134, 0, 0, 0, 0, 0, 0, 0],
        host,
        255
    ));
    // Options: non-zero length, inside the message; SLLA only from a real source.
    let mut with_slla = bare.to_vec();
    with_slla.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
    assert!(is_valid_solicitation(&with_slla, host, 255));
    assert!(!is_valid_solicitation(
        &with_slla,
        Ipv6Addr::UNSPECIFIED,
        255
    ));
    let mut zero_len = bare.to_vec();
    zero_len.extend_from_slice(&[14, 0, 0, 0, 0, 0, 0, 0]);
    assert!(!is_valid_solicitation(&zero_len, host, 255));
    let mut past_end = bare.to_vec();
    past_end.extend_from_slice(&[14, 2, 0, 0, 0, 0, 0, 0]);
    assert!(!is_valid_solicitation(&past_end, host, 255));
}
