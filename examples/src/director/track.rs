//! VRRP tracking: `track_interface`, `track_script` (`vrrp_script`) and
//! `track_file` resolved into `lb-vrrp` [`Tracked`] objects, and the
//! watchers that feed their status to the routers.
//!
//! ```text
//!  vrrp_script ──run every interval (timeout, rise/fall, as its user)─┐
//!  track_interface ──operstate on each rtnetlink link event, and every──┼──► MultiCommand ──► handle_track
//!                    500 ms in case an event is lost                 │
//!  track_file ──file contents every second────────────────────────────┘
//! ```
//!
//! One watcher per object per driver, however many of its routers track it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lb_vrrp::linux::{MultiCommand, MultiDriver};
use lb_vrrp::{TrackKind, TrackStatus, Tracked};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::privs;
use crate::config::{Config, VrrpInstance, VrrpScript};

/// What a watcher observes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// An interface's `operstate`.
    Interface(String),
    /// A `vrrp_script` by name.
    Script(String),
    /// A `track_file` block by name.
    File(String),
}

/// The tracked objects of `inst`, in router order, with their sources.
/// References to undefined scripts or files are reported and skipped, as
/// keepalived does.
pub fn tracked(cfg: &Config, inst: &VrrpInstance) -> Vec<(Tracked, Source)> {
    let mut out = Vec::new();
    for t in &inst.track_interface {
        let mut tr = Tracked::new(t.name.clone(), TrackKind::Interface, t.weight.unwrap_or(0));
        tr.reverse = t.reverse;
        out.push((tr, Source::Interface(t.name.clone())));
    }
    for t in &inst.track_script {
        let Some(s) = cfg.vrrp_scripts.iter().find(|s| s.name == t.name) else {
            tracing::warn!(instance = %inst.name, script = %t.name, "track_script: no such vrrp_script; ignored");
            continue;
        };
        let mut tr = Tracked::new(
            t.name.clone(),
            TrackKind::Script,
            t.weight.unwrap_or(s.weight),
        );
        tr.reverse = t.reverse || (t.weight.is_none() && s.weight_reverse);
        if s.init_fail {
            tr.initial = TrackStatus::Down;
        }
        out.push((tr, Source::Script(t.name.clone())));
    }
    for t in &inst.track_file {
        let Some(f) = cfg.track_files.iter().find(|f| f.name == t.name) else {
            tracing::warn!(instance = %inst.name, file = %t.name, "track_file: no such track_file block; ignored");
            continue;
        };
        let mut tr = Tracked::new(
            t.name.clone(),
            TrackKind::File,
            t.weight.unwrap_or(f.weight),
        );
        tr.reverse = t.reverse || (t.weight.is_none() && f.reverse);
        tr.initial = TrackStatus::Value(read_value(&f.file));
        out.push((tr, Source::File(t.name.clone())));
    }
    out
}

/// Whether any `vrrp_script` would run as another user.
pub fn scripts_change_user(cfg: &Config) -> bool {
    !cfg.vrrp_scripts.is_empty()
        && (cfg.global.script_user.is_some() || cfg.vrrp_scripts.iter().any(|s| s.user.is_some()))
}

/// A file's value: its first token as an integer; missing or unreadable is 0.
fn read_value(path: &str) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

/// Whether `ifname`'s link is up (a missing interface is down).
fn link_up(ifname: &str) -> bool {
    match std::fs::read_to_string(format!("/sys/class/net/{ifname}/operstate")) {
        Ok(s) => !matches!(s.trim(), "down" | "lowerlayerdown" | "notpresent"),
        Err(_) => false,
    }
}

/// Woken on every rtnetlink link message (`RTMGRP_LINK`: a link added,
/// removed, up, down, carrier change) in this process's network namespace,
/// so that interface watchers read `operstate` at once instead of on their
/// next 500 ms tick: a Master whose link fails gives up within
/// milliseconds, as keepalived does with its netlink link monitor. The
/// message itself is not parsed; `operstate` stays the one source of truth.
/// One thread, started on first use; `None` if the socket cannot be opened
/// (the 500 ms poll still works).
fn link_events() -> Option<Arc<Notify>> {
    static EVENTS: OnceLock<Option<Arc<Notify>>> = OnceLock::new();
    EVENTS
        .get_or_init(|| {
            use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
            const RTMGRP_LINK: u32 = 1;
            let mut sock = Socket::new(NETLINK_ROUTE).ok()?;
            sock.bind(&SocketAddr::new(0, RTMGRP_LINK)).ok()?;
            let notify = Arc::new(Notify::new());
            let n = notify.clone();
            std::thread::Builder::new()
                .name("link-events".into())
                .spawn(move || {
                    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
                    loop {
                        buf.clear();
                        match sock.recv(&mut buf, 0) {
                            Ok(_) => n.notify_waiters(),
                            // ENOBUFS: events were lost; look anyway.
                            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                                n.notify_waiters();
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "rtnetlink link events stopped; interfaces are polled every 500 ms");
                                return;
                            }
                        }
                    }
                })
                .ok()?;
            Some(notify)
        })
        .clone()
}

/// `(router index, tracked index)` pairs to tell about one source.
pub type Targets = Vec<(usize, usize)>;

