//! The running director: VRRP instances, health checks and the dataplane,
//! tied together by the [`plan`](super::plan).
//!
//! ```text
//!  lb-vrrp drivers ──state──┐
//!  lb-health engine ─events─┼──► State ──plan()──► generation ──► dataplane thread (reconcile)
//!  SIGHUP ──reload──────────┘                       status socket / metrics read State
//! ```
//!
//! SIGTERM / SIGINT: every VRRP instance shuts down (a master sends
//! priority 0 and removes its VIPs), checks stop (`omega` reports run),
//! the dataplane is emptied and stopped, the nftables table and the status
//! socket removed; exit 0.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use lb_health::{Engine, EngineConfig, EngineEvent, Event as HealthEvent};
use lb_vrrp::linux::MultiDriver;
use lb_vrrp::{Event as VrrpEvent, State as VrrpState, SyncGroup, VirtualRouter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use super::checks::{CheckId, all_checks, weighing_checks};
use super::plan::{
    Health, Mastership, PlannedService, QuorumState, RsId, SvcKey, expand, marks, plan, sync_daemon,
};
use super::userspace::{self, Shared};
use super::vrrp::router_config_live;
use super::{privs, sys, track};
use crate::config::{self, Config};

/// Which dataplane to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataplane {
    /// Kernel IPVS when present, else userspace.
    Auto,
    /// Kernel IPVS through lb-ipvs.
    Ipvs,
    /// lb-forward on AF_PACKET.
    Userspace,
}

/// Options of `director run`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The keepalived.conf.
    pub config: PathBuf,
    /// The dataplane.
    pub dataplane: Dataplane,
    /// Runtime directory (status socket).
    pub runtime_dir: PathBuf,
    /// Extra interfaces for the userspace dataplane (besides the VRRP ones).
    pub interfaces: Vec<String>,
    /// Prometheus text endpoint.
    pub metrics: Option<SocketAddr>,
}

/// One VRRP instance as status and metrics show it.
#[derive(Debug, Clone)]
struct Instance {
    interface: String,
    vrid: u8,
    state: VrrpState,
    /// The effective priority: the configured one moved by tracked
    /// objects' weights (keepalived's "effective priority").
    priority: u8,
}

/// What a VRRP unit reports to the daemon about one of its instances.
#[derive(Debug, Clone, Copy)]
enum VrrpNews {
    State(VrrpState),
    Priority(u8),
}

/// Per-real-server health with its checkers' individual results.
#[derive(Debug, Default)]
struct State {
    cfg: Config,
    vrrp: BTreeMap<String, Instance>,
    checks: HashMap<CheckId, (bool, Option<u32>, Option<String>)>,
    /// The checks whose reported weight counts (`checks::weighing_checks`).
    weighing: std::collections::HashSet<CheckId>,
    health: HashMap<RsId, Health>,
    quorum: QuorumState,
    generation: u64,
    plan: Vec<PlannedService>,
}

impl State {
    /// Which services to program: those whose VIP an instance that is
    /// master here holds (see [`Mastership`]); everything without VRRP.
    fn mastership(&self) -> Mastership {
        Mastership::from_config(&self.cfg, |name| {
            self.vrrp
                .get(name)
                .is_some_and(|i| i.state == VrrpState::Master)
        })
    }

    /// Rebuilds each real server's health from its checkers: up when every
    /// checker that has reported is up.
    fn fold_health(&mut self) {
        let mut h: HashMap<RsId, Health> = HashMap::new();
        for ((rs, _), (up, w, why)) in &self.checks {
            let e = h.entry(*rs).or_insert(Health {
                up: true,
                weight: None,
                last_failure: None,
            });
            e.up &= *up;
            if w.is_some() {
                e.weight = *w;
            }
            if why.is_some() {
                e.last_failure.clone_from(why);
            }
        }
        self.health = h;
    }

    /// Recomputes the plan; publishes it when it changed. Publishes the
    /// connection-sync daemon the VRRP states ask for.
    fn replan(&mut self, shared: &Shared) {
        let master = self.mastership();
        let p = plan(&self.cfg, &self.health, &master, &mut self.quorum);
        if p != self.plan {
            self.generation += 1;
            self.plan = p.clone();
            *shared.plan.lock().unwrap_or_else(|e| e.into_inner()) = (self.generation, p);
        }
        let sync = sync_daemon(&self.cfg, |name| {
            self.vrrp
                .get(name)
                .is_some_and(|i| i.state == VrrpState::Master)
        });
        *shared.sync_daemon.lock().unwrap_or_else(|e| e.into_inner()) = sync;
    }
}

