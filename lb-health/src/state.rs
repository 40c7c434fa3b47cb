//! The per-check state machine: results in, up/down/weight events and the
//! next due time out. No clock, no sockets, no global RNG.
//!
//! It merges keepalived's and HAProxy's models into one consecutive-counter
//! hysteresis:
//!
//! | keepalived            | HAProxy     | here          |
//! |-----------------------|-------------|---------------|
//! | `delay_loop`          | `inter`     | [`StateConfig::inter`] |
//! | `delay_before_retry`  | `fastinter` | [`StateConfig::fastinter`] |
//! | `delay_loop` when down| `downinter` | [`StateConfig::downinter`] |
//! | `retry` (+1)          | `fall`      | [`StateConfig::fall`] |
//! | (one success)         | `rise`      | [`StateConfig::rise`] |
//! | `alpha`               | -           | start DOWN    |
//! | `warmup`              | spread      | random first delay |
//! | `inhibit_on_failure`  | -           | DOWN = weight 0 instead of removal |
//!
//! A check that is UP goes DOWN after `fall` consecutive failures; a check
//! that is DOWN goes UP after `rise` consecutive successes. keepalived's
//! `retry N` is `fall = N + 1, rise = 1` ([`StateConfig::keepalived`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::FailureClass;

/// Timing and hysteresis parameters of one check.
///
/// Build it with [`StateConfig::keepalived`] or [`StateConfig::haproxy`] and
/// adjust with the setters.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateConfig {
    /// Interval between checks while UP and stable. keepalived `delay_loop`
    /// (default 60 s), HAProxy `inter` (default 2 s).
    pub inter: Duration,
    /// Interval while transitioning (some failures while UP, or some
    /// successes while DOWN). keepalived `delay_before_retry`, HAProxy
    /// `fastinter`.
    pub fastinter: Duration,
    /// Interval while DOWN and stable. keepalived `delay_loop`, HAProxy
    /// `downinter`.
    pub downinter: Duration,
    /// Consecutive successes needed to go from DOWN to UP (at least 1).
    pub rise: u32,
    /// Consecutive failures needed to go from UP to DOWN (at least 1).
    pub fall: u32,
    /// keepalived `alpha`: start DOWN, so that a server only receives
    /// traffic after it passed a check.
    pub alpha: bool,
    /// keepalived `omega`: report DOWN on [`Checker::shutdown`].
    pub omega: bool,
    /// keepalived `inhibit_on_failure`: on DOWN, set the weight to 0 and
    /// keep the server (existing flows keep flowing) instead of removing it.
    pub inhibit_on_failure: bool,
    /// keepalived `warmup`: the first check runs after a random delay in
    /// `[0, warmup]`, so that checks do not all fire at start.
    pub warmup: Duration,
    /// HAProxy `spread-checks`: each interval is changed by a random amount
    /// of up to this many percent (0 to 50) either way, against resonance.
    pub spread_percent: u8,
    /// The configured weight, reported on UP when the probe gives none.
    pub weight: u32,
}

impl StateConfig {
    /// keepalived defaults for a check: `delay_loop`, `retry`,
    /// `delay_before_retry`; `rise 1`, `fall retry+1`, `warmup delay_loop`,
    /// weight 1, starts UP (no `alpha`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use lb_health::StateConfig;
    /// let c = StateConfig::keepalived(Duration::from_secs(60), 1, Duration::from_secs(3));
    /// assert_eq!((c.rise, c.fall), (1, 2));
    /// ```
    pub fn keepalived(delay_loop: Duration, retry: u32, delay_before_retry: Duration) -> Self {
        Self {
            inter: delay_loop,
            fastinter: delay_before_retry,
            downinter: delay_loop,
            rise: 1,
            fall: retry.saturating_add(1),
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            warmup: delay_loop,
            spread_percent: 0,
            weight: 1,
        }
    }

    /// HAProxy defaults for a server check: `inter`, `rise`, `fall`,
    /// `fastinter = downinter = inter`, no warmup, weight 1, starts UP.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lb_health::StateConfig;
    /// let c = StateConfig::haproxy(Duration::from_secs(2), 2, 3);
    /// assert_eq!(c.fastinter, Duration::from_secs(2));
    /// ```
    pub fn haproxy(inter: Duration, rise: u32, fall: u32) -> Self {
        Self {
            inter,
            fastinter: inter,
            downinter: inter,
            rise: rise.max(1),
            fall: fall.max(1),
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            warmup: Duration::ZERO,
            spread_percent: 0,
            weight: 1,
        }
    }

