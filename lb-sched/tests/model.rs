//! Every scheduler against the reference model (tests/common/reference.rs)
//! over random sequences of add / remove / weight and threshold changes /
//! connection open, close and state change / picks / time passing.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::reference::Model;
use lb_sched::{
    ConnKind, DestConfig, DestId, PacketInfo, Protocol, SchedulerConfig, SchedulerKind, Scripted,
    Service, ServiceFlags, ServiceKey,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add {
        d: usize,
        weight: u32,
        u: u32,
        l: u32,
    },
    Remove {
        d: usize,
    },
    Edit {
        d: usize,
        weight: u32,
        u: u32,
        l: u32,
    },
    Bind {
        d: usize,
        kind: ConnKind,
    },
    Unbind {
        d: usize,
        kind: ConnKind,
    },
    SetActive {
        d: usize,
        active: bool,
    },
    Pick {
        client: usize,
        vip: usize,
        sport: u16,
        proto: u8,
        inverse: bool,
        r: (u32, u32),
    },
    Advance {
        secs: u64,
    },
}

fn kind_strategy() -> impl Strategy<Value = ConnKind> {
    prop_oneof![
        Just(ConnKind::Active),
        Just(ConnKind::Inactive),
        Just(ConnKind::Template)
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let thresholds =
        (0u32..5, 0u32..5).prop_map(|(u, l)| if l > u && u > 0 { (u, u) } else { (u, l) });
    prop_oneof![
        3 => (0usize..7, 0u32..7, thresholds.clone()).prop_map(|(d, weight, (u, l))| Op::Add { d, weight, u, l }),
        1 => (0usize..7).prop_map(|d| Op::Remove { d }),
        2 => (0usize..7, 0u32..7, thresholds).prop_map(|(d, weight, (u, l))| Op::Edit { d, weight, u, l }),
        4 => (0usize..7, kind_strategy()).prop_map(|(d, kind)| Op::Bind { d, kind }),
        3 => (0usize..7, kind_strategy()).prop_map(|(d, kind)| Op::Unbind { d, kind }),
        2 => (0usize..7, any::<bool>()).prop_map(|(d, active)| Op::SetActive { d, active }),
        6 => (0usize..5, 0usize..3, any::<u16>(), prop_oneof![Just(6u8), Just(17), Just(1)], proptest::bool::weighted(0.1), any::<(u32, u32)>())
            .prop_map(|(client, vip, sport, proto, inverse, r)| Op::Pick { client, vip, sport, proto, inverse, r }),
        1 => prop_oneof![1u64..100, 100u64..2000].prop_map(|secs| Op::Advance { secs }),
    ]
}

fn dest_addr(v6: bool, d: usize) -> SocketAddr {
    // Six addresses on port 80 and one sharing the first address on 8080.
    let (host, port) = if d == 6 {
        (1, 8080)
    } else {
        (d as u16 + 1, 80)
    };
    if v6 {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, host)),
            port,
        )
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host as u8)), port)
    }
}

fn host(v6: bool, net: u8, i: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            u16::from(net),
            7,
            0,
            i as u16 * 77,
            0,
            i as u16 + 1,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, net, i as u8 * 37, i as u8 + 1))
    }
}

fn id_of(svc: &Service, addr: SocketAddr) -> Option<DestId> {
    svc.dests()
        .chain(svc.trashed())
        .find(|(_, d)| d.addr() == addr)
        .map(|(id, _)| id)
}

fn addr_of(svc: &Service, id: DestId) -> SocketAddr {
    svc.dest(id).expect("picked dest is live").addr()
}

/// Listed destinations agree in order and state.
fn check_list(svc: &Service, model: &Model) -> Result<(), TestCaseError> {
    let ours: Vec<_> = svc
        .dests()
        .map(|(_, d)| {
            (
                d.addr(),
                i64::from(d.weight()),
                i64::from(d.active_conns()),
                i64::from(d.inactive_conns()),
                i64::from(d.persistent_conns()),
                d.is_overloaded(),
            )
        })
        .collect();
    let theirs: Vec<_> = model
        .list
        .iter()
        .map(|d| {
            (
                d.addr, d.weight, d.active, d.inactive, d.persist, d.overload,
            )
        })
        .collect();
    prop_assert_eq!(ours, theirs);
    Ok(())
}