/// Where a VIP goes: address, prefix length, interface (`dev`, else the
/// instance's).
type Placement = (IpAddr, u8, String);

/// An instance's name, router configuration, interface and where each of
/// its VIPs (and excluded VIPs) goes.
type Member = (String, lb_vrrp::Config, String, Vec<Placement>);

/// One driver task: a sync group's members, or a lone instance.
struct Unit {
    /// What the unit was started from; a difference restarts it.
    spec: UnitSpec,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// The members (name, router configuration, interface, VIP prefix) and the
/// tracking definitions they use.
#[derive(Debug, Clone, PartialEq)]
struct UnitSpec {
    group: bool,
    members: Vec<Member>,
    sources: Vec<Vec<track::Source>>,
    scripts: Vec<config::VrrpScript>,
    files: Vec<config::TrackFile>,
}

type VrrpTx = mpsc::UnboundedSender<(String, VrrpNews)>;

fn start_unit(spec: UnitSpec, cfg: &Config, tx: VrrpTx) -> Unit {
    let stop = Arc::new(Notify::new());
    let (s, sp, cfg) = (stop.clone(), spec.clone(), cfg.clone());
    let task = tokio::spawn(async move {
        let fail = |tx: &VrrpTx| {
            for (n, ..) in &sp.members {
                let _ = tx.send((n.clone(), VrrpNews::State(VrrpState::Fault)));
            }
        };
        let mut d = match MultiDriver::new() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot start VRRP");
                fail(&tx);
                return;
            }
        };
        let mut sources: BTreeMap<track::Source, (lb_vrrp::TrackStatus, track::Targets)> =
            BTreeMap::new();
        let mut names = Vec::new();
        for (i, (n, c, iface, placements)) in sp.members.iter().enumerate() {
            let router = match VirtualRouter::new(c.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(instance = %n, error = %e, "bad VRRP configuration");
                    fail(&tx);
                    return;
                }
            };
            let idx = match d.add(router, iface) {
                Ok(idx) => idx,
                Err(e) => {
                    tracing::error!(instance = %n, %iface, error = %e, "cannot start VRRP");
                    fail(&tx);
                    return;
                }
            };
            for (addr, prefix, dev) in placements {
                if let Err(e) = d.place_address(idx, *addr, *prefix, dev) {
                    tracing::error!(instance = %n, %addr, %dev, error = %e, "cannot place the VIP");
                    fail(&tx);
                    return;
                }
            }
            names.push(n.clone());
            for (k, (t, src)) in c.tracked.iter().zip(&sp.sources[i]).enumerate() {
                sources
                    .entry(src.clone())
                    .or_insert_with(|| (t.initial, Vec::new()))
                    .1
                    .push((i, k));
            }
        }
        if sp.group {
            d.add_sync_group(SyncGroup::new((0..sp.members.len()).collect()));
        }
        let (names2, tx2) = (names.clone(), tx.clone());
        d.on_event(move |i, r, ev| {
            let n = &names2[i];
            match ev {
                VrrpEvent::StateChanged { from, to, reason } => {
                    tracing::info!(instance = %n, ?from, ?to, ?reason, priority = r.priority(), "VRRP state");
                    let _ = tx2.send((n.clone(), VrrpNews::State(*to)));
                }
                VrrpEvent::PriorityChanged { from, to } => {
                    tracing::info!(instance = %n, priority = to, was = from, "VRRP effective priority");
                    let _ = tx2.send((n.clone(), VrrpNews::Priority(*to)));
                }
                VrrpEvent::Discarded { reason, src, .. } => {
                    tracing::debug!(instance = %n, reason = reason.as_str(), %src, "VRRP discard");
                }
                _ => {}
            }
        });
        d.on_error(move |e| tracing::warn!(instances = ?names, error = %e, "VRRP I/O"));
        let ctx = d.commands();
        let watchers = track::spawn_watchers(&cfg, sources, &ctx);
        let r = d.run(s.notified()).await;
        for w in watchers {
            w.abort();
        }
        if let Err(e) = r {
            tracing::error!(error = %e, "VRRP driver stopped");
            fail(&tx);
        }
    });
    Unit { spec, stop, task }
}

