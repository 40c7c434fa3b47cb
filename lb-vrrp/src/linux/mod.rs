//! Linux driver (feature `linux`): runs one [`VirtualRouter`] on one
//! interface with tokio.
//!
//! * a raw IP protocol 112 socket bound to the interface, joined to
//!   224.0.0.18 / ff02::12, sending with TTL / Hop Limit 255; the received
//!   TTL comes from the IPv4 header or the `IPV6_HOPLIMIT` control message
//!   (`IPV6_RECVHOPLIMIT`), the IPv6 destination from `IPV6_PKTINFO`;
//! * gratuitous ARPs through an `AF_PACKET` socket, unsolicited NAs and
//!   Router Advertisements (when configured) through a raw ICMPv6 socket
//!   (Hop Limit 255);
//! * virtual addresses added / removed with rtnetlink `RTM_NEWADDR` /
//!   `RTM_DELADDR` (IPv4 /32 by default, IPv6 /128 `nodad`);
//! * time from tokio's monotonic clock, as microseconds since the driver
//!   started.
//!
//! * Accept_Mode False on a non-owner: nftables drop rules for the
//!   addresses while Active (see the `accept` module: table `inet lb_vrrp`,
//!   IPv6 NS/NA exempted), through the `nft` program.
//!
//! Needs `CAP_NET_RAW` and `CAP_NET_ADMIN`. The interface's link state is
//! polled from sysfs (`operstate`, every 500 ms by default) and fed to
//! [`VirtualRouter::handle_link`]: a down link is FAULT, as in keepalived.
//! Tracked objects are not watched: feed them through [`Driver::router_mut`]
//! (`handle_track`), or, while a [`MultiDriver`] runs, through its
//! [`MultiDriver::commands`] channel. [`MultiDriver::add_sync_group`] makes
//! its routers change state together.

mod accept;
mod multi;
mod sys;

pub use multi::{MultiCommand, MultiDriver, MultiEventHook};

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::event::Event;
use crate::router::VirtualRouter;
use crate::time::Instant;
use crate::transmit::{MAX_TRANSMIT_LEN, Transmit};

/// A callback for router events (state changes, discards, …).
pub type EventHook = Box<dyn FnMut(&VirtualRouter, &Event) + Send>;
/// A callback for I/O errors that do not stop the driver (a failed send or
/// address change).
pub type ErrorHook = Box<dyn FnMut(&io::Error) + Send>;

/// Runs a [`VirtualRouter`] on a Linux interface.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use std::net::{IpAddr, Ipv4Addr};
/// use lb_vrrp::{Config, VirtualRouter, linux::Driver, wire::Version};
///
/// let mut cfg = Config::new(Version::V3, 51, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
/// cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))];
/// let mut driver = Driver::new(VirtualRouter::new(cfg).unwrap(), "eth0")?;
/// driver.on_event(|r, ev| println!("{:?} {ev:?}", r.state()));
/// driver.run(tokio::signal::ctrl_c()).await
/// # }
/// ```
pub struct Driver {
    router: VirtualRouter,
    ifindex: u32,
    vrrp: AsyncFd<OwnedFd>,
    arp: Option<OwnedFd>,
    icmp6: Option<OwnedFd>,
    /// Router Solicitations, when the router sends Router Advertisements.
    rs: Option<AsyncFd<OwnedFd>>,
    rs_buf: Vec<u8>,
    netlink: OwnedFd,
    seq: u32,
    epoch: tokio::time::Instant,
    prefix_v4: u8,
    prefix_v6: u8,
    on_event: Option<EventHook>,
    on_error: Option<ErrorHook>,
    buf: Vec<u8>,
    ifname: String,
    link_poll: Option<std::time::Duration>,
    link_up: bool,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("router", &self.router)
            .field("ifindex", &self.ifindex)
            .finish_non_exhaustive()
    }
}

