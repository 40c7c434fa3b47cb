//! The typed configuration: what a keepalived.conf says, as plain data.
//!
//! These types deliberately do not depend on the `lb-*` crates' own
//! configuration types: the director maps them onto those when it composes
//! the crates, so that parsing can be tested (and fuzzed) on its own.

use std::net::IpAddr;
use std::time::Duration;

use super::error::Pos;

/// A whole configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: Vec<SyncGroup>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
    /// Top-level `track_file NAME { file PATH; weight N; init_file [V] }` blocks.
    pub track_files: Vec<TrackFile>,
    /// The director's `fwmark_rules { … }` blocks (an extension keepalived
    /// skips as unknown), every rule in file order: the first match wins.
    pub fwmark_rules: Vec<FwmarkRule>,
}

/// One line of a `fwmark_rules` block, the director's spelling of an
/// iptables mangle `MARK` rule:
/// `PROTO [saddr PREFIX] daddr PREFIX [dport PORTS] mark N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwmarkRule {
    /// Where it is written.
    pub pos: Pos,
    /// What it matches and the mark it sets.
    pub rule: MarkRule,
}

/// What a [`FwmarkRule`] matches and the mark it sets (unset fields match
/// anything).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MarkRule {
    /// `tcp`, `udp`, `sctp`; `None` for `all`.
    pub protocol: Option<Protocol>,
    /// `saddr ADDR[/LEN]`, host bits cleared.
    pub saddr: Option<(IpAddr, u8)>,
    /// `daddr ADDR[/LEN]`, host bits cleared.
    pub daddr: (IpAddr, u8),
    /// `dport 80,443,10000:20000`: inclusive ranges; empty for any port.
    pub dports: Vec<(u16, u16)>,
    /// `mark N` (1..2³²−1).
    pub mark: u32,
}

/// `ADDR` for a host prefix (/32, /128), else `ADDR/LEN`: how
/// `fwmark_rules` and nftables write an address with its prefix.
#[derive(Debug, Clone, Copy)]
pub struct Prefix(pub IpAddr, pub u8);

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self(a, len) = *self;
        if len == if a.is_ipv4() { 32 } else { 128 } {
            write!(f, "{a}")
        } else {
            write!(f, "{a}/{len}")
        }
    }
}

/// The rule as a `fwmark_rules` line (`tcp saddr A/L daddr B dport
/// 80,10000:20000 mark 21`), which parses back to the same rule.
impl std::fmt::Display for MarkRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.protocol.map_or("all", Protocol::as_str))?;
        if let Some((a, len)) = self.saddr {
            write!(f, " saddr {}", Prefix(a, len))?;
        }
        write!(f, " daddr {}", Prefix(self.daddr.0, self.daddr.1))?;
        for (i, &(lo, hi)) in self.dports.iter().enumerate() {
            f.write_str(if i == 0 { " dport " } else { "," })?;
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}:{hi}")?;
            }
        }
        write!(f, " mark {}", self.mark)
    }
}

/// A top-level `track_file` block, shared by VRRP tracking and `FILE_CHECK`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFile {
    /// The name other blocks refer to.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// `file PATH`.
    pub file: String,
    /// `weight N [reverse]` (default 1).
    pub weight: i32,
    /// `reverse`.
    pub reverse: bool,
    /// `init_file [VALUE]`: create the file with this value if missing.
    pub init_file: Option<i64>,
}

/// `global_defs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobalDefs {
    /// `router_id`.
    pub router_id: Option<String>,
    /// `notification_email { … }`.
    pub notification_email: Vec<String>,
    /// `notification_email_from`.
    pub notification_email_from: Option<String>,
    /// `smtp_server`.
    pub smtp_server: Option<String>,
    /// `smtp_connect_timeout`.
    pub smtp_connect_timeout: Option<Duration>,
    /// `vrrp_version` (2 or 3), the default for instances.
    pub vrrp_version: Option<u8>,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<(String, Option<String>)>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `vrrp_strict`.
    pub vrrp_strict: bool,
    /// `lvs_timeouts tcp T tcpfin T udp T` (seconds).
    pub lvs_timeouts: LvsTimeouts,
    /// `vrrp_garp_master_delay` etc. are accepted through instance defaults.
    pub vrrp_garp_master_delay: Option<Duration>,
    /// `lvs_sync_daemon`: the IPVS connection-sync daemon.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
}

