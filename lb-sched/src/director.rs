//! The kernel's "schedule a new connection" path over a table of services:
//! service lookup (`ip_vs_service_find`), persistence templates
//! (`ip_vs_sched_persist`), the service's scheduler (`ip_vs_schedule`) and
//! binding the connection to its destination (`ip_vs_bind_dest`).
//!
//! # Order of the kernel (net/netfilter/ipvs/ip_vs_core.c, ip_vs_conn.c)
//!
//! For the first packet of a TCP, UDP or SCTP connection:
//!
//! 1. **Lookup** ([`ServiceTable`]): a fwmark service of the packet's mark
//!    first, then `<protocol, vaddr, vport>`, then the FTP service for FTP
//!    data ports, then the port-zero service.
//! 2. **Source port 20** (`FTPDATA`) is never scheduled: the packet passes
//!    untouched ([`Refusal::FtpData`]).
//! 3. **Persistent service**: the template key is built from the client
//!    address masked by the service netmask ([`TemplateKey::for_packet`]).
//!    A live template whose destination is still available (and, with
//!    `expire_quiescent_template`, not quiesced) gives the destination; the
//!    scheduler is *not* consulted, so OVERLOAD and weight 0 do not move a
//!    persistent client. Otherwise the template is invalidated, the
//!    scheduler picks, and a new template is bound to the pick
//!    (`persistconns + 1`, then the OVERLOAD check).
//! 4. **Non-persistent service**: a packet that reached a service through the
//!    FTP or port-zero catch-all (its port is not the service's) is refused
//!    ([`Refusal::PortMismatch`]); else the scheduler picks.
//! 5. **No destination**: [`Refusal::NoDest`] (the kernel drops the packet
//!    and answers ICMP port unreachable).
//! 6. **Bind**: the connection is counted *inactive* (every destination's
//!    `conn_flags` carry `IP_VS_CONN_F_INACTIVE`), then OVERLOAD is set if
//!    `active + inactive` reached the upper threshold. The protocol moves it
//!    to active when it reaches ESTABLISHED ([`Director::set_active`]).
//!
//! The forwarded-to port ([`Conn::daddr`]) follows the kernel too: a
//! non-persistent connection goes to the destination's port, or the
//! packet's if that is 0; a persistent one goes to the packet's port unless
//! the packet hit the service port and the destination has a port.
//!
//! Templates are global, as in the kernel: two services whose template keys
//! coincide (an FTP service on port 21 and a port-zero service on the same
//! address, both `<proto, client, vaddr, 0>`) share templates.
//!
//! # Not modelled
//!
//! Persistence engines (`--pe sip`), the sync daemon, `ip_vs_todrop`
//! (random drops under memory pressure) and connection reuse. A service that
//! is deleted and added again starts afresh (the kernel would bring back its
//! trashed destinations that still hold connections). Template timeouts
//! are capped at [`MAX_TIMEOUT_MS`] (≈ 24.8 days; ipvsadm allows 31).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::hashkey::HashKey;
use crate::persist::{
    MAX_TIMEOUT_MS, Netmask, PersistConfig, PersistDests, PersistError, PersistService,
    PersistTable, TemplateId, TemplateKey,
};
use crate::service_table::{self, ServiceTable};
use crate::{
    AddressFamily, ConnKind, DestConfig, DestId, Error, PacketInfo, RandomSource, SchedulerConfig,
    SchedulerKind, Service, ServiceFlags, ServiceKey,
};

/// `FTPDATA`: connections from this source port are never scheduled.
pub const FTP_DATA_PORT: u16 = 20;

/// ipvsadm's default persistence timeout (`-p` without a value).
pub const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(300);

/// Names one service of a [`Director`]. Stays valid while the service is in
/// the table, or deleted but still holding connections or templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId {
    slot: u32,
    generation: u32,
}

