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
#![forbid(unsafe_code)]
pub mod chash;
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
