//! Scale figure for the Linux driver: many VRRPv3 instances in one
//! [`MultiDriver`] at a 100 ms advertisement interval; prints the CPU time
//! (user + system, from `/proc/self/stat`) divided by wall time.
//!
//! ```text
//! cargo run --release -p lb-vrrp --features linux --example vrrp_scale -- [COUNT] [SECS]
//! ```
//!
//! Needs root (it builds two network namespaces `a` and `b` joined by four
//! veth pairs). Two runs: `a` alone as Master of COUNT instances (default
//! 1000: VRIDs 1–250 on each of eth0–eth3), then `a` as Master and `b` as
//! Backup of the same COUNT instances, so `b` receives COUNT advertisement
//! streams. Each run measures SECS (default 30) seconds after a 3 s warm-up.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lb_testing_netns::Lab;
use lb_vrrp::linux::MultiDriver;
use lb_vrrp::wire::Version;
use lb_vrrp::{Config, Event, State, VirtualRouter};

const LINKS: usize = 4;
const WARMUP: Duration = Duration::from_secs(3);

/// (utime, stime) of this process, in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which ends with the last ')').
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12).
    (f[11].parse().unwrap(), f[12].parse().unwrap())
}

fn child(role: &str, count: usize, secs: u64) {
    let master = role == "master";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut d = MultiDriver::new().unwrap();
        d.set_prefix_lengths(32, 128);
        for k in 0..count {
            let link = k % LINKS;
            let vrid = u8::try_from(k / LINKS % 255 + 1).unwrap();
            let me = if master { 1 } else { 2 };
            let mut cfg = Config::new(
                Version::V3,
                vrid,
                IpAddr::V4(Ipv4Addr::new(10, link as u8, 0, me)),
            );
            cfg.interval = 10; // centiseconds
            cfg.priority = if master { 200 } else { 100 };
            cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(10, 100 + link as u8, 1, vrid))];
            d.add(VirtualRouter::new(cfg).unwrap(), &format!("eth{link}"))
                .unwrap();
        }
        d.on_error(|e| eprintln!("error: {e}"));
        let states = Arc::new(Mutex::new(vec![State::Initialize; count]));
        let changes = Arc::new(AtomicUsize::new(0));
        let (s2, c2) = (Arc::clone(&states), Arc::clone(&changes));
        d.on_event(move |i, _, ev| {
            if let Event::StateChanged { to, .. } = ev {
                s2.lock().unwrap()[i] = *to;
                c2.fetch_add(1, Ordering::Relaxed);
            }
        });
        let report = std::thread::spawn(move || {
            std::thread::sleep(WARMUP);
            let t0 = std::time::Instant::now();
            let c0 = cpu_ticks();
            let n0 = changes.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_secs(secs));
            let c1 = cpu_ticks();
            let wall = t0.elapsed().as_secs_f64();
            let flaps = changes.load(Ordering::Relaxed) - n0;
            let st = states.lock().unwrap();
            let masters = st.iter().filter(|s| **s == State::Master).count();
            let backups = st.iter().filter(|s| **s == State::Backup).count();
            let share = |t: u64| t as f64 / 100.0 / wall * 100.0;
            (
                share(c1.0 - c0.0 + c1.1 - c0.1),
                share(c1.0 - c0.0),
                share(c1.1 - c0.1),
                masters,
                backups,
                flaps,
            )
        });
        d.run(tokio::time::sleep(
            WARMUP + Duration::from_secs(secs) + Duration::from_millis(500),
        ))
        .await
        .unwrap();
        let (total, user, sys, masters, backups, flaps) = report.join().unwrap();
        println!(
            "{role}: {count} instances ({masters} Master, {backups} Backup, \
             {flaps} state changes while measuring), {secs} s: CPU {total:.2} % of one core \
             (user {user:.2} %, system {sys:.2} %)"
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    let count: usize = args.first().map_or(1000, |s| s.parse().unwrap());
    let secs: u64 = args.get(1).map_or(30, |s| s.parse().unwrap());
    assert!(count <= LINKS * 255, "at most {} instances", LINKS * 255);
    let lab = Lab::new("vscale").expect("needs root and network namespaces");
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    for l in 0..LINKS {
        let ifname = format!("eth{l}");
        lab.link(&a, &ifname, &b, &ifname).unwrap();
        a.add_addr(&ifname, Ipv4Addr::new(10, l as u8, 0, 1), 24)
            .unwrap();
        b.add_addr(&ifname, Ipv4Addr::new(10, l as u8, 0, 2), 24)
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let spawn = |host: &lb_testing_netns::Host, role: &str| {
        let mut cmd: Command = host.command(&exe);
        cmd.args(["--child", role, &count.to_string(), &secs.to_string()])
            .stdout(Stdio::piped());
        cmd.spawn().unwrap()
    };
    println!("run 1: {count} Masters, no peer");
    let m = spawn(&a, "master");
    print!(
        "{}",
        String::from_utf8_lossy(&m.wait_with_output().unwrap().stdout)
    );
    println!("run 2: {count} Masters on a, {count} Backups on b");
    let m = spawn(&a, "master");
    std::thread::sleep(Duration::from_millis(500));
    let bk = spawn(&b, "backup");
    print!(
        "{}",
        String::from_utf8_lossy(&m.wait_with_output().unwrap().stdout)
    );
    print!(
        "{}",
        String::from_utf8_lossy(&bk.wait_with_output().unwrap().stdout)
    );
}