/// What `ipvsadm -A/-E` sets on a virtual service.
///
/// ```
/// use std::time::Duration;
/// use lb_sched::{Protocol, SchedulerKind, ServiceKey};
/// use lb_sched::director::ServiceConfig;
/// use lb_sched::persist::Netmask;
/// let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:443".parse().unwrap() };
/// let cfg = ServiceConfig::new(key, SchedulerKind::Wlc)
///     .persistent(Duration::from_secs(600))
///     .netmask(Netmask::V4(0xffff_ff00));
/// assert!(cfg.is_persistent());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The service's identity.
    pub key: ServiceKey,
    /// `IP_VS_SVC_F_*`: `PERSISTENT`, `ONEPACKET`, the scheduler flags.
    pub flags: ServiceFlags,
    /// The scheduler and its parameters.
    pub scheduler: SchedulerConfig,
    /// Persistence timeout (`svc->timeout`), used with `PERSISTENT`.
    pub timeout: Duration,
    /// Persistence granularity (`svc->netmask`).
    pub netmask: Netmask,
}

impl ServiceConfig {
    /// A non-persistent service with a full netmask and the default
    /// persistence timeout (300 s) ready for [`Self::persistent`].
    #[must_use]
    pub fn new(key: ServiceKey, scheduler: impl Into<SchedulerConfig>) -> Self {
        Self {
            key,
            flags: ServiceFlags::NONE,
            scheduler: scheduler.into(),
            timeout: DEFAULT_PERSISTENCE,
            netmask: full_netmask(key.family()),
        }
    }

    /// Makes the service persistent with `timeout` (`-p timeout`).
    #[must_use]
    pub fn persistent(mut self, timeout: Duration) -> Self {
        self.flags = self.flags | ServiceFlags::PERSISTENT;
        self.timeout = timeout;
        self
    }

    /// Sets the persistence netmask (`-M`).
    #[must_use]
    pub fn netmask(mut self, netmask: Netmask) -> Self {
        self.netmask = netmask;
        self
    }

    /// Adds flags (`-b sh-port`, `-o`, ...).
    #[must_use]
    pub fn flags(mut self, flags: ServiceFlags) -> Self {
        self.flags = self.flags | flags;
        self
    }

    /// Whether `PERSISTENT` is set.
    #[must_use]
    pub fn is_persistent(&self) -> bool {
        self.flags.contains(ServiceFlags::PERSISTENT)
    }

    fn fwmark(&self) -> u32 {
        match self.key {
            ServiceKey::Fwmark { mark, .. } => mark,
            ServiceKey::Addr { .. } => 0,
        }
    }

