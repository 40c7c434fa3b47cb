//! The IPVS generic-netlink family, modelled the way `netlink-packet-generic`
//! models `nlctrl`: a command enum, one payload type ([`IpvsMessage`]) that
//! implements [`GenlFamily`], and one attribute enum per nest, each keeping
//! unknown attributes as [`DefaultNla`] so that newer kernels do not break
//! decoding.
//!
//! ```text
//!  nlmsghdr | genlmsghdr {cmd, version=1} | IPVS_CMD_ATTR_* ...
//!                                          ├─ SERVICE (nest) → IPVS_SVC_ATTR_*
//!                                          ├─ DEST    (nest) → IPVS_DEST_ATTR_*
//!                                          ├─ DAEMON  (nest) → IPVS_DAEMON_ATTR_*
//!                                          └─ TIMEOUT_TCP / _TCP_FIN / _UDP (u32)
//! ```
//!
//! The `IPVS_CMD_SET_INFO` reply (to `GET_INFO`) reuses attribute numbers 1
//! and 2 at the top level for `IPVS_INFO_ATTR_VERSION` and
//! `IPVS_INFO_ATTR_CONN_TAB_SIZE`, so top-level decoding depends on the
//! command.
//!
//! This layer does no I/O; see [`crate::Client`] for the socket.

pub mod daemon;
pub mod dest;
pub mod service;
pub mod stats;

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized, emit_u32, parse_u32,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

pub use self::{daemon::DaemonAttr, dest::DestAttr, service::ServiceAttr, stats::StatsAttr};

/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `IPVS_CMD_ATTR_SERVICE`: nested service.
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
/// `IPVS_CMD_ATTR_DEST`: nested destination.
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
/// `IPVS_CMD_ATTR_DAEMON`: nested sync daemon.
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
/// `IPVS_CMD_ATTR_TIMEOUT_TCP` (u32 seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
/// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN` (u32 seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
/// `IPVS_CMD_ATTR_TIMEOUT_UDP` (u32 seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;
/// `IPVS_INFO_ATTR_VERSION` (u32, top level of the `SET_INFO` reply).
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
/// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (u32, top level of the `SET_INFO` reply).
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

/// `IPVS_CMD_*`, in the order of `include/uapi/linux/ip_vs.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvsCmd {
    /// `IPVS_CMD_NEW_SERVICE` (1); also the command of service dump replies.
    NewService,
    /// `IPVS_CMD_SET_SERVICE` (2).
    SetService,
    /// `IPVS_CMD_DEL_SERVICE` (3).
    DelService,
    /// `IPVS_CMD_GET_SERVICE` (4), doit and dumpit.
    GetService,
    /// `IPVS_CMD_NEW_DEST` (5); also the command of dest dump replies.
    NewDest,
    /// `IPVS_CMD_SET_DEST` (6).
    SetDest,
    /// `IPVS_CMD_DEL_DEST` (7).
    DelDest,
    /// `IPVS_CMD_GET_DEST` (8), dump only.
    GetDest,
    /// `IPVS_CMD_NEW_DAEMON` (9); also the command of daemon dump replies.
    NewDaemon,
    /// `IPVS_CMD_DEL_DAEMON` (10).
    DelDaemon,
    /// `IPVS_CMD_GET_DAEMON` (11), dump only.
    GetDaemon,
    /// `IPVS_CMD_SET_CONFIG` (12); also the command of the `GET_CONFIG` reply.
    SetConfig,
    /// `IPVS_CMD_GET_CONFIG` (13).
    GetConfig,
    /// `IPVS_CMD_SET_INFO` (14), only in the `GET_INFO` reply.
    SetInfo,
    /// `IPVS_CMD_GET_INFO` (15).
    GetInfo,
    /// `IPVS_CMD_ZERO` (16).
    Zero,
    /// `IPVS_CMD_FLUSH` (17).
    Flush,
}

impl IpvsCmd {
    /// Every command, in numeric order.
    pub const ALL: [Self; 17] = [
        Self::NewService,
        Self::SetService,
        Self::DelService,
        Self::GetService,
        Self::NewDest,
        Self::SetDest,
        Self::DelDest,
        Self::GetDest,
        Self::NewDaemon,
        Self::DelDaemon,
        Self::GetDaemon,
        Self::SetConfig,
        Self::GetConfig,
        Self::SetInfo,
        Self::GetInfo,
        Self::Zero,
        Self::Flush,
    ];

    /// Top-level attributes of this command are `IPVS_INFO_ATTR_*`.
    fn carries_info(self) -> bool {
        matches!(self, Self::SetInfo | Self::GetInfo)
    }
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> Self {
        // Numeric order starts at 1 (`IPVS_CMD_UNSPEC` is 0).
        IpvsCmd::ALL
            .iter()
            .position(|c| *c == cmd)
            .map_or(0, |i| i as Self + 1)
    }
}

impl TryFrom<u8> for IpvsCmd {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, DecodeError> {
        value
            .checked_sub(1)
            .and_then(|i| Self::ALL.get(usize::from(i)).copied())
            .ok_or_else(|| DecodeError::from(format!("unknown IPVS command {value}")))
    }
}

