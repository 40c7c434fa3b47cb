//! The forwarder: services, destinations and the per-packet path.
//!
//! ```text
//!  frame ──parse──► conn lookup (client side) ──hit──► state, timer ──► DR | NAT | TUN ──► Verdict
//!                     │ miss
//!                     ├─► conn lookup (real-server side, NAT replies) ──hit──► un-NAT ──► Verdict
//!                     │ miss
//!                     └─► fwmark rules ─► service ─► persistence template ─► Scheduler::pick ─► new conn
//! ```
//!
//! Fwmark rules, the service lookup and persistence templates are
//! `lb-sched`'s ([`lb_sched::fwmark`], [`lb_sched::service_table`],
//! [`lb_sched::persist`]), so templates follow the kernel's
//! `ip_vs_sched_persist` exactly: keyed per service port (or per fwmark),
//! invalidated but kept until they expire when their destination goes, and
//! re-armed 60 s at a time while they still control connections.
//!
//! Sans-IO: [`Forwarder::process`] takes the time and a frame and returns a
//! [`Verdict`]; [`Forwarder::handle_timeout`] expires connections. Call
//! order: configure (ports, neighbours, services, destinations), then any
//! mix of `process` and `handle_timeout` (at least every 256 ms), with
//! configuration changes in between. Nothing on the packet path allocates.

use crate::addr::{Addr, Mac};
use crate::classify::{Classifier, ServiceKey};
use crate::conntab::{ConnId, ConnTable, NO_TEMPLATE, NewConn, flags};
use crate::error::{ConfigError, ParseError};
use crate::icmp::{self, IcmpError};
use crate::parse::{FlowKey, Parsed, Quoted, parse};
use crate::rewrite;
use crate::sched::{ConnCounts, ConnEvent, ConnKind, DestIndex, Scheduler};
use crate::state::{Dir, State, Timeouts, tcp_next};
use crate::tunnel::{self, TunnelKind};
use crate::wire::{self, ipv4, ipv6, proto, tcp_flags};
use lb_sched::fwmark::Rule;
use lb_sched::hashkey::HashKey;
use lb_sched::persist::{
    MAX_TIMEOUT_MS, Netmask, PersistConfig, PersistDests, PersistService, PersistTable, TemplateId,
    TemplateKey,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Index of an egress interface ("port") the driver owns.
pub type PortId = u8;

/// Global settings (the IPVS sysctls that matter here).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Connection table capacity. Default 1 Mi.
    pub capacity: usize,
    /// Persistence templates per address family held without growing the
    /// template table (growth allocates, on the packet path). Default 64 Ki.
    pub template_capacity: usize,
    /// State timeouts (`ipvsadm --set`). Default: the kernel's.
    pub timeouts: Timeouts,
    /// `expire_nodest_conn`: a packet for a connection whose destination
    /// was removed expires it and is scheduled afresh (also, a new TCP SYN
    /// on a connection to a weight-0 destination is rescheduled); without
    /// it such packets are dropped until the connection times out. Removing
    /// a destination then also expires its connections at once. Default off,
    /// as in the kernel.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: a persistence template pointing at a
    /// weight-0 destination is invalidated when next used. Default off.
    pub expire_quiescent_template: bool,
    /// Hash seed of the connection table; draw it at random.
    pub hash_seed: u64,
    /// `conn_reuse_mode`: bit 0 reschedules a SYN that reuses the ports of
    /// a connection in TIME_WAIT or CLOSE; bit 1 also one in FIN_WAIT
    /// whose replies bypass the director (DR/TUN). Default 1, as in the
    /// kernel; 0 keeps such SYNs on the old destination.
    pub conn_reuse_mode: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            capacity: 1 << 20,
            template_capacity: 1 << 16,
            timeouts: Timeouts::default(),
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            hash_seed: 0x5eed_1b05_0000_0001,
            conn_reuse_mode: 1,
        }
    }
}

/// Persistence (`ipvsadm -p timeout -M netmask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Template lifetime (ipvsadm's default 300 s; 1 ms to 2^31 ms).
    pub timeout: Duration,
    /// IPv4 client netmask (default /32).
    pub netmask: u32,
    /// IPv6 client prefix length (default 128).
    pub prefix6: u8,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            netmask: u32::MAX,
            prefix6: 128,
        }
    }
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// What packets it takes.
    pub key: ServiceKey,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`--ops`): each UDP datagram is scheduled on
    /// its own and no connection is kept.
    pub one_packet: bool,
}

/// Forwarding method of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Direct routing (`-g`): rewrite the destination MAC only.
    Dr,
    /// Masquerading (`-m`): rewrite the destination to the real server,
    /// and the source of replies back to the virtual service.
    Nat,
    /// Tunnelling (`-i`) with the given encapsulation.
    Tunnel(TunnelKind),
}

/// A real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConfig {
    /// Its address.
    pub addr: IpAddr,
    /// Its port (NAT; 0 means the virtual port).
    pub port: u16,
    /// How packets reach it.
    pub method: Method,
    /// Scheduling weight (0: quiesced).
    pub weight: u32,
}

/// An egress interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// Its MAC address (source of frames sent there).
    pub mac: Mac,
    /// Its MTU (IP bytes).
    pub mtu: u16,
    /// Its IPv4 address (tunnel source), if any.
    pub v4: Option<Addr>,
    /// Its IPv6 address (tunnel source), if any.
    pub v6: Option<Addr>,
}