    fn port(&self) -> u16 {
        match self.key {
            ServiceKey::Addr { addr, .. } => addr.port(),
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    fn timeout_ms(&self) -> u32 {
        let ms = self.timeout.as_millis().min(u128::from(MAX_TIMEOUT_MS));
        (ms as u32).max(1)
    }

    fn validate(&self) -> Result<(), DirectorError> {
        match self.key {
            ServiceKey::Fwmark { mark: 0, .. } => return Err(DirectorError::ZeroMark),
            ServiceKey::Addr { protocol, .. } if !protocol.has_ports() => {
                return Err(DirectorError::Protocol(protocol.number()));
            }
            _ => {}
        }
        let fits = match (self.key.family(), self.netmask) {
            (AddressFamily::Inet, Netmask::V4(_)) => true,
            (AddressFamily::Inet6, Netmask::V6(plen)) => (1..=128).contains(&plen),
            _ => false,
        };
        if !fits {
            return Err(DirectorError::Netmask(self.netmask));
        }
        if self.is_persistent() && self.timeout.is_zero() {
            return Err(DirectorError::Timeout);
        }
        Ok(())
    }
}

/// The full netmask of a family (`255.255.255.255` / `128`), ipvsadm's default.
#[must_use]
pub fn full_netmask(family: AddressFamily) -> Netmask {
    match family {
        AddressFamily::Inet => Netmask::V4(u32::MAX),
        AddressFamily::Inet6 => Netmask::V6(128),
    }
}

/// Errors of [`Director`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectorError {
    /// `ipvsadm -A` of a service that exists (`EEXIST`).
    #[error("service {0:?} already exists")]
    ServiceExists(ServiceKey),
    /// No service with this key (`ESRCH`).
    #[error("no service {0:?}")]
    NoSuchService(ServiceKey),
    /// fwmark 0 means "no mark".
    #[error("fwmark 0 cannot name a service")]
    ZeroMark,
    /// Only TCP, UDP and SCTP services can be scheduled.
    #[error("protocol {0} cannot carry a virtual service (tcp, udp and sctp only)")]
    Protocol(u8),
    /// A netmask of the other family, or an IPv6 prefix outside 1..=128 (`EINVAL`).
    #[error("netmask {0:?} does not fit the service's address family")]
    Netmask(Netmask),
    /// A persistent service with a zero timeout.
    #[error("a persistent service needs a timeout")]
    Timeout,
    /// The connection's service is gone (a stale or foreign [`Conn`]).
    #[error("the connection does not belong to this director")]
    StaleConn,
    /// A destination operation failed.
    #[error(transparent)]
    Sched(#[from] Error),
    /// The template table refused.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Why a packet got no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No virtual service matches (or the protocol is not TCP, UDP or SCTP):
    /// the packet is none of IPVS's business.
    NoService,
    /// The source port is 20 (FTP data); the kernel lets the packet pass.
    FtpData(ServiceId),
    /// A non-persistent service found through the FTP or port-zero catch-all
    /// only schedules its own port; the kernel drops the packet.
    PortMismatch(ServiceId),
    /// The scheduler found no destination; the kernel drops the packet and
    /// answers ICMP port unreachable.
    NoDest(ServiceId),
}

impl Refusal {
    /// The service that refused, if one matched.
    #[must_use]
    pub fn service(self) -> Option<ServiceId> {
        match self {
            Self::NoService => None,
            Self::FtpData(s) | Self::PortMismatch(s) | Self::NoDest(s) => Some(s),
        }
    }

    /// A short reason, for tools.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoService => "no virtual service",
            Self::FtpData(_) => "source port 20 (FTP data) is never scheduled",
            Self::PortMismatch(_) => "a non-persistent service only schedules its own port",
            Self::NoDest(_) => "no destination available",
        }
    }
}

/// A connection bound to a destination.
///
/// Keep it while the connection lives and hand it back to
/// [`Director::set_active`] / [`Director::close`]; it is small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    service: ServiceId,
    dest: DestId,
    daddr: SocketAddr,
    template: Option<TemplateId>,
    kind: ConnKind,
    one_packet: bool,
}

impl Conn {
    /// The service owning the destination. With a shared template this can
    /// be another service than the one the packet matched.
    #[must_use]
    pub fn service(&self) -> ServiceId {
        self.service
    }
    /// The destination within [`Self::service`].
    #[must_use]
    pub fn dest(&self) -> DestId {
        self.dest
    }
    /// Where the kernel forwards the connection (`cp->daddr:cp->dport`).
    #[must_use]
    pub fn daddr(&self) -> SocketAddr {
        self.daddr
    }
    /// The persistence template controlling it, for persistent services.
    #[must_use]
    pub fn template(&self) -> Option<TemplateId> {
        self.template
    }
    /// The counter holding it: [`ConnKind::Inactive`] or [`ConnKind::Active`].
    #[must_use]
    pub fn kind(&self) -> ConnKind {
        self.kind
    }
    /// A one-packet (`-o`) UDP connection: the kernel expires it as soon as
    /// its packet is forwarded, so [`Director::close`] it right away.
    #[must_use]
    pub fn is_one_packet(&self) -> bool {
        self.one_packet
    }
}

