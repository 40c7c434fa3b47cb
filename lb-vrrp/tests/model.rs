//! Property test: random input sequences drive the router and a small
//! reference model written straight from RFC 9568 §6.4 (RFC 3768 §6.4 for
//! v2); after every input the state, the next deadline, the advertisements
//! sent and the learned interval must agree.

mod util;

use core::time::Duration;

use lb_vrrp::timing::{down_micros, interval_micros, skew_micros};
use lb_vrrp::wire::Version;
use lb_vrrp::{Instant, State, VirtualRouter};
use proptest::prelude::*;
use util::*;

#[derive(Debug, Clone, Copy)]
enum Input {
    Startup,
    Shutdown,
    /// A valid advertisement: priority, from a higher address than ours?, interval (v3).
    Adv(u8, bool, u16),
    /// Jump to the next deadline and handle it.
    Tick,
    /// Let time pass without reaching the next deadline.
    Wait(u64),
}

#[derive(Debug)]
struct Model {
    version: Version,
    prio: u8,
    preempt: bool,
    interval: u16,
    state: State,
    master_interval: u16,
    down: Option<u64>,
    adver: Option<u64>,
    sent: Vec<u8>,
}

impl Model {
    fn startup(&mut self, now: u64) {
        if self.state != State::Initialize {
            return;
        }
        if self.prio == 255 {
            self.become_master(now);
        } else {
            self.master_interval = self.interval;
            self.down = Some(now + down_micros(self.version, self.prio, self.master_interval));
            self.state = State::Backup;
        }
    }

    fn become_master(&mut self, now: u64) {
        self.sent.push(self.prio);
        self.adver = Some(now + interval_micros(self.version, self.interval));
        self.down = None;
        self.state = State::Master;
    }

    fn shutdown(&mut self) {
        if self.state == State::Master {
            self.sent.push(0);
        }
        self.state = State::Initialize;
        self.down = None;
        self.adver = None;
    }

    fn adv(&mut self, now: u64, p: u8, higher_addr: bool, interval: u16) {
        let v3 = self.version == Version::V3;
        if !v3 && self.prio == 255 {
            return; // RFC 3768 §7.1: the owner discards.
        }
        match self.state {
            State::Backup if p == 0 => {
                self.down = Some(now + skew_micros(self.version, self.prio, self.master_interval))
            }
            // Preempt_Mode False, or priority >= local: follow it.
            State::Backup if !self.preempt || p >= self.prio => {
                if v3 {
                    self.master_interval = interval;
                }
                self.down = Some(now + down_micros(self.version, self.prio, self.master_interval));
            }
            State::Master if p == 0 => {
                self.sent.push(self.prio);
                self.adver = Some(now + interval_micros(self.version, self.interval));
            }
            State::Master => {
                if p > self.prio || (p == self.prio && higher_addr) {
                    self.adver = None;
                    if v3 {
                        self.master_interval = interval;
                    }
                    self.down =
                        Some(now + down_micros(self.version, self.prio, self.master_interval));
                    self.state = State::Backup;
                } else {
                    self.sent.push(self.prio);
                }
            }
            _ => {}
        }
    }

    fn deadline(&self) -> Option<u64> {
        self.down.or(self.adver)
    }

    fn tick(&mut self, now: u64) {
        match self.state {
            State::Backup if self.down.is_some_and(|d| d <= now) => self.become_master(now),
            State::Master if self.adver.is_some_and(|d| d <= now) => {
                self.sent.push(self.prio);
                self.adver = Some(now + interval_micros(self.version, self.interval));
            }
            _ => {}
        }
    }
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => Just(Input::Startup),
        1 => Just(Input::Shutdown),
        6 => (prop_oneof![Just(0u8), Just(1), Just(99), Just(100), Just(101), Just(254), Just(255)], any::<bool>(), 1u16..300)
            .prop_map(|(p, h, i)| Input::Adv(p, h, i)),
        4 => Just(Input::Tick),
        2 => (1u64..5_000_000).prop_map(Input::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn router_matches_reference_model(
        v3 in any::<bool>(),
        prio in prop_oneof![Just(1u8), Just(100), Just(254), Just(255)],
        preempt in any::<bool>(),
        inputs in proptest::collection::vec(input(), 1..60),
    ) {
        let version = if v3 { Version::V3 } else { Version::V2 };
        let mut c = cfg(version, prio);
        c.preempt = preempt;
        c.garp.master_repeat = 0;
        c.garp.master_delay = Duration::ZERO;
        let interval = c.interval;
        let mut r: VirtualRouter = router(c);
        let mut m = Model {
            version, prio, preempt, interval,
            state: State::Initialize, master_interval: interval, down: None, adver: None, sent: Vec::new(),
        };
        let mut now = 1_000u64;
        for (step, inp) in inputs.into_iter().enumerate() {
            match inp {
                Input::Startup => { r.handle_startup(Instant::from_micros(now)); m.startup(now); }
                Input::Shutdown => { r.handle_shutdown(Instant::from_micros(now)); m.shutdown(); }
                Input::Adv(p, higher, i) => {
                    let i = if v3 { i } else { interval };
                    let src = if higher { HIGH } else { LOW };
                    let bytes = advert_for(r.config(), src, p, i);
                    r.handle_packet(Instant::from_micros(now), meta(src), &bytes);
                    m.adv(now, p, higher, i);
                }
                Input::Tick => {
                    if let Some(d) = m.deadline() {
                        now = now.max(d);
                    }
                    r.handle_timeout(Instant::from_micros(now));
                    m.tick(now);
                }
                Input::Wait(dt) => {
                    let limit = m.deadline().map_or(u64::MAX, |d| d.saturating_sub(now + 1));
                    now += dt.min(limit);
                    r.handle_timeout(Instant::from_micros(now));
                }
            }
            let sent = adverts_sent(&mut r);
            let _ = events(&mut r);
            let want: Vec<u8> = std::mem::take(&mut m.sent);
            prop_assert_eq!(r.state(), m.state, "step {} {:?}", step, inp);
            prop_assert_eq!(r.poll_timeout(), m.deadline().map(Instant::from_micros), "step {} {:?}", step, inp);
            prop_assert_eq!(sent, want, "step {} {:?}", step, inp);
            if m.state == State::Backup {
                prop_assert_eq!(r.master_adver_interval(), m.master_interval, "step {} {:?}", step, inp);
            }
        }
    }
}
