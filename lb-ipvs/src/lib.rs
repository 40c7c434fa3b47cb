//! `lb-ipvs`: a client for the Linux IPVS generic-netlink family, with
//! ipvsadm's save/restore format and listings.
//!
//! It programs the kernel's IPVS tables (services, destinations, sync daemons,
//! timeouts). It does **not** schedule or forward anything itself: the kernel
//! does that.

pub mod client;
pub mod cmdline;
pub mod conn;
pub mod error;
pub mod list;
pub mod model;
pub mod nl;
pub mod ops;
pub mod reconcile;
pub mod save;
pub mod sort;
pub mod types;

pub use client::Client;
pub use error::Error;
pub use ops::Op;
pub use types::*;