fn load(path: &Path) -> Result<Config, String> {
    match config::load(path) {
        Ok(l) => {
            for w in &l.warnings {
                tracing::warn!("{w}");
            }
            Ok(l.config)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// VIP:port services the kernel must leave alone (userspace dataplane).
fn vip_services(cfg: &Config) -> Vec<(IpAddr, u16, config::Protocol)> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for k in expand(cfg, vs) {
            if let SvcKey::Addr(p, ip, port) = k {
                out.push((ip, port, p));
            }
        }
    }
    out
}

fn script_user(cfg: &Config) -> Option<(u32, u32)> {
    let (u, g) = cfg.global.script_user.as_ref()?;
    privs::lookup_user(u, g.as_deref())
}

/// Where each VIP and excluded VIP of `inst` goes: its `dev` (else the
/// instance's interface) with its own prefix length, as keepalived adds them.
fn placements(inst: &config::VrrpInstance) -> Vec<Placement> {
    inst.vips
        .iter()
        .chain(&inst.vips_excluded)
        .map(|v| {
            let dev = v.dev.clone().unwrap_or_else(|| inst.interface.clone());
            (v.addr, v.prefix, dev)
        })
        .collect()
}

/// The interfaces the userspace dataplane reads and writes: every VRRP
/// instance's, every VIP's `dev` (e.g. the inside gateway of a NAT
/// director, an excluded VIP on another link), the device of `route` to
/// each real and sorry server (where NAT replies come back), and `extra`.
fn dataplane_interfaces(
    cfg: &Config,
    extra: &[String],
    route: impl Fn(IpAddr) -> Option<String>,
) -> Vec<String> {
    let servers = cfg.virtual_servers.iter().flat_map(|vs| {
        vs.real_servers
            .iter()
            .map(|rs| rs.ip)
            .chain(vs.sorry_server.map(|(ip, _)| ip))
    });
    let mut ifaces: Vec<String> = cfg
        .vrrp_instances
        .iter()
        .flat_map(|i| {
            std::iter::once(i.interface.clone())
                .chain(placements(i).into_iter().map(|(_, _, dev)| dev))
        })
        .chain(servers.filter_map(route))
        .chain(extra.iter().cloned())
        .collect();
    ifaces.sort();
    ifaces.dedup();
    ifaces
}

/// The driver units `cfg` asks for, keyed by sync group (`group:NAME`) or
/// instance name: each sync group's members share one driver (they change
/// state together); other instances get one each.
fn want_units(cfg: &Config) -> HashMap<String, UnitSpec> {
    let mut members = HashMap::new();
    for inst in &cfg.vrrp_instances {
        match router_config_live(inst) {
            Ok(mut c) => {
                let t = track::tracked(cfg, inst);
                c.tracked = t.iter().map(|(t, _)| t.clone()).collect();
                let src = t.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
                members.insert(
                    inst.name.clone(),
                    (
                        (
                            inst.name.clone(),
                            c,
                            inst.interface.clone(),
                            placements(inst),
                        ),
                        src,
                    ),
                );
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
    let spec = |group: bool, m: Vec<(Member, Vec<track::Source>)>| {
        let (members, sources): (Vec<_>, Vec<_>) = m.into_iter().unzip();
        UnitSpec {
            group,
            members,
            sources,
            scripts: cfg.vrrp_scripts.clone(),
            files: cfg.track_files.clone(),
        }
    };
    let mut out = HashMap::new();
    for g in &cfg.sync_groups {
        let m: Vec<_> = g.members.iter().filter_map(|n| members.remove(n)).collect();
        if !m.is_empty() {
            out.insert(format!("group:{}", g.name), spec(true, m));
        }
    }
    for (n, m) in members {
        out.insert(n, spec(false, vec![m]));
    }
    out
}

/// Brings VRRP instances in line with `cfg`: unchanged units keep running
/// (no flap), changed or removed ones stop, new ones start.
async fn sync_instances(
    cfg: &Config,
    running: &mut HashMap<String, Unit>,
    tx: &VrrpTx,
    st: &Mutex<State>,
) {
    let want = want_units(cfg);
    let stale: Vec<String> = running
        .iter()
        .filter(|(n, u)| want.get(*n) != Some(&u.spec))
        .map(|(n, _)| n.clone())
        .collect();
    for n in stale {
        if let Some(u) = running.remove(&n) {
            tracing::info!(unit = %n, "stopping VRRP instances");
            u.stop.notify_one();
            let _ = u.task.await;
            let mut s = lock(st);
            for (m, ..) in &u.spec.members {
                s.vrrp.remove(m);
            }
        }
    }
    for (n, spec) in want {
        if running.contains_key(&n) {
            continue;
        }
        {
            let mut s = lock(st);
            for (m, c, iface, _) in &spec.members {
                tracing::info!(instance = %m, %iface, vrid = c.vrid, "starting VRRP instance");
                s.vrrp.insert(
                    m.clone(),
                    Instance {
                        interface: iface.clone(),
                        vrid: c.vrid,
                        state: VrrpState::Initialize,
                        priority: c.priority,
                    },
                );
            }
        }
        running.insert(n, start_unit(spec, cfg, tx.clone()));
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the runtime directory (mode 0700) and refuses one that is a
/// symbolic link or not a directory: the status socket is the only thing
/// the director creates, and only there.
fn prepare_runtime_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a directory (symbolic links are refused)",
        )),
        Ok(_) => Ok(()),
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
    }
}

/// Runs the director until SIGTERM/SIGINT. Returns the exit code.
pub fn run(opts: Options) -> i32 {
    let cfg = match load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("director: {e}");
            return 3;
        }
    };
    let dataplane = match opts.dataplane {
        // Resolving the generic-netlink family loads ip_vs if it is a module.
        Dataplane::Auto if lb_ipvs::Client::new().is_ok() => Dataplane::Ipvs,
        Dataplane::Auto => Dataplane::Userspace,
        d => d,
    };
    tracing::info!(?dataplane, "dataplane");
    if let Err(e) = prepare_runtime_dir(&opts.runtime_dir) {
        eprintln!("director: {}: {e}", opts.runtime_dir.display());
        return 1;
    }
    // Before any thread exists (capabilities are per thread): keep only
    // what the director needs, plus set[ug]id for MISC_CHECK script users.
    let mut keep = vec![privs::caps::NET_ADMIN, privs::caps::NET_RAW];
    let notify_set = |n: &config::Notify| {
        n.master.is_some()
            || n.backup.is_some()
            || n.fault.is_some()
            || n.any.is_some()
            || n.stop.is_some()
    };
    let has_scripts = cfg.virtual_servers.iter().any(|vs| {
        vs.real_servers.iter().any(|rs| {
            rs.checkers
                .iter()
                .any(|c| matches!(c.kind, config::CheckKind::Misc { .. }))
        })
    }) || (cfg.global.script_user.is_some()
        && (cfg.vrrp_instances.iter().any(|i| notify_set(&i.notify))
            || cfg.sync_groups.iter().any(|g| notify_set(&g.notify))))
        || track::scripts_change_user(&cfg);
    if has_scripts {
        keep.extend([privs::caps::SETUID, privs::caps::SETGID]);
    }
    if let Err(e) = privs::drop_capabilities(&keep) {
        eprintln!("director: cannot drop capabilities: {e}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("director: tokio: {e}");
            return 1;
        }
    };
    rt.block_on(main_loop(opts, cfg, dataplane))
}

