//! Scenario tests of the forwarder's packet path (Input / Output comments
//! say what goes in and what must come out).

mod common;

use lb_forward::addr::Addr;
use lb_forward::classify::ServiceKey;
use lb_forward::forwarder::{
    Buf, Config, DestConfig, DropReason, Forwarder, Method, Persistence, Port, ServiceConfig,
    Verdict,
};
use lb_forward::parse::parse;
use lb_forward::sched::RoundRobin;
use lb_forward::state::State;
use lb_forward::testutil::{L4, frame4, frame6};
use lb_forward::tunnel::{GueCsum, TunnelKind, decapsulate};
use proptest::prelude::*;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const DIR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MACS: [[u8; 6]; 3] = [
    [2, 0, 0, 0, 0, 0x10],
    [2, 0, 0, 0, 0, 0x11],
    [2, 0, 0, 0, 0, 0x12],
];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

struct Lab {
    fwd: Forwarder<RoundRobin>,
    now: Instant,
    svc: u16,
    dests: Vec<u16>,
    v6: bool,
}

fn vip(v6: bool) -> IpAddr {
    if v6 {
        "2001:db8::100".parse().unwrap()
    } else {
        "10.0.0.100".parse().unwrap()
    }
}

fn rip(v6: bool, i: usize) -> IpAddr {
    if v6 {
        format!("2001:db8:1::{}", i + 2).parse().unwrap()
    } else {
        format!("172.16.0.{}", i + 2).parse().unwrap()
    }
}

fn client(v6: bool, i: u8) -> IpAddr {
    if v6 {
        format!("2001:db8::{:x}", 0x1000 + u16::from(i))
            .parse()
            .unwrap()
    } else {
        format!("10.0.0.{}", 10 + i).parse().unwrap()
    }
}

fn lab(
    cfg: Config,
    v6: bool,
    proto: u8,
    method: Method,
    n: usize,
    persistence: Option<Persistence>,
) -> Lab {
    let now = Instant::now();
    let mut fwd = Forwarder::new(cfg, now);
    let port = fwd.add_port(Port {
        mac: DIR_MAC,
        mtu: 1500,
        v4: Some(Addr::v4([172, 16, 0, 1])),
        v6: Some("2001:db8:1::1".parse::<IpAddr>().unwrap().into()),
    });
    for (i, mac) in RS_MACS.iter().enumerate().take(n) {
        fwd.set_neighbour(rip(v6, i), *mac, port);
    }
    fwd.set_gateway(false, CLIENT_MAC, port);
    fwd.set_gateway(true, CLIENT_MAC, port);
    let key = ServiceKey::Addr {
        proto,
        addr: vip(v6).into(),
        port: 80,
    };
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
    let dests = (0..n)
        .map(|i| {
            fwd.add_dest(
                svc,
                DestConfig {
                    addr: rip(v6, i),
                    port: 8080,
                    method,
                    weight: 1,
                },
            )
            .unwrap()
        })
        .collect();
    Lab {
        fwd,
        now,
        svc,
        dests,
        v6,
    }
}

fn pkt(v6: bool, c: u8, cport: u16, l4: L4, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(cv4), IpAddr::V4(vv4)) = (client(false, c), vip(false)) else {
        unreachable!()
    };
    if v6 {
        let (IpAddr::V6(cv6), IpAddr::V6(vv6)) = (client(true, c), vip(true)) else {
            unreachable!()
        };
        frame6(cv6.octets(), cport, vv6.octets(), 80, l4, payload)
    } else {
        frame4(cv4.octets(), cport, vv4.octets(), 80, l4, payload)
    }
}

impl Lab {
    fn send(&mut self, frame: &mut [u8]) -> (Verdict, Vec<u8>) {
        let mut out = vec![0u8; 2048];
        let v = self.fwd.process(self.now, frame, &mut out);
        let bytes = match v {
            Verdict::Transmit {
                buf: Buf::Frame,
                len,
                ..
            } => frame[..len].to_vec(),
            Verdict::Transmit {
                buf: Buf::Out, len, ..
            } => out[..len].to_vec(),
            _ => Vec::new(),
        };
        (v, bytes)
    }

