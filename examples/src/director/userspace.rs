//! The userspace dataplane: `lb-forward` on AF_PACKET, scheduling with
//! `lb-sched`, driven by the [`plan`].
//!
//! One thread runs [`lb_forward::driver::run`]; its `control` hook (called
//! at least every 50 ms) applies a new plan when its generation changed —
//! only the difference, so flows to unchanged destinations stay — learns
//! next hops of both families from the kernel's neighbour table (an
//! rtnetlink dump), and publishes counters.
//!
//! The kernel must not answer the VIP traffic the forwarder handles (it
//! would reset TCP connections to ports it does not listen on), so the
//! dataplane installs an nftables table `inet lb_director` dropping, on
//! input, packets to each service's VIP and port. fwmark services are
//! classified by the forwarder itself from the plan's `fwmark_rules`
//! (`lb-sched`'s fwmark table); the traffic they match is kept from the
//! kernel by the [`marks`] table while they are planned.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_forward::afpacket::{PacketSocket, RingConfig};
use lb_forward::classify::ServiceKey;
use lb_forward::forwarder::{
    Config as FwdConfig, DestConfig, Forwarder, Method, Persistence, Port, PortId, ServiceConfig,
};
use lb_forward::lbsched::LbSched;
use lb_forward::sched::DestIndex;
use lb_forward::tunnel::{GueCsum, TunnelKind};
use lb_sched::{SchedulerKind, ServiceFlags, SplitMix64};

use super::marks::{self, MarkTable, Mode};
use super::plan::{self, PlannedDest, PlannedService, SvcKey, SyncDaemon};
use super::sys;
use crate::config::{LvsMethod, Protocol, TunCsum, TunType};

/// Traffic through a service or destination, as IPVS counts it:
/// connections scheduled, packets and bytes towards the real servers (in)
/// and back to the clients (out; NAT only, other methods reply directly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in.
    pub in_packets: u64,
    /// Packets out.
    pub out_packets: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
}

impl From<lb_forward::forwarder::Traffic> for Traffic {
    fn from(t: lb_forward::forwarder::Traffic) -> Self {
        Self {
            conns: t.conns,
            in_packets: t.in_packets,
            out_packets: t.out_packets,
            in_bytes: t.in_bytes,
            out_bytes: t.out_bytes,
        }
    }
}

impl From<lb_ipvs::Stats> for Traffic {
    fn from(s: lb_ipvs::Stats) -> Self {
        Self {
            conns: s.conns,
            in_packets: s.inpkts,
            out_packets: s.outpkts,
            in_bytes: s.inbytes,
            out_bytes: s.outbytes,
        }
    }
}

/// A destination's live counters, for `status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestStats {
    /// The service.
    pub svc: SvcKey,
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Current weight.
    pub weight: u32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates.
    pub persist: u32,
    /// Its traffic.
    pub traffic: Traffic,
}

/// What the daemon and the dataplane thread share.
#[derive(Debug, Default)]
pub struct Shared {
    /// The plan to apply, with a generation number.
    pub plan: Mutex<(u64, Vec<PlannedService>)>,
    /// Counters, refreshed about twice a second.
    pub stats: Mutex<(Vec<DestStats>, lb_forward::forwarder::Stats)>,
    /// Each service's traffic, refreshed with `stats`.
    pub service_traffic: Mutex<Vec<(SvcKey, Traffic)>>,
    /// The IPVS connection-sync daemon to run (kernel dataplane only).
    pub sync_daemon: Mutex<Option<SyncDaemon>>,
    /// Set to stop the thread.
    pub stop: AtomicBool,
}

fn method(m: LvsMethod) -> Method {
    match m {
        LvsMethod::Dr => Method::Dr,
        LvsMethod::Nat => Method::Nat,
        LvsMethod::Tun(TunType::Ipip) => Method::Tunnel(TunnelKind::Ipip),
        LvsMethod::Tun(TunType::Gue { port, csum }) => Method::Tunnel(TunnelKind::Gue {
            port,
            csum: match csum {
                TunCsum::None => GueCsum::None,
                TunCsum::Csum => GueCsum::Csum,
                TunCsum::RemCsum => GueCsum::RemCsum,
            },
        }),
        LvsMethod::Tun(TunType::Gre { csum }) => Method::Tunnel(TunnelKind::Gre {
            csum: csum != TunCsum::None,
        }),
    }
}

