//! `lb-vrrp`: a sans-IO VRRP version 2 (RFC 3768) and version 3 (RFC 9568)
//! implementation for IPv4 and IPv6.
//!
//! The crate holds the wire codec and the per-virtual-router state machine.
//! It does **not** read a clock, open a socket or draw random numbers: the
//! caller feeds received packets and the current time in, and polls
//! transmissions, address changes and timer deadlines out.
#![forbid(unsafe_code)]
