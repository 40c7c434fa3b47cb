//! Typed IPVS objects: services, destinations, stats, daemons, timeouts,
//! and their conversion to and from the netlink attributes in [`crate::nl`].

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use crate::{
    error::Error,
    nl::{DaemonAttr, DestAttr, ServiceAttr, StatsAttr},
};

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }

    /// The `AF_*` number.
    pub fn af(self) -> u16 {
        match self {
            Self::Inet => AF_INET,
            Self::Inet6 => AF_INET6,
        }
    }

    fn from_af(af: u16) -> Result<Self, Error> {
        match af {
            AF_INET => Ok(Self::Inet),
            AF_INET6 => Ok(Self::Inet6),
            _ => Err(Error::malformed(format!("unsupported address family {af}"))),
        }
    }

    /// The default persistence netmask: `255.255.255.255` or `/128`.
    pub fn full_netmask(self) -> u32 {
        match self {
            Self::Inet => u32::MAX,
            Self::Inet6 => 128,
        }
    }
}

/// A transport protocol of a non-fwmark service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
    /// Any other `IPPROTO_*` number.
    Other(u16),
}

impl Protocol {
    /// The `IPPROTO_*` number.
    pub fn number(self) -> u16 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
            Self::Other(n) => n,
        }
    }

    /// From an `IPPROTO_*` number.
    pub fn from_number(n: u16) -> Self {
        match n {
            6 => Self::Tcp,
            17 => Self::Udp,
            132 => Self::Sctp,
            n => Self::Other(n),
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// `protocol addr:port`.
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0 = any port, persistent services only).
        port: u16,
    },
    /// A firewall-mark service.
    Fwmark {
        /// Address family of the service.
        family: Family,
        /// The mark (> 0).
        mark: u32,
    },
}

impl ServiceKey {
    /// A TCP service.
    pub fn tcp(addr: IpAddr, port: u16) -> Self {
        Self::Addr {
            protocol: Protocol::Tcp,
            addr,
            port,
        }
    }

    /// A UDP service.
    pub fn udp(addr: IpAddr, port: u16) -> Self {
        Self::Addr {
            protocol: Protocol::Udp,
            addr,
            port,
        }
    }

    /// An IPv4 fwmark service.
    pub fn fwmark(mark: u32) -> Self {
        Self::Fwmark {
            family: Family::Inet,
            mark,
        }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        match self {
            Self::Addr { addr, .. } => Family::of(addr),
            Self::Fwmark { family, .. } => *family,
        }
    }

    /// The port, 0 for fwmark services.
    pub fn port(&self) -> u16 {
        match self {
            Self::Addr { port, .. } => *port,
            Self::Fwmark { .. } => 0,
        }
    }

    /// The identifying attributes, in libipvs' order.
    pub fn to_attrs(&self) -> Vec<ServiceAttr> {
        match self {
            Self::Addr {
                protocol,
                addr,
                port,
            } => vec![
                ServiceAttr::Af(Family::of(addr).af()),
                ServiceAttr::Protocol(protocol.number()),
                ServiceAttr::Addr(inet_addr(addr)),
                ServiceAttr::Port(*port),
            ],
            Self::Fwmark { family, mark } => {
                vec![ServiceAttr::Af(family.af()), ServiceAttr::Fwmark(*mark)]
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's `-t`/`-u`/`--sctp-service`/`-f` spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr {
                protocol,
                addr,
                port,
            } => {
                let opt = match protocol {
                    Protocol::Tcp => "-t".to_owned(),
                    Protocol::Udp => "-u".to_owned(),
                    Protocol::Sctp => "--sctp-service".to_owned(),
                    Protocol::Other(n) => format!("--proto-{n}"),
                };
                write!(f, "{opt} {}", SockAddr(*addr, *port))
            }
            Self::Fwmark {
                family: Family::Inet,
                mark,
            } => write!(f, "-f {mark}"),
            Self::Fwmark {
                family: Family::Inet6,
                mark,
            } => write!(f, "-f {mark} -6"),
        }
    }
}

