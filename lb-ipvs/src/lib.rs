//! `lb-ipvs`: a client for the Linux IPVS generic-netlink family, with
//! ipvsadm's save/restore format and listings.
//!
//! It programs the kernel's IPVS tables (services, destinations, sync daemons,
//! timeouts). It does **not** schedule or forward anything itself: the kernel
//! does that.
//!
//! ```text
//!  desired Table ──reconcile::diff──► Vec<Op> ──Client::apply──► kernel (IPVS genl family)
//!        ▲                                         (batched: many requests per datagram)
//!  save::parse_table ◄── ipvsadm -S text            Client::snapshot ──► list::* (ipvsadm -L output)
//!                                                   conn::read ◄── /proc/net/ip_vs_conn
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`nl`] | the wire format: commands and attribute enums (rust-netlink style, unknown attributes kept) |
//! | [`types`] | typed services, destinations, stats, daemons, timeouts |
//! | [`ops`] | [`Op`]: one change, and its request message |
//! | [`client`] | [`Client`]: family resolution, batching, dumps, typed errors |
//! | [`reconcile`] / [`model`] | minimal diff between tables; the kernel's table semantics in memory |
//! | [`cmdline`] / [`save`] | ipvsadm's command line and `-S`/`-R` format |
//! | [`list`] / [`sort`] | ipvsadm's listings, byte for byte, in its exact sort order |
//! | [`conn`] | `/proc/net/ip_vs_conn` and `_sync` |
//!
//! No `unsafe`: sockets come from `netlink-sys`.

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
