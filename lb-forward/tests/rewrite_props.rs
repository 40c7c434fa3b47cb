//! Property tests of the rewrite and encapsulation functions: checksums
//! verify afterwards (by a from-scratch verifier), and NAT is reversible.

mod common;

use lb_forward::addr::Addr;
use lb_forward::icmp::{IcmpError, error_frame};
use lb_forward::parse::parse;
use lb_forward::rewrite::{nat_dst, nat_icmp_to_client, nat_icmp_to_real, nat_src};
use lb_forward::testutil::{L4, frame4, frame6};
use lb_forward::tunnel::{GueCsum, Outer, TunnelKind, apply_remcsum, decap_inner, encapsulate};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Flow {
    v6: bool,
    tcp: Option<u8>,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        any::<bool>(),
        proptest::option::of(any::<u8>()),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(v6, tcp, src, dst, sport, dport, payload)| Flow {
            v6,
            tcp,
            src,
            dst,
            sport,
            dport,
            payload,
        })
}

fn build(f: &Flow) -> Vec<u8> {
    let l4 = f.tcp.map_or(L4::Udp, L4::Tcp);
    if f.v6 {
        frame6(f.src, f.sport, f.dst, f.dport, l4, &f.payload)
    } else {
        let s = [f.src[0], f.src[1], f.src[2], f.src[3]];
        let d = [f.dst[0], f.dst[1], f.dst[2], f.dst[3]];
        frame4(s, f.sport, d, f.dport, l4, &f.payload)
    }
}

