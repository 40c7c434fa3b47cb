//! Packet-rate benchmark on veth: 64-byte UDP frames from a generator
//! namespace, through a director namespace, to a sink namespace, forwarded
//! (a) by the kernel's own IP forwarding and (b) by `lb-forward` (DR, the
//! AF_PACKET driver), in the same run. Prints both rates and the ratio.
//!
//! ```text
//!  gen ──eth0── dir ──eth1── sink
//! ```
//!
//! Run as root: `cargo run --release -p lb-forward --example veth_rate [seconds]`.
//! The generator sends with `sendmmsg` on AF_PACKET as fast as it can; the
//! sink counts what arrives on its AF_PACKET ring. Each mode runs twice,
//! alternating, and the better run of each is reported.

use lb_forward::addr::Addr;
use lb_forward::afpacket::{PacketSocket, RingConfig, TxBatch, wait_any};
use lb_forward::classify::ServiceKey;
use lb_forward::driver;
use lb_forward::forwarder::{Config, DestConfig, Forwarder, Method, Port, ServiceConfig};
use lb_forward::sched::RoundRobin;
use lb_forward::testutil::udp4_frame;
use lb_testing_netns::{Host, Lab};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const VIP: [u8; 4] = [10, 100, 0, 1];
const SINK: [u8; 4] = [10, 0, 2, 2];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let lab = match Lab::new("rate") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("veth_rate: cannot build the lab (root and netns needed): {e}");
            std::process::exit(2);
        }
    };
    let g = lab.add_host("gen").unwrap();
    let d = lab.add_host("dir").unwrap();
    let s = lab.add_host("sink").unwrap();
    lab.link(&g, "eth0", &d, "eth0").unwrap();
    lab.link(&d, "eth1", &s, "eth0").unwrap();
    for (h, i) in [(&g, "eth0"), (&d, "eth0"), (&d, "eth1"), (&s, "eth0")] {
        h.disable_offloads(i).unwrap();
    }
    g.add_addr("eth0", ip("10.0.1.2"), 24).unwrap();
    d.add_addr("eth0", ip("10.0.1.1"), 24).unwrap();
    d.add_addr("eth1", ip("10.0.2.1"), 24).unwrap();
    s.add_addr("eth0", ip("10.0.2.2"), 24).unwrap();
    s.add_default_route(ip("10.0.2.1")).unwrap();
    s.add_loopback_vip(ip("10.100.0.1")).unwrap();
    let sink_mac = s.mac("eth0").unwrap();
    let dir_mac = d.mac("eth0").unwrap();
    let sink_mac_s = sink_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    d.ip([
        "neigh",
        "replace",
        "10.0.2.2",
        "lladdr",
        &sink_mac_s,
        "dev",
        "eth1",
        "nud",
        "permanent",
    ])
    .unwrap();

    let mut kernel = 0f64;
    let mut ours = 0f64;
    for round in 0..2 {
        let k = measure(&g, &s, dir_mac, SINK, secs, || {
            d.enable_forwarding().unwrap();
            None
        });
        kernel = kernel.max(k);
        let o = measure(&g, &s, dir_mac, VIP, secs, || {
            d.sysctl("net.ipv4.ip_forward", "0").unwrap();
            Some(start_forwarder(&d, sink_mac))
        });
        ours = ours.max(o);
        println!(
            "round {round}: kernel {:.3} Mpps, lb-forward {:.3} Mpps",
            k / 1e6,
            o / 1e6
        );
    }
    println!(
        "veth 64B UDP, {secs} s per run: kernel forwarding {:.3} Mpps, lb-forward (DR, AF_PACKET) {:.3} Mpps, ratio {:.2}",
        kernel / 1e6,
        ours / 1e6,
        ours / kernel
    );
}

struct Fwd {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<driver::LoopStats>,
}

