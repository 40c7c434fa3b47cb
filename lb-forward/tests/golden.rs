//! Byte-exact golden frames. The expected bytes were computed outside this
//! crate (a few lines of Python with its own checksum), field by field as
//! the comments show.

use lb_forward::addr::Addr;
use lb_forward::classify::ServiceKey;
use lb_forward::forwarder::{
    Buf, Config, DestConfig, Forwarder, Method, Port, ServiceConfig, Verdict,
};
use lb_forward::sched::RoundRobin;
use lb_forward::tunnel::TunnelKind;
use std::time::Instant;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// 10.0.0.2:4000 → 10.0.0.100:53, UDP "hi".
const CLIENT_FRAME: &str = "
    0200000000d1 0200000000c1 0800
    4500 001e 1234 4000 4011 1436 0a000002 0a000064
    0fa0 0035 000a 7336 6869";

fn one(method: Method) -> (Forwarder<RoundRobin>, Instant) {
    let now = Instant::now();
    let mut f = Forwarder::new(Config::default(), now);
    let port = f.add_port(Port {
        mac: [2, 0, 0, 0, 0, 1],
        mtu: 1500,
        v4: Some(Addr::v4([172, 16, 0, 1])),
        v6: None,
    });
    f.set_neighbour("172.16.0.2".parse().unwrap(), [2, 0, 0, 0, 0, 0x10], port);
    let key = ServiceKey::Addr {
        proto: 17,
        addr: Addr::v4([10, 0, 0, 100]),
        port: 53,
    };
    let svc = f
        .add_service(
            ServiceConfig {
                key,
                persistence: None,
                one_packet: false,
            },
            RoundRobin::default(),
        )
        .unwrap();
    f.add_dest(
        svc,
        DestConfig {
            addr: "172.16.0.2".parse().unwrap(),
            port: 5353,
            method,
            weight: 1,
        },
    )
    .unwrap();
    (f, now)
}

#[test]
fn nat_in_golden() {
    let (mut f, now) = one(Method::Nat);
    let mut frame = hex(CLIENT_FRAME);
    let mut out = [0u8; 256];
    let v = f.process(now, &mut frame, &mut out);
    assert_eq!(
        v,
        Verdict::Transmit {
            port: 0,
            buf: Buf::Frame,
            len: 44
        }
    );
    let want = hex("
        020000000010 020000000001 0800
        4500 001e 1234 4000 4011 7287 0a000002 ac100002   # dst 172.16.0.2, header csum 7287
        0fa0 14e9 000a bcd3 6869                          # dport 5353, udp csum bcd3");
    assert_eq!(frame, want);
}

#[test]
fn dr_golden() {
    let (mut f, now) = one(Method::Dr);
    let mut frame = hex(CLIENT_FRAME);
    let mut out = [0u8; 256];
    let v = f.process(now, &mut frame, &mut out);
    assert_eq!(
        v,
        Verdict::Transmit {
            port: 0,
            buf: Buf::Frame,
            len: 44
        }
    );
    let mut want = hex(CLIENT_FRAME);
    want[..12].copy_from_slice(&hex("020000000010 020000000001"));
    assert_eq!(frame, want);
}

#[test]
fn ipip_golden() {
    let (mut f, now) = one(Method::Tunnel(TunnelKind::Ipip));
    let mut frame = hex(CLIENT_FRAME);
    let mut out = [0u8; 256];
    let v = f.process(now, &mut frame, &mut out);
    assert_eq!(
        v,
        Verdict::Transmit {
            port: 0,
            buf: Buf::Out,
            len: 64
        }
    );
    let want = hex("
        020000000010 020000000001 0800
        4500 0032 0002 4000 4004 e2a2 ac100001 ac100002   # outer: id 2, DF, ttl 64, proto 4
        4500 001e 1234 4000 4011 1436 0a000002 0a000064   # the client's packet, untouched
        0fa0 0035 000a 7336 6869");
    assert_eq!(&out[..64], &want[..]);
}