    /// Which real server a transmitted frame goes to (by MAC).
    fn which(&self, bytes: &[u8]) -> usize {
        RS_MACS
            .iter()
            .position(|m| bytes[..6] == *m)
            .expect("sent to a real server")
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.fwd.handle_timeout(self.now);
    }
}

#[test]
fn dr_tcp_v4_state_and_counters() {
    // Input: SYN then ACK from one client to VIP:80, DR to 2 servers.
    // Output: both frames go unchanged but for the MACs to the same server;
    // the conn counts as inactive after the SYN and active after the ACK.
    let mut l = lab(Config::default(), false, 6, Method::Dr, 2, None);
    let orig = pkt(false, 1, 40000, L4::Tcp(SYN), b"");
    let mut f = orig.clone();
    let (v, out) = l.send(&mut f);
    assert!(matches!(
        v,
        Verdict::Transmit {
            buf: Buf::Frame,
            ..
        }
    ));
    assert_eq!(&out[..6], &RS_MACS[0]);
    assert_eq!(&out[6..12], &DIR_MAC);
    assert_eq!(&out[12..], &orig[12..]);
    let d0 = l.dests[0];
    assert_eq!(l.fwd.dest_counts(d0).unwrap().inactive, 1);
    let mut f = pkt(false, 1, 40000, L4::Tcp(ACK), b"data");
    let (_, out) = l.send(&mut f);
    assert_eq!(l.which(&out), 0);
    let c = l.fwd.dest_counts(d0).unwrap();
    assert_eq!((c.active, c.inactive), (1, 0));
    let conns: Vec<_> = l.fwd.conns(l.now).collect();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].state, State::Established);
    // A second client goes to the other server (rr).
    let mut f = pkt(false, 2, 40000, L4::Tcp(SYN), b"");
    let (_, out) = l.send(&mut f);
    assert_eq!(l.which(&out), 1);
}

#[test]
fn non_syn_and_strangers_pass() {
    let mut l = lab(Config::default(), false, 6, Method::Dr, 1, None);
    let mut f = pkt(false, 1, 40000, L4::Tcp(ACK), b"");
    assert_eq!(l.send(&mut f).0, Verdict::Pass);
    let mut g = frame4([10, 0, 0, 9], 1, [10, 0, 0, 200], 80, L4::Tcp(SYN), b"");
    assert_eq!(l.send(&mut g).0, Verdict::Pass);
    assert_eq!(l.fwd.conn_count(), 0);
}

fn nat_round_trip(v6: bool) {
    // Input: client → VIP:80 (UDP), then the server's reply RIP:8080 → client.
    // Output: request arrives as client → RIP:8080 with valid checksums;
    // reply leaves as VIP:80 → client with valid checksums, to the client MAC.
    let mut l = lab(Config::default(), v6, 17, Method::Nat, 2, None);
    let orig = pkt(v6, 3, 5555, L4::Udp, b"hello");
    let mut f = orig.clone();
    let (v, out) = l.send(&mut f);
    assert!(matches!(v, Verdict::Transmit { .. }), "{v:?}");
    assert!(common::all_ok(&out[14..]));
    let p = parse(&out).unwrap();
    assert_eq!((IpAddr::from(p.flow.dst), p.flow.dport), (rip(v6, 0), 8080));
    // The reply, as the real server sends it.
    let reply = {
        let c = client(v6, 3);
        match (rip(v6, 0), c) {
            (IpAddr::V4(r), IpAddr::V4(c)) => {
                frame4(r.octets(), 8080, c.octets(), 5555, L4::Udp, b"world")
            }
            (IpAddr::V6(r), IpAddr::V6(c)) => {
                frame6(r.octets(), 8080, c.octets(), 5555, L4::Udp, b"world")
            }
            _ => unreachable!(),
        }
    };
    let mut r = reply.clone();
    let (v, out) = l.send(&mut r);
    assert!(matches!(v, Verdict::Transmit { .. }), "{v:?}");
    assert!(common::all_ok(&out[14..]));
    assert_eq!(&out[..6], &CLIENT_MAC);
    let p = parse(&out).unwrap();
    assert_eq!((IpAddr::from(p.flow.src), p.flow.sport), (vip(v6), 80));
    assert_eq!(&out[p.l4 + 8..], b"world");
}