fn addr(v6: bool, b: [u8; 16]) -> Addr {
    if v6 {
        Addr(b)
    } else {
        Addr::v4([b[0], b[1], b[2], b[3]])
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nat_keeps_checksums_and_reverses(f in flow(), rip in any::<[u8; 16]>(), rport in any::<u16>()) {
        let orig = build(&f);
        prop_assert!(common::all_ok(&orig[14..]));
        let mut fr = orig.clone();
        let p = parse(&fr).unwrap();
        nat_dst(&mut fr, &p, addr(f.v6, rip), rport);
        prop_assert!(common::all_ok(&fr[14..]));
        let q = parse(&fr).unwrap();
        prop_assert_eq!((q.flow.dst, q.flow.dport), (addr(f.v6, rip), rport));
        prop_assert_eq!(q.flow.src, p.flow.src);
        // Back again: byte-identical (one's complement has two zeros, but
        // the update formula maps the original value back exactly).
        nat_dst(&mut fr, &q, p.flow.dst, p.flow.dport);
        let r = parse(&fr).unwrap();
        prop_assert!(common::all_ok(&fr[14..]));
        prop_assert_eq!(r.flow, p.flow);
        prop_assert_eq!(&fr[..14 + 20], &orig[..14 + 20]);
        prop_assert_eq!(&fr[r.l4 + 8..], &orig[r.l4 + 8..]);

        // The reply direction: source rewrite.
        let mut rep = orig.clone();
        nat_src(&mut rep, &p, addr(f.v6, rip), rport);
        prop_assert!(common::all_ok(&rep[14..]));
        let s = parse(&rep).unwrap();
        prop_assert_eq!((s.flow.src, s.flow.sport), (addr(f.v6, rip), rport));
    }

    #[test]
    fn icmp_error_nat_both_ways(f in flow(), rip in any::<[u8; 16]>(), rport in any::<u16>(), too_big in any::<bool>()) {
        // The real server's reply (rip:rport → client) after un-NAT is
        // (vip:vport → client); the client answers with an ICMP error
        // quoting it. That error is NAT-ed to the real server and back.
        let reply = build(&Flow { src: f.dst, dst: f.src, sport: f.dport, dport: f.sport, ..f.clone() });
        let rp = parse(&reply).unwrap();
        let err = if too_big { IcmpError::TooBig { mtu: 1280 } } else { IcmpError::PortUnreachable };
        let mut out = vec![0u8; 2048];
        let n = error_frame(&reply, &rp, err, [2; 6], [4; 6], &mut out).unwrap();
        let mut e = out[..n].to_vec();
        prop_assert!(common::all_ok(&e[14..]));
        let ep = parse(&e).unwrap();
        let q = ep.quoted.unwrap();
        prop_assert_eq!(q.flow, rp.flow);
        let rip = addr(f.v6, rip);
        nat_icmp_to_real(&mut e, &ep, rip, rport);
        prop_assert!(common::all_ok(&e[14..]));
        let ep2 = parse(&e).unwrap();
        prop_assert_eq!(ep2.flow.dst, rip);
        let q2 = ep2.quoted.unwrap();
        prop_assert_eq!((q2.flow.src, q2.flow.sport), (rip, rport));
        prop_assert!(f.v6 || common::ipv4_header_ok(&e[q2.l3..]));
        // The other way: the real server complains about the client's
        // request as it received it (client → rip:rport); the error goes
        // back to the client from vip, quoting client → vip:vport.
        let mut req = build(&f);
        let p0 = parse(&req).unwrap();
        nat_dst(&mut req, &p0, rip, rport);
        let qp = parse(&req).unwrap();
        let mut out2 = vec![0u8; 2048];
        let n2 = error_frame(&req, &qp, err, [2; 6], [4; 6], &mut out2).unwrap();
        let mut e2 = out2[..n2].to_vec();
        let ep3 = parse(&e2).unwrap();
        prop_assert_eq!(ep3.flow.src, rip);
        nat_icmp_to_client(&mut e2, &ep3, rip, p0.flow.dst, p0.flow.dport);
        prop_assert!(common::all_ok(&e2[14..]));
        let ep4 = parse(&e2).unwrap();
        prop_assert_eq!(ep4.flow.src, p0.flow.dst);
        prop_assert_eq!(ep4.quoted.unwrap().flow, p0.flow);
    }

    #[test]
    fn encapsulation_round_trips(
        f in flow(),
        outer6 in any::<bool>(),
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        kind in 0u8..6,
        port in 1u16..,
    ) {
        let inner = build(&f);
        let ip = &inner[14..];
        let kind = match kind {
            0 => TunnelKind::Ipip,
            1 => TunnelKind::Gue { port, csum: GueCsum::None },
            2 => TunnelKind::Gue { port, csum: GueCsum::Csum },
            3 => TunnelKind::Gue { port, csum: GueCsum::RemCsum },
            4 => TunnelKind::Gre { csum: false },
            _ => TunnelKind::Gre { csum: true },
        };
        let p = parse(&inner).unwrap();
        let udp_nocsum = !f.v6 && f.tcp.is_none() && inner[p.l4 + 6..p.l4 + 8] == [0, 0];
        let loc = if udp_nocsum { None } else { Some((p.l4 - 14, if f.tcp.is_some() { 16 } else { 6 })) };
        let o = Outer { src: addr(outer6, a), dst: addr(outer6, b), ip_id: 7, sport: 40000 };
        let mut out = vec![0u8; 2048];
        let n = encapsulate(&mut out, ip, kind, o, loc).unwrap();
        let pkt = &out[..n];
        if !outer6 { prop_assert!(common::ipv4_header_ok(pkt)); }
        if let TunnelKind::Gue { csum: GueCsum::Csum | GueCsum::RemCsum, .. } = kind {
            prop_assert!(common::l4_ok(pkt));
        }
        if let TunnelKind::Gre { csum: true } = kind {
            let hl = if outer6 { 40 } else { 20 };
            prop_assert_eq!(common::ones_sum(&pkt[hl..]), 0xffff);
        }
        let gue_port = match kind { TunnelKind::Gue { port, .. } => Some(port), _ => None };
        let d = decap_inner(pkt, gue_port).unwrap();
        let mut got = pkt[d.range.clone()].to_vec();
        if let Some((s, c)) = d.remcsum {
            prop_assert!(apply_remcsum(&mut got, s, c));
        }
        prop_assert_eq!(&got[..], ip);
    }
}
