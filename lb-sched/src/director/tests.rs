//! Golden scenarios for the new-connection path, each step derived from
//! ip_vs_core.c / ip_vs_conn.c in a comment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::{Protocol, SplitMix64};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tcp(vip: &str) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: sa(vip),
    }
}

fn pkt(proto: Protocol, src: &str, dst: &str) -> PacketInfo {
    PacketInfo::new(proto, sa(src), sa(dst))
}

struct T {
    d: Director,
    now: Instant,
    rng: SplitMix64,
}

impl T {
    fn new() -> Self {
        Self::with(DirectorConfig::default())
    }
    fn with(cfg: DirectorConfig) -> Self {
        let now = Instant::now();
        Self {
            d: Director::new(cfg, now),
            now,
            rng: SplitMix64::new(7),
        }
    }
    fn svc(&mut self, cfg: ServiceConfig, dests: &[(&str, u32)]) {
        self.d.add_service(cfg, self.now).unwrap();
        for &(a, w) in dests {
            self.d
                .add_dest(&cfg.key, DestConfig::new(sa(a), w))
                .unwrap();
        }
    }
    fn go(&mut self, p: PacketInfo, mark: u32) -> Outcome {
        self.d.schedule(self.now, &p, mark, &mut self.rng).unwrap()
    }
    fn conn(&mut self, p: PacketInfo, mark: u32) -> Conn {
        match self.go(p, mark) {
            Outcome::Conn(c) => c,
            Outcome::Refused(r) => panic!("refused: {r:?}"),
        }
    }
    fn to(&mut self, src: &str, dst: &str) -> SocketAddr {
        self.conn(pkt(Protocol::Tcp, src, dst), 0).daddr()
    }
    fn counters(&self, key: &ServiceKey, dest: &str) -> (u32, u32, u32) {
        let id = self.d.find_service(key).unwrap();
        let svc = self.d.service(id).unwrap();
        let d = svc.dest(svc.find_dest(sa(dest)).unwrap()).unwrap();
        (d.active_conns(), d.inactive_conns(), d.persistent_conns())
    }
}

#[test]
fn non_persistent_rr_binds_inactive_and_forwards_to_dest_port() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:80");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Rr),
        &[("10.0.0.1:8080", 1), ("10.0.0.2:0", 1)],
    );
    // List order: 10.0.0.2 (added last) first; rr starts at the head.
    // dest->port is 0, so the conn keeps the packet's port (pptr[1]).
    assert_eq!(t.to("198.51.100.1:1000", "192.0.2.1:80"), sa("10.0.0.2:80"));
    assert_eq!(
        t.to("198.51.100.1:1001", "192.0.2.1:80"),
        sa("10.0.0.1:8080")
    );
    // ip_vs_bind_dest: conn_flags carry IP_VS_CONN_F_INACTIVE.
    assert_eq!(t.counters(&key, "10.0.0.1:8080"), (0, 1, 0));
    assert_eq!(t.counters(&key, "10.0.0.2:0"), (0, 1, 0));
}

#[test]
fn refusals_follow_ip_vs_schedule() {
    let mut t = T::new();
    let ftp = tcp("192.0.2.1:21");
    let zero = tcp("192.0.2.2:0");
    t.svc(
        ServiceConfig::new(ftp, SchedulerKind::Rr),
        &[("10.0.0.1:21", 1)],
    );
    // A port-zero service must be persistent in ipvsadm, but the kernel
    // accepts a non-persistent one and refuses every packet (pr_err).
    t.svc(
        ServiceConfig::new(zero, SchedulerKind::Rr),
        &[("10.0.0.1:0", 1)],
    );
    let id_ftp = t.d.find_service(&ftp).unwrap();
    let id_zero = t.d.find_service(&zero).unwrap();
    // No service at all.
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.9:80"), 0),
        Outcome::Refused(Refusal::NoService)
    );
    // cport == FTPDATA: never scheduled, before anything else.
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:20", "192.0.2.1:21"), 0),
        Outcome::Refused(Refusal::FtpData(id_ftp))
    );
    // Passive FTP data (port >= 1024) finds the FTP service, but a
    // non-persistent service only schedules its own port.
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:5000"), 0),
        Outcome::Refused(Refusal::PortMismatch(id_ftp))
    );
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.2:443"), 0),
        Outcome::Refused(Refusal::PortMismatch(id_zero))
    );
    // Not TCP/UDP/SCTP.
    let mut p = pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:21");
    p.protocol = Protocol::Other(1);
    assert_eq!(t.go(p, 0), Outcome::Refused(Refusal::NoService));
    // Nothing was bound.
    assert_eq!(t.counters(&ftp, "10.0.0.1:21"), (0, 0, 0));
}

