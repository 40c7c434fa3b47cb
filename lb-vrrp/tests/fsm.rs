//! State-machine tests: the transition matrix (state × event × priority
//! relation × preempt × version) against a reference table written from
//! RFC 3768 §6.4 and RFC 9568 §6.4, and scenario tests named in LEDGER.md.

mod util;

use core::time::Duration;

use lb_vrrp::timing::{down_micros, skew_micros};
use lb_vrrp::wire::Version;
use lb_vrrp::{
    Event, Instant, Reason, State, TrackKind, TrackStatus, Tracked, Transmit, VirtualRouter,
};
use util::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Advertisement with priority 150 (higher than our 100).
    AdvHigher,
    /// Priority 100 from a higher address.
    AdvEqualHigherAddr,
    /// Priority 100 from a lower address.
    AdvEqualLowerAddr,
    /// Priority 50.
    AdvLower,
    /// Priority 0.
    AdvZero,
    /// The pending timer (Master_Down or Adver) fires.
    Timer,
    Shutdown,
    Startup,
    TrackFail,
    TrackRecover,
}

const INPUTS: [Input; 10] = [
    Input::AdvHigher,
    Input::AdvEqualHigherAddr,
    Input::AdvEqualLowerAddr,
    Input::AdvLower,
    Input::AdvZero,
    Input::Timer,
    Input::Shutdown,
    Input::Startup,
    Input::TrackFail,
    Input::TrackRecover,
];

/// What the reference table says must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// The Master_Down_Timer, re-armed to now + Master_Down_Interval.
    DownReset,
    /// Re-armed to now + Skew_Time.
    Skew,
    /// Unchanged from before the input.
    Unchanged,
    /// Adver_Timer re-armed to now + interval.
    AdverReset,
    /// No timer at all.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    state: State,
    sent: Vec<u8>,
    add: bool,
    remove: bool,
    deadline: Deadline,
}

fn e(state: State, sent: &[u8], add: bool, remove: bool, deadline: Deadline) -> Expect {
    Expect {
        state,
        sent: sent.to_vec(),
        add,
        remove,
        deadline,
    }
}

/// The reference: RFC 9568 §6.4.1–6.4.3 (v2: RFC 3768, where a Master
/// answers lower priorities as keepalived does, [`Config::v2_answer_lower_priority`]).
fn reference(state: State, input: Input, preempt: bool) -> Expect {
    use Deadline::*;
    use Input::*;
    use State::*;
    match (state, input) {
        (Initialize, Startup) => e(Backup, &[], false, false, DownReset),
        (Initialize, TrackFail) => e(Initialize, &[], false, false, None),
        (Initialize, _) => e(Initialize, &[], false, false, None),

        (Backup, AdvHigher | AdvEqualHigherAddr | AdvEqualLowerAddr) => {
            e(Backup, &[], false, false, DownReset)
        }
        (Backup, AdvLower) if preempt => e(Backup, &[], false, false, Unchanged),
        (Backup, AdvLower) => e(Backup, &[], false, false, DownReset),
        (Backup, AdvZero) => e(Backup, &[], false, false, Skew),
        (Backup, Timer) => e(Master, &[100], true, false, AdverReset),
        (Backup, Shutdown) => e(Initialize, &[], false, false, None),
        (Backup, TrackFail) => e(Fault, &[], false, false, None),
        (Backup, Startup | TrackRecover) => e(Backup, &[], false, false, Unchanged),

        (Master, AdvHigher | AdvEqualHigherAddr) => e(Backup, &[], false, true, DownReset),
        (Master, AdvEqualLowerAddr | AdvLower) => e(Master, &[100], false, false, Unchanged),
        (Master, AdvZero | Timer) => e(Master, &[100], false, false, AdverReset),
        (Master, Shutdown) => e(Initialize, &[0], false, true, None),
        (Master, TrackFail) => e(Fault, &[0], false, true, None),
        (Master, Startup | TrackRecover) => e(Master, &[], false, false, Unchanged),

        (Fault, TrackRecover) => e(Backup, &[], false, false, DownReset),
        (Fault, Shutdown) => e(Initialize, &[], false, false, None),
        (Fault, _) => e(Fault, &[], false, false, None),
    }
}

