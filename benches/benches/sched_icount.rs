//! Instruction counts per pick, for callgrind (the host is too noisy for
//! stable wall-clock figures; instruction counts do not depend on load).
//!
//! `sched_icount <case> <n> <picks>` builds one service (or table) and runs
//! `picks` picks. Run it twice under callgrind with two pick counts and
//! divide the difference in instructions by the difference in picks: setup
//! cancels out. The last line printed also gives the thread's CPU time
//! (`/proc/thread-self/schedstat`), for the same difference natively. `scripts`-free on purpose; the exact command is in
//! `benches/README.md`. Cases: the 14 kernel scheduler names, `maglev`
//! (`MaglevTable::get_bytes` on a 13-byte flow key), `p2c`
//! (`WeightedRandom::pick_two`), `loop` (the harness alone) and
//! `maglev_build` / `maglev_build_equal` (one "pick" is one build of an
//! `n`-backend table, M = 65537, weights 1..4 / all 1, backends named as in
//! `sched_beyond`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use lb_sched::hashkey::HashKey;
use lb_sched::maglev::MaglevBuilder;
use lb_sched::p2c::WeightedRandom;
use lb_sched::{
    ConnKind, DestConfig, PacketInfo, Protocol, RandomSource as _, SchedulerKind, Service,
    ServiceFlags, ServiceKey, SplitMix64,
};

fn service(kind: SchedulerKind, n: u32) -> Service {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1:80".parse().unwrap(),
    };
    let mut svc = Service::new(key, ServiceFlags::NONE, kind, Instant::now()).unwrap();
    let mut rng = SplitMix64::new(1);
    for i in 0..n {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 80);
        let weight = 1 + (rng.next_u64() % 8) as u32;
        let id = svc.add_dest(DestConfig::new(addr, weight)).unwrap();
        // Some load, all busy (so nq does the weighted comparison).
        for _ in 0..1 + rng.next_u64() % 20 {
            svc.conn_bind(id, ConnKind::Active).unwrap();
        }
        for _ in 0..rng.next_u64() % 50 {
            svc.conn_bind(id, ConnKind::Inactive).unwrap();
        }
    }
    svc
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sched_icount <rr|wrr|...|mh|twos|maglev|p2c> <n> <picks>";
    // `cargo bench` runs every bench binary with `--bench`: do nothing then.
    if args.len() != 4 {
        eprintln!("{usage}");
        return;
    }
    let case = args[1].as_str();
    let n: u32 = args[2].parse().expect("n");
    let picks: u32 = args[3].parse().expect("picks");
    let mut rng = SplitMix64::new(2);
    let mut hits = 0u32;
    match case {
        "maglev" => {
            let mut b = MaglevBuilder::new(HashKey::new(1, 2));
            for i in 0..n {
                b.backend(i, &i.to_le_bytes(), 1);
            }
            let t = b.build().unwrap();
            let mut flow = [0u8; 13];
            for i in 0..picks {
                flow[..4].copy_from_slice(&i.wrapping_mul(0x9e37_79b9).to_le_bytes());
                hits += u32::from(black_box(t.get_bytes(black_box(&flow))).is_some());
            }
        }
        "maglev_build" | "maglev_build_equal" => {
            let mut b = MaglevBuilder::new(HashKey::new(1, 2));
            for i in 0..n {
                let name = format!("10.{}.{}.{}:80", i / 65536, (i / 256) % 256, i % 256);
                let w = if case == "maglev_build" { 1 + i % 4 } else { 1 };
                b.backend(i, name.as_bytes(), w);
            }
            for _ in 0..picks {
                let t = black_box(&b).build().unwrap();
                hits += u32::from(black_box(t).get(0).is_some());
            }
        }
        "p2c" => {
            let items: Vec<(u32, u32)> = (0..n).map(|i| (i, 1 + i % 8)).collect();
            let pool = WeightedRandom::new(&items);
            let loads: Vec<u64> = (0..u64::from(n)).map(|i| i * 7 % 50).collect();
            for _ in 0..picks {
                let p = pool.pick_two(&mut rng, |&d| loads[d as usize]);
                hits += u32::from(black_box(p).is_some());
            }
        }
        "loop" => {
            // The harness alone: packet construction and `black_box`, what
            // every scheduler case pays on top of its pick.
            let base = PacketInfo::default();
            let mut client = 0u32;
            for _ in 0..picks {
                client = client.wrapping_add(0x9e37_79b9);
                let p = PacketInfo {
                    src: IpAddr::V4(Ipv4Addr::from(client)),
                    ..base
                };
                hits += u32::from(black_box(&p).src_port == 0);
            }
        }
        name => {
            let kind: SchedulerKind = name.parse().expect("scheduler name");
            let mut svc = service(kind, n);
            let now = Instant::now();
            let base = PacketInfo::new(
                Protocol::Tcp,
                "198.51.100.7:40000".parse().unwrap(),
                "192.0.2.1:80".parse().unwrap(),
            );
            let mut client = 0u32;
            for _ in 0..picks {
                // A new client address per pick, so the hashing schedulers
                // (sh, mh) hash a different key each time; dh/lblc/lblcr key
                // on the (fixed) virtual address.
                client = client.wrapping_add(0x9e37_79b9);
                let p = PacketInfo {
                    src: IpAddr::V4(Ipv4Addr::from(client)),
                    ..base
                };
                hits += u32::from(black_box(svc.pick(now, black_box(&p), &mut rng)).is_some());
            }
        }
    }
    // CPU time this thread has run, in ns (first field of schedstat): the
    // difference between two runs gives CPU time per pick, which, unlike
    // wall time, does not count the time other processes hold the core.
    let cpu_ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    println!("{case} n={n} picks={picks} hits={hits} cpu_ns={cpu_ns}");
}
