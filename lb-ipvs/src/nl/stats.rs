//! `IPVS_STATS_ATTR_*`: the nested counters inside `IPVS_SVC_ATTR_STATS`,
//! `IPVS_SVC_ATTR_STATS64`, `IPVS_DEST_ATTR_STATS` and `IPVS_DEST_ATTR_STATS64`.
//!
//! In the legacy `*_STATS` nest the kernel puts connections, packets and rates
//! as `u32` and bytes as `u64`; in `*_STATS64` everything is `u64`. 64-bit
//! values may be preceded by an empty `IPVS_STATS_ATTR_PAD` so that they land
//! on an 8-byte boundary (`nla_put_u64_64bit`). [`Counter`] keeps the width
//! seen on the wire so that a decoded nest re-encodes to the same bytes.

use netlink_packet_core::{
    DecodeError, DefaultNla, Nla, NlaBuffer, Parseable, emit_u32, emit_u64, parse_u32, parse_u64,
};

/// `IPVS_STATS_ATTR_CONNS`: connections scheduled.
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
/// `IPVS_STATS_ATTR_INPKTS`: incoming packets.
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
/// `IPVS_STATS_ATTR_OUTPKTS`: outgoing packets.
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
/// `IPVS_STATS_ATTR_INBYTES`: incoming bytes.
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
/// `IPVS_STATS_ATTR_OUTBYTES`: outgoing bytes.
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
/// `IPVS_STATS_ATTR_CPS`: current connection rate.
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
/// `IPVS_STATS_ATTR_INPPS`: current incoming packet rate.
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
/// `IPVS_STATS_ATTR_OUTPPS`: current outgoing packet rate.
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
/// `IPVS_STATS_ATTR_INBPS`: current incoming byte rate.
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
/// `IPVS_STATS_ATTR_OUTBPS`: current outgoing byte rate.
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
/// `IPVS_STATS_ATTR_PAD`: alignment padding before 64-bit values.
pub const IPVS_STATS_ATTR_PAD: u16 = 11;

/// A counter as carried on the wire: 32 or 64 bits wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A `u32` attribute (legacy stats).
    U32(u32),
    /// A `u64` attribute.
    U64(u64),
}

impl Counter {
    /// The value, widened.
    pub fn get(self) -> u64 {
        match self {
            Self::U32(v) => u64::from(v),
            Self::U64(v) => v,
        }
    }

    fn len(self) -> usize {
        match self {
            Self::U32(_) => 4,
            Self::U64(_) => 8,
        }
    }

    fn emit(self, buf: &mut [u8]) {
        match self {
            Self::U32(v) => emit_u32(buf, v).expect("buffer sized by value_len"),
            Self::U64(v) => emit_u64(buf, v).expect("buffer sized by value_len"),
        }
    }

    fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        match payload.len() {
            4 => Ok(Self::U32(parse_u32(payload)?)),
            8 => Ok(Self::U64(parse_u64(payload)?)),
            n => Err(DecodeError::from(format!(
                "stats counter must be 4 or 8 bytes, got {n}"
            ))),
        }
    }
}

/// One attribute of a stats nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsAttr {
    /// `IPVS_STATS_ATTR_CONNS`.
    Conns(Counter),
    /// `IPVS_STATS_ATTR_INPKTS`.
    InPkts(Counter),
    /// `IPVS_STATS_ATTR_OUTPKTS`.
    OutPkts(Counter),
    /// `IPVS_STATS_ATTR_INBYTES`.
    InBytes(Counter),
    /// `IPVS_STATS_ATTR_OUTBYTES`.
    OutBytes(Counter),
    /// `IPVS_STATS_ATTR_CPS`.
    Cps(Counter),
    /// `IPVS_STATS_ATTR_INPPS`.
    InPps(Counter),
    /// `IPVS_STATS_ATTR_OUTPPS`.
    OutPps(Counter),
    /// `IPVS_STATS_ATTR_INBPS`.
    InBps(Counter),
    /// `IPVS_STATS_ATTR_OUTBPS`.
    OutBps(Counter),
    /// `IPVS_STATS_ATTR_PAD` (empty).
    Pad,
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for StatsAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Conns(c)
            | Self::InPkts(c)
            | Self::OutPkts(c)
            | Self::InBytes(c)
            | Self::OutBytes(c)
            | Self::Cps(c)
            | Self::InPps(c)
            | Self::OutPps(c)
            | Self::InBps(c)
            | Self::OutBps(c) => c.len(),
            Self::Pad => 0,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Conns(_) => IPVS_STATS_ATTR_CONNS,
            Self::InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::Cps(_) => IPVS_STATS_ATTR_CPS,
            Self::InPps(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::InBps(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Pad => IPVS_STATS_ATTR_PAD,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Conns(c)
            | Self::InPkts(c)
            | Self::OutPkts(c)
            | Self::InBytes(c)
            | Self::OutBytes(c)
            | Self::Cps(c)
            | Self::InPps(c)
            | Self::OutPps(c)
            | Self::InBps(c)
            | Self::OutBps(c) => c.emit(buffer),
            Self::Pad => {}
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Conns(Counter::parse(p)?),
            IPVS_STATS_ATTR_INPKTS => Self::InPkts(Counter::parse(p)?),
            IPVS_STATS_ATTR_OUTPKTS => Self::OutPkts(Counter::parse(p)?),
            IPVS_STATS_ATTR_INBYTES => Self::InBytes(Counter::parse(p)?),
            IPVS_STATS_ATTR_OUTBYTES => Self::OutBytes(Counter::parse(p)?),
            IPVS_STATS_ATTR_CPS => Self::Cps(Counter::parse(p)?),
            IPVS_STATS_ATTR_INPPS => Self::InPps(Counter::parse(p)?),
            IPVS_STATS_ATTR_OUTPPS => Self::OutPps(Counter::parse(p)?),
            IPVS_STATS_ATTR_INBPS => Self::InBps(Counter::parse(p)?),
            IPVS_STATS_ATTR_OUTBPS => Self::OutBps(Counter::parse(p)?),
            IPVS_STATS_ATTR_PAD if p.is_empty() => Self::Pad,
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