/// Formats `addr:port` with IPv6 in brackets, as ipvsadm does.
#[derive(Debug, Clone, Copy)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// `IP_VS_SVC_F_*` service flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// `IP_VS_SVC_F_PERSISTENT`.
    pub const PERSISTENT: u32 = 0x1;
    /// `IP_VS_SVC_F_HASHED` (set by the kernel on every listed service).
    pub const HASHED: u32 = 0x2;
    /// `IP_VS_SVC_F_ONEPACKET`.
    pub const ONEPACKET: u32 = 0x4;
    /// `IP_VS_SVC_F_SCHED1` (`sh-fallback` for sh, `mh-fallback` for mh).
    pub const SCHED1: u32 = 0x8;
    /// `IP_VS_SVC_F_SCHED2` (`sh-port` for sh, `mh-port` for mh).
    pub const SCHED2: u32 = 0x10;
    /// `IP_VS_SVC_F_SCHED3`.
    pub const SCHED3: u32 = 0x20;
    /// All three scheduler flags.
    pub const SCHED_MASK: u32 = Self::SCHED1 | Self::SCHED2 | Self::SCHED3;

    /// Whether all bits of `bits` are set.
    pub fn has(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

/// A virtual service's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, `rr`, `sh`, `mh`, ...).
    pub scheduler: String,
    /// Flags; [`ServiceFlags::HASHED`] is ignored when sending.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful with `PERSISTENT`).
    pub timeout: u32,
    /// Persistence granularity: for IPv4 the mask as a host-order integer
    /// (`0xffff_ff00` = 255.255.255.0); for IPv6 the prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

impl Service {
    /// A service with ipvsadm's defaults: scheduler `wlc`, not persistent,
    /// full netmask.
    ///
    /// ```
    /// use lb_ipvs::{Service, ServiceKey};
    /// let svc = Service::new(ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80));
    /// assert_eq!(svc.scheduler, "wlc");
    /// assert_eq!(svc.netmask, 0xffff_ffff);
    /// ```
    pub fn new(key: ServiceKey) -> Self {
        Self {
            key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: key.family().full_netmask(),
            pe_name: None,
        }
    }

    /// Whether the service is persistent.
    pub fn persistent(&self) -> bool {
        self.flags.has(ServiceFlags::PERSISTENT)
    }

    /// The configuration with kernel-maintained bits (`HASHED`) cleared, for
    /// comparisons.
    pub fn normalized(&self) -> Self {
        let mut s = self.clone();
        s.flags.0 &= !ServiceFlags::HASHED;
        s
    }

    /// The full attribute set for `NEW_SERVICE`/`SET_SERVICE`.
    pub fn to_attrs(&self) -> Vec<ServiceAttr> {
        let mut attrs = self.key.to_attrs();
        attrs.push(ServiceAttr::SchedName(self.scheduler.clone()));
        if let Some(pe) = &self.pe_name {
            attrs.push(ServiceAttr::PeName(pe.clone()));
        }
        attrs.push(ServiceAttr::Flags {
            flags: self.flags.0 & !ServiceFlags::HASHED,
            mask: u32::MAX,
        });
        attrs.push(ServiceAttr::Timeout(self.timeout));
        attrs.push(ServiceAttr::Netmask(netmask_bytes(
            self.key.family(),
            self.netmask,
        )));
        attrs
    }
}

/// The wire bytes of a netmask (see [`Service::netmask`]).
fn netmask_bytes(family: Family, netmask: u32) -> [u8; 4] {
    match family {
        Family::Inet => netmask.to_be_bytes(),
        Family::Inet6 => netmask.to_ne_bytes(),
    }
}

fn netmask_from_bytes(family: Family, b: [u8; 4]) -> u32 {
    match family {
        Family::Inet => u32::from_be_bytes(b),
        Family::Inet6 => u32::from_ne_bytes(b),
    }
}

/// Traffic counters and rates of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

impl Stats {
    fn from_attrs(attrs: &[StatsAttr]) -> Self {
        let mut s = Self::default();
        for a in attrs {
            match a {
                StatsAttr::Conns(c) => s.conns = c.get(),
                StatsAttr::InPkts(c) => s.inpkts = c.get(),
                StatsAttr::OutPkts(c) => s.outpkts = c.get(),
                StatsAttr::InBytes(c) => s.inbytes = c.get(),
                StatsAttr::OutBytes(c) => s.outbytes = c.get(),
                StatsAttr::Cps(c) => s.cps = c.get(),
                StatsAttr::InPps(c) => s.inpps = c.get(),
                StatsAttr::OutPps(c) => s.outpps = c.get(),
                StatsAttr::InBps(c) => s.inbps = c.get(),
                StatsAttr::OutBps(c) => s.outbps = c.get(),
                _ => {}
            }
        }
        s
    }
}

/// A service as listed by the kernel: configuration plus stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Configuration (flags as the kernel reports them, `HASHED` included).
    pub service: Service,
    /// Stats (from `STATS64` when present, else the legacy nest).
    pub stats: Stats,
}