#[test]
fn nat_udp_v4() {
    nat_round_trip(false);
}

#[test]
fn nat_udp_v6() {
    nat_round_trip(true);
}

#[test]
fn tunnel_kinds_decapsulate_to_the_original() {
    for v6 in [false, true] {
        for kind in [
            TunnelKind::Ipip,
            TunnelKind::Gue {
                port: 6080,
                csum: GueCsum::Csum,
            },
            TunnelKind::Gre { csum: true },
        ] {
            let mut l = lab(Config::default(), v6, 6, Method::Tunnel(kind), 1, None);
            let orig = pkt(v6, 1, 40000, L4::Tcp(SYN), b"payload");
            let mut f = orig.clone();
            let (v, out) = l.send(&mut f);
            assert!(
                matches!(v, Verdict::Transmit { buf: Buf::Out, .. }),
                "{v:?}"
            );
            assert_eq!(&out[..6], &RS_MACS[0]);
            let port = match kind {
                TunnelKind::Gue { port, .. } => Some(port),
                _ => None,
            };
            let inner = decapsulate(&out[14..], port).expect("decapsulates");
            assert_eq!(&out[14..][inner], &orig[14..], "{kind:?} v6={v6}");
        }
    }
}

#[test]
fn tunnel_too_big_answers_icmp() {
    // Input: a 1500-byte DF packet to an IPIP destination on a 1500 MTU link.
    // Output: ICMP fragmentation needed (mtu 1480) back to the client.
    let mut l = lab(
        Config::default(),
        false,
        17,
        Method::Tunnel(TunnelKind::Ipip),
        1,
        None,
    );
    let mut f = pkt(false, 1, 1000, L4::Udp, &[7; 1472]);
    let (v, out) = l.send(&mut f);
    assert!(matches!(v, Verdict::Transmit { buf: Buf::Out, .. }));
    assert_eq!(&out[..6], &CLIENT_MAC);
    assert!(common::all_ok(&out[14..]));
    let p = parse(&out).unwrap();
    assert_eq!(IpAddr::from(p.flow.src), vip(false));
    assert_eq!((out[34], out[35]), (3, 4));
    assert_eq!(u16::from_be_bytes([out[40], out[41]]), 1480);
    // IPv6: packet too big, with 1460 (1500 - 40).
    let mut l = lab(
        Config::default(),
        true,
        17,
        Method::Tunnel(TunnelKind::Ipip),
        1,
        None,
    );
    let mut f = pkt(true, 1, 1000, L4::Udp, &[7; 1452]);
    let (_, out) = l.send(&mut f);
    assert!(common::all_ok(&out[14..]));
    assert_eq!(out[54], 2);
    assert_eq!(
        u32::from_be_bytes([out[58], out[59], out[60], out[61]]),
        1460
    );
}

