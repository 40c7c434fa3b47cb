//! The per-packet paths do not allocate: handling a valid advertisement (as
//! Backup and as Master), discarding a bad one, and emitting an
//! advertisement. Checked with a counting global allocator.

mod util;

use lb_testing_alloc::allocs_during;
use lb_vrrp::wire::Version;
use lb_vrrp::{Instant, MAX_TRANSMIT_LEN};
use util::*;

#[global_allocator]
static GLOBAL: lb_testing_alloc::Counting = lb_testing_alloc::Counting;

#[test]
fn per_packet_paths_do_not_allocate() {
    // The counter works.
    assert_eq!(
        allocs_during(|| drop(std::hint::black_box(vec![1u8; 16]))),
        1
    );
    for version in [Version::V2, Version::V3] {
        let mut r = backup(cfg(version, 100));
        let good = advert_for(r.config(), HIGH, 150, r.config().interval);
        let mut bad = good.clone();
        bad[7] ^= 1;
        let m = meta(HIGH);
        // Warm up (the discard report queue may grow once).
        r.handle_packet(Instant::from_millis(1), m, &bad);
        while r.poll_event().is_some() {}
        let n = allocs_during(|| {
            for i in 0..1000u64 {
                r.handle_packet(Instant::from_millis(2 + i), m, &good);
                r.handle_packet(Instant::from_millis(2 + i), m, &bad);
                while r.poll_event().is_some() {}
            }
        });
        assert_eq!(n, 0, "{version:?} Backup receive path allocated");

        let (mut r, t) = master(cfg(version, 200));
        let lower = advert_for(r.config(), HIGH, 100, r.config().interval);
        let mut buf = vec![0u8; MAX_TRANSMIT_LEN];
        let n = allocs_during(|| {
            for i in 0..1000u64 {
                let now = t.add_micros(i);
                r.handle_packet(now, m, &lower);
                r.handle_timeout(now.add_micros(10_000_000));
                while r.poll_event().is_some() {}
                while r.poll_transmit(&mut buf).is_some() {}
            }
        });
        assert_eq!(n, 0, "{version:?} Master receive/transmit path allocated");
    }
}
