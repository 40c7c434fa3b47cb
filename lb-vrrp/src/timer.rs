//! The router's timers: a closed set, in a fixed table.

use crate::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    MasterDown = 0,
    Advert = 1,
    GarpDelay = 2,
    GarpRefresh = 3,
    RouterAdvert = 4,
}

impl Timer {
    pub(crate) const VALUES: [Self; 5] = [
        Self::MasterDown,
        Self::Advert,
        Self::GarpDelay,
        Self::GarpRefresh,
        Self::RouterAdvert,
    ];
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable([Option<Instant>; 5]);

impl TimerTable {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
    pub(crate) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}