fn run(
    kind: SchedulerKind,
    v6: bool,
    flags: u32,
    mh_size: u32,
    sh_bits: u8,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let base = Instant::now();
    let mut t: u64 = 0;
    let vip = if v6 {
        "[2001:db8:ffff::1]:80"
    } else {
        "192.0.2.1:80"
    };
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip.parse().unwrap(),
    };
    let mut cfg = SchedulerConfig::new(kind);
    cfg.mh_table_size = mh_size;
    cfg.sh_table_bits = sh_bits;
    cfg.lblc_expiration = Duration::from_secs(900);
    cfg.lblcr_expiration = Duration::from_secs(900);
    let flags = ServiceFlags::from_bits(flags);
    let mut svc = Service::new(key, flags, cfg, base).unwrap();
    let mut model = Model::new(
        kind,
        v6,
        flags.contains(ServiceFlags::SCHED1),
        flags.contains(ServiceFlags::SCHED2),
        mh_size,
        u32::from(sh_bits),
    );
    model.expiration = 900;
    for op in ops {
        match *op {
            Op::Add { d, weight, u, l } => {
                let a = dest_addr(v6, d);
                let ok = svc
                    .add_dest(DestConfig::new(a, weight).thresholds(u, l))
                    .is_ok();
                prop_assert_eq!(
                    ok,
                    model.add(a, i64::from(weight), i64::from(u), i64::from(l)),
                    "{:?}",
                    op
                );
            }
            Op::Remove { d } => {
                let a = dest_addr(v6, d);
                let ok = svc
                    .find_dest(a)
                    .map(|id| svc.remove_dest(id))
                    .is_some_and(|r| r.is_ok());
                prop_assert_eq!(ok, model.del(a));
            }
            Op::Edit { d, weight, u, l } => {
                let a = dest_addr(v6, d);
                let ok = svc
                    .edit_dest(DestConfig::new(a, weight).thresholds(u, l))
                    .is_ok();
                prop_assert_eq!(
                    ok,
                    model.edit(a, i64::from(weight), i64::from(u), i64::from(l))
                );
            }
            Op::Bind { d, kind } => {
                let a = dest_addr(v6, d);
                if let Some(id) = id_of(&svc, a) {
                    prop_assert!(svc.conn_bind(id, kind).is_ok());
                    prop_assert!(model.bind(a, kind));
                }
            }
            Op::Unbind { d, kind } => {
                let a = dest_addr(v6, d);
                if let Some(id) = id_of(&svc, a) {
                    prop_assert_eq!(svc.conn_unbind(id, kind).is_ok(), model.unbind(a, kind));
                }
            }
            Op::SetActive { d, active } => {
                let a = dest_addr(v6, d);
                if let Some(id) = id_of(&svc, a) {
                    prop_assert_eq!(
                        svc.conn_set_active(id, active).is_ok(),
                        model.set_active(a, active)
                    );
                }
            }
            Op::Pick {
                client,
                vip,
                sport,
                proto,
                inverse,
                r,
            } => {
                let pkt = PacketInfo {
                    protocol: Protocol::from_number(proto),
                    src: host(v6, 198, client),
                    dst: host(v6, 203, vip),
                    src_port: sport,
                    dst_port: 80,
                    inverse,
                };
                let now = base + Duration::from_secs(t);
                let values = [r.0, r.1];
                let mut rng = Scripted::new(&values);
                let ours = svc.pick(now, &pkt, &mut rng).map(|id| addr_of(&svc, id));
                let mut k = 0;
                // As `Scripted`: the scripted words, then `u32::MAX`.
                let mut rnd = || {
                    k += 1;
                    values.get(k - 1).copied().unwrap_or(u32::MAX)
                };
                let theirs = model.pick(t, &pkt, &mut rnd);
                prop_assert_eq!(ours, theirs, "pick {:?}", op);
            }
            Op::Advance { secs } => {
                t += secs;
                let now = base + Duration::from_secs(t);
                if svc.poll_timeout().is_some_and(|at| at <= now) {
                    svc.handle_timeout(now);
                }
                model.timer(t);
                prop_assert_eq!(
                    svc.poll_timeout().map(|at| (at - base).as_secs()),
                    model.next_timer()
                );
            }
        }
        check_list(&svc, &model)?;
    }
    Ok(())
}

