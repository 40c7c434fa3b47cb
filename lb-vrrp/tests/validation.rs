//! Receive validation (RFC 9568 §7.1, RFC 3768 §7.1): each check rejects
//! the bad packet with its own reason, counts it, leaves the state machine
//! untouched, and lets the corrected packet through.

mod util;

use core::net::IpAddr;

use lb_vrrp::wire::{Auth, ChecksumMode, Version, internet_checksum};
use lb_vrrp::{Config, DiscardReason, Event, Instant, RxMeta, State, VirtualRouter};
use proptest::prelude::*;
use util::*;

const NOW: Instant = Instant::from_secs(1);

/// Feeds `bytes` to a Backup built from `c`; returns the router.
fn feed(c: Config, m: RxMeta, bytes: &[u8]) -> VirtualRouter {
    let mut r = backup(c);
    r.handle_packet(NOW, m, bytes);
    r
}

/// Asserts the packet was discarded for `reason` and nothing else happened.
#[track_caller]
fn assert_discarded(c: Config, m: RxMeta, bytes: &[u8], reason: DiscardReason) {
    let mut r = feed(c, m, bytes);
    assert_eq!(
        r.counters().discards(reason),
        1,
        "{reason:?}: {:?}",
        r.counters()
    );
    assert_eq!(r.counters().total_discards(), 1);
    assert_eq!(r.counters().adverts_received, 0);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(
        r.poll_timeout(),
        Some(Instant::from_micros(r.master_down_micros())),
        "timer untouched"
    );
    assert!(matches!(r.poll_event(), Some(Event::Discarded { reason: got, .. }) if got == reason));
}

/// Asserts the packet was accepted.
#[track_caller]
fn assert_accepted(c: Config, m: RxMeta, bytes: &[u8]) {
    let r = feed(c, m, bytes);
    assert_eq!(r.counters().total_discards(), 0, "{:?}", r.counters());
    assert_eq!(r.counters().adverts_received, 1);
}

fn fix_v2_checksum(b: &mut [u8]) {
    b[6] = 0;
    b[7] = 0;
    let c = internet_checksum(b);
    b[6..8].copy_from_slice(&c.to_be_bytes());
}

fn good(c: &Config) -> Vec<u8> {
    advert_for(c, HIGH, 150, c.interval)
}

#[test]
fn ttl_must_be_255() {
    let c = cfg(Version::V3, 100);
    assert_discarded(
        c.clone(),
        RxMeta {
            ttl: 254,
            ..meta(HIGH)
        },
        &good(&c),
        DiscardReason::TtlNot255,
    );
    assert_accepted(c.clone(), meta(HIGH), &good(&c));
    // Unicast with the check disabled (keepalived's behaviour): accepted.
    let mut u = c.clone();
    u.unicast_peers = vec![HIGH];
    u.check_ttl_unicast = false;
    let bytes = {
        let mut buf = vec![0u8; 64];
        let n = repr_for(&u, 150)
            .emit(&mut buf, HIGH, ME, ChecksumMode::PseudoHeader)
            .unwrap();
        buf.truncate(n);
        buf
    };
    assert_accepted(
        u.clone(),
        RxMeta {
            src: HIGH,
            dst: ME,
            ttl: 64,
        },
        &bytes,
    );
    u.check_ttl_unicast = true;
    assert_discarded(
        u,
        RxMeta {
            src: HIGH,
            dst: ME,
            ttl: 64,
        },
        &bytes,
        DiscardReason::TtlNot255,
    );
}

#[test]
fn family_must_match() {
    let c = cfg(Version::V3, 100);
    let c6 = cfg6(100);
    assert_discarded(
        c,
        meta(PEER6),
        &advert_for(&c6, PEER6, 150, 100),
        DiscardReason::FamilyMismatch,
    );
}

#[test]
fn packet_must_be_complete() {
    let c = cfg(Version::V2, 100);
    let b = good(&c);
    for n in 0..b.len() {
        assert_discarded(c.clone(), meta(HIGH), &b[..n], DiscardReason::Truncated);
    }
    assert_accepted(c, meta(HIGH), &b);
}

#[test]
fn version_must_be_known_and_configured() {
    let c = cfg(Version::V3, 100);
    let mut b = good(&c);
    b[0] = 0x41;
    assert_discarded(c.clone(), meta(HIGH), &b, DiscardReason::UnknownVersion);
    let v2 = cfg(Version::V2, 100);
    assert_discarded(
        c.clone(),
        meta(HIGH),
        &good(&v2),
        DiscardReason::VersionMismatch,
    );
    assert_discarded(
        v2.clone(),
        meta(HIGH),
        &good(&c),
        DiscardReason::VersionMismatch,
    );
    assert_accepted(v2.clone(), meta(HIGH), &good(&v2));
}