    /// Sets `alpha` (start DOWN).
    pub fn alpha(&mut self, on: bool) -> &mut Self {
        self.alpha = on;
        self
    }

    /// Sets `omega` (report DOWN on shutdown).
    pub fn omega(&mut self, on: bool) -> &mut Self {
        self.omega = on;
        self
    }

    /// Sets `inhibit_on_failure` (weight 0 instead of removal).
    pub fn inhibit_on_failure(&mut self, on: bool) -> &mut Self {
        self.inhibit_on_failure = on;
        self
    }

    /// Sets the maximum random first delay.
    pub fn warmup(&mut self, warmup: Duration) -> &mut Self {
        self.warmup = warmup;
        self
    }

    /// Sets the per-interval random spread in percent (clamped to 50).
    pub fn spread_percent(&mut self, percent: u8) -> &mut Self {
        self.spread_percent = percent.min(50);
        self
    }

    /// Sets the configured weight.
    pub fn weight(&mut self, weight: u32) -> &mut Self {
        self.weight = weight;
        self
    }

    /// Sets `rise` and `fall` (each at least 1).
    pub fn rise_fall(&mut self, rise: u32, fall: u32) -> &mut Self {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
        self
    }

    /// Sets `fastinter` and `downinter`.
    pub fn intervals(&mut self, fastinter: Duration, downinter: Duration) -> &mut Self {
        self.fastinter = fastinter;
        self.downinter = downinter;
        self
    }
}

/// The result of one probe, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The probe passed. `weight` is a dynamic weight (MISC_CHECK
    /// `misc_dynamic`, FILE_CHECK) or `None` for the configured one.
    Success {
        /// Dynamic weight, if the probe reports one.
        weight: Option<u32>,
    },
    /// The probe failed.
    Failure(FailureClass),
}

/// What to do with a server that went DOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownAction {
    /// Remove it from the virtual server (keepalived default).
    Remove,
    /// Keep it with weight 0 (`inhibit_on_failure`): no new flows, existing
    /// flows continue.
    Inhibit,
}

/// A state change for the caller to apply.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The server passed `rise` consecutive checks: add it (or restore its
    /// weight) with this weight.
    Up {
        /// The weight to set.
        weight: u32,
    },
    /// The server failed `fall` consecutive checks.
    Down {
        /// Remove it, or set its weight to 0.
        action: DownAction,
        /// The class of the last failure.
        cause: FailureClass,
    },
    /// The server is still UP but its dynamic weight changed.
    Weight {
        /// The new weight.
        weight: u32,
    },
}

/// One check's state machine.
///
/// Call order, repeated: [`poll_timeout`](Self::poll_timeout) gives the due
/// time; at or after it call [`handle_timeout`](Self::handle_timeout), which
/// returns `true` when a probe must start; when the probe ends call
/// [`handle_result`](Self::handle_result); then drain
/// [`poll_event`](Self::poll_event). While a probe is in flight
/// `poll_timeout` returns `None`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use lb_health::{Checker, Event, Outcome, StateConfig, FailureClass, DownAction};
///
/// let cfg = StateConfig::haproxy(Duration::from_secs(2), 2, 3);
/// let t0 = Instant::now();
/// let mut c = Checker::new(cfg, t0, 0);
/// let mut now = t0;
/// for _ in 0..3 {
///     now = c.poll_timeout().unwrap();
///     assert!(c.handle_timeout(now));
///     c.handle_result(now, Outcome::Failure(FailureClass::L4Refused));
/// }
/// assert_eq!(
///     c.poll_event(),
///     Some(Event::Down { action: DownAction::Remove, cause: FailureClass::L4Refused })
/// );
/// assert!(!c.is_up());
/// ```
#[derive(Debug, Clone)]
pub struct Checker {
    config: StateConfig,
    up: bool,
    /// Consecutive results against the current state: failures while UP,
    /// successes while DOWN.
    streak: u32,
    weight: u32,
    next_due: Instant,
    in_flight: bool,
    rng: u64,
    events: VecDeque<Event>,
}

impl Checker {
    /// A new check at `now`. `random` seeds the warmup delay and the
    /// interval spread (pass a different value per check).
    pub fn new(config: StateConfig, now: Instant, random: u64) -> Self {
        let mut rng = random ^ 0x9E37_79B9_7F4A_7C15;
        let warmup = fraction_of(config.warmup, next_rand(&mut rng));
        Self {
            up: !config.alpha,
            weight: config.weight,
            streak: 0,
            next_due: now + warmup,
            in_flight: false,
            rng,
            events: VecDeque::new(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// Whether the server is UP.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The weight the server should have now (0 when DOWN and inhibited).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Consecutive results against the current state.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// When the next probe is due, or `None` while one is in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.in_flight).then_some(self.next_due)
    }

    /// Tells the machine the time is `now`. Returns `true` if a probe must
    /// start now (it is then in flight until [`handle_result`](Self::handle_result)).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.in_flight || now < self.next_due {
            return false;
        }
        self.in_flight = true;
        true
    }