fn service_key(k: SvcKey) -> Option<ServiceKey> {
    Some(match k {
        SvcKey::Addr(p, addr, port) => ServiceKey::Addr {
            proto: match p {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
                Protocol::Sctp => return None,
            },
            addr: addr.into(),
            port,
        },
        SvcKey::Fwmark(m, _) => ServiceKey::Fwmark(m),
    })
}

/// One service as installed: its forwarder id, its plan and its destinations.
#[derive(Debug)]
struct Installed {
    id: u16,
    plan: PlannedService,
    dests: HashMap<(IpAddr, u16), (DestIndex, PlannedDest)>,
}

/// Applies `want` to the forwarder, changing only what differs.
fn reconcile(
    fwd: &mut Forwarder<LbSched>,
    have: &mut HashMap<SvcKey, Installed>,
    want: &[PlannedService],
    now: Instant,
) {
    // Services gone, or whose service-level settings changed.
    let keep = |s: &Installed| {
        want.iter().any(|w| {
            w.key == s.plan.key
                && w.scheduler == s.plan.scheduler
                && w.persistence == s.plan.persistence
                && w.ops == s.plan.ops
        })
    };
    let gone: Vec<SvcKey> = have
        .iter()
        .filter(|(_, s)| !keep(s))
        .map(|(k, _)| *k)
        .collect();
    for k in gone {
        if let Some(s) = have.remove(&k) {
            tracing::info!(service = %k, "removing service");
            let _ = fwd.remove_service(s.id);
        }
    }
    for w in want {
        if let Entry::Vacant(slot) = have.entry(w.key) {
            let Some(key) = service_key(w.key) else {
                tracing::warn!(service = %w.key, "SCTP services are not supported by the userspace dataplane");
                continue;
            };
            let kind = w
                .scheduler
                .parse::<SchedulerKind>()
                .unwrap_or(SchedulerKind::Wlc);
            let lkey = match w.key {
                SvcKey::Addr(p, addr, port) => lb_sched::ServiceKey::Addr {
                    protocol: match p {
                        Protocol::Udp => lb_sched::Protocol::Udp,
                        _ => lb_sched::Protocol::Tcp,
                    },
                    addr: SocketAddr::new(addr, port),
                },
                SvcKey::Fwmark(mark, f) => lb_sched::ServiceKey::Fwmark {
                    mark,
                    family: match f {
                        crate::config::IpFamily::Inet => lb_sched::AddressFamily::Inet,
                        crate::config::IpFamily::Inet6 => lb_sched::AddressFamily::Inet6,
                    },
                },
            };
            let Ok(svc) = lb_sched::Service::new(lkey, ServiceFlags::NONE, kind, now) else {
                continue;
            };
            let sched = LbSched::new(svc, SplitMix64::new(sys::random_u64()));
            let cfg = ServiceConfig {
                key,
                persistence: w.persistence.map(|(t, prefix)| Persistence {
                    timeout: Duration::from_secs(t.into()),
                    netmask: if prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - u32::from(prefix.min(32)))
                    },
                    prefix6: prefix.min(128),
                }),
                one_packet: w.ops,
            };
            if matches!(w.key, SvcKey::Fwmark(..)) && w.marks.is_empty() {
                tracing::warn!(service = %w.key, "no fwmark_rules mark this service's packets: the userspace dataplane will not see its traffic");
            }
            match fwd.add_service(cfg, sched) {
                Ok(id) => {
                    tracing::info!(service = %w.key, scheduler = %w.scheduler, "adding service");
                    slot.insert(Installed {
                        id,
                        plan: w.clone(),
                        dests: HashMap::new(),
                    });
                }
                Err(e) => tracing::warn!(service = %w.key, error = %e, "cannot add service"),
            }
        }
        let Some(s) = have.get_mut(&w.key) else {
            continue;
        };
        s.plan = w.clone();
        // Destinations gone or whose method changed.
        let gone: Vec<(IpAddr, u16)> = s
            .dests
            .iter()
            .filter(|(k, (_, d))| {
                !w.dests
                    .iter()
                    .any(|x| (x.addr, x.port) == **k && x.method == d.method)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            if let Some((idx, _)) = s.dests.remove(&k) {
                tracing::info!(service = %w.key, dest = %SocketAddr::from(k), "removing real server");
                let _ = fwd.remove_dest(idx);
            }
        }
        for d in &w.dests {
            match s.dests.get_mut(&(d.addr, d.port)) {
                Some((idx, have_d)) => {
                    if have_d.weight != d.weight {
                        tracing::info!(service = %w.key, dest = %SocketAddr::new(d.addr, d.port), weight = d.weight, "weight");
                        let _ = fwd.set_weight(*idx, d.weight);
                    }
                    *have_d = *d;
                }
                None => {
                    let r = fwd.add_dest(
                        s.id,
                        DestConfig {
                            addr: d.addr,
                            port: d.port,
                            method: method(d.method),
                            weight: d.weight,
                        },
                    );
                    match r {
                        Ok(idx) => {
                            tracing::info!(service = %w.key, dest = %SocketAddr::new(d.addr, d.port), weight = d.weight, "adding real server");
                            s.dests.insert((d.addr, d.port), (idx, *d));
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot add real server"),
                    }
                }
            }
        }
    }
}

