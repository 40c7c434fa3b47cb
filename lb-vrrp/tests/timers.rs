//! Timer exactness: Skew_Time and Master_Down_Interval, for every priority
//! 1–254 and every interval (v2 1–255 s, v3 1–4095 cs), against the exact
//! rational value: floored to the microsecond, never zero, never overflowing.

mod util;

use lb_vrrp::timing::{down_micros, interval_micros, skew_micros};
use lb_vrrp::wire::Version;
use lb_vrrp::{Instant, State};
use util::*;

/// skew*256 <= exact*256 < (skew+1)*256, with exact = (256-p)*I/256 µs.
fn check_floor(skew: u64, numerator: u128) {
    assert!(u128::from(skew) * 256 <= numerator && numerator < (u128::from(skew) + 1) * 256);
}

#[test]
fn v3_skew_and_down_exact_for_all_priorities_and_intervals() {
    for interval in 1u16..=4095 {
        let i_us = u128::from(interval) * 10_000;
        assert_eq!(u128::from(interval_micros(Version::V3, interval)), i_us);
        let mut prev = u64::MAX;
        for p in 1u8..=254 {
            let skew = skew_micros(Version::V3, p, interval);
            check_floor(skew, (256 - u128::from(p)) * i_us);
            assert!(skew > 0, "skew truncated to 0 at p={p} I={interval}");
            assert!(
                skew < prev,
                "higher priority must have a strictly smaller skew"
            );
            prev = skew;
            assert_eq!(
                u128::from(down_micros(Version::V3, p, interval)),
                3 * i_us + u128::from(skew)
            );
        }
    }
}

#[test]
fn v2_skew_and_down_exact_for_all_priorities_and_intervals() {
    for interval in 1u16..=255 {
        for p in 1u8..=254 {
            let skew = skew_micros(Version::V2, p, interval);
            check_floor(skew, (256 - u128::from(p)) * 1_000_000);
            assert!(skew > 0);
            let down = u128::from(down_micros(Version::V2, p, interval));
            assert_eq!(
                down,
                3 * u128::from(interval) * 1_000_000 + u128::from(skew)
            );
        }
    }
}

/// The router arms exactly these deadlines: Master_Down_Timer on startup,
/// Skew_Time on priority 0, the learned interval in v3.
#[test]
fn router_deadlines_match_formulas() {
    let intervals = [1u16, 2, 3, 7, 99, 100, 101, 255, 1000, 4095];
    for p in 1u8..=254 {
        for &i in &intervals {
            let mut c = cfg(Version::V3, p);
            c.interval = i;
            let mut r = backup(c);
            assert_eq!(
                r.poll_timeout(),
                Some(Instant::from_micros(down_micros(Version::V3, p, i)))
            );
            // A priority-0 advertisement: the Backup waits only Skew_Time.
            let now = Instant::from_micros(5);
            rx(&mut r, now, HIGH, 0);
            assert_eq!(
                r.poll_timeout(),
                Some(now.add_micros(skew_micros(Version::V3, p, i)))
            );
            // An advertisement with another interval J: adopt it (RFC 9568 §6.4.2).
            let j = if i == 4095 { 1 } else { i + 1 };
            let bytes = advert_for(r.config(), HIGH, 255, j);
            let now = Instant::from_micros(7);
            r.handle_packet(now, meta(HIGH), &bytes);
            assert_eq!(r.master_adver_interval(), j);
            assert_eq!(
                r.poll_timeout(),
                Some(now.add_micros(down_micros(Version::V3, p, j)))
            );
        }
        for i in [1u16, 2, 100, 255] {
            let mut c = cfg(Version::V2, p);
            c.interval = i;
            let mut r = backup(c);
            assert_eq!(
                r.poll_timeout(),
                Some(Instant::from_micros(down_micros(Version::V2, p, i)))
            );
            let now = Instant::from_micros(3);
            rx(&mut r, now, HIGH, 0);
            assert_eq!(
                r.poll_timeout(),
                Some(now.add_micros(skew_micros(Version::V2, p, i)))
            );
        }
    }
}

#[test]
fn master_advertises_every_interval_exactly() {
    for i in [1u16, 37, 100, 4095] {
        let mut c = cfg(Version::V3, 255);
        c.interval = i;
        c.garp.master_delay = core::time::Duration::ZERO;
        let mut r = router(c);
        r.handle_startup(Instant::ZERO);
        assert_eq!(r.state(), State::Master);
        let mut t = Instant::ZERO;
        for _ in 0..5 {
            let _ = transmits(&mut r);
            let next = r.poll_timeout().unwrap();
            assert_eq!(next, t.add_micros(u64::from(i) * 10_000));
            r.handle_timeout(next);
            assert_eq!(adverts_sent(&mut r), vec![255]);
            t = next;
        }
    }
}

#[test]
fn deadlines_saturate_at_the_end_of_time() {
    let mut r = router(cfg(Version::V3, 1));
    let late = Instant::from_micros(u64::MAX - 10);
    r.handle_startup(late);
    assert_eq!(r.poll_timeout(), Some(Instant::from_micros(u64::MAX)));
}