async fn main_loop(opts: Options, cfg: Config, dataplane: Dataplane) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let shared = Arc::new(Shared::default());
    let ifaces = dataplane_interfaces(&cfg, &opts.interfaces, sys::route_iface);
    let kernel = dataplane == Dataplane::Ipvs;
    if !kernel && ifaces.is_empty() {
        tracing::warn!(
            "userspace dataplane without interfaces (no vrrp_instance): pass --interface"
        );
    }
    let mut sync_warned = false;
    warn_sync_unsupported(&cfg, kernel, &mut sync_warned);
    if !kernel && let Err(e) = userspace::install_nft(&vip_services(&cfg)) {
        tracing::warn!(error = %e, "cannot install the nftables rules keeping the kernel off VIP traffic");
    }
    // A dataplane that fails (a socket it cannot open or that breaks) must
    // not leave a director that still wins VRRP elections but forwards
    // nothing: its error ends the daemon, which releases its VIPs
    // (priority 0) so a peer takes over, and exits 1 for the supervisor.
    let (dp_failed_tx, mut dp_failed) = mpsc::unbounded_channel::<String>();
    let dp = {
        let shared = shared.clone();
        let ifaces = ifaces.clone();
        std::thread::Builder::new()
            .name("dataplane".into())
            .spawn(move || {
                let r = if kernel {
                    super::ipvs::run(shared)
                } else {
                    userspace::run(&ifaces, shared)
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "dataplane stopped");
                    let _ = dp_failed_tx.send(e);
                }
            })
    };
    let dp = match dp {
        Ok(h) => h,
        Err(e) => {
            eprintln!("director: {e}");
            return 1;
        }
    };
    let st = Arc::new(Mutex::new(State {
        cfg: cfg.clone(),
        weighing: weighing_checks(&cfg),
        ..State::default()
    }));
    lock(&st).replan(&shared);

    let (mut engine, mut hevents) = Engine::<CheckId>::new({
        let mut c = EngineConfig::default();
        c.seed = sys::random_u64();
        c
    });
    if let Err(e) = engine.reload(all_checks(&cfg, script_user(&cfg))) {
        tracing::error!(error = %e, "health checks");
    }
    let (vtx, mut vrx) = mpsc::unbounded_channel();
    let mut instances = HashMap::new();
    sync_instances(&cfg, &mut instances, &vtx, &st).await;

    let sock_path = opts.runtime_dir.join("director.sock");
    let _ = std::fs::remove_file(&sock_path);
    match tokio::net::UnixListener::bind(&sock_path) {
        Ok(l) => {
            let (st, shared) = (st.clone(), shared.clone());
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    let mut req = [0u8; 64];
                    let n = s.read(&mut req).await.unwrap_or(0);
                    let json = req[..n].starts_with(b"json");
                    let text = render_status(&lock(&st), &shared, json, kernel);
                    let _ = s.write_all(text.as_bytes()).await;
                }
            });
        }
        Err(e) => tracing::warn!(path = %sock_path.display(), error = %e, "no status socket"),
    }
    if let Some(addr) = opts.metrics {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let (st, shared) = (st.clone(), shared.clone());
                tokio::spawn(async move {
                    while let Ok((mut s, _)) = l.accept().await {
                        let mut req = [0u8; 1024];
                        let _ = s.read(&mut req).await;
                        let body = render_metrics(&lock(&st), &shared);
                        let head = format!(
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        let _ = s.write_all(body.as_bytes()).await;
                    }
                });
            }
            Err(e) => tracing::warn!(%addr, error = %e, "no metrics endpoint"),
        }
    }

    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("director: cannot install signal handlers");
        return 1;
    };
    tracing::info!(config = %opts.config.display(), ?ifaces, "director running");
    let mut exit_code = 0;
    loop {
        tokio::select! {
            Some(EngineEvent { server, event }) = hevents.recv() => {
                let mut s = lock(&st);
                let weighs = s.weighing.contains(&server);
                let e = s.checks.entry(server).or_insert((true, None, None));
                match event {
                    // A plain checker's weight is the configured one,
                    // which the plan reads from the configuration.
                    HealthEvent::Up { weight } => { e.0 = true; e.1 = weighs.then_some(weight); }
                    HealthEvent::Weight { weight } => e.1 = weighs.then_some(weight),
                    HealthEvent::Down { cause, .. } => { e.0 = false; e.2 = Some(format!("{cause:?}")); }
                }
                tracing::info!(service = %server.0.0, server = %SocketAddr::new(server.0.1, server.0.2), ?event, "health");
                s.fold_health();
                s.replan(&shared);
            }
            Some((name, news)) = vrx.recv() => {
                let mut s = lock(&st);
                let state = match news {
                    VrrpNews::State(state) => state,
                    VrrpNews::Priority(p) => {
                        if let Some(v) = s.vrrp.get_mut(&name) {
                            v.priority = p;
                        }
                        continue;
                    }
                };
                let changed = s.vrrp.get_mut(&name).is_some_and(|v| {
                    let c = v.state != state;
                    v.state = state;
                    c
                });
                if changed {
                    run_notify(&s.cfg, &name, state);
                }
                s.replan(&shared);
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                match load(&opts.config) {
                    Ok(new) => {
                        warn_sync_unsupported(&new, kernel, &mut sync_warned);
                        if let Err(e) = engine.reload(all_checks(&new, script_user(&new))) {
                            tracing::error!(error = %e, "reload: health checks unchanged");
                        }
                        if !kernel && let Err(e) = userspace::install_nft(&vip_services(&new)) {
                            tracing::warn!(error = %e, "nftables");
                        }
                        {
                            let mut s = lock(&st);
                            // Forget results of checks that no longer exist
                            // or changed (probe or timing): the engine
                            // restarts a changed check from its initial state
                            // and reports no transition into it, so a kept
                            // "down" would never lift. A weight-only change
                            // leaves a plain checker's key alone (the weight
                            // is not in it): its check and state stay, as in
                            // keepalived, and the new weight applies through
                            // the plan. (A dynamic MISC_CHECK or FILE_CHECK
                            // weighs relative to the configured weight, so
                            // theirs restart.)
                            let old: HashMap<_, _> = all_checks(&s.cfg, None).into_iter().collect();
                            let keep: std::collections::HashSet<CheckId> = all_checks(&new, None)
                                .into_iter()
                                .filter(|(k, c)| old.get(k) == Some(c))
                                .map(|(k, _)| k)
                                .collect();
                            s.cfg = new.clone();
                            s.weighing = weighing_checks(&new);
                            s.checks.retain(|k, _| keep.contains(k));
                            s.fold_health();
                        }
                        sync_instances(&new, &mut instances, &vtx, &st).await;
                        lock(&st).replan(&shared);
                    }
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(e) = dp_failed.recv() => {
                tracing::error!(error = %e, "the dataplane failed: shutting down");
                exit_code = 1;
                break;
            }
        }
    }
    tracing::info!("shutting down");
    for (_, u) in instances.drain() {
        u.stop.notify_one();
        let _ = u.task.await;
        let cfg = lock(&st).cfg.clone();
        for (n, ..) in &u.spec.members {
            run_notify(&cfg, n, VrrpState::Initialize);
        }
    }
    engine.shutdown();
    {
        let mut s = lock(&st);
        s.vrrp.clear();
        s.cfg = Config::default();
        s.replan(&shared);
    }
    // Let the dataplane apply the empty plan, then stop it.
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    shared.stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || dp.join()).await;
    if !kernel {
        userspace::remove_nft();
    }
    let _ = std::fs::remove_file(&sock_path);
    tracing::info!("stopped");
    exit_code
}

