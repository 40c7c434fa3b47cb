//! `director lab`: the whole system in network namespaces, in one command.
//!
//! ```text
//!                    switch (one L2 segment, 10.0.0.0/24)
//!   ┌────────┬──────────┬──────────┬────────┬────────┬────────┐
//! client    dir1       dir2        rs1      rs2      rs3
//! .2        .11        .12         .21      .22      .23      VIP 10.0.0.100:80
//!           MASTER     BACKUP      (VIP on lo, small HTTP servers)
//! ```
//!
//! The two directors are child processes running `director run` (the real
//! code path, `--dataplane auto`: kernel IPVS where the kernel has it, the
//! userspace forwarder otherwise) on `examples/configs/lab-master.conf` /
//! `lab-backup.conf`: VRRP, `wlc`, direct routing, HTTP checks. The client sends requests at a
//! fixed rate and the lab prints, each second, how many each real server
//! answered. Then it stops rs3's HTTP server (the table shows it drained),
//! kills the master director (SIGKILL) and reports the failover time (from
//! the kill to the first successful response through the new master) and
//! the number of failed requests. Everything is torn down at the end, on
//! error and on Ctrl-C.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_testing_netns::{Host, Lab, Process};

/// The master's configuration, as shipped.
pub const MASTER_CONF: &str = include_str!("../../configs/lab-master.conf");
/// The backup's configuration, as shipped.
pub const BACKUP_CONF: &str = include_str!("../../configs/lab-backup.conf");

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// Options of `director lab`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// Client requests per second.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Seconds of steady traffic before each event.
    #[arg(long, default_value_t = 5)]
    pub phase_secs: u64,
    /// VRRP version 3 with a 0.1 s advertisement interval (default: v2, 1 s).
    #[arg(long)]
    pub v3: bool,
    /// The director binary to run (default: this one).
    #[arg(long)]
    pub director_bin: Option<PathBuf>,
    /// Print less (no per-second table).
    #[arg(long)]
    pub quiet: bool,
}

impl Default for LabArgs {
    fn default() -> Self {
        Self {
            rate: 50,
            phase_secs: 5,
            v3: false,
            director_bin: None,
            quiet: false,
        }
    }
}

/// One client request.
#[derive(Debug, Clone, Copy)]
pub struct Rec {
    /// When it started, since the traffic began.
    pub start: Duration,
    /// When it ended.
    pub end: Duration,
    /// Which real server answered (1..=3), or `None` when it failed.
    pub server: Option<u8>,
}

/// What the lab measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Responses per server in the steady phase before rs3 stopped.
    pub before: [usize; 3],
    /// Responses per server in the last second of the drained phase.
    pub drained: [usize; 3],
    /// Failed requests between stopping rs3 and the kill.
    pub failed_during_drain: usize,
    /// Kill → first successful response started after it.
    pub failover: Option<Duration>,
    /// Requests started after the kill that failed.
    pub failed_after_kill: usize,
    /// Responses per server after the failover.
    pub after: [usize; 3],
    /// Each director's VRRP state changes, from its log.
    pub vrrp_log: Vec<String>,
}

/// A real server's HTTP server on port 80: answers `rsN\n`; closing the
/// listener when `serving` goes false and reopening it when it goes true.
pub fn http_server(n: u8, serving: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    http_server_on(n, 80, serving, stop);
}

/// [`http_server`] on another port.
pub fn http_server_on(n: u8, port: u16, serving: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    http_server_at(n, (Ipv4Addr::UNSPECIFIED, port).into(), serving, stop);
}

/// [`http_server`] on another address (`[::]:80` for IPv6).
pub fn http_server_at(n: u8, addr: SocketAddr, serving: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let body = format!("rs{n}\n");
    while !stop.load(Ordering::Relaxed) {
        if !serving.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let Ok(l) = TcpListener::bind(addr) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = l.set_nonblocking(true);
        while serving.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let body = body.clone();
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 1024];
                        let mut got = Vec::new();
                        while let Ok(k) = s.read(&mut buf) {
                            if k == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..k]);
                            if got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() > 8192 {
                                break;
                            }
                        }
                        let _ = write!(
                            s,
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

/// One request to the VIP; the server number that answered.
fn request(timeout: Duration) -> Option<u8> {
    request_to(SocketAddr::new(IpAddr::V4(VIP), 80), timeout)
}

/// One HTTP request to `addr`; the number of the lab server that answered.
pub fn request_to(addr: SocketAddr, timeout: Duration) -> Option<u8> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let body = out.split("\r\n\r\n").nth(1)?;
    body.trim().strip_prefix("rs")?.parse().ok()
}