impl ServiceEntry {
    /// Builds an entry from a service nest.
    pub fn from_attrs(attrs: &[ServiceAttr]) -> Result<Self, Error> {
        let mut af = None;
        let (mut protocol, mut addr, mut port, mut fwmark) = (None, None, None, None);
        let (mut sched, mut flags, mut timeout, mut netmask, mut pe) =
            (None, None, None, None, None);
        let (mut stats, mut stats64) = (None, None);
        for a in attrs {
            match a {
                ServiceAttr::Af(v) => af = Some(*v),
                ServiceAttr::Protocol(v) => protocol = Some(*v),
                ServiceAttr::Addr(v) => addr = Some(*v),
                ServiceAttr::Port(v) => port = Some(*v),
                ServiceAttr::Fwmark(v) => fwmark = Some(*v),
                ServiceAttr::SchedName(v) => sched = Some(v.clone()),
                ServiceAttr::Flags { flags: f, mask } => flags = Some(f & mask),
                ServiceAttr::Timeout(v) => timeout = Some(*v),
                ServiceAttr::Netmask(v) => netmask = Some(*v),
                ServiceAttr::Stats(v) => stats = Some(Stats::from_attrs(v)),
                ServiceAttr::Stats64(v) => stats64 = Some(Stats::from_attrs(v)),
                ServiceAttr::PeName(v) => pe = Some(v.clone()),
                _ => {}
            }
        }
        let family = Family::from_af(af.ok_or_else(|| Error::missing("IPVS_SVC_ATTR_AF"))?)?;
        let key = match (fwmark, protocol, addr, port) {
            (Some(mark), ..) if mark != 0 => ServiceKey::Fwmark { family, mark },
            (_, Some(p), Some(a), Some(port)) => ServiceKey::Addr {
                protocol: Protocol::from_number(p),
                addr: ip_from_inet(family, &a),
                port,
            },
            _ => return Err(Error::missing("IPVS_SVC_ATTR_FWMARK or PROTOCOL/ADDR/PORT")),
        };
        let netmask = netmask.ok_or_else(|| Error::missing("IPVS_SVC_ATTR_NETMASK"))?;
        Ok(Self {
            service: Service {
                key,
                scheduler: sched.ok_or_else(|| Error::missing("IPVS_SVC_ATTR_SCHED_NAME"))?,
                flags: ServiceFlags(flags.ok_or_else(|| Error::missing("IPVS_SVC_ATTR_FLAGS"))?),
                timeout: timeout.ok_or_else(|| Error::missing("IPVS_SVC_ATTR_TIMEOUT"))?,
                netmask: netmask_from_bytes(family, netmask),
                pe_name: pe.filter(|p| !p.is_empty()),
            },
            stats: stats64.or(stats).unwrap_or_default(),
        })
    }
}

/// A destination's forwarding method (`IP_VS_CONN_F_FWD_MASK` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForwardMethod {
    /// NAT (`IP_VS_CONN_F_MASQ`, 0): ipvsadm `-m`, listed as `Masq`.
    Masq,
    /// Local node (`IP_VS_CONN_F_LOCALNODE`, 1), listed as `Local`.
    Local,
    /// IP tunnelling (`IP_VS_CONN_F_TUNNEL`, 2): `-i`, listed as `Tunnel`.
    Tunnel,
    /// Direct routing (`IP_VS_CONN_F_DROUTE`, 3): `-g`, listed as `Route`.
    Route,
    /// Another value.
    Other(u32),
}

impl ForwardMethod {
    /// The `IP_VS_CONN_F_*` value.
    pub fn value(self) -> u32 {
        match self {
            Self::Masq => 0,
            Self::Local => 1,
            Self::Tunnel => 2,
            Self::Route => 3,
            Self::Other(v) => v,
        }
    }

