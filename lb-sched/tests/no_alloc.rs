//! Picks do not allocate: a counting global allocator (wrapping `System`)
//! counts this thread's allocations across many picks of every scheduler,
//! and across the connection bookkeeping around them (`conn_bind`,
//! `conn_set_active`, `conn_unbind`), which update the pick indexes.
//!
//! The one exception is the kernel's own: `lblc`/`lblcr` insert a cache
//! entry for a destination address they have not seen (the kernel
//! `kmalloc`s one there too), and `lblcr` may grow an entry's set when its
//! members get busy. So those two are warmed on every address first and
//! then picked with unchanging counters, which must not allocate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use lb_sched::{
    ConnKind, DestConfig, DestId, PacketInfo, Protocol, RandomSource, SchedulerConfig,
    SchedulerKind, Service, ServiceFlags, ServiceKey, SplitMix64,
};
use lb_testing_alloc::allocs;

#[global_allocator]
static GLOBAL: lb_testing_alloc::Counting = lb_testing_alloc::Counting;

/// A service of `n` destinations with weights 0..8 (0 = quiesced), some
/// load, and every fourth destination past its upper threshold (OVERLOAD),
/// so the fallback and skip paths run too.
fn service(cfg: SchedulerConfig, flags: ServiceFlags, v6: bool, n: u32) -> (Service, Vec<DestId>) {
    let vip: SocketAddr = if v6 {
        "[2001:db8::1]:80".parse().unwrap()
    } else {
        "192.0.2.1:80".parse().unwrap()
    };
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip,
    };
    let mut svc = Service::new(key, flags, cfg, Instant::now()).unwrap();
    let mut rng = SplitMix64::new(u64::from(n));
    let mut ids = Vec::new();
    for i in 0..n {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_1000 + u128::from(i),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
        };
        let weight = (rng.next_u64() % 9) as u32;
        let cfg = if i % 4 == 3 {
            DestConfig::new(SocketAddr::new(ip, 80), weight).thresholds(2, 1)
        } else {
            DestConfig::new(SocketAddr::new(ip, 80), weight)
        };
        let id = svc.add_dest(cfg).unwrap();
        for _ in 0..rng.next_u64() % 4 {
            svc.conn_bind(id, ConnKind::Active).unwrap();
        }
        ids.push(id);
    }
    (svc, ids)
}

/// Packets from many clients to a few virtual addresses (`dh`, `lblc` and
/// `lblcr` key on the destination), some of them ICMP-inverse.
fn packets(v6: bool) -> Vec<PacketInfo> {
    let mut rng = SplitMix64::new(7);
    (0..64u32)
        .map(|i| {
            let (src, dst) = if v6 {
                (
                    IpAddr::V6(Ipv6Addr::from(u128::from(rng.next_u64()) << 64 | 1)),
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i % 5))),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::from(rng.next_u32())),
                    IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i % 5)),
                )
            };
            PacketInfo {
                protocol: if i % 7 == 0 {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                src,
                dst,
                src_port: rng.next_u32() as u16,
                dst_port: 80,
                inverse: i % 11 == 0,
            }
        })
        .collect()
}

/// No flags, `*-fallback`, `*-port`, both (`sh`/`mh` read them).
fn flag_sets() -> [ServiceFlags; 4] {
    let (f, p) = (ServiceFlags::SCHED1, ServiceFlags::SCHED2);
    [ServiceFlags::NONE, f, p, f | p]
}

#[test]
fn picks_and_connection_bookkeeping_do_not_allocate() {
    let now = Instant::now();
    for kind in SchedulerKind::ALL {
        if matches!(kind, SchedulerKind::Lblc | SchedulerKind::Lblcr) {
            continue;
        }
        for v6 in [false, true] {
            for n in [0u32, 1, 7, 300] {
                for flags in flag_sets() {
                    let (mut svc, ids) = service(kind.into(), flags, v6, n);
                    let pkts = packets(v6);
                    let mut rng = SplitMix64::new(3);
                    let before = allocs();
                    let mut picked = 0u32;
                    for round in 0..10 {
                        for p in &pkts {
                            let Some(id) = svc.pick(now, p, &mut rng) else {
                                continue;
                            };
                            picked += 1;
                            // Open, establish, close: every index update a
                            // connection causes. Every other round keeps the
                            // connection, so counters (and OVERLOAD) move.
                            svc.conn_bind(id, ConnKind::Inactive).unwrap();
                            svc.conn_set_active(id, true).unwrap();
                            if round % 2 == 0 {
                                svc.conn_unbind(id, ConnKind::Active).unwrap();
                            }
                        }
                    }
                    let got = allocs() - before;
                    assert_eq!(got, 0, "{kind} v6={v6} n={n} {flags:?}: {got} allocations");
                    // The loop did pick, where anything was eligible.
                    if n >= 7 {
                        assert!(picked > 0, "{kind} n={n} {flags:?} never picked");
                    }
                    drop(ids);
                }
            }
        }
    }
}