/// Which buffer holds the frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// The input frame, rewritten in place.
    Frame,
    /// The `out` buffer.
    Out,
}

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its connection's destination is gone (and `expire_nodest_conn` is off).
    DestUnavailable,
    /// No link-layer address for the next hop.
    NoNeighbour,
    /// The connection table is full.
    TableFull,
    /// Too big for the egress MTU and not allowed to be fragmented here.
    TooBig,
    /// The `out` buffer is too small.
    OutTooSmall,
}

/// What to do with a frame.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send `len` bytes of `buf` on `port`.
    Transmit {
        /// Egress port.
        port: PortId,
        /// Which buffer.
        buf: Buf,
        /// Frame length.
        len: usize,
    },
    /// Not for the forwarder: leave it to the host.
    Pass,
    /// Drop it.
    Drop(DropReason),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames sent on (including ICMP errors we originate).
    pub forwarded: u64,
    /// Frames left to the host.
    pub passed: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames that did not parse (passed on to the host).
    pub parse_errors: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Connections expired or removed.
    pub conns_expired: u64,
    /// New flows with no destination available.
    pub no_dest: u64,
    /// ICMP errors originated.
    pub icmp_sent: u64,
}

#[derive(Debug)]
struct Service<S> {
    cfg: ServiceConfig,
    sched: S,
}

#[derive(Debug, Clone, Copy)]
struct Dest {
    cfg: DestConfig,
    addr: Addr,
    svc: u16,
    available: bool,
    counts: ConnCounts,
    /// Connections and templates pointing here (the slot is reused at 0).
    refs: u32,
    /// Its next hop, resolved when neighbours change (not per packet).
    hop: Option<(Mac, PortId)>,
}

/// A fast hasher for the neighbour map (addresses are not attacker-chosen
/// there: only configured next hops and clients' routers are looked up).
#[derive(Default, Clone, Copy, Debug)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            let x = (self.0 ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            self.0 = x ^ (x >> 29);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type NeighbourMap = HashMap<Addr, (Mac, PortId), std::hash::BuildHasherDefault<AddrHasher>>;

/// A connection as [`Forwarder::conns`] lists it (`ipvsadm -Lcn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// IP protocol.
    pub proto: u8,
    /// Client address and port.
    pub client: (Addr, u16),
    /// Virtual address and port.
    pub virt: (Addr, u16),
    /// Destination.
    pub dest: DestIndex,
    /// State.
    pub state: State,
    /// Controlled by a persistence template.
    pub persistent: bool,
    /// Time left.
    pub expires_in: Duration,
}

/// The forwarder. See the module docs.
#[derive(Debug)]
pub struct Forwarder<S> {
    cfg: Config,
    epoch: Instant,
    conns: ConnTable,
    persist: PersistTable<DestIndex>,
    /// Milliseconds since `epoch` at the last `process` / `handle_timeout`
    /// (the template table's clock).
    now_ms64: u64,
    classifier: Classifier,
    services: Vec<Option<Service<S>>>,
    dests: Vec<Option<Dest>>,
    ports: Vec<Port>,
    neighbours: NeighbourMap,
    gateways: [Option<(Mac, PortId)>; 2],
    stats: Stats,
    ip_id: u16,
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(i32::MAX as u128) as u32
}

impl<S: Scheduler> Forwarder<S> {
    /// A forwarder with no services, whose clock starts at `now`.
    ///
    /// # Examples
    ///
    /// A NAT service with two real servers, scheduled round-robin:
    ///
    /// ```
    /// use lb_forward::forwarder::*;
    /// use lb_forward::{classify::ServiceKey, sched::RoundRobin, parse::parse};
    /// use std::time::Instant;
    /// let now = Instant::now();
    /// let mut fwd = Forwarder::new(Config::default(), now);
    /// let port = fwd.add_port(Port { mac: [2, 0, 0, 0, 0, 1], mtu: 1500, v4: None, v6: None });
    /// fwd.set_neighbour("172.16.0.2".parse().unwrap(), [2, 0, 0, 0, 0, 2], port);
    /// fwd.set_neighbour("172.16.0.3".parse().unwrap(), [2, 0, 0, 0, 0, 3], port);
    /// let vip = "10.0.0.100".parse::<std::net::IpAddr>().unwrap().into();
    /// let svc = fwd
    ///     .add_service(ServiceConfig { key: ServiceKey::Addr { proto: 17, addr: vip, port: 53 },
    ///         persistence: None, one_packet: false }, RoundRobin::default())
    ///     .unwrap();
    /// for rip in ["172.16.0.2", "172.16.0.3"] {
    ///     fwd.add_dest(svc, DestConfig { addr: rip.parse().unwrap(), port: 5353, method: Method::Nat, weight: 1 })
    ///         .unwrap();
    /// }
    /// let mut frame = lb_forward::testutil::udp4_frame([10, 0, 0, 2], 4000, [10, 0, 0, 100], 53, b"q");
    /// let mut out = [0u8; 2048];
    /// let v = fwd.process(now, &mut frame, &mut out);
    /// assert_eq!(v, Verdict::Transmit { port, buf: Buf::Frame, len: frame.len() });
    /// let p = parse(&frame).unwrap();
    /// assert_eq!((p.flow.dst.to_string(), p.flow.dport), ("172.16.0.2".to_string(), 5353));
    /// ```
    #[must_use]
    pub fn new(cfg: Config, now: Instant) -> Self {
        let conns = ConnTable::new(cfg.capacity, 0, cfg.hash_seed);
        let key = HashKey::new(
            cfg.hash_seed,
            cfg.hash_seed.rotate_left(32) ^ 0x6c62_2d66_7764,
        );
        let mut pc = PersistConfig::new(key);
        pc.expire_quiescent_template = cfg.expire_quiescent_template;
        let persist = PersistTable::with_capacity(pc, cfg.template_capacity, cfg.template_capacity);
        Self {
            cfg,
            epoch: now,
            conns,
            persist,
            now_ms64: 0,
            classifier: Classifier::new(key),
            services: Vec::new(),
            dests: Vec::new(),
            ports: Vec::new(),
            neighbours: NeighbourMap::default(),
            gateways: [None, None],
            stats: Stats::default(),
            ip_id: 1,
        }
    }

