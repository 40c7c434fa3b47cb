//! Why a received packet was discarded, the counters, and the rate limit
//! on discard reports.

use core::time::Duration;

use crate::time::Instant;

/// Why a received advertisement was discarded. Each check of RFC 9568 §7.1
/// (and RFC 3768 §7.1 for v2) has its own variant and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscardReason {
    /// IPv4 TTL / IPv6 Hop Limit not 255 (§7.1; RFC 5082).
    TtlNot255,
    /// Received over the other address family than the router's.
    FamilyMismatch,
    /// Shorter than its fixed fields, addresses and authentication data.
    Truncated,
    /// Version field neither 2 nor 3, or v2 over IPv6.
    UnknownVersion,
    /// A known version, but not the one configured.
    VersionMismatch,
    /// Type field not ADVERTISEMENT.
    BadType,
    /// Checksum wrong.
    BadChecksum,
    /// VRID not the one configured.
    VridMismatch,
    /// v2: the advertisement uses IP Authentication Header (type 2), which
    /// is recognised but not supported.
    AuthAh,
    /// v2: Auth Type differs from the configured one.
    AuthTypeMismatch,
    /// v2: simple-text password differs.
    AuthMismatch,
    /// Advertisement interval zero (RFC 9568 erratum 8301).
    IntervalZero,
    /// v2: Adver Int differs from ours (RFC 3768 §7.1 MUST discard).
    IntervalMismatch,
    /// Count of addresses zero (RFC 9568 erratum 8299).
    AddressCountZero,
    /// IPv6 multicast advertisement from a non-link-local source (erratum 8300).
    SourceNotLinkLocal,
    /// Our own advertisement (source is our primary address).
    FromSelf,
    /// Unicast: source not among the configured peers.
    UnicastSourceNotAllowed,
    /// Address list differs from ours and the sender is not the owner.
    AddressListMismatch,
    /// v2: we are the address owner, which ignores advertisements (RFC 3768 §7.1).
    LocalIsOwner,
}

impl DiscardReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 19] = [
        Self::TtlNot255,
        Self::FamilyMismatch,
        Self::Truncated,
        Self::UnknownVersion,
        Self::VersionMismatch,
        Self::BadType,
        Self::BadChecksum,
        Self::VridMismatch,
        Self::AuthAh,
        Self::AuthTypeMismatch,
        Self::AuthMismatch,
        Self::IntervalZero,
        Self::IntervalMismatch,
        Self::AddressCountZero,
        Self::SourceNotLinkLocal,
        Self::FromSelf,
        Self::UnicastSourceNotAllowed,
        Self::AddressListMismatch,
        Self::LocalIsOwner,
    ];

    /// The counter index of this reason.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short stable name (for logs and metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TtlNot255 => "ttl-not-255",
            Self::FamilyMismatch => "family-mismatch",
            Self::Truncated => "truncated",
            Self::UnknownVersion => "unknown-version",
            Self::VersionMismatch => "version-mismatch",
            Self::BadType => "bad-type",
            Self::BadChecksum => "bad-checksum",
            Self::VridMismatch => "vrid-mismatch",
            Self::AuthAh => "auth-ah",
            Self::AuthTypeMismatch => "auth-type-mismatch",
            Self::AuthMismatch => "auth-mismatch",
            Self::IntervalZero => "interval-zero",
            Self::IntervalMismatch => "interval-mismatch",
            Self::AddressCountZero => "address-count-zero",
            Self::SourceNotLinkLocal => "source-not-link-local",
            Self::FromSelf => "from-self",
            Self::UnicastSourceNotAllowed => "unicast-source-not-allowed",
            Self::AddressListMismatch => "address-list-mismatch",
            Self::LocalIsOwner => "local-is-owner",
        }
    }
}

/// Counters of one virtual router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    discards: [u64; DiscardReason::ALL.len()],
    /// Valid advertisements received.
    pub adverts_received: u64,
    /// Advertisements sent (one per destination).
    pub adverts_sent: u64,
    /// Valid advertisements received with priority 0.
    pub priority_zero_received: u64,
    /// Advertisements sent with priority 0.
    pub priority_zero_sent: u64,
    /// Transitions to Active.
    pub became_master: u64,
    /// v3: accepted advertisements whose interval differs from ours (RFC
    /// 9568 §7.1 SHOULD verify and log, but the Backup adopts it).
    pub interval_mismatch_v3: u64,
    /// v3/IPv4: accepted advertisements with the RFC 9568 message-only checksum.
    pub checksum_message_only: u64,
    /// Valid advertisements ignored because the router was not running
    /// (Initialize or Fault).
    pub ignored_not_running: u64,
    /// Gratuitous ARPs and NAs sent.
    pub announcements_sent: u64,
    /// v2 interop: VRRPv2 advertisements ignored because their sender also
    /// speaks VRRPv3 (RFC 9568 §8.4.2).
    pub v2_ignored_from_v3_speaker: u64,
    /// v2 interop: runs of three (or more) VRRPv3 advertisements from one
    /// Active router with no VRRPv2 copy in between, counted once per run
    /// (RFC 9568 §8.4.2 MAY report it: that router is likely not in interop
    /// mode).
    pub v3_speaker_without_v2: u64,
    /// Router Solicitations handled as Active with Router Advertisements on.
    pub router_solicitations: u64,
    /// Router Advertisements sent (final zero-lifetime ones included).
    pub router_adverts_sent: u64,
    /// Transmissions dropped because the caller's buffer was too small.
    pub transmit_errors: u64,
}

impl Counters {
    /// Discards for `reason`.
    pub fn discards(&self, reason: DiscardReason) -> u64 {
        self.discards[reason.index()]
    }

    /// All discards.
    pub fn total_discards(&self) -> u64 {
        self.discards.iter().sum()
    }

    pub(crate) fn count(&mut self, reason: DiscardReason) {
        self.discards[reason.index()] += 1;
    }
}

/// Per-reason rate limit of discard reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiscardLog {
    last: [Option<Instant>; DiscardReason::ALL.len()],
    suppressed: [u64; DiscardReason::ALL.len()],
}

impl DiscardLog {
    /// Whether to report a discard now; if so, how many were suppressed since the last report.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        reason: DiscardReason,
        every: Duration,
    ) -> Option<u64> {
        let i = reason.index();
        match self.last[i] {
            Some(t) if now < t + every => {
                self.suppressed[i] += 1;
                None
            }
            _ => {
                self.last[i] = Some(now);
                Some(core::mem::take(&mut self.suppressed[i]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_all() {
        for (i, r) in DiscardReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn rate_limit_reports_suppressed() {
        let mut l = DiscardLog::default();
        let s = Duration::from_secs(1);
        let r = DiscardReason::BadChecksum;
        assert_eq!(l.admit(Instant::ZERO, r, s), Some(0));
        assert_eq!(l.admit(Instant::from_millis(500), r, s), None);
        assert_eq!(l.admit(Instant::from_millis(999), r, s), None);
        assert_eq!(
            l.admit(Instant::from_millis(700), DiscardReason::TtlNot255, s),
            Some(0)
        );
        assert_eq!(l.admit(Instant::from_millis(1000), r, s), Some(2));
    }
}
