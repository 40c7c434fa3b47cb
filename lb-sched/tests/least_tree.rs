//! The O(1) tournament tree of `lc wlc sed nq fo ovf` against the kernel's
//! O(n) loops (`ipvs::scan`), at sizes where ties and long runs of
//! ineligible destinations are common, under random counter, weight and
//! threshold churn.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use lb_sched::ipvs::scan;
use lb_sched::{
    ConnKind, Dest, DestConfig, DestId, PacketInfo, Protocol, SchedulerKind, Service, ServiceFlags,
    ServiceKey, SplitMix64,
};
use proptest::prelude::*;

fn scan_of(kind: SchedulerKind, dests: Vec<&Dest>) -> Option<usize> {
    match kind {
        SchedulerKind::Lc => scan::lc(dests),
        SchedulerKind::Wlc => scan::wlc(dests),
        SchedulerKind::Sed => scan::sed(dests),
        SchedulerKind::Nq => scan::nq(dests),
        SchedulerKind::Fo => scan::fo(dests),
        SchedulerKind::Ovf => scan::ovf(dests),
        _ => unreachable!("not a least-load scheduler"),
    }
}

#[derive(Debug, Clone)]
enum Churn {
    Bind(usize, u8),
    Unbind(usize, u8),
    Weight(usize, u32),
    Threshold(usize, u32),
    Remove(usize),
    Add(u32),
}

fn churn() -> impl Strategy<Value = Churn> {
    prop_oneof![
        6 => (any::<usize>(), 0u8..3).prop_map(|(i, k)| Churn::Bind(i, k)),
        4 => (any::<usize>(), 0u8..3).prop_map(|(i, k)| Churn::Unbind(i, k)),
        2 => (any::<usize>(), prop_oneof![0u32..4, 0u32..100_000]).prop_map(|(i, w)| Churn::Weight(i, w)),
        1 => (any::<usize>(), 0u32..6).prop_map(|(i, u)| Churn::Threshold(i, u)),
        1 => any::<usize>().prop_map(Churn::Remove),
        1 => (0u32..5).prop_map(Churn::Add),
    ]
}

fn kind() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        Just(SchedulerKind::Lc),
        Just(SchedulerKind::Wlc),
        Just(SchedulerKind::Sed),
        Just(SchedulerKind::Nq),
        Just(SchedulerKind::Fo),
        Just(SchedulerKind::Ovf),
    ]
}

fn conn(k: u8) -> ConnKind {
    [ConnKind::Active, ConnKind::Inactive, ConnKind::Template][usize::from(k)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn tree_equals_scan(kind in kind(), weights in proptest::collection::vec(0u32..5, 1..300),
                        ops in proptest::collection::vec(churn(), 0..400)) {
        let now = Instant::now();
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
        let mut svc = Service::new(key, ServiceFlags::NONE, kind, now).unwrap();
        let mut next = 0u32;
        let mut add = |svc: &mut Service, w: u32| {
            next += 1;
            let a = SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + next).into(), 80);
            svc.add_dest(DestConfig::new(a, w)).unwrap();
        };
        for &w in &weights {
            add(&mut svc, w);
        }
        let mut rng = SplitMix64::new(0);
        let pkt = PacketInfo::default();
        for op in ops {
            let ids: Vec<DestId> = svc.dests().map(|(id, _)| id).collect();
            let pick_id = |i: usize| ids.get(i % ids.len().max(1)).copied();
            match op {
                Churn::Bind(i, k) => if let Some(id) = pick_id(i) { svc.conn_bind(id, conn(k)).unwrap() },
                Churn::Unbind(i, k) => if let Some(id) = pick_id(i) { let _ = svc.conn_unbind(id, conn(k)); },
                Churn::Weight(i, w) => if let Some(id) = pick_id(i) { svc.set_weight(id, w).unwrap() },
                Churn::Threshold(i, u) => if let Some(id) = pick_id(i) { svc.set_thresholds(id, u, 0).unwrap() },
                Churn::Remove(i) => if let Some(id) = pick_id(i) { svc.remove_dest(id).unwrap() },
                Churn::Add(w) => add(&mut svc, w),
            }
            let want = scan_of(kind, svc.dests().map(|(_, d)| d).collect());
            let want = want.map(|i| svc.dests().nth(i).unwrap().0);
            prop_assert_eq!(svc.pick(now, &pkt, &mut rng), want);
        }
    }
}