/// The MAC address of `ifname`, from sysfs.
pub fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Waits for the socket to be readable and receives one packet (`None` when
/// the readiness was spurious or the packet had no IP header).
async fn recv_one(
    fd: &AsyncFd<OwnedFd>,
    family: crate::wire::AddressFamily,
    buf: &mut [u8],
) -> io::Result<Option<(crate::transmit::RxMeta, core::ops::Range<usize>)>> {
    let mut guard = fd.readable().await?;
    match guard.try_io(|fd| sys::recv_vrrp(fd.get_ref().as_raw_fd(), family, buf)) {
        Ok(r) => r,
        Err(_would_block) => Ok(None),
    }
}

/// Waits for a Router Solicitation on `fd` (forever without one); whether
/// it was valid (RFC 4861 §6.1.1).
async fn recv_solicitation(fd: Option<&AsyncFd<OwnedFd>>, buf: &mut [u8]) -> io::Result<bool> {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    Ok(
        match recv_one(fd, crate::wire::AddressFamily::Ipv6, buf).await? {
            Some((meta, range)) => match meta.src {
                IpAddr::V6(src) => {
                    crate::wire::ra::is_valid_solicitation(&buf[range], src, meta.ttl)
                }
                IpAddr::V4(_) => false,
            },
            None => false,
        },
    )
}

impl Driver {
    /// Opens the sockets on `ifname`. Call inside a tokio runtime. If the
    /// router's [`Config::mac`](crate::Config::mac) is all zero, it is set to
    /// the interface's MAC.
    pub fn new(mut router: VirtualRouter, ifname: &str) -> io::Result<Self> {
        let ifindex = sys::ifindex(ifname)?;
        if router.config().mac == [0; 6]
            && let Some(mac) = interface_mac(ifname)
        {
            router.set_mac(mac);
        }
        if !router.accept_mode() {
            accept::prepare(&router.addresses().collect::<Vec<_>>())?;
        }
        let cfg = router.config();
        let vrrp = sys::async_fd(sys::vrrp_socket(cfg.primary_address, ifname, ifindex)?)?;
        let any_v4 = router.addresses().any(|a| a.is_ipv4());
        let any_v6 = router.addresses().any(|a| a.is_ipv6());
        let arp = if any_v4 {
            Some(sys::arp_socket(ifindex)?)
        } else {
            None
        };
        let icmp6 = if any_v6 {
            Some(sys::icmp6_socket(ifname, ifindex)?)
        } else {
            None
        };
        let rs = match router.config().router_advert {
            Some(_) => Some(sys::async_fd(sys::rs_socket(ifname, ifindex)?)?),
            None => None,
        };
        Ok(Self {
            router,
            ifindex,
            vrrp,
            arp,
            icmp6,
            rs,
            rs_buf: vec![0; 1500],
            netlink: sys::netlink_socket()?,
            seq: 1,
            epoch: tokio::time::Instant::now(),
            prefix_v4: 32,
            prefix_v6: 128,
            on_event: None,
            on_error: None,
            buf: vec![0; MAX_TRANSMIT_LEN.max(65536)],
            ifname: ifname.to_string(),
            link_poll: Some(std::time::Duration::from_millis(500)),
            link_up: true,
        })
    }

    /// Sets the prefix lengths the virtual addresses are added with
    /// (default /32 and /128).
    pub fn set_prefix_lengths(&mut self, v4: u8, v6: u8) {
        self.prefix_v4 = v4;
        self.prefix_v6 = v6;
    }

    /// How often the link state is polled; `None` stops polling (default 500 ms).
    pub fn set_link_poll(&mut self, every: Option<std::time::Duration>) {
        self.link_poll = every;
    }

    /// Calls `f` for every router event.
    pub fn on_event(&mut self, f: impl FnMut(&VirtualRouter, &Event) + Send + 'static) {
        self.on_event = Some(Box::new(f));
    }

    /// Calls `f` for every I/O error that does not stop the driver.
    pub fn on_error(&mut self, f: impl FnMut(&io::Error) + Send + 'static) {
        self.on_error = Some(Box::new(f));
    }

    /// The router.
    pub fn router(&self) -> &VirtualRouter {
        &self.router
    }

    /// The router, to feed it tracking or link changes (call
    /// [`Driver::flush`] afterwards).
    pub fn router_mut(&mut self) -> &mut VirtualRouter {
        &mut self.router
    }

    /// The current time on the router's clock.
    pub fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Starts the router and runs it until `stop` completes; then shuts it
    /// down (a Master sends priority 0 and removes its addresses). I/O
    /// errors while running go to [`Driver::on_error`] and do not stop it.
    pub async fn run(&mut self, stop: impl Future) -> io::Result<()> {
        self.check_link();
        let now = self.now();
        self.router.handle_startup(now);
        self.flush();
        tokio::pin!(stop);
        let mut link_timer = self.link_poll.map(tokio::time::interval);
        loop {
            let link_tick = async {
                match link_timer.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let deadline = self
                .router
                .poll_timeout()
                .map(|t| self.epoch + std::time::Duration::from_micros(t.as_micros()));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let family = self.router.config().family();
            tokio::select! {
                _ = &mut stop => break,
                r = recv_one(&self.vrrp, family, &mut self.buf) => match r {
                    Ok(Some((meta, range))) => {
                        let now = self.now();
                        self.router.handle_packet(now, meta, &self.buf[range]);
                        self.flush();
                    }
                    Ok(None) => {}
                    // A receive error (e.g. a queued ICMP error, ENOBUFS) is reported,
                    // not fatal: the router keeps running on its timers.
                    Err(e) => self.error(&e),
                },
                () = sleep => {
                    let now = self.now();
                    self.router.handle_timeout(now);
                    self.flush();
                }
                () = link_tick => {
                    self.check_link();
                    self.flush();
                }
                r = recv_solicitation(self.rs.as_ref(), &mut self.rs_buf) => match r {
                    Ok(true) => {
                        let now = self.now();
                        self.router.handle_router_solicitation(now);
                        self.flush();
                    }
                    Ok(false) => {}
                    Err(e) => self.error(&e),
                },
            }
        }
        let now = self.now();
        self.router.handle_shutdown(now);
        self.flush();
        Ok(())
    }

    /// Applies the router's pending events (address changes first) and sends
    /// its pending packets, in the order [`VirtualRouter`] documents.
    pub fn flush(&mut self) {
        while let Some(ev) = self.router.poll_event() {
            match ev {
                Event::AddAddresses => self.change_addresses(true),
                Event::RemoveAddresses => self.change_addresses(false),
                _ => {}
            }
            if let Some(f) = self.on_event.as_mut() {
                f(&self.router, &ev);
            }
        }
        let mut buf = [0u8; MAX_TRANSMIT_LEN];
        while let Some(t) = self.router.poll_transmit(&mut buf) {
            let bytes = &buf[..t.len()];
            let r = send_transmit(
                t,
                bytes,
                self.vrrp.get_ref(),
                self.arp.as_ref(),
                self.icmp6.as_ref(),
                self.ifindex,
            );
            if let Err(e) = r {
                self.error(&e);
            }
        }
    }

    /// Reads the link state and tells the router when it changed.
    fn check_link(&mut self) {
        let state = std::fs::read_to_string(format!("/sys/class/net/{}/operstate", self.ifname))
            .unwrap_or_default();
        // "unknown" (e.g. some virtual devices) counts as up, like keepalived.
        let up = !matches!(state.trim(), "down" | "lowerlayerdown" | "notpresent");
        if up != self.link_up {
            self.link_up = up;
            let now = self.now();
            self.router.handle_link(now, up);
        }
    }

    fn change_addresses(&mut self, add: bool) {
        let addrs: Vec<IpAddr> = self.router.addresses().collect();
        // Accept_Mode False: drop traffic to the addresses before they exist
        // (and until after they are gone).
        let enforce = !self.router.accept_mode();
        if enforce
            && add
            && let Err(e) = accept::set_blocked(&addrs, true)
        {
            self.error(&e);
        }
        for &a in &addrs {
            let prefix = if a.is_ipv4() {
                self.prefix_v4
            } else {
                self.prefix_v6
            };
            self.seq = self.seq.wrapping_add(1);
            let req = sys::addr_request(add, a, prefix, self.ifindex, self.seq);
            match sys::netlink_call(&self.netlink, &req, self.seq) {
                // Adding an address that is there, or removing one that is not, is fine.
                Ok(0) => {}
                Ok(e) if add && e == libc::EEXIST => {}
                Ok(e) if !add && e == libc::EADDRNOTAVAIL => {}
                Ok(e) => self.error(&io::Error::from_raw_os_error(e)),
                Err(e) => self.error(&e),
            }
        }
        if enforce
            && !add
            && let Err(e) = accept::set_blocked(&addrs, false)
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
/// dropped). Shared by [`Driver`] and [`MultiDriver`].
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
