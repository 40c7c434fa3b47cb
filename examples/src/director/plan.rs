//! The composition core, pure: from the configuration, the health of each
//! real server and whether this director is master, the dataplane table it
//! must hold. Both dataplanes (and the status output) are driven by it, and
//! a reload is "compute the new plan, apply the difference".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use crate::config::{
    Config, IpFamily, LvsMethod, MarkRule, Protocol, RealServer, VirtualServer, VsKey,
};

/// What identifies a service in the dataplane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SvcKey {
    /// Protocol, address, port.
    Addr(Protocol, IpAddr, u16),
    /// Firewall mark and the service's address family (IPVS keys fwmark
    /// services by both).
    Fwmark(u32, IpFamily),
}

impl fmt::Display for SvcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(p, ip, port) => {
                let p = match p {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                    Protocol::Sctp => "SCTP",
                };
                match ip {
                    IpAddr::V4(a) => write!(f, "{p}  {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p}  [{a}]:{port}"),
                }
            }
            Self::Fwmark(m, IpFamily::Inet) => write!(f, "FWM  {m}"),
            Self::Fwmark(m, IpFamily::Inet6) => write!(f, "FWM  {m} IPv6"),
        }
    }
}

impl SvcKey {
    /// The service's address family.
    pub fn family(&self) -> IpFamily {
        match self {
            Self::Addr(_, ip, _) => IpFamily::of(*ip),
            Self::Fwmark(_, f) => *f,
        }
    }
}

/// A real server's identity across reloads: its service and address.
pub type RsId = (SvcKey, IpAddr, u16);

/// One service as the dataplane must hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedService {
    /// Its key.
    pub key: SvcKey,
    /// Scheduler name (`wlc`, …).
    pub scheduler: String,
    /// Persistence timeout in seconds and client prefix length.
    pub persistence: Option<(u32, u8)>,
    /// One-packet scheduling.
    pub ops: bool,
    /// Its destinations, in configuration order.
    pub dests: Vec<PlannedDest>,
    /// Quorum is lost (the sorry server, if any, is in `dests`).
    pub quorum_lost: bool,
    /// The `fwmark_rules` that mark packets for this service (fwmark
    /// services only): installed exactly while the service is planned.
    pub marks: Vec<PlannedMark>,
}

/// A marking rule, with its place among all the configuration's rules:
/// the first match wins across marks, so the dataplanes install the rules
/// of every planned service merged back into this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlannedMark {
    /// Index in [`Config::fwmark_rules`].
    pub order: usize,
    /// The rule.
    pub rule: MarkRule,
}

/// The marking rules of a plan, in configuration order, each once (a mark
/// served twice, by a virtual server and a group, lists its rules twice).
///
/// ```
/// use std::collections::HashMap;
/// use lb_examples::director::plan::{marks, plan, Mastership, QuorumState};
/// let cfg = lb_examples::config::parse_str("x.conf", "fwmark_rules {
///   tcp daddr 192.0.2.1 dport 80,443 mark 7
/// }
/// virtual_server fwmark 7 {
///   lb_kind DR
///   real_server 10.0.0.1 80 { weight 1 }
/// }").unwrap().config;
/// let p = plan(&cfg, &HashMap::new(), &Mastership::all(), &mut QuorumState::new());
/// assert_eq!(marks(&p)[0].dports, [(80, 80), (443, 443)]);
/// assert!(marks(&plan(&cfg, &HashMap::new(), &Mastership::none(), &mut QuorumState::new())).is_empty());
/// ```
pub fn marks(plan: &[PlannedService]) -> Vec<MarkRule> {
    let mut all: Vec<&PlannedMark> = plan.iter().flat_map(|p| &p.marks).collect();
    all.sort_by_key(|m| m.order);
    all.dedup_by_key(|m| m.order);
    all.into_iter().map(|m| m.rule.clone()).collect()
}

/// One destination as the dataplane must hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedDest {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub method: LvsMethod,
    /// Weight (0: inhibited, no new flows).
    pub weight: u32,
    /// The sorry server.
    pub sorry: bool,
}

/// A real server's health as the checkers last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Passing its checks.
    pub up: bool,
    /// Dynamic weight reported by the checker (`None`: the configured one).
    pub weight: Option<u32>,
    /// Why it last failed, if it did.
    pub last_failure: Option<String>,
}

