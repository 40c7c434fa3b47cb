//! `lb-health`: keepalived's health checkers (TCP, HTTP/SSL with digest, SMTP,
//! DNS, UDP, PING, MISC, FILE) with HAProxy-style rise/fall hysteresis.
//!
//! ```text
//!   config ──► Engine ──(dedup, spread, semaphore)──► per-check task
//!                                                     │
//!            ┌────────────── Checker (sync) ◄─────────┤ Outcome
//!            │  poll_timeout / handle_timeout         │
//!            │  handle_result / poll_event            ▼
//!            └──► Event (Up / Down / Weight) ──► caller applies to IPVS
//!                                            Probe::run (tokio, one deadline)
//! ```
//!
//! * [`state`]: the check state machine. Synchronous and clock-free: time
//!   and randomness are inputs.
//! * [`wire`]: the reply parsers (HTTP, DNS, SMTP, ICMP, UDP patterns).
//!   Sync, bounded, fuzzed.
//! * [`probe`]: the probes on tokio. Each has one total deadline around the
//!   whole exchange (HTTP: around each url's), a cap on bytes read, and a [`FailureClass`].
//! * [`engine`]: runs many checks.
//!
//! It does **not** change any load-balancer state itself: it reports events
//! for the caller to apply.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use lb_health::probe::{ConnectSpec, Probe, ProbeSpec};
//! use lb_health::{Checker, Event, StateConfig};
//!
//! // A TCP_CHECK of a port nothing listens on, keepalived-style: retry 1.
//! let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
//! let probe = Probe::new(&ProbeSpec::Tcp(ConnectSpec::new(port))).unwrap();
//! let mut cfg = StateConfig::keepalived(Duration::from_secs(6), 1, Duration::from_secs(1));
//! cfg.warmup(Duration::ZERO);
//! let mut checker = Checker::new(cfg, std::time::Instant::now(), 42);
//! let mut events = Vec::new();
//! for _ in 0..2 {
//!     let due = checker.poll_timeout().unwrap();
//!     // A real driver sleeps until `due`; here we pretend it is due now.
//!     assert!(checker.handle_timeout(due));
//!     checker.handle_result(due, probe.check().await);
//!     events.extend(std::iter::from_fn(|| checker.poll_event()));
//! }
//! assert!(matches!(events[..], [Event::Down { .. }]));
//! # }
//! ```
#![deny(unsafe_code)]

pub mod engine;
pub mod error;
pub mod probe;
pub mod state;
mod sys;
pub mod wire;

pub use engine::{CheckKey, Engine, EngineConfig, EngineEvent, ReloadReport};
pub use error::{ConfigError, Failure, FailureClass};
pub use probe::{Probe, ProbeSpec};
pub use state::{Checker, DownAction, Event, Outcome, StateConfig};