/// The result of [`Director::schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new connection, bound inactive.
    Conn(Conn),
    /// No connection.
    Refused(Refusal),
}

/// A persistence template's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TemplateDest {
    service: ServiceId,
    dest: DestId,
}

#[derive(Debug)]
struct Live {
    cfg: ServiceConfig,
    service: Service,
    listed: bool,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    live: Option<Live>,
}

/// The service slots, as the template table sees destinations.
struct Slots<'a>(&'a mut Vec<Slot>);

fn live_of(slots: &[Slot], id: ServiceId) -> Option<&Live> {
    slots
        .get(id.slot as usize)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.live.as_ref())
}

fn live_of_mut(slots: &mut [Slot], id: ServiceId) -> Option<&mut Live> {
    slots
        .get_mut(id.slot as usize)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.live.as_mut())
}

impl PersistDests<TemplateDest> for Slots<'_> {
    fn is_available(&self, d: &TemplateDest) -> bool {
        live_of(self.0, d.service)
            .and_then(|l| l.service.dest(d.dest))
            .is_some_and(crate::Dest::is_available)
    }
    fn weight(&self, d: &TemplateDest) -> u32 {
        live_of(self.0, d.service)
            .and_then(|l| l.service.dest(d.dest))
            .map_or(0, crate::Dest::weight)
    }
    fn template_bound(&mut self, d: &TemplateDest) {
        if let Some(l) = live_of_mut(self.0, d.service) {
            // Cannot fail: the table binds only the dest `pick` just returned.
            let _ = l.service.conn_bind(d.dest, ConnKind::Template);
        }
    }
    fn template_unbound(&mut self, d: &TemplateDest) {
        if let Some(l) = live_of_mut(self.0, d.service) {
            // Cannot fail: every unbind pairs with a bind above.
            let _ = l.service.conn_unbind(d.dest, ConnKind::Template);
        }
    }
}

/// Table-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectorConfig {
    /// sysctl `expire_quiescent_template` (default false).
    pub expire_quiescent_template: bool,
    /// sysctl `ip_unprivileged_port_start` (default 1024): which ports
    /// reach an FTP service as data connections.
    pub unprivileged_port_start: u16,
    /// Key of the internal hash maps (any value; the kernel's answers do not
    /// depend on it).
    pub hash_key: HashKey,
}

impl Default for DirectorConfig {
    fn default() -> Self {
        Self {
            expire_quiescent_template: false,
            unprivileged_port_start: 1024,
            hash_key: HashKey::new(0x6970_7673_5f64_6972, 0x6563_746f_725f_7631),
        }
    }
}

/// Virtual services, their destinations and the persistence templates, with
/// the kernel's new-connection path.
///
/// # Call order
///
/// * Configuration, in any order: [`add_service`](Self::add_service),
///   [`edit_service`](Self::edit_service), [`remove_service`](Self::remove_service),
///   [`add_dest`](Self::add_dest), [`edit_dest`](Self::edit_dest),
///   [`remove_dest`](Self::remove_dest), [`flush`](Self::flush).
/// * First packet of a connection: [`schedule`](Self::schedule); keep the
///   [`Conn`].
/// * Protocol state between established and not: [`set_active`](Self::set_active).
/// * Connection gone: [`close`](Self::close).
/// * Timers: call [`handle_timeout`](Self::handle_timeout) at
///   [`poll_timeout`](Self::poll_timeout) (`lblc`/`lblcr` collectors) and
///   whenever templates should expire without traffic.
///
/// `now` must not go backwards.
///
/// ```
/// use std::time::Instant;
/// use lb_sched::{DestConfig, PacketInfo, Protocol, SchedulerKind, ServiceKey, SplitMix64};
/// use lb_sched::director::{Director, DirectorConfig, Outcome, ServiceConfig};
///
/// let now = Instant::now();
/// let mut d = Director::new(DirectorConfig::default(), now);
/// let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse()? };
/// d.add_service(ServiceConfig::new(key, SchedulerKind::Rr), now)?;
/// d.add_dest(&key, DestConfig::new("10.0.0.1:8080".parse()?, 1))?;
/// d.add_dest(&key, DestConfig::new("10.0.0.2:8080".parse()?, 1))?;
/// let mut rng = SplitMix64::new(1);
/// let pkt = PacketInfo::new(Protocol::Tcp, "198.51.100.7:40000".parse()?, "192.0.2.1:80".parse()?);
/// let Outcome::Conn(c) = d.schedule(now, &pkt, 0, &mut rng)? else { panic!() };
/// // rr starts at the head of the list: the destination added last.
/// assert_eq!(c.daddr(), "10.0.0.2:8080".parse()?);
/// d.close(now, c)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Director {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Deleted services still holding connections or templates.
    removed: Vec<u32>,
    table: ServiceTable<u32>,
    persist: PersistTable<TemplateDest>,
    epoch: Instant,
}