/// The service key of a virtual server (`None` for groups, which the
/// caller expands).
pub fn svc_key(vs: &VirtualServer) -> Option<SvcKey> {
    match &vs.key {
        VsKey::Addr { ip, port } => Some(SvcKey::Addr(vs.protocol, *ip, *port)),
        VsKey::Fwmark(m) => Some(SvcKey::Fwmark(*m, vs.family)),
        VsKey::Group(_) => None,
    }
}

/// The health a real server starts with: up, unless it has checkers and
/// `alpha` is set (on the virtual server or a checker).
pub fn initial_health(vs: &VirtualServer, rs: &RealServer) -> Health {
    let alpha = !rs.checkers.is_empty() && (vs.alpha || rs.checkers.iter().any(|c| c.common.alpha));
    Health {
        up: !alpha,
        weight: None,
        last_failure: None,
    }
}

/// Which services this director serves, from its VRRP instances' states:
/// mastership is per VIP, so two directors can each be master of one
/// instance and serve its VIPs (the active/active pair).
///
/// - A `virtual_server IP PORT` whose address is a VIP (or excluded VIP)
///   of some instance is served while an instance holding that address is
///   master here.
/// - A `virtual_server fwmark N` is tied to the VIPs its `fwmark_rules`
///   match (a rule's `daddr` prefix containing the VIP) and served while
///   any of them is held here. Its one IPVS service carries the traffic of
///   all those VIPs, so it is programmed while at least one is held; rules
///   for a VIP held elsewhere are harmless as that traffic does not arrive.
/// - Services tied to no instance (an address no instance holds, a mark
///   whose rules match no VIP) keep the director-wide rule: served while
///   any instance is master, or always without VRRP.
///
/// ```
/// use lb_examples::director::plan::{Mastership, SvcKey};
/// use lb_examples::config::Protocol;
/// let cfg = lb_examples::config::parse_str("x.conf", "
/// vrrp_instance A { interface eth0
///   virtual_router_id 1
///   priority 100
///   virtual_ipaddress { 192.0.2.1/24 } }
/// vrrp_instance B { interface eth0
///   virtual_router_id 2
///   priority 100
///   virtual_ipaddress { 192.0.2.2/24 } }").unwrap().config;
/// let m = Mastership::from_config(&cfg, |name| name == "A");
/// let svc = |ip: &str| SvcKey::Addr(Protocol::Tcp, ip.parse().unwrap(), 80);
/// assert!(m.serves(&cfg, svc("192.0.2.1")));
/// assert!(!m.serves(&cfg, svc("192.0.2.2")));
/// assert!(m.serves(&cfg, svc("198.51.100.7"))); // no instance: any master
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mastership {
    /// Services tied to no instance are served (no VRRP, or some instance
    /// is master).
    pub any: bool,
    /// VIPs and excluded VIPs of the instances that are master here.
    pub held: HashSet<IpAddr>,
    /// VIPs and excluded VIPs of every instance.
    pub claimed: HashSet<IpAddr>,
}

impl Mastership {
    /// Serves everything (no VRRP).
    pub fn all() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Serves nothing (backup of every instance, or shutting down).
    pub fn none() -> Self {
        Self::default()
    }

    /// From the configuration and which instances are master here.
    pub fn from_config(cfg: &Config, is_master: impl Fn(&str) -> bool) -> Self {
        let mut m = Self {
            any: cfg.vrrp_instances.is_empty(),
            ..Self::default()
        };
        for inst in &cfg.vrrp_instances {
            let master = is_master(&inst.name);
            m.any |= master;
            for v in inst.vips.iter().chain(&inst.vips_excluded) {
                m.claimed.insert(v.addr);
                if master {
                    m.held.insert(v.addr);
                }
            }
        }
        m
    }

    /// Whether the service `key` of `cfg` is to be programmed.
    pub fn serves(&self, cfg: &Config, key: SvcKey) -> bool {
        match key {
            SvcKey::Addr(_, ip, _) if self.claimed.contains(&ip) => self.held.contains(&ip),
            SvcKey::Addr(..) => self.any,
            SvcKey::Fwmark(m, _) => {
                let mut tied = self.claimed.iter().filter(|v| {
                    cfg.fwmark_rules
                        .iter()
                        .any(|r| r.rule.mark == m && in_prefix(**v, r.rule.daddr))
                });
                match tied.next() {
                    None => self.any,
                    Some(first) => self.held.contains(first) || tied.any(|v| self.held.contains(v)),
                }
            }
        }
    }
}

