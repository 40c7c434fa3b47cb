//! End to end in network namespaces: a client, the director running
//! `lb-forward` on AF_PACKET, and two real servers, for DR, NAT and TUN
//! (IPIP, GUE, GRE) × IPv4 and IPv6 × TCP and UDP.
//!
//! ```text
//!  client ──eth0── director ──eth1── switch ──┬── rs1
//!  10.0.1.2        10.0.1.1   10.0.2.1        └── rs2   10.0.2.2 / .3
//! ```
//!
//! The director's kernel routes (`ip_forward=1`) only the DR/TUN replies
//! (source = a VIP) back to the client: VIPs are blackholed so the kernel
//! drops client→VIP packets silently (the forwarder, tapping the link,
//! handles them), and an nftables rule drops packets from the real servers'
//! own addresses (NAT replies, which the forwarder un-NATs instead).
//!
//! This host has no `ipip`/`ip6_tunnel`/`fou`/`gre` modules, so each real
//! server decapsulates TUN traffic with this crate's own code
//! (`tunnel::decap_inner`): a thread reads eth0 with AF_PACKET and writes
//! the inner packet into a veth pair looped inside the server, whose
//! kernel then receives it as if from a tunnel device.

use lb_forward::addr::Addr;
use lb_forward::afpacket::{PacketSocket, RingConfig, TxBatch};
use lb_forward::classify::ServiceKey;
use lb_forward::driver;
use lb_forward::forwarder::{
    Config, DestConfig, Forwarder, Method, Persistence, Port, ServiceConfig,
};
use lb_forward::lbsched::LbSched;
use lb_forward::tunnel::{GueCsum, TunnelKind, apply_remcsum, decap_inner};
use lb_testing_netns::{Host, Lab, lab_or_skip};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const GUE_PORT: u16 = 6080;

/// (mode name, method, VIPv4, VIPv6, real-server port)
fn modes() -> Vec<(&'static str, Method, &'static str, &'static str, u16)> {
    vec![
        ("dr", Method::Dr, "10.100.0.1", "fd00:100::1", 80),
        ("nat", Method::Nat, "10.100.0.2", "fd00:100::2", 8080),
        (
            "ipip",
            Method::Tunnel(TunnelKind::Ipip),
            "10.100.0.3",
            "fd00:100::3",
            80,
        ),
        (
            "gue",
            Method::Tunnel(TunnelKind::Gue {
                port: GUE_PORT,
                csum: GueCsum::Csum,
            }),
            "10.100.0.4",
            "fd00:100::4",
            80,
        ),
        (
            "gre",
            Method::Tunnel(TunnelKind::Gre { csum: true }),
            "10.100.0.5",
            "fd00:100::5",
            80,
        ),
    ]
}
const PERSIST_VIP: &str = "10.100.0.9";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What a real server received: (server, protocol, local address, payload).
type Log = Arc<Mutex<Vec<(usize, &'static str, SocketAddr, Vec<u8>)>>>;

enum Ctl {
    Weight(usize, u32),
    Remove(usize),
}

struct Topo {
    _lab: Lab,
    client: Host,
    log: Log,
    stop: Arc<AtomicBool>,
    ctl: mpsc::Sender<(String, Ctl, mpsc::Sender<()>)>,
    threads: Vec<JoinHandle<()>>,
    director: Option<JoinHandle<(driver::LoopStats, lb_forward::forwarder::Stats)>>,
}

impl Drop for Topo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(d) = self.director.take() {
            let _ = d.join();
        }
    }
}