fn flags_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(0x8), Just(0x10), Just(0x18)]
}

macro_rules! model_test {
    ($name:ident, $kind:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn $name(v6 in any::<bool>(), flags in flags_strategy(),
                     mh in prop_oneof![Just(251u32), Just(509)], sh_bits in 4u8..7,
                     ops in proptest::collection::vec(op_strategy(), 1..120)) {
                run($kind, v6, flags, mh, sh_bits, &ops)?;
            }
        }
    };
}

model_test!(model_rr, SchedulerKind::Rr);
model_test!(model_wrr, SchedulerKind::Wrr);
model_test!(model_lc, SchedulerKind::Lc);
model_test!(model_wlc, SchedulerKind::Wlc);
model_test!(model_sed, SchedulerKind::Sed);
model_test!(model_nq, SchedulerKind::Nq);
model_test!(model_fo, SchedulerKind::Fo);
model_test!(model_ovf, SchedulerKind::Ovf);
model_test!(model_lblc, SchedulerKind::Lblc);
model_test!(model_lblcr, SchedulerKind::Lblcr);
model_test!(model_dh, SchedulerKind::Dh);
model_test!(model_sh, SchedulerKind::Sh);
model_test!(model_mh, SchedulerKind::Mh);
model_test!(model_twos, SchedulerKind::Twos);

