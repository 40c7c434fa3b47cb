//! lb-vrrp: the cost of handling one received advertisement (target < 1 µs),
//! next to the cost of the bare codec checks it contains (the same run's
//! baseline: view + checksum only).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lb_vrrp::wire::{
    AddressFamily, Auth, ChecksumMode, MULTICAST_V4, MULTICAST_V6, Packet, Repr, Version,
};
use lb_vrrp::{Config, Instant, RxMeta, State, VirtualRouter};

fn setup(version: Version, v6: bool, auth: Auth) -> (VirtualRouter, RxMeta, Vec<u8>) {
    let (me, peer, vip, dst) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 100)),
            IpAddr::V6(MULTICAST_V6),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            IpAddr::V4(MULTICAST_V4),
        )
    };
    let mut c = Config::new(version, 51, me);
    c.virtual_addresses = vec![vip];
    c.auth = auth;
    let mut r = VirtualRouter::new(c.clone()).unwrap();
    r.handle_startup(Instant::ZERO);
    while r.poll_event().is_some() {}
    let repr = Repr {
        version,
        vrid: 51,
        priority: 150,
        interval: c.interval,
        auth,
        addresses: [vip].into_iter().collect(),
    };
    let mut buf = vec![0u8; 64];
    let n = repr
        .emit(&mut buf, peer, dst, ChecksumMode::PseudoHeader)
        .unwrap();
    buf.truncate(n);
    (
        r,
        RxMeta {
            src: peer,
            dst,
            ttl: 255,
        },
        buf,
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("vrrp_handle_advertisement");
    for (name, version, v6, auth) in [
        ("v3_ipv4", Version::V3, false, Auth::None),
        ("v3_ipv6", Version::V3, true, Auth::None),
        ("v2_pass", Version::V2, false, Auth::simple_text(b"secret")),
    ] {
        let (mut r, meta, bytes) = setup(version, v6, auth);
        let mut now = Instant::from_millis(1);
        g.bench_function(format!("{name}/router"), |b| {
            b.iter(|| {
                now = now.add_micros(1);
                r.handle_packet(now, meta, black_box(&bytes));
                while r.poll_event().is_some() {}
            })
        });
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.counters().total_discards(), 0);
        let family = if v6 {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        };
        g.bench_function(format!("{name}/baseline_view_checksum"), |b| {
            b.iter(|| {
                let p = Packet::new_checked(black_box(&bytes[..]), family).unwrap();
                black_box(p.verify_checksum(meta.src, meta.dst))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
