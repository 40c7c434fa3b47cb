//! A host: one network namespace, and everything tests do inside it.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cmd;
use crate::error::{Error, Result};
use crate::names::check_ifname;
use crate::process::Process;
use crate::sys;

/// Where `ip netns add` binds namespaces.
pub(crate) const NETNS_RUN_DIR: &str = "/run/netns";

/// One host of a [`Lab`](crate::Lab): a network namespace with `lo` up and
/// IPv6 duplicate address detection off (`accept_dad=0`), so addresses work
/// as soon as they are added.
///
/// `Host` is a cheap handle (clone it into threads freely). The namespace
/// belongs to the lab: after the lab is dropped, every method fails.
#[derive(Clone, Debug)]
pub struct Host {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    netns: String,
}

impl Host {
    pub(crate) fn new(name: &str, netns: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                netns,
            }),
        }
    }

    /// The short name given to [`Lab::add_host`](crate::Lab::add_host).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace's name, as `ip netns list` shows it.
    #[must_use]
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// The namespace's bind mount, `/run/netns/<netns>`.
    #[must_use]
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(NETNS_RUN_DIR).join(self.netns())
    }

    // ---- Running things in the namespace ------------------------------------

    /// Runs `ip -n <netns> ARGS...` and returns its stdout: the escape hatch
    /// for anything the typed helpers do not cover.
    pub fn ip<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), self.netns().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        cmd::ip(all)
    }

    /// A [`Command`] that runs `program` inside the namespace
    /// (`ip netns exec <netns> <program>`). Add arguments and stdio as usual.
    ///
    /// `program` is resolved through `PATH` and the sbin directories first.
    #[must_use]
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let ip = cmd::ip_program().map_or_else(|_| PathBuf::from("ip"), PathBuf::from);
        let mut command = Command::new(ip);
        command
            .args(["netns", "exec", self.netns()])
            .arg(cmd::resolve(program.as_ref()));
        command
    }

    /// Runs `program ARGS...` in the namespace to completion; a non-zero exit
    /// is an [`Error::Command`] with the command line and stderr, a program
    /// that is not installed an [`Error::ProgramMissing`].
    pub fn run<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        require(program)?;
        let mut command = self.command(program);
        command.args(args);
        cmd::run(&mut command)
    }

    /// Starts `program ARGS...` in the namespace in the background, with
    /// stdout/stderr inherited. The returned guard kills its process group on
    /// drop. For custom stdio use `Process::spawn(host.command(..))`. The
    /// process's pid is the program's own (`ip netns exec` execs it).
    pub fn spawn<I, S>(&self, program: &str, args: I) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        require(program)?;
        let mut command = self.command(program);
        command.args(args);
        Process::spawn(command)
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns
    /// its value; a panic in `f` is resumed on the caller's thread.
    ///
    /// Sockets created inside `f` stay in this namespace after it returns, so
    /// the usual pattern is to *create* a socket here and use it anywhere:
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let lab = lb_testing_netns::Lab::new("doc")?;
    /// # let server = lab.add_host("server")?;
    /// let listener = server.run_in(|| std::net::TcpListener::bind("0.0.0.0:8080"))??;
    /// std::thread::spawn(move || {
    ///     for stream in listener.incoming() {
    ///         drop(stream); // serve it
    ///     }
    /// });
    /// # Ok(()) }
    /// ```
    pub fn run_in<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = self.netns_path();
        thread::scope(|scope| {
            let handle = thread::Builder::new()
                .name(format!("netns:{}", self.name()))
                .spawn_scoped(scope, move || -> Result<T> {
                    self.enter(&path)?;
                    Ok(f())
                })
                .map_err(|source| self.setns_error(source))?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts a background thread that enters this namespace and runs `f`
    /// (a server loop, a tokio runtime, a forwarder...). Entering is checked
    /// before this returns.
    pub fn spawn_thread<F, T>(&self, f: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let host = self.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = thread::Builder::new()
            .name(format!("netns:{}", self.name()))
            .spawn(move || {
                let entered = host.enter(&host.netns_path());
                let ok = entered.is_ok();
                // The receiver waits for this message; it cannot be gone.
                let _ = tx.send(entered);
                if !ok {
                    // The error went to the caller; end quietly (no panic message).
                    std::panic::resume_unwind(Box::new("lb-testing-netns: setns failed"));
                }
                f()
            })
            .map_err(|source| self.setns_error(source))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.setns_error(std::io::Error::other("thread ended early"))),
        }
    }

    fn enter(&self, path: &std::path::Path) -> Result<()> {
        sys::enter_netns(path).map_err(|source| self.setns_error(source))
    }

    fn setns_error(&self, source: std::io::Error) -> Error {
        Error::Setns {
            netns: self.netns().to_owned(),
            source,
        }
    }

    // ---- Sysctls ------------------------------------------------------------

    /// Sets a sysctl inside the namespace, e.g.
    /// `host.sysctl("net.ipv4.conf.all.rp_filter", "0")`.
    ///
    /// Dotted keys are mapped to `/proc/sys` paths; for an interface name that
    /// contains a dot, give the key with slashes
    /// (`"net/ipv4/conf/eth0.100/rp_filter"`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = sysctl_path(key);
        self.run_in(|| std::fs::write(&path, value))?
            .map_err(|source| self.sysctl_error(key, source))
    }

    /// Reads a sysctl inside the namespace (trimmed).
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        let path = sysctl_path(key);
        let value = self
            .run_in(|| std::fs::read_to_string(&path))?
            .map_err(|source| self.sysctl_error(key, source))?;
        Ok(value.trim().to_owned())
    }

    fn sysctl_error(&self, key: &str, source: std::io::Error) -> Error {
        Error::Sysctl {
            netns: self.netns().to_owned(),
            key: key.to_owned(),
            source,
        }
    }

    /// Turns the host into a router: `net.ipv4.ip_forward=1` and
    /// `net.ipv6.conf.all.forwarding=1`.
    pub fn enable_forwarding(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.sysctl("net.ipv6.conf.all.forwarding", "1")
    }

    /// The LVS-DR real-server recipe: `vip` as a /32 (or /128) on `lo`, and
    /// `net.ipv4.conf.all.arp_ignore=1`, `arp_announce=2` so the host accepts
    /// packets for the VIP but never answers ARP for it nor uses it as an ARP
    /// source. (The kernel takes the max of `all` and the interface's value for
    /// both, so `all` covers every interface. IPv6 needs nothing more: Linux
    /// answers neighbour solicitations only for addresses on the asking link.)
    pub fn add_loopback_vip(&self, vip: impl Into<IpAddr>) -> Result<()> {
        let vip = vip.into();
        self.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
        self.sysctl("net.ipv4.conf.all.arp_announce", "2")?;
        let full = if vip.is_ipv4() { 32 } else { 128 };
        self.add_addr("lo", vip, full)
    }

    // ---- Addresses, routes, links -------------------------------------------

    /// Adds `addr/prefix_len` to `ifname` (IPv6 with `nodad`).
    pub fn add_addr(&self, ifname: &str, addr: impl Into<IpAddr>, prefix_len: u8) -> Result<()> {
        let cidr = cidr(addr.into(), prefix_len)?;
        check_ifname(ifname)?;
        let mut args = vec!["addr", "add", &cidr, "dev", ifname];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(args).map(drop)
    }

    /// Removes `addr/prefix_len` from `ifname`.
    pub fn del_addr(&self, ifname: &str, addr: impl Into<IpAddr>, prefix_len: u8) -> Result<()> {
        let cidr = cidr(addr.into(), prefix_len)?;
        check_ifname(ifname)?;
        self.ip(["addr", "del", &cidr, "dev", ifname]).map(drop)
    }

    /// The addresses on `ifname` (IPv4 and IPv6, link-local included).
    pub fn addrs(&self, ifname: &str) -> Result<Vec<IpAddr>> {
        check_ifname(ifname)?;
        let out = self.ip(["-o", "addr", "show", "dev", ifname])?;
        Ok(parse_addrs(&out))
    }

    /// Whether `addr` is configured on `ifname` (e.g. where a VRRP VIP lives).
    pub fn has_addr(&self, ifname: &str, addr: impl Into<IpAddr>) -> Result<bool> {
        let addr = addr.into();
        Ok(self.addrs(ifname)?.contains(&addr))
    }

    /// Adds a route to `dst/prefix_len` via the gateway `via`.
    pub fn add_route(
        &self,
        dst: impl Into<IpAddr>,
        prefix_len: u8,
        via: impl Into<IpAddr>,
    ) -> Result<()> {
        let dst = cidr(dst.into(), prefix_len)?;
        let via = via.into().to_string();
        self.ip(["route", "add", &dst, "via", &via]).map(drop)
    }

    /// Adds the default route (IPv4 or IPv6, after `via`'s family) via `via`.
    pub fn add_default_route(&self, via: impl Into<IpAddr>) -> Result<()> {
        let via = via.into();
        let family = if via.is_ipv4() { "-4" } else { "-6" };
        self.ip([family, "route", "add", "default", "via", &via.to_string()])
            .map(drop)
    }

    /// Sets `ifname` administratively up or down (failure injection).
    pub fn set_link(&self, ifname: &str, up: bool) -> Result<()> {
        check_ifname(ifname)?;
        let state = if up { "up" } else { "down" };
        self.ip(["link", "set", "dev", ifname, state]).map(drop)
    }

    /// The MAC address of `ifname`.
    pub fn mac(&self, ifname: &str) -> Result<[u8; 6]> {
        check_ifname(ifname)?;
        let args = ["-o", "link", "show", "dev", ifname];
        let out = self.ip(args)?;
        parse_mac(&out).ok_or_else(|| self.parse_error(&args, &out))
    }

    /// The interface index of `ifname` (for raw sockets bound by index).
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        check_ifname(ifname)?;
        let args = ["-o", "link", "show", "dev", ifname];
        let out = self.ip(args)?;
        parse_ifindex(&out).ok_or_else(|| self.parse_error(&args, &out))
    }

    fn parse_error(&self, args: &[&str], out: &str) -> Error {
        Error::Parse {
            command: format!("ip -n {} {}", self.netns(), args.join(" ")),
            output: out.trim().to_owned(),
        }
    }

    /// Turns off TX checksum, scatter-gather, TSO, GSO and GRO on `ifname`.
    ///
    /// Veth interfaces pass packets with a *partial* checksum and as 64 KiB
    /// GSO super-packets. The kernel copes, but a userspace forwarder reading
    /// them from a packet socket and sending them on would forward bad
    /// checksums and oversize frames. Call this on the interfaces whose
    /// traffic such a program sees (typically every host's).
    pub fn disable_offloads(&self, ifname: &str) -> Result<()> {
        use sys::ethtool::{SGRO, SGSO, SSG, STSO, STXCSUM};
        check_ifname(ifname)?;
        self.run_in(|| {
            let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
            for cmd in [STSO, SGSO, SGRO, SSG, STXCSUM] {
                sys::ethtool_value(&socket, ifname, cmd, 0)?;
            }
            Ok(())
        })?
        .map_err(|source| self.ethtool_error(ifname, source))
    }

    /// Whether any of the offloads [`disable_offloads`](Self::disable_offloads)
    /// turns off is on for `ifname`.
    pub fn offloads_enabled(&self, ifname: &str) -> Result<bool> {
        use sys::ethtool::{GGRO, GGSO, GSG, GTSO, GTXCSUM};
        check_ifname(ifname)?;
        self.run_in(|| {
            let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
            let mut any = false;
            for cmd in [GTSO, GGSO, GGRO, GSG, GTXCSUM] {
                any |= sys::ethtool_value(&socket, ifname, cmd, 0)? != 0;
            }
            Ok(any)
        })?
        .map_err(|source| self.ethtool_error(ifname, source))
    }

    fn ethtool_error(&self, ifname: &str, source: std::io::Error) -> Error {
        Error::Ethtool {
            netns: self.netns().to_owned(),
            ifname: ifname.to_owned(),
            source,
        }
    }

    /// Creates a Linux bridge `name` inside this host (STP and multicast
    /// snooping off, so VRRP and neighbour discovery flood reliably) and sets
    /// it up. Attach hosts with [`Lab::attach`](crate::Lab::attach).
    pub fn add_bridge(&self, name: &str) -> Result<Bridge> {
        check_ifname(name)?;
        self.ip([
            "link",
            "add",
            "name",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        self.set_link(name, true)?;
        Ok(Bridge {
            host: self.clone(),
            name: name.to_owned(),
        })
    }

    /// Sends one ICMP echo to `dst` and waits up to 5 s for the reply.
    pub fn ping(&self, dst: impl Into<IpAddr>) -> Result<()> {
        self.ping_wait(dst, Duration::from_secs(5))
    }

    /// Pings `dst` until one reply arrives or `wait` (at least 1 s) has
    /// passed, sending an echo every 200 ms: one lost echo (an ARP or
    /// neighbour resolution still under way, a port just replugged, a loaded
    /// machine) does not fail the check. Use a short wait when the ping is
    /// expected to fail.
    pub fn ping_wait(&self, dst: impl Into<IpAddr>, wait: Duration) -> Result<()> {
        let secs = wait.as_secs().max(1).to_string();
        let dst = dst.into().to_string();
        self.run(
            "ping",
            ["-n", "-q", "-c", "1", "-i", "0.2", "-w", &secs, &dst],
        )
        .map(drop)
    }
}

/// A Linux bridge living in some host; see [`Host::add_bridge`] and
/// [`Lab::add_switch`](crate::Lab::add_switch).
#[derive(Clone, Debug)]
pub struct Bridge {
    host: Host,
    name: String,
}

impl Bridge {
    /// The host whose namespace holds the bridge.
    #[must_use]
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The bridge's interface name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn require(program: &str) -> Result<()> {
    match cmd::find_program(program) {
        Some(_) => Ok(()),
        None => Err(Error::ProgramMissing {
            program: program.to_owned(),
        }),
    }
}

fn cidr(addr: IpAddr, prefix_len: u8) -> Result<String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(Error::PrefixLen { addr, prefix_len });
    }
    Ok(format!("{addr}/{prefix_len}"))
}

