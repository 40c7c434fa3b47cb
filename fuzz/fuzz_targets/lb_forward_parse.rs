//! Parse arbitrary frames, then run them through a forwarder with one
//! service per method (DR, NAT, IPIP, GUE with REMCSUM, GRE with checksum)
//! and decapsulate them: nothing may panic, and whatever is transmitted
//! must parse again. Also feeds the neighbour-table parsers.
#![no_main]

use lb_forward::addr::Addr;
use lb_forward::classify::ServiceKey;
use lb_forward::forwarder::{
    Buf, Config, DestConfig, Forwarder, Method, Port, ServiceConfig, Verdict,
};
use lb_forward::sched::RoundRobin;
use lb_forward::tunnel::{GueCsum, TunnelKind, decap_inner};
use std::time::{Duration, Instant};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The neighbour-table parsers take kernel output; they must not panic either.
    let _ = lb_forward::neigh::parse_neigh_dump(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lb_forward::neigh::parse_proc_arp(text).count();
    }
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let _ = lb_forward::parse::parse(frame);
    if frame.len() > 14 {
        let _ = decap_inner(&frame[14..], Some(6080));
    }
    let method = match sel % 5 {
        0 => Method::Dr,
        1 => Method::Nat,
        2 => Method::Tunnel(TunnelKind::Ipip),
        3 => Method::Tunnel(TunnelKind::Gue {
            port: 6080,
            csum: GueCsum::RemCsum,
        }),
        _ => Method::Tunnel(TunnelKind::Gre { csum: true }),
    };
    let now = Instant::now();
    let mut cfg = Config::default();
    cfg.capacity = 64;
    cfg.expire_nodest_conn = sel & 0x80 != 0;
    let mut fwd = Forwarder::new(cfg, now);
    let port = fwd.add_port(Port {
        mac: [2, 0, 0, 0, 0, 1],
        mtu: if sel & 0x40 != 0 { 576 } else { 1500 },
        v4: Some(Addr::v4([172, 16, 0, 1])),
        v6: Some(Addr([
            0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ])),
    });
    fwd.set_gateway(false, [2, 0, 0, 0, 0, 2], port);
    fwd.set_gateway(true, [2, 0, 0, 0, 0, 2], port);
    for (proto, vip, rip) in [
        (17u8, "10.0.0.100", "172.16.0.2"),
        (6, "10.0.0.100", "172.16.0.3"),
        (17, "2001:db8::100", "2001:db8:1::2"),
        (6, "2001:db8::100", "2001:db8:1::3"),
    ] {
        let key = ServiceKey::Addr {
            proto,
            addr: vip.parse::<std::net::IpAddr>().unwrap().into(),
            port: 80,
        };
        let svc = fwd.add_service(
            ServiceConfig {
                key,
                persistence: None,
                one_packet: false,
            },
            RoundRobin::default(),
        );
        let Ok(svc) = svc else { return };
        let _ = fwd.add_dest(
            svc,
            DestConfig {
                addr: rip.parse().unwrap(),
                port: 8080,
                method,
                weight: 1,
            },
        );
    }
    let mut buf = frame.to_vec();
    let mut out = vec![0u8; 4096];
    for i in 0..2 {
        let mut f = buf.clone();
        let v = fwd.process(now + Duration::from_secs(i), &mut f, &mut out);
        if let Verdict::Transmit { buf: b, len, .. } = v {
            let sent = if b == Buf::Frame {
                &f[..len]
            } else {
                &out[..len]
            };
            assert!(lb_forward::parse::parse(sent).is_ok() || b == Buf::Out);
        }
        buf = f;
        if i == 0 {
            let _ = fwd.remove_dest(0);
        }
    }
    fwd.handle_timeout(now + Duration::from_secs(1000));
});