fn scale(ops: Vec<Op>, k: u32) -> Vec<Op> {
    ops.into_iter()
        .map(|op| match op {
            Op::Add { d, weight, u, l } => Op::Add {
                d,
                weight: weight * k + weight % 2,
                u,
                l,
            },
            Op::Edit { d, weight, u, l } => Op::Edit {
                d,
                weight: weight * k,
                u,
                l,
            },
            op => op,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    /// Large weights with common factors: exercises wrr's gcd, the clamping
    /// of `cw` on change and the skipping of passes that cannot hit.
    #[test]
    fn model_wrr_heavy(k in 1u32..400, ops in proptest::collection::vec(op_strategy(), 1..80)) {
        run(SchedulerKind::Wrr, false, 0, 251, 8, &scale(ops, k))?;
    }

    /// mh with larger weights (turns are shifted down to TAB_BITS bits).
    #[test]
    fn model_mh_heavy(k in 1u32..5000, flags in flags_strategy(), ops in proptest::collection::vec(op_strategy(), 1..40)) {
        run(SchedulerKind::Mh, false, flags, 251, 8, &scale(ops, k))?;
    }
}

fn overload_churn() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..4, 1u32..7, 1u32..3).prop_map(|(d, weight, u)| Op::Add { d, weight, u, l: 0 }),
        1 => (0usize..4, 0u32..7, 1u32..3).prop_map(|(d, weight, u)| Op::Edit { d, weight, u, l: 0 }),
        4 => (0usize..4).prop_map(|d| Op::Bind { d, kind: ConnKind::Inactive }),
        4 => (0usize..4).prop_map(|d| Op::Unbind { d, kind: ConnKind::Inactive }),
        6 => Just(Op::Pick { client: 0, vip: 0, sport: 1, proto: 6, inverse: false, r: (0, 0) }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    /// wrr when every destination keeps going OVERLOADed and coming back:
    /// the state left by a failed pick (cursor, cw) decides the next picks.
    #[test]
    fn model_wrr_overload(k in 1u32..300, ops in proptest::collection::vec(overload_churn(), 1..150)) {
        run(SchedulerKind::Wrr, false, 0, 251, 8, &scale(ops, k))?;
    }
}

fn extreme_op() -> impl Strategy<Value = Op> {
    let big = prop_oneof![
        Just(0u32),
        Just(1),
        Just(i32::MAX as u32),
        Just(u32::MAX),
        any::<u32>()
    ];
    prop_oneof![
        2 => (0usize..7, big.clone(), big.clone(), big.clone()).prop_map(|(d, weight, u, l)| Op::Add { d, weight, u, l }),
        1 => (0usize..7).prop_map(|d| Op::Remove { d }),
        2 => (0usize..7, big.clone(), big.clone(), big).prop_map(|(d, weight, u, l)| Op::Edit { d, weight, u, l }),
        3 => (0usize..7, kind_strategy()).prop_map(|(d, kind)| Op::Bind { d, kind }),
        2 => (0usize..7, kind_strategy()).prop_map(|(d, kind)| Op::Unbind { d, kind }),
        1 => (0usize..7, any::<bool>()).prop_map(|(d, active)| Op::SetActive { d, active }),
        4 => (0usize..5, 0usize..3, any::<u16>(), any::<u8>(), any::<bool>(), any::<(u32, u32)>())
            .prop_map(|(client, vip, sport, proto, inverse, r)| Op::Pick { client, vip, sport, proto, inverse, r }),
        1 => any::<u64>().prop_map(|secs| Op::Advance { secs: secs % (1 << 40) }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Extreme weights, thresholds, protocols and times: no panic (debug
    /// builds check overflow), errors instead, and picks only ever name a
    /// live destination.
    #[test]
    fn extreme_inputs_never_panic(kind in proptest::sample::select(SchedulerKind::ALL.to_vec()),
                                  flags in flags_strategy(), exp in prop_oneof![Just(Duration::MAX), Just(Duration::ZERO)],
                                  ops in proptest::collection::vec(extreme_op(), 1..100)) {
        let base = Instant::now();
        let key = ServiceKey::Fwmark { mark: 7, family: lb_sched::AddressFamily::Inet6 };
        let mut cfg = SchedulerConfig::new(kind);
        cfg.lblc_expiration = exp;
        cfg.lblcr_expiration = exp;
        cfg.mh_table_size = 251;
        let mut svc = Service::new(key, ServiceFlags::from_bits(flags), cfg, base).unwrap();
        let mut t = 0u64;
        for op in ops {
            let now = base + Duration::from_secs(t);
            match op {
                Op::Add { d, weight, u, l } => { let _ = svc.add_dest(DestConfig::new(dest_addr(true, d), weight).thresholds(u, l)); }
                Op::Remove { d } => if let Some(id) = svc.find_dest(dest_addr(true, d)) { svc.remove_dest(id).unwrap(); },
                Op::Edit { d, weight, u, l } => { let _ = svc.edit_dest(DestConfig::new(dest_addr(true, d), weight).thresholds(u, l)); }
                Op::Bind { d, kind } => if let Some(id) = id_of(&svc, dest_addr(true, d)) { svc.conn_bind(id, kind).unwrap(); },
                Op::Unbind { d, kind } => if let Some(id) = id_of(&svc, dest_addr(true, d)) { let _ = svc.conn_unbind(id, kind); },
                Op::SetActive { d, active } => if let Some(id) = id_of(&svc, dest_addr(true, d)) { let _ = svc.conn_set_active(id, active); },
                Op::Pick { client, vip, sport, proto, inverse, r } => {
                    let pkt = PacketInfo { protocol: Protocol::from_number(proto), src: host(true, 1, client),
                                           dst: host(false, 2, vip), src_port: sport, dst_port: sport ^ 1, inverse };
                    let values = [r.0, r.1];
                    if let Some(id) = svc.pick(now, &pkt, &mut Scripted::new(&values)) {
                        prop_assert!(svc.dest(id).is_some());
                    }
                }
                Op::Advance { secs } => {
                    t = t.saturating_add(secs);
                    let now = base + Duration::from_secs(t);
                    if svc.poll_timeout().is_some_and(|at| at <= now) { svc.handle_timeout(now); }
                }
            }
        }
    }
}