fn sysctl_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.trim_start_matches('/').to_owned()
    } else {
        key.replace('.', "/")
    };
    PathBuf::from("/proc/sys").join(rel)
}

/// Addresses from `ip -o addr show` lines (`... inet 10.0.0.1/24 brd ...`).
fn parse_addrs(out: &str) -> Vec<IpAddr> {
    let mut addrs = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if (word == "inet" || word == "inet6")
                && let Some(addr) = words
                    .next()
                    .and_then(|w| w.split('/').next())
                    .and_then(|a| a.parse().ok())
            {
                addrs.push(addr);
            }
        }
    }
    addrs
}

/// The MAC after `link/ether` (or any `link/<type>`) in `ip -o link show`.
fn parse_mac(out: &str) -> Option<[u8; 6]> {
    let mut words = out.split_whitespace();
    words.find(|w| w.starts_with("link/"))?;
    let text = words.next()?;
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The index before the first `:` of `ip -o link show` (`5: eth0@if4: ...`).
fn parse_ifindex(out: &str) -> Option<u32> {
    out.split_once(':')?.0.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "2: eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP \
        mode DEFAULT group default qlen 1000\\    link/ether 76:82:1d:91:cf:0a brd ff:ff:ff:ff:ff:ff link-netns lbt-1-0-t-b\n";

    #[test]
    fn parses_link_line() {
        assert_eq!(parse_mac(LINK), Some([0x76, 0x82, 0x1d, 0x91, 0xcf, 0x0a]));
        assert_eq!(parse_ifindex(LINK), Some(2));
    }

    #[test]
    fn rejects_malformed_link_lines() {
        assert_eq!(parse_mac("2: eth0: link/ether 76:82:1d:91:cf"), None);
        assert_eq!(parse_mac("2: eth0: link/ether 76:82:1d:91:cf:0a:11"), None);
        assert_eq!(parse_mac("2: eth0: link/ether 7:82:1d:91:cf:0a"), None);
        assert_eq!(parse_mac("2: eth0: mtu 1500"), None);
        assert_eq!(parse_ifindex("eth0 nothing"), None);
    }

    #[test]
    fn parses_addr_lines() {
        let out = "2: eth0    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever\n\
                   2: eth0    inet6 2001:db8::1/64 scope global nodad \\       valid_lft forever\n\
                   2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n";
        let want: Vec<IpAddr> = ["10.0.0.1", "2001:db8::1", "fe80::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(parse_addrs(out), want);
        assert!(parse_addrs("").is_empty());
    }

    #[test]
    fn sysctl_keys_map_to_proc_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.conf.all.arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/rp_filter"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn cidr_checks_prefix_length() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(cidr(v4, 32).unwrap(), "10.0.0.1/32");
        assert!(matches!(cidr(v4, 33), Err(Error::PrefixLen { .. })));
        assert_eq!(cidr(v6, 128).unwrap(), "2001:db8::1/128");
        assert!(cidr(v6, 129).is_err());
    }
}
