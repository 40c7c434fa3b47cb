//! The director's new-connection path against a naive model: services in a
//! `Vec` looked up by linear scans in `ip_vs_service_find`'s order,
//! templates in a `Vec` keyed as `ip_vs_sched_persist` keys them, and each
//! service's scheduler from the reference transcription of the kernel C
//! (tests/common/reference.rs). Time is frozen, so templates never expire;
//! template expiry itself is tested in `persist`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use common::reference::{Model, counters};
use lb_sched::director::{Conn, Director, DirectorConfig, Outcome, Refusal, ServiceConfig};
use lb_sched::persist::Netmask;
use lb_sched::{
    AddressFamily, ConnKind, DestConfig, PacketInfo, Protocol, SchedulerKind, ServiceKey,
    SplitMix64,
};
use proptest::prelude::*;

const VIP: [u8; 4] = [192, 0, 2, 1];
const MARK: u32 = 7;

/// The services a case may define: (key, port of the key).
fn keys() -> [ServiceKey; 5] {
    let v = |port| SocketAddr::from((VIP, port));
    [
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v(80),
        },
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v(21),
        },
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v(0),
        },
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: v(53),
        },
        ServiceKey::Fwmark {
            mark: MARK,
            family: AddressFamily::Inet,
        },
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    present: bool,
    kind: SchedulerKind,
    persistent: bool,
    mask: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        s: usize,
        d: usize,
        w: u32,
        u: u32,
        l: u32,
    },
    Edit {
        s: usize,
        d: usize,
        w: u32,
        u: u32,
        l: u32,
    },
    Del {
        s: usize,
        d: usize,
    },
    Connect {
        client: u8,
        sport: u16,
        udp: bool,
        dport: u16,
        vip2: bool,
        mark: bool,
    },
    Activate {
        c: usize,
        active: bool,
    },
    Close {
        c: usize,
    },
}

fn kind() -> impl Strategy<Value = SchedulerKind> {
    prop::sample::select(vec![
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Mh,
    ])
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::bool::weighted(0.8),
        kind(),
        any::<bool>(),
        prop::sample::select(vec![u32::MAX, 0xffff_ff00, 0xffff_0000]),
    )
        .prop_map(|(present, kind, persistent, mask)| Spec {
            present,
            kind,
            persistent,
            mask,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let dest = (0usize..5, 0usize..4, 0u32..4, 0u32..4, 0u32..4);
    prop_oneof![
        3 => dest.clone().prop_map(|(s, d, w, u, l)| Op::Add { s, d, w, u: u.max(l), l }),
        1 => dest.prop_map(|(s, d, w, u, l)| Op::Edit { s, d, w, u: u.max(l), l }),
        1 => (0usize..5, 0usize..4).prop_map(|(s, d)| Op::Del { s, d }),
        8 => (
            0u8..12,
            prop::sample::select(vec![20u16, 1000, 1001, 40000]),
            prop::bool::weighted(0.2),
            prop::sample::select(vec![80u16, 21, 53, 443, 5000, 20]),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.3),
        )
            .prop_map(|(client, sport, udp, dport, vip2, mark)| Op::Connect {
                client, sport, udp, dport, vip2, mark
            }),
        2 => (0usize..64, any::<bool>()).prop_map(|(c, active)| Op::Activate { c, active }),
        2 => (0usize..64).prop_map(|c| Op::Close { c }),
    ]
}

/// A model template.
#[derive(Debug)]
struct Tmpl {
    key: (u8, u32, u32, u16),
    svc: usize,
    dest: SocketAddr,
    valid: bool,
}

struct Naive {
    specs: Vec<Spec>,
    models: Vec<Model>,
    templates: Vec<Tmpl>,
}

#[derive(Debug, PartialEq, Eq)]
enum Pick {
    Conn { svc: usize, daddr: SocketAddr },
    NoService,
    FtpData(usize),
    PortMismatch(usize),
    NoDest(usize),
}

fn dest_addr(d: usize, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1 + d as u8], port))
}

fn key_port(k: &ServiceKey) -> u16 {
    match k {
        ServiceKey::Addr { addr, .. } => addr.port(),
        ServiceKey::Fwmark { .. } => 0,
    }
}

impl Naive {
    fn present(&self, s: usize) -> bool {
        self.specs[s].present
    }