fn setup(state: State, version: Version, preempt: bool) -> (VirtualRouter, Instant) {
    let mut c = cfg(version, 100);
    c.preempt = preempt;
    c.garp.master_repeat = 0;
    c.garp.master_delay = Duration::ZERO;
    c.tracked = vec![Tracked::new("chk", TrackKind::Script, 0)];
    let t0 = Instant::from_secs(10);
    match state {
        State::Initialize => (router(c), t0),
        State::Backup => {
            let mut r = backup(c);
            rx(&mut r, t0, HIGH, 150);
            let _ = events(&mut r);
            (r, t0)
        }
        State::Master => master(c),
        State::Fault => {
            let mut r = backup(c);
            r.handle_track(t0, 0, TrackStatus::Down);
            assert_eq!(r.state(), State::Fault);
            let _ = events(&mut r);
            (r, t0)
        }
    }
}

#[test]
fn transition_matrix() {
    let mut checked = 0;
    for version in [Version::V2, Version::V3] {
        for state in [
            State::Initialize,
            State::Backup,
            State::Master,
            State::Fault,
        ] {
            for input in INPUTS {
                for preempt in [true, false] {
                    let (mut r, t0) = setup(state, version, preempt);
                    if state == State::Initialize && input == Input::TrackRecover {
                        continue;
                    }
                    let before = r.poll_timeout();
                    let now = match input {
                        Input::Timer => before.unwrap_or(t0),
                        _ => t0.add_micros(1234),
                    };
                    match input {
                        Input::AdvHigher => rx(&mut r, now, HIGH, 150),
                        Input::AdvEqualHigherAddr => rx(&mut r, now, HIGH, 100),
                        Input::AdvEqualLowerAddr => rx(&mut r, now, LOW, 100),
                        Input::AdvLower => rx(&mut r, now, HIGH, 50),
                        Input::AdvZero => rx(&mut r, now, HIGH, 0),
                        Input::Timer => r.handle_timeout(now),
                        Input::Shutdown => r.handle_shutdown(now),
                        Input::Startup => r.handle_startup(now),
                        Input::TrackFail => r.handle_track(now, 0, TrackStatus::Down),
                        Input::TrackRecover => r.handle_track(now, 0, TrackStatus::Up),
                    }
                    let want = reference(state, input, preempt);
                    let ev = events(&mut r);
                    let sent = adverts_sent(&mut r);
                    let ctx =
                        format!("{version:?} {state:?} {input:?} preempt={preempt}: events {ev:?}");
                    assert_eq!(r.state(), want.state, "{ctx}");
                    assert_eq!(sent, want.sent, "{ctx}");
                    assert_eq!(ev.contains(&Event::AddAddresses), want.add, "{ctx}");
                    assert_eq!(ev.contains(&Event::RemoveAddresses), want.remove, "{ctx}");
                    let interval_us =
                        lb_vrrp::timing::interval_micros(version, r.config().interval);
                    let deadline = match want.deadline {
                        Deadline::DownReset => Some(now.add_micros(down_micros(
                            version,
                            100,
                            r.master_adver_interval(),
                        ))),
                        Deadline::Skew => Some(now.add_micros(skew_micros(
                            version,
                            100,
                            r.master_adver_interval(),
                        ))),
                        Deadline::Unchanged => before,
                        Deadline::AdverReset => Some(now.add_micros(interval_us)),
                        Deadline::None => None,
                    };
                    assert_eq!(r.poll_timeout(), deadline, "{ctx}");
                    if want.state != state {
                        assert!(
                            ev.iter().any(|e| matches!(e, Event::StateChanged { from, to, .. } if *from == state && *to == want.state)),
                            "{ctx}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * (4 * 10 - 1) * 2);
}

/// RFC 9568 §6.4.1: the address owner (255) goes straight to Master on
/// Startup, sends an advertisement and announces its addresses.
#[test]
fn owner_becomes_master_at_startup() {
    let mut c = cfg(Version::V3, 255);
    c.excluded_addresses = vec![VIP6];
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    assert_eq!(r.state(), State::Master);
    let ev = events(&mut r);
    assert_eq!(ev[0], Event::AddAddresses);
    assert!(matches!(
        ev[1],
        Event::StateChanged {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::Startup
        }
    ));
    let tx = transmits(&mut r);
    assert!(matches!(
        tx[0].0,
        Transmit::Advertisement { priority: 255, .. }
    ));
    // 5 waves (default garp_master_repeat) over the VIP and the excluded IPv6 address.
    let garps = tx
        .iter()
        .filter(|(t, _)| matches!(t, Transmit::GratuitousArp { .. }))
        .count();
    let nas = tx
        .iter()
        .filter(|(t, _)| matches!(t, Transmit::NeighborAdvertisement { .. }))
        .count();
    assert_eq!((garps, nas), (5, 5));
}

/// A non-owner goes to Backup on Startup, never straight to Master.
#[test]
fn non_owner_starts_as_backup() {
    for p in [1u8, 100, 254] {
        let mut r = router(cfg(Version::V3, p));
        r.handle_startup(Instant::ZERO);
        assert_eq!(r.state(), State::Backup);
        assert!(adverts_sent(&mut r).is_empty());
    }
}

/// RFC 9568 §6.4.3: a Master receiving a lower priority answers with an
/// advertisement at once; RFC 3768 with the option off just discards.
#[test]
fn master_answers_lower_priority_at_once() {
    let (mut r, t) = master(cfg(Version::V3, 100));
    rx(&mut r, t.add_micros(10), HIGH, 99);
    assert_eq!(adverts_sent(&mut r), vec![100]);
    let mut c = cfg(Version::V2, 100);
    c.v2_answer_lower_priority = false;
    let (mut r, t) = master(c);
    rx(&mut r, t.add_micros(10), HIGH, 99);
    assert!(adverts_sent(&mut r).is_empty());
    assert_eq!(r.state(), State::Master);
}

/// Equal priority: the higher primary address wins, compared as an unsigned
/// number in network byte order (10.0.0.3 > 10.0.0.2 > 10.0.0.1, and
/// 10.0.1.0 > 10.0.0.255 although its last octet is smaller).
#[test]
fn equal_priority_tie_break_by_address() {
    let (mut r, t) = master(cfg(Version::V3, 100));
    rx(&mut r, t, LOW, 100);
    assert_eq!(r.state(), State::Master);
    rx(&mut r, t, "10.0.1.0".parse().unwrap(), 100);
    assert_eq!(r.state(), State::Backup);
    let mut c = cfg(Version::V3, 100);
    c.primary_address = "10.0.0.255".parse().unwrap();
    let (mut r, t) = master(c);
    rx(&mut r, t, "10.0.1.0".parse().unwrap(), 100);
    assert_eq!(r.state(), State::Backup);
    let mut c = cfg(Version::V3, 100);
    c.primary_address = "10.0.1.0".parse().unwrap();
    let (mut r, t) = master(c);
    rx(&mut r, t, "10.0.0.255".parse().unwrap(), 100);
    assert_eq!(r.state(), State::Master);
}

/// RFC 9568 §6.4.3: shutdown as Master sends priority 0; the Backup that
/// receives it takes over after Skew_Time only.
#[test]
fn priority_zero_handoff_takes_skew_time() {
    let (mut m, t) = master(cfg(Version::V3, 200));
    let mut b = backup({
        let mut c = cfg(Version::V3, 100);
        c.primary_address = HIGH;
        c
    });
    m.handle_shutdown(t);
    let tx = transmits(&mut m);
    assert_eq!(tx.len(), 1);
    let Transmit::Advertisement {
        priority: 0,
        src,
        dst,
        ..
    } = tx[0].0
    else {
        panic!("{tx:?}")
    };
    b.handle_packet(t, lb_vrrp::RxMeta { src, dst, ttl: 255 }, &tx[0].1);
    assert_eq!(
        b.poll_timeout(),
        Some(t.add_micros(skew_micros(Version::V3, 100, 100)))
    );
    b.handle_timeout(t.add_micros(skew_micros(Version::V3, 100, 100)));
    assert_eq!(b.state(), State::Master);
    assert_eq!(m.counters().priority_zero_sent, 1);
    assert_eq!(b.counters().priority_zero_received, 1);
}

/// keepalived preempt_delay: the higher-priority Backup keeps following the
/// lower-priority Master until the delay has passed since it first saw it.
#[test]
fn preempt_delay_holds_then_preempts() {
    let mut c = cfg(Version::V3, 200);
    c.preempt_delay = Duration::from_secs(10);
    let mut r = backup(c);
    let mut now = Instant::ZERO;
    for _ in 0..10 {
        now = now.add_micros(1_000_000);
        rx(&mut r, now, HIGH, 100);
        assert_eq!(
            r.poll_timeout(),
            Some(now.add_micros(r.master_down_micros())),
            "held at {now}"
        );
    }
    now = now.add_micros(1_000_000);
    let before = r.poll_timeout();
    rx(&mut r, now, HIGH, 100);
    assert_eq!(
        r.poll_timeout(),
        before,
        "after 10 s the advert is discarded"
    );
    r.handle_timeout(before.unwrap());
    assert_eq!(r.state(), State::Master);
}

/// Tracking: weights move the priority (clamped 1-254), the Master
/// re-advertises at once, weight 0 failure is Fault; an owner is unaffected.
#[test]
fn tracking_adjusts_priority_and_faults() {
    let mut c = cfg(Version::V3, 100);
    c.tracked = vec![
        Tracked::new("eth1", TrackKind::Interface, -60),
        Tracked::new("chk", TrackKind::Script, 200),
        Tracked::new("f", TrackKind::File, 0),
    ];
    let (mut r, t) = master(c);
    assert_eq!(r.priority(), 254);
    r.handle_track(t, 1, TrackStatus::Down);
    assert_eq!(r.priority(), 100);
    assert_eq!(
        events(&mut r),
        vec![Event::PriorityChanged { from: 254, to: 100 }]
    );
    assert_eq!(adverts_sent(&mut r), vec![100]);
    r.handle_track(t, 0, TrackStatus::Down);
    assert_eq!(r.priority(), 40);
    r.handle_track(t, 2, TrackStatus::Value(1));
    assert_eq!(r.state(), State::Fault);
    let _ = events(&mut r);
    assert_eq!(adverts_sent(&mut r), vec![40, 0]);
    r.handle_track(t, 2, TrackStatus::Value(0));
    assert_eq!(r.state(), State::Backup);
    r.handle_link(t, false);
    assert_eq!(r.state(), State::Fault);
    r.handle_track(t, 99, TrackStatus::Down); // unknown index: ignored

    let mut c = cfg(Version::V3, 255);
    c.tracked = vec![Tracked::new("eth1", TrackKind::Interface, -60)];
    let mut r = router(c);
    r.handle_track(Instant::ZERO, 0, TrackStatus::Down);
    assert_eq!(r.priority(), 255);
}

/// Unicast peers: one advertisement per peer, the v3/IPv4 pseudo-header
/// computed with each peer's address.
#[test]
fn unicast_sends_to_each_peer() {
    let mut c = cfg(Version::V3, 255);
    c.unicast_peers = vec![LOW, HIGH];
    c.garp.master_repeat = 0;
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let tx = transmits(&mut r);
    let dsts: Vec<_> = tx
        .iter()
        .map(|(t, b)| match *t {
            Transmit::Advertisement { src, dst, .. } => {
                let p =
                    lb_vrrp::wire::Packet::new_checked(&b[..], lb_vrrp::wire::AddressFamily::Ipv4)
                        .unwrap();
                assert_eq!(
                    p.verify_checksum(src, dst),
                    Some(lb_vrrp::wire::ChecksumVariant::PseudoHeader)
                );
                dst
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(dsts, vec![LOW, HIGH]);
}

/// GARP schedule: master_repeat at once, again after master_delay, then
/// refresh_repeat every refresh period.
#[test]
fn garp_delay_and_refresh() {
    let mut c = cfg(Version::V3, 255);
    c.interval = 4095;
    c.garp.master_repeat = 2;
    c.garp.master_delay = Duration::from_secs(5);
    c.garp.refresh = Some(Duration::from_secs(7));
    c.garp.refresh_repeat = 3;
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let count = |r: &mut VirtualRouter| {
        transmits(r)
            .iter()
            .filter(|(t, _)| matches!(t, Transmit::GratuitousArp { .. }))
            .count()
    };
    assert_eq!(count(&mut r), 2);
    assert_eq!(r.poll_timeout(), Some(Instant::from_secs(5)));
    r.handle_timeout(Instant::from_secs(5));
    assert_eq!(count(&mut r), 2);
    assert_eq!(r.poll_timeout(), Some(Instant::from_secs(7)));
    r.handle_timeout(Instant::from_secs(7));
    assert_eq!(count(&mut r), 3);
    assert_eq!(r.poll_timeout(), Some(Instant::from_secs(14)));
}

/// v3: a Master stepping down adopts the new Master's interval.
#[test]
fn master_stepping_down_adopts_interval() {
    let (mut r, t) = master(cfg(Version::V3, 100));
    let bytes = advert_for(r.config(), HIGH, 200, 50);
    r.handle_packet(t, meta(HIGH), &bytes);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.master_adver_interval(), 50);
    assert_eq!(
        r.poll_timeout(),
        Some(t.add_micros(down_micros(Version::V3, 100, 50)))
    );
}

/// IPv6: the Master announces its VIPs with unsolicited NAs (R and O set).
#[test]
fn ipv6_master_sends_neighbor_advertisements() {
    let mut c = cfg6(255);
    c.mac = [2, 0, 0, 0, 0, 1];
    c.garp.master_repeat = 1;
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let tx = transmits(&mut r);
    assert_eq!(tx.len(), 2);
    let Transmit::NeighborAdvertisement {
        address, src, dst, ..
    } = tx[1].0
    else {
        panic!()
    };
    assert_eq!(std::net::IpAddr::V6(address), VIP6);
    let p = lb_vrrp::wire::ndisc::Packet::new_checked(&tx[1].1[..]).unwrap();
    assert!(p.verify_checksum(src, dst));
    assert_eq!(p.flags(), 0xa0);
}

/// Discard reports are rate limited per reason but every discard is counted.
#[test]
fn discard_reports_are_rate_limited() {
    let mut r = backup(cfg(Version::V3, 100));
    let mut bytes = advert_for(r.config(), HIGH, 150, 100);
    bytes[6] ^= 1;
    for i in 0..10u64 {
        r.handle_packet(Instant::from_millis(100 * i), meta(HIGH), &bytes);
    }
    r.handle_packet(Instant::from_millis(1000), meta(HIGH), &bytes);
    let reports: Vec<_> = events(&mut r)
        .into_iter()
        .filter_map(|e| match e {
            Event::Discarded {
                reason, suppressed, ..
            } => Some((reason, suppressed)),
            _ => None,
        })
        .collect();
    use lb_vrrp::DiscardReason::BadChecksum;
    assert_eq!(reports, vec![(BadChecksum, 0), (BadChecksum, 9)]);
    assert_eq!(r.counters().discards(BadChecksum), 11);
}

/// Sync group: one member going Fault faults the others; recovering clears it.
#[test]
fn sync_group_fault_propagates() {
    let mk = |vrid: u8| {
        let mut c = cfg(Version::V3, 100);
        c.vrid = vrid;
        c.tracked = vec![Tracked::new("chk", TrackKind::Script, 0)];
        backup(c)
    };
    let mut rs = vec![mk(1), mk(2), mk(3)];
    let g = lb_vrrp::SyncGroup::new(vec![0, 1, 2]);
    let now = Instant::from_secs(1);
    rs[1].handle_track(now, 0, TrackStatus::Down);
    for ev in events(&mut rs[1]) {
        g.handle_event(now, 1, ev, &mut rs);
    }
    assert!(rs.iter().all(|r| r.state() == State::Fault));
    rs[1].handle_track(now, 0, TrackStatus::Up);
    for ev in events(&mut rs[1]) {
        g.handle_event(now, 1, ev, &mut rs);
    }
    assert!(
        rs.iter().all(|r| r.state() == State::Backup),
        "{:?}",
        rs.iter().map(|r| r.state()).collect::<Vec<_>>()
    );
    // Master -> Backup of one member moves the other Masters to Backup.
    for r in &mut rs {
        r.handle_timeout(Instant::from_secs(100));
        let _ = events(r);
    }
    assert!(rs.iter().all(|r| r.state() == State::Master));
    rx(&mut rs[0], Instant::from_secs(100), HIGH, 200);
    for ev in events(&mut rs[0]) {
        g.handle_event(Instant::from_secs(100), 0, ev, &mut rs);
    }
    assert!(rs.iter().all(|r| r.state() == State::Backup));
}

/// Every configuration error names its field.
#[test]
fn config_validation() {
    use lb_vrrp::ConfigError;
    let ok = cfg(Version::V3, 100);
    assert_eq!(ok.validate(), Ok(()));
    let bad = |f: &dyn Fn(&mut lb_vrrp::Config)| {
        let mut c = ok.clone();
        f(&mut c);
        VirtualRouter::new(c).unwrap_err()
    };
    assert_eq!(bad(&|c| c.vrid = 0), ConfigError::Vrid);
    assert_eq!(bad(&|c| c.priority = 0), ConfigError::Priority);
    assert_eq!(
        bad(&|c| c.interval = 0),
        ConfigError::Interval {
            value: 0,
            max: 4095
        }
    );
    assert_eq!(
        bad(&|c| c.interval = 4096),
        ConfigError::Interval {
            value: 4096,
            max: 4095
        }
    );
    assert_eq!(
        bad(&|c| {
            c.version = Version::V2;
            c.interval = 256
        }),
        ConfigError::Interval {
            value: 256,
            max: 255
        }
    );
    assert_eq!(
        bad(&|c| {
            c.version = Version::V2;
            c.interval = 1;
            c.primary_address = ME6;
            c.virtual_addresses = vec![VIP6]
        }),
        ConfigError::V2OverIpv6
    );
    assert_eq!(
        bad(&|c| {
            c.primary_address = "2001:db8::2".parse().unwrap();
            c.virtual_addresses = vec![VIP6]
        }),
        ConfigError::PrimaryNotLinkLocal
    );
    assert_eq!(
        bad(&|c| c.virtual_addresses = vec![VIP6]),
        ConfigError::FamilyMismatch(VIP6)
    );
    assert_eq!(
        bad(&|c| c.unicast_peers = vec![PEER6]),
        ConfigError::FamilyMismatch(PEER6)
    );
    assert_eq!(
        bad(&|c| c.auth = lb_vrrp::wire::Auth::simple_text(b"x")),
        ConfigError::Auth
    );
    assert_eq!(
        bad(&|c| c.discard_log_interval = Duration::ZERO),
        ConfigError::DiscardLogInterval
    );
    assert_eq!(
        bad(&|c| c.tracked = vec![Tracked::new("s", TrackKind::Script, 254)]),
        ConfigError::TrackWeight {
            name: "s".into(),
            weight: 254
        }
    );
    assert_eq!(
        bad(&|c| c.virtual_addresses = (0..256u16)
            .map(|i| std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8)))
            .collect()),
        ConfigError::TooManyAddresses
    );
}
