//! The `lblc`/`lblcr` garbage collector past `max_size` (16 × 1024 entries):
//! the partial collection removes entries idle for 6 minutes bucket by
//! bucket from the rover, up to a goal of 4/3 of the excess. Checked against
//! the reference model by probing every cached address afterwards: an entry
//! that survived answers from the cache, a collected one is scheduled afresh.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::reference::Model;
use lb_sched::{
    ConnKind, DestConfig, PacketInfo, Protocol, SchedulerKind, Scripted, Service, ServiceFlags,
    ServiceKey,
};

fn daddr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919))
}

fn check(kind: SchedulerKind) {
    let base = Instant::now();
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1:80".parse().unwrap(),
    };
    let mut svc = Service::new(key, ServiceFlags::NONE, kind, base).unwrap();
    let mut model = Model::new(kind, false, false, false, 251, 8);
    let dests: Vec<SocketAddr> = (1..=3)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(172, 16, 0, i)), 80))
        .collect();
    for &a in &dests {
        svc.add_dest(DestConfig::new(a, 1)).unwrap();
        assert!(model.add(a, 1, 0, 0));
    }
    let mut t = 0u64;
    let pick = |svc: &mut Service, model: &mut Model, t: u64, i: u32| {
        let p = PacketInfo {
            dst: daddr(i),
            ..PacketInfo::default()
        };
        let ours = svc
            .pick(base + Duration::from_secs(t), &p, &mut Scripted::new(&[]))
            .map(|id| svc.dest(id).unwrap().addr());
        assert_eq!(
            ours,
            model.pick(t, &p, &mut || 0),
            "{kind} address {i} at {t}s"
        );
        ours
    };
    // 20 000 addresses over 10 minutes (two per 60 ms), each picked once,
    // spreading load so wlc keeps rotating.
    let n = 20_000u32;
    for i in 0..n {
        t = u64::from(i) * 600 / u64::from(n);
        if let Some(a) = pick(&mut svc, &mut model, t, i) {
            let id = svc.find_dest(a).unwrap();
            svc.conn_bind(id, ConnKind::Inactive).unwrap();
            model.bind(a, ConnKind::Inactive);
        }
        let now = base + Duration::from_secs(t);
        if svc.poll_timeout().is_some_and(|at| at <= now) {
            svc.handle_timeout(now);
        }
        model.timer(t);
    }
    // Ticks past the 6-minute entry timeout of the early entries.
    for _ in 0..3 {
        t += 60;
        let now = base + Duration::from_secs(t);
        svc.handle_timeout(now);
        model.timer(t);
        assert_eq!(
            svc.poll_timeout(),
            Some(base + Duration::from_secs(model.next_timer().unwrap()))
        );
    }
    // The partial collections ran: the table is below 20 000 again but kept
    // the recent entries.
    let left = model.entries();
    assert!(
        left < i64::from(n) && left > 1000,
        "{kind}: {left} entries left"
    );
    // Make one destination clearly the least loaded, so a fresh schedule
    // differs from most cached answers, then probe every address.
    let light = svc.find_dest(dests[0]).unwrap();
    while svc.dest(light).unwrap().inactive_conns() > 0 {
        svc.conn_unbind(light, ConnKind::Inactive).unwrap();
        model.unbind(dests[0], ConnKind::Inactive);
    }
    for i in 0..n {
        pick(&mut svc, &mut model, t, i);
    }
}

#[test]
fn lblc_partial_collection_matches_the_kernel() {
    check(SchedulerKind::Lblc);
}

#[test]
fn lblcr_partial_collection_matches_the_kernel() {
    check(SchedulerKind::Lblcr);
}