impl Topo {
    /// Applies a configuration change in the director and waits until it has.
    fn control(&self, key: &str, c: Ctl) {
        let (tx, rx) = mpsc::channel();
        self.ctl.send((key.to_owned(), c, tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the director applied the change");
    }

    /// Stops the director and returns its loop and forwarder counters.
    fn finish(mut self) -> (driver::LoopStats, lb_forward::forwarder::Stats) {
        self.stop.store(true, Ordering::Relaxed);
        self.director.take().unwrap().join().unwrap()
    }
}

fn setup(lab: Lab, expire_nodest_conn: bool) -> Topo {
    let client = lab.add_host("client").unwrap();
    let dir = lab.add_host("dir").unwrap();
    let sw = lab.add_switch("sw").unwrap();
    let rs: Vec<Host> = (1..=2)
        .map(|i| lab.add_host(&format!("rs{i}")).unwrap())
        .collect();
    lab.link(&client, "eth0", &dir, "eth0").unwrap();
    let mut ports = vec![lab.attach(&sw, &dir, "eth1").unwrap()];
    for h in &rs {
        ports.push(lab.attach(&sw, h, "eth0").unwrap());
        lab.link(h, "dec0", h, "dec1").unwrap();
    }
    for p in &ports {
        sw.host().disable_offloads(p).unwrap();
    }
    client.disable_offloads("eth0").unwrap();
    dir.disable_offloads("eth0").unwrap();
    dir.disable_offloads("eth1").unwrap();
    client.add_addr("eth0", ip("10.0.1.2"), 24).unwrap();
    client.add_addr("eth0", ip("fd00:1::2"), 64).unwrap();
    dir.add_addr("eth0", ip("10.0.1.1"), 24).unwrap();
    dir.add_addr("eth0", ip("fd00:1::1"), 64).unwrap();
    dir.add_addr("eth1", ip("10.0.2.1"), 24).unwrap();
    dir.add_addr("eth1", ip("fd00:2::1"), 64).unwrap();
    client.add_default_route(ip("10.0.1.1")).unwrap();
    client.add_default_route(ip("fd00:1::1")).unwrap();
    dir.enable_forwarding().unwrap();
    dir.ip(["route", "add", "blackhole", "10.100.0.0/16"])
        .unwrap();
    dir.ip(["-6", "route", "add", "blackhole", "fd00:100::/64"])
        .unwrap();
    dir.run("nft", ["add", "table", "inet", "lbt"]).unwrap();
    dir.run(
        "nft",
        [
            "add",
            "chain",
            "inet",
            "lbt",
            "fw",
            "{ type filter hook forward priority 0; }",
        ],
    )
    .unwrap();
    dir.run(
        "nft",
        [
            "add",
            "rule",
            "inet",
            "lbt",
            "fw",
            "ip",
            "saddr",
            "10.0.2.0/24",
            "drop",
        ],
    )
    .unwrap();
    dir.run(
        "nft",
        [
            "add",
            "rule",
            "inet",
            "lbt",
            "fw",
            "ip6",
            "saddr",
            "fd00:2::/64",
            "drop",
        ],
    )
    .unwrap();

    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut rs_macs = Vec::new();
    for (i, h) in rs.iter().enumerate() {
        let (a4, a6) = (
            ip(&format!("10.0.2.{}", i + 2)),
            ip(&format!("fd00:2::{}", i + 2)),
        );
        for ifn in ["eth0", "dec0", "dec1"] {
            h.disable_offloads(ifn).unwrap();
        }
        h.add_addr("eth0", a4, 24).unwrap();
        h.add_addr("eth0", a6, 64).unwrap();
        h.add_default_route(ip("10.0.2.1")).unwrap();
        h.add_default_route(ip("fd00:2::1")).unwrap();
        for k in ["all", "default", "eth0", "dec0", "dec1"] {
            h.sysctl(&format!("net.ipv4.conf.{k}.rp_filter"), "0")
                .unwrap();
        }
        h.sysctl("net.ipv6.conf.dec1.accept_ra", "0").unwrap();
        for (name, m, v4, v6, _) in modes() {
            if name != "nat" {
                h.add_loopback_vip(ip(v4)).unwrap();
                h.add_loopback_vip(ip(v6)).unwrap();
            }
            let _ = m;
        }
        h.add_loopback_vip(ip(PERSIST_VIP)).unwrap();
        rs_macs.push(h.mac("eth0").unwrap());
        // Servers: TCP on [::]:80 and [::]:8080 (dual stack); UDP bound per
        // address so that replies leave from the address asked (the VIP).
        for port in [80u16, 8080] {
            let l = h
                .run_in(move || TcpListener::bind(("::", port)))
                .unwrap()
                .unwrap();
            let log = log.clone();
            // Blocks in accept() for good; it ends with the test process.
            std::thread::spawn(move || tcp_server(i, l, log));
        }
        let mut udp_addrs: Vec<SocketAddr> =
            vec![SocketAddr::new(a4, 8080), SocketAddr::new(a6, 8080)];
        for (name, _, v4, v6, _) in modes() {
            if name != "nat" {
                udp_addrs.push(SocketAddr::new(ip(v4), 80));
                udp_addrs.push(SocketAddr::new(ip(v6), 80));
            }
        }
        udp_addrs.push(SocketAddr::new(ip(PERSIST_VIP), 80));
        for a in udp_addrs {
            let s = h.run_in(move || UdpSocket::bind(a)).unwrap().unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let (log, stop) = (log.clone(), stop.clone());
            threads.push(std::thread::spawn(move || udp_server(i, s, log, stop)));
        }
        // The userspace tunnel endpoint.
        let dec1_mac = h.mac("dec1").unwrap();
        let stop2 = stop.clone();
        let t = h
            .spawn_thread(move || {
                let rx = PacketSocket::open("eth0", RingConfig::default()).unwrap();
                let tx = PacketSocket::open(
                    "dec0",
                    RingConfig {
                        block_nr: 2,
                        ..RingConfig::default()
                    },
                )
                .unwrap();
                decap_loop(&rx, &tx, dec1_mac, &stop2);
            })
            .unwrap();
        threads.push(t);
    }

    // The director.
    let client_mac = client.mac("eth0").unwrap();
    let (ctl_tx, ctl_rx) = mpsc::channel::<(String, Ctl, mpsc::Sender<()>)>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop2 = stop.clone();
    let t = dir
        .spawn_thread(move || {
            let socks = [
                PacketSocket::open("eth0", RingConfig::default()).unwrap(),
                PacketSocket::open("eth1", RingConfig::default()).unwrap(),
            ];
            let mut cfg = Config::default();
            cfg.capacity = 4096;
            cfg.expire_nodest_conn = expire_nodest_conn;
            let mut fwd = Forwarder::new(cfg, std::time::Instant::now());
            let p0 = fwd.add_port(Port {
                mac: socks[0].mac(),
                mtu: socks[0].mtu().unwrap(),
                v4: Some(ip("10.0.1.1").into()),
                v6: Some(ip("fd00:1::1").into()),
            });
            let p1 = fwd.add_port(Port {
                mac: socks[1].mac(),
                mtu: socks[1].mtu().unwrap(),
                v4: Some(ip("10.0.2.1").into()),
                v6: Some(ip("fd00:2::1").into()),
            });
            fwd.set_neighbour(ip("10.0.1.2"), client_mac, p0);
            fwd.set_neighbour(ip("fd00:1::2"), client_mac, p0);
            for (i, mac) in rs_macs.iter().enumerate() {
                fwd.set_neighbour(ip(&format!("10.0.2.{}", i + 2)), *mac, p1);
                fwd.set_neighbour(ip(&format!("fd00:2::{}", i + 2)), *mac, p1);
            }
            // name → dest slots, for the control channel.
            let mut dests: HashMap<String, Vec<u16>> = HashMap::new();
            let mut services = modes()
                .into_iter()
                .flat_map(|(name, m, v4, v6, port)| {
                    [
                        (name, m, v4, false, port, None),
                        (name, m, v6, true, port, None),
                    ]
                })
                .collect::<Vec<_>>();
            services.push((
                "persist",
                Method::Dr,
                PERSIST_VIP,
                false,
                80,
                Some(Persistence::default()),
            ));
            for (name, m, vip, v6, rport, persistence) in services {
                for proto in [6u8, 17] {
                    let key = ServiceKey::Addr {
                        proto,
                        addr: Addr::from(ip(vip)),
                        port: 80,
                    };
                    // The kernel's rr, from lb-sched, through the adapter.
                    let skey = lb_sched::ServiceKey::Addr {
                        protocol: lb_sched::Protocol::from_number(proto),
                        addr: SocketAddr::new(ip(vip), 80),
                    };
                    let flags = if persistence.is_some() {
                        lb_sched::ServiceFlags::PERSISTENT
                    } else {
                        lb_sched::ServiceFlags::NONE
                    };
                    let inner = lb_sched::Service::new(
                        skey,
                        flags,
                        lb_sched::SchedulerKind::Rr,
                        std::time::Instant::now(),
                    )
                    .unwrap();
                    let sched = LbSched::new(inner, lb_sched::SplitMix64::new(1));
                    let svc = fwd
                        .add_service(
                            ServiceConfig {
                                key,
                                persistence,
                                one_packet: false,
                            },
                            sched,
                        )
                        .unwrap();
                    for i in 0..2 {
                        let rip = if v6 {
                            format!("fd00:2::{}", i + 2)
                        } else {
                            format!("10.0.2.{}", i + 2)
                        };
                        let d = fwd
                            .add_dest(
                                svc,
                                DestConfig {
                                    addr: ip(&rip),
                                    port: rport,
                                    method: m,
                                    weight: 1,
                                },
                            )
                            .unwrap();
                        let key = format!("{name}/{}/{proto}", if v6 { 6 } else { 4 });
                        dests.entry(key).or_default().push(d);
                    }
                }
            }
            ready_tx.send(()).unwrap();
            let ls = driver::run(&mut fwd, &socks, &stop2, |fwd| {
                while let Ok((key, c, done)) = ctl_rx.try_recv() {
                    let d = dests[&key].clone();
                    match c {
                        Ctl::Weight(i, w) => fwd.set_weight(d[i], w).unwrap(),
                        Ctl::Remove(i) => fwd.remove_dest(d[i]).unwrap(),
                    }
                    let _ = done.send(());
                }
            })
            .unwrap();
            (ls, fwd.stats())
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Topo {
        _lab: lab,
        client,
        log,
        stop,
        ctl: ctl_tx,
        threads,
        director: Some(t),
    }
}

fn tcp_server(i: usize, l: TcpListener, log: Log) {
    l.set_nonblocking(false).unwrap();
    for s in l.incoming() {
        let Ok(mut s) = s else { return };
        let log = log.clone();
        std::thread::spawn(move || {
            let local = s.local_addr().unwrap();
            let mut buf = [0u8; 2048];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        log.lock()
                            .unwrap()
                            .push((i, "tcp", local, buf[..n].to_vec()));
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

fn udp_server(i: usize, s: UdpSocket, log: Log, stop: Arc<AtomicBool>) {
    let local = s.local_addr().unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            log.lock()
                .unwrap()
                .push((i, "udp", local, buf[..n].to_vec()));
            let _ = s.send_to(&buf[..n], from);
        }
    }
}

/// The real server's userspace tunnel endpoint (see the module docs).
fn decap_loop(rx: &PacketSocket, tx: &PacketSocket, dec1_mac: [u8; 6], stop: &AtomicBool) {
    let mut batch = TxBatch::new(2048);
    let mut frame = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let _ = lb_forward::afpacket::wait_any(std::slice::from_ref(rx), 50);
        rx.recv_block(|f| {
            if f.len() < 34 || !matches!(u16::from_be_bytes([f[12], f[13]]), 0x0800 | 0x86dd) {
                return;
            }
            let Some(d) = decap_inner(&f[14..], Some(GUE_PORT)) else {
                return;
            };
            let inner = &f[14..][d.range.clone()];
            if inner.is_empty() || inner.len() + 14 > frame.len() {
                return;
            }
            frame[..6].copy_from_slice(&dec1_mac);
            frame[6..12].copy_from_slice(&tx.mac());
            let et: u16 = if inner[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
            frame[12..14].copy_from_slice(&et.to_be_bytes());
            frame[14..14 + inner.len()].copy_from_slice(inner);
            if let Some((s, c)) = d.remcsum {
                let l = inner.len();
                apply_remcsum(&mut frame[14..14 + l], s, c);
            }
            batch.push(&frame[..14 + inner.len()]);
        });
        if !batch.is_empty() {
            let _ = tx.send(&mut batch);
        }
    }
}

fn payload(tag: &str, n: usize) -> Vec<u8> {
    let mut v = tag.as_bytes().to_vec();
    let mut x: u32 = 0x9e37_79b9 ^ n as u32;
    while v.len() < 32 + n % 7 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

impl Topo {
    fn tcp(&self, vip: IpAddr, data: Vec<u8>) -> Vec<u8> {
        self.client
            .run_in(move || -> std::io::Result<Vec<u8>> {
                let mut s =
                    TcpStream::connect_timeout(&SocketAddr::new(vip, 80), Duration::from_secs(5))?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(&data)?;
                let mut got = vec![0u8; data.len()];
                s.read_exact(&mut got)?;
                Ok(got)
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("tcp to {vip}: {e}"))
    }

    fn udp(&self, vip: IpAddr, sport: u16, data: Vec<u8>) -> Vec<u8> {
        self.client
            .run_in(move || -> std::io::Result<Vec<u8>> {
                let bind: IpAddr = if vip.is_ipv4() {
                    ip("0.0.0.0")
                } else {
                    ip("::")
                };
                let s = UdpSocket::bind((bind, sport))?;
                s.set_read_timeout(Some(Duration::from_millis(700)))?;
                s.connect((vip, 80))?;
                let mut buf = [0u8; 2048];
                // A few tries: the first datagram may race neighbour discovery.
                for _ in 0..5 {
                    s.send(&data)?;
                    if let Ok(n) = s.recv(&mut buf) {
                        return Ok(buf[..n].to_vec());
                    }
                }
                Err(std::io::Error::other("no udp reply"))
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("udp to {vip}: {e}"))
    }

    /// Which server logged `data` (exactly once, byte-identical).
    fn served_by(&self, data: &[u8]) -> usize {
        let log = self.log.lock().unwrap();
        let hits: Vec<_> = log.iter().filter(|e| e.3 == data).collect();
        assert!(!hits.is_empty(), "no server received the payload");
        hits[0].0
    }
}

#[test]
fn netns_forward_all_modes() {
    let Some(lab) = lab_or_skip!("fwd", "nft") else {
        return;
    };
    let t = setup(lab, false);
    for (name, _, v4, v6, _) in modes() {
        for vip in [ip(v4), ip(v6)] {
            // TCP: 4 connections alternate between the servers as the kernel's
            // rr does: its list has the newest destination first, so rs2
            // (added last) comes first. Payloads are echoed intact.
            let mut by = Vec::new();
            for n in 0..4 {
                let data = payload(&format!("{name}-tcp-{vip}-{n}"), n);
                assert_eq!(t.tcp(vip, data.clone()), data, "{name} tcp {vip}");
                by.push(t.served_by(&data));
            }
            assert_eq!(by, [1, 0, 1, 0], "{name} tcp {vip}: rr order");
            // UDP: 4 flows (distinct source ports), same checks.
            let mut by = Vec::new();
            for n in 0..4 {
                let data = payload(&format!("{name}-udp-{vip}-{n}"), n);
                assert_eq!(
                    t.udp(vip, 20000 + n as u16, data.clone()),
                    data,
                    "{name} udp {vip}"
                );
                by.push(t.served_by(&data));
            }
            assert_eq!(by, [1, 0, 1, 0], "{name} udp {vip}: rr order");
        }
    }
    // Persistence: every connection of the client lands on one server.
    let vip = ip(PERSIST_VIP);
    let by: Vec<_> = (0..4)
        .map(|n| {
            let data = payload(&format!("persist-{n}"), n);
            assert_eq!(t.tcp(vip, data.clone()), data);
            t.served_by(&data)
        })
        .collect();
    assert!(by.iter().all(|&b| b == by[0]), "persistence: {by:?}");
    // Everything above went through the forwarder: 5 modes x 2 families x
    // 8 flows, plus 4 persistent connections (and their template).
    let (ls, st) = t.finish();
    assert!(st.conns_created >= 84, "{st:?}");
    assert!(ls.rx > 0 && ls.tx > 0, "{ls:?}");
    println!("director: {ls:?} {st:?}");
}

#[test]
fn netns_forward_drain_and_remove() {
    let Some(lab) = lab_or_skip!("fwdrm", "nft") else {
        return;
    };
    let t = setup(lab, true);
    let vip = ip("10.100.0.1"); // DR
    // An open TCP connection keeps working after its server's weight goes
    // to 0, while new connections go to the other server.
    let (cmd_tx, cmd_rx) = mpsc::channel::<Vec<u8>>();
    let (res_tx, res_rx) = mpsc::channel::<Vec<u8>>();
    let conn = t
        .client
        .spawn_thread(move || {
            let mut s =
                TcpStream::connect_timeout(&SocketAddr::new(vip, 80), Duration::from_secs(5))
                    .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for data in cmd_rx {
                s.write_all(&data).unwrap();
                let mut got = vec![0u8; data.len()];
                s.read_exact(&mut got).unwrap();
                res_tx.send(got).unwrap();
            }
        })
        .unwrap();
    let first = payload("long-1", 1);
    cmd_tx.send(first.clone()).unwrap();
    assert_eq!(res_rx.recv_timeout(Duration::from_secs(10)).unwrap(), first);
    let s = t.served_by(&first);
    t.control("dr/4/6", Ctl::Weight(s, 0));
    for n in 0..3 {
        let data = payload(&format!("drain-new-{n}"), n);
        assert_eq!(t.tcp(vip, data.clone()), data);
        assert_eq!(
            t.served_by(&data),
            1 - s,
            "new connections avoid the drained server"
        );
    }
    let second = payload("long-2", 2);
    cmd_tx.send(second.clone()).unwrap();
    assert_eq!(
        res_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        second
    );
    assert_eq!(t.served_by(&second), s, "the existing connection stays");
    drop(cmd_tx);
    conn.join().unwrap();

    // Removal with expire_nodest_conn: a UDP flow moves to the other server.
    let a = payload("rm-a", 3);
    assert_eq!(t.udp(vip, 30000, a.clone()), a);
    let s = t.served_by(&a);
    t.control("dr/4/17", Ctl::Remove(s));
    let b = payload("rm-b", 4);
    assert_eq!(t.udp(vip, 30000, b.clone()), b);
    assert_eq!(t.served_by(&b), 1 - s, "rescheduled after removal");
}
