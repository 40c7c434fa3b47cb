//! The protocol's timer formulas, in exact integer microseconds.
//!
//! * v2 (RFC 3768 §6.1): `Skew_Time = (256 - Priority) / 256` **seconds**,
//!   independent of the interval; `Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time`.
//! * v3 (RFC 9568 §6.1): `Skew_Time = ((256 - Priority) * Active_Adver_Interval) / 256`
//!   **centiseconds**, where a Backup uses the interval the Active router
//!   advertises; `Active_Down_Interval = 3 * Active_Adver_Interval + Skew_Time`.
//!
//! Both skews are computed as `(256 - p) * interval_in_µs / 256`, floored to
//! the microsecond: the error is under 1 µs, never truncation to zero (the
//! smallest v3 skew, priority 255 at 1 cs, is 39 µs; computing in whole
//! centiseconds would give 0, the FRR v2 bug). Two priorities one apart
//! always differ by at least 39 µs of skew. The largest value, v3 at 4095 cs
//! and priority 1, is 163.6 s: far from overflowing `u64`.
//!
//! ```
//! use lb_vrrp::timing::{down_micros, skew_micros};
//! use lb_vrrp::wire::Version;
//!
//! // v3, priority 254, 1 cs: 2 * 10 000 µs / 256 = 78.125 µs, floored, not 0.
//! assert_eq!(skew_micros(Version::V3, 254, 1), 78);
//! // v2, priority 100, 1 s: 3 s + 156/256 s.
//! assert_eq!(down_micros(Version::V2, 100, 1), 3_609_375);
//! ```

use crate::wire::Version;

/// Microseconds in a centisecond.
pub const MICROS_PER_CS: u64 = 10_000;
/// Microseconds in a second.
pub const MICROS_PER_SEC: u64 = 1_000_000;

/// An advertisement interval in microseconds: `interval` is seconds in v2,
/// centiseconds in v3 (the unit of the packet field).
pub const fn interval_micros(version: Version, interval: u16) -> u64 {
    match version {
        Version::V2 => interval as u64 * MICROS_PER_SEC,
        Version::V3 => interval as u64 * MICROS_PER_CS,
    }
}

/// `Skew_Time` in microseconds for `priority` (0 is treated as 0, the
/// largest skew; the formula is only used with 1–255) and, in v3, the
/// Active router's interval in centiseconds (ignored in v2).
pub const fn skew_micros(version: Version, priority: u8, interval: u16) -> u64 {
    let weight = 256 - priority as u64;
    match version {
        Version::V2 => weight * MICROS_PER_SEC / 256,
        Version::V3 => weight * interval as u64 * MICROS_PER_CS / 256,
    }
}

/// `Master_Down_Interval` / `Active_Down_Interval` in microseconds.
pub const fn down_micros(version: Version, priority: u8, interval: u16) -> u64 {
    3 * interval_micros(version, interval) + skew_micros(version, priority, interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // v2, priority 100: (156/256) s = 609375 µs exactly.
        assert_eq!(skew_micros(Version::V2, 100, 1), 609_375);
        assert_eq!(down_micros(Version::V2, 100, 1), 3_609_375);
        // v3, priority 100, 100 cs: 156 * 1 s / 256, the same.
        assert_eq!(skew_micros(Version::V3, 100, 100), 609_375);
        // v3, priority 254, 1 cs: 2 * 10000 / 256 = 78.125 -> 78 µs, not 0.
        assert_eq!(skew_micros(Version::V3, 254, 1), 78);
        assert_eq!(skew_micros(Version::V3, 255, 1), 39);
        // v3 largest: priority 1 at 4095 cs.
        assert_eq!(
            down_micros(Version::V3, 1, 4095),
            3 * 40_950_000 + 255 * 40_950_000 / 256
        );
    }
}