    /// From an `IP_VS_CONN_F_*` value (masked with `FWD_MASK`).
    pub fn from_value(v: u32) -> Self {
        match v & 7 {
            0 => Self::Masq,
            1 => Self::Local,
            2 => Self::Tunnel,
            3 => Self::Route,
            v => Self::Other(v),
        }
    }
}

/// A tunnel encapsulation (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TunnelType {
    /// IP-in-IP (0), the default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (1); needs a tunnel port.
    Gue,
    /// GRE (2).
    Gre,
    /// Another value.
    Other(u8),
}

impl TunnelType {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            Self::Ipip => 0,
            Self::Gue => 1,
            Self::Gre => 2,
            Self::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_value(v: u8) -> Self {
        match v {
            0 => Self::Ipip,
            1 => Self::Gue,
            2 => Self::Gre,
            v => Self::Other(v),
        }
    }

    /// ipvsadm's name (`ipip`, `gue`, `gre`).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::Ipip => Some("ipip"),
            Self::Gue => Some("gue"),
            Self::Gre => Some("gre"),
            Self::Other(_) => None,
        }
    }
}

/// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TunnelFlags(pub u16);

impl TunnelFlags {
    /// No checksum (0).
    pub const NOCSUM: u16 = 0;
    /// UDP checksum (`--tun-csum`).
    pub const CSUM: u16 = 1;
    /// Remote checksum offload (`--tun-remcsum`).
    pub const REMCSUM: u16 = 2;
}

/// A destination (real server)'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Address (may differ in family from the service for tunnels).
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Weight (0 = quiesced).
    pub weight: i32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
    /// Tunnel type (with [`ForwardMethod::Tunnel`]).
    pub tun_type: TunnelType,
    /// Tunnel port (GUE).
    pub tun_port: u16,
    /// Tunnel flags (GUE, GRE).
    pub tun_flags: TunnelFlags,
}

impl Dest {
    /// A destination with ipvsadm's defaults: direct routing, weight 1.
    ///
    /// ```
    /// use lb_ipvs::{Dest, ForwardMethod};
    /// let d = Dest::new("10.0.0.2".parse().unwrap(), 80);
    /// assert_eq!((d.fwd, d.weight), (ForwardMethod::Route, 1));
    /// ```
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Self {
            addr,
            port,
            fwd: ForwardMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: TunnelFlags(0),
        }
    }

    /// The identifying attributes (for `DEL_DEST`).
    pub fn key_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::AddrFamily(Family::of(&self.addr).af()),
            DestAttr::Addr(inet_addr(&self.addr)),
            DestAttr::Port(self.port),
        ]
    }

    /// The full attribute set for `NEW_DEST`/`SET_DEST`. With
    /// `tunnel_attrs` false the `TUN_*` attributes are left out (kernels
    /// before 5.2 ignore them anyway, but some filters reject them).
    pub fn to_attrs(&self, tunnel_attrs: bool) -> Vec<DestAttr> {
        let mut attrs = self.key_attrs();
        attrs.push(DestAttr::FwdMethod(self.fwd.value()));
        attrs.push(DestAttr::Weight(self.weight as u32));
        if tunnel_attrs {
            attrs.push(DestAttr::TunType(self.tun_type.value()));
            attrs.push(DestAttr::TunPort(self.tun_port));
            attrs.push(DestAttr::TunFlags(self.tun_flags.0));
        }
        attrs.push(DestAttr::UThresh(self.u_threshold));
        attrs.push(DestAttr::LThresh(self.l_threshold));
        attrs
    }

    /// The identity of the destination within its service.
    pub fn id(&self) -> (IpAddr, u16) {
        (self.addr, self.port)
    }
}

/// A destination as listed by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    /// Configuration.
    pub dest: Dest,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inact_conns: u32,
    /// Persistence templates.
    pub persist_conns: u32,
    /// Stats.
    pub stats: Stats,
}

