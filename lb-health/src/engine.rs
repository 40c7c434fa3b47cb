//! Runs many checks on tokio.
//!
//! * **Deduplication**: identical checks ([`CheckKey`]: same probe, same
//!   timing) configured for several servers (the same real server in many
//!   virtual servers, keepalived #2358) run once; each event goes to every
//!   subscriber.
//! * **Spread**: each check's first run is delayed by a random part of its
//!   `warmup` (or of its interval if warmup is 0), and intervals may be
//!   jittered (`spread_percent`), so checks do not fire in bursts.
//! * **Bounded concurrency**: at most [`EngineConfig::max_concurrency`]
//!   probes run at once (a semaphore).
//! * **Reload**: [`Engine::reload`] keeps the task, and so the state, of
//!   every unchanged check, starts new ones and aborts removed ones. An
//!   aborted probe drops its socket or kills its script (`kill_on_drop`).
//!
//! Each check is one small task whose probe future is boxed only while it
//! runs, so an idle check costs a few hundred bytes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use siphasher::sip::SipHasher13;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{ConfigError, FailureClass};
use crate::probe::{Probe, ProbeSpec};
use crate::state::{Checker, DownAction, Event, StateConfig};

/// The identity of a check: two servers with equal keys share one check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckKey {
    /// What to probe.
    pub probe: ProbeSpec,
    /// Timing and hysteresis.
    pub state: StateConfig,
}

/// Engine settings.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most probes in flight at once (default 256).
    pub max_concurrency: usize,
    /// Seed for warmup and spread randomness.
    pub seed: u64,
    /// Capacity of the event channel (default 1024).
    pub event_capacity: usize,
    /// When a check has no `warmup`, spread its first run over its
    /// interval (default true).
    pub spread_first: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 256,
            seed: 0x5eed,
            event_capacity: 1024,
            spread_first: true,
        }
    }
}

/// An event for one subscribed server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent<K> {
    /// The server, as given to [`Engine::reload`].
    pub server: K,
    /// What changed.
    pub event: Event,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadReport {
    /// Checks started.
    pub added: usize,
    /// Checks kept running, with their state.
    pub kept: usize,
    /// Checks stopped.
    pub removed: usize,
}

/// Counters and the scheduling-lag histogram.
#[derive(Debug)]
struct Stats {
    completed: AtomicU64,
    /// Lag from due time to probe start, in [`LAG_BUCKET`] steps; the last
    /// bucket collects everything beyond.
    lag: Box<[AtomicU64]>,
}

const LAG_BUCKET: Duration = Duration::from_micros(50);
const LAG_BUCKETS: usize = 20_000; // 1 s

impl Stats {
    fn record_lag(&self, lag: Duration) {
        let i = (lag.as_nanos() / LAG_BUCKET.as_nanos()).min(LAG_BUCKETS as u128 - 1) as usize;
        self.lag[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Probes completed.
    pub completed: u64,
    /// Probe starts recorded in the lag histogram.
    pub starts: u64,
    /// Lag histogram: `(upper bound, count)` per non-empty bucket.
    pub lag: Vec<(Duration, u64)>,
}

impl StatsSnapshot {
    /// The lag below which `q` (0..=1) of the probe starts fell (bucket
    /// upper bound, 50 µs resolution).
    pub fn lag_quantile(&self, q: f64) -> Duration {
        let want = (self.starts as f64 * q).ceil() as u64;
        let mut seen = 0;
        for &(bound, n) in &self.lag {
            seen += n;
            if seen >= want {
                return bound;
            }
        }
        self.lag.last().map_or(Duration::ZERO, |&(b, _)| b)
    }
}

#[derive(Debug)]
struct Shared<K> {
    subscribers: Mutex<Vec<K>>,
    /// `(up, weight)` after the first result.
    status: Mutex<Option<(bool, u32)>>,
}

#[derive(Debug)]
struct Running<K> {
    shared: Arc<Shared<K>>,
    task: JoinHandle<()>,
}

/// The check runner. `K` names a server (e.g. a (virtual server, real
/// server) pair).
///
/// ```no_run
/// # async fn f() {
/// use std::time::Duration;
/// use lb_health::{CheckKey, Engine, EngineConfig, StateConfig};
/// use lb_health::probe::{ConnectSpec, ProbeSpec};
///
/// let (mut engine, mut events) = Engine::new(EngineConfig::default());
/// let key = CheckKey {
///     probe: ProbeSpec::Tcp(ConnectSpec::new("10.0.0.1:80".parse().unwrap())),
///     state: StateConfig::haproxy(Duration::from_secs(2), 2, 3),
/// };
/// // The same real server in two virtual servers: one check.
/// let report = engine.reload([("vs1/rs1", key.clone()), ("vs2/rs1", key)]).unwrap();
/// assert_eq!(report.added, 1);
/// while let Some(ev) = events.recv().await {
///     println!("{}: {:?}", ev.server, ev.event);
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Engine<K> {
    config: EngineConfig,
    checks: HashMap<CheckKey, Running<K>>,
    semaphore: Arc<Semaphore>,
    tx: mpsc::Sender<EngineEvent<K>>,
    stats: Arc<Stats>,
}

impl<K: Clone + Eq + Send + Sync + 'static> Engine<K> {
    /// A new, empty engine and the receiver of its events.
    pub fn new(config: EngineConfig) -> (Self, mpsc::Receiver<EngineEvent<K>>) {
        let (tx, rx) = mpsc::channel(config.event_capacity.max(1));
        let engine = Self {
            semaphore: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            config,
            checks: HashMap::new(),
            tx,
            stats: Arc::new(Stats {
                completed: AtomicU64::new(0),
                lag: (0..LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            }),
        };
        (engine, rx)
    }

    /// Number of distinct checks running.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether no check runs.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The servers subscribed to `key`.
    pub fn subscribers(&self, key: &CheckKey) -> Vec<K> {
        self.checks
            .get(key)
            .map(|r| lock(&r.shared.subscribers).clone())
            .unwrap_or_default()
    }

    /// Counters and lag histogram.
    pub fn stats(&self) -> StatsSnapshot {
        let mut starts = 0;
        let lag = self
            .stats
            .lag
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                starts += n;
                (n > 0).then(|| (LAG_BUCKET * (i as u32 + 1), n))
            })
            .collect();
        StatsSnapshot {
            completed: self.stats.completed.load(Ordering::Relaxed),
            starts,
            lag,
        }
    }

