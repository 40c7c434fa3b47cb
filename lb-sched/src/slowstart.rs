//! Slow start: a backend that has just come up (or back) gets a weight that
//! ramps linearly to its configured weight over a window, so it is not
//! flooded while its caches and pools are cold.
//!
//! The ramp follows HAProxy's `server_recalc_eweight` (haproxy/haproxy
//! `src/server.c`): with `e` the time since the backend came up and `T` the
//! window, the throttle is `(100·e + T) / T` percent, i.e. it starts at the
//! minimal step (1 %) and reaches 100 % at `e = T`; the effective weight is
//! `⌈weight · throttle / 100⌉`, so a non-zero weight never ramps to 0. A
//! `now` earlier than the start (clock stepped back) means full weight, as
//! in HAProxy. Envoy's `min_weight_percent` is available as a floor.
//!
//! Time is an input in milliseconds on any monotonic clock the caller picks.

/// Slow-start configuration.
///
/// ```
/// use lb_sched::slowstart::SlowStart;
/// let ss = SlowStart::new(10_000); // 10 s window
/// assert_eq!(ss.effective_weight(100, 5_000, 5_000), 1); // just up: 1 %
/// assert_eq!(ss.effective_weight(100, 5_000, 10_000), 51); // half-way
/// assert_eq!(ss.effective_weight(100, 5_000, 15_000), 100); // done
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowStart {
    window_ms: u64,
    min_percent: u32,
}

impl SlowStart {
    /// A linear ramp over `window_ms` (0 disables slow start).
    #[must_use]
    pub const fn new(window_ms: u64) -> Self {
        Self {
            window_ms,
            min_percent: 1,
        }
    }

    /// Floor of the ramp in percent (default 1, Envoy's default is 10).
    #[must_use]
    pub const fn with_min_percent(mut self, percent: u32) -> Self {
        self.min_percent = if percent > 100 { 100 } else { percent };
        self
    }

    /// The window.
    #[must_use]
    pub const fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Throttle in percent (1..=100) for a backend up since `up_since_ms`.
    #[must_use]
    pub fn throttle_percent(&self, up_since_ms: u64, now_ms: u64) -> u32 {
        if self.window_ms == 0 || now_ms < up_since_ms {
            return 100;
        }
        let e = now_ms - up_since_ms;
        if e >= self.window_ms {
            return 100;
        }
        let t = (100 * u128::from(e) + u128::from(self.window_ms)) / u128::from(self.window_ms);
        (t as u32).clamp(self.min_percent.max(1), 100)
    }

    /// Effective weight of a backend of `weight` up since `up_since_ms`.
    #[must_use]
    pub fn effective_weight(&self, weight: u32, up_since_ms: u64, now_ms: u64) -> u32 {
        let t = u64::from(self.throttle_percent(up_since_ms, now_ms));
        (u64::from(weight) * t).div_ceil(100) as u32
    }

    /// Whether the ramp is over (the caller can stop recomputing weights).
    #[must_use]
    pub fn is_done(&self, up_since_ms: u64, now_ms: u64) -> bool {
        self.window_ms == 0 || now_ms < up_since_ms || now_ms - up_since_ms >= self.window_ms
    }

    /// When the ramp ends.
    #[must_use]
    pub fn ends_at(&self, up_since_ms: u64) -> u64 {
        up_since_ms.saturating_add(self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_points() {
        let ss = SlowStart::new(1000);
        assert_eq!(ss.throttle_percent(0, 0), 1);
        assert_eq!(ss.throttle_percent(0, 10), 2);
        assert_eq!(ss.throttle_percent(0, 999), 100);
        assert_eq!(ss.throttle_percent(0, 1000), 100);
        assert_eq!(ss.throttle_percent(500, 100), 100, "clock stepped back");
        assert_eq!(ss.effective_weight(0, 0, 0), 0);
        assert_eq!(
            ss.effective_weight(3, 0, 0),
            1,
            "never ramps a live backend to 0"
        );
        assert_eq!(SlowStart::new(0).effective_weight(7, 0, 0), 7);
        assert_eq!(ss.with_min_percent(10).throttle_percent(0, 0), 10);
        assert!(ss.is_done(0, 1000) && !ss.is_done(0, 999));
        assert_eq!(ss.ends_at(u64::MAX), u64::MAX);
    }

    proptest! {
        /// Monotone in time, bounded by the weight, and equal to a float model
        /// of HAProxy's formula.
        #[test]
        fn ramp_model(window in 1u64..1_000_000, w in 0u32..1000, a in 0u64..2_000_000, b in 0u64..2_000_000) {
            let ss = SlowStart::new(window);
            let (t0, t1) = (a.min(b), a.max(b));
            let e0 = ss.effective_weight(w, 0, t0);
            let e1 = ss.effective_weight(w, 0, t1);
            prop_assert!(e0 <= e1 && e1 <= w);
            let model = if t0 >= window { w } else {
                let pct = ((100 * t0 + window) / window).max(1);
                (u64::from(w) * pct).div_ceil(100) as u32
            };
            prop_assert_eq!(e0, model);
        }
    }
}
