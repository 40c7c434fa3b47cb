//! Error types.

use thiserror::Error;

/// Why a frame could not be parsed. Offsets are from the start of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The frame ends before the header at `offset` does.
    #[error("truncated header at offset {offset}")]
    Truncated {
        /// Where the cut header starts.
        offset: usize,
    },
    /// Not IPv4 or IPv6.
    #[error("not an ip frame (ethertype {ethertype:#06x})")]
    NotIp {
        /// The EtherType found.
        ethertype: u16,
    },
    /// A header field holds an impossible value.
    #[error("bad {what} at offset {offset}")]
    BadHeader {
        /// Offset of the field.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// The IPv4 header checksum does not verify.
    #[error("bad ipv4 header checksum at offset {offset}")]
    BadChecksum {
        /// Offset of the checksum field.
        offset: usize,
    },
    /// An IP fragment (not handled; see the module docs of [`crate::parse`]).
    #[error("ip fragment at offset {offset}")]
    Fragment {
        /// Offset of the fragment field or header.
        offset: usize,
    },
    /// A transport protocol the forwarder does not handle.
    #[error("unsupported ip protocol {proto}")]
    UnsupportedProtocol {
        /// The protocol number.
        proto: u8,
    },
}

/// A configuration call was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The service does not exist.
    #[error("no such service {0}")]
    NoService(u16),
    /// The destination does not exist.
    #[error("no such destination {0}")]
    NoDest(u16),
    /// A firewall-mark rule `lb-sched` rejects.
    #[error("fwmark rule: {0}")]
    Fwmark(#[from] lb_sched::fwmark::FwmarkError),
    /// A service with the same key already exists.
    #[error("service already exists")]
    ServiceExists,
    /// Too many services or destinations (the tables index with 16 bits).
    #[error("table full: {0}")]
    Full(&'static str),
    /// NAT and DR need the destination in the service's address family.
    #[error("destination family differs from the service's (only tunnels may mix)")]
    MixedFamily,
    /// A port-zero service must be persistent (as IPVS requires).
    #[error("port zero only supported in persistent services")]
    PortZeroNotPersistent,
    /// A value is out of range.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// An I/O error of the AF_PACKET driver, naming the call that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// The failing call, e.g. `setsockopt(PACKET_RX_RING)`.
        call: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The interface does not exist.
    #[error("no such interface {0:?}")]
    NoInterface(String),
    /// Raw sockets are Linux-only.
    #[error("AF_PACKET is only available on Linux")]
    Unsupported,
}
