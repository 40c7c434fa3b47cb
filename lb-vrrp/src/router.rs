//! The per-virtual-router state machine (RFC 3768 §6, RFC 9568 §6).

use core::net::{IpAddr, Ipv6Addr};
use std::collections::VecDeque;

use crate::config::{Config, ConfigError};
use crate::discard::{Counters, DiscardLog, DiscardReason};
use crate::event::{Event, Reason, State, SyncCommand};
use crate::time::Instant;
use crate::timer::{Timer, TimerTable};
use crate::timing;
use crate::track::{self, TrackStatus};
use crate::transmit::{RxMeta, Transmit};
use crate::wire::vrrp;
use crate::wire::{self, AddressFamily, Auth, ChecksumVariant, Packet, Version};

/// An advertisement waiting to be sent, to the multicast group or to each
/// unicast peer in turn.
#[derive(Debug, Clone, Copy)]
struct PendingAdvert {
    priority: u8,
    next_peer: usize,
    /// The version to send it as (VRRPv2 only in interop mode).
    version: Version,
}

/// Gratuitous ARPs / NAs waiting to be sent: `waves` more rounds over all
/// addresses, the current one at `next`.
#[derive(Debug, Clone, Copy, Default)]
struct Announce {
    waves: u32,
    next: usize,
}

/// One VRRP virtual router (keepalived `vrrp_instance`): a sans-IO state
/// machine. It reads no clock and opens no socket; time comes in as the
/// `now` argument of every input.
///
/// Its methods come in four families:
/// * getters: [`state`](Self::state), [`priority`](Self::priority),
///   [`counters`](Self::counters), …
/// * inputs `handle_*(now, …)`: [`handle_startup`](Self::handle_startup),
///   [`handle_shutdown`](Self::handle_shutdown),
///   [`handle_packet`](Self::handle_packet),
///   [`handle_timeout`](Self::handle_timeout),
///   [`handle_track`](Self::handle_track),
///   [`handle_link`](Self::handle_link), [`handle_sync`](Self::handle_sync),
///   [`handle_router_solicitation`](Self::handle_router_solicitation);
/// * outputs `poll_*`.
///
/// After every input (and at start), call the outputs in this order until
/// each returns `None`:
///
/// 1. [`poll_event`](Self::poll_event): apply address changes first, so that
///    the virtual addresses exist before they are announced;
/// 2. [`poll_transmit`](Self::poll_transmit): send advertisements, then a
///    Router Advertisement (IPv6, when configured), then gratuitous ARPs /
///    NAs;
/// 3. [`poll_timeout`](Self::poll_timeout): arm one timer for the returned
///    instant and call [`handle_timeout`](Self::handle_timeout) when it
///    passes (calling it early is harmless).
///
/// ```
/// use core::net::{IpAddr, Ipv4Addr};
/// use lb_vrrp::{Config, Event, Instant, State, Transmit, VirtualRouter, wire::Version};
///
/// let mut cfg = Config::new(Version::V3, 51, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
/// cfg.priority = 255; // address owner: Master at once
/// cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))];
/// let mut r = VirtualRouter::new(cfg).unwrap();
/// let now = Instant::ZERO;
/// r.handle_startup(now);
/// assert_eq!(r.state(), State::Master);
/// while let Some(ev) = r.poll_event() {
///     if ev == Event::AddAddresses { /* add r.addresses() to the interface */ }
/// }
/// let mut buf = [0u8; lb_vrrp::MAX_TRANSMIT_LEN];
/// let first = r.poll_transmit(&mut buf).unwrap();
/// assert!(matches!(first, Transmit::Advertisement { priority: 255, .. }));
/// assert_eq!(r.poll_timeout(), Some(Instant::from_secs(1)));
/// ```
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    config: Config,
    family: AddressFamily,
    state: State,
    admin_up: bool,
    link_up: bool,
    group_fault: bool,
    track_status: Vec<TrackStatus>,
    priority: u8,
    track_fault: bool,
    /// Active_Adver_Interval (v3, learned from the Active router) in the
    /// packet's unit; in v2 always the configured interval.
    master_interval: u16,
    master_address: Option<IpAddr>,
    lower_priority_since: Option<Instant>,
    timers: TimerTable,
    adverts: VecDeque<PendingAdvert>,
    announce: Announce,
    /// Router Lifetime of a Router Advertisement waiting to be sent.
    ra_pending: Option<u16>,
    /// Initial advertisements (RFC 4861 MAX_INITIAL_RTR_ADVERTISEMENTS) left
    /// whose interval is capped at 16 s.
    ra_initial: u8,
    /// When the last Router Advertisement was queued (RFC 4861 rate limit).
    ra_last: Option<Instant>,
    /// State of the interval jitter generator (splitmix64).
    ra_rng: u64,
    /// v2 interop: the last router heard speaking VRRPv3, whose VRRPv2
    /// duplicates are ignored (RFC 9568 §8.4.2).
    v3_speaker: Option<IpAddr>,
    /// v2 interop: VRRPv3 advertisements from `v3_speaker` since its last
    /// VRRPv2 one.
    v3_without_v2: u32,
    events: VecDeque<Event>,
    counters: Counters,
    discard_log: DiscardLog,
}

