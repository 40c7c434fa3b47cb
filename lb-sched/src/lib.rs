//! `lb-sched`: connection schedulers for L4 load balancing.
//!
//! This crate picks a real server for a new connection. It implements every
//! scheduler of Linux IPVS (`rr wrr lc wlc sed nq fo ovf lblc lblcr dh sh mh
//! twos`) so that a service configured here picks, connection for connection,
//! what the same service in the kernel picks, and it adds algorithms the kernel
//! lacks (Maglev, power-of-two choices, bounded-load consistent hashing, slow
//! start) together with persistence-template and fwmark tables.
//!
//! It is **not** a dataplane: it reads no clock, opens no socket and draws no
//! random number of its own. Time and randomness are inputs.
//!
//! ```text
//!   config ──add_dest/edit_dest/remove_dest──▶ Service ──▶ scheduler hooks (add/del/upd)
//!   packet ──pick(now, &PacketInfo, rng)────▶ Service ──▶ Option<DestId>
//!   conns  ──conn_bind/set_active/unbind────▶ counters, OVERLOAD ──▶ indexes
//!   timers ──poll_timeout/handle_timeout────▶ lblc/lblcr cache collector
//! ```
#![forbid(unsafe_code)]

mod dest;
mod error;
pub mod ipvs;
mod packet;
mod rng;
mod scheduler;
mod service;

pub use dest::ConnKind;
pub use dest::Dest;
pub use dest::DestConfig;
pub use dest::DestId;
pub use dest::MAX_WEIGHT;
pub use error::Error;
pub use packet::PacketInfo;
pub use packet::Protocol;
pub use rng::RandomSource;
pub use rng::Scripted;
pub use rng::SplitMix64;
pub use scheduler::MH_TABLE_SIZES;
pub use scheduler::SchedulerConfig;
pub use scheduler::SchedulerKind;
pub use service::AddressFamily;
pub use service::Service;
pub use service::ServiceFlags;
pub use service::ServiceKey;
pub mod chash;
pub mod director;
pub mod fwmark;
pub mod hashkey;
pub mod maglev;
pub mod p2c;
pub mod persist;
pub mod rendezvous;
pub mod ring;
pub mod service_table;
pub mod slowstart;
pub mod swap;