    /// ip_vs_service_find, as linear scans.
    fn find(&self, mark: u32, proto: u8, vaddr: IpAddr, vport: u16) -> Option<usize> {
        let keys = keys();
        let exact = |port: u16| {
            (0..5).find(|&s| {
                self.present(s)
                    && matches!(keys[s], ServiceKey::Addr { protocol, addr }
                        if protocol.number() == proto && addr.ip() == vaddr && addr.port() == port)
            })
        };
        if mark != 0 {
            let f = (0..5).find(|&s| {
                self.present(s)
                    && matches!(keys[s], ServiceKey::Fwmark { mark: m, .. } if m == mark)
            });
            if f.is_some() {
                return f;
            }
        }
        if let Some(s) = exact(vport) {
            return Some(s);
        }
        if proto == 6 && (vport == 20 || vport >= 1024) {
            let any_ftp = (0..5).any(|s| self.present(s) && key_port(&keys[s]) == 21);
            if any_ftp && let Some(s) = exact(21) {
                return Some(s);
            }
        }
        exact(0)
    }

    fn connect(&mut self, pkt: &PacketInfo, mark: u32) -> Pick {
        let proto = pkt.protocol.number();
        let Some(s) = self.find(mark, proto, pkt.dst, pkt.dst_port) else {
            return Pick::NoService;
        };
        if pkt.src_port == 20 {
            return Pick::FtpData(s);
        }
        let key = keys()[s];
        let sport = key_port(&key);
        let fwmark = matches!(key, ServiceKey::Fwmark { .. });
        let vport = pkt.dst_port;
        let spec = self.specs[s].clone();
        if !spec.persistent {
            if !fwmark && vport != sport {
                return Pick::PortMismatch(s);
            }
            let Some(d) = self.models[s].pick(0, pkt, &mut || 0) else {
                return Pick::NoDest(s);
            };
            assert!(self.models[s].bind(d, ConnKind::Inactive));
            let port = if d.port() != 0 { d.port() } else { vport };
            return Pick::Conn {
                svc: s,
                daddr: SocketAddr::new(d.ip(), port),
            };
        }
        let IpAddr::V4(c) = pkt.src else {
            unreachable!()
        };
        let IpAddr::V4(v) = pkt.dst else {
            unreachable!()
        };
        let mut tkey = (proto, u32::from(c) & spec.mask, u32::from(v), 0u16);
        if vport == sport {
            if sport != 21 {
                tkey.3 = vport;
            }
        } else if fwmark {
            tkey.0 = 0;
            tkey.2 = MARK;
        }
        // ip_vs_ct_in_get + ip_vs_check_template.
        let found = self.templates.iter().position(|t| t.valid && t.key == tkey);
        let (owner, dest) = match found {
            Some(i)
                if self.models[self.templates[i].svc]
                    .find(self.templates[i].dest)
                    .is_some_and(|d| d.available) =>
            {
                (self.templates[i].svc, self.templates[i].dest)
            }
            other => {
                if let Some(i) = other {
                    self.templates[i].valid = false;
                }
                let Some(d) = self.models[s].pick(0, pkt, &mut || 0) else {
                    return Pick::NoDest(s);
                };
                assert!(self.models[s].bind(d, ConnKind::Template));
                self.templates.push(Tmpl {
                    key: tkey,
                    svc: s,
                    dest: d,
                    valid: true,
                });
                (s, d)
            }
        };
        assert!(self.models[owner].bind(dest, ConnKind::Inactive));
        let port = if vport == sport && dest.port() != 0 {
            dest.port()
        } else {
            vport
        };
        Pick::Conn {
            svc: owner,
            daddr: SocketAddr::new(dest.ip(), port),
        }
    }
}

