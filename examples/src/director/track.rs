//! VRRP tracking: `track_interface`, `track_script` (`vrrp_script`) and
//! `track_file` resolved into `lb-vrrp` [`Tracked`] objects, and the
//! watchers that feed their status to the routers.
//!
//! ```text
//!  vrrp_script ──run every interval (timeout, rise/fall, as its user)─┐
//!  track_interface ──operstate every 500 ms───────────────────────────┼──► MultiCommand ──► handle_track
//!  track_file ──file contents every second────────────────────────────┘
//! ```
//!
//! One watcher per object per driver, however many of its routers track it.

use std::collections::BTreeMap;
use std::time::Duration;

use lb_vrrp::linux::{MultiCommand, MultiDriver};
use lb_vrrp::{TrackKind, TrackStatus, Tracked};
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

/// Polls `read` every `every`, calling `send` on each change.
async fn poll(
    mut last: TrackStatus,
    every: Duration,
    mut read: impl FnMut() -> TrackStatus,
    send: impl Fn(TrackStatus) -> bool,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = read();
        if now != last {
            last = now;
            if !send(now) {
                return;
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