    fn now_ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }

    /// [`Self::now_ms`], also moving the template table's 64-bit clock on
    /// (extended from the wrapping 32-bit one, so no second division).
    fn tick(&mut self, now: Instant) -> u32 {
        let t = self.now_ms(now);
        let d = t.wrapping_sub(self.now_ms64 as u32);
        if d < 1 << 31 {
            self.now_ms64 += u64::from(d);
        }
        t
    }

    /// Adds an egress interface.
    pub fn add_port(&mut self, port: Port) -> PortId {
        self.ports.push(port);
        (self.ports.len() - 1) as PortId
    }

    /// Records the link-layer address of a next hop (a real server for
    /// DR, or a client / router on a directly connected network).
    pub fn set_neighbour(&mut self, addr: IpAddr, mac: Mac, port: PortId) {
        self.neighbours.insert(addr.into(), (mac, port));
        self.resolve_hops();
    }

    fn resolve_hops(&mut self) {
        for i in 0..self.dests.len() {
            if let Some(d) = self.dests[i] {
                let hop = self.next_hop(&d.addr);
                if let Some(d) = self.dests[i].as_mut() {
                    d.hop = hop;
                }
            }
        }
    }

    /// The next hop recorded for `addr` (exact entry, else the family's
    /// gateway).
    #[must_use]
    pub fn neighbour(&self, addr: IpAddr) -> Option<(Mac, PortId)> {
        self.next_hop(&addr.into())
    }

    /// Sets the default router of a family (used when a next hop has no
    /// neighbour entry).
    pub fn set_gateway(&mut self, v6: bool, mac: Mac, port: PortId) {
        self.gateways[usize::from(v6)] = Some((mac, port));
        self.resolve_hops();
    }

    /// Appends a firewall-mark rule (`lb-sched`'s; the first match wins).
    pub fn add_fwmark_rule(&mut self, rule: Rule) -> Result<(), ConfigError> {
        Ok(self.classifier.add_rule(rule)?)
    }

    /// Removes every firewall-mark rule, to replace the set (a reload):
    /// tracked connections keep their destination; new flows are
    /// classified by the rules added afterwards.
    pub fn clear_fwmark_rules(&mut self) {
        self.classifier.clear_rules();
    }

    /// The firewall-mark rules, in order.
    #[must_use]
    pub fn fwmark_rules(&self) -> &[Rule] {
        self.classifier.rules()
    }

    /// The timeouts, to change them (`ipvsadm --set`); new values apply
    /// from each connection's next packet.
    pub fn timeouts_mut(&mut self) -> &mut Timeouts {
        &mut self.cfg.timeouts
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Number of live connections plus templates.
    #[must_use]
    pub fn conn_count(&self) -> usize {
        self.conns.len() + self.persist.len()
    }

    /// Number of persistence templates, invalidated ones included.
    #[must_use]
    pub fn template_count(&self) -> usize {
        self.persist.len()
    }

    /// A destination's connection counters.
    #[must_use]
    pub fn dest_counts(&self, d: DestIndex) -> Option<ConnCounts> {
        self.dests.get(usize::from(d))?.as_ref().map(|d| d.counts)
    }

    /// The scheduler of a service.
    #[must_use]
    pub fn scheduler(&self, svc: u16) -> Option<&S> {
        self.services
            .get(usize::from(svc))?
            .as_ref()
            .map(|s| &s.sched)
    }

    /// Adds a virtual service scheduled by `sched`.
    pub fn add_service(&mut self, cfg: ServiceConfig, sched: S) -> Result<u16, ConfigError> {
        if let ServiceKey::Addr { port: 0, .. } = cfg.key
            && cfg.persistence.is_none()
        {
            return Err(ConfigError::PortZeroNotPersistent);
        }
        if let ServiceKey::Addr { proto, .. } = cfg.key
            && proto != proto::TCP
            && proto != proto::UDP
        {
            return Err(ConfigError::Invalid("service protocol (tcp or udp)"));
        }
        if let Some(p) = cfg.persistence
            && !(1..=u128::from(MAX_TIMEOUT_MS)).contains(&p.timeout.as_millis())
        {
            return Err(ConfigError::Invalid(
                "persistence timeout (1 ms to 2^31 ms)",
            ));
        }
        let idx = self
            .services
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.services.len());
        let id = u16::try_from(idx).map_err(|_| ConfigError::Full("services"))?;
        if !self.classifier.insert(cfg.key, id) {
            return Err(ConfigError::ServiceExists);
        }
        let s = Service { cfg, sched };
        if idx == self.services.len() {
            self.services.push(Some(s));
        } else {
            self.services[idx] = Some(s);
        }
        Ok(id)
    }

    /// Removes a service and its destinations (their connections stay
    /// until they expire, as in IPVS, unless `expire_nodest_conn`).
    pub fn remove_service(&mut self, svc: u16) -> Result<(), ConfigError> {
        let s = self
            .services
            .get_mut(usize::from(svc))
            .and_then(Option::take)
            .ok_or(ConfigError::NoService(svc))?;
        self.classifier.remove(s.cfg.key);
        let ds: Vec<u16> = (0..self.dests.len() as u16)
            .filter(
                |&d| matches!(self.dests[usize::from(d)], Some(x) if x.svc == svc && x.available),
            )
            .collect();
        for d in ds {
            self.retire_dest(d);
        }
        Ok(())
    }

    /// Adds a real server to a service.
    pub fn add_dest(&mut self, svc: u16, cfg: DestConfig) -> Result<DestIndex, ConfigError> {
        let s = self
            .services
            .get(usize::from(svc))
            .and_then(Option::as_ref)
            .ok_or(ConfigError::NoService(svc))?;
        let addr = Addr::from(cfg.addr);
        if let ServiceKey::Addr { addr: vaddr, .. } = s.cfg.key
            && !matches!(cfg.method, Method::Tunnel(_))
            && vaddr.is_v4() != addr.is_v4()
        {
            return Err(ConfigError::MixedFamily);
        }
        let idx = self
            .dests
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.dests.len());
        let id = DestIndex::try_from(idx).map_err(|_| ConfigError::Full("destinations"))?;
        let hop = self.next_hop(&addr);
        let d = Dest {
            cfg,
            addr,
            svc,
            available: true,
            counts: ConnCounts::default(),
            refs: 0,
            hop,
        };
        if idx == self.dests.len() {
            self.dests.push(Some(d));
        } else {
            self.dests[idx] = Some(d);
        }
        self.conns.set_dest(id, addr, cfg.port);
        if let Some(s) = self.services[usize::from(svc)].as_mut() {
            s.sched.dest_changed(
                id,
                std::net::SocketAddr::new(cfg.addr, cfg.port),
                Some(cfg.weight),
            );
        }
        Ok(id)
    }

    /// Changes a destination's weight; 0 drains it (existing connections
    /// carry on, new ones go elsewhere).
    pub fn set_weight(&mut self, d: DestIndex, weight: u32) -> Result<(), ConfigError> {
        let dest = self
            .dests
            .get_mut(usize::from(d))
            .and_then(Option::as_mut)
            .filter(|x| x.available);
        let dest = dest.ok_or(ConfigError::NoDest(d))?;
        dest.cfg.weight = weight;
        let (svc, sa) = (
            dest.svc,
            std::net::SocketAddr::new(dest.cfg.addr, dest.cfg.port),
        );
        if let Some(s) = self.services[usize::from(svc)].as_mut() {
            s.sched.dest_changed(d, sa, Some(weight));
        }
        Ok(())
    }

    /// Removes a destination. Its connections follow `expire_nodest_conn`
    /// (see [`Config`]).
    pub fn remove_dest(&mut self, d: DestIndex) -> Result<(), ConfigError> {
        match self.dests.get(usize::from(d)) {
            Some(Some(x)) if x.available => {}
            _ => return Err(ConfigError::NoDest(d)),
        }
        self.retire_dest(d);
        Ok(())
    }

    fn retire_dest(&mut self, d: DestIndex) {
        let Some(dest) = self.dests[usize::from(d)].as_mut() else {
            return;
        };
        dest.available = false;
        let (svc, sa) = (
            dest.svc,
            std::net::SocketAddr::new(dest.cfg.addr, dest.cfg.port),
        );
        if let Some(s) = self.services[usize::from(svc)].as_mut() {
            s.sched.dest_changed(d, sa, None);
        }
        if self.cfg.expire_nodest_conn {
            // As ip_vs_expire_nodest_conn_flush: drop its connections now.
            let ids: Vec<ConnId> = self
                .conns
                .ids()
                .filter(|&i| self.conns.get(i).dest == d)
                .collect();
            for id in ids {
                self.drop_conn(id);
            }
        }
        self.maybe_free_dest(d);
    }

    fn maybe_free_dest(&mut self, d: DestIndex) {
        free_if_unused(&mut self.dests, d);
    }

    /// Lists connections (walks the table; templates are counted by
    /// [`Self::template_count`]).
    pub fn conns(&self, now: Instant) -> impl Iterator<Item = ConnInfo> + '_ {
        let now_ms = self.now_ms(now);
        self.conns.ids().map(move |id| {
            let e = self.conns.get(id);
            ConnInfo {
                proto: e.proto,
                client: (e.caddr, e.cport),
                virt: (self.conns.vaddr(e), e.vport),
                dest: e.dest,
                state: State::from_u8(e.state),
                persistent: e.template != NO_TEMPLATE,
                expires_in: Duration::from_millis(u64::from(
                    e.expires.wrapping_sub(now_ms).min(i32::MAX as u32),
                )),
            }
        })
    }

    /// Expires connections whose time has come. Call at least every 256 ms.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now_ms = self.tick(now);
        while let Some(id) = self.conns.next_expired(now_ms) {
            self.drop_conn(id);
        }
        // Templates: lb-sched's wheel (ip_vs_conn_expire: one that still
        // controls connections is kept and re-armed 60 s later).
        let mut view = DestsView {
            dests: &mut self.dests,
            services: &mut self.services,
        };
        self.persist.advance(self.now_ms64, &mut view);
    }

    /// Releases a template's hold of one connection (`ip_vs_control_del`).
    fn release_template(&mut self, raw: u32) {
        if raw == NO_TEMPLATE {
            return;
        }
        let mut view = DestsView {
            dests: &mut self.dests,
            services: &mut self.services,
        };
        // Every controlled connection releases exactly once, so this
        // cannot fail; if it did, the template would just expire unheld.
        let _ = self
            .persist
            .release(self.now_ms64, TemplateId::from_raw(raw), &mut view);
    }

    /// Removes a connection and updates the counters.
    fn drop_conn(&mut self, id: ConnId) {
        let e = *self.conns.get(id);
        self.release_template(e.template);
        let kind = if e.flags & flags::INACTIVE != 0 {
            ConnKind::Inactive
        } else {
            ConnKind::Active
        };
        self.conn_event(e.dest, ConnEvent::Unbound(kind));
        if let Some(dest) = self
            .dests
            .get_mut(usize::from(e.dest))
            .and_then(Option::as_mut)
        {
            dest.refs = dest.refs.saturating_sub(1);
        }
        self.conns.remove(id);
        self.stats.conns_expired += 1;
        self.maybe_free_dest(e.dest);
    }

    fn persistence(&self, svc: u16) -> Option<Persistence> {
        self.services
            .get(usize::from(svc))?
            .as_ref()?
            .cfg
            .persistence
    }

    /// Handles one received frame; see [`Verdict`]. `frame` may be
    /// rewritten in place; `out` receives frames that need a different
    /// length (tunnels, ICMP errors) and should hold the largest frame
    /// plus 80 bytes.
    pub fn process(&mut self, now: Instant, frame: &mut [u8], out: &mut [u8]) -> Verdict {
        let v = self.process_inner(now, frame, out);
        match v {
            Verdict::Transmit { .. } => self.stats.forwarded += 1,
            Verdict::Pass => self.stats.passed += 1,
            Verdict::Drop(_) => self.stats.dropped += 1,
        }
        v
    }

    fn process_inner(&mut self, now: Instant, frame: &mut [u8], out: &mut [u8]) -> Verdict {
        let now_ms = self.tick(now);
        let p = match parse(frame) {
            Ok(p) => p,
            Err(ParseError::NotIp { .. }) => return Verdict::Pass,
            Err(_) => {
                self.stats.parse_errors += 1;
                return Verdict::Pass;
            }
        };
        if let Some(q) = p.quoted {
            return self.icmp_related(now_ms, &p, &q, frame, out);
        }
        if p.flow.proto != proto::TCP && p.flow.proto != proto::UDP {
            return Verdict::Pass;
        }
        let f = p.flow;
        if let Some(id) = self
            .conns
            .lookup_in(f.proto, &f.src, f.sport, &f.dst, f.dport)
        {
            let e = *self.conns.get(id);
            let dest = self.dests[usize::from(e.dest)].expect("conn holds a dest ref");
            if !dest.available {
                if !self.cfg.expire_nodest_conn {
                    return Verdict::Drop(DropReason::DestUnavailable);
                }
                self.drop_conn(id);
                return self.new_flow(now, now_ms, &p, frame, out);
            }
            // ip_vs_in: a SYN (is_new_conn) on an existing entry is
            // rescheduled when its dest is quiesced (with expire_nodest_conn)
            // or when the old connection is over (conn_reuse_mode,
            // is_new_conn_expected); never for a persistence-controlled one.
            let syn = p.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
            if syn && f.proto == proto::TCP && self.persistence(dest.svc).is_none() {
                let st = State::from_u8(e.state);
                let mode = self.cfg.conn_reuse_mode;
                let expected = mode != 0
                    && (st == State::TimeWait
                        || st == State::Close
                        || (mode & 2 != 0
                            && st == State::FinWait
                            && e.flags & flags::NOOUTPUT != 0));
                if (self.cfg.expire_nodest_conn && dest.cfg.weight == 0) || expected {
                    self.drop_conn(id);
                    return self.new_flow(now, now_ms, &p, frame, out);
                }
            }
            return self.forward_in(now_ms, id, &p, frame, out);
        }
        if let Some(id) = self
            .conns
            .lookup_out(f.proto, &f.src, f.sport, &f.dst, f.dport)
        {
            return self.forward_out(now_ms, id, &p, frame);
        }
        self.new_flow(now, now_ms, &p, frame, out)
    }

    fn next_hop(&self, addr: &Addr) -> Option<(Mac, PortId)> {
        self.neighbours
            .get(addr)
            .copied()
            .or_else(|| self.gateways[usize::from(!addr.is_v4())])
    }

    /// State transition and timer refresh for a packet of conn `id`.
    fn touch(&mut self, now_ms: u32, id: ConnId, dir: Dir, tcp_flags: u8) {
        let e = *self.conns.get(id);
        let mut fl = e.flags;
        let state = if e.proto == proto::TCP {
            let dir = match dir {
                Dir::Output => {
                    fl &= !flags::NOOUTPUT;
                    Dir::Output
                }
                d if fl & flags::NOOUTPUT != 0 => {
                    let _ = d;
                    Dir::InputOnly
                }
                d => d,
            };
            tcp_next(State::from_u8(e.state), dir, tcp_flags)
        } else {
            State::from_u8(e.state)
        };
        if state as u8 != e.state && e.proto == proto::TCP {
            let now_inactive = state != State::Established;
            let was_inactive = fl & flags::INACTIVE != 0;
            if now_inactive != was_inactive {
                if now_inactive {
                    fl |= flags::INACTIVE;
                } else {
                    fl &= !flags::INACTIVE;
                }
                self.conn_event(e.dest, ConnEvent::SetActive(!now_inactive));
            }
        }
        let en = self.conns.get_mut(id);
        en.state = state as u8;
        en.flags = fl;
        let t = self.cfg.timeouts.get_ms(state);
        self.conns.set_expires(id, now_ms.wrapping_add(t));
    }

    fn forward_in(
        &mut self,
        now_ms: u32,
        id: ConnId,
        p: &Parsed,
        frame: &mut [u8],
        out: &mut [u8],
    ) -> Verdict {
        self.touch(now_ms, id, Dir::Input, p.tcp_flags);
        let e = *self.conns.get(id);
        let dest = self.dests[usize::from(e.dest)].expect("conn holds a dest ref");
        self.send_to_dest(&dest, e.vport, p, frame, out)
    }

    /// Sends a client-side packet (a new or tracked flow, or an ICMP error
    /// about one) to `dest` by its method.
    fn send_to_dest(
        &mut self,
        dest: &Dest,
        vport: u16,
        p: &Parsed,
        frame: &mut [u8],
        out: &mut [u8],
    ) -> Verdict {
        let Some((mac, port)) = dest.hop else {
            return Verdict::Drop(DropReason::NoNeighbour);
        };
        let pi = self.ports[usize::from(port)];
        let e = wire::ETH_HLEN;
        match dest.cfg.method {
            Method::Dr | Method::Nat => {
                if p.ip_len() > usize::from(pi.mtu) {
                    return self.too_big(p, usize::from(pi.mtu), frame, out);
                }
                if dest.cfg.method == Method::Nat {
                    let rport = if dest.cfg.port == 0 {
                        vport
                    } else {
                        dest.cfg.port
                    };
                    match p.quoted {
                        Some(_) => rewrite::nat_icmp_to_real(frame, p, dest.addr, rport),
                        None => rewrite::nat_dst(frame, p, dest.addr, rport),
                    }
                }
                rewrite::set_macs(frame, pi.mac, mac);
                Verdict::Transmit {
                    port,
                    buf: Buf::Frame,
                    len: p.end,
                }
            }
            Method::Tunnel(kind) => {
                let v4 = dest.addr.is_v4();
                let Some(src) = (if v4 { pi.v4 } else { pi.v6 }) else {
                    return Verdict::Drop(DropReason::NoNeighbour);
                };
                let csum_loc = match (p.quoted, p.flow.proto) {
                    (None, proto::TCP) => Some((p.l4 - p.l3, wire::TCP_CHECKSUM)),
                    (None, proto::UDP) if p.v6 || frame[p.l4 + 6..p.l4 + 8] != [0, 0] => {
                        Some((p.l4 - p.l3, wire::UDP_CHECKSUM))
                    }
                    _ => None,
                };
                let ohl = if v4 { ipv4::HLEN } else { ipv6::HLEN };
                let over = ohl + kind.overhead(csum_loc.is_some());
                if p.ip_len() + over > usize::from(pi.mtu) {
                    return self.too_big(p, usize::from(pi.mtu).saturating_sub(over), frame, out);
                }
                self.ip_id = self.ip_id.wrapping_add(1);
                let outer = tunnel::Outer {
                    src,
                    dst: dest.addr,
                    ip_id: self.ip_id,
                    sport: if matches!(kind, TunnelKind::Gue { .. }) {
                        flow_port(&p.flow)
                    } else {
                        0
                    },
                };
                if out.len() < e {
                    return Verdict::Drop(DropReason::OutTooSmall);
                }
                let Some(n) =
                    tunnel::encapsulate(&mut out[e..], &frame[p.l3..p.end], kind, outer, csum_loc)
                else {
                    return Verdict::Drop(DropReason::OutTooSmall);
                };
                out[0..6].copy_from_slice(&mac);
                out[6..12].copy_from_slice(&pi.mac);
                let et = if v4 {
                    wire::ETHERTYPE_IPV4
                } else {
                    wire::ETHERTYPE_IPV6
                };
                out[12..14].copy_from_slice(&et.to_be_bytes());
                Verdict::Transmit {
                    port,
                    buf: Buf::Out,
                    len: e + n,
                }
            }
        }
    }

    /// The packet does not fit: ICMP error back to the sender if DF (or
    /// IPv6), else drop (the kernel would fragment it; a raw socket cannot).
    fn too_big(&mut self, p: &Parsed, mtu: usize, frame: &[u8], out: &mut [u8]) -> Verdict {
        if !p.df || p.quoted.is_some() {
            return Verdict::Drop(DropReason::TooBig);
        }
        let min = if p.v6 { ipv6::MIN_MTU } else { 68 };
        let mtu = mtu.max(min).min(0xffff) as u16;
        self.icmp_to_sender(p, IcmpError::TooBig { mtu }, frame, out)
    }

    fn icmp_to_sender(
        &mut self,
        p: &Parsed,
        err: IcmpError,
        frame: &[u8],
        out: &mut [u8],
    ) -> Verdict {
        let Some((mac, port)) = self.next_hop(&p.flow.src) else {
            return Verdict::Drop(DropReason::NoNeighbour);
        };
        let smac = self.ports[usize::from(port)].mac;
        match icmp::error_frame(frame, p, err, smac, mac, out) {
            Some(len) => {
                self.stats.icmp_sent += 1;
                Verdict::Transmit {
                    port,
                    buf: Buf::Out,
                    len,
                }
            }
            None => Verdict::Drop(DropReason::OutTooSmall),
        }
    }

    fn forward_out(&mut self, now_ms: u32, id: ConnId, p: &Parsed, frame: &mut [u8]) -> Verdict {
        self.touch(now_ms, id, Dir::Output, p.tcp_flags);
        let e = *self.conns.get(id);
        let vaddr = self.conns.vaddr(&e);
        let Some((mac, port)) = self.next_hop(&p.flow.dst) else {
            return Verdict::Drop(DropReason::NoNeighbour);
        };
        let pi = self.ports[usize::from(port)];
        if p.ip_len() > usize::from(pi.mtu) {
            return Verdict::Drop(DropReason::TooBig);
        }
        rewrite::nat_src(frame, p, vaddr, e.vport);
        rewrite::set_macs(frame, pi.mac, mac);
        Verdict::Transmit {
            port,
            buf: Buf::Frame,
            len: p.end,
        }
    }

    /// An ICMP error about a tracked flow (ip_vs_in_icmp / ip_vs_out_icmp).
    fn icmp_related(
        &mut self,
        now_ms: u32,
        p: &Parsed,
        q: &Quoted,
        frame: &mut [u8],
        out: &mut [u8],
    ) -> Verdict {
        let f = q.flow;
        // About a reply (vip → client): it travels to the real server.
        if let Some(id) = self
            .conns
            .lookup_in(f.proto, &f.dst, f.dport, &f.src, f.sport)
        {
            let e = *self.conns.get(id);
            let dest = self.dests[usize::from(e.dest)].expect("conn holds a dest ref");
            if !dest.available {
                return Verdict::Drop(DropReason::DestUnavailable);
            }
            let t = self.cfg.timeouts.get_ms(State::from_u8(e.state));
            self.conns.set_expires(id, now_ms.wrapping_add(t));
            return self.send_to_dest(&dest, e.vport, p, frame, out);
        }
        // About a request (client → rip), NAT only: it travels to the client.
        if let Some(id) = self
            .conns
            .lookup_out(f.proto, &f.dst, f.dport, &f.src, f.sport)
        {
            let e = *self.conns.get(id);
            let vaddr = self.conns.vaddr(&e);
            let Some(dest) = self.dests[usize::from(e.dest)] else {
                return Verdict::Pass;
            };
            let Some((mac, port)) = self.next_hop(&p.flow.dst) else {
                return Verdict::Drop(DropReason::NoNeighbour);
            };
            rewrite::nat_icmp_to_client(frame, p, dest.addr, vaddr, e.vport);
            rewrite::set_macs(frame, self.ports[usize::from(port)].mac, mac);
            return Verdict::Transmit {
                port,
                buf: Buf::Frame,
                len: p.end,
            };
        }
        Verdict::Pass
    }

    fn new_flow(
        &mut self,
        now: Instant,
        now_ms: u32,
        p: &Parsed,
        frame: &mut [u8],
        out: &mut [u8],
    ) -> Verdict {
        let f = p.flow;
        if f.proto == proto::TCP
            && p.tcp_flags & (tcp_flags::SYN | tcp_flags::RST) != tcp_flags::SYN
        {
            // IPVS schedules TCP only on a SYN; the rest is not ours.
            return Verdict::Pass;
        }
        let Some(svc) = self.classifier.lookup(&f) else {
            return Verdict::Pass;
        };
        let (persist, one_packet) = match &self.services[usize::from(svc)] {
            Some(s) => (s.cfg.persistence, s.cfg.one_packet && f.proto == proto::UDP),
            None => return Verdict::Pass,
        };
        let (picked, template) = match persist {
            Some(pc) => self
                .persist_pick(now, svc, pc, &f)
                .map_or((None, NO_TEMPLATE), |(d, t)| (Some(d), t)),
            None => (
                self.services[usize::from(svc)]
                    .as_mut()
                    .and_then(|s| s.sched.pick(now, &f)),
                NO_TEMPLATE,
            ),
        };
        let picked = picked
            .filter(|&d| matches!(self.dests.get(usize::from(d)), Some(Some(x)) if x.available));
        let Some(d) = picked else {
            self.release_template(template);
            self.stats.no_dest += 1;
            return self.icmp_to_sender(p, IcmpError::PortUnreachable, frame, out);
        };
        let dest = self.dests[usize::from(d)].expect("checked above");
        if one_packet {
            // No connection is kept, so nothing stays under the template's
            // control (the kernel's one-packet conns are freed at once).
            self.release_template(template);
            return self.send_to_dest(&dest, f.dport, p, frame, out);
        }
        let nat = dest.cfg.method == Method::Nat;
        let state = if f.proto == proto::TCP {
            State::None
        } else {
            State::Udp
        };
        let n = NewConn {
            proto: f.proto,
            caddr: f.src,
            cport: f.sport,
            vaddr: f.dst,
            vport: f.dport,
            dest: d,
            state: state as u8,
            // Every new connection starts inactive (the kernel's
            // __ip_vs_update_dest puts IP_VS_CONN_F_INACTIVE in conn_flags).
            flags: flags::INACTIVE | if nat { 0 } else { flags::NOOUTPUT },
            template,
            index_out: nat,
            expires: now_ms.wrapping_add(3000),
        };
        let Some(id) = self.conns.insert(n) else {
            self.release_template(template);
            return Verdict::Drop(DropReason::TableFull);
        };
        self.stats.conns_created += 1;
        if let Some(x) = self.dests[usize::from(d)].as_mut() {
            x.refs += 1;
        }
        self.conn_event(d, ConnEvent::Bound(ConnKind::Inactive));
        self.forward_in(now_ms, id, p, frame, out)
    }

    /// ip_vs_sched_persist through `lb-sched`'s template table: reuse the
    /// client's template if its destination is still usable, else schedule
    /// and record a new template. Returns the destination and the raw id of
    /// the template, which now controls one more connection.
    fn persist_pick(
        &mut self,
        now: Instant,
        svc: u16,
        pc: Persistence,
        f: &FlowKey,
    ) -> Option<(DestIndex, u32)> {
        let (fwmark, port) = match self.services.get(usize::from(svc))?.as_ref()?.cfg.key {
            ServiceKey::Fwmark(m) => (m, 0),
            ServiceKey::Addr { port, .. } => (0, port),
        };
        let netmask = if f.src.is_v4() {
            Netmask::V4(pc.netmask)
        } else {
            Netmask::V6(pc.prefix6)
        };
        let ps = PersistService {
            fwmark,
            port,
            netmask,
        };
        let key =
            TemplateKey::for_packet(&ps, f.proto, f.src.into(), f.dst.into(), f.dport).ok()?;
        let mut view = DestsView {
            dests: &mut self.dests,
            services: &mut self.services,
        };
        let p = self
            .persist
            .schedule(self.now_ms64, &key, ms(pc.timeout), &mut view, |v| {
                let d = v
                    .services
                    .get_mut(usize::from(svc))?
                    .as_mut()?
                    .sched
                    .pick(now, f)?;
                v.is_available(&d).then_some(d)
            })
            .ok()??;
        Some((p.dest, p.template.to_raw()))
    }

    /// Counts a connection event on a destination and tells its scheduler.
    fn conn_event(&mut self, d: DestIndex, ev: ConnEvent) {
        conn_event(&mut self.dests, &mut self.services, d, ev);
    }
}

