//! A deterministic simulator of N VRRP routers on a virtual clock.
//!
//! Each seed builds a random scenario: 2–4 nodes, one or two virtual
//! routers (VRIDs) per node, v2 or v3, IPv4 or IPv6, multicast or unicast,
//! random priorities (ties and an address owner included), preempt /
//! nopreempt / preempt_delay. A chaos phase then loses, delays, reorders
//! and corrupts packets, partitions links, restarts nodes and fails
//! tracked objects. At the heal time every link comes back, loss and
//! corruption stop (delay and reordering stay, bounded by `max_delay`),
//! every node is started and every tracked object recovers.
//!
//! Invariant: for every VRID, from `heal + settle` on, exactly one node is
//! Master and exactly that node holds the virtual addresses, where
//!
//! `settle = Master_Down_Interval(lowest priority) + Advertisement_Interval + 3 * max_delay`
//! (plus `preempt_delay + Advertisement_Interval + Master_Down_Interval`
//! when some router has a preempt_delay):
//!
//! every Master_Down_Timer armed before the heal has run out by then, and
//! any two Masters have exchanged an advertisement (one interval plus
//! delivery). A preempt_delay legitimately postpones a preemption: the
//! delay starts when the preempting Backup first sees the lower-priority
//! Master, which may itself emerge only a Master_Down_Interval after the heal. The check
//! then runs at every event for three more Master_Down_Intervals.
//!
//! The RNG is a SplitMix64 of our own, so every seed replays exactly.
//! Seeds that once failed are pinned in `pinned_regressions`.

mod util;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use lb_vrrp::timing::{down_micros, interval_micros};
use lb_vrrp::wire::Version;
use lb_vrrp::{
    Config, Event, Instant, MAX_TRANSMIT_LEN, RxMeta, State, TrackKind, TrackStatus, Tracked,
    Transmit, VirtualRouter,
};

/// SplitMix64 (Steele, Lea, Flood 2014).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    /// True with probability `permille`/1000.
    fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    LinkDown(usize, usize),
    LinkUp(usize, usize),
    Loss(u64),
    Corrupt(u64),
    Shutdown(usize),
    Startup(usize),
    TrackDown(usize, usize),
    TrackUp(usize, usize),
    Heal,
}

struct Node {
    primary: IpAddr,
    routers: Vec<VirtualRouter>,
    holds_vips: Vec<bool>,
}

struct InFlight {
    to: usize,
    meta: RxMeta,
    bytes: Vec<u8>,
}

struct Sim {
    rng: Rng,
    now: Instant,
    nodes: Vec<Node>,
    link_ok: Vec<Vec<bool>>,
    loss: u64,
    corrupt: u64,
    max_delay: u64,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    flights: Vec<Option<InFlight>>,
    seq: u64,
    buf: Vec<u8>,
    trace: Vec<String>,
}

struct Scenario {
    version: Version,
    ipv6: bool,
    unicast: bool,
    nodes: usize,
    vrids: usize,
    interval: u16,
}

fn addr(ipv6: bool, host: u8) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(host)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host))
    }
}

fn vip(ipv6: bool, vrid: u8) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, u16::from(vrid)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, vrid))
    }
}