impl VirtualRouter {
    /// A router in state Initialize. Nothing happens until
    /// [`handle_startup`](Self::handle_startup).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let track_status: Vec<TrackStatus> = config.tracked.iter().map(|t| t.initial).collect();
        let effect = track::effect(config.priority, &config.tracked, &track_status);
        let ra_rng = config.router_advert.as_ref().map_or(0, |ra| {
            let addr = match config.primary_address {
                IpAddr::V4(a) => u64::from(a.to_bits()),
                IpAddr::V6(a) => (a.to_bits() as u64) ^ ((a.to_bits() >> 64) as u64),
            };
            ra.seed ^ addr.rotate_left(8) ^ u64::from(config.vrid)
        });
        let mut config = config;
        if let Some(ra) = config.router_advert.as_mut() {
            ra.message.source_mac = Some(config.mac);
        }
        Ok(Self {
            family: config.family(),
            master_interval: config.interval,
            state: State::Initialize,
            admin_up: false,
            link_up: true,
            group_fault: false,
            track_status,
            priority: effect.priority,
            track_fault: effect.fault,
            master_address: None,
            lower_priority_since: None,
            timers: TimerTable::default(),
            adverts: VecDeque::with_capacity(4),
            announce: Announce::default(),
            ra_pending: None,
            ra_initial: 0,
            ra_last: None,
            ra_rng,
            v3_speaker: None,
            v3_without_v2: 0,
            events: VecDeque::with_capacity(8),
            counters: Counters::default(),
            discard_log: DiscardLog::default(),
            config,
        })
    }

    // ===== getters =====

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority (configured priority adjusted by tracking).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Active_Adver_Interval in the packet's unit (v2 seconds, v3 centiseconds).
    pub fn master_adver_interval(&self) -> u16 {
        self.master_interval
    }

    /// The source of the last advertisement accepted as Backup.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master_address
    }

    /// Skew_Time in microseconds, for the current priority and Active_Adver_Interval.
    pub fn skew_micros(&self) -> u64 {
        timing::skew_micros(self.config.version, self.priority, self.master_interval)
    }

    /// Master_Down_Interval in microseconds.
    pub fn master_down_micros(&self) -> u64 {
        timing::down_micros(self.config.version, self.priority, self.master_interval)
    }

    /// Whether a non-owner Master should accept packets for the virtual
    /// addresses (Accept_Mode; an owner always does).
    pub fn accept_mode(&self) -> bool {
        self.config.accept_mode || self.config.priority == 255
    }

    /// Sets the MAC announced in gratuitous ARPs and NAs ([`Config::mac`]);
    /// a driver fills it in from the interface.
    pub fn set_mac(&mut self, mac: [u8; 6]) {
        self.config.mac = mac;
        if let Some(ra) = self.config.router_advert.as_mut() {
            ra.message.source_mac = Some(mac);
        }
    }

    /// The source of our Router Advertisements: the virtual router's
    /// link-local address when the first virtual address is one (RFC 9568
    /// §5.2.9), else the primary address; `None` on an IPv4 router.
    pub fn router_advert_source(&self) -> Option<Ipv6Addr> {
        match (
            self.config.virtual_addresses.first(),
            self.config.primary_address,
        ) {
            (Some(IpAddr::V6(a)), _) if a.is_unicast_link_local() => Some(*a),
            (_, IpAddr::V6(a)) => Some(a),
            _ => None,
        }
    }

    /// The addresses owned while Master: virtual then excluded ones.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.config
            .virtual_addresses
            .iter()
            .chain(&self.config.excluded_addresses)
            .copied()
    }

    /// Whether the router holds (should hold) the addresses now.
    pub fn owns_addresses(&self) -> bool {
        self.state == State::Master
    }

    fn is_faulty(&self) -> bool {
        self.track_fault || !self.link_up || self.group_fault
    }

    /// Why we are in Fault: our own tracking / link, or only the sync group
    /// (reported as [`Reason::Sync`], so the group does not echo it back).
    fn fault_reason(&self) -> Reason {
        if self.track_fault || !self.link_up {
            Reason::Fault
        } else {
            Reason::Sync
        }
    }

    // ===== inputs =====

    /// Startup event (RFC 9568 §6.4.1), or admin up: an address owner
    /// becomes Master at once, anyone else Backup with the
    /// Master_Down_Timer set; a router with a failed weight-0 tracked object
    /// or a down link goes to Fault instead.
    pub fn handle_startup(&mut self, now: Instant) {
        self.admin_up = true;
        if self.state == State::Initialize {
            self.start(now, Reason::Startup);
        }
    }

    /// Shutdown event (RFC 9568 §6.4.2, §6.4.3), or admin down: a Master
    /// sends one advertisement with priority 0 and gives up its addresses;
    /// every state goes to Initialize.
    pub fn handle_shutdown(&mut self, now: Instant) {
        let _ = now;
        self.admin_up = false;
        match self.state {
            State::Initialize => {}
            State::Master => {
                self.leave_master();
                self.queue_advert(0);
                self.set_state(State::Initialize, Reason::Shutdown);
            }
            State::Backup | State::Fault => {
                self.timers.stop(Timer::MasterDown);
                self.set_state(State::Initialize, Reason::Shutdown);
            }
        }
    }

    /// A timer may have expired: handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in Timer::VALUES {
            if self.timers.get(t).is_some_and(|at| at <= now) {
                self.timers.stop(t);
                self.on_timer(now, t);
            }
        }
    }

    /// A tracked object (index into [`Config::tracked`]) changed. Unknown
    /// indices are ignored.
    pub fn handle_track(&mut self, now: Instant, index: usize, status: TrackStatus) {
        if let Some(s) = self.track_status.get_mut(index) {
            *s = status;
            self.retrack(now, Reason::FaultCleared);
        }
    }

    /// The interface's link went up or down; down is a fault.
    pub fn handle_link(&mut self, now: Instant, up: bool) {
        self.link_up = up;
        self.retrack(now, Reason::FaultCleared);
    }

    /// A valid Router Solicitation arrived on the interface (RFC 4861
    /// §6.2.6). As Active with [`Config::router_advert`] set, a multicast
    /// advertisement follows after a random delay of up to 0.5 s
    /// (MAX_RA_DELAY_TIME), and no sooner than 3 s after the previous one
    /// (MIN_DELAY_BETWEEN_RAS). Otherwise ignored.
    pub fn handle_router_solicitation(&mut self, now: Instant) {
        if self.state != State::Master || self.config.router_advert.is_none() {
            return;
        }
        self.counters.router_solicitations += 1;
        let delay = self.next_random() % 500_001;
        let mut at = now.add_micros(delay);
        if let Some(last) = self.ra_last {
            at = at.max(last.add_micros(3_000_000));
        }
        if self.timers.get(Timer::RouterAdvert).is_none_or(|t| at < t) {
            self.timers.set(Timer::RouterAdvert, at);
        }
    }

    /// An order from this router's sync group.
    pub fn handle_sync(&mut self, now: Instant, cmd: SyncCommand) {
        match cmd {
            SyncCommand::BecomeMaster if self.state == State::Backup => {
                self.become_master(now, Reason::Sync)
            }
            SyncCommand::BecomeBackup if self.state == State::Master => {
                self.leave_master();
                self.enter_backup(now, Reason::Sync);
            }
            SyncCommand::GroupFault(f) => {
                self.group_fault = f;
                self.retrack(now, Reason::Sync);
            }
            SyncCommand::BecomeMaster | SyncCommand::BecomeBackup => {}
        }
    }

    /// A packet arrived on the VRRP socket: `payload` is the IP payload
    /// (after the IPv4 header / as delivered by an IPv6 raw socket). It is
    /// validated in the order of RFC 9568 §7.1 (see [`DiscardReason`]) and,
    /// if valid, processed per §6.4.
    pub fn handle_packet(&mut self, now: Instant, meta: RxMeta, payload: &[u8]) {
        match self.validate(meta, payload) {
            Err(reason) => self.discard(now, reason, meta.src),
            Ok(packet) => {
                let priority = packet.priority();
                let interval = match (self.config.version, packet.version()) {
                    (Version::V2, _) => u16::from(packet.adver_int()),
                    // RFC 9568 §8.4.2: a VRRPv2 Active router's rate, seconds
                    // translated to centiseconds.
                    (Version::V3, Some(Version::V2)) => u16::from(packet.adver_int()) * 100,
                    (Version::V3, _) => packet.max_adver_int(),
                };
                if self.config.v2_interop {
                    if packet.version() == Some(Version::V3) {
                        if self.v3_speaker != Some(meta.src) {
                            self.v3_speaker = Some(meta.src);
                            self.v3_without_v2 = 0;
                        }
                        // "MAY report when a VRRPv3 Active Router is not sending
                        // VRRPv2 packets": an interop Active sends a v2 copy of
                        // each advertisement, so a run of v3 ones without one
                        // says it is not in interop mode. Once per run.
                        self.v3_without_v2 = self.v3_without_v2.saturating_add(1);
                        if self.v3_without_v2 == V3_WITHOUT_V2_REPORT {
                            self.counters.v3_speaker_without_v2 += 1;
                        }
                    } else if self.v3_speaker == Some(meta.src) {
                        // "SHOULD ignore VRRPv2 ADVERTISEMENTs from the current
                        // Active Router if it is also receiving VRRPv3 ones from it."
                        self.v3_without_v2 = 0;
                        self.counters.v2_ignored_from_v3_speaker += 1;
                        return;
                    }
                }
                self.on_advert(now, meta.src, priority, interval);
            }
        }
    }

    // ===== outputs =====

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next packet to send, written into `buf`, which should hold
    /// [`MAX_TRANSMIT_LEN`](crate::MAX_TRANSMIT_LEN)(crate::MAX_TRANSMIT_LEN) bytes (a shorter buffer that cannot hold a
    /// packet makes that packet be dropped and counted in
    /// [`Counters::transmit_errors`]).
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(pending) = self.adverts.front_mut() {
            let priority = pending.priority;
            let version = pending.version;
            let dst = if self.config.unicast_peers.is_empty() {
                self.adverts.pop_front();
                match self.family {
                    AddressFamily::Ipv4 => IpAddr::V4(wire::MULTICAST_V4),
                    AddressFamily::Ipv6 => IpAddr::V6(wire::MULTICAST_V6),
                }
            } else {
                let dst = self.config.unicast_peers[pending.next_peer];
                pending.next_peer += 1;
                if pending.next_peer == self.config.unicast_peers.len() {
                    self.adverts.pop_front();
                }
                dst
            };
            match self.emit_advert(buf, priority, dst, version) {
                Some(len) => {
                    self.counters.adverts_sent += 1;
                    if priority == 0 {
                        self.counters.priority_zero_sent += 1;
                    }
                    return Some(Transmit::Advertisement {
                        src: self.config.primary_address,
                        dst,
                        priority,
                        len,
                    });
                }
                None => self.counters.transmit_errors += 1,
            }
        }
        if let Some(lifetime) = self.ra_pending.take() {
            match self.emit_router_advert(buf, lifetime) {
                Some(t) => {
                    self.counters.router_adverts_sent += 1;
                    return Some(t);
                }
                None => self.counters.transmit_errors += 1,
            }
        }
        let total = self.config.virtual_addresses.len() + self.config.excluded_addresses.len();
        while self.announce.waves > 0 && total > 0 {
            let i = self.announce.next;
            self.announce.next += 1;
            if self.announce.next == total {
                self.announce.next = 0;
                self.announce.waves -= 1;
            }
            let addr = self.addresses().nth(i)?;
            let t = match addr {
                IpAddr::V4(address) => wire::arp::Repr {
                    mac: self.config.mac,
                    ip: address,
                }
                .emit(buf)
                .ok()
                .map(|len| Transmit::GratuitousArp { address, len }),
                IpAddr::V6(address) => {
                    let src = match self.config.primary_address {
                        IpAddr::V6(a) => a,
                        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
                    };
                    let dst = wire::ndisc::ALL_NODES;
                    wire::ndisc::Repr {
                        target: address,
                        mac: self.config.mac,
                        router: self.config.nd_router_flag,
                    }
                    .emit(buf, src, dst)
                    .ok()
                    .map(|len| Transmit::NeighborAdvertisement {
                        address,
                        src,
                        dst,
                        len,
                    })
                }
            };
            match t {
                Some(t) => {
                    self.counters.announcements_sent += 1;
                    return Some(t);
                }
                None => self.counters.transmit_errors += 1,
            }
        }
        self.announce = Announce::default();
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ===== internals =====

    fn set_state(&mut self, to: State, reason: Reason) {
        let from = self.state;
        if from != to {
            self.state = to;
            self.events
                .push_back(Event::StateChanged { from, to, reason });
        }
    }

    /// Startup (or leaving Fault): RFC 9568 §6.4.1.
    fn start(&mut self, now: Instant, reason: Reason) {
        if self.is_faulty() {
            self.set_state(State::Fault, self.fault_reason());
        } else if self.priority == 255 {
            self.become_master(now, reason);
        } else {
            // Set Active_Adver_Interval to Advertisement_Interval.
            self.master_interval = self.config.interval;
            self.enter_backup(now, reason);
        }
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason) {
        self.lower_priority_since = None;
        self.timers
            .set(Timer::MasterDown, now.add_micros(self.master_down_micros()));
        self.set_state(State::Backup, reason);
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.timers.stop(Timer::MasterDown);
        self.events.push_back(Event::AddAddresses);
        self.set_state(State::Master, reason);
        self.counters.became_master += 1;
        self.master_address = None;
        // Send an ADVERTISEMENT, announce every address, set Adver_Timer.
        self.queue_advert(self.priority);
        self.announce = Announce {
            waves: self.config.garp.master_repeat,
            next: 0,
        };
        if !self.config.garp.master_delay.is_zero() {
            self.timers
                .set(Timer::GarpDelay, now + self.config.garp.master_delay);
        }
        if let Some(r) = self.config.garp.refresh.filter(|r| !r.is_zero()) {
            self.timers.set(Timer::GarpRefresh, now + r);
        }
        self.timers
            .set(Timer::Advert, now.add_micros(self.advert_micros()));
        // RFC 9568 §6.4.3: the Active router sends Router Advertisements
        // (RFC 4861 §6.2.4: the first at once, up to three initial ones).
        if self.config.router_advert.is_some() {
            self.ra_initial = MAX_INITIAL_RTR_ADVERTISEMENTS;
            self.queue_router_advert(now);
        }
    }

    /// Cancels what only a Master does and withdraws the addresses.
    fn leave_master(&mut self) {
        self.timers.stop(Timer::Advert);
        self.timers.stop(Timer::GarpDelay);
        self.timers.stop(Timer::GarpRefresh);
        self.timers.stop(Timer::RouterAdvert);
        self.announce = Announce::default();
        // RFC 9568 §6.4.2: a Backup MUST NOT send Router Advertisements. A
        // final zero-lifetime one (RFC 4861 §6.2.5) only when they came from
        // this node's own address: the virtual link-local router lives on at
        // the next Active, and a zero lifetime would withdraw it from hosts.
        self.ra_pending = None;
        if self.config.router_advert.is_some()
            && self.router_advert_source().map(IpAddr::V6) == Some(self.config.primary_address)
        {
            self.ra_pending = Some(0);
        }
        self.events.push_back(Event::RemoveAddresses);
    }

    /// Queues an advertisement with the configured lifetime and arms the
    /// timer for the next one.
    fn queue_router_advert(&mut self, now: Instant) {
        let Some(ra) = &self.config.router_advert else {
            return;
        };
        self.ra_pending = Some(ra.message.router_lifetime);
        self.ra_last = Some(now);
        let min = duration_micros(ra.min_interval);
        let max = duration_micros(ra.max_interval).max(min);
        let mut next = min + self.next_random() % (max - min + 1);
        // The first MAX_INITIAL_RTR_ADVERTISEMENTS (this one included) come
        // at most 16 s apart.
        self.ra_initial = self.ra_initial.saturating_sub(1);
        if self.ra_initial > 0 {
            next = next.min(MAX_INITIAL_RTR_ADVERT_INTERVAL_US);
        }
        self.timers.set(Timer::RouterAdvert, now.add_micros(next));
    }

    /// splitmix64 over the seeded state: the interval jitter RFC 4861
    /// §6.2.4 asks for, deterministic for a given seed.
    fn next_random(&mut self) -> u64 {
        self.ra_rng = self.ra_rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.ra_rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Writes a Router Advertisement with `lifetime`.
    fn emit_router_advert(&mut self, buf: &mut [u8], lifetime: u16) -> Option<Transmit> {
        let src = self.router_advert_source()?;
        let dst = wire::ndisc::ALL_NODES;
        let msg = &mut self.config.router_advert.as_mut()?.message;
        let configured = msg.router_lifetime;
        msg.router_lifetime = lifetime;
        let r = msg.emit(buf, src, dst);
        msg.router_lifetime = configured;
        let len = r.ok()?;
        Some(Transmit::RouterAdvertisement {
            src,
            dst,
            lifetime,
            len,
        })
    }

    fn advert_micros(&self) -> u64 {
        timing::interval_micros(self.config.version, self.config.interval)
    }

    fn queue_advert(&mut self, priority: u8) {
        self.adverts.push_back(PendingAdvert {
            priority,
            next_peer: 0,
            version: self.config.version,
        });
        if self.config.v2_interop {
            // RFC 9568 §8.4.2: send both VRRPv2 and VRRPv3 advertisements.
            self.adverts.push_back(PendingAdvert {
                priority,
                next_peer: 0,
                version: Version::V2,
            });
        }
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match (t, self.state) {
            // RFC 9568 §6.4.2: Active_Down_Timer fires -> become Active.
            (Timer::MasterDown, State::Backup) => self.become_master(now, Reason::MasterDown),
            // RFC 9568 §6.4.3: Adver_Timer fires -> advertise, reset.
            (Timer::Advert, State::Master) => {
                self.queue_advert(self.priority);
                self.timers
                    .set(Timer::Advert, now.add_micros(self.advert_micros()));
            }
            (Timer::GarpDelay, State::Master) => {
                self.announce = Announce {
                    waves: self.config.garp.master_repeat,
                    next: 0,
                };
            }
            (Timer::RouterAdvert, State::Master) => self.queue_router_advert(now),
            (Timer::GarpRefresh, State::Master) => {
                self.announce = Announce {
                    waves: self.config.garp.refresh_repeat,
                    next: 0,
                };
                if let Some(r) = self.config.garp.refresh {
                    self.timers.set(Timer::GarpRefresh, now + r);
                }
            }
            _ => {}
        }
    }

    /// Recomputes priority and fault after a tracking, link or group change;
    /// `cleared` is the reason reported if the router leaves Fault.
    fn retrack(&mut self, now: Instant, cleared: Reason) {
        let effect = track::effect(
            self.config.priority,
            &self.config.tracked,
            &self.track_status,
        );
        self.track_fault = effect.fault;
        if effect.priority != self.priority {
            let from = self.priority;
            self.priority = effect.priority;
            self.events.push_back(Event::PriorityChanged {
                from,
                to: effect.priority,
            });
            if self.state == State::Master {
                // Tell the Backups at once, so a preempting one need not wait an interval.
                self.queue_advert(self.priority);
            }
        }
        match (self.state, self.is_faulty()) {
            (State::Master, true) => {
                // Hand over quickly, as on shutdown.
                self.leave_master();
                self.queue_advert(0);
                self.set_state(State::Fault, self.fault_reason());
            }
            (State::Backup, true) => {
                self.timers.stop(Timer::MasterDown);
                self.set_state(State::Fault, self.fault_reason());
            }
            (State::Fault, false) if self.admin_up => self.start(now, cleared),
            _ => {}
        }
    }

    fn discard(&mut self, now: Instant, reason: DiscardReason, src: IpAddr) {
        self.counters.count(reason);
        if let Some(suppressed) =
            self.discard_log
                .admit(now, reason, self.config.discard_log_interval)
        {
            self.events.push_back(Event::Discarded {
                reason,
                src,
                suppressed,
            });
        }
    }

    /// RFC 9568 §7.1 / RFC 3768 §7.1 receive checks, in order.
    fn validate<'a>(
        &mut self,
        meta: RxMeta,
        payload: &'a [u8],
    ) -> Result<Packet<&'a [u8]>, DiscardReason> {
        let cfg = &self.config;
        let multicast = meta.dst.is_multicast();
        if AddressFamily::of(meta.src) != self.family || AddressFamily::of(meta.dst) != self.family
        {
            return Err(DiscardReason::FamilyMismatch);
        }
        if meta.ttl != wire::TTL && (multicast || cfg.check_ttl_unicast) {
            return Err(DiscardReason::TtlNot255);
        }
        let packet = Packet::new_checked(payload, self.family).map_err(|e| match e {
            wire::Error::Truncated { .. } => DiscardReason::Truncated,
            _ => DiscardReason::UnknownVersion,
        })?;
        let version = packet.version();
        let interop_v2 = cfg.v2_interop && version == Some(Version::V2);
        if version != Some(cfg.version) && !interop_v2 {
            return Err(DiscardReason::VersionMismatch);
        }
        if packet.kind() != vrrp::TYPE_ADVERTISEMENT {
            return Err(DiscardReason::BadType);
        }
        match packet.verify_checksum(meta.src, meta.dst) {
            None => return Err(DiscardReason::BadChecksum),
            Some(ChecksumVariant::MessageOnly) if cfg.version == Version::V3 => {
                self.counters.checksum_message_only += 1;
            }
            Some(_) => {}
        }
        if packet.vrid() != cfg.vrid {
            return Err(DiscardReason::VridMismatch);
        }
        if cfg.version == Version::V2 || interop_v2 {
            // RFC 3768 §7.1: MUST perform the authentication of the configured Auth Type.
            match (packet.auth_type(), cfg.auth) {
                (2, _) => return Err(DiscardReason::AuthAh),
                (t, a) if t != a.auth_type() => return Err(DiscardReason::AuthTypeMismatch),
                (_, Auth::SimpleText(pw)) if !constant_time_eq(&packet.auth_data(), &pw) => {
                    return Err(DiscardReason::AuthMismatch);
                }
                _ => {}
            }
        }
        let interval = match (cfg.version, interop_v2) {
            (Version::V2, _) => u16::from(packet.adver_int()),
            (Version::V3, true) => u16::from(packet.adver_int()) * 100,
            (Version::V3, false) => packet.max_adver_int(),
        };
        if interval == 0 {
            return Err(DiscardReason::IntervalZero);
        }
        if interval != cfg.interval {
            match cfg.version {
                // RFC 3768 §7.1: MUST verify ... else discard.
                Version::V2 => return Err(DiscardReason::IntervalMismatch),
                // RFC 9568 §7.1: SHOULD log; the Backup adopts the interval.
                Version::V3 => self.counters.interval_mismatch_v3 += 1,
            }
        }
        if packet.count() == 0 {
            return Err(DiscardReason::AddressCountZero);
        }
        if let IpAddr::V6(src) = meta.src
            && multicast
            && !src.is_unicast_link_local()
        {
            return Err(DiscardReason::SourceNotLinkLocal);
        }
        if meta.src == cfg.primary_address {
            return Err(DiscardReason::FromSelf);
        }
        if !cfg.unicast_peers.is_empty()
            && cfg.check_unicast_src
            && !cfg.unicast_peers.contains(&meta.src)
        {
            return Err(DiscardReason::UnicastSourceNotAllowed);
        }
        if cfg.check_address_list && packet.priority() != 255 {
            let n = usize::from(packet.count());
            let same = n == cfg.virtual_addresses.len()
                && (0..n).all(|i| cfg.virtual_addresses.contains(&packet.address(i)));
            if !same {
                return Err(DiscardReason::AddressListMismatch);
            }
        }
        // RFC 3768 §7.1: "... and the local router is not the IP address owner".
        // RFC 9568 (erratum 8298) drops that clause: a v3 owner processes adverts.
        if cfg.version == Version::V2 && self.priority == 255 {
            return Err(DiscardReason::LocalIsOwner);
        }
        Ok(packet)
    }

    /// RFC 9568 §6.4.2 / §6.4.3 (RFC 3768 §6.4.2 / §6.4.3 for v2) on a valid advertisement.
    fn on_advert(&mut self, now: Instant, src: IpAddr, priority: u8, interval: u16) {
        self.counters.adverts_received += 1;
        if priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        let v3 = self.config.version == Version::V3;
        match self.state {
            State::Backup => {
                if priority == 0 {
                    // "Set the Active_Down_Timer to Skew_Time."
                    self.timers
                        .set(Timer::MasterDown, now.add_micros(self.skew_micros()));
                    return;
                }
                let lower = priority < self.priority;
                let mut hold = !self.config.preempt || !lower;
                if self.config.preempt && lower && !self.config.preempt_delay.is_zero() {
                    // keepalived preempt_delay: keep following the lower-priority Master
                    // until the delay has passed since we first saw it.
                    let since = *self.lower_priority_since.get_or_insert(now);
                    hold = now < since + self.config.preempt_delay;
                }
                if !lower {
                    self.lower_priority_since = None;
                }
                if hold {
                    if v3 {
                        // "Set Active_Adver_Interval to Max Advertise Interval contained in the ADVERTISEMENT."
                        self.master_interval = interval;
                    }
                    self.master_address = Some(src);
                    // "Recompute the Skew_Time and Active_Down_Interval; reset the Active_Down_Timer."
                    self.timers
                        .set(Timer::MasterDown, now.add_micros(self.master_down_micros()));
                }
                // else: preempt and lower priority: discard (the timer runs out).
            }
            State::Master => {
                if priority == 0 {
                    // "Send an ADVERTISEMENT; reset the Adver_Timer to Advertisement_Interval."
                    self.queue_advert(self.priority);
                    self.timers
                        .set(Timer::Advert, now.add_micros(self.advert_micros()));
                    return;
                }
                let wins = priority > self.priority
                    || (priority == self.priority
                        && addr_greater(src, self.config.primary_address));
                if wins {
                    // Cancel Adver_Timer, adopt the interval (v3), set Active_Down_Timer, go Backup.
                    self.leave_master();
                    if v3 {
                        self.master_interval = interval;
                    }
                    self.master_address = Some(src);
                    self.enter_backup(now, Reason::HigherPriority);
                } else if v3 || self.config.v2_answer_lower_priority {
                    // RFC 9568 §6.4.3: discard and send an ADVERTISEMENT immediately.
                    self.queue_advert(self.priority);
                }
            }
            State::Initialize | State::Fault => self.counters.ignored_not_running += 1,
        }
    }

    /// Writes an advertisement without allocating.
    fn emit_advert(
        &self,
        buf: &mut [u8],
        priority: u8,
        dst: IpAddr,
        version: Version,
    ) -> Option<usize> {
        let cfg = &self.config;
        let count = cfg.virtual_addresses.len() as u8;
        let len = vrrp::message_len(version, self.family, count)?;
        let mut p = Packet::new_unchecked(buf.get_mut(..len)?, self.family);
        p.set_version_kind(version.number(), vrrp::TYPE_ADVERTISEMENT);
        p.set_vrid(cfg.vrid);
        p.set_priority(priority);
        p.set_count(count);
        match (cfg.version, version) {
            (Version::V2, _) => {
                p.set_auth_type(cfg.auth.auth_type());
                p.set_adver_int(cfg.interval as u8);
            }
            // v2 interop: centiseconds to whole seconds (validated: a multiple of 100).
            (Version::V3, Version::V2) => {
                p.set_auth_type(0);
                p.set_adver_int((cfg.interval / 100).clamp(1, 255) as u8);
            }
            (Version::V3, Version::V3) => p.set_max_adver_int(cfg.interval),
        }
        for (i, a) in cfg.virtual_addresses.iter().enumerate() {
            p.set_address(i, *a);
        }
        if version == Version::V2 {
            let data = match cfg.auth {
                Auth::SimpleText(d) => d,
                _ => [0; 8],
            };
            p.set_auth_data(data);
        }
        p.fill_checksum(cfg.primary_address, dst, cfg.checksum_mode)
            .ok()?;
        Some(len)
    }
}

/// RFC 4861 §10: MAX_INITIAL_RTR_ADVERTISEMENTS.
const MAX_INITIAL_RTR_ADVERTISEMENTS: u8 = 3;
/// v2 interop: VRRPv3 advertisements in a row without a VRRPv2 copy that
/// [`Counters::v3_speaker_without_v2`] reports (one lost copy is not enough).
const V3_WITHOUT_V2_REPORT: u32 = 3;
/// RFC 4861 §10: MAX_INITIAL_RTR_ADVERT_INTERVAL, 16 s.
const MAX_INITIAL_RTR_ADVERT_INTERVAL_US: u64 = 16_000_000;

fn duration_micros(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// "The primary IPvX address of the sender is greater than the local
/// primary IPvX address", compared as unsigned integers in network byte
/// order (RFC 9568 §6.4.3): for equal-length octet strings that is the
/// lexicographic order.
pub(crate) fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}

/// Compares without an early exit, so timing does not reveal how much of a
/// password matched (keepalived 2.0.10 made the same change).
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
