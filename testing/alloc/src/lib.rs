//! Test-only: a global allocator that counts this thread's allocations, for
//! the "no allocation on the hot path" tests of `lb-sched`, `lb-vrrp` and
//! `lb-forward`.
//!
//! A test binary installs it and measures a closure:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: lb_testing_alloc::Counting = lb_testing_alloc::Counting;
//!
//! let mut v: Vec<u32> = Vec::with_capacity(4);
//! assert_eq!(lb_testing_alloc::allocs_during(|| v.push(1)), 0);
//! assert_eq!(lb_testing_alloc::allocs_during(|| drop(vec![1u8; 64])), 1);
//! ```
//!
//! Counts are per thread, so the test harness's other threads (which may
//! allocate while a test measures) are never counted. `alloc`,
//! `alloc_zeroed` and `realloc` count one each; `dealloc` counts nothing.
//!
//! Not for anything but tests: implementing `GlobalAlloc` needs `unsafe`,
//! the workspace denies it elsewhere, and this crate is never a dependency
//! of a library.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations made by this thread (const-initialised, so reading or
    /// bumping it never allocates).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot may be gone while the thread is torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// `System`, counting `alloc` / `alloc_zeroed` / `realloc` calls per thread.
/// Install it with `#[global_allocator]` in the test binary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// A global allocator can only be written with `unsafe impl GlobalAlloc`;
// this one only forwards to `System` with the caller's own arguments.
#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the arguments it was given,
// so `System`'s guarantees are ours; counting touches no allocator state.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr`/`layout` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr`/`layout` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations this thread has made so far (0 if [`Counting`] is not the
/// global allocator).
#[must_use]
pub fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations this thread makes while running `f`.
pub fn allocs_during(f: impl FnOnce()) -> u64 {
    let before = allocs();
    f();
    allocs() - before
}
