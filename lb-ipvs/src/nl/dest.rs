//! `IPVS_DEST_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_DEST`.
//!
//! `PORT` and `TUN_PORT` are big-endian (`nla_put_be16`); `TUN_TYPE` is a
//! `u8`; `TUN_FLAGS` and `ADDR_FAMILY` are host-order `u16`; everything else
//! is a host-order `u32`. Kernels before 5.2 send no `TUN_*` attributes.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, Parseable, emit_u16, emit_u16_be, emit_u32,
    parse_u16, parse_u16_be, parse_u32,
};

use super::{parse_nested, stats::StatsAttr};

/// `IPVS_DEST_ATTR_ADDR`: real server address (16 bytes).
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
/// `IPVS_DEST_ATTR_PORT`: real server port (be16).
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
/// `IPVS_DEST_ATTR_FWD_METHOD`: forwarding method (u32).
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
/// `IPVS_DEST_ATTR_WEIGHT`: weight (u32).
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
/// `IPVS_DEST_ATTR_U_THRESH`: upper connection threshold (u32).
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
/// `IPVS_DEST_ATTR_L_THRESH`: lower connection threshold (u32).
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
/// `IPVS_DEST_ATTR_ACTIVE_CONNS`: active connections (u32).
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
/// `IPVS_DEST_ATTR_INACT_CONNS`: inactive connections (u32).
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
/// `IPVS_DEST_ATTR_PERSIST_CONNS`: persistence templates (u32).
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
/// `IPVS_DEST_ATTR_STATS`: legacy stats nest.
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
/// `IPVS_DEST_ATTR_ADDR_FAMILY`: address family of the address (u16).
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
/// `IPVS_DEST_ATTR_STATS64`: 64-bit stats nest.
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
/// `IPVS_DEST_ATTR_TUN_TYPE`: tunnel type (u8).
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
/// `IPVS_DEST_ATTR_TUN_PORT`: tunnel port (be16).
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
/// `IPVS_DEST_ATTR_TUN_FLAGS`: tunnel flags (u16).
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

/// One attribute of a destination nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestAttr {
    /// `ADDR`, the raw `nf_inet_addr`.
    Addr([u8; 16]),
    /// `PORT`, host order here.
    Port(u16),
    /// `FWD_METHOD` (`IP_VS_CONN_F_*` & `IP_VS_CONN_F_FWD_MASK`).
    FwdMethod(u32),
    /// `WEIGHT`.
    Weight(u32),
    /// `U_THRESH`.
    UThresh(u32),
    /// `L_THRESH`.
    LThresh(u32),
    /// `ACTIVE_CONNS`.
    ActiveConns(u32),
    /// `INACT_CONNS`.
    InactConns(u32),
    /// `PERSIST_CONNS`.
    PersistConns(u32),
    /// `STATS` (legacy widths).
    Stats(Vec<StatsAttr>),
    /// `ADDR_FAMILY`.
    AddrFamily(u16),
    /// `STATS64`.
    Stats64(Vec<StatsAttr>),
    /// `TUN_TYPE`.
    TunType(u8),
    /// `TUN_PORT`, host order here.
    TunPort(u16),
    /// `TUN_FLAGS`.
    TunFlags(u16),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Addr(_) => 16,
            Self::Port(_) | Self::AddrFamily(_) | Self::TunPort(_) | Self::TunFlags(_) => 2,
            Self::TunType(_) => 1,
            Self::FwdMethod(_)
            | Self::Weight(_)
            | Self::UThresh(_)
            | Self::LThresh(_)
            | Self::ActiveConns(_)
            | Self::InactConns(_)
            | Self::PersistConns(_) => 4,
            Self::Stats(v) | Self::Stats64(v) => v.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Addr(_) => IPVS_DEST_ATTR_ADDR,
            Self::Port(_) => IPVS_DEST_ATTR_PORT,
            Self::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            Self::UThresh(_) => IPVS_DEST_ATTR_U_THRESH,
            Self::LThresh(_) => IPVS_DEST_ATTR_L_THRESH,
            Self::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            Self::InactConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            Self::PersistConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            Self::Stats(_) => IPVS_DEST_ATTR_STATS,
            Self::AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            Self::Stats64(_) => IPVS_DEST_ATTR_STATS64,
            Self::TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            Self::TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            Self::TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, b: &mut [u8]) {
        const OK: &str = "buffer sized by value_len";
        match self {
            Self::Addr(a) => b.copy_from_slice(a),
            Self::Port(v) | Self::TunPort(v) => emit_u16_be(b, *v).expect(OK),
            Self::AddrFamily(v) | Self::TunFlags(v) => emit_u16(b, *v).expect(OK),
            Self::TunType(v) => b[0] = *v,
            Self::FwdMethod(v)
            | Self::Weight(v)
            | Self::UThresh(v)
            | Self::LThresh(v)
            | Self::ActiveConns(v)
            | Self::InactConns(v)
            | Self::PersistConns(v) => emit_u32(b, *v).expect(OK),
            Self::Stats(v) | Self::Stats64(v) => v.as_slice().emit(b),
            Self::Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match (buf.kind(), p.len()) {
            (IPVS_DEST_ATTR_ADDR, 16) => {
                let mut a = [0; 16];
                a.copy_from_slice(p);
                Self::Addr(a)
            }
            (IPVS_DEST_ATTR_PORT, 2) => Self::Port(parse_u16_be(p)?),
            (IPVS_DEST_ATTR_FWD_METHOD, 4) => Self::FwdMethod(parse_u32(p)?),
            (IPVS_DEST_ATTR_WEIGHT, 4) => Self::Weight(parse_u32(p)?),
            (IPVS_DEST_ATTR_U_THRESH, 4) => Self::UThresh(parse_u32(p)?),
            (IPVS_DEST_ATTR_L_THRESH, 4) => Self::LThresh(parse_u32(p)?),
            (IPVS_DEST_ATTR_ACTIVE_CONNS, 4) => Self::ActiveConns(parse_u32(p)?),
            (IPVS_DEST_ATTR_INACT_CONNS, 4) => Self::InactConns(parse_u32(p)?),
            (IPVS_DEST_ATTR_PERSIST_CONNS, 4) => Self::PersistConns(parse_u32(p)?),
            (IPVS_DEST_ATTR_STATS, _) => Self::Stats(parse_nested(p, "IPVS_DEST_ATTR_STATS")?),
            (IPVS_DEST_ATTR_ADDR_FAMILY, 2) => Self::AddrFamily(parse_u16(p)?),
            (IPVS_DEST_ATTR_STATS64, _) => {
                Self::Stats64(parse_nested(p, "IPVS_DEST_ATTR_STATS64")?)
            }
            (IPVS_DEST_ATTR_TUN_TYPE, 1) => Self::TunType(p[0]),
            (IPVS_DEST_ATTR_TUN_PORT, 2) => Self::TunPort(parse_u16_be(p)?),
            (IPVS_DEST_ATTR_TUN_FLAGS, 2) => Self::TunFlags(parse_u16(p)?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