/// Prompts the kernel to resolve `ip`'s link-layer address (a datagram to
/// the discard port; the reply, if any, is ignored): ARP for IPv4,
/// neighbour discovery for IPv6. A link-local IPv6 next hop (the usual
/// IPv6 gateway) needs the interface index as its scope.
fn poke(ip: IpAddr, scope: Option<i32>) {
    let (bind, to): (SocketAddr, SocketAddr) = match ip {
        IpAddr::V4(ip) => (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddrV4::new(ip, 9).into(),
        ),
        IpAddr::V6(ip) => (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            SocketAddrV6::new(
                ip,
                9,
                0,
                scope.and_then(|i| u32::try_from(i).ok()).unwrap_or(0),
            )
            .into(),
        ),
    };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _ = s.send_to(&[], to);
    }
}

/// Installs the nftables rules that keep the kernel off the VIP traffic.
pub fn install_nft(services: &[(IpAddr, u16, Protocol)]) -> Result<(), String> {
    let mut script = String::from(
        "table inet lb_director\ndelete table inet lb_director\ntable inet lb_director {\n chain input {\n  type filter hook input priority -150; policy accept;\n",
    );
    for (ip, port, proto) in services {
        let fam = if ip.is_ipv4() { "ip" } else { "ip6" };
        let p = proto.as_str();
        if *port == 0 {
            script.push_str(&format!("  {fam} daddr {ip} meta l4proto {p} drop\n"));
        } else {
            script.push_str(&format!("  {fam} daddr {ip} {p} dport {port} drop\n"));
        }
    }
    script.push_str(" }\n}\n");
    sys::nft(&script)
}

/// Removes the nftables table.
pub fn remove_nft() {
    let _ = sys::nft("delete table inet lb_director\n");
}