impl Director {
    /// An empty table. `epoch` is the origin of the template clock (any
    /// instant not after the first `now` passed in).
    #[must_use]
    pub fn new(config: DirectorConfig, epoch: Instant) -> Self {
        let mut table = ServiceTable::new(config.hash_key);
        table.set_unprivileged_port_start(config.unprivileged_port_start);
        let mut pc = PersistConfig::new(config.hash_key);
        pc.expire_quiescent_template = config.expire_quiescent_template;
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            removed: Vec::new(),
            table,
            persist: PersistTable::new(pc),
            epoch,
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn id(&self, slot: u32) -> ServiceId {
        ServiceId {
            slot,
            generation: self.slots[slot as usize].generation,
        }
    }

    fn live_slot(&self, key: &ServiceKey) -> Result<u32, DirectorError> {
        self.table
            .get(key)
            .copied()
            .ok_or(DirectorError::NoSuchService(*key))
    }

    fn live_mut(&mut self, key: &ServiceKey) -> Result<&mut Live, DirectorError> {
        let slot = self.live_slot(key)?;
        self.slots[slot as usize]
            .live
            .as_mut()
            .ok_or(DirectorError::NoSuchService(*key))
    }

    /// Adds a virtual service with no destinations (`ip_vs_add_service`).
    ///
    /// # Errors
    /// [`DirectorError::ServiceExists`], [`DirectorError::ZeroMark`],
    /// [`DirectorError::Protocol`], [`DirectorError::Netmask`],
    /// [`DirectorError::Timeout`], or a bad scheduler parameter.
    pub fn add_service(
        &mut self,
        cfg: ServiceConfig,
        now: Instant,
    ) -> Result<ServiceId, DirectorError> {
        cfg.validate()?;
        let tkey = cfg.key;
        if self.table.get(&tkey).is_some() {
            return Err(DirectorError::ServiceExists(cfg.key));
        }
        let service = Service::new(cfg.key, cfg.flags, cfg.scheduler, now)?;
        let live = Live {
            cfg,
            service,
            listed: true,
        };
        let slot = if let Some(slot) = self.free.pop() {
            self.slots[slot as usize].live = Some(live);
            slot
        } else {
            self.slots.push(Slot {
                generation: 0,
                live: Some(live),
            });
            (self.slots.len() - 1) as u32
        };
        if let Err(e) = self.table.insert(tkey, slot) {
            // Unreachable after the checks above; undo rather than panic.
            self.slots[slot as usize].live = None;
            self.free.push(slot);
            return Err(match e {
                service_table::ServiceError::ZeroMark => DirectorError::ZeroMark,
                _ => DirectorError::ServiceExists(cfg.key),
            });
        }
        Ok(self.id(slot))
    }

    /// Changes scheduler, flags, timeout and netmask of the service with
    /// `cfg.key` (`ip_vs_edit_service`): another scheduler starts from
    /// fresh state, the same one keeps its state.
    ///
    /// # Errors
    /// [`DirectorError::NoSuchService`], or as [`Self::add_service`].
    pub fn edit_service(&mut self, cfg: ServiceConfig, now: Instant) -> Result<(), DirectorError> {
        cfg.validate()?;
        let live = self.live_mut(&cfg.key)?;
        live.service.set_scheduler(cfg.scheduler, now)?;
        live.service.set_flags(cfg.flags);
        live.cfg = cfg;
        Ok(())
    }

    /// Deletes a service (`ip_vs_del_service`): its destinations leave the
    /// list (their templates no longer match), its connections live on
    /// until closed.
    ///
    /// # Errors
    /// [`DirectorError::NoSuchService`].
    pub fn remove_service(&mut self, key: &ServiceKey, now: Instant) -> Result<(), DirectorError> {
        let slot = self.live_slot(key)?;
        self.table.remove(key);
        if let Some(live) = self.slots[slot as usize].live.as_mut() {
            let ids: Vec<DestId> = live.service.dests().map(|(id, _)| id).collect();
            for id in ids {
                live.service.remove_dest(id)?;
            }
            // The kernel unbinds the scheduler (`done_service` flushes the
            // lblc/lblcr caches, dropping their references); a cacheless
            // scheduler does the same here. The service is never picked again.
            live.service.set_scheduler(SchedulerKind::Rr, now)?;
            live.listed = false;
        }
        self.removed.push(slot);
        self.reap();
        Ok(())
    }

    /// Deletes every service (`ipvsadm -C`).
    pub fn flush(&mut self, now: Instant) {
        let keys: Vec<ServiceKey> = self.services().map(|(_, cfg, _)| cfg.key).collect();
        for key in keys {
            // Cannot fail: the key was just listed.
            let _ = self.remove_service(&key, now);
        }
    }

    /// Adds a destination to the front of the service's list (`ip_vs_add_dest`).
    ///
    /// # Errors
    /// [`DirectorError::NoSuchService`], or the [`Service::add_dest`] errors.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, DirectorError> {
        Ok(self.live_mut(key)?.service.add_dest(cfg)?)
    }