/// `ip` lies in `net/len` (same family).
fn in_prefix(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The role of the IPVS connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRole {
    /// Sends this director's connections (its instance is master).
    Master,
    /// Receives the master's (its instance is backup, faulty or starting).
    Backup,
}

/// The IPVS connection-sync daemon the director must run (kernel IPVS
/// dataplane only), as keepalived: one per director, from `global_defs`'s
/// `lvs_sync_daemon` or else from the first instance that sets
/// `lvs_sync_daemon_interface`. Its role follows that instance (master while
/// it is master, backup otherwise); its sync id defaults to the instance's
/// VRID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// Master or backup.
    pub role: SyncRole,
    /// The multicast interface.
    pub interface: String,
    /// The sync id (default: the instance's VRID).
    pub syncid: u8,
    /// Largest sync message (`None`: the kernel's default, from the MTU).
    pub maxlen: Option<u16>,
    /// Multicast group (`None`: 224.0.0.81 / ff02::81).
    pub group: Option<IpAddr>,
    /// Multicast port (`None`: 8848).
    pub port: Option<u16>,
    /// Multicast TTL (`None`: 1).
    pub ttl: Option<u8>,
}

/// The sync daemon `cfg` asks for, given which instances are master here
/// (`None`: none configured, or `lvs_sync_daemon` names no existing
/// instance).
///
/// ```
/// use lb_examples::director::plan::{sync_daemon, SyncRole};
/// let cfg = lb_examples::config::parse_str("x.conf", "vrrp_instance A {
///   interface eth0
///   virtual_router_id 51
///   priority 100
///   lvs_sync_daemon_interface eth1
/// }").unwrap().config;
/// let d = sync_daemon(&cfg, |_| true).unwrap();
/// assert_eq!((d.role, d.interface.as_str(), d.syncid), (SyncRole::Master, "eth1", 51));
/// assert_eq!(sync_daemon(&cfg, |_| false).unwrap().role, SyncRole::Backup);
///
/// // keepalived's current form, in global_defs:
/// let cfg = lb_examples::config::parse_str("x.conf", "global_defs {
///   lvs_sync_daemon eth1 inst A id 7 port 8850 ttl 2
/// }
/// vrrp_instance A {
///   interface eth0
///   virtual_router_id 51
///   priority 100
/// }").unwrap().config;
/// let d = sync_daemon(&cfg, |_| true).unwrap();
/// assert_eq!((d.syncid, d.port, d.ttl), (7, Some(8850), Some(2)));
/// ```
pub fn sync_daemon(cfg: &Config, is_master: impl Fn(&str) -> bool) -> Option<SyncDaemon> {
    let role = |name: &str| {
        if is_master(name) {
            SyncRole::Master
        } else {
            SyncRole::Backup
        }
    };
    if let Some(g) = &cfg.global.lvs_sync_daemon {
        let inst = cfg
            .vrrp_instances
            .iter()
            .find(|i| Some(&i.name) == g.instance.as_ref())?;
        return Some(SyncDaemon {
            role: role(&inst.name),
            interface: g.interface.clone(),
            syncid: g.syncid.unwrap_or(inst.vrid),
            maxlen: g.maxlen,
            group: g.group,
            port: g.port,
            ttl: g.ttl,
        });
    }
    let inst = cfg
        .vrrp_instances
        .iter()
        .find(|i| i.lvs_sync_daemon_interface.is_some())?;
    Some(SyncDaemon {
        role: role(&inst.name),
        interface: inst.lvs_sync_daemon_interface.clone()?,
        syncid: inst.vrid,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    })
}

/// Quorum state per service, kept between plans (hysteresis needs memory).
pub type QuorumState = HashMap<SvcKey, bool>;

