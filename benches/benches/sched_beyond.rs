//! lb-sched beyond-IPVS algorithms and tables, against peer crates in the same run.
//!
//! Peers (dev-dependencies of this package only):
//! * `maglev` 0.2 (flier) and `maglev_rs` 0.1: Maglev build and lookup;
//! * `hashring` 0.3: consistent-hash ring (virtual nodes added by hand);
//! * `rendezvous_hash` 0.3: rendezvous hashing;
//! * `weighted-rs` 0.1: weighted random pick (the p2c/random draw step);
//! * `std::collections::HashMap` as the persistence-table baseline.
//!
//! Run: `cargo bench -p lb-benches --bench sched_beyond -- --warm-up-time 1 --measurement-time 3`
//! The first lines printed (`FIGURE ...`) are the key-movement and
//! bytes-per-entry figures recorded in benches/README.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lb_sched::hashkey::HashKey;
use lb_sched::maglev::MaglevBuilder;
use lb_sched::p2c::{SplitMix64, WeightedRandom};
use lb_sched::persist::{
    Netmask, PersistConfig, PersistDests, PersistService, PersistTable, TemplateKey,
};
use lb_sched::rendezvous::Rendezvous;
use lb_sched::ring::RingBuilder;
use maglev::ConsistentHasher;
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use weighted_rs::Weight;

const KEY: HashKey = HashKey::new(0x0123_4567_89ab_cdef, 0x0fed_cba9_8765_4321);
const M: u32 = 65537;
const FLOWS: usize = 1 << 16;

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}:80", i / 65536, (i / 256) % 256, i % 256))
        .collect()
}

/// Packed IPv4 5-tuples (13 bytes), spread so lookups hit the whole table.
fn flows() -> Vec<[u8; 13]> {
    let mut rng = SplitMix64::new(7);
    (0..FLOWS)
        .map(|_| {
            let r = lb_sched::p2c::RandomSource::next_u64(&mut rng);
            let mut f = [0u8; 13];
            f[..8].copy_from_slice(&r.to_le_bytes());
            f[8..12].copy_from_slice(&[192, 0, 2, 1]);
            f[12] = 6;
            f
        })
        .collect()
}

fn weight(i: usize) -> u32 {
    1 + (i % 4) as u32
}

fn maglev_ours(n: usize, m: u32, weighted: bool) -> lb_sched::maglev::MaglevTable<u32> {
    maglev_named(&names(n), m, weighted)
}

/// Builder (one keyed hash per backend name) and build, from names
/// formatted beforehand.
fn maglev_named(names: &[String], m: u32, weighted: bool) -> lb_sched::maglev::MaglevTable<u32> {
    let mut b = MaglevBuilder::new(KEY);
    b.table_size(m);
    for (i, name) in names.iter().enumerate() {
        b.backend(
            i as u32,
            name.as_bytes(),
            if weighted { weight(i) } else { 1 },
        );
    }
    b.build().expect("prime size")
}