    /// Changes weight and thresholds of a destination (`ip_vs_edit_dest`).
    ///
    /// # Errors
    /// [`DirectorError::NoSuchService`], or the [`Service::edit_dest`] errors.
    pub fn edit_dest(
        &mut self,
        key: &ServiceKey,
        cfg: DestConfig,
    ) -> Result<DestId, DirectorError> {
        Ok(self.live_mut(key)?.service.edit_dest(cfg)?)
    }

    /// Removes the destination at `addr` (`ip_vs_del_dest`).
    ///
    /// # Errors
    /// [`DirectorError::NoSuchService`], [`Error::NoSuchAddr`].
    pub fn remove_dest(&mut self, key: &ServiceKey, addr: SocketAddr) -> Result<(), DirectorError> {
        let live = self.live_mut(key)?;
        let id = live
            .service
            .find_dest(addr)
            .ok_or(Error::NoSuchAddr(addr))?;
        live.service.remove_dest(id)?;
        Ok(())
    }

    /// The id of the service with this key.
    #[must_use]
    pub fn find_service(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.table.get(key).map(|&s| self.id(s))
    }

    /// The service a packet belongs to (`ip_vs_service_find`); `fwmark` is
    /// the packet mark, 0 for none.
    #[must_use]
    pub fn lookup(
        &self,
        fwmark: u32,
        protocol: u8,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<ServiceId> {
        self.table
            .find(fwmark, protocol, vaddr, vport)
            .map(|&s| self.id(s))
    }

    /// A service (also a deleted one still holding connections).
    #[must_use]
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        live_of(&self.slots, id).map(|l| &l.service)
    }

    /// The configuration of a service.
    #[must_use]
    pub fn service_config(&self, id: ServiceId) -> Option<&ServiceConfig> {
        live_of(&self.slots, id).map(|l| &l.cfg)
    }