    /// Feeds the result of the probe that ended at `now`, and schedules the
    /// next one.
    pub fn handle_result(&mut self, now: Instant, outcome: Outcome) {
        self.in_flight = false;
        match outcome {
            Outcome::Success { weight } => {
                let weight = weight.unwrap_or(self.config.weight);
                if self.up {
                    self.streak = 0;
                    if weight != self.weight {
                        self.weight = weight;
                        self.events.push_back(Event::Weight { weight });
                    }
                } else {
                    self.streak += 1;
                    if self.streak >= self.config.rise {
                        self.change_state(true, weight, None);
                    }
                }
            }
            Outcome::Failure(cause) => {
                if self.up {
                    self.streak += 1;
                    if self.streak >= self.config.fall {
                        self.change_state(false, 0, Some(cause));
                    }
                } else {
                    self.streak = 0;
                }
            }
        }
        let base = self.interval();
        let spread = self.config.spread_percent.min(50);
        let delay = if spread == 0 {
            base
        } else {
            // base * (1 - s + 2s * u), u uniform in [0, 1].
            let span = base.mul_f64(f64::from(spread) / 100.0);
            base - span + fraction_of(span * 2, next_rand(&mut self.rng))
        };
        self.next_due = now + delay;
    }

    /// The next state change, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// keepalived `omega`: on shutdown, report DOWN for an UP server.
    pub fn shutdown(&mut self) {
        if self.config.omega && self.up {
            self.change_state(false, 0, Some(FailureClass::Local));
        }
    }

    /// The interval for the next probe, from the current state.
    fn interval(&self) -> Duration {
        if self.streak > 0 {
            self.config.fastinter
        } else if self.up {
            self.config.inter
        } else {
            self.config.downinter
        }
    }

    /// The one place where UP/DOWN changes.
    fn change_state(&mut self, up: bool, weight: u32, cause: Option<FailureClass>) {
        self.up = up;
        self.streak = 0;
        self.weight = weight;
        let event = if up {
            Event::Up { weight }
        } else {
            let action = if self.config.inhibit_on_failure {
                DownAction::Inhibit
            } else {
                DownAction::Remove
            };
            Event::Down {
                action,
                cause: cause.unwrap_or(FailureClass::Local),
            }
        };
        self.events.push_back(event);
    }
}