/// Computes the dataplane table. `master`: which services this director
/// serves ([`Mastership::all`] without VRRP instances). `health` misses servers that
/// have not reported yet: they get [`initial_health`]. `quorum` is updated:
/// a service's quorum goes down when the sum of live weights falls below
/// `quorum - hysteresis` and comes back at `quorum + hysteresis`, as in
/// keepalived.
///
/// ```
/// use std::collections::HashMap;
/// use lb_examples::director::plan::{plan, Mastership, QuorumState};
/// let cfg = lb_examples::config::parse_str("x.conf", "virtual_server 192.0.2.1 80 {
///   lb_kind DR
///   real_server 10.0.0.1 80 { weight 3 }
/// }").unwrap().config;
/// let mut q = QuorumState::new();
/// let p = plan(&cfg, &HashMap::new(), &Mastership::all(), &mut q);
/// assert_eq!(p[0].dests[0].weight, 3);
/// assert!(plan(&cfg, &HashMap::new(), &Mastership::none(), &mut q).is_empty());
/// ```
pub fn plan(
    cfg: &Config,
    health: &HashMap<RsId, Health>,
    master: &Mastership,
    quorum: &mut QuorumState,
) -> Vec<PlannedService> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for key in expand(cfg, vs) {
            if master.serves(cfg, key) {
                out.push(plan_one(cfg, vs, key, health, quorum));
            }
        }
    }
    out
}

/// The service keys a virtual server stands for (a group has several).
pub fn expand(cfg: &Config, vs: &VirtualServer) -> Vec<SvcKey> {
    match &vs.key {
        VsKey::Group(name) => {
            let Some(g) = cfg.virtual_server_groups.iter().find(|g| &g.name == name) else {
                return Vec::new();
            };
            let mut keys = Vec::new();
            for &(first, count, port) in &g.ranges {
                for i in 0..count.min(256) {
                    if let Some(ip) = add_to(first, i) {
                        keys.push(SvcKey::Addr(vs.protocol, ip, port));
                    }
                }
            }
            keys.extend(g.fwmarks.iter().map(|&m| SvcKey::Fwmark(m, vs.family)));
            keys
        }
        _ => svc_key(vs).into_iter().collect(),
    }
}

fn add_to(ip: IpAddr, i: u32) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a).checked_add(i).map(|v| IpAddr::V4(v.into())),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(i.into())
            .map(|v| IpAddr::V6(v.into())),
    }
}

