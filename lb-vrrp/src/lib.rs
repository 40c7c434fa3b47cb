//! `lb-vrrp`: a sans-IO VRRP version 2 (RFC 3768) and version 3 (RFC 9568)
//! implementation for IPv4 and IPv6, interoperable with keepalived.
//!
//! The crate holds the wire codec ([`wire`]) and the per-virtual-router
//! state machine ([`VirtualRouter`]). It does **not** read a clock, open a
//! socket or draw random numbers: the caller feeds received packets, timer
//! expiries, tracking changes and the current time in, and polls
//! transmissions, address changes and timer deadlines out.
//!
//! ```text
//!   received packet ──► handle_packet(now, meta, bytes) ┐
//!   timer expiry ─────► handle_timeout(now)             │   ┌──► poll_event():  state changes, add/remove
//!   tracking ─────────► handle_track / handle_link      ├──►│                   addresses, discard reports
//!   admin ────────────► handle_startup / handle_shutdown│   ├──► poll_transmit(): advertisements, GARP, NA
//!   sync group ───────► handle_sync                     ┘   └──► poll_timeout():  next deadline
//! ```
//!
//! Terminology: RFC 9568 renamed Master to "Active Router"; this crate keeps
//! "Master" (RFC 3768, keepalived) for the state and uses the RFC 9568 names
//! for timers where they differ only in that word.
//!
//! Time is integer microseconds ([`Instant`]); every timer formula is in
//! [`timing`].
// `unsafe` is confined to the Linux driver's `sys` module, which allows it locally.
#![cfg_attr(not(feature = "linux"), forbid(unsafe_code))]

mod config;
mod discard;
mod event;
#[cfg(feature = "linux")]
pub mod linux;
mod router;
mod sync;
pub mod time;
mod timer;
pub mod timing;
mod track;
mod transmit;
pub mod wire;

pub use config::{Config, ConfigError, GarpConfig, RouterAdvertConfig};
pub use discard::{Counters, DiscardReason};
pub use event::{Event, Reason, State, SyncCommand};
pub use router::VirtualRouter;
pub use sync::SyncGroup;
pub use time::Instant;
pub use track::{TrackKind, TrackStatus, Tracked};
pub use transmit::{MAX_TRANSMIT_LEN, RxMeta, Transmit};