#[test]
fn no_dest_when_all_quiesced() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:80");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Wlc),
        &[("10.0.0.1:80", 0)],
    );
    let id = t.d.find_service(&key).unwrap();
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:80"), 0),
        Outcome::Refused(Refusal::NoDest(id))
    );
}

#[test]
fn persistence_sticks_past_the_scheduler_overload_and_quiescing() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:443");
    let mut dc = DestConfig::new(sa("10.0.0.1:443"), 1);
    dc.u_threshold = 2;
    t.d.add_service(
        ServiceConfig::new(key, SchedulerKind::Rr).persistent(Duration::from_secs(60)),
        t.now,
    )
    .unwrap();
    t.d.add_dest(&key, dc).unwrap();
    t.d.add_dest(&key, DestConfig::new(sa("10.0.0.2:443"), 1))
        .unwrap();
    // rr picks the head (10.0.0.2) for client A: template + conn.
    assert_eq!(
        t.to("198.51.100.1:1000", "192.0.2.1:443"),
        sa("10.0.0.2:443")
    );
    assert_eq!(t.counters(&key, "10.0.0.2:443"), (0, 1, 1));
    // Client B: no template, rr moves on to 10.0.0.1.
    assert_eq!(
        t.to("198.51.100.2:1000", "192.0.2.1:443"),
        sa("10.0.0.1:443")
    );
    // Client A again: the template wins; rr is not consulted (its cursor
    // stays on 10.0.0.1).
    assert_eq!(
        t.to("198.51.100.1:1001", "192.0.2.1:443"),
        sa("10.0.0.2:443")
    );
    assert_eq!(t.d.templates(), 2);
    // Client B's second conn makes 10.0.0.1 reach u_threshold 2: OVERLOAD.
    assert_eq!(
        t.to("198.51.100.2:1001", "192.0.2.1:443"),
        sa("10.0.0.1:443")
    );
    let id = t.d.find_service(&key).unwrap();
    let svc = t.d.service(id).unwrap();
    assert!(
        svc.dest(svc.find_dest(sa("10.0.0.1:443")).unwrap())
            .unwrap()
            .is_overloaded()
    );
    // ip_vs_check_template only looks at AVAILABLE (and quiescing when the
    // sysctl is set): B still goes to the overloaded dest.
    assert_eq!(
        t.to("198.51.100.2:1002", "192.0.2.1:443"),
        sa("10.0.0.1:443")
    );
    // Quiesce 10.0.0.2: A keeps it (expire_quiescent_template is off).
    t.d.edit_dest(&key, DestConfig::new(sa("10.0.0.2:443"), 0))
        .unwrap();
    assert_eq!(
        t.to("198.51.100.1:1002", "192.0.2.1:443"),
        sa("10.0.0.2:443")
    );
    // A new client C: 10.0.0.2 is quiesced and 10.0.0.1 overloaded.
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.3:1000", "192.0.2.1:443"), 0),
        Outcome::Refused(Refusal::NoDest(id))
    );
    assert_eq!(t.counters(&key, "10.0.0.1:443"), (0, 3, 1));
    assert_eq!(t.counters(&key, "10.0.0.2:443"), (0, 3, 1));
}

#[test]
fn expire_quiescent_template_reschedules() {
    let cfg = DirectorConfig {
        expire_quiescent_template: true,
        ..DirectorConfig::default()
    };
    let mut t = T::with(cfg);
    let key = tcp("192.0.2.1:443");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Wlc).persistent(Duration::from_secs(60)),
        &[("10.0.0.1:443", 1), ("10.0.0.2:443", 1)],
    );
    assert_eq!(
        t.to("198.51.100.1:1000", "192.0.2.1:443"),
        sa("10.0.0.2:443")
    );
    t.d.edit_dest(&key, DestConfig::new(sa("10.0.0.2:443"), 0))
        .unwrap();
    // The template is invalidated (still counted until it expires) and
    // wlc picks the only weighted dest.
    assert_eq!(
        t.to("198.51.100.1:1001", "192.0.2.1:443"),
        sa("10.0.0.1:443")
    );
    assert_eq!(t.d.templates(), 2);
    assert_eq!(t.counters(&key, "10.0.0.2:443"), (0, 1, 1));
    assert_eq!(t.counters(&key, "10.0.0.1:443"), (0, 1, 1));
}