/// A top-level (`IPVS_CMD_ATTR_*` or `IPVS_INFO_ATTR_*`) attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpvsAttr {
    /// `IPVS_CMD_ATTR_SERVICE`.
    Service(Vec<ServiceAttr>),
    /// `IPVS_CMD_ATTR_DEST`.
    Dest(Vec<DestAttr>),
    /// `IPVS_CMD_ATTR_DAEMON`.
    Daemon(Vec<DaemonAttr>),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP`.
    TimeoutTcp(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN`.
    TimeoutTcpFin(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_UDP`.
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION` (`SET_INFO` reply only).
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (`SET_INFO` reply only).
    InfoConnTabSize(u32),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(v) => v.as_slice().buffer_len(),
            Self::Dest(v) => v.as_slice().buffer_len(),
            Self::Daemon(v) => v.as_slice().buffer_len(),
            Self::TimeoutTcp(_)
            | Self::TimeoutTcpFin(_)
            | Self::TimeoutUdp(_)
            | Self::InfoVersion(_)
            | Self::InfoConnTabSize(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Service(_) => IPVS_CMD_ATTR_SERVICE,
            Self::Dest(_) => IPVS_CMD_ATTR_DEST,
            Self::Daemon(_) => IPVS_CMD_ATTR_DAEMON,
            Self::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            Self::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            Self::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            Self::InfoVersion(_) => IPVS_INFO_ATTR_VERSION,
            Self::InfoConnTabSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, b: &mut [u8]) {
        match self {
            Self::Service(v) => v.as_slice().emit(b),
            Self::Dest(v) => v.as_slice().emit(b),
            Self::Daemon(v) => v.as_slice().emit(b),
            Self::TimeoutTcp(v)
            | Self::TimeoutTcpFin(v)
            | Self::TimeoutUdp(v)
            | Self::InfoVersion(v)
            | Self::InfoConnTabSize(v) => {
                emit_u32(b, *v).expect("buffer sized by value_len");
            }
            Self::Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, IpvsCmd> for IpvsAttr {
    fn parse_with_param(buf: &NlaBuffer<&'a T>, cmd: IpvsCmd) -> Result<Self, DecodeError> {
        let p = buf.value();
        if cmd.carries_info() {
            return Ok(match (buf.kind(), p.len()) {
                (IPVS_INFO_ATTR_VERSION, 4) => Self::InfoVersion(parse_u32(p)?),
                (IPVS_INFO_ATTR_CONN_TAB_SIZE, 4) => Self::InfoConnTabSize(parse_u32(p)?),
                _ => Self::Other(DefaultNla::parse(buf)?),
            });
        }
        Ok(match (buf.kind(), p.len()) {
            (IPVS_CMD_ATTR_SERVICE, _) => Self::Service(parse_nested(p, "IPVS_CMD_ATTR_SERVICE")?),
            (IPVS_CMD_ATTR_DEST, _) => Self::Dest(parse_nested(p, "IPVS_CMD_ATTR_DEST")?),
            (IPVS_CMD_ATTR_DAEMON, _) => Self::Daemon(parse_nested(p, "IPVS_CMD_ATTR_DAEMON")?),
            (IPVS_CMD_ATTR_TIMEOUT_TCP, 4) => Self::TimeoutTcp(parse_u32(p)?),
            (IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, 4) => Self::TimeoutTcpFin(parse_u32(p)?),
            (IPVS_CMD_ATTR_TIMEOUT_UDP, 4) => Self::TimeoutUdp(parse_u32(p)?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// The payload of one IPVS generic-netlink message (after the genl header).
///
/// ```
/// use lb_ipvs::nl::{IpvsAttr, IpvsCmd, IpvsMessage};
/// use netlink_packet_core::Emitable;
///
/// let msg = IpvsMessage { cmd: IpvsCmd::SetConfig, attrs: vec![IpvsAttr::TimeoutTcp(900)] };
/// let mut buf = vec![0; msg.buffer_len()];
/// msg.emit(&mut buf);
/// assert_eq!(buf, [8, 0, 4, 0, 0x84, 3, 0, 0]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    /// The command.
    pub cmd: IpvsCmd,
    /// Top-level attributes.
    pub attrs: Vec<IpvsAttr>,
}

impl IpvsMessage {
    /// A message without attributes.
    pub fn new(cmd: IpvsCmd) -> Self {
        Self {
            cmd,
            attrs: Vec::new(),
        }
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::try_from(header.cmd)?;
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttr::parse_with_param(&nla, cmd)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { cmd, attrs })
    }
}

/// Parses a nest's payload into attributes.
pub(crate) fn parse_nested<A>(payload: &[u8], what: &str) -> Result<Vec<A>, DecodeError>
where
    A: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| A::parse(&nla)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DecodeError::from(format!("in {what}: {e}")))
}

/// Parses a NUL-terminated string attribute (a missing NUL is tolerated).
pub(crate) fn parse_str(payload: &[u8], what: &str) -> Result<String, DecodeError> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    std::str::from_utf8(&payload[..end])
        .map(str::to_owned)
        .map_err(|_| DecodeError::from(format!("{what} is not UTF-8")))
}