fn run(specs: Vec<Spec>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let keys = keys();
    let mut dir = Director::new(DirectorConfig::default(), now);
    let mut naive = Naive {
        specs: specs.clone(),
        models: specs
            .iter()
            .map(|s| Model::new(s.kind, false, false, false, 4093, 8))
            .collect(),
        templates: Vec::new(),
    };
    for (i, s) in specs.iter().enumerate() {
        if !s.present {
            continue;
        }
        let mut cfg = ServiceConfig::new(keys[i], s.kind);
        if s.persistent || key_port(&keys[i]) == 0 && i != 4 {
            cfg = cfg.persistent(std::time::Duration::from_secs(300));
            naive.specs[i].persistent = true;
        }
        cfg = cfg.netmask(Netmask::V4(s.mask));
        dir.add_service(cfg, now).unwrap();
    }
    let mut rng = SplitMix64::new(1);
    // Open connections: the director's handle and the model's (svc, dest, kind).
    let mut conns: Vec<(Conn, usize, SocketAddr, ConnKind)> = Vec::new();
    // Service ports for dests: fwmark and port-zero services use port 0 or
    // a fixed port alternately, to exercise the dport rule.
    let dport = |s: usize, d: usize| match keys[s] {
        ServiceKey::Addr { addr, .. } if addr.port() != 0 => addr.port(),
        _ => {
            if d.is_multiple_of(2) {
                0
            } else {
                8080
            }
        }
    };
    for op in &ops {
        match *op {
            Op::Add { s, d, w, u, l } => {
                if !naive.present(s) {
                    continue;
                }
                let a = dest_addr(d, dport(s, d));
                let ok = dir
                    .add_dest(&keys[s], DestConfig::new(a, w).thresholds(u, l))
                    .is_ok();
                prop_assert_eq!(
                    ok,
                    naive.models[s].add(a, i64::from(w), i64::from(u), i64::from(l))
                );
            }
            Op::Edit { s, d, w, u, l } => {
                if !naive.present(s) {
                    continue;
                }
                let a = dest_addr(d, dport(s, d));
                let ok = dir
                    .edit_dest(&keys[s], DestConfig::new(a, w).thresholds(u, l))
                    .is_ok();
                prop_assert_eq!(
                    ok,
                    naive.models[s].edit(a, i64::from(w), i64::from(u), i64::from(l))
                );
            }
            Op::Del { s, d } => {
                if !naive.present(s) {
                    continue;
                }
                let a = dest_addr(d, dport(s, d));
                let ok = dir.remove_dest(&keys[s], a).is_ok();
                prop_assert_eq!(ok, naive.models[s].del(a));
            }
            Op::Connect {
                client,
                sport,
                udp,
                dport: vport,
                vip2,
                mark,
            } => {
                let proto = if udp { Protocol::Udp } else { Protocol::Tcp };
                // Clients spread over two /24s and two /16s.
                let src = Ipv4Addr::new(198, 51 + client / 6, 100 + client % 2, 1 + client);
                let vip = if vip2 { [192, 0, 2, 2] } else { VIP };
                let pkt = PacketInfo::new(
                    proto,
                    SocketAddr::from((src, sport + conns.len() as u16 % 7)),
                    SocketAddr::from((vip, vport)),
                );
                let pkt = if sport == 20 {
                    PacketInfo {
                        src_port: 20,
                        ..pkt
                    }
                } else {
                    pkt
                };
                let m = if mark { MARK } else { 0 };
                let want = naive.connect(&pkt, m);
                let got = dir.schedule(now, &pkt, m, &mut rng).unwrap();
                let slot = |id| (0..5).find(|&i| dir.find_service(&keys[i]) == Some(id));
                let got_pick = match got {
                    Outcome::Conn(c) => Pick::Conn {
                        svc: slot(c.service()).unwrap(),
                        daddr: c.daddr(),
                    },
                    Outcome::Refused(Refusal::NoService) => Pick::NoService,
                    Outcome::Refused(Refusal::FtpData(id)) => Pick::FtpData(slot(id).unwrap()),
                    Outcome::Refused(Refusal::PortMismatch(id)) => {
                        Pick::PortMismatch(slot(id).unwrap())
                    }
                    Outcome::Refused(Refusal::NoDest(id)) => Pick::NoDest(slot(id).unwrap()),
                };
                prop_assert_eq!(&got_pick, &want, "{:?}", pkt);
                if let (Outcome::Conn(c), Pick::Conn { svc, .. }) = (got, &want) {
                    let addr = dir
                        .service(c.service())
                        .unwrap()
                        .dest(c.dest())
                        .unwrap()
                        .addr();
                    conns.push((c, *svc, addr, ConnKind::Inactive));
                }
            }
            Op::Activate { c, active } => {
                if let Some((conn, s, a, kind)) = conns.get_mut(c) {
                    dir.set_active(conn, active).unwrap();
                    let want = if active {
                        ConnKind::Active
                    } else {
                        ConnKind::Inactive
                    };
                    if *kind != want {
                        prop_assert!(naive.models[*s].set_active(*a, active));
                        *kind = want;
                    }
                }
            }
            Op::Close { c } => {
                if c < conns.len() {
                    let (conn, s, a, kind) = conns.swap_remove(c);
                    dir.close(now, conn).unwrap();
                    prop_assert!(naive.models[s].unbind(a, kind));
                }
            }
        }
        // Counters and flags of every destination, listed or trashed.
        for (i, key) in keys.iter().enumerate() {
            if !naive.present(i) {
                continue;
            }
            let id = dir.find_service(key).unwrap();
            let svc = dir.service(id).unwrap();
            let got: std::collections::HashMap<SocketAddr, (i64, i64, i64, bool, bool)> = svc
                .dests()
                .chain(svc.trashed())
                .map(|(_, d)| {
                    (
                        d.addr(),
                        (
                            i64::from(d.active_conns()),
                            i64::from(d.inactive_conns()),
                            i64::from(d.persistent_conns()),
                            d.is_overloaded(),
                            d.is_available(),
                        ),
                    )
                })
                .filter(|(_, c)| c.4 || c.0 + c.1 + c.2 > 0)
                .collect();
            prop_assert_eq!(got, counters(&naive.models[i]), "service {}", i);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn director_matches_naive_model(
        specs in prop::collection::vec(spec(), 5),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(specs, ops)?;
    }
}
