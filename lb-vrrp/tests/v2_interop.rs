//! The VRRPv2 interoperation mode of a VRRPv3 router (RFC 9568 §8.4.2):
//! both versions sent, VRRPv2 accepted with its interval read as seconds,
//! VRRPv2 duplicates from a VRRPv3 speaker ignored.

mod util;

use core::net::IpAddr;

use lb_vrrp::timing::down_micros;
use lb_vrrp::wire::{AddressFamily, Auth, ChecksumMode, Packet, Repr, Version};
use lb_vrrp::{
    Config, ConfigError, DiscardReason, Instant, RxMeta, State, Transmit, VirtualRouter,
};
use util::*;

fn interop(prio: u8) -> Config {
    let mut c = cfg(Version::V3, prio);
    c.v2_interop = true;
    c
}

/// A VRRPv2 advertisement from `src` with `secs` as its interval.
fn v2_advert(src: IpAddr, prio: u8, secs: u16) -> Vec<u8> {
    let repr = Repr {
        version: Version::V2,
        vrid: 1,
        priority: prio,
        interval: secs,
        auth: Auth::None,
        addresses: [VIP].into_iter().collect(),
    };
    emit(&repr, src)
}

/// The (version, priority, interval) of each advertisement sent.
fn sent(r: &mut VirtualRouter) -> Vec<(Version, u8, u16)> {
    transmits(r)
        .into_iter()
        .filter(|(t, _)| matches!(t, Transmit::Advertisement { .. }))
        .map(|(t, bytes)| {
            let Transmit::Advertisement { src, dst, .. } = t else {
                unreachable!()
            };
            let p = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
            assert!(p.verify_checksum(src, dst).is_some());
            let repr = Repr::parse(&p).unwrap();
            (repr.version, repr.priority, repr.interval)
        })
        .collect()
}

#[test]
fn interop_master_sends_both_versions() {
    let mut c = interop(150);
    c.interval = 200; // 2 s
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(r.state(), State::Master);
    let _ = events(&mut r);
    assert_eq!(
        sent(&mut r),
        [(Version::V3, 150, 200), (Version::V2, 150, 2)]
    );
    let next = r.poll_timeout().unwrap();
    r.handle_timeout(next);
    assert_eq!(
        sent(&mut r),
        [(Version::V3, 150, 200), (Version::V2, 150, 2)]
    );
    r.handle_shutdown(next);
    assert_eq!(sent(&mut r), [(Version::V3, 0, 200), (Version::V2, 0, 2)]);
    // Without interop: VRRPv3 only.
    let mut r = router(cfg(Version::V3, 150));
    r.handle_startup(Instant::ZERO);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(sent(&mut r), [(Version::V3, 150, 100)]);
}