impl DestEntry {
    /// Builds an entry from a dest nest; `svc_family` is used when the
    /// kernel omits `ADDR_FAMILY` (before 3.18).
    pub fn from_attrs(attrs: &[DestAttr], svc_family: Family) -> Result<Self, Error> {
        let (mut addr, mut port, mut fwd, mut weight) = (None, None, None, None);
        let (mut u, mut l, mut act, mut inact, mut pers, mut af) =
            (None, None, None, None, None, None);
        let (mut tun_type, mut tun_port, mut tun_flags) = (0, 0, 0);
        let (mut stats, mut stats64) = (None, None);
        for a in attrs {
            match a {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::FwdMethod(v) => fwd = Some(*v),
                DestAttr::Weight(v) => weight = Some(*v),
                DestAttr::UThresh(v) => u = Some(*v),
                DestAttr::LThresh(v) => l = Some(*v),
                DestAttr::ActiveConns(v) => act = Some(*v),
                DestAttr::InactConns(v) => inact = Some(*v),
                DestAttr::PersistConns(v) => pers = Some(*v),
                DestAttr::AddrFamily(v) => af = Some(*v),
                DestAttr::Stats(v) => stats = Some(Stats::from_attrs(v)),
                DestAttr::Stats64(v) => stats64 = Some(Stats::from_attrs(v)),
                DestAttr::TunType(v) => tun_type = *v,
                DestAttr::TunPort(v) => tun_port = *v,
                DestAttr::TunFlags(v) => tun_flags = *v,
                _ => {}
            }
        }
        let family = match af {
            Some(af) => Family::from_af(af)?,
            None => svc_family,
        };
        Ok(Self {
            dest: Dest {
                addr: ip_from_inet(
                    family,
                    &addr.ok_or_else(|| Error::missing("IPVS_DEST_ATTR_ADDR"))?,
                ),
                port: port.ok_or_else(|| Error::missing("IPVS_DEST_ATTR_PORT"))?,
                fwd: ForwardMethod::from_value(
                    fwd.ok_or_else(|| Error::missing("IPVS_DEST_ATTR_FWD_METHOD"))?,
                ),
                weight: weight.ok_or_else(|| Error::missing("IPVS_DEST_ATTR_WEIGHT"))? as i32,
                u_threshold: u.unwrap_or(0),
                l_threshold: l.unwrap_or(0),
                tun_type: TunnelType::from_value(tun_type),
                tun_port,
                tun_flags: TunnelFlags(tun_flags),
            },
            active_conns: act.unwrap_or(0),
            inact_conns: inact.unwrap_or(0),
            persist_conns: pers.unwrap_or(0),
            stats: stats64.or(stats).unwrap_or_default(),
        })
    }
}

/// `GET_INFO`: IPVS version and connection-table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, e.g. `0x010201` for 1.2.1.
    pub version: u32,
    /// Connection hash table size.
    pub conn_tab_size: u32,
}

impl Info {
    /// `(major, minor, patch)`.
    pub fn version_triple(&self) -> (u32, u32, u32) {
        (
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff,
        )
    }
}

/// TCP, TCP-FIN and UDP timeouts in seconds (0 = leave unchanged when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// `ESTABLISHED`.
    pub tcp: u32,
    /// `FIN_WAIT`.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// A sync daemon's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DaemonState {
    /// `IP_VS_STATE_MASTER`.
    Master,
    /// `IP_VS_STATE_BACKUP`.
    Backup,
}

impl DaemonState {
    /// The wire value.
    pub fn value(self) -> u32 {
        match self {
            Self::Master => 1,
            Self::Backup => 2,
        }
    }

    /// ipvsadm's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Backup => "backup",
        }
    }
}

/// A connection-sync daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Role.
    pub state: DaemonState,
    /// Multicast interface.
    pub mcast_ifn: String,
    /// Sync id (0..255).
    pub syncid: u32,
    /// Maximum sync message length (0 = kernel default).
    pub sync_maxlen: u16,
    /// Multicast group (`None` = kernel default 224.0.0.81).
    pub mcast_group: Option<IpAddr>,
    /// Multicast port (0 = default 8848).
    pub mcast_port: u16,
    /// Multicast TTL (0 = default 1).
    pub mcast_ttl: u8,
}

impl Daemon {
    /// A daemon with kernel defaults on `ifname`.
    pub fn new(state: DaemonState, ifname: &str) -> Self {
        Self {
            state,
            mcast_ifn: ifname.into(),
            syncid: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
        }
    }