#[test]
fn netmask_groups_clients_and_removal_reschedules() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:80");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Rr)
            .persistent(Duration::from_secs(60))
            .netmask(Netmask::V4(0xffff_ff00)),
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    assert_eq!(t.to("198.51.100.1:1000", "192.0.2.1:80"), sa("10.0.0.2:80"));
    // Same /24: same template.
    assert_eq!(
        t.to("198.51.100.200:1000", "192.0.2.1:80"),
        sa("10.0.0.2:80")
    );
    // Another /24: rr moves on.
    assert_eq!(t.to("198.51.101.1:1000", "192.0.2.1:80"), sa("10.0.0.1:80"));
    t.d.remove_dest(&key, sa("10.0.0.2:80")).unwrap();
    // Not AVAILABLE: invalidated, rr picks again (only 10.0.0.1 is left).
    assert_eq!(t.to("198.51.100.7:1000", "192.0.2.1:80"), sa("10.0.0.1:80"));
}

#[test]
fn fwmark_persistence_spans_ports_and_keeps_the_packet_port() {
    let mut t = T::new();
    let key = ServiceKey::Fwmark {
        mark: 5,
        family: AddressFamily::Inet,
    };
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Rr).persistent(Duration::from_secs(60)),
        &[("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1)],
    );
    let a = t.conn(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:80"), 5);
    // svc->port is 0 and dst_port 80 differs: dport = dst_port.
    assert_eq!(a.daddr(), sa("10.0.0.2:80"));
    // <IPPROTO_IP, caddr, fwmark, 0>: UDP to another port, same template.
    let b = t.conn(pkt(Protocol::Udp, "198.51.100.1:1000", "192.0.2.7:53"), 5);
    assert_eq!(b.daddr(), sa("10.0.0.2:53"));
    assert_eq!(b.template(), a.template());
    // Without the mark the packet is not for IPVS.
    assert_eq!(
        t.go(pkt(Protocol::Tcp, "198.51.100.1:1001", "192.0.2.1:80"), 0),
        Outcome::Refused(Refusal::NoService)
    );
    // Non-persistent fwmark services do use the dest port.
    let k2 = ServiceKey::Fwmark {
        mark: 6,
        family: AddressFamily::Inet,
    };
    t.svc(
        ServiceConfig::new(k2, SchedulerKind::Rr),
        &[("10.0.0.3:8080", 1)],
    );
    let c = t.conn(pkt(Protocol::Tcp, "198.51.100.1:1002", "192.0.2.1:80"), 6);
    assert_eq!(c.daddr(), sa("10.0.0.3:8080"));
}

#[test]
fn ftp_and_port_zero_services_share_templates() {
    let mut t = T::new();
    let ftp = tcp("192.0.2.1:21");
    let zero = tcp("192.0.2.1:0");
    t.svc(
        ServiceConfig::new(ftp, SchedulerKind::Rr).persistent(Duration::from_secs(60)),
        &[("10.0.0.1:21", 1)],
    );
    t.svc(
        ServiceConfig::new(zero, SchedulerKind::Rr).persistent(Duration::from_secs(60)),
        &[("10.0.0.9:0", 1)],
    );
    // FTP control: template <TCP, caddr, vaddr, 0> -> 10.0.0.1.
    let a = t.conn(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:21"), 0);
    assert_eq!(a.daddr(), sa("10.0.0.1:21"));
    // Port 443 (privileged) reaches the port-zero service, whose template
    // key is the same <TCP, caddr, vaddr, 0>: the FTP template's dest wins,
    // and the connection belongs to the FTP service's dest.
    let b = t.conn(pkt(Protocol::Tcp, "198.51.100.1:1001", "192.0.2.1:443"), 0);
    assert_eq!(b.daddr(), sa("10.0.0.1:443"));
    assert_eq!(b.service(), t.d.find_service(&ftp).unwrap());
    // Passive FTP data to an unprivileged port reaches the FTP service.
    let c = t.conn(
        pkt(Protocol::Tcp, "198.51.100.1:1002", "192.0.2.1:40000"),
        0,
    );
    assert_eq!(c.daddr(), sa("10.0.0.1:40000"));
    assert_eq!(t.counters(&ftp, "10.0.0.1:21"), (0, 3, 1));
    // Another client reaching the port-zero service gets its own dest.
    let d = t.conn(pkt(Protocol::Tcp, "198.51.100.2:1000", "192.0.2.1:443"), 0);
    assert_eq!(d.daddr(), sa("10.0.0.9:443"));
}

#[test]
fn active_close_and_reap() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:80");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Lc).persistent(Duration::from_secs(60)),
        &[("10.0.0.1:80", 1)],
    );
    let mut c = t.conn(pkt(Protocol::Tcp, "198.51.100.1:1000", "192.0.2.1:80"), 0);
    t.d.set_active(&mut c, true).unwrap();
    t.d.set_active(&mut c, true).unwrap();
    assert_eq!(c.kind(), ConnKind::Active);
    assert_eq!(t.counters(&key, "10.0.0.1:80"), (1, 0, 1));
    let id = t.d.find_service(&key).unwrap();
    t.d.remove_service(&key, t.now).unwrap();
    assert_eq!(t.d.find_service(&key), None);
    // Still held by the connection and the template.
    let dests: Vec<_> = t.d.service(id).unwrap().trashed().collect();
    assert_eq!(dests.len(), 1);
    t.d.close(t.now, c).unwrap();
    // Closing twice is an error, not a panic.
    assert!(t.d.close(t.now, c).is_err());
    // The template still counts until it expires 60 s after its last use.
    t.d.handle_timeout(t.now + Duration::from_secs(59));
    assert!(t.d.service(id).is_some());
    t.d.handle_timeout(t.now + Duration::from_secs(60));
    assert_eq!(t.d.templates(), 0);
    assert!(t.d.service(id).is_none());
    // The slot is reused with a new generation; the old conn is stale.
    t.d.add_service(ServiceConfig::new(key, SchedulerKind::Lc), t.now)
        .unwrap();
    assert_ne!(t.d.find_service(&key), Some(id));
    assert_eq!(t.d.close(t.now, c), Err(DirectorError::StaleConn));
}

