//! Drives a `lb_sched::Service` with arbitrary operations (add, edit,
//! remove, connection hooks, picks, time) for every kernel scheduler:
//! no input may panic, and a pick only ever names a live destination.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use lb_sched::{
    AddressFamily, ConnKind, DestConfig, PacketInfo, Protocol, SchedulerConfig, SchedulerKind,
    Scripted, Service, ServiceFlags, ServiceKey,
};

fn u32_at(d: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i + k).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&head, ops)) = data.split_first() else { return };
    let kind = SchedulerKind::ALL[usize::from(head) % SchedulerKind::ALL.len()];
    let v6 = head & 0x80 != 0;
    let mut cfg = SchedulerConfig::new(kind);
    cfg.mh_table_size = 251;
    cfg.sh_table_bits = 4 + (head >> 4) % 4;
    cfg.lblc_expiration = Duration::from_secs(u64::from(head) * 7);
    cfg.lblcr_expiration = cfg.lblc_expiration;
    let family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    let base = Instant::now();
    let flags = ServiceFlags::from_bits(u32::from(head & 0x18));
    let Ok(mut svc) = Service::new(ServiceKey::Fwmark { mark: 1, family }, flags, cfg, base) else {
        return;
    };
    let addr = |b: u8| -> SocketAddr {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(b % 16)))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, b % 16))
        };
        SocketAddr::new(ip, 80 + u16::from(b >> 7))
    };
    let mut t = 0u64;
    for op in ops.chunks(8) {
        let code = op[0];
        let arg = op.get(1).copied().unwrap_or(0);
        let x = u32_at(op, 2);
        let y = u32_at(op, 4);
        let a = addr(arg);
        let id = svc.dests().chain(svc.trashed()).find(|(_, d)| d.addr() == a).map(|(id, _)| id);
        let kind = [ConnKind::Active, ConnKind::Inactive, ConnKind::Template][usize::from(arg % 3)];
        match code % 8 {
            0 => {
                let _ = svc.add_dest(DestConfig::new(a, x >> (code >> 3)).thresholds(y % 8, y >> 29));
            }
            1 => {
                let _ = svc.edit_dest(DestConfig::new(a, x >> (code >> 3)).thresholds(y % 8, y >> 29));
            }
            2 => {
                if let Some(id) = svc.find_dest(a) {
                    let _ = svc.remove_dest(id);
                }
            }
            3 => {
                if let Some(id) = id {
                    let _ = svc.conn_bind(id, kind);
                }
            }
            4 => {
                if let Some(id) = id {
                    let _ = svc.conn_unbind(id, kind);
                }
            }
            5 => {
                if let Some(id) = id {
                    let _ = svc.conn_set_active(id, arg & 1 == 1);
                }
            }
            6 => {
                t = t.saturating_add(u64::from(x % 4000));
                let now = base + Duration::from_secs(t);
                if svc.poll_timeout().is_some_and(|at| at <= now) {
                    svc.handle_timeout(now);
                }
            }
            _ => {
                let pkt = PacketInfo {
                    protocol: Protocol::from_number(arg),
                    src: IpAddr::V4(Ipv4Addr::from(x)),
                    dst: IpAddr::V6(Ipv6Addr::from(u128::from(y))),
                    src_port: x as u16,
                    dst_port: y as u16,
                    inverse: code & 0x80 != 0,
                };
                let now = base + Duration::from_secs(t);
                let r = [x, y];
                if let Some(id) = svc.pick(now, &pkt, &mut Scripted::new(&r)) {
                    assert!(svc.dest(id).is_some());
                }
            }
        }
    }
});
