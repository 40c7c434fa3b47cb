//! Code shared by the binaries in this package (`director`, `lbsim`, `lbadm`,
//! `genhash`). It is not a library for other crates: use the `lb-*` crates.

pub mod config;
pub mod director;
pub mod lbsim;
