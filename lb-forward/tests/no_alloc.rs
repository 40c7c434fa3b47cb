//! The packet path does not allocate: tracked flows, new flows (connection
//! creation, scheduling, persistence templates), NAT replies, tunnels and
//! expiry, for IPv4 and IPv6. Checked with a counting global allocator.

use lb_forward::addr::Addr;
use lb_forward::classify::ServiceKey;
use lb_forward::forwarder::{
    Config, DestConfig, Forwarder, Method, Persistence, Port, ServiceConfig, Verdict,
};
use lb_forward::sched::RoundRobin;
use lb_forward::testutil::{L4, frame4, frame6};
use lb_forward::tunnel::{GueCsum, TunnelKind};
use lb_testing_alloc::allocs;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: lb_testing_alloc::Counting = lb_testing_alloc::Counting;

#[test]
fn packet_path_does_not_allocate() {
    let t0 = Instant::now();
    let mut cfg = Config::default();
    cfg.capacity = 1 << 12;
    let mut fwd: Forwarder<RoundRobin> = Forwarder::new(cfg, t0);
    let port = fwd.add_port(Port {
        mac: [2, 0, 0, 0, 0, 1],
        mtu: 1500,
        v4: Some(Addr::v4([172, 16, 0, 1])),
        v6: Some("2001:db8:1::1".parse::<IpAddr>().unwrap().into()),
    });
    fwd.set_gateway(false, [2, 0, 0, 0, 0, 2], port);
    fwd.set_gateway(true, [2, 0, 0, 0, 0, 2], port);
    let methods = [
        Method::Dr,
        Method::Nat,
        Method::Tunnel(TunnelKind::Ipip),
        Method::Tunnel(TunnelKind::Gue {
            port: 6080,
            csum: GueCsum::RemCsum,
        }),
        Method::Tunnel(TunnelKind::Gre { csum: true }),
    ];
    // One UDP service per method and family on VIP:80+i, 2 dests each; the
    // DR one is persistent.
    for (i, m) in methods.iter().enumerate() {
        for v6 in [false, true] {
            let vip: IpAddr = if v6 {
                "2001:db8::100".parse().unwrap()
            } else {
                "10.0.0.100".parse().unwrap()
            };
            let key = ServiceKey::Addr {
                proto: 17,
                addr: vip.into(),
                port: 80 + i as u16,
            };
            let persistence = (i == 0).then(Persistence::default);
            let svc = fwd
                .add_service(
                    ServiceConfig {
                        key,
                        persistence,
                        one_packet: false,
                    },
                    RoundRobin::default(),
                )
                .unwrap();
            for d in 0..2 {
                let rip: IpAddr = if v6 {
                    format!("2001:db8:1::{}", d + 2).parse().unwrap()
                } else {
                    format!("172.16.0.{}", d + 2).parse().unwrap()
                };
                fwd.add_dest(
                    svc,
                    DestConfig {
                        addr: rip,
                        port: 8080,
                        method: *m,
                        weight: 1,
                    },
                )
                .unwrap();
            }
        }
    }
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for i in 0..methods.len() as u16 {
        for c in 0..20u8 {
            frames.push(frame4(
                [10, 0, 1, c],
                1000 + u16::from(c),
                [10, 0, 0, 100],
                80 + i,
                L4::Udp,
                &[c; 40],
            ));
            let mut src = [0u8; 16];
            src[..4].copy_from_slice(&[0x20, 1, 0xd, 0xb8]);
            src[15] = c;
            let dst: std::net::Ipv6Addr = "2001:db8::100".parse().unwrap();
            frames.push(frame6(
                src,
                1000 + u16::from(c),
                dst.octets(),
                80 + i,
                L4::Udp,
                &[c; 40],
            ));
        }
    }
    // A NAT reply (rip:8080 → client) for each NAT flow, built in advance.
    let replies: Vec<Vec<u8>> = (0..20u8)
        .flat_map(|c| {
            [2u8, 3].map(|d| {
                frame4(
                    [172, 16, 0, d],
                    8080,
                    [10, 0, 1, c],
                    1000 + u16::from(c),
                    L4::Udp,
                    b"r",
                )
            })
        })
        .collect();
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    // No warm-up: interning the first VIPs must not allocate either.
    let before = allocs();
    let mut sent = 0;
    for round in 0..3u64 {
        let now = t0 + Duration::from_secs(round);
        for f in frames.iter().chain(replies.iter()) {
            buf[..f.len()].copy_from_slice(f);
            if let Verdict::Transmit { .. } = fwd.process(now, &mut buf[..f.len()], &mut out) {
                sent += 1;
            }
        }
        fwd.handle_timeout(now);
    }
    // Let everything expire, templates included.
    fwd.handle_timeout(t0 + Duration::from_secs(2000));
    fwd.handle_timeout(t0 + Duration::from_secs(4000));
    let after = allocs();
    assert_eq!(after - before, 0, "allocations on the packet path");
    // The counter does count (so the check above can fail).
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(8));
    assert_eq!(allocs(), after + 1);
    drop(v);
    assert!(sent >= 3 * frames.len(), "{sent}");
    assert_eq!(fwd.conn_count(), 0);
}
