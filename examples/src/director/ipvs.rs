//! The kernel dataplane: the plan as an IPVS table, applied with
//! `lb-ipvs`'s reconcile (one netlink operation per difference, edits in
//! place so connections and counters survive).
//!
//! Only services this director manages are touched: the kernel table is
//! filtered to the keys of the configuration before it is diffed, so other
//! services (another tool's) are left alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lb_ipvs::{
    Client, Daemon, DaemonState, Dest, Family, ForwardMethod, Op, Service, ServiceFlags,
    ServiceKey, Table, TunnelFlags, TunnelType, VirtualService,
};

use super::marks::{MarkTable, Mode};
use super::plan::{self, PlannedService, SvcKey, SyncDaemon, SyncRole};
use super::userspace::{DestStats, Shared};
use crate::config::{IpFamily, LvsMethod, Protocol, TunCsum, TunType};

fn key(k: SvcKey) -> Option<ServiceKey> {
    Some(match k {
        SvcKey::Addr(Protocol::Tcp, ip, port) => ServiceKey::tcp(ip, port),
        SvcKey::Addr(Protocol::Udp, ip, port) => ServiceKey::udp(ip, port),
        SvcKey::Addr(Protocol::Sctp, ..) => return None,
        SvcKey::Fwmark(mark, f) => ServiceKey::Fwmark {
            family: match f {
                IpFamily::Inet => Family::Inet,
                IpFamily::Inet6 => Family::Inet6,
            },
            mark,
        },
    })
}

/// The plan as an IPVS table.
///
/// ```
/// use lb_examples::director::{ipvs::table, plan::{plan, Mastership, QuorumState}};
/// let cfg = lb_examples::config::parse_str("x.conf", "virtual_server 192.0.2.1 80 {
///   lb_algo rr
///   lb_kind DR
///   persistence_timeout 60
///   real_server 10.0.0.1 80 {
///     weight 3
///   }
/// }").unwrap().config;
/// let t = table(&plan(&cfg, &Default::default(), &Mastership::all(), &mut QuorumState::new()));
/// assert_eq!(t.services[0].service.scheduler, "rr");
/// assert_eq!(t.services[0].service.timeout, 60);
/// assert_eq!(t.services[0].dests[0].weight, 3);
/// ```
pub fn table(plan: &[PlannedService]) -> Table {
    let mut services = Vec::new();
    for p in plan {
        let Some(k) = key(p.key) else { continue };
        let mut s = Service::new(k);
        s.scheduler.clone_from(&p.scheduler);
        if let Some((t, prefix)) = p.persistence {
            s.flags.0 |= ServiceFlags::PERSISTENT;
            s.timeout = t;
            // IPv6: the prefix length; IPv4: the netmask.
            s.netmask = match p.key.family() {
                IpFamily::Inet6 => u32::from(prefix),
                _ if prefix == 0 => 0,
                _ => u32::MAX << (32 - u32::from(prefix.min(32))),
            };
        }
        if p.ops {
            s.flags.0 |= ServiceFlags::ONEPACKET;
        }
        let dests = p
            .dests
            .iter()
            .map(|d| {
                let mut x = Dest::new(d.addr, d.port);
                x.weight = i32::try_from(d.weight).unwrap_or(i32::MAX);
                x.fwd = match d.method {
                    LvsMethod::Nat => ForwardMethod::Masq,
                    LvsMethod::Dr => ForwardMethod::Route,
                    LvsMethod::Tun(_) => ForwardMethod::Tunnel,
                };
                if let LvsMethod::Tun(t) = d.method {
                    let (ty, port, csum) = match t {
                        TunType::Ipip => (TunnelType::Ipip, 0, TunCsum::None),
                        TunType::Gue { port, csum } => (TunnelType::Gue, port, csum),
                        TunType::Gre { csum } => (TunnelType::Gre, 0, csum),
                    };
                    x.tun_type = ty;
                    x.tun_port = port;
                    // IP_VS_TUNNEL_ENCAP_FLAG_{NOCSUM,CSUM,REMCSUM}.
                    x.tun_flags = TunnelFlags(match csum {
                        TunCsum::None => 0,
                        TunCsum::Csum => 1,
                        TunCsum::RemCsum => 2,
                    });
                }
                x
            })
            .collect();
        services.push(VirtualService { service: s, dests });
    }
    Table { services }
}

/// Brings the kernel's connection-sync daemons in line with `want`, as
/// keepalived: a daemon of the other role, or on another interface or sync
/// id, is stopped; the wanted one started. Only called once the
/// configuration asked for a daemon (others' daemons are left alone until
/// then); `None` stops them all.
fn sync_daemons(client: &mut Client, want: Option<&SyncDaemon>) {
    let running = match client.daemons() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "IPVS: cannot list the sync daemons");
            return;
        }
    };
    let want = want.map(|w| {
        let role = match w.role {
            SyncRole::Master => DaemonState::Master,
            SyncRole::Backup => DaemonState::Backup,
        };
        let mut d = Daemon::new(role, &w.interface);
        d.syncid = w.syncid.into();
        d.sync_maxlen = w.maxlen.unwrap_or(0);
        d.mcast_group = w.group;
        d.mcast_port = w.port.unwrap_or(0);
        d.mcast_ttl = w.ttl.unwrap_or(0);
        d
    });
    // The kernel reports its defaults (maxlen, group, port, TTL) where the
    // configuration left them unset (0 / None here): compare only what the
    // configuration sets.
    let same = |r: &Daemon, w: &Daemon| {
        r.state == w.state
            && r.mcast_ifn == w.mcast_ifn
            && r.syncid == w.syncid
            && (w.sync_maxlen == 0 || r.sync_maxlen == w.sync_maxlen)
            && (w.mcast_group.is_none() || r.mcast_group == w.mcast_group)
            && (w.mcast_port == 0 || r.mcast_port == w.mcast_port)
            && (w.mcast_ttl == 0 || r.mcast_ttl == w.mcast_ttl)
    };
    let mut ops: Vec<Op> = running
        .iter()
        .filter(|r| !want.as_ref().is_some_and(|w| same(r, w)))
        .map(|r| Op::StopDaemon(r.state))
        .collect();
    if let Some(w) = want
        && !running.iter().any(|r| same(r, &w))
    {
        ops.push(Op::StartDaemon(w));
    }
    for op in ops {
        tracing::info!(%op, "IPVS sync daemon");
        if let Err(e) = client.apply(std::slice::from_ref(&op)) {
            tracing::warn!(%op, error = %e, "IPVS: sync daemon");
        }
    }
}

