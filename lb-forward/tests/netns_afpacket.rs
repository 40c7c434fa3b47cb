//! The AF_PACKET layer on a veth pair: batched sends arrive whole, and a
//! `PACKET_FANOUT` group spreads flows over its sockets, keeping each flow
//! on one socket.

use lb_forward::afpacket::{PacketSocket, RingConfig, TX_BATCH, TxBatch, wait_any};
use lb_forward::testutil::udp4_frame;
use lb_testing_netns::lab_or_skip;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Hosts `a` and `b` joined by a veth pair (`eth0` on both), offloads off
/// so the sockets see whole frames.
fn pair(lab: &lb_testing_netns::Lab) -> (lb_testing_netns::Host, lb_testing_netns::Host) {
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    a.disable_offloads("eth0").unwrap();
    b.disable_offloads("eth0").unwrap();
    (a, b)
}

#[test]
fn netns_afpacket_fanout_spreads_flows() {
    let Some(lab) = lab_or_skip!("afp") else {
        return;
    };
    let (a, b) = pair(&lab);
    let b_mac = b.mac("eth0").unwrap();
    let cfg = RingConfig {
        fanout: Some(0x4242),
        ..RingConfig::default()
    };
    let socks = b
        .run_in(move || -> Result<Vec<PacketSocket>, lb_forward::IoError> {
            Ok(vec![
                PacketSocket::open("eth0", cfg)?,
                PacketSocket::open("eth0", cfg)?,
            ])
        })
        .unwrap()
        .unwrap();
    assert_eq!(socks[0].mac(), b_mac);

    // 64 flows x 4 packets, sent in batches of TX_BATCH.
    const FLOWS: u16 = 64;
    let sent = a
        .run_in(move || {
            let tx = PacketSocket::open(
                "eth0",
                RingConfig {
                    block_nr: 2,
                    ..RingConfig::default()
                },
            )
            .unwrap();
            let mut batch = TxBatch::new(128);
            let mut sent = 0;
            for round in 0..4u8 {
                for flow in 0..FLOWS {
                    let mut f = udp4_frame(
                        [10, 9, 0, 1],
                        10_000 + flow,
                        [10, 9, 0, 2],
                        7,
                        &[0xfa, round],
                    );
                    f[..6].copy_from_slice(&b_mac);
                    f[6..12].copy_from_slice(&tx.mac());
                    if batch.is_full() {
                        sent += tx.send(&mut batch).unwrap();
                    }
                    assert!(batch.push(&f));
                }
            }
            sent + tx.send(&mut batch).unwrap()
        })
        .unwrap();
    assert_eq!(sent, usize::from(FLOWS) * 4);
    assert!(TX_BATCH < sent, "more than one batch was needed");

    // Which socket saw each flow.
    let mut seen: HashMap<u16, Vec<usize>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut total = 0;
    while total < sent && Instant::now() < deadline {
        wait_any(&socks, 50).unwrap();
        for (i, s) in socks.iter().enumerate() {
            s.recv_block(|f| {
                if f.len() >= 44 && f[23] == 17 && f[36..38] == [0, 7] && f[42] == 0xfa {
                    seen.entry(u16::from_be_bytes([f[34], f[35]]))
                        .or_default()
                        .push(i);
                    total += 1;
                }
            });
        }
    }
    assert_eq!(total, sent, "every frame arrived once");
    let per_socket: Vec<usize> = (0..2)
        .map(|i| seen.values().filter(|v| v[0] == i).count())
        .collect();
    assert!(
        per_socket.iter().all(|&n| n > 0),
        "both sockets got flows: {per_socket:?}"
    );
    for (flow, socks) in &seen {
        assert!(
            socks.iter().all(|&s| s == socks[0]),
            "flow {flow} stayed on one socket: {socks:?}"
        );
    }
}

#[test]
fn netns_load_arp_neighbours_from_the_kernel() {
    use lb_forward::forwarder::{Config, Forwarder, Port};
    use lb_forward::sched::RoundRobin;
    let Some(lab) = lab_or_skip!("arp") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    a.add_addr("eth0", std::net::Ipv4Addr::new(10, 9, 1, 1), 24)
        .unwrap();
    b.add_addr("eth0", std::net::Ipv4Addr::new(10, 9, 1, 2), 24)
        .unwrap();
    b.ping(std::net::Ipv4Addr::new(10, 9, 1, 1)).unwrap();
    let a_mac = a.mac("eth0").unwrap();
    let (n, hop) = b
        .run_in(|| {
            let mut fwd: Forwarder<RoundRobin> = Forwarder::new(Config::default(), Instant::now());
            let p = fwd.add_port(Port {
                mac: [2; 6],
                mtu: 1500,
                v4: None,
                v6: None,
            });
            let n = lb_forward::driver::load_arp_neighbours(&mut fwd, &[("eth0", p)]);
            (
                n,
                fwd.neighbour(std::net::Ipv4Addr::new(10, 9, 1, 1).into()),
            )
        })
        .unwrap();
    assert_eq!(n.unwrap(), 1);
    assert_eq!(hop, Some((a_mac, 0)));
}