/// Starts one watcher per source; each sends a command to `tx` when its
/// status changes from `initial`. Abort the handles to stop them.
pub fn spawn_watchers(
    cfg: &Config,
    sources: BTreeMap<Source, (TrackStatus, Targets)>,
    tx: &UnboundedSender<MultiCommand>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for (src, (initial, targets)) in sources {
        let tx = tx.clone();
        let send = move |status: TrackStatus| {
            let targets = targets.clone();
            tx.send(Box::new(move |d: &mut MultiDriver| {
                let now = d.now();
                for &(i, k) in &targets {
                    d.router_mut(i).handle_track(now, k, status);
                    d.flush(i);
                }
            }) as MultiCommand)
                .is_ok()
        };
        let task = match src {
            Source::Interface(name) => tokio::spawn(poll(
                initial,
                Duration::from_millis(500),
                link_events(),
                move || {
                    if link_up(&name) {
                        TrackStatus::Up
                    } else {
                        TrackStatus::Down
                    }
                },
                send,
            )),
            Source::File(name) => {
                let Some(f) = cfg.track_files.iter().find(|f| f.name == name) else {
                    continue;
                };
                if let Some(v) = f.init_file
                    && !std::path::Path::new(&f.file).exists()
                    && let Err(e) = std::fs::write(&f.file, format!("{v}\n"))
                {
                    tracing::warn!(file = %f.file, error = %e, "track_file: init_file");
                }
                let path = f.file.clone();
                tokio::spawn(poll(
                    initial,
                    Duration::from_secs(1),
                    None,
                    move || TrackStatus::Value(read_value(&path)),
                    send,
                ))
            }
            Source::Script(name) => {
                let Some(s) = cfg.vrrp_scripts.iter().find(|s| s.name == name) else {
                    continue;
                };
                let user = match &s.user {
                    Some((u, g)) => privs::lookup_user(u, g.as_deref()),
                    None => cfg
                        .global
                        .script_user
                        .as_ref()
                        .and_then(|(u, g)| privs::lookup_user(u, g.as_deref())),
                };
                tokio::spawn(run_script(s.clone(), user, initial, send))
            }
        };
        out.push(task);
    }
    out
}

/// Polls `read` every `every`, and at once whenever `wake` fires, calling
/// `send` on each change.
async fn poll(
    mut last: TrackStatus,
    every: Duration,
    wake: Option<Arc<Notify>>,
    mut read: impl FnMut() -> TrackStatus,
    send: impl Fn(TrackStatus) -> bool,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate
    loop {
        // Registered before reading, so that an event arriving while we
        // read still wakes the next wait.
        let woken = wake.as_ref().map(|w| w.notified());
        tokio::pin!(woken);
        if let Some(n) = woken.as_mut().as_pin_mut() {
            n.enable();
        }
        let now = read();
        if now != last {
            last = now;
            if !send(now) {
                return;
            }
        }
        match woken.as_mut().as_pin_mut() {
            Some(n) => {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = n => {}
                }
            }
            None => {
                tick.tick().await;
            }
        }
    }
}

/// Runs a `vrrp_script` every interval through `sh -c` (killed after its
/// timeout, which counts as a failure). The status turns Up after `rise`
/// successes in a row and Down after `fall` failures in a row.
async fn run_script(
    s: VrrpScript,
    user: Option<(u32, u32)>,
    mut status: TrackStatus,
    send: impl Fn(TrackStatus) -> bool,
) {
    let interval = s.interval.max(Duration::from_millis(10));
    let timeout = s.timeout.unwrap_or(interval);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ok_run, mut bad_run) = (0u32, 0u32);
    loop {
        tick.tick().await;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(&s.script).kill_on_drop(true);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        let ok = match cmd.spawn() {
            Ok(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
                Ok(Ok(st)) => st.success(),
                Ok(Err(_)) => false,
                Err(_) => {
                    tracing::warn!(script = %s.name, "vrrp_script timed out");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(script = %s.name, error = %e, "vrrp_script");
                false
            }
        };
        if ok {
            ok_run = ok_run.saturating_add(1);
            bad_run = 0;
        } else {
            bad_run = bad_run.saturating_add(1);
            ok_run = 0;
        }
        let next = if status == TrackStatus::Down && ok_run >= s.rise.max(1) {
            TrackStatus::Up
        } else if status == TrackStatus::Up && bad_run >= s.fall.max(1) {
            TrackStatus::Down
        } else {
            status
        };
        if next != status {
            status = next;
            tracing::info!(script = %s.name, ?status, "vrrp_script");
            if !send(status) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_weights_and_sources() {
        let cfg = crate::config::parse_str(
            "t.conf",
            "vrrp_script chk {
               script \"true\"
               weight -20
               init_fail
             }
             track_file tf {
               file /nonexistent/x
               weight 3
             }
             vrrp_instance VI_1 {
               interface eth0
               virtual_router_id 51
               track_interface {
                 eth1 weight 10
                 eth2
               }
               track_script {
                 chk
               }
               track_file {
                 tf weight -2
               }
               virtual_ipaddress { 10.0.0.100/24 }
             }",
        )
        .unwrap()
        .config;
        let t = tracked(&cfg, &cfg.vrrp_instances[0]);
        let got: Vec<_> = t
            .iter()
            .map(|(tr, s)| (tr.name.as_str(), tr.weight, tr.initial, s.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "eth1",
                    10,
                    TrackStatus::Up,
                    Source::Interface("eth1".into())
                ),
                ("eth2", 0, TrackStatus::Up, Source::Interface("eth2".into())),
                ("chk", -20, TrackStatus::Down, Source::Script("chk".into())),
                ("tf", -2, TrackStatus::Value(0), Source::File("tf".into())),
            ]
        );
    }
}
