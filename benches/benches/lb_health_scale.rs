//! lb-health at scale: 10,000 TCP checks a second against local listeners.
//!
//! Reports, for `LB_HEALTH_CHECKS` checks (default 10,000) with a 1 s
//! interval run for `LB_HEALTH_SECONDS` (default 10):
//! * checks completed per second (target: 10,000),
//! * scheduling jitter: lag from a check's due time to its probe start,
//!   p50 / p99 / max (target p99 < 10 ms),
//! * heap bytes per configured checker, right after configuration and in
//!   steady state (target < 2 KB), measured with a counting allocator.
//!
//! Not a criterion bench (it measures a rate and a distribution, not the
//! time of one call): `cargo bench -p lb-benches --bench lb_health_scale`.
//! The checks are distinct (each its own key, so nothing is deduplicated)
//! but share 16 listeners (on their own thread); every connection is closed with RST, as
//! HAProxy does, so no TIME_WAIT piles up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use lb_health::probe::{ConnectSpec, ProbeSpec};
use lb_health::{CheckKey, Engine, EngineConfig, StateConfig};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// The allocator API is unsafe by definition; this one only forwards to
// `System` and counts.
#[allow(unsafe_code)]
// SAFETY: every method forwards the caller's layout and pointer to `System`
// unchanged, so `System`'s guarantees carry over; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let checks = env("LB_HEALTH_CHECKS", 10_000) as usize;
    let seconds = env("LB_HEALTH_SECONDS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The listeners run on their own thread and runtime, standing in for
    // remote servers; the engine gets the 2-worker runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            for _ in 0..16 {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("listen");
                addr_tx.send(l.local_addr().expect("addr")).expect("send");
                tokio::spawn(async move {
                    while let Ok((s, _)) = l.accept().await {
                        drop(s);
                    }
                });
            }
            std::future::pending::<()>().await;
        });
    });
    let listeners: Vec<_> = addr_rx.iter().take(16).collect();
    runtime.block_on(async move {
        let mut config = EngineConfig::default();
        config.max_concurrency = 512;
        let (mut engine, mut events) = Engine::<u32>::new(config);
        tokio::spawn(async move { while events.recv().await.is_some() {} });

        let pairs: Vec<_> = (0..checks)
            .map(|i| {
                let mut c = ConnectSpec::new(listeners[i % listeners.len()]);
                c.timeout(Duration::from_secs(2)).max_reply_bytes(1 << 20 | i);
                let key = CheckKey {
                    probe: ProbeSpec::Tcp(c),
                    state: StateConfig::haproxy(Duration::from_secs(1), 2, 3),
                };
                (i as u32, key)
            })
            .collect();
        let before = LIVE.load(Ordering::Relaxed);
        engine.reload(pairs).expect("reload");
        let configured = LIVE.load(Ordering::Relaxed) - before;

        // Warm up one interval (first runs are spread over it), then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s0 = engine.stats();
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let s1 = engine.stats();
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let steady = LIVE.load(Ordering::Relaxed) - before;

        let rate = (s1.completed - s0.completed) as f64 / elapsed;
        println!("lb-health scale: {checks} TCP checks, inter 1 s, {seconds} s measured, 2 worker threads");
        println!(
            "  checks/s          {rate:>10.0}   (target 10000: ratio {:.2})",
            rate / 10_000.0
        );
        println!(
            "  jitter p50/p99/max {:>6.2} / {:.2} / {:.2} ms (due -> probe start, 50 us buckets; target p99 < 10 ms)",
            ms(s1.lag_quantile(0.50)),
            ms(s1.lag_quantile(0.99)),
            ms(s1.lag_quantile(1.0)),
        );
        println!(
            "  heap per checker  {:>6} B configured, {} B steady state (target < 2048 B)",
            configured / checks as isize,
            steady / checks as isize
        );
        let per_check = cpu / (s1.completed - s0.completed).max(1) as f64;
        println!(
            "  CPU per check     {:>6.1} us (user+sys, engine + listeners), so 2 idle cores would do ~{:.0} checks/s",
            per_check * 1e6,
            2.0 / per_check
        );
        println!("  probes started    {} (whole run)", s1.starts);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("  machine load      {}", load.trim());
        engine.shutdown();
    });
}

/// User + system CPU time of this process, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 Hz on Linux).
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
