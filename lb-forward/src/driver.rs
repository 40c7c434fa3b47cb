//! The forwarding loop: AF_PACKET sockets in, [`Forwarder`] in the middle,
//! batched sends out. One loop per thread; with several threads, give each
//! its own sockets in one `PACKET_FANOUT` group and its own `Forwarder`.
//!
//! Fanout hashes each direction of a flow separately, so NAT replies may
//! reach another thread than their requests: run NAT services on one
//! thread (DR and TUN, whose replies bypass the director, spread freely).

use crate::afpacket::{PacketSocket, TxBatch, wait_any};
use crate::error::IoError;
use crate::forwarder::{Buf, Forwarder, Verdict};
use crate::sched::Scheduler;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Counters of a [`run`] loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Frames read from the rings.
    pub rx: u64,
    /// Frames the kernel took (`sendmmsg`).
    pub tx: u64,
    /// Frames to send that were dropped: the device refused them (over the
    /// MTU) or could not take them then (link down, queue full).
    pub tx_dropped: u64,
}

/// Runs until `stop` is set: reads every socket's ring, forwards, sends in
/// batches on the socket of the verdict's port (`socks[port]`), and expires
/// connections every 100 ms. `control` runs between batches (at least every
/// 50 ms), the place to apply configuration changes (weights, destinations)
/// that arrive from elsewhere, e.g. over a channel.
///
/// # Examples
///
/// ```no_run
/// use lb_forward::afpacket::{PacketSocket, RingConfig};
/// use lb_forward::{Config, Forwarder, Port, sched::RoundRobin};
/// use std::sync::atomic::AtomicBool;
/// let socks = [PacketSocket::open("eth0", RingConfig::default())?];
/// let mut fwd: Forwarder<RoundRobin> = Forwarder::new(Config::default(), std::time::Instant::now());
/// fwd.add_port(Port { mac: socks[0].mac(), mtu: socks[0].mtu()?, v4: None, v6: None });
/// // ... services, destinations, neighbours ...
/// let stop = AtomicBool::new(false);
/// let stats = lb_forward::driver::run(&mut fwd, &socks, &stop, |_fwd| {})?;
/// # Ok::<(), lb_forward::IoError>(())
/// ```
pub fn run<S: Scheduler>(
    fwd: &mut Forwarder<S>,
    socks: &[PacketSocket],
    stop: &AtomicBool,
    mut control: impl FnMut(&mut Forwarder<S>),
) -> Result<LoopStats, IoError> {
    let mut batches: Vec<TxBatch> = socks.iter().map(|_| TxBatch::new(2048)).collect();
    let mut out = vec![0u8; 2048 + 128];
    let mut stats = LoopStats::default();
    let mut last_timer = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        wait_any(socks, 50)?;
        control(fwd);
        let now = Instant::now();
        for i in 0..socks.len() {
            loop {
                let mut err = None;
                let n = socks[i].recv_block(|frame| {
                    let v = fwd.process(now, frame, &mut out);
                    if let Verdict::Transmit { port, buf, len } = v {
                        let bytes = if buf == Buf::Frame {
                            &frame[..len]
                        } else {
                            &out[..len]
                        };
                        let p = usize::from(port);
                        if let (Some(b), Some(s)) = (batches.get_mut(p), socks.get(p)) {
                            if b.is_full() {
                                let n = b.len();
                                match s.send(b) {
                                    Ok(k) => {
                                        stats.tx += k as u64;
                                        stats.tx_dropped += (n - k) as u64;
                                    }
                                    Err(e) => err = Some(e),
                                }
                            }
                            b.push(bytes);
                        }
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
                stats.rx += n as u64;
                for (s, b) in socks.iter().zip(batches.iter_mut()) {
                    if !b.is_empty() {
                        let n = b.len();
                        let k = s.send(b)?;
                        stats.tx += k as u64;
                        stats.tx_dropped += (n - k) as u64;
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
        if now.duration_since(last_timer) >= Duration::from_millis(100) {
            fwd.handle_timeout(now);
            last_timer = now;
        }
    }
    Ok(stats)
}

/// Fills the forwarder's neighbour table from the kernel's ARP table
/// (`/proc/thread-self/net/arp`, so the calling thread's network
/// namespace): each complete entry on one of `ports` (interface name,
/// port) becomes a neighbour on that port. Returns how many were loaded.
/// Call it at start and now and then; IPv6 neighbours are not covered.
pub fn load_arp_neighbours<S: Scheduler>(
    fwd: &mut Forwarder<S>,
    ports: &[(&str, crate::forwarder::PortId)],
) -> Result<usize, IoError> {
    let text =
        std::fs::read_to_string("/proc/thread-self/net/arp").map_err(|source| IoError::Sys {
            call: "read(/proc/thread-self/net/arp)",
            source,
        })?;
    let mut n = 0;
    for e in crate::neigh::parse_proc_arp(&text) {
        if let Some(&(_, port)) = ports.iter().find(|(name, _)| *name == e.dev) {
            fwd.set_neighbour(e.ip.into(), e.mac, port);
            n += 1;
        }
    }
    Ok(n)
}

/// Fills the forwarder's neighbour table, both families, from the
/// kernel's (an rtnetlink `RTM_GETNEIGH` dump in the calling thread's
/// network namespace): each usable entry on an interface of `ports`
/// (interface index, port) becomes a neighbour on that port. Returns how
/// many were loaded. Call it at start and now and then.
pub fn load_neighbours<S: Scheduler>(
    fwd: &mut Forwarder<S>,
    ports: &[(i32, crate::forwarder::PortId)],
) -> Result<usize, IoError> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    let nl = |call: &'static str| move |source| IoError::Sys { call, source };
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(nl("socket(NETLINK_ROUTE)"))?;
    sock.bind_auto().map_err(nl("bind(netlink)"))?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(nl("connect(netlink)"))?;
    sock.send(&crate::neigh::neigh_dump_request(1), 0)
        .map_err(nl("send(RTM_GETNEIGH)"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut n = 0;
    loop {
        buf.clear();
        sock.recv(&mut buf, 0).map_err(nl("recv(RTM_GETNEIGH)"))?;
        let part = crate::neigh::parse_neigh_dump(&buf);
        if let Some(e) = part.error {
            return Err(IoError::Sys {
                call: "RTM_GETNEIGH",
                source: std::io::Error::from_raw_os_error(-e),
            });
        }
        for e in part.entries {
            if let Some(&(_, port)) = ports.iter().find(|(ifindex, _)| *ifindex == e.ifindex) {
                fwd.set_neighbour(e.ip, e.mac, port);
                n += 1;
            }
        }
        if part.done || buf.is_empty() {
            return Ok(n);
        }
    }
}