impl Sim {
    fn drain(&mut self, n: usize) {
        for k in 0..self.nodes[n].routers.len() {
            while let Some(ev) = self.nodes[n].routers[k].poll_event() {
                match ev {
                    Event::AddAddresses => self.nodes[n].holds_vips[k] = true,
                    Event::RemoveAddresses => self.nodes[n].holds_vips[k] = false,
                    Event::StateChanged { from, to, reason } if self.trace.len() < 400 => {
                        self.trace.push(format!(
                            "{} node{n} vrid{} {from:?}->{to:?} ({reason:?})",
                            self.now,
                            k + 1
                        ));
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.nodes[n].routers[k].poll_transmit(&mut self.buf) {
                let Transmit::Advertisement { src, dst, len, .. } = t else {
                    continue;
                };
                for to in 0..self.nodes.len() {
                    if to == n || (!dst.is_multicast() && self.nodes[to].primary != dst) {
                        continue;
                    }
                    if !self.link_ok[n][to] || self.rng.chance(self.loss) {
                        continue;
                    }
                    let mut bytes = self.buf[..len].to_vec();
                    if self.rng.chance(self.corrupt) {
                        let i = self.rng.below(len as u64) as usize;
                        bytes[i] ^= 1 << self.rng.below(8);
                    }
                    let ttl = if self.rng.chance(self.corrupt) {
                        254
                    } else {
                        255
                    };
                    let at = self.now.add_micros(self.rng.range(0, self.max_delay));
                    self.flights.push(Some(InFlight {
                        to,
                        meta: RxMeta { src, dst, ttl },
                        bytes,
                    }));
                    self.heap.push(Reverse((at, self.flights.len() as u64 - 1)));
                    self.seq += 1;
                }
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .flat_map(|n| n.routers.iter().filter_map(|r| r.poll_timeout()))
            .min()
    }

    fn fire_timers(&mut self) {
        for n in 0..self.nodes.len() {
            for k in 0..self.nodes[n].routers.len() {
                if self.nodes[n].routers[k]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.nodes[n].routers[k].handle_timeout(self.now);
                }
            }
            self.drain(n);
        }
    }

    fn deliver_due(&mut self) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > self.now {
                break;
            }
            self.heap.pop();
            if let Some(f) = self.flights[id as usize].take() {
                for r in &mut self.nodes[f.to].routers {
                    r.handle_packet(self.now, f.meta, &f.bytes);
                }
                self.drain(f.to);
            }
        }
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::LinkDown(i, j) => {
                self.link_ok[i][j] = false;
                self.link_ok[j][i] = false;
            }
            Action::LinkUp(i, j) => {
                self.link_ok[i][j] = true;
                self.link_ok[j][i] = true;
            }
            Action::Loss(p) => self.loss = p,
            Action::Corrupt(p) => self.corrupt = p,
            Action::Shutdown(n) => {
                for r in &mut self.nodes[n].routers {
                    r.handle_shutdown(self.now);
                }
            }
            Action::Startup(n) => {
                for r in &mut self.nodes[n].routers {
                    r.handle_startup(self.now);
                }
            }
            Action::TrackDown(n, k) => {
                self.nodes[n].routers[k].handle_track(self.now, 0, TrackStatus::Down)
            }
            Action::TrackUp(n, k) => {
                self.nodes[n].routers[k].handle_track(self.now, 0, TrackStatus::Up)
            }
            Action::Heal => {
                for row in &mut self.link_ok {
                    row.fill(true);
                }
                self.loss = 0;
                self.corrupt = 0;
                for n in &mut self.nodes {
                    for r in &mut n.routers {
                        r.handle_track(self.now, 0, TrackStatus::Up);
                        r.handle_startup(self.now);
                    }
                }
            }
        }
        for n in 0..self.nodes.len() {
            self.drain(n);
        }
    }

    fn check(&self, seed: u64) {
        for k in 0..self.nodes[0].routers.len() {
            let masters: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.nodes[n].routers[k].state() == State::Master)
                .collect();
            let holders: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.nodes[n].holds_vips[k])
                .collect();
            if masters.len() != 1 || holders != masters {
                let states: Vec<_> = self
                    .nodes
                    .iter()
                    .map(|n| (n.routers[k].state(), n.routers[k].priority()))
                    .collect();
                panic!(
                    "seed {seed}: at {} vrid {} masters {masters:?} VIP holders {holders:?} states {states:?}\n{}",
                    self.now,
                    k + 1,
                    self.trace.join("\n")
                );
            }
        }
    }
}