    /// Attributes for `NEW_DAEMON`, in libipvs' order.
    pub fn to_attrs(&self) -> Vec<DaemonAttr> {
        let mut a = vec![
            DaemonAttr::State(self.state.value()),
            DaemonAttr::McastIfn(self.mcast_ifn.clone()),
            DaemonAttr::SyncId(self.syncid),
        ];
        if self.sync_maxlen != 0 {
            a.push(DaemonAttr::SyncMaxlen(self.sync_maxlen));
        }
        if self.mcast_port != 0 {
            a.push(DaemonAttr::McastPort(self.mcast_port));
        }
        if self.mcast_ttl != 0 {
            a.push(DaemonAttr::McastTtl(self.mcast_ttl));
        }
        match self.mcast_group {
            Some(IpAddr::V4(g)) => a.push(DaemonAttr::McastGroup(g)),
            Some(IpAddr::V6(g)) => a.push(DaemonAttr::McastGroup6(g)),
            None => {}
        }
        a
    }

    /// Builds a daemon from a daemon nest.
    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<Self, Error> {
        let mut d = Self::new(DaemonState::Master, "");
        let mut state = None;
        for a in attrs {
            match a {
                DaemonAttr::State(v) => state = Some(*v),
                DaemonAttr::McastIfn(v) => d.mcast_ifn = v.clone(),
                DaemonAttr::SyncId(v) => d.syncid = *v,
                DaemonAttr::SyncMaxlen(v) => d.sync_maxlen = *v,
                DaemonAttr::McastGroup(v) => d.mcast_group = Some(IpAddr::V4(*v)),
                DaemonAttr::McastGroup6(v) => d.mcast_group = Some(IpAddr::V6(*v)),
                DaemonAttr::McastPort(v) => d.mcast_port = *v,
                DaemonAttr::McastTtl(v) => d.mcast_ttl = *v,
                _ => {}
            }
        }
        d.state = match state.ok_or_else(|| Error::missing("IPVS_DAEMON_ATTR_STATE"))? {
            s if s & 1 != 0 => DaemonState::Master,
            s if s & 2 != 0 => DaemonState::Backup,
            s => return Err(Error::malformed(format!("unknown daemon state {s}"))),
        };
        Ok(d)
    }
}

/// The raw `nf_inet_addr` of an address.
pub(crate) fn inet_addr(addr: &IpAddr) -> [u8; 16] {
    let mut a = [0; 16];
    match addr {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

pub(crate) fn ip_from_inet(family: Family, a: &[u8; 16]) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(*a)),
    }
}

/// A service with its destinations (configuration only): one row of a
/// desired or saved table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    /// The service.
    pub service: Service,
    /// Its destinations.
    pub dests: Vec<Dest>,
}

/// A whole IPVS table (configuration only), in no particular order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Services and their destinations.
    pub services: Vec<VirtualService>,
}

impl Table {
    /// The table sorted by service key and destination id, with
    /// kernel-maintained flag bits cleared: two tables describe the same
    /// configuration iff their canonical forms are equal.
    pub fn canonical(&self) -> Self {
        let mut services: Vec<VirtualService> = self
            .services
            .iter()
            .map(|vs| {
                let mut dests = vs.dests.clone();
                dests.sort_by_key(Dest::id);
                VirtualService {
                    service: vs.service.normalized(),
                    dests,
                }
            })
            .collect();
        services.sort_by_key(|vs| vs.service.key);
        Self { services }
    }

    /// Finds a service.
    pub fn get(&self, key: &ServiceKey) -> Option<&VirtualService> {
        self.services.iter().find(|vs| vs.service.key == *key)
    }
}

/// A kernel listing: every service and destination with counters, as
/// `ipvsadm -L` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version and table size.
    pub info: Info,
    /// Services, each with its destinations, in kernel dump order.
    pub services: Vec<(ServiceEntry, Vec<DestEntry>)>,
}

impl Snapshot {
    /// The configuration part.
    pub fn table(&self) -> Table {
        Table {
            services: self
                .services
                .iter()
                .map(|(s, d)| VirtualService {
                    service: s.service.normalized(),
                    dests: d.iter().map(|d| d.dest.clone()).collect(),
                })
                .collect(),
        }
    }
}