    /// Replaces the configuration with `checks` (server, check) pairs.
    /// Every probe is validated first: on error nothing changes. Must be
    /// called within a tokio runtime.
    ///
    /// A server newly subscribed to a running check is sent the check's
    /// current state at once if it has one; that send does not wait, so it
    /// is dropped if the event channel is full (size it for a reload).
    pub fn reload(
        &mut self,
        checks: impl IntoIterator<Item = (K, CheckKey)>,
    ) -> Result<ReloadReport, ConfigError> {
        let mut wanted: HashMap<CheckKey, Vec<K>> = HashMap::new();
        for (server, key) in checks {
            let subs = wanted.entry(key).or_default();
            if !subs.contains(&server) {
                subs.push(server);
            }
        }
        let mut probes = HashMap::new();
        for key in wanted.keys() {
            if !self.checks.contains_key(key) {
                probes.insert(key.clone(), Probe::new(&key.probe)?);
            }
        }
        let mut report = ReloadReport::default();
        self.checks.retain(|key, running| {
            let keep = wanted.contains_key(key);
            if !keep {
                running.task.abort();
                report.removed += 1;
            }
            keep
        });
        let now = Instant::now();
        for (key, subs) in wanted {
            if let Some(running) = self.checks.get(&key) {
                report.kept += 1;
                let status = *lock(&running.shared.status);
                let mut current = lock(&running.shared.subscribers);
                if let Some((up, weight)) = status {
                    // Tell newcomers the state they joined.
                    for s in subs.iter().filter(|s| !current.contains(s)) {
                        let event = if up {
                            Event::Up { weight }
                        } else {
                            Event::Down {
                                action: down_action(&key.state),
                                cause: FailureClass::Local,
                            }
                        };
                        let _ = self.tx.try_send(EngineEvent {
                            server: s.clone(),
                            event,
                        });
                    }
                }
                *current = subs;
                continue;
            }
            // Built above for every key not already running.
            let Some(probe) = probes.remove(&key) else {
                continue;
            };
            report.added += 1;
            let mut state = key.state.clone();
            if self.config.spread_first && state.warmup.is_zero() {
                state.warmup = state.inter;
            }
            let mut h = SipHasher13::new_with_keys(self.config.seed, 0x1b_4e41);
            key.hash(&mut h);
            let core = Checker::new(state, now.into_std(), h.finish());
            let shared = Arc::new(Shared {
                subscribers: Mutex::new(subs),
                status: Mutex::new(None),
            });
            let task = tokio::spawn(run_check(
                probe,
                core,
                shared.clone(),
                self.semaphore.clone(),
                self.tx.clone(),
                self.stats.clone(),
            ));
            self.checks.insert(key, Running { shared, task });
        }
        Ok(report)
    }

