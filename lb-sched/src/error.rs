//! Errors of the service/destination model.

use std::net::SocketAddr;

use crate::DestId;

/// What went wrong when changing a [`Service`](crate::Service).
///
/// The variants mirror the kernel's `-ERANGE` / `-EEXIST` / `-ENOENT` /
/// `-EINVAL` answers to the same requests (net/netfilter/ipvs/ip_vs_ctl.c).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The weight is above `i32::MAX`, the largest weight the kernel's `int` holds.
    #[error("weight {0} out of range (0..=2147483647)")]
    WeightRange(u32),
    /// `l_threshold > u_threshold` (kernel: "lower threshold is higher than upper threshold").
    #[error("lower threshold {lower} is higher than upper threshold {upper}")]
    ThresholdRange {
        /// The requested lower threshold.
        lower: u32,
        /// The requested upper threshold.
        upper: u32,
    },
    /// A destination with this address and port is already in the service.
    #[error("destination {0} already exists")]
    DestExists(SocketAddr),
    /// No listed destination has this address and port.
    #[error("no destination {0} in the service")]
    NoSuchAddr(SocketAddr),
    /// The service cannot hold more destinations (`u32::MAX` slots).
    #[error("too many destinations")]
    TooManyDests,
    /// The destination id does not name a live destination of this service.
    #[error("no such destination {0}")]
    NoSuchDest(DestId),
    /// The destination was removed from the service (it may still be in the
    /// trash, serving its existing connections).
    #[error("destination {0} is not in the service")]
    NotListed(DestId),
    /// A connection was closed (or moved) that the counters do not hold.
    #[error("connection counter of {0} would go below zero")]
    CounterUnderflow(DestId),
    /// A connection counter would pass `u32::MAX`.
    #[error("connection counter of {0} would overflow")]
    CounterOverflow(DestId),
    /// The `mh` table size is not one of the kernel's primes.
    #[error("mh table size {0} is not one of the kernel's primes")]
    MhTableSize(u32),
    /// The `sh` table bits are outside the kernel's 4..=20.
    #[error("sh table bits {0} out of range (4..=20)")]
    ShTableBits(u8),
    /// The scheduler name is not one of the fourteen kernel schedulers.
    #[error("unknown scheduler {0:?}")]
    UnknownScheduler(String),
}
