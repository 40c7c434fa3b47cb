//! lb-sched kernel schedulers: O(1) tournament-tree picks of lc/wlc/sed/nq
//! and O(log n) twos picks against the kernel's O(n) scans
//! (`lb_sched::ipvs::scan`) in the same run, plus rr/wrr picks and sh/dh/mh
//! lookups (hash included).
//!
//! The scan baseline walks a contiguous `Vec<Dest>` (friendlier to the
//! cache than the kernel's linked list), so the ratios are conservative.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lb_sched::RandomSource as _;
use lb_sched::ipvs::scan;
use lb_sched::{
    ConnKind, Dest, DestConfig, DestId, PacketInfo, Protocol, SchedulerConfig, SchedulerKind,
    Service, ServiceFlags, ServiceKey, SplitMix64,
};

fn service(kind: impl Into<SchedulerConfig>, n: u32, seed: u64) -> (Service, Vec<DestId>) {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1:80".parse().unwrap(),
    };
    let mut svc = Service::new(key, ServiceFlags::NONE, kind, Instant::now()).unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut ids = Vec::new();
    for i in 0..n {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 80);
        let weight = 1 + (rng.next_u64() % 8) as u32;
        let id = svc.add_dest(DestConfig::new(addr, weight)).unwrap();
        // A spread of existing load so the comparator has work to do.
        for _ in 0..rng.next_u64() % 20 {
            svc.conn_bind(id, ConnKind::Active).unwrap();
        }
        for _ in 0..rng.next_u64() % 50 {
            svc.conn_bind(id, ConnKind::Inactive).unwrap();
        }
        ids.push(id);
    }
    (svc, ids)
}

fn pkt() -> PacketInfo {
    PacketInfo::new(
        Protocol::Tcp,
        "198.51.100.7:40000".parse().unwrap(),
        "192.0.2.1:80".parse().unwrap(),
    )
}

fn least(c: &mut Criterion) {
    let kinds = [
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
    ];
    for n in [1_000u32, 10_000] {
        let mut g = c.benchmark_group(format!("least_{n}"));
        for kind in kinds {
            let (mut svc, ids) = service(kind, n, 1);
            // nq returns the first idle destination at once; keep all busy so
            // both sides do the full weighted comparison.
            if kind == SchedulerKind::Nq {
                for &id in &ids {
                    svc.conn_bind(id, ConnKind::Active).unwrap();
                }
            }
            let now = Instant::now();
            let p = pkt();
            let mut rng = SplitMix64::new(2);
            let dests: Vec<Dest> = svc.dests().map(|(_, d)| d.clone()).collect();
            let scan_fn: fn(&[Dest]) -> Option<usize> = match kind {
                SchedulerKind::Lc => |d| scan::lc(d),
                SchedulerKind::Wlc => |d| scan::wlc(d),
                SchedulerKind::Sed => |d| scan::sed(d),
                _ => |d| scan::nq(d),
            };
            // Same answer from both before timing anything.
            let want = scan_fn(&dests).map(|i| svc.dests().nth(i).unwrap().0);
            assert_eq!(svc.pick(now, &p, &mut rng), want);
            g.bench_function(BenchmarkId::new("tree_pick", kind.name()), |b| {
                b.iter(|| black_box(svc.pick(now, black_box(&p), &mut rng)))
            });
            g.bench_function(BenchmarkId::new("scan_pick", kind.name()), |b| {
                b.iter(|| black_box(scan_fn(black_box(&dests))))
            });
            // A whole connection's bookkeeping on the tree: pick, open
            // (O(log n) update), close (O(log n) update).
            g.bench_function(
                BenchmarkId::new("tree_pick_bind_unbind", kind.name()),
                |b| {
                    b.iter(|| {
                        let id = svc.pick(now, black_box(&p), &mut rng).unwrap();
                        svc.conn_bind(id, ConnKind::Active).unwrap();
                        svc.conn_unbind(id, ConnKind::Active).unwrap();
                    })
                },
            );
        }
        g.finish();
    }
}

