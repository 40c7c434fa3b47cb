//! `IPVS_DAEMON_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_DAEMON`.
//!
//! `MCAST_GROUP` is an IPv4 address in network order (`nla_put_in_addr`),
//! `MCAST_GROUP6` an `in6_addr`; `SYNC_MAXLEN` and `MCAST_PORT` are
//! host-order `u16` (`nla_get_u16`), `MCAST_TTL` a `u8`.

use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Nla, NlaBuffer, Parseable, emit_u16, emit_u32, parse_u16, parse_u32,
};

use super::parse_str;

/// `IPVS_DAEMON_ATTR_STATE`: `IP_VS_STATE_MASTER` (1) or `_BACKUP` (2) (u32).
pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
/// `IPVS_DAEMON_ATTR_MCAST_IFN`: multicast interface name (NUL string).
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
/// `IPVS_DAEMON_ATTR_SYNC_ID`: sync id (u32).
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
/// `IPVS_DAEMON_ATTR_SYNC_MAXLEN`: UDP payload size (u16).
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
/// `IPVS_DAEMON_ATTR_MCAST_GROUP`: IPv4 group.
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
/// `IPVS_DAEMON_ATTR_MCAST_GROUP6`: IPv6 group.
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
/// `IPVS_DAEMON_ATTR_MCAST_PORT`: base UDP port (u16).
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
/// `IPVS_DAEMON_ATTR_MCAST_TTL`: multicast TTL (u8).
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;

/// One attribute of a sync-daemon nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonAttr {
    /// `STATE`.
    State(u32),
    /// `MCAST_IFN`.
    McastIfn(String),
    /// `SYNC_ID`.
    SyncId(u32),
    /// `SYNC_MAXLEN`.
    SyncMaxlen(u16),
    /// `MCAST_GROUP`.
    McastGroup(Ipv4Addr),
    /// `MCAST_GROUP6`.
    McastGroup6(Ipv6Addr),
    /// `MCAST_PORT`.
    McastPort(u16),
    /// `MCAST_TTL`.
    McastTtl(u8),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::State(_) | Self::SyncId(_) | Self::McastGroup(_) => 4,
            Self::McastIfn(s) => s.len() + 1,
            Self::SyncMaxlen(_) | Self::McastPort(_) => 2,
            Self::McastGroup6(_) => 16,
            Self::McastTtl(_) => 1,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::State(_) => IPVS_DAEMON_ATTR_STATE,
            Self::McastIfn(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            Self::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            Self::SyncMaxlen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            Self::McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            Self::McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            Self::McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            Self::McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, b: &mut [u8]) {
        const OK: &str = "buffer sized by value_len";
        match self {
            Self::State(v) | Self::SyncId(v) => emit_u32(b, *v).expect(OK),
            Self::McastIfn(s) => {
                b[..s.len()].copy_from_slice(s.as_bytes());
                b[s.len()] = 0;
            }
            Self::SyncMaxlen(v) | Self::McastPort(v) => emit_u16(b, *v).expect(OK),
            Self::McastGroup(a) => b.copy_from_slice(&a.octets()),
            Self::McastGroup6(a) => b.copy_from_slice(&a.octets()),
            Self::McastTtl(v) => b[0] = *v,
            Self::Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match (buf.kind(), p.len()) {
            (IPVS_DAEMON_ATTR_STATE, 4) => Self::State(parse_u32(p)?),
            (IPVS_DAEMON_ATTR_MCAST_IFN, _) => {
                Self::McastIfn(parse_str(p, "IPVS_DAEMON_ATTR_MCAST_IFN")?)
            }
            (IPVS_DAEMON_ATTR_SYNC_ID, 4) => Self::SyncId(parse_u32(p)?),
            (IPVS_DAEMON_ATTR_SYNC_MAXLEN, 2) => Self::SyncMaxlen(parse_u16(p)?),
            (IPVS_DAEMON_ATTR_MCAST_GROUP, 4) => {
                Self::McastGroup(Ipv4Addr::new(p[0], p[1], p[2], p[3]))
            }
            (IPVS_DAEMON_ATTR_MCAST_GROUP6, 16) => {
                let mut a = [0; 16];
                a.copy_from_slice(p);
                Self::McastGroup6(Ipv6Addr::from(a))
            }
            (IPVS_DAEMON_ATTR_MCAST_PORT, 2) => Self::McastPort(parse_u16(p)?),
            (IPVS_DAEMON_ATTR_MCAST_TTL, 1) => Self::McastTtl(p[0]),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