fn plan_one(
    cfg: &Config,
    vs: &VirtualServer,
    key: SvcKey,
    health: &HashMap<RsId, Health>,
    quorum: &mut QuorumState,
) -> PlannedService {
    let mut dests = Vec::new();
    let mut live_weight: u64 = 0;
    for rs in &vs.real_servers {
        let id = (key, rs.ip, rs.port);
        let h = health
            .get(&id)
            .cloned()
            .unwrap_or_else(|| initial_health(vs, rs));
        let method = rs.method.unwrap_or(vs.method);
        if h.up {
            let weight = h.weight.unwrap_or(rs.weight);
            live_weight += u64::from(weight);
            dests.push(PlannedDest {
                addr: rs.ip,
                port: rs.port,
                method,
                weight,
                sorry: false,
            });
        } else if rs.inhibit_on_failure {
            dests.push(PlannedDest {
                addr: rs.ip,
                port: rs.port,
                method,
                weight: 0,
                sorry: false,
            });
        }
    }
    let q = u64::from(vs.quorum);
    let hy = u64::from(vs.hysteresis);
    let was_up = *quorum.get(&key).unwrap_or(&true);
    let up = if was_up {
        live_weight >= q.saturating_sub(hy)
    } else {
        live_weight >= q + hy
    };
    quorum.insert(key, up);
    if !up && let Some((ip, port)) = vs.sorry_server {
        dests.push(PlannedDest {
            addr: ip,
            port,
            method: vs.method,
            weight: 1,
            sorry: true,
        });
    }
    PlannedService {
        key,
        scheduler: vs.scheduler.clone(),
        // The default granularity is the whole address (/32, /128).
        persistence: vs.persistence_timeout.map(|t| {
            let max = match key.family() {
                IpFamily::Inet => 32,
                IpFamily::Inet6 => 128,
            };
            (t, vs.persistence_granularity.unwrap_or(max))
        }),
        ops: vs.ops,
        dests,
        quorum_lost: !up,
        marks: match key {
            SvcKey::Fwmark(m, _) => cfg
                .fwmark_rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.rule.mark == m)
                .map(|(order, r)| PlannedMark {
                    order,
                    rule: r.rule.clone(),
                })
                .collect(),
            SvcKey::Addr(..) => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(extra: &str) -> Config {
        crate::config::parse_str(
            "t.conf",
            &format!(
                "virtual_server 192.0.2.1 80 {{
                   lb_kind DR
                   {extra}
                   sorry_server 10.0.0.99 80
                   real_server 10.0.0.1 80 {{
                     weight 2
                     TCP_CHECK {{ }}
                   }}
                   real_server 10.0.0.2 80 {{
                     weight 3
                     inhibit_on_failure
                     TCP_CHECK {{ }}
                   }}
                 }}"
            ),
        )
        .unwrap()
        .config
    }

    fn key() -> SvcKey {
        SvcKey::Addr(Protocol::Tcp, "192.0.2.1".parse().unwrap(), 80)
    }

    fn down(ip: &str) -> (RsId, Health) {
        (
            (key(), ip.parse().unwrap(), 80),
            Health {
                up: false,
                weight: None,
                last_failure: Some("L4Refused".into()),
            },
        )
    }

    fn weights(p: &PlannedService) -> Vec<(String, u32, bool)> {
        p.dests
            .iter()
            .map(|d| (d.addr.to_string(), d.weight, d.sorry))
            .collect()
    }

    #[test]
    fn down_removes_or_inhibits() {
        let c = cfg("");
        let mut q = QuorumState::new();
        let h: HashMap<_, _> = [down("10.0.0.1"), down("10.0.0.2")].into();
        let p = plan(&c, &h, &Mastership::all(), &mut q);
        assert_eq!(
            weights(&p[0]),
            [("10.0.0.2".into(), 0, false), ("10.0.0.99".into(), 1, true)]
        );
        assert!(p[0].quorum_lost);
        let h: HashMap<_, _> = [down("10.0.0.1")].into();
        let p = plan(&c, &h, &Mastership::all(), &mut q);
        assert_eq!(weights(&p[0]), [("10.0.0.2".into(), 3, false)]);
    }

    #[test]
    fn alpha_starts_down() {
        let c = cfg("alpha");
        let p = plan(
            &c,
            &HashMap::new(),
            &Mastership::all(),
            &mut QuorumState::new(),
        );
        assert_eq!(
            weights(&p[0]),
            [("10.0.0.2".into(), 0, false), ("10.0.0.99".into(), 1, true)]
        );
    }

    #[test]
    fn quorum_hysteresis() {
        // Weights 2 and 3; quorum 4, hysteresis 1: down below 3, up at 5.
        let c = cfg("quorum 4\nhysteresis 1");
        let mut q = QuorumState::new();
        let only2: HashMap<_, _> = [down("10.0.0.1")].into();
        let only1: HashMap<_, _> = [down("10.0.0.2")].into();
        // 3 live: still up (>= 4 - 1).
        assert!(!plan(&c, &only2, &Mastership::all(), &mut q)[0].quorum_lost);
        // 2 live: lost.
        assert!(plan(&c, &only1, &Mastership::all(), &mut q)[0].quorum_lost);
        // 3 live again: not yet back (needs 4 + 1).
        assert!(plan(&c, &only2, &Mastership::all(), &mut q)[0].quorum_lost);
        // 5 live: back.
        assert!(!plan(&c, &HashMap::new(), &Mastership::all(), &mut q)[0].quorum_lost);
    }

    /// Rules follow their services: a group's fwmark entries get theirs as
    /// a `virtual_server fwmark` does, rules of marks nobody serves are
    /// never planned, the merged list keeps the file's order (first match
    /// wins across marks), and a backup plans none.
    #[test]
    fn marks_follow_their_services() {
        let c = crate::config::parse_str(
            "t.conf",
            "fwmark_rules {
               tcp daddr 192.0.2.1 dport 21,10000:20000 mark 21
               tcp daddr 192.0.2.1 dport 80,443 mark 100
               udp daddr 192.0.2.9 mark 9
               tcp daddr 192.0.2.0/24 mark 100
             }
             virtual_server_group G {
               fwmark 21
               192.0.2.5 80
             }
             virtual_server fwmark 100 {
               lb_kind DR
               real_server 10.0.0.1 80 { weight 1 }
             }
             virtual_server group G {
               lb_kind DR
               persistence_timeout 60
               real_server 10.0.0.2 80 { weight 1 }
             }",
        )
        .unwrap()
        .config;
        let mut q = QuorumState::new();
        let p = plan(&c, &HashMap::new(), &Mastership::all(), &mut q);
        let orders = |k: SvcKey| -> Vec<usize> {
            p.iter()
                .find(|s| s.key == k)
                .unwrap()
                .marks
                .iter()
                .map(|m| m.order)
                .collect()
        };
        assert_eq!(orders(SvcKey::Fwmark(100, IpFamily::Inet)), [1, 3]);
        assert_eq!(orders(SvcKey::Fwmark(21, IpFamily::Inet)), [0]);
        assert!(
            orders(SvcKey::Addr(
                Protocol::Tcp,
                "192.0.2.5".parse().unwrap(),
                80
            ))
            .is_empty()
        );
        let all: Vec<u32> = marks(&p).iter().map(|r| r.mark).collect();
        assert_eq!(all, [21, 100, 100]);
        assert!(marks(&plan(&c, &HashMap::new(), &Mastership::none(), &mut q)).is_empty());
    }

    /// Two instances with a VIP each (the active/active pair): only the
    /// services of the VIPs held here are planned; a fwmark service
    /// follows the VIPs its rules match; a service on no VIP, or a mark
    /// whose rules match none, follows "any instance master".
    #[test]
    fn mastership_is_per_vip() {
        let c = crate::config::parse_str(
            "t.conf",
            "vrrp_instance VI_1 {
               interface eth0
               virtual_router_id 1
               priority 100
               virtual_ipaddress { 192.0.2.1/24 }
             }
             vrrp_instance VI_2 {
               interface eth0
               virtual_router_id 2
               priority 100
               virtual_ipaddress { 192.0.2.2/24 }
               virtual_ipaddress_excluded { 2001:db8::2/64 }
             }
             fwmark_rules {
               tcp daddr 192.0.2.1 dport 443 mark 1
               tcp daddr 192.0.2.0/24 dport 8080 mark 12
               tcp daddr 2001:db8::2 mark 2
               tcp daddr 198.51.100.0/24 mark 9
             }
             virtual_server 192.0.2.1 80 { real_server 10.0.0.1 80 { } }
             virtual_server 192.0.2.2 80 { real_server 10.0.0.1 80 { } }
             virtual_server 2001:db8::2 80 { real_server 2001:db8::9 80 { } }
             virtual_server 198.51.100.1 80 { real_server 10.0.0.1 80 { } }
             virtual_server fwmark 1 { real_server 10.0.0.1 443 { } }
             virtual_server fwmark 2 { real_server 2001:db8::9 80 { } }
             virtual_server fwmark 12 { real_server 10.0.0.1 8080 { } }
             virtual_server fwmark 9 { real_server 10.0.0.1 80 { } }",
        )
        .unwrap()
        .config;
        let keys = |masters: &[&str]| -> Vec<String> {
            let m = Mastership::from_config(&c, |n| masters.contains(&n));
            plan(&c, &HashMap::new(), &m, &mut QuorumState::new())
                .iter()
                .map(|p| p.key.to_string())
                .collect()
        };
        let untied = ["TCP  198.51.100.1:80", "FWM  9"];
        let one = ["TCP  192.0.2.1:80", "FWM  1", "FWM  12"];
        let two = [
            "TCP  192.0.2.2:80",
            "TCP  [2001:db8::2]:80",
            "FWM  2 IPv6",
            "FWM  12",
        ];
        let sorted = |mut v: Vec<&str>| {
            v.sort_unstable();
            v.dedup();
            v.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let got = |masters: &[&str]| sorted(keys(masters).iter().map(String::as_str).collect());
        assert_eq!(got(&["VI_1"]), sorted([&one[..], &untied].concat()));
        assert_eq!(got(&["VI_2"]), sorted([&two[..], &untied].concat()));
        assert_eq!(
            got(&["VI_1", "VI_2"]),
            sorted([&one[..], &two, &untied].concat())
        );
        assert!(keys(&[]).is_empty());
        // Without VRRP everything is served.
        let mut novrrp = c.clone();
        novrrp.vrrp_instances.clear();
        let m = Mastership::from_config(&novrrp, |_| false);
        assert_eq!(m, Mastership::all());
        assert_eq!(
            plan(&novrrp, &HashMap::new(), &m, &mut QuorumState::new()).len(),
            8
        );
    }

    /// The first instance naming an interface owns the sync daemon; its
    /// role follows that instance only.
    #[test]
    fn sync_daemon_follows_its_instance() {
        let c = crate::config::parse_str(
            "t.conf",
            "vrrp_instance A {
               interface eth0
               virtual_router_id 7
               priority 100
             }
             vrrp_instance B {
               interface eth0
               virtual_router_id 8
               priority 100
               lvs_sync_daemon_interface eth1
             }
             vrrp_instance C {
               interface eth0
               virtual_router_id 9
               priority 100
               lvs_sync_daemon_interface eth2
             }",
        )
        .unwrap()
        .config;
        let want = |role| {
            Some(SyncDaemon {
                role,
                interface: "eth1".into(),
                syncid: 8,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            })
        };
        assert_eq!(sync_daemon(&c, |n| n == "B"), want(SyncRole::Master));
        assert_eq!(sync_daemon(&c, |n| n != "B"), want(SyncRole::Backup));
        assert_eq!(sync_daemon(&Config::default(), |_| true), None);
    }

    /// `global_defs { lvs_sync_daemon … }` wins over an instance's
    /// `lvs_sync_daemon_interface`, follows the instance it names, carries
    /// its options, and defaults the sync id to that instance's VRID.
    #[test]
    fn global_sync_daemon_follows_the_named_instance() {
        let conf = |opts: &str| {
            crate::config::parse_str(
                "t.conf",
                &format!(
                    "global_defs {{
                       lvs_sync_daemon sync0 {opts}
                     }}
                     vrrp_instance A {{
                       interface eth0
                       virtual_router_id 7
                       priority 100
                       lvs_sync_daemon_interface eth1
                     }}
                     vrrp_instance B {{
                       interface eth0
                       virtual_router_id 8
                       priority 100
                     }}"
                ),
            )
            .unwrap()
            .config
        };
        let c = conf("inst B maxlen 1400 port 8850 ttl 3 group 239.1.2.3");
        let d = sync_daemon(&c, |n| n == "B").unwrap();
        assert_eq!(
            d,
            SyncDaemon {
                role: SyncRole::Master,
                interface: "sync0".into(),
                syncid: 8,
                maxlen: Some(1400),
                group: Some("239.1.2.3".parse().unwrap()),
                port: Some(8850),
                ttl: Some(3),
            }
        );
        assert_eq!(
            sync_daemon(&c, |n| n == "A").unwrap().role,
            SyncRole::Backup
        );
        // The positional form: instance, then sync id.
        let d = sync_daemon(&conf("A 99"), |_| false).unwrap();
        assert_eq!((d.interface.as_str(), d.syncid), ("sync0", 99));
        assert_eq!(
            sync_daemon(&conf("inst A id 0"), |_| false).unwrap().syncid,
            0
        );
        // No instance, or an unknown one: no daemon (keepalived clears it).
        assert_eq!(sync_daemon(&conf(""), |_| true), None);
        assert_eq!(sync_daemon(&conf("inst Z"), |_| true), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Against a direct model: live servers carry their weight,
        /// inhibited dead ones weight 0, other dead ones are absent, and the
        /// sorry server is there exactly when the live weight is below quorum
        /// (no hysteresis).
        #[test]
        fn matches_model(ups in proptest::collection::vec(any::<bool>(), 2), quorum in 1u32..7) {
            let c = cfg(&format!("quorum {quorum}"));
            let ips = ["10.0.0.1", "10.0.0.2"];
            let h: HashMap<_, _> = ips.iter().zip(&ups).filter(|(_, u)| !**u).map(|(ip, _)| down(ip)).collect();
            let p = plan(&c, &h, &Mastership::all(), &mut QuorumState::new());
            let mut want = Vec::new();
            let mut live = 0;
            if ups[0] { want.push(("10.0.0.1".to_string(), 2, false)); live += 2; }
            want.push(("10.0.0.2".to_string(), if ups[1] { 3 } else { 0 }, false));
            if ups[1] { live += 3; }
            if live < quorum { want.push(("10.0.0.99".to_string(), 1, true)); }
            prop_assert_eq!(weights(&p[0]), want);
        }
    }
}