/// Runs one seeded scenario; panics (naming the seed) if the invariant fails.
fn run(seed: u64) {
    let mut rng = Rng(seed);
    let version = if rng.chance(300) {
        Version::V2
    } else {
        Version::V3
    };
    let ipv6 = version == Version::V3 && rng.chance(300);
    let sc = Scenario {
        version,
        ipv6,
        unicast: rng.chance(250),
        nodes: rng.range(2, 4) as usize,
        vrids: rng.range(1, 2) as usize,
        interval: match version {
            Version::V2 => 1,
            Version::V3 => [5u16, 10, 20, 100][rng.below(4) as usize],
        },
    };
    let i_us = interval_micros(sc.version, sc.interval);
    let max_delay = rng.range(0, i_us / 5);
    let owner_node = if rng.chance(150) {
        Some(rng.below(sc.nodes as u64) as usize)
    } else {
        None
    };
    let mut max_preempt_delay = 0u64;
    let mut min_prio = 255u8;
    let mut nodes = Vec::new();
    for n in 0..sc.nodes {
        let primary = addr(sc.ipv6, n as u8 + 1);
        let mut routers = Vec::new();
        for k in 0..sc.vrids {
            let vrid = k as u8 + 1;
            let mut c = Config::new(sc.version, vrid, primary);
            c.interval = sc.interval;
            // Few distinct values, so that equal priorities (address tie-break) happen.
            c.priority = if owner_node == Some(n) && k == 0 {
                255
            } else {
                [50u8, 100, 100, 150, 200, 254][rng.below(6) as usize]
            };
            c.virtual_addresses = vec![vip(sc.ipv6, vrid)];
            c.preempt = rng.chance(750);
            if c.preempt && rng.chance(200) {
                c.preempt_delay = Duration::from_micros(rng.range(1, 3) * i_us);
            }
            max_preempt_delay =
                max_preempt_delay.max(u64::try_from(c.preempt_delay.as_micros()).unwrap());
            if sc.unicast {
                c.unicast_peers = (0..sc.nodes)
                    .filter(|&m| m != n)
                    .map(|m| addr(sc.ipv6, m as u8 + 1))
                    .collect();
            }
            c.tracked = vec![Tracked::new(
                "t",
                TrackKind::Script,
                if rng.chance(500) { 0 } else { -60 },
            )];
            c.garp.master_repeat = 1;
            min_prio = min_prio.min(c.priority.saturating_sub(60).max(1));
            routers.push(VirtualRouter::new(c).unwrap());
        }
        nodes.push(Node {
            primary,
            routers,
            holds_vips: vec![false; sc.vrids],
        });
    }
    let mut sim = Sim {
        rng,
        now: Instant::ZERO,
        link_ok: vec![vec![true; sc.nodes]; sc.nodes],
        nodes,
        loss: 0,
        corrupt: 0,
        max_delay,
        heap: BinaryHeap::new(),
        flights: Vec::new(),
        seq: 0,
        buf: vec![0; MAX_TRANSMIT_LEN],
        trace: Vec::new(),
    };
    // Staggered starts.
    let mut actions: Vec<(Instant, Action)> = (0..sc.nodes)
        .map(|n| {
            (
                Instant::from_micros(sim.rng.range(0, 2 * i_us)),
                Action::Startup(n),
            )
        })
        .collect();
    let chaos_intervals = sim.rng.range(3, 20);
    let heal = Instant::from_micros(chaos_intervals * i_us + 2 * i_us);
    let n_actions = sim.rng.range(0, 12);
    for _ in 0..n_actions {
        let at = Instant::from_micros(sim.rng.range(0, heal.as_micros()));
        let i = sim.rng.below(sc.nodes as u64) as usize;
        let j = (i + 1 + sim.rng.below(sc.nodes as u64 - 1) as usize) % sc.nodes;
        let k = sim.rng.below(sc.vrids as u64) as usize;
        let a = match sim.rng.below(8) {
            0 => Action::LinkDown(i, j),
            1 => Action::LinkUp(i, j),
            2 => Action::Loss(sim.rng.range(0, 500)),
            3 => Action::Corrupt(sim.rng.range(0, 200)),
            4 => Action::Shutdown(i),
            5 => Action::Startup(i),
            6 => Action::TrackDown(i, k),
            _ => Action::TrackUp(i, k),
        };
        actions.push((at, a));
    }
    actions.push((heal, Action::Heal));
    actions.sort_by_key(|(t, _)| *t);
    let mdi = down_micros(sc.version, min_prio, sc.interval);
    // With a preempt_delay, the first Master may emerge only after a whole
    // Master_Down_Interval, the preempting Backup holds for the delay (plus
    // the interval to the next advertisement) and then waits out its own timer.
    let preempt_wait = if max_preempt_delay > 0 {
        max_preempt_delay + i_us + mdi
    } else {
        0
    };
    let settle = mdi + preempt_wait + i_us + 3 * max_delay;
    let check_from = heal.add_micros(settle);
    let end = check_from.add_micros(3 * mdi);
    let mut next_action = 0;
    loop {
        let t_action = actions.get(next_action).map(|(t, _)| *t);
        let t_packet = sim.heap.peek().map(|Reverse((t, _))| *t);
        let Some(now) = [t_action, t_packet, sim.next_timer()]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        if now > end {
            break;
        }
        sim.now = now;
        while actions.get(next_action).is_some_and(|(t, _)| *t <= now) {
            let a = actions[next_action].1;
            next_action += 1;
            sim.apply(a);
        }
        sim.deliver_due();
        sim.fire_timers();
        if now >= check_from {
            sim.check(seed);
        }
    }
    sim.now = end;
    sim.check(seed);
}

fn run_range(start: u64, count: u64) {
    for seed in start..start + count {
        run(seed);
    }
}

// 10 × 1000 = 10,000 seeded runs, split so the test runner can spread them.
#[test]
fn seeds_00000() {
    run_range(0, 1000);
}
#[test]
fn seeds_01000() {
    run_range(1000, 1000);
}
#[test]
fn seeds_02000() {
    run_range(2000, 1000);
}
#[test]
fn seeds_03000() {
    run_range(3000, 1000);
}
#[test]
fn seeds_04000() {
    run_range(4000, 1000);
}
#[test]
fn seeds_05000() {
    run_range(5000, 1000);
}
#[test]
fn seeds_06000() {
    run_range(6000, 1000);
}
#[test]
fn seeds_07000() {
    run_range(7000, 1000);
}
#[test]
fn seeds_08000() {
    run_range(8000, 1000);
}
#[test]
fn seeds_09000() {
    run_range(9000, 1000);
}

/// Seeds that failed once, kept as regression tests.
#[test]
fn pinned_regressions() {
    for seed in PINNED {
        run(*seed);
    }
}

const PINNED: &[u64] = &[750, 1748, 5115];