/// With the userspace dataplane, `lvs_sync_daemon(_interface)` has no
/// effect (lb-forward does not synchronise connections): said once.
fn warn_sync_unsupported(cfg: &Config, kernel: bool, warned: &mut bool) {
    if kernel || *warned {
        return;
    }
    if cfg.global.lvs_sync_daemon.is_some() {
        tracing::warn!(
            "lvs_sync_daemon: connection sync is not supported by the userspace dataplane; ignored"
        );
        *warned = true;
    } else if let Some(i) = cfg
        .vrrp_instances
        .iter()
        .find(|i| i.lvs_sync_daemon_interface.is_some())
    {
        tracing::warn!(instance = %i.name, "lvs_sync_daemon_interface: connection sync is not supported by the userspace dataplane; ignored");
        *warned = true;
    }
}

/// Runs the instance's (and its sync group's) notify scripts for a new
/// state, as keepalived: `notify_master|backup|fault` as written, `notify`
/// with `INSTANCE|GROUP name state priority` appended. Scripts run through
/// `sh -c`, as `script_user` when set, and are not waited for.
fn run_notify(cfg: &Config, instance: &str, state: VrrpState) {
    let word = match state {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
        VrrpState::Fault => "FAULT",
        VrrpState::Initialize => "STOP",
    };
    let pick = |n: &config::Notify| match state {
        VrrpState::Master => n.master.clone(),
        VrrpState::Backup => n.backup.clone(),
        VrrpState::Fault => n.fault.clone(),
        VrrpState::Initialize => n.stop.clone(),
    };
    let Some(inst) = cfg.vrrp_instances.iter().find(|i| i.name == instance) else {
        return;
    };
    let mut cmds: Vec<String> = Vec::new();
    cmds.extend(pick(&inst.notify));
    if let Some(any) = &inst.notify.any {
        cmds.push(format!(
            "{any} INSTANCE {instance} {word} {}",
            inst.priority
        ));
    }
    for g in cfg
        .sync_groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == instance))
    {
        cmds.extend(pick(&g.notify));
        if let Some(any) = &g.notify.any {
            cmds.push(format!("{any} GROUP {} {word} 0", g.name));
        }
    }
    let user = script_user(cfg);
    for c in cmds {
        tracing::info!(instance, script = %c, "notify");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(&c).kill_on_drop(false);
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => tracing::warn!(script = %c, error = %e, "notify script"),
        }
    }
}