#[test]
fn invalidated_template_is_kept_until_it_expires() {
    // Input: a persistent UDP service (300 s) on 3 servers, both families;
    // client 0's flow lands on a server, which is then removed (first run)
    // or quiesced with expire_quiescent_template (second run); then a new
    // flow from client 0. Output, as the kernel's ip_vs_sched_persist /
    // ip_vs_check_template do it: the new flow goes to another server under
    // a new template, while the old, invalidated template is kept (and
    // still counted on its server) until its timer fires and its
    // connection is gone; then everything is freed.
    for v6 in [false, true] {
        for quiesce in [false, true] {
            let mut cfg = Config::default();
            cfg.expire_quiescent_template = quiesce;
            let mut l = lab(cfg, v6, 17, Method::Dr, 3, Some(Persistence::default()));
            let mut f = pkt(v6, 0, 1000, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            let first = l.which(&out);
            let d = l.dests[first];
            if quiesce {
                l.fwd.set_weight(d, 0).unwrap();
            } else {
                l.fwd.remove_dest(d).unwrap();
            }
            let mut f = pkt(v6, 0, 1001, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            let second = l.which(&out);
            assert_ne!(second, first, "v6={v6} quiesce={quiesce}");
            assert_eq!(l.fwd.template_count(), 2);
            assert_eq!(l.fwd.dest_counts(d).unwrap().persist, 1);
            assert_eq!(l.fwd.dest_counts(l.dests[second]).unwrap().persist, 1);
            // The new template is the one that matches now.
            let mut f = pkt(v6, 0, 1002, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            assert_eq!(l.which(&out), second);
            assert_eq!(l.fwd.template_count(), 2);
            // Conns and templates are both due at ~300 s; a template whose
            // timer fires while its conn is still there is re-armed 60 s
            // later (ip_vs_conn_expire), so allow one more round.
            l.advance(Duration::from_secs(301));
            assert_eq!(l.fwd.conns(l.now).count(), 0);
            l.advance(Duration::from_secs(61));
            assert_eq!(l.fwd.template_count(), 0);
            assert_eq!(l.fwd.conn_count(), 0);
            if quiesce {
                assert_eq!(l.fwd.dest_counts(d).unwrap().persist, 0);
            } else {
                // The removed server's slot is freed with its last reference.
                assert_eq!(l.fwd.dest_counts(d), None);
            }
        }
    }
}

#[test]
fn no_destination_answers_port_unreachable() {
    let mut l = lab(Config::default(), false, 17, Method::Dr, 1, None);
    l.fwd.set_weight(l.dests[0], 0).unwrap();
    let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
    let (v, out) = l.send(&mut f);
    assert!(matches!(v, Verdict::Transmit { buf: Buf::Out, .. }));
    assert!(common::all_ok(&out[14..]));
    assert_eq!((out[34], out[35]), (3, 3));
    assert_eq!(l.fwd.stats().no_dest, 1);
}

#[test]
fn persistence_sticks_per_client_netmask() {
    // Input: clients .10 and .11 (same /24) and a v4 netmask of /24,
    // several source ports each. Output: all land on one server.
    let pc = Persistence {
        netmask: 0xffff_ff00,
        ..Persistence::default()
    };
    let mut l = lab(Config::default(), false, 17, Method::Dr, 3, Some(pc));
    let mut seen = Vec::new();
    for c in 0..2u8 {
        for port in 1000..1005 {
            let mut f = pkt(false, c, port, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            seen.push(l.which(&out));
        }
    }
    assert!(seen.iter().all(|&s| s == seen[0]), "{seen:?}");
    assert_eq!(l.fwd.dest_counts(l.dests[seen[0]]).unwrap().persist, 1);
    // Without the template (after all conns and it expire) the next pick moves on.
    l.advance(Duration::from_secs(301));
    l.advance(Duration::from_secs(301));
    assert_eq!(l.fwd.conn_count(), 0);
    let mut f = pkt(false, 0, 2000, L4::Udp, b"x");
    let (_, out) = l.send(&mut f);
    assert_ne!(l.which(&out), seen[0]);
}

#[test]
fn weight_zero_drains() {
    // Input: a flow to server 0, then weight(server 0) = 0, more packets of
    // that flow and new flows. Output: the old flow stays, new ones go to 1.
    let mut l = lab(Config::default(), false, 17, Method::Dr, 2, None);
    let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
    let (_, out) = l.send(&mut f);
    assert_eq!(l.which(&out), 0);
    l.fwd.set_weight(l.dests[0], 0).unwrap();
    for i in 0..5 {
        let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
        let (_, out) = l.send(&mut f);
        assert_eq!(l.which(&out), 0, "old flow, packet {i}");
        let mut g = pkt(false, 2 + i, 1000, L4::Udp, b"x");
        let (_, out) = l.send(&mut g);
        assert_eq!(l.which(&out), 1, "new flow {i}");
    }
}

#[test]
fn removal_follows_expire_nodest_conn() {
    for expire in [false, true] {
        let mut cfg = Config::default();
        cfg.expire_nodest_conn = expire;
        let mut l = lab(cfg, false, 17, Method::Dr, 2, None);
        let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
        let (_, out) = l.send(&mut f);
        assert_eq!(l.which(&out), 0);
        l.fwd.remove_dest(l.dests[0]).unwrap();
        let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
        let (v, out) = l.send(&mut f);
        if expire {
            assert_eq!(l.which(&out), 1, "rescheduled");
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
            // Until the conn times out; then it is scheduled afresh.
            l.advance(Duration::from_secs(301));
            let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            assert_eq!(l.which(&out), 1);
        }
    }
}

#[test]
fn timeouts_follow_state_and_ipvsadm_set() {
    let mut l = lab(Config::default(), false, 17, Method::Dr, 1, None);
    l.fwd
        .timeouts_mut()
        .set_ipvsadm(Duration::ZERO, Duration::ZERO, Duration::from_secs(10));
    let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
    let _ = l.send(&mut f);
    l.advance(Duration::from_millis(9_900));
    assert_eq!(l.fwd.conn_count(), 1);
    l.advance(Duration::from_millis(400));
    assert_eq!(l.fwd.conn_count(), 0);
    // TCP: a SYN alone lives 60 s (SYN_RECV), established 900 s.
    let mut l = lab(Config::default(), false, 6, Method::Dr, 1, None);
    let mut f = pkt(false, 1, 1000, L4::Tcp(SYN), b"");
    let _ = l.send(&mut f);
    l.advance(Duration::from_secs(59));
    assert_eq!(l.fwd.conn_count(), 1);
    l.advance(Duration::from_secs(2));
    assert_eq!(l.fwd.conn_count(), 0);
    let mut f = pkt(false, 1, 1001, L4::Tcp(SYN), b"");
    let _ = l.send(&mut f);
    let mut f = pkt(false, 1, 1001, L4::Tcp(ACK), b"");
    let _ = l.send(&mut f);
    l.advance(Duration::from_secs(899));
    assert_eq!(l.fwd.conn_count(), 1);
    l.advance(Duration::from_secs(2));
    assert_eq!(l.fwd.conn_count(), 0);
    assert_eq!(l.fwd.dest_counts(l.dests[0]).unwrap(), Default::default());
}

#[test]
fn icmp_error_about_a_reply_reaches_the_nat_server() {
    // Input: the client sends "port unreachable" quoting VIP:80 → client.
    // Output: forwarded to the real server with outer dst RIP and the
    // quoted source RIP:8080; all checksums valid.
    let mut l = lab(Config::default(), false, 17, Method::Nat, 1, None);
    let mut f = pkt(false, 1, 1000, L4::Udp, b"x");
    let _ = l.send(&mut f);
    let reply = frame4([10, 0, 0, 100], 80, [10, 0, 0, 11], 1000, L4::Udp, b"y");
    let rp = parse(&reply).unwrap();
    let mut out = vec![0u8; 2048];
    let n = lb_forward::icmp::error_frame(
        &reply,
        &rp,
        lb_forward::icmp::IcmpError::PortUnreachable,
        CLIENT_MAC,
        DIR_MAC,
        &mut out,
    )
    .unwrap();
    let mut e = out[..n].to_vec();
    let (v, got) = l.send(&mut e);
    assert!(matches!(v, Verdict::Transmit { .. }), "{v:?}");
    assert!(common::all_ok(&got[14..]));
    let p = parse(&got).unwrap();
    assert_eq!(IpAddr::from(p.flow.dst), rip(false, 0));
    let q = p.quoted.unwrap();
    assert_eq!(
        (IpAddr::from(q.flow.src), q.flow.sport),
        (rip(false, 0), 8080)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Reference model: rr over equal weights gives each new flow the next
    /// server in turn, and every later packet of a flow the same server.
    #[test]
    fn flows_stick_and_rr_rotates(flows in proptest::collection::vec((0u8..20, 1000u16..1010), 1..120), v6 in any::<bool>()) {
        let mut l = lab(Config::default(), v6, 17, Method::Dr, 3, None);
        let mut model: std::collections::HashMap<(u8, u16), usize> = Default::default();
        let mut next = 0usize;
        for (c, port) in flows {
            let mut f = pkt(v6, c, port, L4::Udp, b"x");
            let (_, out) = l.send(&mut f);
            let got = l.which(&out);
            let want = *model.entry((c, port)).or_insert_with(|| { let n = next; next = (next + 1) % 3; n });
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(l.fwd.conn_count(), model.len());
        let _ = (l.svc, l.v6);
    }
}

#[test]
fn lb_sched_wlc_through_the_adapter() {
    // Input: 6 UDP flows to a wlc service (lb-sched via LbSched) with
    // weights 1 and 2. Output: lb-sched's own counters match the
    // forwarder's, and the flows split 2:4 as wlc's weighted counts dictate.
    use lb_forward::lbsched::LbSched;
    use lb_sched::{Protocol, SchedulerKind, Service, ServiceFlags, SplitMix64};
    let now = Instant::now();
    let mut fwd: Forwarder<LbSched> = Forwarder::new(Config::default(), now);
    let port = fwd.add_port(Port {
        mac: DIR_MAC,
        mtu: 1500,
        v4: None,
        v6: None,
    });
    fwd.set_gateway(false, CLIENT_MAC, port);
    let rips = [rip(false, 0), rip(false, 1)];
    for (i, r) in rips.iter().enumerate() {
        fwd.set_neighbour(*r, RS_MACS[i], port);
    }
    let vip_sa = std::net::SocketAddr::new(vip(false), 80);
    let key = lb_sched::ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: vip_sa,
    };
    let inner = Service::new(key, ServiceFlags::NONE, SchedulerKind::Wlc, now).unwrap();
    let svc = fwd
        .add_service(
            ServiceConfig {
                key: ServiceKey::Addr {
                    proto: 17,
                    addr: vip(false).into(),
                    port: 80,
                },
                persistence: None,
                one_packet: false,
            },
            LbSched::new(inner, SplitMix64::new(1)),
        )
        .unwrap();
    let d: Vec<u16> = rips
        .iter()
        .zip([1, 2])
        .map(|(r, w)| {
            fwd.add_dest(
                svc,
                DestConfig {
                    addr: *r,
                    port: 80,
                    method: Method::Dr,
                    weight: w,
                },
            )
            .unwrap()
        })
        .collect();
    let mut per = [0usize; 2];
    for c in 0..6u8 {
        let mut f = pkt(false, c, 1000, L4::Udp, b"x");
        let mut out = vec![0u8; 2048];
        let v = fwd.process(now, &mut f, &mut out);
        assert!(matches!(v, Verdict::Transmit { .. }));
        per[RS_MACS.iter().position(|m| f[..6] == *m).unwrap()] += 1;
    }
    assert_eq!(per, [2, 4]);
    let s = fwd.scheduler(svc).unwrap().service();
    for (i, id) in d.iter().enumerate() {
        let ours = fwd.dest_counts(*id).unwrap();
        let theirs = s.dests().find(|(_, x)| x.addr().ip() == rips[i]).unwrap().1;
        assert_eq!(
            (ours.active, ours.inactive),
            (theirs.active_conns(), theirs.inactive_conns())
        );
    }
}

#[test]
fn fwmark_service_with_persistence_spans_protocols_and_ports() {
    // Input: mark rules give TCP :443 and UDP :53 to VIP the mark 7; a
    // persistent fwmark service on mark 7 with 3 servers. Output: one
    // client's flows of both protocols land on one server (one template,
    // as IPVS keys fwmark templates on <IPPROTO_IP, caddr, fwmark>); the
    // plain :80 service is unaffected.
    use lb_sched::fwmark::{PortSet, Prefix, Rule};
    let mut l = lab(Config::default(), false, 6, Method::Dr, 3, None);
    for (proto, port) in [(6u8, 443u16), (17, 53)] {
        l.fwd
            .add_fwmark_rule(
                Rule::mark(7)
                    .protocol(proto)
                    .dst(Prefix::new(vip(false), 32).unwrap())
                    .dports(PortSet::from_ranges(&[(port, port)]).unwrap()),
            )
            .unwrap();
    }
    let msvc = l
        .fwd
        .add_service(
            ServiceConfig {
                key: ServiceKey::Fwmark(7),
                persistence: Some(Persistence::default()),
                one_packet: false,
            },
            RoundRobin::default(),
        )
        .unwrap();
    for i in 0..3 {
        l.fwd
            .add_dest(
                msvc,
                DestConfig {
                    addr: rip(false, i),
                    port: 0,
                    method: Method::Dr,
                    weight: 1,
                },
            )
            .unwrap();
    }
    let (IpAddr::V4(c), IpAddr::V4(v)) = (client(false, 5), vip(false)) else {
        unreachable!()
    };
    let mut seen = Vec::new();
    for (l4, port, sport) in [
        (L4::Tcp(SYN), 443, 1000),
        (L4::Udp, 53, 1001),
        (L4::Tcp(SYN), 443, 1002),
        (L4::Udp, 53, 1003),
    ] {
        let mut f = frame4(c.octets(), sport, v.octets(), port, l4, b"");
        let (verdict, out) = l.send(&mut f);
        assert!(matches!(verdict, Verdict::Transmit { .. }), "{verdict:?}");
        seen.push(l.which(&out));
    }
    assert!(seen.iter().all(|&s| s == seen[0]), "{seen:?}");
    assert_eq!(l.fwd.template_count(), 1);
    assert!(l.fwd.conns(l.now).all(|c| c.persistent));
    // :80 still goes to the address service (its rr starts at server 0).
    let mut f = pkt(false, 5, 2000, L4::Tcp(SYN), b"");
    let (_, out) = l.send(&mut f);
    assert_eq!(l.which(&out), 0);
}

#[test]
fn clearing_fwmark_rules_keeps_tracked_flows() {
    // Input: mark 7 for TCP :443 to the VIP, a fwmark-7 service with two
    // servers, one flow through it; then the rules are cleared (a reload).
    // Output: the tracked flow still reaches its server, a new flow to :443
    // is no longer ours (Pass), and a rule added afterwards classifies again.
    use lb_sched::fwmark::{PortSet, Prefix, Rule};
    let mut l = lab(Config::default(), false, 6, Method::Dr, 2, None);
    let rule = || {
        Rule::mark(7)
            .protocol(6)
            .dst(Prefix::new(vip(false), 32).unwrap())
            .dports(PortSet::parse("443").unwrap())
    };
    l.fwd.add_fwmark_rule(rule()).unwrap();
    assert_eq!(l.fwd.fwmark_rules().len(), 1);
    let svc = l
        .fwd
        .add_service(
            ServiceConfig {
                key: ServiceKey::Fwmark(7),
                persistence: None,
                one_packet: false,
            },
            RoundRobin::default(),
        )
        .unwrap();
    for i in 0..2 {
        l.fwd
            .add_dest(
                svc,
                DestConfig {
                    addr: rip(false, i),
                    port: 0,
                    method: Method::Dr,
                    weight: 1,
                },
            )
            .unwrap();
    }
    let (IpAddr::V4(c), IpAddr::V4(v)) = (client(false, 1), vip(false)) else {
        unreachable!()
    };
    let mut f = frame4(c.octets(), 1000, v.octets(), 443, L4::Tcp(SYN), b"");
    let (verdict, out) = l.send(&mut f);
    assert!(matches!(verdict, Verdict::Transmit { .. }), "{verdict:?}");
    let first = l.which(&out);
    l.fwd.clear_fwmark_rules();
    assert!(l.fwd.fwmark_rules().is_empty());
    let mut f = frame4(c.octets(), 1000, v.octets(), 443, L4::Tcp(ACK), b"x");
    let (verdict, out) = l.send(&mut f);
    assert!(matches!(verdict, Verdict::Transmit { .. }), "{verdict:?}");
    assert_eq!(l.which(&out), first);
    let mut f = frame4(c.octets(), 1001, v.octets(), 443, L4::Tcp(SYN), b"");
    assert!(matches!(l.send(&mut f).0, Verdict::Pass));
    l.fwd.add_fwmark_rule(rule()).unwrap();
    let mut f = frame4(c.octets(), 1002, v.octets(), 443, L4::Tcp(SYN), b"");
    assert!(matches!(l.send(&mut f).0, Verdict::Transmit { .. }));
}

#[test]
fn conn_reuse_mode_reschedules_a_syn_after_close() {
    // Input: a TCP connection to server 0 reset (state CLOSE), then
    // a new SYN from the same client port. Output: with conn_reuse_mode 1
    // (the default) the SYN is scheduled afresh (rr moves on to server 1);
    // with 0 it stays on server 0.
    const RST: u8 = 0x04;
    for mode in [1u8, 0] {
        let mut cfg = Config::default();
        cfg.conn_reuse_mode = mode;
        let mut l = lab(cfg, false, 6, Method::Dr, 2, None);
        let mut f = pkt(false, 1, 40000, L4::Tcp(SYN), b"");
        let (_, out) = l.send(&mut f);
        assert_eq!(l.which(&out), 0);
        // (A RST in SYN_RECV keeps SYN_RECV in the kernel's table; establish first.)
        let mut f = pkt(false, 1, 40000, L4::Tcp(ACK), b"");
        let _ = l.send(&mut f);
        let mut f = pkt(false, 1, 40000, L4::Tcp(RST), b"");
        let _ = l.send(&mut f);
        assert_eq!(l.fwd.conns(l.now).next().unwrap().state, State::Close);
        let mut f = pkt(false, 1, 40000, L4::Tcp(SYN), b"");
        let (_, out) = l.send(&mut f);
        assert_eq!(l.which(&out), if mode == 1 { 1 } else { 0 }, "mode {mode}");
        assert_eq!(l.fwd.conn_count(), 1);
    }
}

#[test]
fn one_packet_scheduling_keeps_no_connection() {
    // Input: a UDP service with --ops; 4 datagrams of one flow.
    // Output: each is scheduled on its own (rr alternates), no conn kept.
    let now = Instant::now();
    let mut fwd: Forwarder<RoundRobin> = Forwarder::new(Config::default(), now);
    let port = fwd.add_port(Port {
        mac: DIR_MAC,
        mtu: 1500,
        v4: None,
        v6: None,
    });
    let key = ServiceKey::Addr {
        proto: 17,
        addr: vip(false).into(),
        port: 80,
    };
    let svc = fwd
        .add_service(
            ServiceConfig {
                key,
                persistence: None,
                one_packet: true,
            },
            RoundRobin::default(),
        )
        .unwrap();
    for (i, mac) in RS_MACS.iter().enumerate().take(2) {
        fwd.set_neighbour(rip(false, i), *mac, port);
        fwd.add_dest(
            svc,
            DestConfig {
                addr: rip(false, i),
                port: 80,
                method: Method::Dr,
                weight: 1,
            },
        )
        .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let mut f = pkt(false, 1, 5000, L4::Udp, b"x");
        let mut out = vec![0u8; 2048];
        assert!(matches!(
            fwd.process(now, &mut f, &mut out),
            Verdict::Transmit { .. }
        ));
        got.push(RS_MACS.iter().position(|m| f[..6] == *m).unwrap());
    }
    assert_eq!(got, [0, 1, 0, 1]);
    assert_eq!(fwd.conn_count(), 0);
}