#[test]
fn type_must_be_advertisement() {
    let c = cfg(Version::V2, 100);
    let mut b = good(&c);
    b[0] = 0x22;
    fix_v2_checksum(&mut b);
    assert_discarded(c, meta(HIGH), &b, DiscardReason::BadType);
}

#[test]
fn checksum_must_verify() {
    for c in [cfg(Version::V2, 100), cfg(Version::V3, 100), cfg6(100)] {
        let src = if c.version == Version::V3 && matches!(c.primary_address, IpAddr::V6(_)) {
            PEER6
        } else {
            HIGH
        };
        let mut b = advert_for(&c, src, 150, c.interval);
        assert_accepted(c.clone(), meta(src), &b);
        b[7] ^= 0x01;
        assert_discarded(c, meta(src), &b, DiscardReason::BadChecksum);
    }
}

/// v3/IPv4: both checksum forms are accepted (keepalived sends the
/// pseudo-header form, RFC 9568 the message-only form); the latter is counted.
#[test]
fn v3_ipv4_accepts_both_checksum_forms() {
    let c = cfg(Version::V3, 100);
    let mut buf = vec![0u8; 64];
    let n = repr_for(&c, 150)
        .emit(&mut buf, HIGH, MCAST4, ChecksumMode::MessageOnly)
        .unwrap();
    let r = feed(c.clone(), meta(HIGH), &buf[..n]);
    assert_eq!(r.counters().adverts_received, 1);
    assert_eq!(r.counters().checksum_message_only, 1);
    let r = feed(c.clone(), meta(HIGH), &good(&c));
    assert_eq!(r.counters().checksum_message_only, 0);
}

#[test]
fn vrid_must_match() {
    let c = cfg(Version::V3, 100);
    let mut other = c.clone();
    other.vrid = 2;
    assert_discarded(c, meta(HIGH), &good(&other), DiscardReason::VridMismatch);
}

#[test]
fn v2_authentication() {
    let mut c = cfg(Version::V2, 100);
    c.auth = Auth::simple_text(b"secret");
    assert_accepted(c.clone(), meta(HIGH), &good(&c));
    let mut wrong = c.clone();
    wrong.auth = Auth::simple_text(b"secreT");
    assert_discarded(
        c.clone(),
        meta(HIGH),
        &good(&wrong),
        DiscardReason::AuthMismatch,
    );
    let mut none = c.clone();
    none.auth = Auth::None;
    assert_discarded(
        c.clone(),
        meta(HIGH),
        &good(&none),
        DiscardReason::AuthTypeMismatch,
    );
    assert_discarded(
        none.clone(),
        meta(HIGH),
        &good(&c),
        DiscardReason::AuthTypeMismatch,
    );
    let mut ah = good(&c);
    ah[4] = 2;
    fix_v2_checksum(&mut ah);
    assert_discarded(c.clone(), meta(HIGH), &ah, DiscardReason::AuthAh);
    assert_discarded(none, meta(HIGH), &ah, DiscardReason::AuthAh);
    // keepalived uses only the first 8 characters of a longer password.
    let mut long = c.clone();
    long.auth = Auth::simple_text(b"secretXYZ");
    assert_eq!(long.auth, Auth::simple_text(b"secretXY"));
}

#[test]
fn interval_zero_is_discarded() {
    for c in [cfg(Version::V2, 100), cfg(Version::V3, 100)] {
        assert_discarded(
            c.clone(),
            meta(HIGH),
            &advert_for(&c, HIGH, 150, 0),
            DiscardReason::IntervalZero,
        );
    }
}

/// v2 MUST discard an interval mismatch; v3 adopts it (and counts it).
#[test]
fn interval_mismatch_v2_discards_v3_adopts() {
    let c = cfg(Version::V2, 100);
    assert_discarded(
        c.clone(),
        meta(HIGH),
        &advert_for(&c, HIGH, 150, 2),
        DiscardReason::IntervalMismatch,
    );
    let c = cfg(Version::V3, 100);
    let r = feed(c.clone(), meta(HIGH), &advert_for(&c, HIGH, 150, 200));
    assert_eq!(r.counters().adverts_received, 1);
    assert_eq!(r.counters().interval_mismatch_v3, 1);
    assert_eq!(r.master_adver_interval(), 200);
}

