//! Tracked objects (keepalived `track_interface`, `track_script`,
//! `track_file`) and the effective priority they produce.
//!
//! Rules, as keepalived's:
//! * weight 0: the object failing (down, or a non-zero file value) puts the
//!   router in FAULT;
//! * weight > 0: added while the object is up; weight < 0: added while it is
//!   down; a file adds `value * weight`;
//! * `reverse` swaps up and down (and negates a file value);
//! * the sum is added to the configured priority and clamped to 1–254; an
//!   address owner (255) is never changed.

/// What kind of object is tracked (informational: all follow the same rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// An interface's link state.
    Interface,
    /// A check script's result.
    Script,
    /// A number read from a file.
    File,
}

/// The status of a tracked object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackStatus {
    /// Interface up / script succeeding.
    Up,
    /// Interface down / script failing.
    Down,
    /// A file's value.
    Value(i64),
}

/// One tracked object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Name for reports.
    pub name: String,
    /// Kind.
    pub kind: TrackKind,
    /// Weight, -253..=253; 0 means "failure is FAULT".
    pub weight: i32,
    /// Swap the sense of up/down.
    pub reverse: bool,
    /// Status before the first report.
    pub initial: TrackStatus,
}

impl Tracked {
    /// A tracked object with the given weight, initially up (value 0 for files).
    pub fn new(name: impl Into<String>, kind: TrackKind, weight: i32) -> Self {
        let initial = if kind == TrackKind::File {
            TrackStatus::Value(0)
        } else {
            TrackStatus::Up
        };
        Self {
            name: name.into(),
            kind,
            weight,
            reverse: false,
            initial,
        }
    }
}

/// The result of all tracked objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effect {
    pub(crate) priority: u8,
    pub(crate) fault: bool,
}

/// Combines a configured priority with the objects' statuses.
pub(crate) fn effect(base: u8, tracked: &[Tracked], status: &[TrackStatus]) -> Effect {
    let mut sum: i64 = 0;
    let mut fault = false;
    for (t, s) in tracked.iter().zip(status) {
        let s = match (*s, t.reverse) {
            (TrackStatus::Up, true) => TrackStatus::Down,
            (TrackStatus::Down, true) => TrackStatus::Up,
            (TrackStatus::Value(v), true) => TrackStatus::Value(v.saturating_neg()),
            (s, false) => s,
        };
        let w = i64::from(t.weight);
        match s {
            TrackStatus::Up | TrackStatus::Down if w == 0 => fault |= s == TrackStatus::Down,
            TrackStatus::Up if w > 0 => sum += w,
            TrackStatus::Down if w < 0 => sum += w,
            TrackStatus::Up | TrackStatus::Down => {}
            TrackStatus::Value(v) if w == 0 => fault |= v != 0,
            TrackStatus::Value(v) => sum += v.saturating_mul(w).clamp(-254, 254),
        }
    }
    let priority = if base == 255 {
        255
    } else {
        (i64::from(base) + sum).clamp(1, 254) as u8
    };
    Effect { priority, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: i32, reverse: bool) -> Tracked {
        Tracked {
            reverse,
            ..Tracked::new("x", TrackKind::Script, weight)
        }
    }

    #[test]
    fn weights_and_clamp() {
        let tr = [t(20, false), t(-30, false)];
        assert_eq!(
            effect(100, &tr, &[TrackStatus::Up, TrackStatus::Up]).priority,
            120
        );
        assert_eq!(
            effect(100, &tr, &[TrackStatus::Down, TrackStatus::Down]).priority,
            70
        );
        assert_eq!(
            effect(250, &tr, &[TrackStatus::Up, TrackStatus::Up]).priority,
            254
        );
        assert_eq!(
            effect(10, &tr, &[TrackStatus::Down, TrackStatus::Down]).priority,
            1
        );
        assert_eq!(
            effect(255, &tr, &[TrackStatus::Down, TrackStatus::Down]).priority,
            255
        );
    }

    #[test]
    fn weight_zero_is_fault() {
        let tr = [t(0, false)];
        assert!(!effect(100, &tr, &[TrackStatus::Up]).fault);
        assert!(effect(100, &tr, &[TrackStatus::Down]).fault);
        let tr = [t(0, true)];
        assert!(effect(100, &tr, &[TrackStatus::Up]).fault);
    }

    #[test]
    fn files_multiply() {
        let tr = [Tracked::new("f", TrackKind::File, 2)];
        assert_eq!(effect(100, &tr, &[TrackStatus::Value(-10)]).priority, 80);
        assert_eq!(
            effect(100, &tr, &[TrackStatus::Value(i64::MAX)]).priority,
            254
        );
        let tr = [Tracked::new("f", TrackKind::File, 0)];
        assert!(effect(100, &tr, &[TrackStatus::Value(3)]).fault);
        assert!(!effect(100, &tr, &[TrackStatus::Value(0)]).fault);
    }
}
