//! The per-packet paths do not allocate: handling a valid advertisement (as
//! Backup and as Master), discarding a bad one, and emitting an
//! advertisement. Checked with a counting global allocator.

// Test-only exception to the workspace's `unsafe_code` denial: implementing
// `GlobalAlloc` is the only way to count allocations; it forwards to `System`.
#![allow(unsafe_code)]

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use lb_vrrp::wire::Version;
use lb_vrrp::{Instant, MAX_TRANSMIT_LEN};
use util::*;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads may
    /// allocate while a test measures, and must not be counted.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot may be gone while the thread is torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr`/`layout` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

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