/// Sends requests at `rate` per second until `stop`, each on its own thread.
fn client_loop(rate: u32, t0: Instant, recs: Arc<Mutex<Vec<Rec>>>, stop: Arc<AtomicBool>) {
    let period = Duration::from_secs(1) / rate.max(1);
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let recs = recs.clone();
        std::thread::spawn(move || {
            let start = t0.elapsed();
            let server = request(Duration::from_millis(500));
            let end = t0.elapsed();
            recs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Rec { start, end, server });
        });
        next += period;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

fn counts(recs: &[Rec], from: Duration, to: Duration) -> ([usize; 3], usize) {
    let mut c = [0; 3];
    let mut failed = 0;
    for r in recs.iter().filter(|r| r.start >= from && r.start < to) {
        match r.server {
            Some(n @ 1..=3) => c[usize::from(n - 1)] += 1,
            _ => failed += 1,
        }
    }
    (c, failed)
}

/// Set by Ctrl-C.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn watch_ctrl_c() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                INTERRUPTED.store(true, Ordering::Relaxed);
            }
        });
    });
}

/// Sleeps, printing a table row each second; `Err` on Ctrl-C.
fn run_for(
    secs: u64,
    t0: Instant,
    recs: &Mutex<Vec<Rec>>,
    quiet: bool,
    event: &str,
) -> Result<(), String> {
    let mut ev = event.to_owned();
    for _ in 0..secs {
        let t = t0.elapsed();
        for _ in 0..10 {
            if INTERRUPTED.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !quiet {
            let r = recs.lock().unwrap_or_else(|e| e.into_inner());
            let (c, f) = counts(&r, t, t + Duration::from_secs(1));
            println!(
                "{:>6.1} {:>6} {:>6} {:>6} {:>7}   {ev}",
                t.as_secs_f64(),
                c[0],
                c[1],
                c[2],
                f
            );
            ev.clear();
        }
    }
    Ok(())
}

fn setup_host(h: &Host, addr: Ipv4Addr) -> Result<(), String> {
    let e = |e: lb_testing_netns::Error| e.to_string();
    h.disable_offloads("eth0").map_err(e)?;
    h.add_addr("eth0", addr, 24).map_err(e)?;
    Ok(())
}

/// `director lab` as a command: prints the tables and figures, returns an
/// exit code.
pub fn main(args: &LabArgs) -> i32 {
    watch_ctrl_c();
    match run(args) {
        Ok(r) => {
            println!();
            for l in &r.vrrp_log {
                println!("{l}");
            }
            println!(
                "rs3 stopped: requests failed while it drained: {}",
                r.failed_during_drain
            );
            match r.failover {
                Some(d) => println!(
                    "failover: {:.3} s from killing the master to the first response through the backup",
                    d.as_secs_f64()
                ),
                None => println!("failover: no successful response after the kill"),
            }
            println!(
                "failed requests after the kill: {} (at {} requests/s)",
                r.failed_after_kill, args.rate
            );
            if r.failover.is_some() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("director lab: {e}");
            1
        }
    }
}

/// Builds the lab, runs the scenario, tears it down; returns the figures.
pub fn run(args: &LabArgs) -> Result<Report, String> {
    let lab = Lab::with_programs("dirlab", &["nft"]).map_err(|e| e.to_string())?;
    run_in(&lab, args)
}

/// The scenario in an existing lab (tests use this with their own `Lab`).
pub fn run_in(lab: &Lab, args: &LabArgs) -> Result<Report, String> {
    let e = |e: lb_testing_netns::Error| e.to_string();
    let bin = match &args.director_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?,
    };
    let sw = lab.add_switch("sw").map_err(e)?;
    let client = lab.add_host("client").map_err(e)?;
    let dirs = [
        lab.add_host("dir1").map_err(e)?,
        lab.add_host("dir2").map_err(e)?,
    ];
    let rs: Vec<Host> = (1..=3)
        .map(|i| lab.add_host(&format!("rs{i}")))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    let mut ports = Vec::new();
    for h in std::iter::once(&client).chain(&dirs).chain(&rs) {
        ports.push(lab.attach(&sw, h, "eth0").map_err(e)?);
    }
    for p in &ports {
        sw.host().disable_offloads(p).map_err(e)?;
    }
    setup_host(&client, Ipv4Addr::new(10, 0, 0, 2))?;
    setup_host(&dirs[0], Ipv4Addr::new(10, 0, 0, 11))?;
    setup_host(&dirs[1], Ipv4Addr::new(10, 0, 0, 12))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut serving = Vec::new();
    for (i, h) in rs.iter().enumerate() {
        setup_host(h, Ipv4Addr::new(10, 0, 0, 21 + i as u8))?;
        h.add_loopback_vip(VIP).map_err(e)?;
        let on = Arc::new(AtomicBool::new(true));
        let (on2, stop2) = (on.clone(), stop.clone());
        let n = i as u8 + 1;
        h.spawn_thread(move || http_server(n, on2, stop2))
            .map_err(e)?;
        serving.push(on);
    }
    // Stop the server threads whatever happens.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop_guard = StopOnDrop(stop.clone());

    let dir = lab.dir().map_err(e)?.to_owned();
    let tweak = |c: &str| {
        if args.v3 {
            c.replace("advert_int 1\n", "advert_int 0.1\n    version 3\n")
        } else {
            c.to_owned()
        }
    };
    let mut procs: Vec<Process> = Vec::new();
    for (i, (h, conf)) in dirs.iter().zip([MASTER_CONF, BACKUP_CONF]).enumerate() {
        let path = dir.join(format!("lab-dir{}.conf", i + 1));
        std::fs::write(&path, tweak(conf)).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join(format!("dir{}.log", i + 1)))
            .map_err(|e| e.to_string())?;
        let mut cmd = h.command(&bin);
        cmd.arg("run")
            .arg("-f")
            .arg(&path)
            .args(["--dataplane", "auto", "--runtime-dir"])
            .arg(dir.join(format!("run-dir{}", i + 1)))
            .stdout(std::process::Stdio::null())
            .stderr(log);
        procs.push(Process::spawn(cmd).map_err(e)?);
    }
    if !args.quiet {
        println!(
            "lab: client 10.0.0.2, directors 10.0.0.11 (master) / 10.0.0.12 (backup), real servers 10.0.0.21-23, VIP {VIP}:80, VRRP {}",
            if args.v3 {
                "v3 advert_int 0.1"
            } else {
                "v2 advert_int 1"
            }
        );
        println!("director logs: {}", dir.display());
    }
    // Wait until the VIP answers.
    let ready = client
        .run_in(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !INTERRUPTED.load(Ordering::Relaxed) {
                if request(Duration::from_millis(300)).is_some() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        })
        .map_err(e)?;
    if !ready {
        let log = std::fs::read_to_string(dir.join("dir1.log")).unwrap_or_default();
        return Err(format!("the VIP never answered; director 1 log:\n{log}"));
    }
    let recs = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let cstop = Arc::new(AtomicBool::new(false));
    let client_thread = {
        let (recs, cstop) = (recs.clone(), cstop.clone());
        let rate = args.rate;
        client
            .spawn_thread(move || client_loop(rate, t0, recs, cstop))
            .map_err(e)?
    };
    struct StopClient(Arc<AtomicBool>);
    impl Drop for StopClient {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _cguard = StopClient(cstop.clone());
    if !args.quiet {
        println!(
            "\n{:>6} {:>6} {:>6} {:>6} {:>7}   event",
            "t(s)", "rs1", "rs2", "rs3", "failed"
        );
    }
    let n = args.phase_secs.max(2);
    run_for(n, t0, &recs, args.quiet, "traffic at a fixed rate")?;
    let t_stop = t0.elapsed();
    serving[2].store(false, Ordering::Relaxed);
    run_for(n, t0, &recs, args.quiet, "rs3's HTTP server stopped")?;
    let t_kill_at = t0.elapsed();
    let t_kill = t_kill_at;
    procs[0].kill().map_err(e)?;
    run_for(
        n + 3,
        t0,
        &recs,
        args.quiet,
        "master director killed (SIGKILL)",
    )?;
    cstop.store(true, Ordering::Relaxed);
    let _ = client_thread.join();
    std::thread::sleep(Duration::from_millis(600));
    let r = recs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sec = Duration::from_secs(1);
    let mut report = Report {
        before: counts(&r, Duration::ZERO, t_stop).0,
        drained: counts(&r, t_kill_at - sec, t_kill_at).0,
        failed_during_drain: counts(&r, t_stop, t_kill_at).1,
        ..Report::default()
    };
    let first_ok = r
        .iter()
        .filter(|x| x.start >= t_kill && x.server.is_some())
        .min_by_key(|x| x.end);
    report.failover = first_ok.map(|x| x.end.saturating_sub(t_kill));
    report.failed_after_kill = r
        .iter()
        .filter(|x| x.start >= t_kill && x.server.is_none())
        .count();
    if let Some(f) = first_ok {
        report.after = counts(&r, f.end, Duration::MAX).0;
    }
    for mut p in procs {
        let _ = p.terminate();
        let _ = p.wait();
    }
    for i in 1..=2 {
        let log = std::fs::read_to_string(dir.join(format!("dir{i}.log"))).unwrap_or_default();
        report.vrrp_log.extend(
            log.lines()
                .filter(|l| l.contains("VRRP") || l.contains("ERROR") || l.contains("WARN"))
                .map(|l| format!("dir{i}: {l}")),
        );
    }
    Ok(report)
}