#[test]
fn netns_load_neighbours_over_rtnetlink_both_families() {
    use lb_forward::forwarder::{Config, Forwarder, Port};
    use lb_forward::sched::RoundRobin;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let Some(lab) = lab_or_skip!("nl") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    a.add_addr("eth0", Ipv4Addr::new(10, 9, 2, 1), 24).unwrap();
    b.add_addr("eth0", Ipv4Addr::new(10, 9, 2, 2), 24).unwrap();
    let (a6, b6): (Ipv6Addr, Ipv6Addr) =
        ("fd00:9::1".parse().unwrap(), "fd00:9::2".parse().unwrap());
    a.add_addr("eth0", a6, 64).unwrap();
    b.add_addr("eth0", b6, 64).unwrap();
    b.ping(Ipv4Addr::new(10, 9, 2, 1)).unwrap();
    b.ping(a6).unwrap();
    let a_mac = a.mac("eth0").unwrap();
    let ifindex = b.ifindex("eth0").unwrap() as i32;
    let (n, h4, h6) = b
        .run_in(move || {
            let mut fwd: Forwarder<RoundRobin> = Forwarder::new(Config::default(), Instant::now());
            let p = fwd.add_port(Port {
                mac: [2; 6],
                mtu: 1500,
                v4: None,
                v6: None,
            });
            let n = lb_forward::driver::load_neighbours(&mut fwd, &[(ifindex, p)]);
            (
                n,
                fwd.neighbour(IpAddr::V4(Ipv4Addr::new(10, 9, 2, 1))),
                fwd.neighbour(IpAddr::V6(a6)),
            )
        })
        .unwrap();
    assert!(n.unwrap() >= 2);
    assert_eq!(h4, Some((a_mac, 0)));
    assert_eq!(h6, Some((a_mac, 0)));
}

/// A link going down is not an error of the socket: sends while it is down
/// drop their frames and return how many went out (none), the pending
/// `ENETDOWN` the kernel leaves on the socket is cleared by `wait_any` (else
/// every `poll` would return at once), and once the link is back up the same
/// socket sends and receives again.
#[test]
fn netns_afpacket_survives_a_link_flap() {
    let Some(lab) = lab_or_skip!("afpflap") else {
        return;
    };
    let (a, b) = pair(&lab);
    let b_mac = b.mac("eth0").unwrap();
    let rx = b
        .run_in(|| PacketSocket::open("eth0", RingConfig::default()))
        .unwrap()
        .unwrap();
    let a2 = a.clone();
    let received = a
        .run_in(move || {
            let tx = PacketSocket::open("eth0", RingConfig::default()).unwrap();
            let frame = |tag: u8| {
                let mut f = udp4_frame([10, 9, 0, 1], 4000, [10, 9, 0, 2], 7, &[0xfb, tag]);
                f[..6].copy_from_slice(&b_mac);
                f[6..12].copy_from_slice(&tx.mac());
                f
            };
            let mut batch = TxBatch::new(128);

            a2.set_link("eth0", false).unwrap();
            for tag in 0..3 {
                assert!(batch.push(&frame(tag)));
            }
            // Dropped, not an error; the batch is emptied either way.
            assert_eq!(tx.send(&mut batch).unwrap(), 0);
            assert!(batch.is_empty());
            // The kernel left ENETDOWN on the socket; wait_any clears it.
            wait_any(std::slice::from_ref(&tx), 0).unwrap();
            assert!(tx.take_error().is_none());

            a2.set_link("eth0", true).unwrap();
            // Carrier comes back on both ends of the veth.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut sent = 0;
            while sent == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the link never took frames again"
                );
                assert!(batch.push(&frame(9)));
                sent = tx.send(&mut batch).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
            sent
        })
        .unwrap();
    assert!(received >= 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tags = Vec::new();
    while !tags.contains(&9) {
        assert!(
            Instant::now() < deadline,
            "nothing arrived after the flap: {tags:?}"
        );
        wait_any(std::slice::from_ref(&rx), 50).unwrap();
        rx.recv_block(|f| {
            if f.len() >= 2 && f[f.len() - 2] == 0xfb {
                tags.push(f[f.len() - 1]);
            }
        });
    }
    // Nothing sent while the link was down came through later.
    assert!(!tags.iter().any(|&t| t < 3), "{tags:?}");
}
