//! Many virtual routers in one task: one raw VRRP socket per (interface,
//! address family) shared by every VRID on it, one timer heap, one rtnetlink
//! socket.
//!
//! A [`Driver`](super::Driver) per instance costs a socket, a tokio task and
//! a timer each, and every one of N sockets on a link receives (and copies)
//! every advertisement on it: N² work for N instances. [`MultiDriver`]
//! receives each packet once and hands it to the routers of its VRID through
//! a 256-entry table. [`Driver`](super::Driver) is this driver holding one
//! router: there is one receive / timer / send loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::task::Poll;

use tokio::io::unix::AsyncFd;

use super::sys;
use crate::event::Event;
use crate::router::VirtualRouter;
use crate::sync::SyncGroup;
use crate::time::Instant;
use crate::transmit::{MAX_TRANSMIT_LEN, Transmit};
use crate::wire::AddressFamily;

/// A callback for router events: the router's index (from
/// [`MultiDriver::add`]), the router and the event.
pub type MultiEventHook = Box<dyn FnMut(usize, &VirtualRouter, &Event) + Send>;

/// Work run inside [`MultiDriver::run`]'s loop, sent through
/// [`MultiDriver::commands`]: how another task feeds tracking changes
/// (`router_mut(i).handle_track(..)` then `flush(i)`) while the driver runs.
pub type MultiCommand = Box<dyn FnOnce(&mut MultiDriver) + Send>;

/// Packets read from one socket per wake-up before the timers get a turn.
const RECV_BATCH: usize = 64;
/// The shared VRRP socket's receive buffer, in bytes.
const RECV_BUFFER: libc::c_int = 4 << 20;

struct Link {
    ifname: String,
    ifindex: u32,
    family: AddressFamily,
    vrrp: Arc<AsyncFd<OwnedFd>>,
    arp: Option<OwnedFd>,
    icmp6: Option<OwnedFd>,
    /// Router Solicitations, once a router on the link sends Router
    /// Advertisements.
    rs: Option<AsyncFd<OwnedFd>>,
    /// Router indices per VRID.
    by_vrid: Vec<Vec<usize>>,
    up: bool,
    /// Advertisements queued for the next `sendmmsg` on this link, and
    /// their bytes (both keep their capacity: no allocation once warm).
    pending: Vec<sys::Outgoing>,
    pending_bytes: Vec<u8>,
}

/// Where one router address goes instead of the router's own interface
/// (keepalived's `dev IFACE` and `/len` on a `virtual_ipaddress` line).
struct Placement {
    slot: usize,
    addr: IpAddr,
    prefix: u8,
    ifindex: u32,
    /// That interface's MAC, the sender of its announcements.
    mac: [u8; 6],
    /// The packet socket (IPv4, gratuitous ARP) or ICMPv6 socket (IPv6,
    /// unsolicited NA) on that interface, when it is not the router's.
    announce: Option<OwnedFd>,
}

struct Slot {
    router: VirtualRouter,
    link: usize,
    /// The deadline last pushed on the heap; heap entries that differ are stale.
    scheduled: Option<Instant>,
    /// Accept_Mode False: the router's share of the nftables drop sets.
    accept: Option<super::accept::Holder>,
    /// Whether the router's addresses are configured (between its
    /// `AddAddresses` and `RemoveAddresses`).
    holding: bool,
}

