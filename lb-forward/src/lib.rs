//! `lb-forward`: a userspace L4 forwarder in the style of LVS, with direct
//! routing (DR), NAT and tunnelling (IPIP/GUE/GRE), for hosts whose kernel has
//! no IPVS.
//!
//! ```text
//!   AF_PACKET ring ──► Forwarder::process(now, frame) ──► Verdict ──► batched send
//!   (afpacket, Linux)   parse → conn table → schedule → rewrite   (afpacket)
//! ```
//!
//! The core ([`parse`], [`conntab`], [`state`], [`classify`], [`rewrite`],
//! [`tunnel`], [`icmp`], [`forwarder`]) is pure: it takes the time as an
//! argument, reads no clock, opens no socket and does not allocate per
//! packet. The raw-socket I/O sits in `afpacket` (Linux only), the one
//! module allowed `unsafe`.
//!
//! Fwmark rules, the service lookup and persistence templates are
//! `lb-sched`'s ([`lb_sched::fwmark`], [`lb_sched::service_table`],
//! [`lb_sched::persist`]); [`classify`] and [`forwarder`] only wire them in.
//!
//! It does **not** decide which backends are healthy (`lb-health` does) or
//! own the VIPs (`lb-vrrp` does); a scheduler comes in through the small
//! [`sched::Scheduler`] trait, which [`lbsched::LbSched`] implements for
//! every `lb-sched` scheduler.

pub mod addr;
#[cfg(target_os = "linux")]
pub mod afpacket;
pub mod checksum;
pub mod classify;
pub mod conntab;
#[cfg(target_os = "linux")]
pub mod driver;
pub mod error;
pub mod forwarder;
pub mod icmp;
pub mod lbsched;
pub mod neigh;
pub mod parse;
pub mod rewrite;
pub mod sched;
pub mod state;
pub mod testutil;
pub mod tunnel;
pub mod wire;

pub use error::{ConfigError, IoError, ParseError};
pub use forwarder::{Config, DestConfig, Forwarder, Method, Port, ServiceConfig, Verdict};