/// Runs the kernel dataplane until `shared.stop`: applies each new plan
/// (services this run ever installed and no longer wanted are deleted) and
/// the marking rules of its fwmark services (nftables, [`super::marks`]),
/// publishes counters, and finally applies the empty plan (which removes
/// the marking table too).
pub fn run(shared: Arc<Shared>) -> Result<(), String> {
    let mut client = Client::new().map_err(|e| format!("IPVS netlink: {e}"))?;
    let mut applied = u64::MAX;
    let mut ours: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut last_stats = Instant::now() - Duration::from_secs(10);
    let mut marks = MarkTable::new(Mode::Kernel);
    let mut sync_applied: Option<SyncDaemon> = None;
    let mut sync_managed = false;
    let apply = |client: &mut Client, plan: &[PlannedService], ours: &mut BTreeSet<ServiceKey>| {
        let want = table(plan);
        ours.extend(want.services.iter().map(|s| s.service.key));
        let current = match client.table() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "IPVS: cannot read the table");
                return;
            }
        };
        let current = Table {
            services: current
                .services
                .into_iter()
                .filter(|s| ours.contains(&s.service.key))
                .collect(),
        };
        let ops = lb_ipvs::reconcile::diff(&current, &want);
        for op in &ops {
            tracing::info!(?op, "IPVS");
        }
        if let Err(e) = client.apply(&ops) {
            tracing::warn!(error = %e, "IPVS: applying the table failed");
        }
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let plan = {
            let p = shared.plan.lock().unwrap_or_else(|e| e.into_inner());
            (p.0 != applied).then(|| p.clone())
        };
        if let Some((generation, services)) = plan {
            apply(&mut client, &services, &mut ours);
            marks.sync(&plan::marks(&services));
            applied = generation;
        }
        let sync = shared
            .sync_daemon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if sync != sync_applied && (sync.is_some() || sync_managed) {
            sync_daemons(&mut client, sync.as_ref());
            sync_managed = true;
            sync_applied = sync;
        }
        if last_stats.elapsed() >= Duration::from_millis(500) {
            last_stats = Instant::now();
            let services = shared
                .plan
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .clone();
            let mut out = Vec::new();
            for p in &services {
                let Some(k) = key(p.key) else { continue };
                for d in client.dests(&k).unwrap_or_default() {
                    out.push(DestStats {
                        svc: p.key,
                        addr: d.dest.addr,
                        port: d.dest.port,
                        weight: u32::try_from(d.dest.weight).unwrap_or(0),
                        active: d.active_conns,
                        inactive: d.inact_conns,
                        persist: d.persist_conns,
                        traffic: d.stats.into(),
                    });
                }
            }
            let svc_traffic = client
                .services()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    let p = services
                        .iter()
                        .find(|p| key(p.key) == Some(e.service.key))?;
                    Some((p.key, e.stats.into()))
                })
                .collect();
            shared.stats.lock().unwrap_or_else(|e| e.into_inner()).0 = out;
            *shared
                .service_traffic
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = svc_traffic;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The daemon published an empty plan before stopping us; make sure it
    // is applied.
    apply(&mut client, &[], &mut ours);
    marks.remove();
    if sync_managed {
        sync_daemons(&mut client, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::plan::{Mastership, QuorumState, plan};

    /// An IPv6 fwmark service is created as IPv6 (`FWM  N IPv6`) with its
    /// default persistence granularity /128; an IPv4 one keeps /32.
    #[test]
    fn ipv6_fwmark_service() {
        let cfg = crate::config::parse_str(
            "t.conf",
            "virtual_server fwmark 6 {
               lb_kind DR
               persistence_timeout 30
               real_server 2001:db8::21 80 { }
             }
             virtual_server fwmark 4 {
               lb_kind DR
               persistence_timeout 30
               real_server 10.0.0.21 80 { }
             }
             virtual_server fwmark 7 {
               ip_family inet6
               lb_kind DR
               persistence_timeout 30
               persistence_granularity 64
             }",
        )
        .unwrap()
        .config;
        let p = plan(
            &cfg,
            &Default::default(),
            &Mastership::all(),
            &mut QuorumState::new(),
        );
        assert_eq!(p[0].key.to_string(), "FWM  6 IPv6");
        assert_eq!(p[0].persistence, Some((30, 128)));
        let t = table(&p);
        let got: Vec<_> = t
            .services
            .iter()
            .map(|s| (s.service.key, s.service.netmask))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ServiceKey::Fwmark {
                        family: Family::Inet6,
                        mark: 6
                    },
                    128
                ),
                (ServiceKey::fwmark(4), u32::MAX),
                (
                    ServiceKey::Fwmark {
                        family: Family::Inet6,
                        mark: 7
                    },
                    64
                ),
            ]
        );
    }
}