/// `lvs_sync_daemon IFACE [inst] VRRP_INSTANCE [id N] [maxlen N] [port N]
/// [ttl N] [group ADDR]` in `global_defs`: keepalived's current way to run
/// the kernel's connection-sync daemon, its role following the named VRRP
/// instance. (The older `lvs_sync_daemon IFACE VRRP_INSTANCE SYNCID`
/// positional form is accepted too.) Unset options keep the kernel's
/// defaults: sync id = the instance's VRID, group 224.0.0.81 (IPv4) or
/// ff02::81 (IPv6), port 8848, TTL 1, maxlen from the interface MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    /// The multicast interface.
    pub interface: String,
    /// The VRRP instance the daemon follows (`None`: not named; the
    /// daemon is then not run, as in keepalived).
    pub instance: Option<String>,
    /// `id`: the sync id.
    pub syncid: Option<u8>,
    /// `maxlen`: the largest sync message payload.
    pub maxlen: Option<u16>,
    /// `port`: the multicast UDP port.
    pub port: Option<u16>,
    /// `ttl`: the multicast TTL.
    pub ttl: Option<u8>,
    /// `group`: the multicast group.
    pub group: Option<IpAddr>,
    /// Where the keyword is.
    pub pos: Pos,
}

/// `lvs_timeouts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LvsTimeouts {
    /// TCP established.
    pub tcp: Option<u32>,
    /// TCP after FIN.
    pub tcpfin: Option<u32>,
    /// UDP.
    pub udp: Option<u32>,
}

/// `vrrp_script NAME { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScript {
    /// The name tracked by `track_script`.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// `script` (a command line).
    pub script: String,
    /// `interval` (default 1 s).
    pub interval: Duration,
    /// `timeout` (default: the interval).
    pub timeout: Option<Duration>,
    /// `weight` −253..253 (0: failure means FAULT).
    pub weight: i32,
    /// `weight … reverse`.
    pub weight_reverse: bool,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// `user USER [GROUP]`.
    pub user: Option<(String, Option<String>)>,
    /// `init_fail`.
    pub init_fail: bool,
}

/// `vrrp_sync_group NAME { group { … } … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    /// The group's name.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// Member instance names.
    pub members: Vec<String>,
    /// Notify scripts.
    pub notify: Notify,
}

/// The notify scripts of an instance or group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`.
    pub stop: Option<String>,
    /// `notify` (gets GROUP|INSTANCE name state priority).
    pub any: Option<String>,
}

/// The configured initial state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// `state BACKUP` (the default).
    #[default]
    Backup,
    /// `state MASTER`.
    Master,
}

/// `authentication { auth_type …; auth_pass … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `auth_type PASS` with its password (at most 8 bytes; longer is cut,
    /// as keepalived does, with a warning).
    Pass(String),
    /// `auth_type AH`.
    Ah(String),
}

/// One `virtual_ipaddress` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipEntry {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (default /32 or /128).
    pub prefix: u8,
    /// `dev IFACE` (default: the instance's interface).
    pub dev: Option<String>,
    /// `label NAME`.
    pub label: Option<String>,
    /// `scope SCOPE`.
    pub scope: Option<String>,
    /// `brd ADDR`.
    pub brd: Option<IpAddr>,
    /// Where it is written.
    pub pos: Pos,
}

/// One `track_interface` / `track_script` / `track_file` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The tracked object's name.
    pub name: String,
    /// `weight N` if given (otherwise the object's own weight, or 0 for an
    /// interface: failure means FAULT).
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
}