#[test]
fn lblc_and_lblcr_picks_on_known_addresses_do_not_allocate() {
    let now = Instant::now();
    for kind in [SchedulerKind::Lblc, SchedulerKind::Lblcr] {
        for v6 in [false, true] {
            for n in [1u32, 7, 100, 1000] {
                let (mut svc, _) = service(kind.into(), ServiceFlags::NONE, v6, n);
                let pkts = packets(v6);
                let mut rng = SplitMix64::new(3);
                // First sight of each destination address: the cache
                // entries are allocated here, as in the kernel.
                for p in &pkts {
                    svc.pick(now, p, &mut rng);
                }
                let before = allocs();
                let mut picked = 0u32;
                for i in 0..20u64 {
                    // Time passes (within the expiry): entries are refreshed.
                    let t = now + Duration::from_secs(i);
                    for p in &pkts {
                        picked += u32::from(svc.pick(t, p, &mut rng).is_some());
                    }
                }
                let got = allocs() - before;
                assert_eq!(got, 0, "{kind} v6={v6} n={n}: {got} allocations");
                if n >= 7 {
                    assert!(picked > 0, "{kind} n={n} never picked");
                }
            }
        }
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The harness itself: a Vec allocation is counted on this thread.
    let before = allocs();
    let v = std::hint::black_box(vec![1u8; 16]);
    assert!(allocs() > before);
    drop(v);
}

#[test]
fn presized_persistence_table_does_not_allocate() {
    // A table pre-sized for 1000 templates of each family: creating,
    // refreshing, releasing and expiring templates, IPv6 ones on 200
    // distinct virtual addresses (interned, within `VIP_RESERVE`), twice
    // over so freed entries and addresses are reused, allocates nothing.
    use lb_sched::persist::{
        Netmask, PersistConfig, PersistDests, PersistService, PersistTable, TemplateKey,
        VIP_RESERVE,
    };
    struct Up;
    impl PersistDests<u32> for Up {
        fn is_available(&self, _: &u32) -> bool {
            true
        }
        fn weight(&self, _: &u32) -> u32 {
            1
        }
    }
    let s4 = PersistService {
        fwmark: 0,
        port: 80,
        netmask: Netmask::V4(u32::MAX),
    };
    let s6 = PersistService {
        fwmark: 0,
        port: 80,
        netmask: Netmask::V6(64),
    };
    let vips = 200u32;
    assert!(vips as usize <= VIP_RESERVE);
    let keys: Vec<TemplateKey> = (0..1000u32)
        .flat_map(|i| {
            let c4 = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            let c6 = IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0001_u128 << 80 | u128::from(i) << 64,
            ));
            let v6 = IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_u128 << 96 | u128::from(i % vips),
            ));
            [
                TemplateKey::for_packet(&s4, 6, c4, "192.0.2.1".parse().unwrap(), 80).unwrap(),
                TemplateKey::for_packet(&s6, 6, c6, v6, 80).unwrap(),
            ]
        })
        .collect();
    let mut t: PersistTable<u32> =
        PersistTable::with_capacity(PersistConfig::default(), 1000, 1000);
    let before = allocs();
    let mut created = 0u32;
    for round in 0..2u64 {
        let now = 1 + round * 1_000_000;
        for (i, k) in keys.iter().enumerate() {
            for step in 0..2 {
                let p = t
                    .schedule(now + step, k, 60_000, &mut Up, |_| Some(i as u32))
                    .unwrap()
                    .unwrap();
                created += u32::from(p.created);
                t.release(now + step, p.template, &mut Up).unwrap();
            }
        }
        assert_eq!(t.len(), keys.len());
        // Everything expires; the IPv6 virtual addresses are dropped.
        t.advance(now + 500_000, &mut Up);
        assert!(t.is_empty());
    }
    let got = allocs() - before;
    assert_eq!(got, 0, "{got} allocations");
    assert_eq!(created, 2 * keys.len() as u32);
}