fn vrrp_name(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Initialize => "INIT",
        VrrpState::Backup => "BACKUP",
        VrrpState::Master => "MASTER",
        VrrpState::Fault => "FAULT",
    }
}

fn method_name(m: config::LvsMethod) -> &'static str {
    match m {
        config::LvsMethod::Dr => "Route",
        config::LvsMethod::Nat => "Masq",
        config::LvsMethod::Tun(_) => "Tunnel",
    }
}

fn addr_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// Every configured real server with its health (the initial one until its
/// checks report).
fn servers(s: &State) -> Vec<(SvcKey, IpAddr, u16, Health)> {
    let mut out = Vec::new();
    for vs in &s.cfg.virtual_servers {
        for k in expand(&s.cfg, vs) {
            for rs in &vs.real_servers {
                let h = s
                    .health
                    .get(&(k, rs.ip, rs.port))
                    .cloned()
                    .unwrap_or_else(|| super::plan::initial_health(vs, rs));
                out.push((k, rs.ip, rs.port, h));
            }
        }
    }
    out
}

/// `director status`: VRRP, the live table in `ipvsadm -L -n` layout, and
/// each real server's health.
fn render_status(s: &State, shared: &Shared, json: bool, kernel: bool) -> String {
    let stats = shared
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .0
        .clone();
    let conns = |k: SvcKey, ip: IpAddr, port: u16| {
        stats
            .iter()
            .find(|d| d.svc == k && d.addr == ip && d.port == port)
            .map_or((0, 0), |d| (d.active, d.inactive))
    };
    let servers = servers(s);
    if json {
        let vrrp: Vec<_> = s
            .vrrp
            .iter()
            .map(|(n, v)| {
                serde_json::json!({"instance": n, "interface": v.interface, "vrid": v.vrid,
                    "state": vrrp_name(v.state), "priority": v.priority})
            })
            .collect();
        let services: Vec<_> = s
            .plan
            .iter()
            .map(|p| {
                let dests: Vec<_> = p
                    .dests
                    .iter()
                    .map(|d| {
                        let (a, i) = conns(p.key, d.addr, d.port);
                        serde_json::json!({"address": addr_port(d.addr, d.port),
                            "forward": method_name(d.method), "weight": d.weight,
                            "active_conns": a, "inactive_conns": i, "sorry": d.sorry})
                    })
                    .collect();
                serde_json::json!({"service": p.key.to_string(), "scheduler": p.scheduler,
                    "quorum_lost": p.quorum_lost, "destinations": dests})
            })
            .collect();
        let health: Vec<_> = servers
            .iter()
            .map(|(k, ip, port, h)| {
                serde_json::json!({"service": k.to_string(), "server": addr_port(*ip, *port),
                    "up": h.up, "last_failure": h.last_failure})
            })
            .collect();
        let rules: Vec<String> = marks(&s.plan).iter().map(ToString::to_string).collect();
        let v = serde_json::json!({"vrrp": vrrp, "services": services, "real_servers": health,
            "fwmark_rules": rules});
        return format!("{v}\n");
    }
    let mut o = String::new();
    o.push_str("VRRP\n");
    for (n, v) in &s.vrrp {
        o.push_str(&format!(
            "  {n:<16} {:<8} vrid {:<3} prio {:<3} {}\n",
            v.interface,
            v.vrid,
            v.priority,
            vrrp_name(v.state)
        ));
    }
    o.push_str(if kernel {
        "IP Virtual Server (lb-director, kernel IPVS dataplane)\n"
    } else {
        "IP Virtual Server (lb-director, userspace dataplane)\n"
    });
    o.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    o.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    for p in &s.plan {
        let mut flags = String::new();
        if let Some((t, _)) = p.persistence {
            flags = format!("persistent {t}");
        }
        o.push_str(&format!("{} {} {flags}\n", p.key, p.scheduler));
        for d in &p.dests {
            let (a, i) = conns(p.key, d.addr, d.port);
            o.push_str(&format!(
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}\n",
                addr_port(d.addr, d.port),
                method_name(d.method),
                d.weight,
                a,
                i
            ));
        }
    }
    // The rules the dataplane installed (those of planned fwmark services),
    // in classification order.
    let rules = marks(&s.plan);
    if !rules.is_empty() {
        o.push_str("Fwmark rules\n");
        for r in &rules {
            o.push_str(&format!("  {r}\n"));
        }
    }
    o.push_str("Real servers\n");
    for (k, ip, port, h) in servers {
        o.push_str(&format!(
            "  {k} -> {:<24} {}{}\n",
            addr_port(ip, port),
            if h.up { "UP" } else { "DOWN" },
            h.last_failure
                .map(|f| format!(" (last failure: {f})"))
                .unwrap_or_default()
        ));
    }
    o
}