#[test]
fn interop_backup_follows_a_v2_master_at_its_rate() {
    let mut r = backup(interop(100));
    // A VRRPv2 Active router advertising every 3 s: accepted, and its rate
    // read as 300 cs (the Backup's own interval is 1 s).
    let now = Instant::from_millis(10);
    r.handle_packet(now, meta(HIGH), &v2_advert(HIGH, 200, 3));
    assert_eq!(r.counters().total_discards(), 0);
    assert_eq!(r.counters().adverts_received, 1);
    assert_eq!(r.master_adver_interval(), 300);
    assert_eq!(
        r.poll_timeout(),
        Some(now.add_micros(down_micros(Version::V3, 100, 300)))
    );
    // A VRRPv2 router with a lower priority is preempted as usual.
    let mut r = backup(interop(100));
    r.handle_packet(now, meta(LOW), &v2_advert(LOW, 50, 1));
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(r.state(), State::Master);
    // A Master hearing a higher-priority VRRPv2 router steps down.
    let _ = events(&mut r);
    let _ = transmits(&mut r);
    r.handle_packet(t, meta(HIGH), &v2_advert(HIGH, 200, 1));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn interop_ignores_v2_duplicates_of_a_v3_speaker() {
    let mut r = backup(interop(100));
    // The Active router speaks both, at 50 cs in v3 (its v2 copy says 1 s).
    let v3 = advert_for(r.config(), HIGH, 200, 50);
    r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
    assert_eq!(r.master_adver_interval(), 50);
    r.handle_packet(Instant::ZERO, meta(HIGH), &v2_advert(HIGH, 200, 1));
    assert_eq!(r.master_adver_interval(), 50, "the v2 copy was not adopted");
    assert_eq!(r.counters().v2_ignored_from_v3_speaker, 1);
    assert_eq!(r.counters().adverts_received, 1);
}

#[test]
fn v2_is_discarded_without_interop_and_interop_is_validated() {
    let mut r = backup(cfg(Version::V3, 100));
    r.handle_packet(Instant::ZERO, meta(HIGH), &v2_advert(HIGH, 200, 1));
    assert_eq!(r.counters().discards(DiscardReason::VersionMismatch), 1);
    // Interop with PASS authentication on the v2 side: the v2 packet's auth
    // type does not match ours (none).
    let mut r = backup(interop(100));
    let repr = Repr {
        version: Version::V2,
        vrid: 1,
        priority: 200,
        interval: 1,
        auth: Auth::simple_text(b"secret"),
        addresses: [VIP].into_iter().collect(),
    };
    let mut buf = vec![0u8; 64];
    let n = repr
        .emit(&mut buf, HIGH, MCAST4, ChecksumMode::PseudoHeader)
        .unwrap();
    r.handle_packet(
        Instant::ZERO,
        RxMeta {
            src: HIGH,
            dst: MCAST4,
            ttl: 255,
        },
        &buf[..n],
    );
    assert_eq!(r.counters().discards(DiscardReason::AuthTypeMismatch), 1);
    // Configuration: v3 over IPv4, no auth, whole seconds.
    for bad in [
        {
            let mut c = cfg(Version::V2, 100);
            c.v2_interop = true;
            c
        },
        {
            let mut c = cfg6(100);
            c.v2_interop = true;
            c
        },
        {
            let mut c = interop(100);
            c.interval = 50;
            c
        },
    ] {
        assert_eq!(VirtualRouter::new(bad).err(), Some(ConfigError::V2Interop));
    }
    assert!(VirtualRouter::new(interop(100)).is_ok());
}

/// RFC 9568 §8.4.2 MAY: an Active router sending VRRPv3 without the VRRPv2
/// copies of interop mode is reported (once per run of three), one that
/// sends both never is.
#[test]
fn interop_reports_an_active_router_not_sending_v2() {
    let mut r = backup(interop(100));
    let v3 = advert_for(r.config(), HIGH, 200, 100);
    // Both versions every interval: nothing to report.
    for _ in 0..10 {
        r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
        r.handle_packet(Instant::ZERO, meta(HIGH), &v2_advert(HIGH, 200, 1));
    }
    assert_eq!(r.counters().v3_speaker_without_v2, 0);
    // One lost v2 copy is not a report either.
    r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
    r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
    r.handle_packet(Instant::ZERO, meta(HIGH), &v2_advert(HIGH, 200, 1));
    assert_eq!(r.counters().v3_speaker_without_v2, 0);
    // VRRPv3 only: reported at the third, once for the whole run.
    for k in 1..=10u64 {
        r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
        assert_eq!(r.counters().v3_speaker_without_v2, u64::from(k >= 3), "{k}");
    }
    // A v2 copy ends the run; a new run is reported again.
    r.handle_packet(Instant::ZERO, meta(HIGH), &v2_advert(HIGH, 200, 1));
    for _ in 0..3 {
        r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
    }
    assert_eq!(r.counters().v3_speaker_without_v2, 2);
    // Without interop mode nothing is tracked.
    let mut r = backup(cfg(Version::V3, 100));
    for _ in 0..5 {
        r.handle_packet(Instant::ZERO, meta(HIGH), &v3);
    }
    assert_eq!(r.counters().v3_speaker_without_v2, 0);
}