/// Counts a connection event on a destination and tells its scheduler.
fn conn_event<S: Scheduler>(
    dests: &mut [Option<Dest>],
    services: &mut [Option<Service<S>>],
    d: DestIndex,
    ev: ConnEvent,
) {
    let Some(dest) = dests.get_mut(usize::from(d)).and_then(Option::as_mut) else {
        return;
    };
    dest.counts.apply(ev);
    if let Some(s) = services
        .get_mut(usize::from(dest.svc))
        .and_then(Option::as_mut)
    {
        s.sched.conn_event(d, ev);
    }
}

/// Frees a removed destination's slot once nothing points at it.
fn free_if_unused(dests: &mut [Option<Dest>], d: DestIndex) {
    if let Some(slot) = dests.get_mut(usize::from(d))
        && matches!(slot, Some(x) if !x.available && x.refs == 0)
    {
        *slot = None;
    }
}

/// The destinations as `lb-sched`'s template table sees them: availability
/// and weight, and `persistconns` kept through the scheduler's events.
struct DestsView<'a, S> {
    dests: &'a mut Vec<Option<Dest>>,
    services: &'a mut Vec<Option<Service<S>>>,
}

impl<S: Scheduler> PersistDests<DestIndex> for DestsView<'_, S> {
    fn is_available(&self, d: &DestIndex) -> bool {
        matches!(self.dests.get(usize::from(*d)), Some(Some(x)) if x.available)
    }

    fn weight(&self, d: &DestIndex) -> u32 {
        self.dests
            .get(usize::from(*d))
            .and_then(Option::as_ref)
            .map_or(0, |x| x.cfg.weight)
    }

    fn template_bound(&mut self, d: &DestIndex) {
        if let Some(x) = self.dests.get_mut(usize::from(*d)).and_then(Option::as_mut) {
            x.refs += 1;
        }
        conn_event(
            self.dests,
            self.services,
            *d,
            ConnEvent::Bound(ConnKind::Template),
        );
    }

    fn template_unbound(&mut self, d: &DestIndex) {
        conn_event(
            self.dests,
            self.services,
            *d,
            ConnEvent::Unbound(ConnKind::Template),
        );
        if let Some(x) = self.dests.get_mut(usize::from(*d)).and_then(Option::as_mut) {
            x.refs = x.refs.saturating_sub(1);
        }
        free_if_unused(self.dests, *d);
    }
}

/// A source port for GUE from the flow (as `udp_flow_src_port`: within
/// the default ephemeral range 32768–60999).
fn flow_port(f: &FlowKey) -> u16 {
    let w = |a: &Addr| {
        let (mut lo, mut hi) = ([0u8; 8], [0u8; 8]);
        lo.copy_from_slice(&a.0[..8]);
        hi.copy_from_slice(&a.0[8..]);
        u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi).rotate_left(23)
    };
    let x = w(&f.src) ^ w(&f.dst).rotate_left(41) ^ (u64::from(f.sport) << 16 | u64::from(f.dport));
    let m = u128::from(x ^ 0x9e37_79b9_7f4a_7c15) * 0xff51_afd7_ed55_8ccd;
    let h = (m as u64) ^ ((m >> 64) as u64);
    32768 + (h % (60999 - 32768 + 1)) as u16
}