fn figures() {
    // Key movement when 1 of N backends is removed (slots that change owner / M).
    for (n, m) in [(10usize, M), (100, M), (1000, M), (1000, 655_373)] {
        let full = maglev_ours(n, m, false);
        let mut b = MaglevBuilder::new(KEY);
        b.table_size(m);
        for (i, name) in names(n).iter().enumerate().filter(|(i, _)| *i != n / 2) {
            b.backend(i as u32, name.as_bytes(), 1);
        }
        let less = b.build().expect("prime");
        let moved = full.diff(&less) as f64 / f64::from(m);
        eprintln!(
            "FIGURE maglev remove 1 of {n} (M={m}): moved {:.4}% of keys, minimal {:.4}% ({:.2}x)",
            moved * 100.0,
            100.0 / n as f64,
            moved * n as f64
        );
    }
    // Ring: removal moves only the victim's keys.
    let build_ring = |skip: Option<usize>| {
        let mut b = RingBuilder::new(KEY);
        for (i, name) in names(1000).iter().enumerate() {
            if Some(i) != skip {
                b.backend(i as u32, name.as_bytes(), 1);
            }
        }
        b.build()
    };
    let (r1, r2) = (build_ring(None), build_ring(Some(500)));
    let fl = flows();
    let moved = fl
        .iter()
        .filter(|f| r1.get_bytes(&f[..]) != r2.get_bytes(&f[..]))
        .count();
    eprintln!(
        "FIGURE ring remove 1 of 1000: moved {:.4}% of {} flows (minimal 0.1%)",
        moved as f64 * 100.0 / fl.len() as f64,
        fl.len()
    );
    // Maglev balance at N=1000 weighted.
    let t = maglev_ours(1000, M, true);
    let total: u32 = (0..1000).map(weight).sum();
    let worst = t
        .shares()
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            (f64::from(s) / (f64::from(M) * f64::from(weight(i)) / f64::from(total)) - 1.0).abs()
        })
        .fold(0.0, f64::max);
    eprintln!(
        "FIGURE maglev N=1000 weights 1..4: worst share error {:.2}% of ideal",
        worst * 100.0
    );
    // Persistence table bytes per entry at 1M (pre-sized and grown).
    let (e4, e6) = PersistTable::<u32>::entry_sizes();
    for (label, v6) in [("ipv4", false), ("ipv6", true)] {
        let pre = persist_table(1_000_000, v6, true);
        let grown = persist_table(1_000_000, v6, false);
        eprintln!(
            "FIGURE persist {label}: entry {} B; 1M templates: {:.1} B/entry pre-sized, {:.1} B/entry grown (incl. index and 2x64K-slot wheels)",
            if v6 { e6 } else { e4 },
            pre.memory_bytes() as f64 / 1e6,
            grown.memory_bytes() as f64 / 1e6
        );
    }
    // std HashMap baseline with the same key and value fields.
    let map = std_map(1_000_000, false);
    // hashbrown keeps 7/8 of its power-of-two bucket count usable.
    let buckets = (map.capacity() * 8 / 7).next_power_of_two();
    let per = buckets as f64 * (size_of::<(TemplateKey, (u32, u64))>() + 1) as f64 / 1e6;
    eprintln!(
        "FIGURE std HashMap<TemplateKey,(u32,u64)> 1M: ~{per:.1} B/entry (buckets x (K+V+1 ctrl)), no expiry structure"
    );
    // Maglev build time, one shot (criterion figures below are authoritative).
    let t0 = Instant::now();
    let _ = black_box(maglev_ours(1000, M, true));
    eprintln!(
        "FIGURE maglev build N=1000 weighted M=65537 one-shot: {:?}",
        t0.elapsed()
    );
}

struct AllUp;
impl PersistDests<u32> for AllUp {
    fn is_available(&self, _: &u32) -> bool {
        true
    }
    fn weight(&self, _: &u32) -> u32 {
        1
    }
}

fn persist_key(i: u32, v6: bool) -> TemplateKey {
    if v6 {
        let svc = PersistService {
            fwmark: 0,
            port: 443,
            netmask: Netmask::V6(128),
        };
        let c = IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(i),
        ));
        TemplateKey::for_packet(&svc, 6, c, "2001:db8::1".parse().expect("v6"), 443).expect("key")
    } else {
        let svc = PersistService {
            fwmark: 0,
            port: 443,
            netmask: Netmask::V4(u32::MAX),
        };
        let c = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
        TemplateKey::for_packet(&svc, 6, c, "192.0.2.1".parse().expect("v4"), 443).expect("key")
    }
}

fn persist_table(n: u32, v6: bool, presize: bool) -> PersistTable<u32> {
    let cfg = PersistConfig::new(KEY);
    let mut t = if presize {
        let (a, b) = if v6 { (0, n as usize) } else { (n as usize, 0) };
        PersistTable::with_capacity(cfg, a, b)
    } else {
        PersistTable::new(cfg)
    };
    for i in 0..n {
        let p = t
            .schedule(1, &persist_key(i, v6), 300_000, &mut AllUp, |_| {
                Some(i % 1000)
            })
            .expect("insert")
            .expect("dest");
        t.release(1, p.template, &mut AllUp).expect("release");
    }
    t
}

