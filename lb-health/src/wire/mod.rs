//! Reply parsers and message encoders. Sync, bounded, fuzzed; they see only
//! bytes.

pub mod dns;
pub mod http;
pub mod icmp;
pub mod smtp;
pub mod udp;