/// `vrrp_instance NAME { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    /// The instance's name.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// `state`.
    pub state: InitialState,
    /// `interface`.
    pub interface: String,
    /// `virtual_router_id` 1..255.
    pub vrid: u8,
    /// `priority` 1..255 (default 100).
    pub priority: u8,
    /// `advert_int` (default 1 s; v3 allows centiseconds).
    pub advert_int: Duration,
    /// `version` 2 or 3 (default: global `vrrp_version`, else 2; IPv6 is always 3).
    pub version: u8,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` (0..1000 s).
    pub preempt_delay: Duration,
    /// `authentication`.
    pub auth: Option<Auth>,
    /// `virtual_ipaddress`.
    pub vips: Vec<VipEntry>,
    /// `virtual_ipaddress_excluded`.
    pub vips_excluded: Vec<VipEntry>,
    /// `track_interface`.
    pub track_interface: Vec<Track>,
    /// `track_script`.
    pub track_script: Vec<Track>,
    /// `track_file`.
    pub track_file: Vec<Track>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`.
    pub unicast_peers: Vec<IpAddr>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `garp_master_delay` (default 5 s).
    pub garp_master_delay: Duration,
    /// `garp_master_repeat` (default 5).
    pub garp_master_repeat: u32,
    /// `garp_master_refresh` (default 0: off).
    pub garp_master_refresh: Duration,
    /// `garp_master_refresh_repeat` (default 1).
    pub garp_master_refresh_repeat: u32,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// `lvs_sync_daemon_interface`.
    pub lvs_sync_daemon_interface: Option<String>,
    /// `accept` / `no_accept` (default: accept unless `vrrp_strict`).
    pub accept: Option<bool>,
    /// Notify scripts.
    pub notify: Notify,
}

/// How a virtual server is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsKey {
    /// `virtual_server IP PORT`.
    Addr {
        /// The VIP.
        ip: IpAddr,
        /// The port (0 for all ports, with persistence).
        port: u16,
    },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// A forwarding method (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LvsMethod {
    /// `NAT` (keepalived's default).
    #[default]
    Nat,
    /// `DR`.
    Dr,
    /// `TUN [type ipip|gue port N [nocsum|csum|remcsum]|gre [nocsum|csum]]`.
    Tun(TunType),
}

/// Tunnel encapsulation for `TUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunType {
    /// IP-in-IP (the default).
    #[default]
    Ipip,
    /// GUE to a UDP port.
    Gue {
        /// The destination UDP port.
        port: u16,
        /// Checksum option.
        csum: TunCsum,
    },
    /// GRE.
    Gre {
        /// Checksum option.
        csum: TunCsum,
    },
}

/// Tunnel checksum options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunCsum {
    /// `nocsum` (default).
    #[default]
    None,
    /// `csum`.
    Csum,
    /// `remcsum` (GUE only).
    RemCsum,
}

/// Transport protocol of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lower-case name (`tcp`, `udp`, `sctp`), as `fwmark_rules` and
    /// nftables write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// Address family of a service (keepalived's `ip_family inet|inet6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum IpFamily {
    /// IPv4 (the default).
    #[default]
    Inet,
    /// IPv6.
    Inet6,
}

impl IpFamily {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            Self::Inet
        } else {
            Self::Inet6
        }
    }
}

/// `virtual_server_group NAME { … }` members.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServerGroup {
    /// The group's name.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// Address ranges: first address, number of addresses, port.
    pub ranges: Vec<(IpAddr, u32, u16)>,
    /// fwmarks.
    pub fwmarks: Vec<u32>,
}

/// `virtual_server … { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    /// Its address, fwmark or group.
    pub key: VsKey,
    /// Where it is defined.
    pub pos: Pos,
    /// `delay_loop` (default 60 s).
    pub delay_loop: Duration,
    /// `lb_algo` / `lvs_sched` (default `wlc`).
    pub scheduler: String,
    /// Scheduler flags (`sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`,
    /// `flag-1..3`), as written.
    pub sched_flags: Vec<String>,
    /// `ops` (one-packet scheduling).
    pub ops: bool,
    /// `lb_kind` / `lvs_method`.
    pub method: LvsMethod,
    /// `protocol`.
    pub protocol: Protocol,
    /// The address family: its address's for `IP PORT`; for a fwmark (and
    /// a group's fwmarks) `ip_family`, else its real servers' (tunnelled
    /// ones aside, as keepalived), else its sorry server's, else IPv4.
    pub family: IpFamily,
    /// `persistence_timeout` (keyword alone: 360 s).
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` (IPv4 netmask or IPv6 prefix length, as a prefix length).
    pub persistence_granularity: Option<u8>,
    /// `virtualhost`.
    pub virtualhost: Option<String>,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<(IpAddr, u16)>,
    /// `sorry_server_inhibit`.
    pub sorry_server_inhibit: bool,
    /// `quorum` (default 1).
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `alpha`: real servers start down until their first successful check.
    pub alpha: bool,
    /// `omega`: run quorum-down on shutdown.
    pub omega: bool,
    /// `inhibit_on_failure` (weight 0 instead of removal), inherited by real servers.
    pub inhibit_on_failure: bool,
    /// `ha_suspend`.
    pub ha_suspend: bool,
    /// `real_server` blocks.
    pub real_servers: Vec<RealServer>,
}

/// `real_server IP PORT { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    /// Address.
    pub ip: IpAddr,
    /// Port (default: the virtual server's).
    pub port: u16,
    /// Where it is defined.
    pub pos: Pos,
    /// `weight` (default 1; 0 allowed).
    pub weight: u32,
    /// `uthreshold`.
    pub uthreshold: u32,
    /// `lthreshold`.
    pub lthreshold: u32,
    /// `inhibit_on_failure`.
    pub inhibit_on_failure: bool,
    /// `lvs_method` override.
    pub method: Option<LvsMethod>,
    /// `notify_up`.
    pub notify_up: Option<String>,
    /// `notify_down`.
    pub notify_down: Option<String>,
    /// Checker blocks.
    pub checkers: Vec<Checker>,
}