/// Runs many [`VirtualRouter`]s on one or more Linux interfaces in one
/// task.
///
/// The sockets, clock and address handling are the [`linux`](super)
/// module's; instances are added before [`MultiDriver::run`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use std::net::{IpAddr, Ipv4Addr};
/// use lb_vrrp::{Config, VirtualRouter, linux::MultiDriver, wire::Version};
///
/// let mut d = MultiDriver::new()?;
/// for vrid in 1..=200u8 {
///     let mut cfg = Config::new(Version::V3, vrid, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
///     cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, vrid))];
///     d.add(VirtualRouter::new(cfg).unwrap(), "eth0")?;
/// }
/// d.on_event(|i, r, ev| println!("{i} {:?} {ev:?}", r.state()));
/// // Another task reports that router 0's first tracked object failed.
/// let tx = d.commands();
/// tokio::spawn(async move {
///     let _ = tx.send(Box::new(|d: &mut MultiDriver| {
///         let now = d.now();
///         d.router_mut(0).handle_track(now, 0, lb_vrrp::TrackStatus::Down);
///         d.flush(0);
///     }));
/// });
/// d.run(tokio::signal::ctrl_c()).await
/// # }
/// ```
pub struct MultiDriver {
    links: Vec<Link>,
    slots: Vec<Slot>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    netlink: OwnedFd,
    seq: u32,
    epoch: tokio::time::Instant,
    prefix_v4: u8,
    prefix_v6: u8,
    on_event: Option<MultiEventHook>,
    on_error: Option<super::ErrorHook>,
    buf: Vec<u8>,
    /// Where routers write their next packet before it is queued or sent.
    tx: Box<[u8]>,
    link_poll: Option<std::time::Duration>,
    groups: Vec<SyncGroup>,
    commands: Option<tokio::sync::mpsc::UnboundedReceiver<MultiCommand>>,
    placements: Vec<Placement>,
}