#[test]
fn address_count_zero_is_discarded() {
    let c = cfg(Version::V3, 100);
    let mut empty = c.clone();
    empty.virtual_addresses.clear();
    let mut r = backup(c.clone());
    r.handle_packet(NOW, meta(HIGH), &good(&empty));
    assert_eq!(r.counters().discards(DiscardReason::AddressCountZero), 1);
}

#[test]
fn ipv6_source_must_be_link_local() {
    let c = cfg6(100);
    let global: IpAddr = "2001:db8::3".parse().unwrap();
    assert_discarded(
        c.clone(),
        meta(global),
        &advert_for(&c, global, 150, 100),
        DiscardReason::SourceNotLinkLocal,
    );
    assert_accepted(c.clone(), meta(PEER6), &advert_for(&c, PEER6, 150, 100));
}

#[test]
fn own_advertisement_is_discarded() {
    let c = cfg(Version::V3, 100);
    assert_discarded(
        c.clone(),
        meta(ME),
        &advert_for(&c, ME, 150, 100),
        DiscardReason::FromSelf,
    );
}

#[test]
fn unicast_source_allow_list() {
    let mut c = cfg(Version::V3, 100);
    c.unicast_peers = vec![HIGH];
    assert_discarded(
        c.clone(),
        meta(LOW),
        &advert_for(&c, LOW, 150, 100),
        DiscardReason::UnicastSourceNotAllowed,
    );
    assert_accepted(c.clone(), meta(HIGH), &good(&c));
    c.check_unicast_src = false;
    assert_accepted(c.clone(), meta(LOW), &advert_for(&c, LOW, 150, 100));
}

#[test]
fn address_list_must_match_unless_owner() {
    let c = cfg(Version::V2, 100);
    let mut other = c.clone();
    other.virtual_addresses = vec!["10.0.0.101".parse().unwrap()];
    assert_discarded(
        c.clone(),
        meta(HIGH),
        &good(&other),
        DiscardReason::AddressListMismatch,
    );
    assert_accepted(c.clone(), meta(HIGH), &advert_for(&other, HIGH, 255, 1));
    let mut off = c.clone();
    off.check_address_list = false;
    assert_accepted(off, meta(HIGH), &good(&other));
}

#[test]
fn v2_owner_ignores_advertisements_v3_owner_does_not() {
    let mut c = cfg(Version::V2, 255);
    c.garp.master_repeat = 0;
    let mut r = router(c.clone());
    r.handle_startup(NOW);
    r.handle_packet(NOW, meta(HIGH), &advert_for(&c, HIGH, 255, 1));
    assert_eq!(r.counters().discards(DiscardReason::LocalIsOwner), 1);
    assert_eq!(r.state(), State::Master);
    let mut c = cfg(Version::V3, 255);
    c.garp.master_repeat = 0;
    let mut r = router(c.clone());
    r.handle_startup(NOW);
    r.handle_packet(NOW, meta(HIGH), &advert_for(&c, HIGH, 255, 100));
    assert_eq!(r.counters().total_discards(), 0);
    assert_eq!(
        r.state(),
        State::Backup,
        "equal priority, higher address wins"
    );
}

/// Packets arriving in Initialize or Fault are validated and counted but ignored.
#[test]
fn not_running_ignores_valid_adverts() {
    let c = cfg(Version::V3, 100);
    let mut r = router(c.clone());
    r.handle_packet(NOW, meta(HIGH), &good(&c));
    assert_eq!(r.counters().ignored_not_running, 1);
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.poll_timeout(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Nothing malformed panics, and a discard never changes the state or
    /// the timers.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), ttl in any::<u8>(), v6 in any::<bool>()) {
        let c = if v6 { cfg6(100) } else { cfg(Version::V3, 100) };
        let src = if v6 { PEER6 } else { HIGH };
        let mut r = backup(c);
        let before = r.poll_timeout();
        r.handle_packet(NOW, RxMeta { src, dst: mcast_of(src), ttl }, &bytes);
        if r.counters().total_discards() == 1 {
            prop_assert_eq!(r.poll_timeout(), before);
            prop_assert_eq!(r.state(), State::Backup);
        }
    }

    /// Mutating one byte of a valid packet either still yields a valid
    /// packet or is discarded; never a panic.
    #[test]
    fn mutated_packets_never_panic(i in 0usize..20, v in any::<u8>(), version in prop_oneof![Just(Version::V2), Just(Version::V3)]) {
        let c = cfg(version, 100);
        let mut b = good(&c);
        let i = i % b.len();
        b[i] = v;
        let mut r = backup(c);
        r.handle_packet(NOW, meta(HIGH), &b);
        prop_assert_eq!(r.counters().total_discards() + r.counters().adverts_received, 1);
    }
}
