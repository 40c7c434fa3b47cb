//! `IPVS_SVC_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_SERVICE`.
//!
//! Byte order, from `include/uapi/linux/ip_vs.h` and `ip_vs_ctl.c`:
//! `PORT` is big-endian (`nla_put_be16`); `NETMASK` is a raw 32-bit value
//! that is a big-endian mask for IPv4 and a host-order prefix length for
//! IPv6 (the kernel reads it with `nla_get_be32` either way, which does not
//! swap), so it is kept here as its four bytes; `FLAGS` is
//! `struct ip_vs_flags { u32 flags; u32 mask; }` in host order; `ADDR` is a
//! 16-byte `union nf_inet_addr` (IPv4 in the first four bytes).

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, Parseable, emit_u16, emit_u16_be, emit_u32,
    parse_u16, parse_u16_be, parse_u32,
};

use super::{parse_nested, parse_str, stats::StatsAttr};

/// `IPVS_SVC_ATTR_AF`: address family (u16).
pub const IPVS_SVC_ATTR_AF: u16 = 1;
/// `IPVS_SVC_ATTR_PROTOCOL`: IP protocol (u16).
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
/// `IPVS_SVC_ATTR_ADDR`: virtual address (16 bytes).
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
/// `IPVS_SVC_ATTR_PORT`: virtual port (be16).
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
/// `IPVS_SVC_ATTR_FWMARK`: firewall mark (u32).
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
/// `IPVS_SVC_ATTR_SCHED_NAME`: scheduler name (NUL string, ≤ 16).
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
/// `IPVS_SVC_ATTR_FLAGS`: `struct ip_vs_flags`.
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
/// `IPVS_SVC_ATTR_TIMEOUT`: persistence timeout in seconds (u32).
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
/// `IPVS_SVC_ATTR_NETMASK`: persistence netmask / prefix length.
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
/// `IPVS_SVC_ATTR_STATS`: legacy stats nest.
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
/// `IPVS_SVC_ATTR_PE_NAME`: persistence engine name (NUL string, ≤ 16).
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
/// `IPVS_SVC_ATTR_STATS64`: 64-bit stats nest.
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

/// One attribute of a service nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceAttr {
    /// `AF` (`AF_INET` = 2, `AF_INET6` = 10).
    Af(u16),
    /// `PROTOCOL` (`IPPROTO_*`).
    Protocol(u16),
    /// `ADDR`, the raw `nf_inet_addr`.
    Addr([u8; 16]),
    /// `PORT`, in host order here (big-endian on the wire).
    Port(u16),
    /// `FWMARK`.
    Fwmark(u32),
    /// `SCHED_NAME`.
    SchedName(String),
    /// `FLAGS`: the kernel applies `(old & !mask) | (flags & mask)`.
    Flags {
        /// `IP_VS_SVC_F_*` bits.
        flags: u32,
        /// Which bits to change.
        mask: u32,
    },
    /// `TIMEOUT` in seconds.
    Timeout(u32),
    /// `NETMASK`, its four wire bytes (see the module doc).
    Netmask([u8; 4]),
    /// `STATS` (legacy widths).
    Stats(Vec<StatsAttr>),
    /// `PE_NAME`.
    PeName(String),
    /// `STATS64`.
    Stats64(Vec<StatsAttr>),
    /// An attribute this crate does not know (or of an unexpected size),
    /// kept as received.
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Af(_) | Self::Protocol(_) | Self::Port(_) => 2,
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => 4,
            Self::Addr(_) => 16,
            Self::Flags { .. } => 8,
            Self::SchedName(s) | Self::PeName(s) => s.len() + 1,
            Self::Stats(v) | Self::Stats64(v) => v.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Af(_) => IPVS_SVC_ATTR_AF,
            Self::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            Self::Addr(_) => IPVS_SVC_ATTR_ADDR,
            Self::Port(_) => IPVS_SVC_ATTR_PORT,
            Self::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            Self::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            Self::Flags { .. } => IPVS_SVC_ATTR_FLAGS,
            Self::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            Self::Stats(_) => IPVS_SVC_ATTR_STATS,
            Self::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            Self::Stats64(_) => IPVS_SVC_ATTR_STATS64,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, b: &mut [u8]) {
        const OK: &str = "buffer sized by value_len";
        match self {
            Self::Af(v) | Self::Protocol(v) => emit_u16(b, *v).expect(OK),
            Self::Port(v) => emit_u16_be(b, *v).expect(OK),
            Self::Fwmark(v) | Self::Timeout(v) => emit_u32(b, *v).expect(OK),
            Self::Addr(a) => b.copy_from_slice(a),
            Self::Netmask(m) => b.copy_from_slice(m),
            Self::Flags { flags, mask } => {
                emit_u32(&mut b[..4], *flags).expect(OK);
                emit_u32(&mut b[4..8], *mask).expect(OK);
            }
            Self::SchedName(s) | Self::PeName(s) => {
                b[..s.len()].copy_from_slice(s.as_bytes());
                b[s.len()] = 0;
            }
            Self::Stats(v) | Self::Stats64(v) => v.as_slice().emit(b),
            Self::Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match (buf.kind(), p.len()) {
            (IPVS_SVC_ATTR_AF, 2) => Self::Af(parse_u16(p)?),
            (IPVS_SVC_ATTR_PROTOCOL, 2) => Self::Protocol(parse_u16(p)?),
            (IPVS_SVC_ATTR_ADDR, 16) => {
                let mut a = [0; 16];
                a.copy_from_slice(p);
                Self::Addr(a)
            }
            (IPVS_SVC_ATTR_PORT, 2) => Self::Port(parse_u16_be(p)?),
            (IPVS_SVC_ATTR_FWMARK, 4) => Self::Fwmark(parse_u32(p)?),
            (IPVS_SVC_ATTR_SCHED_NAME, _) => {
                Self::SchedName(parse_str(p, "IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            (IPVS_SVC_ATTR_FLAGS, 8) => Self::Flags {
                flags: parse_u32(&p[..4])?,
                mask: parse_u32(&p[4..])?,
            },
            (IPVS_SVC_ATTR_TIMEOUT, 4) => Self::Timeout(parse_u32(p)?),
            (IPVS_SVC_ATTR_NETMASK, 4) => Self::Netmask([p[0], p[1], p[2], p[3]]),
            (IPVS_SVC_ATTR_STATS, _) => Self::Stats(parse_nested(p, "IPVS_SVC_ATTR_STATS")?),
            (IPVS_SVC_ATTR_PE_NAME, _) => Self::PeName(parse_str(p, "IPVS_SVC_ATTR_PE_NAME")?),
            (IPVS_SVC_ATTR_STATS64, _) => Self::Stats64(parse_nested(p, "IPVS_SVC_ATTR_STATS64")?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