#[test]
fn one_packet_udp() {
    let mut t = T::new();
    let key = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: sa("192.0.2.1:53"),
    };
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Rr).flags(ServiceFlags::ONEPACKET),
        &[("10.0.0.1:53", 1)],
    );
    let c = t.conn(pkt(Protocol::Udp, "198.51.100.1:1000", "192.0.2.1:53"), 0);
    assert!(c.is_one_packet());
    t.d.close(t.now, c).unwrap();
    assert_eq!(t.counters(&key, "10.0.0.1:53"), (0, 0, 0));
}

#[test]
fn config_errors() {
    let mut t = T::new();
    let key = tcp("192.0.2.1:80");
    t.svc(ServiceConfig::new(key, SchedulerKind::Rr), &[]);
    assert_eq!(
        t.d.add_service(ServiceConfig::new(key, SchedulerKind::Rr), t.now),
        Err(DirectorError::ServiceExists(key))
    );
    let fw0 = ServiceKey::Fwmark {
        mark: 0,
        family: AddressFamily::Inet,
    };
    assert_eq!(
        t.d.add_service(ServiceConfig::new(fw0, SchedulerKind::Rr), t.now),
        Err(DirectorError::ZeroMark)
    );
    let v6 = tcp("[2001:db8::1]:80");
    assert_eq!(
        t.d.add_service(
            ServiceConfig::new(v6, SchedulerKind::Rr).netmask(Netmask::V4(0)),
            t.now
        ),
        Err(DirectorError::Netmask(Netmask::V4(0)))
    );
    assert_eq!(
        t.d.add_service(
            ServiceConfig::new(v6, SchedulerKind::Rr).persistent(Duration::ZERO),
            t.now
        ),
        Err(DirectorError::Timeout)
    );
    let other = tcp("192.0.2.9:80");
    assert_eq!(
        t.d.add_dest(&other, DestConfig::new(sa("10.0.0.1:80"), 1)),
        Err(DirectorError::NoSuchService(other))
    );
    assert_eq!(
        t.d.remove_dest(&key, sa("10.0.0.1:80")),
        Err(DirectorError::Sched(Error::NoSuchAddr(sa("10.0.0.1:80"))))
    );
    // Editing to another scheduler and back works; lookup sees the table.
    t.d.edit_service(ServiceConfig::new(key, SchedulerKind::Wrr), t.now)
        .unwrap();
    assert_eq!(
        t.d.service_config(t.d.find_service(&key).unwrap())
            .unwrap()
            .scheduler
            .kind,
        SchedulerKind::Wrr
    );
    assert_eq!(
        t.d.lookup(0, 6, "192.0.2.1".parse().unwrap(), 80),
        t.d.find_service(&key)
    );
    t.d.flush(t.now);
    assert_eq!(t.d.services().count(), 0);
}

#[test]
fn ipv6_prefix_persistence() {
    let mut t = T::new();
    let key = tcp("[2001:db8::1]:80");
    t.svc(
        ServiceConfig::new(key, SchedulerKind::Rr)
            .persistent(Duration::from_secs(60))
            .netmask(Netmask::V6(64)),
        &[("[2001:db8:1::1]:80", 1), ("[2001:db8:1::2]:80", 1)],
    );
    let a = t.to("[2001:db8:5:5::1]:1000", "[2001:db8::1]:80");
    assert_eq!(t.to("[2001:db8:5:5::ffff]:1000", "[2001:db8::1]:80"), a);
    assert_ne!(t.to("[2001:db8:5:6::1]:1000", "[2001:db8::1]:80"), a);
}
