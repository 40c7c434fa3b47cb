//! Linux drivers (feature `linux`): [`MultiDriver`] runs any number of
//! [`VirtualRouter`]s in one tokio task, [`Driver`] is a [`MultiDriver`]
//! holding one. Both use:
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
//!   started;
//! * Accept_Mode False on a non-owner: nftables drop rules for the
//!   addresses while Active (see the `accept` module: table `inet lb_vrrp`,
//!   IPv6 NS/NA exempted), through the `nft` program.
//!
//! Needs `CAP_NET_RAW` and `CAP_NET_ADMIN`. The interface's link state
//! (`IFF_UP` and `IFF_RUNNING`, asked in the driver thread's network
//! namespace) is read on every rtnetlink link event (`RTMGRP_LINK`) and
//! polled every 500 ms by default in case an event is lost, and fed to
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

use crate::event::Event;
use crate::router::VirtualRouter;
use crate::time::Instant;

/// A callback for router events (state changes, discards, …).
pub type EventHook = Box<dyn FnMut(&VirtualRouter, &Event) + Send>;
/// A callback for I/O errors that do not stop the driver (a failed send or
/// address change).
pub type ErrorHook = Box<dyn FnMut(&io::Error) + Send>;

/// Runs a [`VirtualRouter`] on a Linux interface.
///
/// A [`MultiDriver`] holding one router (index 0): the same loop, sockets,
/// timers, `sendmmsg` batching, Accept_Mode enforcement and address
/// placement ([`Driver::place_address`]). What that means for one router:
///
/// * the router is handed only advertisements carrying its VRID (the
///   shared receive path dispatches by VRID), so it never reports a
///   [`DiscardReason::VridMismatch`](crate::DiscardReason::VridMismatch)
///   discard, nor a packet too short to carry a VRID;
/// * its VRRP socket gets a 4 MiB receive buffer (memory is only used by
///   queued packets).
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
    inner: MultiDriver,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("router", self.router())
            .finish_non_exhaustive()
    }
}

/// The MAC address of `ifname`: asked of the kernel in the calling
/// thread's network namespace, else read from sysfs.
pub fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    if let Ok(mac) = sys::hw_addr(ifname) {
        return Some(mac);
    }
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl Driver {
    /// Opens the sockets on `ifname`. Call inside a tokio runtime. If the
    /// router's [`Config::mac`](crate::Config::mac) is all zero, it is set to
    /// the interface's MAC.
    pub fn new(router: VirtualRouter, ifname: &str) -> io::Result<Self> {
        let mut inner = MultiDriver::new()?;
        inner.add(router, ifname)?;
        Ok(Self { inner })
    }

    /// Sets the prefix lengths the virtual addresses are added with
    /// (default /32 and /128).
    pub fn set_prefix_lengths(&mut self, v4: u8, v6: u8) {
        self.inner.set_prefix_lengths(v4, v6);
    }

    /// Puts the router's address `addr` on `ifname` with `prefix`, as
    /// [`MultiDriver::place_address`]. Call before [`Driver::run`].
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use lb_vrrp::{Config, VirtualRouter, linux::Driver, wire::Version};
    ///
    /// let mut cfg = Config::new(Version::V2, 61, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    /// let inside = IpAddr::V4(Ipv4Addr::new(10, 11, 12, 1));
    /// cfg.virtual_addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
    /// cfg.excluded_addresses = vec![inside];
    /// let mut d = Driver::new(VirtualRouter::new(cfg).unwrap(), "eth0")?;
    /// d.place_address(inside, 24, "eth1")?;
    /// # Ok(()) }
    /// ```
    pub fn place_address(&mut self, addr: IpAddr, prefix: u8, ifname: &str) -> io::Result<()> {
        self.inner.place_address(0, addr, prefix, ifname)
    }

    /// How often the link state is polled besides on every rtnetlink link
    /// event (default 500 ms); `None` stops watching the link altogether.
    pub fn set_link_poll(&mut self, every: Option<std::time::Duration>) {
        self.inner.set_link_poll(every);
    }

    /// Calls `f` for every router event.
    pub fn on_event(&mut self, mut f: impl FnMut(&VirtualRouter, &Event) + Send + 'static) {
        self.inner.on_event(move |_, r, ev| f(r, ev));
    }

    /// Calls `f` for every I/O error that does not stop the driver.
    pub fn on_error(&mut self, f: impl FnMut(&io::Error) + Send + 'static) {
        self.inner.on_error(f);
    }

    /// The router.
    pub fn router(&self) -> &VirtualRouter {
        self.inner.router(0)
    }

    /// The router, to feed it tracking or link changes (call
    /// [`Driver::flush`] afterwards).
    pub fn router_mut(&mut self) -> &mut VirtualRouter {
        self.inner.router_mut(0)
    }

    /// The current time on the router's clock.
    pub fn now(&self) -> Instant {
        self.inner.now()
    }

    /// Starts the router and runs it until `stop` completes; then shuts it
    /// down (a Master sends priority 0 and removes its addresses). I/O
    /// errors while running go to [`Driver::on_error`] and do not stop it.
    pub async fn run(&mut self, stop: impl Future) -> io::Result<()> {
        self.inner.run(stop).await
    }

    /// Applies the router's pending events (address changes first) and sends
    /// its pending packets, in the order [`VirtualRouter`] documents.
    pub fn flush(&mut self) {
        self.inner.flush(0);
    }
}