/// xorshift64*: a tiny deterministic generator, seeded by the caller.
fn next_rand(state: &mut u64) -> u64 {
    let mut x = *state;
    if x == 0 {
        x = 0x2545_F491_4F6C_DD1D;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// `d * (r / 2^64)`, exact in nanoseconds.
fn fraction_of(d: Duration, r: u64) -> Duration {
    let nanos = d.as_nanos().min(u128::from(u64::MAX));
    Duration::from_nanos(((nanos * u128::from(r)) >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);
    const OK: Outcome = Outcome::Success { weight: None };
    const KO: Outcome = Outcome::Failure(FailureClass::L4Timeout);

    /// Runs one probe at its due time and returns the time.
    fn step(c: &mut Checker, o: Outcome) -> Instant {
        let now = c.poll_timeout().expect("not in flight");
        assert!(c.handle_timeout(now));
        assert_eq!(c.poll_timeout(), None);
        c.handle_result(now, o);
        now
    }

    fn events(c: &mut Checker) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    #[test]
    fn keepalived_retry_one_needs_two_failures_and_uses_delay_before_retry() {
        // Input: delay_loop 60 s, retry 1, delay_before_retry 3 s, no warmup.
        // Output: first failure -> next check in 3 s; second -> DOWN, next in 60 s.
        let t0 = Instant::now();
        let mut cfg = StateConfig::keepalived(60 * S, 1, 3 * S);
        cfg.warmup(Duration::ZERO);
        let mut c = Checker::new(cfg, t0, 7);
        assert!(c.is_up());
        let t = step(&mut c, KO);
        assert_eq!(t, t0);
        assert!(events(&mut c).is_empty());
        assert_eq!(c.poll_timeout(), Some(t0 + 3 * S));
        step(&mut c, KO);
        assert_eq!(
            events(&mut c),
            vec![Event::Down {
                action: DownAction::Remove,
                cause: FailureClass::L4Timeout
            }]
        );
        assert_eq!(c.poll_timeout(), Some(t0 + 63 * S));
        // One success restores it (keepalived has no rise).
        step(&mut c, OK);
        assert_eq!(events(&mut c), vec![Event::Up { weight: 1 }]);
        assert_eq!(c.poll_timeout(), Some(t0 + 123 * S));
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let mut c = Checker::new(StateConfig::haproxy(2 * S, 2, 3), Instant::now(), 1);
        for o in [KO, KO, OK, KO, KO, OK] {
            step(&mut c, o);
        }
        assert!(c.is_up());
        assert!(events(&mut c).is_empty());
    }

    #[test]
    fn haproxy_intervals_follow_the_state() {
        let t0 = Instant::now();
        let mut cfg = StateConfig::haproxy(2 * S, 2, 2);
        cfg.intervals(S / 2, 10 * S);
        let mut c = Checker::new(cfg, t0, 0);
        let t = step(&mut c, KO); // transitioning -> fastinter
        assert_eq!(c.poll_timeout(), Some(t + S / 2));
        let t = step(&mut c, KO); // DOWN -> downinter
        assert_eq!(c.poll_timeout(), Some(t + 10 * S));
        let t = step(&mut c, OK); // transitioning up -> fastinter
        assert_eq!(c.poll_timeout(), Some(t + S / 2));
        let t = step(&mut c, OK); // UP -> inter
        assert_eq!(c.poll_timeout(), Some(t + 2 * S));
    }

    #[test]
    fn alpha_starts_down_and_inhibit_reports_weight_zero() {
        let mut cfg = StateConfig::haproxy(S, 1, 1);
        cfg.alpha(true).inhibit_on_failure(true).weight(5);
        let mut c = Checker::new(cfg, Instant::now(), 0);
        assert!(!c.is_up());
        step(&mut c, OK);
        assert_eq!(events(&mut c), vec![Event::Up { weight: 5 }]);
        step(&mut c, KO);
        assert_eq!(
            events(&mut c),
            vec![Event::Down {
                action: DownAction::Inhibit,
                cause: FailureClass::L4Timeout
            }]
        );
        assert_eq!(c.weight(), 0);
    }

    #[test]
    fn dynamic_weight_changes_are_reported_while_up() {
        let mut c = Checker::new(StateConfig::haproxy(S, 1, 1), Instant::now(), 0);
        step(&mut c, Outcome::Success { weight: Some(1) });
        assert!(events(&mut c).is_empty());
        step(&mut c, Outcome::Success { weight: Some(7) });
        assert_eq!(events(&mut c), vec![Event::Weight { weight: 7 }]);
        // Absolute, not relative: repeating it reports nothing (no leak, keepalived #2720).
        step(&mut c, Outcome::Success { weight: Some(7) });
        assert!(events(&mut c).is_empty());
        assert_eq!(c.weight(), 7);
    }

    #[test]
    fn omega_reports_down_on_shutdown() {
        let mut cfg = StateConfig::haproxy(S, 1, 1);
        cfg.omega(true);
        let mut c = Checker::new(cfg.clone(), Instant::now(), 0);
        c.shutdown();
        assert!(matches!(c.poll_event(), Some(Event::Down { .. })));
        cfg.omega(false);
        let mut c = Checker::new(cfg, Instant::now(), 0);
        c.shutdown();
        assert_eq!(c.poll_event(), None);
    }

    #[test]
    fn handle_timeout_before_due_or_in_flight_does_nothing() {
        let t0 = Instant::now();
        let mut cfg = StateConfig::haproxy(S, 1, 1);
        cfg.warmup(10 * S);
        let mut c = Checker::new(cfg, t0, 12345);
        let due = c.poll_timeout().unwrap();
        assert!(due >= t0 && due <= t0 + 10 * S);
        if due > t0 {
            assert!(!c.handle_timeout(t0));
        }
        assert!(c.handle_timeout(due));
        assert!(!c.handle_timeout(due + S));
    }

    #[test]
    fn warmup_spreads_first_checks() {
        let t0 = Instant::now();
        let mut cfg = StateConfig::haproxy(S, 1, 1);
        cfg.warmup(10 * S);
        let mut buckets = [0u32; 10];
        for seed in 0..1000u64 {
            let c = Checker::new(cfg.clone(), t0, seed.wrapping_mul(0x9E37_79B9));
            let off = c.poll_timeout().unwrap() - t0;
            buckets[(off.as_secs() as usize).min(9)] += 1;
        }
        // Every second of the window gets some of the 1000 first checks.
        assert!(buckets.iter().all(|&b| b > 40), "{buckets:?}");
    }

    /// Counts UP/DOWN changes for a backend that is healthy for `half`
    /// checks, then failing for `half` checks, repeatedly.
    fn square_wave_changes(rise: u32, fall: u32, half: u32, checks: u32) -> u32 {
        let mut c = Checker::new(StateConfig::haproxy(S, rise, fall), Instant::now(), 0);
        let mut changes = 0;
        for i in 0..checks {
            let healthy = (i / half).is_multiple_of(2);
            step(&mut c, if healthy { OK } else { KO });
            changes += events(&mut c).len() as u32;
        }
        changes
    }

    /// Flap damping: a backend failing half of the time in a square wave,
    /// checked every second (60 checks a minute). The figures are printed
    /// (`--nocapture`) and recorded in the README.
    #[test]
    fn rise_fall_damps_a_square_wave() {
        println!("half-period (checks) | changes/min rise/fall 1/1 | 2/3");
        for half in [1, 2, 3, 5, 10] {
            let fast = square_wave_changes(1, 1, half, 600) as f64 / 10.0;
            let damped = square_wave_changes(2, 3, half, 600) as f64 / 10.0;
            println!("{half} | {fast} | {damped}");
            assert!(damped <= fast, "half {half}: {damped} > {fast}");
            if half < 3 {
                // Half-periods shorter than fall=3 never take it down.
                assert_eq!(damped, 0.0, "half {half}");
            }
        }
        // (1,1) follows every edge: 60/half changes per minute.
        assert_eq!(square_wave_changes(1, 1, 1, 600), 599);
        // And a backend failing each check at random with probability 1/2.
        let random_changes = |rise, fall| {
            let mut c = Checker::new(StateConfig::haproxy(S, rise, fall), Instant::now(), 0);
            let mut rng = 42u64;
            let mut changes = 0;
            for _ in 0..6000 {
                step(&mut c, if next_rand(&mut rng) & 1 == 0 { OK } else { KO });
                changes += events(&mut c).len();
            }
            changes as f64 / 100.0
        };
        let (fast, damped) = (random_changes(1, 1), random_changes(2, 3));
        println!("random 50% | {fast} | {damped}");
        assert!(damped * 3.0 < fast, "{damped} vs {fast}");
    }

    /// Reference model: the state flips at result `i` when the last `k`
    /// results (all after the previous flip) all disagree with the state,
    /// with `k = fall` while UP and `k = rise` while DOWN.
    fn model(rise: u32, fall: u32, alpha: bool, results: &[bool]) -> Vec<(usize, bool)> {
        let mut up = !alpha;
        let mut last_flip = 0usize;
        let mut flips = Vec::new();
        for i in 0..results.len() {
            let k = if up { fall } else { rise } as usize;
            let start = (i + 1).saturating_sub(k);
            if i + 1 >= k && start >= last_flip && results[start..=i].iter().all(|&r| r != up) {
                up = !up;
                last_flip = i + 1;
                flips.push((i, up));
            }
        }
        flips
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_reference_model(
            rise in 1u32..5, fall in 1u32..5, alpha: bool,
            results in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut cfg = StateConfig::haproxy(S, rise, fall);
            cfg.alpha(alpha);
            let mut c = Checker::new(cfg, Instant::now(), 3);
            let mut flips = Vec::new();
            for (i, &r) in results.iter().enumerate() {
                step(&mut c, if r { OK } else { KO });
                for e in events(&mut c) {
                    match e {
                        Event::Up { .. } => flips.push((i, true)),
                        Event::Down { .. } => flips.push((i, false)),
                        Event::Weight { .. } => prop_assert!(false, "no weights here"),
                    }
                }
            }
            prop_assert_eq!(flips, model(rise, fall, alpha, &results));
        }

        #[test]
        fn spread_stays_within_bounds(seed: u64, percent in 0u8..=50) {
            let mut cfg = StateConfig::haproxy(10 * S, 1, 1);
            cfg.spread_percent(percent);
            let mut c = Checker::new(cfg, Instant::now(), seed);
            for _ in 0..20 {
                let t = step(&mut c, OK);
                let d = c.poll_timeout().unwrap() - t;
                let span = (10 * S).mul_f64(f64::from(percent) / 100.0);
                prop_assert!(d >= 10 * S - span && d <= 10 * S + span, "{d:?}");
            }
        }
    }
}
