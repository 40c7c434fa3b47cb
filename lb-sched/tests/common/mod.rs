//! Shared test support: a reference model of IPVS written straight from the
//! kernel's C, independent of the crate's data structures.
//!
//! * The destination list is a `Vec` in list order; `add` inserts at index 0
//!   (`list_add_rcu` on the list head).
//! * Destinations are identified by address: a removed destination goes to
//!   the trash and is never freed; re-adding the address revives it with its
//!   counters. (A kernel destination is only freed when nothing refers to it,
//!   and a freed one with zero counters behaves exactly like a new one.)
//! * Every scheduler is the kernel's loop, transcribed without optimisation.

#![allow(dead_code, unreachable_pub)]

pub mod reference;
