//! Sync groups across two nodes on a lossless virtual network: node A
//! (priority 150 on both VRIDs) and node B (100 on both), each node's two
//! routers in one `SyncGroup`. A fault on one of A's routers moves both VRIDs
//! to B; clearing it moves both back (preempt).

mod util;

use core::net::IpAddr;

use lb_vrrp::wire::Version;
use lb_vrrp::{
    Config, Event, Instant, MAX_TRANSMIT_LEN, RxMeta, State, SyncGroup, TrackKind, TrackStatus,
    Tracked, Transmit, VirtualRouter,
};
use util::*;

const DELAY: u64 = 1_000; // 1 ms link delay

struct Node {
    routers: Vec<VirtualRouter>,
    group: SyncGroup,
    holds: Vec<bool>,
}

struct Net {
    now: Instant,
    nodes: Vec<Node>,
    queue: Vec<(Instant, usize, RxMeta, Vec<u8>)>,
}

impl Net {
    fn new(prios: [u8; 2]) -> Self {
        let nodes = [ME, HIGH]
            .iter()
            .zip(prios)
            .map(|(&ip, prio)| {
                let routers = (1..=2u8)
                    .map(|vrid| {
                        let mut c = Config::new(Version::V3, vrid, ip);
                        c.priority = prio;
                        c.virtual_addresses =
                            vec![IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 1, vrid))];
                        c.tracked = vec![Tracked::new("chk", TrackKind::Script, 0)];
                        c.garp.master_repeat = 0;
                        VirtualRouter::new(c).unwrap()
                    })
                    .collect();
                Node {
                    routers,
                    group: SyncGroup::new(vec![0, 1]),
                    holds: vec![false; 2],
                }
            })
            .collect();
        Self {
            now: Instant::ZERO,
            nodes,
            queue: Vec::new(),
        }
    }

    /// Drains events (feeding the sync group) and transmits until quiet.
    fn drain(&mut self, n: usize) {
        let mut buf = vec![0u8; MAX_TRANSMIT_LEN];
        loop {
            let mut any = false;
            for k in 0..2 {
                while let Some(ev) = self.nodes[n].routers[k].poll_event() {
                    any = true;
                    match ev {
                        Event::AddAddresses => self.nodes[n].holds[k] = true,
                        Event::RemoveAddresses => self.nodes[n].holds[k] = false,
                        _ => {}
                    }
                    let node = &mut self.nodes[n];
                    node.group.handle_event(self.now, k, ev, &mut node.routers);
                }
                while let Some(t) = self.nodes[n].routers[k].poll_transmit(&mut buf) {
                    any = true;
                    if let Transmit::Advertisement { src, dst, len, .. } = t {
                        let to = 1 - n;
                        self.queue.push((
                            self.now.add_micros(DELAY),
                            to,
                            RxMeta { src, dst, ttl: 255 },
                            buf[..len].to_vec(),
                        ));
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    fn run_until(&mut self, end: Instant) {
        loop {
            let t_pkt = self.queue.iter().map(|q| q.0).min();
            let t_tmr = self
                .nodes
                .iter()
                .flat_map(|n| n.routers.iter().filter_map(|r| r.poll_timeout()))
                .min();
            let Some(t) = [t_pkt, t_tmr]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= end)
            else {
                break;
            };
            self.now = t;
            let due: Vec<_> = {
                let (due, rest) = std::mem::take(&mut self.queue)
                    .into_iter()
                    .partition(|q| q.0 <= t);
                self.queue = rest;
                due
            };
            for (_, to, m, bytes) in due {
                for r in &mut self.nodes[to].routers {
                    r.handle_packet(t, m, &bytes);
                }
                self.drain(to);
            }
            for n in 0..2 {
                for r in &mut self.nodes[n].routers {
                    r.handle_timeout(t);
                }
                self.drain(n);
            }
        }
        self.now = end;
    }

    fn states(&self, n: usize) -> Vec<State> {
        self.nodes[n].routers.iter().map(|r| r.state()).collect()
    }

    fn act(&mut self, n: usize, f: impl FnOnce(&mut VirtualRouter, Instant)) {
        let now = self.now;
        f(&mut self.nodes[n].routers[0], now);
        self.drain(n);
    }
}

#[test]
fn sync_group_moves_both_vrids_together() {
    let mut net = Net::new([150, 100]);
    for n in 0..2 {
        for r in &mut net.nodes[n].routers {
            r.handle_startup(Instant::ZERO);
        }
        net.drain(n);
    }
    net.run_until(Instant::from_secs(10));
    assert_eq!(net.states(0), vec![State::Master; 2]);
    assert_eq!(net.states(1), vec![State::Backup; 2]);
    assert_eq!(net.nodes[0].holds, vec![true, true]);

    // A's first router faults: the group faults the second; both hand over
    // with priority 0, so B takes both within Skew_Time.
    net.act(0, |r, now| r.handle_track(now, 0, TrackStatus::Down));
    assert_eq!(net.states(0), vec![State::Fault; 2]);
    net.run_until(net.now.add_micros(1_000_000));
    assert_eq!(net.states(1), vec![State::Master; 2]);
    assert_eq!(net.nodes[0].holds, vec![false, false]);
    assert_eq!(net.nodes[1].holds, vec![true, true]);

    // The fault clears: both of A's routers return to Backup, then preempt.
    net.act(0, |r, now| r.handle_track(now, 0, TrackStatus::Up));
    assert_eq!(net.states(0), vec![State::Backup; 2]);
    net.run_until(net.now.add_micros(10_000_000));
    assert_eq!(net.states(0), vec![State::Master; 2]);
    assert_eq!(net.states(1), vec![State::Backup; 2]);
    assert_eq!(net.nodes[1].holds, vec![false, false]);
}