/// Options every connecting checker shares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckCommon {
    /// `connect_ip`.
    pub connect_ip: Option<IpAddr>,
    /// `connect_port`.
    pub connect_port: Option<u16>,
    /// `bindto`.
    pub bindto: Option<IpAddr>,
    /// `bind_port`.
    pub bind_port: Option<u16>,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Option<Duration>,
    /// `retry` / `nb_get_retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `delay_loop` (overrides the virtual server's).
    pub delay_loop: Option<Duration>,
    /// `alpha`.
    pub alpha: bool,
}

/// A `url { … }` block of HTTP_GET / SSL_GET.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `digest` (32 hex digits, lowercased).
    pub digest: Option<String>,
    /// `status_code` ranges (inclusive); empty means 200–299.
    pub status: Vec<(u16, u16)>,
    /// `virtualhost`.
    pub virtualhost: Option<String>,
    /// `regex`.
    pub regex: Option<String>,
    /// `regex_no_match`.
    pub regex_no_match: bool,
    /// `regex_options`, checked against keepalived's names while parsing.
    pub regex_options: lb_health::probe::http::RegexOptions,
    /// `regex_min_offset`.
    pub regex_min_offset: usize,
    /// `regex_max_offset` (a match must start at or before it).
    pub regex_max_offset: Option<usize>,
}

/// One checker block.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    /// Where it is defined.
    pub pos: Pos,
    /// Shared options.
    pub common: CheckCommon,
    /// The kind and its own options.
    pub kind: CheckKind,
}

/// The checker kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `TCP_CHECK`.
    Tcp,
    /// `HTTP_GET` / `SSL_GET`.
    Http {
        /// `SSL_GET`.
        ssl: bool,
        /// `url` blocks.
        urls: Vec<Url>,
        /// `http_protocol` (`1.0`, `1.0C`, `1.1`).
        protocol: Option<String>,
        /// `virtualhost` for all urls.
        virtualhost: Option<String>,
        /// `enable_sni`.
        enable_sni: bool,
        /// `sni_name`.
        sni_name: Option<String>,
    },
    /// `SMTP_CHECK`.
    Smtp {
        /// `helo_name`.
        helo_name: Option<String>,
    },
    /// `DNS_CHECK`.
    Dns {
        /// `type` (default SOA).
        qtype: String,
        /// `name` (default ".").
        name: String,
    },
    /// `UDP_CHECK`.
    Udp {
        /// `payload` bytes.
        payload: Vec<u8>,
        /// `require_reply`: the expected reply pattern (hex, `X` wildcards kept
        /// as written), or `Some("")` for "any reply".
        require_reply: Option<String>,
    },
    /// `PING_CHECK`.
    Ping,
    /// `MISC_CHECK`.
    Misc {
        /// `misc_path`.
        path: String,
        /// `misc_timeout`.
        timeout: Option<Duration>,
        /// `misc_dynamic`.
        dynamic: bool,
        /// `user USER [GROUP]`.
        user: Option<(String, Option<String>)>,
    },
    /// `FILE_CHECK`.
    File {
        /// `track_file` name.
        track_file: String,
        /// `weight` and `reverse`.
        weight: Option<(i32, bool)>,
    },
}
