//! Polling for a condition in a test, with a time limit.

use std::time::{Duration, Instant};

/// Calls `f` every 50 ms until it returns `true`; panics with
/// `timed out waiting for {what}` after `secs` seconds. Lab state (an
/// address appearing, a process reporting MASTER) changes asynchronously,
/// so tests wait for it instead of sleeping a fixed time.
///
/// ```
/// let mut n = 0;
/// lb_testing_netns::wait_for("the third poll", 5, || {
///     n += 1;
///     n == 3
/// });
/// ```
///
/// # Panics
/// When `f` has not returned `true` within `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