impl std::fmt::Debug for MultiDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiDriver")
            .field("routers", &self.slots.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl MultiDriver {
    /// An empty driver (opens the rtnetlink socket). Call inside a tokio
    /// runtime.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            links: Vec::new(),
            slots: Vec::new(),
            heap: BinaryHeap::new(),
            netlink: sys::netlink_socket()?,
            seq: 1,
            epoch: tokio::time::Instant::now(),
            prefix_v4: 32,
            prefix_v6: 128,
            on_event: None,
            on_error: None,
            buf: vec![0; MAX_TRANSMIT_LEN.max(65536)],
            tx: vec![0; MAX_TRANSMIT_LEN].into_boxed_slice(),
            link_poll: Some(std::time::Duration::from_millis(500)),
            groups: Vec::new(),
            commands: None,
            placements: Vec::new(),
        })
    }

    /// Adds a router on `ifname` and returns its index. The interface's
    /// sockets are opened by the first router on it (per address family)
    /// and shared by the rest. If the router's [`Config::mac`](crate::Config::mac)
    /// is all zero it is set to the interface's MAC.
    pub fn add(&mut self, mut router: VirtualRouter, ifname: &str) -> io::Result<usize> {
        let accept = if router.accept_mode() {
            None
        } else {
            Some(super::accept::Holder::new(
                &router.addresses().collect::<Vec<_>>(),
            )?)
        };
        let family = router.config().family();
        let li = match self
            .links
            .iter()
            .position(|l| l.ifname == ifname && l.family == family)
        {
            Some(i) => i,
            None => {
                let ifindex = sys::ifindex(ifname)?;
                let fd = sys::vrrp_socket(router.config().primary_address, ifname, ifindex)?;
                // Up to 255 VRIDs per link whose Masters often send in the
                // same millisecond: room for bursts of a few thousand packets.
                sys::set_recv_buffer(&fd, RECV_BUFFER)?;
                let vrrp = Arc::new(sys::async_fd(fd)?);
                self.links.push(Link {
                    ifname: ifname.to_string(),
                    ifindex,
                    family,
                    vrrp,
                    arp: None,
                    icmp6: None,
                    rs: None,
                    by_vrid: vec![Vec::new(); 256],
                    up: true,
                    pending: Vec::with_capacity(sys::SEND_BATCH),
                    pending_bytes: Vec::with_capacity(sys::SEND_BATCH * 64),
                });
                self.links.len() - 1
            }
        };
        let link = &mut self.links[li];
        if router.config().mac == [0; 6]
            && let Some(mac) = super::interface_mac(ifname)
        {
            router.set_mac(mac);
        }
        if link.arp.is_none() && router.addresses().any(|a| a.is_ipv4()) {
            link.arp = Some(sys::arp_socket(link.ifindex)?);
        }
        if link.icmp6.is_none() && router.addresses().any(|a| a.is_ipv6()) {
            link.icmp6 = Some(sys::icmp6_socket(ifname, link.ifindex)?);
        }
        if link.rs.is_none() && router.config().router_advert.is_some() {
            link.rs = Some(sys::async_fd(sys::rs_socket(ifname, link.ifindex)?)?);
        }
        let idx = self.slots.len();
        link.by_vrid[usize::from(router.config().vrid)].push(idx);
        self.slots.push(Slot {
            router,
            link: li,
            scheduled: None,
            accept,
            holding: false,
        });
        Ok(idx)
    }

    /// Makes the routers at `group`'s indices change state together: each
    /// state change one of them emits is passed to
    /// [`SyncGroup::command`] and the result applied to the others.
    pub fn add_sync_group(&mut self, group: SyncGroup) {
        self.groups.push(group);
    }

    /// A sender whose [`MultiCommand`]s [`MultiDriver::run`] executes in its
    /// loop, in order. Calling it again replaces the previous channel.
    pub fn commands(&mut self) -> tokio::sync::mpsc::UnboundedSender<MultiCommand> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.commands = Some(rx);
        tx
    }

    /// How many routers were added.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no router was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Router `index`. Panics if out of range.
    pub fn router(&self, index: usize) -> &VirtualRouter {
        &self.slots[index].router
    }

    /// Router `index`, to feed it tracking changes (call
    /// [`MultiDriver::flush`] afterwards). Panics if out of range.
    pub fn router_mut(&mut self, index: usize) -> &mut VirtualRouter {
        &mut self.slots[index].router
    }

    /// Sets the prefix lengths the virtual addresses are added with
    /// (default /32 and /128).
    pub fn set_prefix_lengths(&mut self, v4: u8, v6: u8) {
        self.prefix_v4 = v4;
        self.prefix_v6 = v6;
    }

    /// Puts router `index`'s address `addr` on `ifname` with `prefix`
    /// instead of on the router's interface with the driver-wide prefix
    /// (keepalived's `virtual_ipaddress { 10.1.0.1/24 dev eth1 }`): it is
    /// added and removed there, and its gratuitous ARPs (IPv4) or
    /// unsolicited NAs (IPv6) leave from that interface with its MAC.
    /// Placing an address again replaces the earlier placement. Call before
    /// [`MultiDriver::run`].
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use lb_vrrp::{Config, VirtualRouter, linux::MultiDriver, wire::Version};
    ///
    /// let mut d = MultiDriver::new()?;
    /// let mut cfg = Config::new(Version::V2, 61, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    /// let inside = IpAddr::V4(Ipv4Addr::new(10, 11, 12, 1));
    /// cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
    /// cfg.excluded_addresses = vec![inside];
    /// let i = d.add(VirtualRouter::new(cfg).unwrap(), "eth0")?;
    /// d.place_address(i, inside, 24, "eth1")?;
    /// # Ok(()) }
    /// ```
    pub fn place_address(
        &mut self,
        index: usize,
        addr: IpAddr,
        prefix: u8,
        ifname: &str,
    ) -> io::Result<()> {
        let Some(slot) = self.slots.get(index) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no router at that index",
            ));
        };
        let ifindex = sys::ifindex(ifname)?;
        let mac = super::interface_mac(ifname).unwrap_or_else(|| slot.router.config().mac);
        let announce = if ifindex == self.links[slot.link].ifindex {
            None
        } else if addr.is_ipv4() {
            Some(sys::arp_socket(ifindex)?)
        } else {
            Some(sys::icmp6_socket(ifname, ifindex)?)
        };
        self.placements
            .retain(|p| !(p.slot == index && p.addr == addr));
        self.placements.push(Placement {
            slot: index,
            addr,
            prefix,
            ifindex,
            mac,
            announce,
        });
        Ok(())
    }

    /// How often the links' state is polled besides on every rtnetlink link
    /// event (default 500 ms); `None` stops watching links altogether (no
    /// poll, no event socket).
    pub fn set_link_poll(&mut self, every: Option<std::time::Duration>) {
        self.link_poll = every;
    }

    /// Calls `f` for every router event.
    pub fn on_event(&mut self, f: impl FnMut(usize, &VirtualRouter, &Event) + Send + 'static) {
        self.on_event = Some(Box::new(f));
    }

    /// Calls `f` for every I/O error that does not stop the driver.
    pub fn on_error(&mut self, f: impl FnMut(&io::Error) + Send + 'static) {
        self.on_error = Some(Box::new(f));
    }

    /// The current time on the routers' clock.
    pub fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Starts every router and runs them until `stop` completes; then shuts
    /// them down (Masters send priority 0 and remove their addresses).
    pub async fn run(&mut self, stop: impl Future) -> io::Result<()> {
        for li in 0..self.links.len() {
            self.check_link(li);
        }
        let now = self.now();
        for i in 0..self.slots.len() {
            self.slots[i].router.handle_startup(now);
            self.process(i);
        }
        self.send_pending();
        tokio::pin!(stop);
        let mut link_timer = self.link_poll.map(tokio::time::interval);
        // Link events wake the link check at once (a Master whose link
        // fails goes to Initialize/FAULT within milliseconds, as keepalived
        // does on its netlink link messages); the poll stays as the
        // fallback. Without a poll interval, link state is not watched at
        // all, so no event socket either.
        let link_events = if self.link_poll.is_some() {
            match sys::link_events_socket().and_then(sys::async_fd) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    self.error(&e);
                    None
                }
            }
        } else {
            None
        };
        let mut commands = self.commands.take();
        loop {
            let command = async {
                match commands.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let link_tick = async {
                match link_timer.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let deadline = self.next_deadline();
            let epoch = self.epoch;
            let sleep = async {
                match deadline {
                    Some(d) => {
                        tokio::time::sleep_until(
                            epoch + std::time::Duration::from_micros(d.as_micros()),
                        )
                        .await
                    }
                    None => std::future::pending().await,
                }
            };
            let link_event = async {
                match link_events.as_ref() {
                    Some(fd) => fd.readable().await.map(|mut g| {
                        g.clear_ready();
                    }),
                    None => std::future::pending().await,
                }
            };
            let links = &self.links;
            let readable = std::future::poll_fn(|cx| {
                for (i, l) in links.iter().enumerate() {
                    match l.vrrp.poll_read_ready(cx) {
                        // The guard is dropped without clearing: `drain` clears
                        // the readiness when a read would block.
                        Poll::Ready(Ok(_)) => return Poll::Ready(Ok(i)),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {}
                    }
                }
                Poll::Pending
            });
            let solicited = std::future::poll_fn(|cx| {
                for (i, l) in links.iter().enumerate() {
                    if let Some(rs) = &l.rs {
                        match rs.poll_read_ready(cx) {
                            Poll::Ready(Ok(_)) => return Poll::Ready(Ok(i)),
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => {}
                        }
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                _ = &mut stop => break,
                r = readable => match r {
                    Ok(li) => self.drain(li),
                    Err(e) => self.error(&e),
                },
                r = solicited => match r {
                    Ok(li) => self.drain_solicitations(li),
                    Err(e) => self.error(&e),
                },
                () = sleep => self.expire(),
                c = command => match c {
                    Some(c) => c(self),
                    // Every sender is gone: nothing more will come.
                    None => commands = None,
                },
                () = link_tick => {
                    for li in 0..self.links.len() {
                        self.check_link(li);
                    }
                }
                r = link_event => {
                    // The messages themselves are not parsed: operstate
                    // stays the one source of truth.
                    if let Err(e) = r.and_then(|()| {
                        let fd = link_events.as_ref().map(|f| f.get_ref().as_raw_fd());
                        fd.map_or(Ok(false), sys::discard_all)
                    }) {
                        self.error(&e);
                    }
                    for li in 0..self.links.len() {
                        self.check_link(li);
                    }
                }
            }
            // Whatever this turn queued (every router whose timer fired, every
            // answer to a received packet) leaves in one sendmmsg per link.
            self.send_pending();
        }
        let now = self.now();
        for i in 0..self.slots.len() {
            self.slots[i].router.handle_shutdown(now);
            self.process(i);
        }
        self.send_pending();
        Ok(())
    }

    /// The earliest live deadline, dropping stale heap entries.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if self.slots[i].scheduled == Some(t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Runs every router whose deadline has passed.
    fn expire(&mut self) {
        let now = self.now();
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if self.slots[i].scheduled != Some(t) {
                continue;
            }
            self.slots[i].scheduled = None;
            self.slots[i].router.handle_timeout(now);
            self.process(i);
        }
    }

    /// Reads up to [`RECV_BATCH`] packets from link `li`; the readiness is
    /// cleared only when a read would block, so a full batch is picked up
    /// again on the next turn of the loop.
    fn drain(&mut self, li: usize) {
        let fd = Arc::clone(&self.links[li].vrrp);
        let family = self.links[li].family;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(mut guard)) = fd.poll_read_ready(&mut cx) else {
            return;
        };
        for _ in 0..RECV_BATCH {
            match sys::recv_vrrp(fd.get_ref().as_raw_fd(), family, &mut self.buf) {
                Ok(Some((meta, range))) => {
                    // The VRID is the second byte in both versions.
                    let Some(&vrid) = self.buf.get(range.start + 1) else {
                        continue;
                    };
                    let now = self.now();
                    for k in 0..self.links[li].by_vrid[usize::from(vrid)].len() {
                        let i = self.links[li].by_vrid[usize::from(vrid)][k];
                        self.slots[i]
                            .router
                            .handle_packet(now, meta, &self.buf[range.clone()]);
                        self.process(i);
                    }
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    return;
                }
                Err(e) => {
                    self.error(&e);
                    return;
                }
            }
        }
    }

    /// Reads link `li`'s Router Solicitations; if one was valid (RFC 4861
    /// §6.1.1), every router on the link that sends Router Advertisements
    /// is told.
    fn drain_solicitations(&mut self, li: usize) {
        let Some(fd) = self.links[li].rs.as_ref() else {
            return;
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(mut guard)) = fd.poll_read_ready(&mut cx) else {
            return;
        };
        let raw = fd.get_ref().as_raw_fd();
        let mut valid = false;
        let mut error = None;
        for _ in 0..RECV_BATCH {
            match sys::recv_vrrp(raw, AddressFamily::Ipv6, &mut self.buf) {
                Ok(Some((meta, range))) => {
                    if let IpAddr::V6(src) = meta.src {
                        valid |=
                            crate::wire::ra::is_valid_solicitation(&self.buf[range], src, meta.ttl);
                    }
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            self.error(&e);
        }
        if valid {
            let now = self.now();
            for i in 0..self.slots.len() {
                if self.slots[i].link == li && self.slots[i].router.config().router_advert.is_some()
                {
                    self.slots[i].router.handle_router_solicitation(now);
                    self.process(i);
                }
            }
        }
    }

    /// Reads link `li`'s state and tells its routers when it changed.
    fn check_link(&mut self, li: usize) {
        let up = match sys::link_up(&self.links[li].ifname) {
            Ok(up) => up,
            Err(e) => {
                // Cannot tell: keep what we believe.
                self.error(&e);
                return;
            }
        };
        if up == self.links[li].up {
            return;
        }
        self.links[li].up = up;
        let now = self.now();
        for i in 0..self.slots.len() {
            if self.slots[i].link == li {
                self.slots[i].router.handle_link(now, up);
                self.process(i);
            }
        }
    }

    /// Applies router `index`'s pending events (address changes first) and
    /// sends its pending packets, in the order [`VirtualRouter`] documents,
    /// and reschedules its timer.
    /// Call it after any `handle_*` on [`router_mut`](Self::router_mut).
    pub fn flush(&mut self, index: usize) {
        self.process(index);
        self.send_pending();
    }

    /// [`flush`](Self::flush) without sending the queued advertisements:
    /// the loop sends them once per turn, batched.
    fn process(&mut self, index: usize) {
        let mut sync = Vec::new();
        while let Some(ev) = self.slots[index].router.poll_event() {
            match ev {
                Event::AddAddresses => self.change_addresses(index, true),
                Event::RemoveAddresses => self.change_addresses(index, false),
                Event::StateChanged { .. } => {
                    for g in &self.groups {
                        if let Some(cmd) = g.command(index, &ev) {
                            sync.extend(
                                g.members()
                                    .iter()
                                    .filter(|&&m| m != index && m < self.slots.len())
                                    .map(|&m| (m, cmd)),
                            );
                        }
                    }
                }
                _ => {}
            }
            if let Some(f) = self.on_event.as_mut() {
                f(index, &self.slots[index].router, &ev);
            }
        }
        self.send(index);
        // Changes caused by the group carry `Reason::Sync` and cause no
        // further commands, so this recursion is one level deep.
        for (m, cmd) in sync {
            let now = self.now();
            self.slots[m].router.handle_sync(now, cmd);
            self.process(m);
        }
    }

    /// Queues router `index`'s advertisements on its link (other packets
    /// go out at once, after what is queued, so the order on the wire is the
    /// router's) and reschedules its timer.
    fn send(&mut self, index: usize) {
        let li = self.slots[index].link;
        while let Some(t) = self.slots[index].router.poll_transmit(&mut self.tx) {
            // A link known to be down carries nothing; the kernel would
            // refuse it (the priority-0 advertisement of a Master whose link
            // just failed, for one).
            if !self.links[li].up {
                continue;
            }
            let len = t.len();
            let announced = match t {
                Transmit::Advertisement { src, dst, .. } => {
                    let link = &mut self.links[li];
                    link.pending.push(sys::Outgoing {
                        src,
                        dst,
                        start: link.pending_bytes.len(),
                        len,
                    });
                    link.pending_bytes.extend_from_slice(&self.tx[..len]);
                    if link.pending.len() == sys::SEND_BATCH {
                        self.send_link(li);
                    }
                    continue;
                }
                Transmit::GratuitousArp { address, .. } => Some(IpAddr::V4(address)),
                Transmit::NeighborAdvertisement { address, .. } => Some(IpAddr::V6(address)),
                Transmit::RouterAdvertisement { .. } => None,
            };
            self.send_link(li);
            let placed = self
                .placements
                .iter()
                .find(|p| p.slot == index && Some(p.addr) == announced)
                .and_then(|p| Some((p, p.announce.as_ref()?)));
            let link = &self.links[li];
            let buf = &mut self.tx;
            let r = match (placed, t) {
                // The same announcement from the placed address's interface:
                // its MAC as the Ethernet and ARP sender.
                (Some((p, fd)), Transmit::GratuitousArp { .. }) if len >= 28 => {
                    buf[6..12].copy_from_slice(&p.mac);
                    buf[22..28].copy_from_slice(&p.mac);
                    sys::send_frame(fd.as_raw_fd(), &buf[..len])
                }
                // The target link-layer address option ends the message; the
                // raw ICMPv6 socket recomputes the checksum.
                (Some((p, fd)), Transmit::NeighborAdvertisement { dst, .. }) if len >= 6 => {
                    buf[len - 6..len].copy_from_slice(&p.mac);
                    sys::send_to(fd.as_raw_fd(), IpAddr::V6(dst), p.ifindex, &buf[..len])
                }
                _ => send_transmit(
                    t,
                    &buf[..len],
                    link.vrrp.get_ref(),
                    link.arp.as_ref(),
                    link.icmp6.as_ref(),
                    link.ifindex,
                ),
            };
            if let Err(e) = r
                && let Some(f) = self.on_error.as_mut()
            {
                f(&e);
            }
        }
        let next = self.slots[index].router.poll_timeout();
        if next != self.slots[index].scheduled {
            self.slots[index].scheduled = next;
            if let Some(t) = next {
                self.heap.push(Reverse((t, index)));
            }
        }
    }

    /// Sends every link's queued advertisements.
    fn send_pending(&mut self) {
        for li in 0..self.links.len() {
            self.send_link(li);
        }
    }

    /// Sends link `li`'s queued advertisements with one `sendmmsg`.
    fn send_link(&mut self, li: usize) {
        let link = &mut self.links[li];
        if link.pending.is_empty() {
            return;
        }
        let on_error = &mut self.on_error;
        sys::send_vrrp_batch(
            link.vrrp.get_ref().as_raw_fd(),
            link.ifindex,
            &link.pending_bytes,
            &link.pending,
            |e| {
                if let Some(f) = on_error.as_mut() {
                    f(&e);
                }
            },
        );
        link.pending.clear();
        link.pending_bytes.clear();
    }

    /// Where router `index`'s address `a` goes: its prefix and interface.
    fn target(&self, index: usize, a: IpAddr) -> (u8, u32) {
        match self
            .placements
            .iter()
            .find(|p| p.slot == index && p.addr == a)
        {
            Some(p) => (p.prefix, p.ifindex),
            None if a.is_ipv4() => (self.prefix_v4, self.links[self.slots[index].link].ifindex),
            None => (self.prefix_v6, self.links[self.slots[index].link].ifindex),
        }
    }

    fn change_addresses(&mut self, index: usize, add: bool) {
        self.slots[index].holding = add;
        let addrs: Vec<IpAddr> = self.slots[index].router.addresses().collect();
        // Accept_Mode False: drop traffic to the addresses before they exist.
        if add
            && let Some(h) = &self.slots[index].accept
            && let Err(e) = h.set_blocked(&addrs, true)
        {
            self.error(&e);
        }
        for &a in &addrs {
            let (prefix, ifindex) = self.target(index, a);
            // Another router of this driver holding the same address on the
            // same interface keeps it (two VRIDs with one VIP).
            if !add
                && (0..self.slots.len()).any(|j| {
                    j != index
                        && self.slots[j].holding
                        && self.slots[j].router.addresses().any(|b| b == a)
                        && self.target(j, a).1 == ifindex
                })
            {
                continue;
            }
            self.seq = self.seq.wrapping_add(1);
            let req = sys::addr_request(add, a, prefix, ifindex, self.seq);
            match sys::netlink_call(&self.netlink, &req, self.seq) {
                Ok(0) => {}
                Ok(e) if add && e == libc::EEXIST => {}
                Ok(e) if !add && e == libc::EADDRNOTAVAIL => {}
                Ok(e) => self.error(&io::Error::from_raw_os_error(e)),
                Err(e) => self.error(&e),
            }
        }
        if !add
            && let Some(h) = &self.slots[index].accept
            && let Err(e) = h.set_blocked(&addrs, false)
        {
            self.error(&e);
        }
    }

    fn error(&mut self, e: &io::Error) {
        if let Some(f) = self.on_error.as_mut() {
            f(e);
        }
    }
}

/// Sends one polled [`Transmit`] on the socket its kind needs: VRRP on the
/// raw protocol-112 socket, gratuitous ARP on the packet socket, unsolicited
/// NA and Router Advertisement on the ICMPv6 socket (a kind whose socket the interface lacks is
/// dropped).
fn send_transmit(
    t: Transmit,
    bytes: &[u8],
    vrrp: &OwnedFd,
    arp: Option<&OwnedFd>,
    icmp6: Option<&OwnedFd>,
    ifindex: u32,
) -> io::Result<()> {
    match t {
        Transmit::Advertisement { src, dst, .. } => {
            sys::send_vrrp(vrrp.as_raw_fd(), src, dst, ifindex, bytes)
        }
        Transmit::GratuitousArp { .. } => {
            arp.map_or(Ok(()), |fd| sys::send_frame(fd.as_raw_fd(), bytes))
        }
        Transmit::NeighborAdvertisement { dst, .. } => icmp6.map_or(Ok(()), |fd| {
            sys::send_to(fd.as_raw_fd(), IpAddr::V6(dst), ifindex, bytes)
        }),
        // From the (virtual) link-local source, chosen with IPV6_PKTINFO as
        // for advertisements; the kernel fills in the ICMPv6 checksum.
        Transmit::RouterAdvertisement { src, dst, .. } => icmp6.map_or(Ok(()), |fd| {
            sys::send_vrrp(
                fd.as_raw_fd(),
                IpAddr::V6(src),
                IpAddr::V6(dst),
                ifindex,
                bytes,
            )
        }),
    }
}
