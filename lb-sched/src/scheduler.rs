//! Which kernel scheduler a service uses, and its parameters.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// The fourteen IPVS schedulers, by their kernel names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// `rr`: round robin over destinations with weight > 0.
    Rr,
    /// `wrr`: interleaved weighted round robin.
    Wrr,
    /// `lc`: least connections (`active*256 + inactive`).
    Lc,
    /// `wlc`: weighted least connections (the kernel's default).
    Wlc,
    /// `sed`: shortest expected delay, `(active+1)/weight`.
    Sed,
    /// `nq`: never queue: an idle destination first, else `sed`.
    Nq,
    /// `fo`: weighted failover: the highest weight.
    Fo,
    /// `ovf`: overflow: the highest weight whose active count is within its weight.
    Ovf,
    /// `lblc`: locality-based least connections (keyed on the destination address).
    Lblc,
    /// `lblcr`: `lblc` with replication.
    Lblcr,
    /// `dh`: destination-address hashing.
    Dh,
    /// `sh`: source hashing.
    Sh,
    /// `mh`: Maglev hashing.
    Mh,
    /// `twos`: weighted power of two choices.
    Twos,
}

impl SchedulerKind {
    /// All fourteen, in the order of the kernel's Kconfig.
    pub const ALL: [Self; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Fo,
        Self::Ovf,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Mh,
        Self::Sed,
        Self::Nq,
        Self::Twos,
    ];

    /// The kernel name (`ipvsadm -s <name>`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Mh => "mh",
            Self::Twos => "twos",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::UnknownScheduler(s.to_owned()))
    }
}

/// The `mh` table sizes the kernel offers (`primes[]` in ip_vs_mh.c), chosen
/// there by `CONFIG_IP_VS_MH_TAB_INDEX` 8..=17.
pub const MH_TABLE_SIZES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// A scheduler and its build-time / sysctl parameters.
///
/// ```
/// use lb_sched::{SchedulerConfig, SchedulerKind};
/// let cfg = SchedulerConfig::new(SchedulerKind::Mh);
/// assert_eq!(cfg.mh_table_size, 4093);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// Which scheduler.
    pub kind: SchedulerKind,
    /// `CONFIG_IP_VS_SH_TAB_BITS`, 4..=20, default 8 (256 buckets).
    pub sh_table_bits: u8,
    /// `mh` table size, one of [`MH_TABLE_SIZES`], default 4093
    /// (`CONFIG_IP_VS_MH_TAB_INDEX` = 12).
    pub mh_table_size: u32,
    /// sysctl `lblc_expiration`, default 24 h.
    pub lblc_expiration: Duration,
    /// sysctl `lblcr_expiration`, default 24 h.
    pub lblcr_expiration: Duration,
}

impl SchedulerConfig {
    /// `kind` with the kernel's defaults.
    #[must_use]
    pub fn new(kind: SchedulerKind) -> Self {
        Self {
            kind,
            sh_table_bits: 8,
            mh_table_size: 4093,
            lblc_expiration: Duration::from_secs(24 * 60 * 60),
            lblcr_expiration: Duration::from_secs(24 * 60 * 60),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(4..=20).contains(&self.sh_table_bits) {
            return Err(Error::ShTableBits(self.sh_table_bits));
        }
        if !MH_TABLE_SIZES.contains(&self.mh_table_size) {
            return Err(Error::MhTableSize(self.mh_table_size));
        }
        Ok(())
    }
}

impl From<SchedulerKind> for SchedulerConfig {
    fn from(kind: SchedulerKind) -> Self {
        Self::new(kind)
    }
}
