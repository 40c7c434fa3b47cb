//! `rr`, `wrr` (which find the next eligible destination through a max
//! segment tree) and `twos` (which finds its weighted draws through a sum
//! tree) against the reference model's literal list walks, with up to a few
//! hundred destinations and OVERLOAD / weight churn.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use common::reference::Model;
use lb_sched::{
    ConnKind, DestConfig, PacketInfo, Protocol, SchedulerKind, Scripted, Service, ServiceFlags,
    ServiceKey,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Pick(u32, u32),
    Bind(usize),
    Unbind(usize),
    Weight(usize, u32),
    Remove(usize),
    Add(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => any::<(u32, u32)>().prop_map(|(a, b)| Step::Pick(a, b)),
        3 => any::<usize>().prop_map(Step::Bind),
        3 => any::<usize>().prop_map(Step::Unbind),
        1 => (any::<usize>(), prop_oneof![0u32..3, 0u32..40]).prop_map(|(i, w)| Step::Weight(i, w)),
        1 => any::<usize>().prop_map(Step::Remove),
        1 => (0u32..40).prop_map(Step::Add),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn rr_wrr_twos_match_the_list_walk(kind in prop_oneof![Just(SchedulerKind::Rr), Just(SchedulerKind::Wrr), Just(SchedulerKind::Twos)],
                                 weights in proptest::collection::vec(prop_oneof![0u32..3, 0u32..40], 1..250),
                                 steps in proptest::collection::vec(step(), 0..300)) {
        let now = Instant::now();
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
        let mut svc = Service::new(key, ServiceFlags::NONE, kind, now).unwrap();
        let mut model = Model::new(kind, false, false, false, 251, 8);
        let mut next = 0u32;
        let mut add = |svc: &mut Service, model: &mut Model, w: u32| {
            next += 1;
            let a = SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + next).into(), 80);
            // Threshold 2: two connections OVERLOAD, one close clears.
            svc.add_dest(DestConfig::new(a, w).thresholds(2, 0)).unwrap();
            assert!(model.add(a, i64::from(w), 2, 0));
        };
        for &w in &weights {
            add(&mut svc, &mut model, w);
        }
        let pkt = PacketInfo::default();
        for s in steps {
            let listed: Vec<SocketAddr> = svc.dests().map(|(_, d)| d.addr()).collect();
            let at = |i: usize| listed.get(i % listed.len().max(1)).copied();
            match s {
                Step::Pick(r1, r2) => {
                    let r = [r1, r2];
                    let ours = svc.pick(now, &pkt, &mut Scripted::new(&r)).map(|id| svc.dest(id).unwrap().addr());
                    let mut k = 0;
                    let theirs = model.pick(0, &pkt, &mut || { k += 1; r.get(k - 1).copied().unwrap_or(u32::MAX) });
                    prop_assert_eq!(ours, theirs);
                    if kind == SchedulerKind::Twos {
                        // The benchmark's O(n) baseline agrees too.
                        let ds: Vec<&lb_sched::Dest> = svc.dests().map(|(_, d)| d).collect();
                        let scan = lb_sched::ipvs::scan::twos(ds.iter().copied(), &mut Scripted::new(&r));
                        prop_assert_eq!(scan.map(|i| listed[i]), ours);
                    }
                }
                Step::Bind(i) => if let Some(a) = at(i) {
                    svc.conn_bind(svc.find_dest(a).unwrap(), ConnKind::Inactive).unwrap();
                    model.bind(a, ConnKind::Inactive);
                },
                Step::Unbind(i) => if let Some(a) = at(i) {
                    let ok = svc.conn_unbind(svc.find_dest(a).unwrap(), ConnKind::Inactive).is_ok();
                    prop_assert_eq!(ok, model.unbind(a, ConnKind::Inactive));
                },
                Step::Weight(i, w) => if let Some(a) = at(i) {
                    svc.set_weight(svc.find_dest(a).unwrap(), w).unwrap();
                    model.edit(a, i64::from(w), 2, 0);
                },
                Step::Remove(i) => if let Some(a) = at(i) {
                    svc.remove_dest(svc.find_dest(a).unwrap()).unwrap();
                    model.del(a);
                },
                Step::Add(w) => add(&mut svc, &mut model, w),
            }
        }
    }
}