/// Prometheus text exposition.
fn render_metrics(s: &State, shared: &Shared) -> String {
    let (stats, fstats) = shared
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut o = String::new();
    o.push_str("# TYPE lb_director_vrrp_state gauge\n# HELP lb_director_vrrp_state 0 init, 1 backup, 2 master, 3 fault\n");
    for (n, i) in &s.vrrp {
        let v = match i.state {
            VrrpState::Initialize => 0,
            VrrpState::Backup => 1,
            VrrpState::Master => 2,
            VrrpState::Fault => 3,
        };
        o.push_str(&format!("lb_director_vrrp_state{{instance=\"{n}\"}} {v}\n"));
    }
    o.push_str("# TYPE lb_director_vrrp_priority gauge\n# HELP lb_director_vrrp_priority effective priority (configured, moved by tracked objects)\n");
    for (n, i) in &s.vrrp {
        o.push_str(&format!(
            "lb_director_vrrp_priority{{instance=\"{n}\"}} {}\n",
            i.priority
        ));
    }
    o.push_str("# TYPE lb_director_real_server_up gauge\n");
    for (k, ip, port, h) in servers(s) {
        o.push_str(&format!(
            "lb_director_real_server_up{{service=\"{k}\",server=\"{}\"}} {}\n",
            addr_port(ip, port),
            u8::from(h.up)
        ));
    }
    o.push_str("# TYPE lb_director_real_server_weight gauge\n# TYPE lb_director_real_server_active_connections gauge\n# TYPE lb_director_real_server_inactive_connections gauge\n");
    for d in &stats {
        let l = format!(
            "service=\"{}\",server=\"{}\"",
            d.svc,
            addr_port(d.addr, d.port)
        );
        o.push_str(&format!(
            "lb_director_real_server_weight{{{l}}} {}\n",
            d.weight
        ));
        o.push_str(&format!(
            "lb_director_real_server_active_connections{{{l}}} {}\n",
            d.active
        ));
        o.push_str(&format!(
            "lb_director_real_server_inactive_connections{{{l}}} {}\n",
            d.inactive
        ));
    }
    let counters = [
        ("connections_total", "connections scheduled"),
        ("in_packets_total", "packets towards the real servers"),
        ("out_packets_total", "packets back to the clients (NAT)"),
        (
            "in_bytes_total",
            "bytes (IP length) towards the real servers",
        ),
        (
            "out_bytes_total",
            "bytes (IP length) back to the clients (NAT)",
        ),
    ];
    let values = |t: &userspace::Traffic| {
        [
            t.conns,
            t.in_packets,
            t.out_packets,
            t.in_bytes,
            t.out_bytes,
        ]
    };
    let services = shared
        .service_traffic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (i, (name, help)) in counters.iter().enumerate() {
        o.push_str(&format!(
            "# TYPE lb_director_service_{name} counter\n# HELP lb_director_service_{name} {help}\n"
        ));
        for (k, t) in &services {
            o.push_str(&format!(
                "lb_director_service_{name}{{service=\"{k}\"}} {}\n",
                values(t)[i]
            ));
        }
    }
    for (i, (name, help)) in counters.iter().enumerate() {
        o.push_str(&format!(
            "# TYPE lb_director_real_server_{name} counter\n# HELP lb_director_real_server_{name} {help}\n"
        ));
        for d in &stats {
            o.push_str(&format!(
                "lb_director_real_server_{name}{{service=\"{}\",server=\"{}\"}} {}\n",
                d.svc,
                addr_port(d.addr, d.port),
                values(&d.traffic)[i]
            ));
        }
    }
    o.push_str(&format!(
        "# TYPE lb_director_frames_forwarded_total counter\nlb_director_frames_forwarded_total {}\n# TYPE lb_director_frames_dropped_total counter\nlb_director_frames_dropped_total {}\n# TYPE lb_director_connections_created_total counter\nlb_director_connections_created_total {}\n",
        fstats.forwarded, fstats.dropped, fstats.conns_created
    ));
    o
}