    /// Stops every check. keepalived `omega`: checks with
    /// [`StateConfig::omega`] that are UP report DOWN first.
    pub fn shutdown(&mut self) {
        for (key, running) in self.checks.drain() {
            running.task.abort();
            if key.state.omega && lock(&running.shared.status).is_none_or(|(up, _)| up) {
                for s in lock(&running.shared.subscribers).iter() {
                    let _ = self.tx.try_send(EngineEvent {
                        server: s.clone(),
                        event: Event::Down {
                            action: down_action(&key.state),
                            cause: FailureClass::Local,
                        },
                    });
                }
            }
        }
    }
}

impl<K> Drop for Engine<K> {
    fn drop(&mut self) {
        for running in self.checks.values() {
            running.task.abort();
        }
    }
}

fn down_action(state: &StateConfig) -> DownAction {
    if state.inhibit_on_failure {
        DownAction::Inhibit
    } else {
        DownAction::Remove
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One check's loop: sleep until due, probe under a permit, feed the core,
/// fan out its events. Between runs the task holds only its state, a
/// boxed timer and the (small) permit wait; the probe future and the event
/// fan-out are boxed while they run, which keeps an idle checker small.
// Deliberately not an `async fn`, see the comment in the body.
#[allow(clippy::manual_async_fn)]
fn run_check<K: Clone + Send + Sync + 'static>(
    probe: Probe,
    mut core: Checker,
    shared: Arc<Shared<K>>,
    semaphore: Arc<Semaphore>,
    tx: mpsc::Sender<EngineEvent<K>>,
    stats: Arc<Stats>,
) -> impl Future<Output = ()> + Send {
    // An `async` block, not an `async fn`: the arguments of an `async fn`
    // are stored twice in its future (rust-lang/rust#62958).
    async move {
        // One timer for the task's life, re-armed for each run.
        let mut sleep = Box::pin(tokio::time::sleep_until(Instant::now()));
        while let Some(due) = core.poll_timeout() {
            sleep.as_mut().reset(Instant::from_std(due));
            sleep.as_mut().await;
            if !core.handle_timeout(Instant::now().into_std()) {
                continue;
            }
            // The permit wait stays inline (small); the probe future is
            // boxed only once it may run, so thousands of checks queued on
            // the semaphore do not each hold a probe-sized allocation.
            let Ok(permit) = semaphore.acquire().await else {
                return; // The semaphore closed: the engine is gone.
            };
            stats.record_lag(Instant::now().into_std().saturating_duration_since(due));
            let outcome = Box::pin(probe.check()).await;
            drop(permit);
            core.handle_result(Instant::now().into_std(), outcome);
            stats.completed.fetch_add(1, Ordering::Relaxed);
            *lock(&shared.status) = Some((core.is_up(), core.weight()));
            while let Some(event) = core.poll_event() {
                if !Box::pin(fan_out(&shared, &tx, event)).await {
                    return; // Nobody listens any more.
                }
            }
        }
    }
}

/// Sends `event` to every subscriber; false if the receiver is gone.
async fn fan_out<K: Clone>(
    shared: &Shared<K>,
    tx: &mpsc::Sender<EngineEvent<K>>,
    event: Event,
) -> bool {
    let subs = lock(&shared.subscribers).clone();
    for server in subs {
        if tx.send(EngineEvent { server, event }).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-check task future is what an idle checker costs (plus its
    /// timer and map entry); keep it well under the 2 KB budget.
    #[test]
    fn idle_checker_future_stays_small() {
        let (tx, _rx) = mpsc::channel::<EngineEvent<u32>>(1);
        let core = Checker::new(
            StateConfig::haproxy(Duration::from_secs(1), 1, 1),
            std::time::Instant::now(),
            0,
        );
        let spec = ProbeSpec::Tcp(crate::probe::ConnectSpec::new(
            "127.0.0.1:1".parse().unwrap(),
        ));
        let probe = Probe::new(&spec).unwrap();
        let shared = Arc::new(Shared {
            subscribers: Mutex::new(vec![1u32]),
            status: Mutex::new(None),
        });
        let stats = Arc::new(Stats {
            completed: AtomicU64::new(0),
            lag: Box::new([]),
        });
        let f = run_check(probe, core, shared, Arc::new(Semaphore::new(1)), tx, stats);
        assert!(size_of_val(&f) <= 512, "{} bytes", size_of_val(&f));
        assert!(size_of::<Probe>() <= 128, "{} bytes", size_of::<Probe>());
    }
}
