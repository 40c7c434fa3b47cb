//! `lb-vrrp`: a sans-IO VRRP version 2 (RFC 3768) and version 3 (RFC 9568)
//! implementation for IPv4 and IPv6.
#![forbid(unsafe_code)]

pub mod wire;