fn std_map(n: u32, v6: bool) -> HashMap<TemplateKey, (u32, u64)> {
    let mut m = HashMap::new();
    for i in 0..n {
        m.insert(persist_key(i, v6), (i % 1000, 300_001));
    }
    m
}

fn bench_maglev(c: &mut Criterion) {
    figures();
    let fl = flows();
    let mut g = c.benchmark_group("maglev_lookup");
    g.throughput(Throughput::Elements(1));
    for n in [100usize, 1000] {
        let ours = maglev_ours(n, M, false);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("lb_sched", n), |b| {
            b.iter(|| {
                i = (i + 1) & (FLOWS - 1);
                black_box(ours.get_bytes(&fl[i][..]))
            })
        });
        let peer = maglev::Maglev::with_capacity(names(n), M as usize);
        g.bench_function(BenchmarkId::new("maglev_crate", n), |b| {
            b.iter(|| {
                i = (i + 1) & (FLOWS - 1);
                black_box(peer.get(&fl[i]).map(String::len))
            })
        });
        if n <= 100 {
            // maglev_rs materialises an M-entry permutation per backend
            // (8 B × M × N), so it is only built for N = 100.
            let peer2 = maglev_rs::Maglev::new(&names(n), u64::from(M)).expect("prime");
            g.bench_function(BenchmarkId::new("maglev_rs", n), |b| {
                b.iter(|| {
                    i = (i + 1) & (FLOWS - 1);
                    let mut h = DefaultHasher::new();
                    fl[i].hash(&mut h);
                    black_box(peer2.get_backend((h.finish() % u64::from(M)) as usize))
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("maglev_build");
    g.sample_size(10);
    for n in [100usize, 1000] {
        let nm = names(n);
        // Names are formatted once; each iteration adds the backends
        // (hashing each name) and builds the table.
        g.bench_function(BenchmarkId::new("lb_sched_equal", n), |b| {
            b.iter(|| black_box(maglev_named(&nm, M, false)))
        });
        g.bench_function(BenchmarkId::new("lb_sched_weighted_1to4", n), |b| {
            b.iter(|| black_box(maglev_named(&nm, M, true)))
        });
        g.bench_function(BenchmarkId::new("maglev_crate", n), |b| {
            b.iter(|| black_box(maglev::Maglev::with_capacity(nm.clone(), M as usize)))
        });
        if n <= 100 {
            g.bench_function(BenchmarkId::new("maglev_rs", n), |b| {
                b.iter(|| black_box(maglev_rs::Maglev::new(&nm, u64::from(M)).expect("prime")))
            });
        }
    }
    g.finish();
}

fn bench_ring_rendezvous(c: &mut Criterion) {
    let fl = flows();
    let n = 1000usize;
    let nm = names(n);
    let mut rb = RingBuilder::new(KEY);
    for (i, name) in nm.iter().enumerate() {
        rb.backend(i as u32, name.as_bytes(), 1);
    }
    let ours = rb.build();
    #[derive(Hash)]
    struct VNode<'a>(&'a str, u32);
    let mut peer = hashring::HashRing::new();
    peer.batch_add(
        nm.iter()
            .flat_map(|s| (0..160).map(move |r| VNode(s.as_str(), r)))
            .collect(),
    );
    let mut g = c.benchmark_group("ring_lookup_1000x160");
    let mut i = 0usize;
    g.bench_function("lb_sched", |b| {
        b.iter(|| {
            i = (i + 1) & (FLOWS - 1);
            black_box(ours.get_bytes(&fl[i][..]))
        })
    });
    g.bench_function("hashring_crate", |b| {
        b.iter(|| {
            i = (i + 1) & (FLOWS - 1);
            black_box(peer.get(&fl[i]).map(|v| v.1))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("ring_build_1000x160");
    g.sample_size(10);
    g.bench_function("lb_sched", |b| b.iter(|| black_box(rb.build())));
    g.bench_function("hashring_crate", |b| {
        b.iter(|| {
            let mut r = hashring::HashRing::new();
            r.batch_add(
                nm.iter()
                    .flat_map(|s| (0..160).map(move |r| VNode(s.as_str(), r)))
                    .collect(),
            );
            black_box(r.len())
        })
    });
    g.finish();

    let n = 100usize;
    let nm = names(n);
    let items: Vec<(u32, &[u8], u32)> = nm
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32, s.as_bytes(), 1))
        .collect();
    let ours = Rendezvous::new(KEY, &items);
    let mut peer: rendezvous_hash::RendezvousNodes<&str, _> =
        rendezvous_hash::RendezvousNodes::default();
    for s in &nm {
        peer.insert(s.as_str());
    }
    let mut g = c.benchmark_group("rendezvous_lookup_100");
    g.bench_function("lb_sched", |b| {
        b.iter(|| {
            i = (i + 1) & (FLOWS - 1);
            black_box(ours.get_bytes(&fl[i][..]))
        })
    });
    g.bench_function("rendezvous_hash_crate", |b| {
        b.iter(|| {
            i = (i + 1) & (FLOWS - 1);
            black_box(peer.calc_candidates(&fl[i]).next().map(|s| s.len()))
        })
    });
    g.finish();
}

fn bench_p2c(c: &mut Criterion) {
    let mut g = c.benchmark_group("weighted_pick");
    for n in [10usize, 1000] {
        let items: Vec<(u32, u32)> = (0..n).map(|i| (i as u32, weight(i))).collect();
        let ours = WeightedRandom::new(&items);
        let loads: Vec<u64> = (0..n as u64)
            .map(|i| i.wrapping_mul(2_654_435_761) % 100)
            .collect();
        let mut rng = SplitMix64::new(1);
        g.bench_function(BenchmarkId::new("lb_sched_p2c", n), |b| {
            b.iter(|| black_box(ours.pick_two(&mut rng, |&d| loads[d as usize])))
        });
        g.bench_function(BenchmarkId::new("lb_sched_random", n), |b| {
            b.iter(|| black_box(ours.pick(&mut rng)))
        });
        let mut peer = weighted_rs::RandWeight::new();
        let mut smooth = weighted_rs::SmoothWeight::new();
        for &(id, w) in &items {
            peer.add(id, w as isize);
            smooth.add(id, w as isize);
        }
        g.bench_function(BenchmarkId::new("weighted_rs_random", n), |b| {
            b.iter(|| black_box(peer.next()))
        });
        g.bench_function(BenchmarkId::new("weighted_rs_smooth", n), |b| {
            b.iter(|| black_box(smooth.next()))
        });
    }
    g.finish();
}

fn bench_persist(c: &mut Criterion) {
    let n = 1_000_000u32;
    let mut g = c.benchmark_group("persist_lookup_1M");
    let mut i = 0usize;
    for v6 in [false, true] {
        let t = persist_table(n, v6, true);
        let map = std_map(n, v6);
        let keys: Vec<TemplateKey> = {
            let mut rng = SplitMix64::new(3);
            (0..FLOWS)
                .map(|_| {
                    persist_key(
                        (lb_sched::p2c::RandomSource::next_u64(&mut rng) % u64::from(n)) as u32,
                        v6,
                    )
                })
                .collect()
        };
        let fam = if v6 { "_v6" } else { "" };
        g.bench_function(format!("lb_sched_get{fam}"), |b| {
            b.iter(|| {
                i = (i + 1) & (FLOWS - 1);
                black_box(t.get(2, &keys[i]))
            })
        });
        g.bench_function(format!("std_hashmap_get{fam}"), |b| {
            b.iter(|| {
                i = (i + 1) & (FLOWS - 1);
                black_box(map.get(&keys[i]).filter(|v| v.1 > 2).map(|v| v.0))
            })
        });
        drop(map);
        if v6 {
            continue;
        }
        let mut t = t;
        let mut now = 2u64;
        g.bench_function("lb_sched_schedule_hit_and_release", |b| {
            b.iter(|| {
                i = (i + 1) & (FLOWS - 1);
                now += 1;
                let p = t
                    .schedule(now, &keys[i], 300_000, &mut AllUp, |_| Some(0))
                    .expect("ok")
                    .expect("dest");
                t.release(now, p.template, &mut AllUp).expect("release");
                black_box(p.dest)
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_maglev,
    bench_ring_rendezvous,
    bench_p2c,
    bench_persist
);
criterion_main!(benches);