/// Runs the dataplane on `ifaces` until `shared.stop` is set.
pub fn run(ifaces: &[String], shared: Arc<Shared>) -> Result<(), String> {
    let mut socks = Vec::new();
    let now = Instant::now();
    let mut fcfg = FwdConfig::default();
    // A failed server's flows and persistence templates move on at once:
    // removal expires its connections, and a template pointing at a
    // quiesced (`inhibit_on_failure`, weight 0) server is dropped when next
    // used (the sysctls keepalived users set for the kernel).
    fcfg.expire_nodest_conn = true;
    fcfg.expire_quiescent_template = true;
    fcfg.hash_seed = sys::random_u64();
    let mut fwd: Forwarder<LbSched> = Forwarder::new(fcfg, now);
    let mut port_of = HashMap::new();
    let mut port_of_index = HashMap::new();
    for name in ifaces {
        let s = PacketSocket::open(name, RingConfig::default())
            .map_err(|e| format!("packet socket on {name}: {e}"))?;
        let mtu = s.mtu().unwrap_or(1500);
        let addrs = sys::iface_addrs(name);
        let v4 = addrs.iter().copied().find(IpAddr::is_ipv4).map(Into::into);
        let v6 = sys::global_v6(&addrs).map(|a| IpAddr::V6(a).into());
        let id = fwd.add_port(Port {
            mac: s.mac(),
            mtu,
            v4,
            v6,
        });
        port_of.insert(name.clone(), id);
        if let Some(i) = sys::ifindex(name) {
            port_of_index.insert(i, id);
        }
        socks.push(s);
    }
    let mut have: HashMap<SvcKey, Installed> = HashMap::new();
    let mut gen_applied = u64::MAX;
    let mut last_neigh = Instant::now() - Duration::from_secs(10);
    let mut neigh: HashMap<IpAddr, [u8; 6]> = HashMap::new();
    let mut gateway_set = [false; 2];
    let mut neigh_warned = false;
    let mut mark_table = MarkTable::new(Mode::Userspace);
    let mut mark_rules = Vec::new();
    let stats = lb_forward::driver::run(&mut fwd, &socks, &shared.stop, |fwd| {
        let now = Instant::now();
        let plan = {
            let p = shared.plan.lock().unwrap_or_else(|e| e.into_inner());
            (p.0 != gen_applied).then(|| p.clone())
        };
        if let Some((generation, services)) = plan {
            reconcile(fwd, &mut have, &services, now);
            let want = plan::marks(&services);
            // The kernel's copy is dropped before the forwarder classifies
            // it, so no connection is answered by both (a failed install is
            // tried again with the next plan).
            mark_table.sync(&want);
            if want != mark_rules {
                fwd.clear_fwmark_rules();
                for r in &want {
                    let added = marks::classifier_rule(r)
                        .map_err(|e| e.to_string())
                        .and_then(|c| fwd.add_fwmark_rule(c).map_err(|e| e.to_string()));
                    if let Err(e) = added {
                        tracing::warn!(mark = r.mark, error = %e, "cannot add fwmark rule");
                    }
                }
                tracing::info!(rules = want.len(), "fwmark classifier updated");
                mark_rules = want;
            }
            gen_applied = generation;
        }
        if now.duration_since(last_neigh) >= Duration::from_millis(200) {
            last_neigh = now;
            // Both families from the kernel's neighbour table (rtnetlink);
            // should that fail, IPv4 still comes from /proc/net/arp.
            let found: Vec<(IpAddr, [u8; 6], Option<PortId>)> = match sys::neighbours() {
                Ok(v) => v
                    .into_iter()
                    .map(|(ip, mac, i)| (ip, mac, port_of_index.get(&i).copied()))
                    .collect(),
                Err(e) => {
                    if !neigh_warned {
                        tracing::warn!(error = %e, "cannot dump the neighbour table; IPv4 only, from /proc/net/arp");
                        neigh_warned = true;
                    }
                    sys::arp_table()
                        .into_iter()
                        .map(|(ip, mac, dev)| (ip, mac, port_of.get(&dev).copied()))
                        .collect()
                }
            };
            for (ip, mac, p) in found {
                if let Some(p) = p
                    && neigh.get(&ip) != Some(&mac)
                {
                    neigh.insert(ip, mac);
                    fwd.set_neighbour(ip, mac, p);
                }
            }
            for (v6, gw) in [
                (false, sys::default_gateway()),
                (true, sys::default_gateway6()),
            ] {
                if gateway_set[usize::from(v6)] {
                    continue;
                }
                let Some((gw, dev)) = gw else { continue };
                if let (Some(mac), Some(&p)) = (neigh.get(&gw), port_of.get(&dev)) {
                    fwd.set_gateway(v6, *mac, p);
                    gateway_set[usize::from(v6)] = true;
                } else {
                    poke(gw, sys::ifindex(&dev));
                }
            }
            let mut out = Vec::new();
            let mut svc_traffic = Vec::new();
            for s in have.values() {
                let t = fwd.service_traffic(s.id).unwrap_or_default();
                svc_traffic.push((s.plan.key, t.into()));
                for ((addr, port), (idx, d)) in &s.dests {
                    if !neigh.contains_key(addr) {
                        poke(*addr, None);
                    }
                    let c = fwd.dest_counts(*idx).unwrap_or_default();
                    out.push(DestStats {
                        svc: s.plan.key,
                        addr: *addr,
                        port: *port,
                        weight: d.weight,
                        active: c.active,
                        inactive: c.inactive,
                        persist: c.persist,
                        traffic: fwd.dest_traffic(*idx).unwrap_or_default().into(),
                    });
                }
            }
            *shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = (out, fwd.stats());
            *shared
                .service_traffic
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = svc_traffic;
        }
    });
    mark_table.remove();
    // Leave nothing behind in the forwarder's view either.
    shared.stop.store(true, Ordering::Relaxed);
    stats.map(|_| ()).map_err(|e| e.to_string())
}
