//! Time as the caller supplies it: integer microseconds on a monotonic clock.
//!
//! The crate never reads a clock. [`Instant`] counts microseconds from an
//! epoch the caller picks (a driver uses the first monotonic reading; a test
//! uses zero), so a simulation can run on a virtual clock and every timer
//! computation is exact integer arithmetic. Use a monotonic source: a wall
//! clock step caused role swaps in keepalived (issue #1529).
//!
//! ```
//! use lb_vrrp::Instant;
//!
//! let t = Instant::from_millis(1500);
//! assert_eq!(t.add_micros(500_000), Instant::from_secs(2));
//! assert_eq!(Instant::from_micros(u64::MAX).add_micros(1), Instant::from_micros(u64::MAX));
//! ```

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in microseconds since a caller-chosen epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self { micros: 0 };

    /// `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// `self + micros`, saturating at the end of time.
    pub const fn add_micros(self, micros: u64) -> Self {
        Self {
            micros: self.micros.saturating_add(micros),
        }
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn micros_since(self, earlier: Self) -> u64 {
        self.micros.saturating_sub(earlier.micros)
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        self.add_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros_since(earlier))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