/// `director status`: asks the running director over its socket.
pub fn status(runtime_dir: &Path, json: bool) -> Result<String, String> {
    use std::io::{Read, Write};
    let p = runtime_dir.join("director.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&p)
        .map_err(|e| format!("{}: {e} (is the director running?)", p.display()))?;
    s.write_all(if json { b"json\n" } else { b"text\n" })
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataplane_interfaces_cover_vip_devs_and_server_routes() {
        let cfg = config::parse_str(
            "t.conf",
            "vrrp_instance V {
               interface eth0
               virtual_router_id 1
               priority 100
               virtual_ipaddress { 192.0.2.10/24 }
               virtual_ipaddress_excluded { 10.11.12.1/24 dev eth1 }
             }
             virtual_server 192.0.2.10 80 {
               lb_kind NAT
               sorry_server 10.30.0.9 80
               real_server 10.11.12.2 80 {
               }
               real_server 10.20.0.2 80 {
               }
             }",
        )
        .unwrap()
        .config;
        let route = |ip: IpAddr| match ip.to_string().as_str() {
            "10.20.0.2" => Some("eth2".to_owned()),
            "10.30.0.9" => Some("eth3".to_owned()),
            "10.11.12.2" => Some("eth1".to_owned()),
            _ => None,
        };
        assert_eq!(
            dataplane_interfaces(&cfg, &["eth9".to_owned()], route),
            ["eth0", "eth1", "eth2", "eth3", "eth9"]
        );
        assert_eq!(
            placements(&cfg.vrrp_instances[0]),
            [
                ("192.0.2.10".parse().unwrap(), 24, "eth0".to_owned()),
                ("10.11.12.1".parse().unwrap(), 24, "eth1".to_owned()),
            ]
        );
    }
}
