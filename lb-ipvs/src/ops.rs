//! Operations on the IPVS table: what [`crate::Client::apply`] sends, what
//! [`crate::reconcile`] computes and what [`crate::model::Model`] applies.

use std::{fmt, net::IpAddr};

use crate::{
    nl::{IpvsAttr, IpvsCmd, IpvsMessage},
    types::{Daemon, DaemonState, Dest, Service, ServiceKey, SockAddr, Timeouts},
};

/// One change to the kernel's IPVS state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `NEW_SERVICE`.
    AddService(Service),
    /// `SET_SERVICE` (the key selects, everything else is replaced).
    EditService(Service),
    /// `DEL_SERVICE`.
    DelService(ServiceKey),
    /// `NEW_DEST`.
    AddDest(ServiceKey, Dest),
    /// `SET_DEST`.
    EditDest(ServiceKey, Dest),
    /// `DEL_DEST` of `addr:port`.
    DelDest(ServiceKey, IpAddr, u16),
    /// `FLUSH`: delete every service.
    Flush,
    /// `ZERO` one service's counters, or all with `None`.
    Zero(Option<ServiceKey>),
    /// `SET_CONFIG` timeouts (0 = unchanged).
    SetTimeouts(Timeouts),
    /// `NEW_DAEMON`.
    StartDaemon(Daemon),
    /// `DEL_DAEMON`.
    StopDaemon(DaemonState),
    /// `GET_SERVICE` of one service (a query, here so errors can name it).
    GetService(ServiceKey),
}

impl Op {
    /// The request message. `tunnel_attrs` selects whether destination
    /// tunnel attributes are sent.
    pub fn to_message(&self, tunnel_attrs: bool) -> IpvsMessage {
        let (cmd, attrs) = match self {
            Self::AddService(s) => (IpvsCmd::NewService, vec![IpvsAttr::Service(s.to_attrs())]),
            Self::EditService(s) => (IpvsCmd::SetService, vec![IpvsAttr::Service(s.to_attrs())]),
            Self::DelService(k) => (IpvsCmd::DelService, vec![IpvsAttr::Service(k.to_attrs())]),
            Self::AddDest(k, d) => (
                IpvsCmd::NewDest,
                vec![
                    IpvsAttr::Service(k.to_attrs()),
                    IpvsAttr::Dest(d.to_attrs(tunnel_attrs)),
                ],
            ),
            Self::EditDest(k, d) => (
                IpvsCmd::SetDest,
                vec![
                    IpvsAttr::Service(k.to_attrs()),
                    IpvsAttr::Dest(d.to_attrs(tunnel_attrs)),
                ],
            ),
            Self::DelDest(k, addr, port) => (
                IpvsCmd::DelDest,
                vec![
                    IpvsAttr::Service(k.to_attrs()),
                    IpvsAttr::Dest(Dest::new(*addr, *port).key_attrs()),
                ],
            ),
            Self::Flush => (IpvsCmd::Flush, vec![]),
            Self::Zero(None) => (IpvsCmd::Zero, vec![]),
            Self::Zero(Some(k)) => (IpvsCmd::Zero, vec![IpvsAttr::Service(k.to_attrs())]),
            Self::SetTimeouts(t) => (
                IpvsCmd::SetConfig,
                vec![
                    IpvsAttr::TimeoutTcp(t.tcp),
                    IpvsAttr::TimeoutTcpFin(t.tcp_fin),
                    IpvsAttr::TimeoutUdp(t.udp),
                ],
            ),
            Self::StartDaemon(d) => (IpvsCmd::NewDaemon, vec![IpvsAttr::Daemon(d.to_attrs())]),
            Self::StopDaemon(s) => (
                IpvsCmd::DelDaemon,
                vec![IpvsAttr::Daemon(vec![crate::nl::DaemonAttr::State(
                    s.value(),
                )])],
            ),
            Self::GetService(k) => (IpvsCmd::GetService, vec![IpvsAttr::Service(k.to_attrs())]),
        };
        IpvsMessage { cmd, attrs }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddService(s) => write!(f, "add service {}", s.key),
            Self::EditService(s) => write!(f, "edit service {}", s.key),
            Self::DelService(k) => write!(f, "delete service {k}"),
            Self::AddDest(k, d) => {
                write!(
                    f,
                    "add destination {} to service {k}",
                    SockAddr(d.addr, d.port)
                )
            }
            Self::EditDest(k, d) => {
                write!(
                    f,
                    "edit destination {} of service {k}",
                    SockAddr(d.addr, d.port)
                )
            }
            Self::DelDest(k, a, p) => {
                write!(f, "delete destination {} of service {k}", SockAddr(*a, *p))
            }
            Self::Flush => f.write_str("flush"),
            Self::Zero(None) => f.write_str("zero all counters"),
            Self::Zero(Some(k)) => write!(f, "zero counters of service {k}"),
            Self::SetTimeouts(t) => {
                write!(
                    f,
                    "set timeouts tcp {} tcpfin {} udp {}",
                    t.tcp, t.tcp_fin, t.udp
                )
            }
            Self::StartDaemon(d) => {
                write!(f, "start {} sync daemon on {}", d.state.name(), d.mcast_ifn)
            }
            Self::StopDaemon(s) => write!(f, "stop {} sync daemon", s.name()),
            Self::GetService(k) => write!(f, "get service {k}"),
        }
    }
}