fn round_robin(c: &mut Criterion) {
    let mut g = c.benchmark_group("rr_wrr_twos_1000");
    for kind in [SchedulerKind::Rr, SchedulerKind::Wrr, SchedulerKind::Twos] {
        let (mut svc, _) = service(kind, 1_000, 3);
        let now = Instant::now();
        let p = pkt();
        let mut rng = SplitMix64::new(4);
        g.bench_function(kind.name(), |b| {
            b.iter(|| black_box(svc.pick(now, black_box(&p), &mut rng)))
        });
    }
    g.finish();
    // twos against the kernel's two list walks (`scan::twos`), at 1 000 and
    // 10 000 (the issue's < 50 / < 100 ns rows for the twos family).
    let mut g = c.benchmark_group("twos");
    for n in [1_000u32, 10_000] {
        let (mut svc, _) = service(SchedulerKind::Twos, n, 3);
        let now = Instant::now();
        let p = pkt();
        let dests: Vec<Dest> = svc.dests().map(|(_, d)| d.clone()).collect();
        // Same answers from both, for the same random words, before timing.
        for seed in 0..100 {
            let want = scan::twos(&dests, &mut SplitMix64::new(seed))
                .map(|i| svc.dests().nth(i).unwrap().0);
            assert_eq!(svc.pick(now, &p, &mut SplitMix64::new(seed)), want);
        }
        let mut rng = SplitMix64::new(4);
        g.bench_function(BenchmarkId::new("tree_pick", n), |b| {
            b.iter(|| black_box(svc.pick(now, black_box(&p), &mut rng)))
        });
        g.bench_function(BenchmarkId::new("scan_pick", n), |b| {
            b.iter(|| black_box(scan::twos(black_box(&dests), &mut rng)))
        });
    }
    g.finish();
    // One destination of weight 1000 among 9 999 of weight 1: while cw > 1
    // only the heavy one qualifies, which the kernel finds by walking the
    // whole list; the max tree jumps there in O(log n).
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1:80".parse().unwrap(),
    };
    let mut svc =
        Service::new(key, ServiceFlags::NONE, SchedulerKind::Wrr, Instant::now()).unwrap();
    for i in 0..10_000u32 {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 80);
        svc.add_dest(DestConfig::new(addr, if i == 0 { 1000 } else { 1 }))
            .unwrap();
    }
    let now = Instant::now();
    let p = pkt();
    let mut rng = SplitMix64::new(4);
    c.bench_function("wrr_skewed_10000", |b| {
        b.iter(|| black_box(svc.pick(now, black_box(&p), &mut rng)))
    });
}

fn maglev(c: &mut Criterion) {
    let mut g = c.benchmark_group("mh_lookup");
    for n in [10u32, 1_000] {
        let (mut svc, _) = service(SchedulerKind::Mh, n, 5);
        let now = Instant::now();
        let mut rng = SplitMix64::new(6);
        let mut client = 0u32;
        // Built once: `pkt()` parses two address strings, which inside the
        // loop cost several times the pick itself.
        let base = pkt();
        g.bench_function(BenchmarkId::new("pick_with_hsiphash", n), |b| {
            b.iter(|| {
                client = client.wrapping_add(0x9e37_79b9);
                let p = PacketInfo {
                    src: IpAddr::V4(Ipv4Addr::from(client)),
                    ..base
                };
                black_box(svc.pick(now, &p, &mut rng))
            })
        });
    }
    // The same lookup on an IPv6 service: the client address folds as the
    // XOR of its four words before the hash.
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "[2001:db8::1]:80".parse().unwrap(),
    };
    let mut svc = Service::new(key, ServiceFlags::NONE, SchedulerKind::Mh, Instant::now()).unwrap();
    for i in 0..1_000u32 {
        let addr = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | u128::from(i))),
            80,
        );
        svc.add_dest(DestConfig::new(addr, 1 + i % 8)).unwrap();
    }
    let now = Instant::now();
    let mut rng = SplitMix64::new(7);
    let base = PacketInfo::new(
        Protocol::Tcp,
        "[2001:db8:2::7]:40000".parse().unwrap(),
        "[2001:db8::1]:80".parse().unwrap(),
    );
    let mut client = 0u128;
    g.bench_function(BenchmarkId::new("pick_with_hsiphash_ipv6", 1_000), |b| {
        b.iter(|| {
            client = client.wrapping_add(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            let p = PacketInfo {
                src: IpAddr::V6(Ipv6Addr::from(client)),
                ..base
            };
            black_box(svc.pick(now, &p, &mut rng))
        })
    });
    g.finish();
}

/// `sh` (keyed on the client) and `dh` (keyed on the destination address),
/// a new key on every call as in `mh_lookup`.
fn hashed(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash_pick_1000");
    for kind in [SchedulerKind::Sh, SchedulerKind::Dh] {
        let (mut svc, _) = service(kind, 1_000, 8);
        let now = Instant::now();
        let mut rng = SplitMix64::new(9);
        let base = pkt();
        let mut key = 0u32;
        g.bench_function(kind.name(), |b| {
            b.iter(|| {
                key = key.wrapping_add(0x9e37_79b9);
                let a = IpAddr::V4(Ipv4Addr::from(key));
                let p = match kind {
                    SchedulerKind::Dh => PacketInfo { dst: a, ..base },
                    _ => PacketInfo { src: a, ..base },
                };
                black_box(svc.pick(now, &p, &mut rng))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, least, round_robin, maglev, hashed);
criterion_main!(benches);