fn start_forwarder(d: &Host, sink_mac: [u8; 6]) -> Fwd {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = d
        .spawn_thread(move || {
            let socks = [
                PacketSocket::open("eth0", RingConfig::default()).unwrap(),
                PacketSocket::open("eth1", RingConfig::default()).unwrap(),
            ];
            let mut cfg = Config::default();
            cfg.capacity = 1 << 16;
            let mut fwd = Forwarder::new(cfg, Instant::now());
            let _p0 = fwd.add_port(Port {
                mac: socks[0].mac(),
                mtu: 1500,
                v4: None,
                v6: None,
            });
            let p1 = fwd.add_port(Port {
                mac: socks[1].mac(),
                mtu: 1500,
                v4: None,
                v6: None,
            });
            fwd.set_neighbour(ip("10.0.2.2"), sink_mac, p1);
            let key = ServiceKey::Addr {
                proto: 17,
                addr: Addr::v4(VIP),
                port: 9,
            };
            let svc = fwd
                .add_service(
                    ServiceConfig {
                        key,
                        persistence: None,
                        one_packet: false,
                    },
                    RoundRobin::default(),
                )
                .unwrap();
            fwd.add_dest(
                svc,
                DestConfig {
                    addr: ip("10.0.2.2"),
                    port: 9,
                    method: Method::Dr,
                    weight: 1,
                },
            )
            .unwrap();
            tx.send(()).unwrap();
            driver::run(&mut fwd, &socks, &stop2, |_| {}).unwrap()
        })
        .unwrap();
    rx.recv().unwrap();
    Fwd { stop, handle }
}

/// Runs generator and sink for `secs` and returns packets/s received.
fn measure(
    g: &Host,
    s: &Host,
    dir_mac: [u8; 6],
    dst: [u8; 4],
    secs: u64,
    setup: impl FnOnce() -> Option<Fwd>,
) -> f64 {
    let fwd = setup();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let sink = {
        let (stop, got, counting) = (stop.clone(), got.clone(), counting.clone());
        s.spawn_thread(move || {
            let sock = PacketSocket::open("eth0", RingConfig::default()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _ = wait_any(std::slice::from_ref(&sock), 20);
                let mut n = 0u64;
                sock.recv_block(|f| {
                    if f.len() >= 42 && f[23] == 17 && f[36..38] == [0, 9] {
                        n += 1;
                    }
                });
                if counting.load(Ordering::Relaxed) {
                    got.fetch_add(n, Ordering::Relaxed);
                }
            }
        })
        .unwrap()
    };
    let gen_stop = Arc::new(AtomicBool::new(false));
    let gen_thread = {
        let stop = gen_stop.clone();
        g.spawn_thread(move || {
            let sock = PacketSocket::open(
                "eth0",
                RingConfig {
                    block_size: 1 << 16,
                    block_nr: 1,
                    ..Default::default()
                },
            )
            .unwrap();
            let mut frames = Vec::new();
            for k in 0..64u16 {
                let mut f = udp4_frame([10, 0, 1, 2], 10000 + k, dst, 9, &[0x5a; 18]);
                f[..6].copy_from_slice(&dir_mac);
                f[6..12].copy_from_slice(&sock.mac());
                frames.push(f);
            }
            let mut batch = TxBatch::new(128);
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for f in &frames {
                    batch.push(f);
                }
                sent += sock.send(&mut batch).unwrap_or(0) as u64;
            }
            sent
        })
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    counting.store(false, Ordering::Relaxed);
    let dt = t0.elapsed().as_secs_f64();
    let n = got.load(Ordering::Relaxed);
    gen_stop.store(true, Ordering::Relaxed);
    let sent = gen_thread.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    sink.join().unwrap();
    if let Some(f) = fwd {
        f.stop.store(true, Ordering::Relaxed);
        let ls = f.handle.join().unwrap();
        eprintln!("  lb-forward loop: {ls:?}");
    }
    eprintln!("  generator sent {sent} frames in total; sink counted {n} in {dt:.2} s");
    n as f64 / dt
}
