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
//!   whole exchange, a cap on bytes read, and a [`FailureClass`].
//! * [`engine`]: runs many checks.
//!
//! It does **not** change any load-balancer state itself: it reports events
//! for the caller to apply.
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