    /// The services in the table (not the deleted ones), in no particular order.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &ServiceConfig, &Service)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let l = s.live.as_ref().filter(|l| l.listed)?;
            let id = ServiceId {
                slot: i as u32,
                generation: s.generation,
            };
            Some((id, &l.cfg, &l.service))
        })
    }

    /// Persistence templates held (including invalidated ones awaiting expiry).
    #[must_use]
    pub fn templates(&self) -> usize {
        self.persist.len()
    }

    /// Schedules the first packet of a new connection, as `ip_vs_schedule`
    /// does (see the [module documentation](self) for the order), and binds
    /// the connection inactive. `fwmark` is the packet's mark (0 = none).
    ///
    /// # Errors
    /// Only if the template table is full ([`PersistError::Full`]) or a
    /// counter would overflow.
    pub fn schedule<R: RandomSource + ?Sized>(
        &mut self,
        now: Instant,
        pkt: &PacketInfo,
        fwmark: u32,
        rng: &mut R,
    ) -> Result<Outcome, DirectorError> {
        if !pkt.protocol.has_ports() {
            return Ok(Outcome::Refused(Refusal::NoService));
        }
        let (caddr, cport, vaddr, vport) = if pkt.inverse {
            (pkt.dst, pkt.dst_port, pkt.src, pkt.src_port)
        } else {
            (pkt.src, pkt.src_port, pkt.dst, pkt.dst_port)
        };
        let Some(&slot) = self.table.find(fwmark, pkt.protocol.number(), vaddr, vport) else {
            return Ok(Outcome::Refused(Refusal::NoService));
        };
        let id = self.id(slot);
        if cport == FTP_DATA_PORT {
            return Ok(Outcome::Refused(Refusal::FtpData(id)));
        }
        let Some(live) = self.slots[slot as usize].live.as_ref() else {
            return Ok(Outcome::Refused(Refusal::NoService));
        };
        let cfg = live.cfg;
        let one_packet =
            cfg.flags.contains(ServiceFlags::ONEPACKET) && pkt.protocol == crate::Protocol::Udp;
        if cfg.is_persistent() {
            return self.schedule_persist(
                now,
                pkt,
                id,
                &cfg,
                (caddr, vaddr, vport),
                one_packet,
                rng,
            );
        }
        if cfg.fwmark() == 0 && vport != cfg.port() {
            return Ok(Outcome::Refused(Refusal::PortMismatch(id)));
        }
        let Some(live) = self.slots[slot as usize].live.as_mut() else {
            return Ok(Outcome::Refused(Refusal::NoService));
        };
        let Some(dest) = live.service.pick(now, pkt, rng) else {
            return Ok(Outcome::Refused(Refusal::NoDest(id)));
        };
        let d = live.service.dest(dest).ok_or(Error::NoSuchDest(dest))?;
        let dport = if d.addr().port() != 0 {
            d.addr().port()
        } else {
            vport
        };
        let daddr = SocketAddr::new(d.addr().ip(), dport);
        live.service.conn_bind(dest, ConnKind::Inactive)?;
        Ok(Outcome::Conn(Conn {
            service: id,
            dest,
            daddr,
            template: None,
            kind: ConnKind::Inactive,
            one_packet,
        }))
    }

    /// `ip_vs_sched_persist`.
    #[allow(clippy::too_many_arguments)]
    fn schedule_persist<R: RandomSource + ?Sized>(
        &mut self,
        now: Instant,
        pkt: &PacketInfo,
        id: ServiceId,
        cfg: &ServiceConfig,
        (caddr, vaddr, vport): (IpAddr, IpAddr, u16),
        one_packet: bool,
        rng: &mut R,
    ) -> Result<Outcome, DirectorError> {
        let psvc = PersistService {
            fwmark: cfg.fwmark(),
            port: cfg.port(),
            netmask: cfg.netmask,
        };
        let key = TemplateKey::for_packet(&psvc, pkt.protocol.number(), caddr, vaddr, vport)?;
        let now_ms = self.ms(now);
        let mut slots = Slots(&mut self.slots);
        let picked = self
            .persist
            .schedule(now_ms, &key, cfg.timeout_ms(), &mut slots, |s| {
                let live = live_of_mut(s.0, id)?;
                let dest = live.service.pick(now, pkt, rng)?;
                Some(TemplateDest { service: id, dest })
            })?;
        self.reap();
        let Some(p) = picked else {
            return Ok(Outcome::Refused(Refusal::NoDest(id)));
        };
        let td = p.dest;
        let live = live_of_mut(&mut self.slots, td.service).ok_or(DirectorError::StaleConn)?;
        let d = live
            .service
            .dest(td.dest)
            .ok_or(Error::NoSuchDest(td.dest))?;
        let dport = if vport == cfg.port() && d.addr().port() != 0 {
            d.addr().port()
        } else {
            vport
        };
        let daddr = SocketAddr::new(d.addr().ip(), dport);
        live.service.conn_bind(td.dest, ConnKind::Inactive)?;
        Ok(Outcome::Conn(Conn {
            service: td.service,
            dest: td.dest,
            daddr,
            template: Some(p.template),
            kind: ConnKind::Inactive,
            one_packet,
        }))
    }

    /// Moves a connection between inactive and active, as the protocol's
    /// state transition does on entering or leaving ESTABLISHED. Setting the
    /// state it already has is a no-op.
    ///
    /// # Errors
    /// [`DirectorError::StaleConn`], or a counter error.
    pub fn set_active(&mut self, conn: &mut Conn, active: bool) -> Result<(), DirectorError> {
        let want = if active {
            ConnKind::Active
        } else {
            ConnKind::Inactive
        };
        if conn.kind == want {
            return Ok(());
        }
        let live = live_of_mut(&mut self.slots, conn.service).ok_or(DirectorError::StaleConn)?;
        live.service.conn_set_active(conn.dest, active)?;
        conn.kind = want;
        Ok(())
    }

    /// The connection expired (`ip_vs_conn_expire`): unbind it from its
    /// destination and from its template.
    ///
    /// # Errors
    /// [`DirectorError::StaleConn`], or a counter / template error (a
    /// connection closed twice).
    pub fn close(&mut self, now: Instant, conn: Conn) -> Result<(), DirectorError> {
        let live = live_of_mut(&mut self.slots, conn.service).ok_or(DirectorError::StaleConn)?;
        live.service.conn_unbind(conn.dest, conn.kind)?;
        if let Some(t) = conn.template {
            let now_ms = self.ms(now);
            self.persist
                .release(now_ms, t, &mut Slots(&mut self.slots))?;
        }
        self.reap();
        Ok(())
    }

    /// The next time [`Self::handle_timeout`] has work for the schedulers
    /// (`lblc`/`lblcr` collectors). Templates expire whenever time is passed
    /// in, so they need no deadline here.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.live.as_ref())
            .filter_map(|l| l.service.poll_timeout())
            .min()
    }

    /// Runs due scheduler timers and expires templates up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in &mut self.slots {
            if let Some(l) = s.live.as_mut()
                && l.service.poll_timeout().is_some_and(|t| t <= now)
            {
                l.service.handle_timeout(now);
            }
        }
        let now_ms = self.ms(now);
        self.persist.advance(now_ms, &mut Slots(&mut self.slots));
        self.reap();
    }

    /// Frees deleted services nothing refers to any more.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.removed.len() {
            let slot = self.removed[i];
            let s = &mut self.slots[slot as usize];
            let done = s
                .live
                .as_ref()
                .is_none_or(|l| l.service.is_empty() && l.service.trashed().next().is_none());
            if done {
                s.live = None;
                s.generation = s.generation.wrapping_add(1);
                self.free.push(slot);
                self.removed.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
