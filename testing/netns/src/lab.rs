//! The lab: one per test, owning its namespaces and tearing them down.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cmd::{self, find_program};
use crate::error::{Error, Result};
use crate::host::{Bridge, Host, NETNS_RUN_DIR};
use crate::names::{self, check_host, check_ifname};
use crate::sys;

/// Labs created by this process so far (names stay unique when `cargo test`
/// runs several tests as threads of one process).
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A set of hosts (network namespaces) and the links between them, owned by
/// one test.
///
/// Dropping the lab (also while a test panics) kills every process inside its
/// namespaces and deletes them; deleting a namespace destroys its veth and
/// bridge interfaces, so nothing is left in the root namespace. Namespaces
/// left behind by a test process that was killed are removed by the next
/// [`Lab::new`] of any test.
///
/// ```no_run
/// use std::net::Ipv4Addr;
/// # fn main() -> Result<(), lb_testing_netns::Error> {
/// let lab = lb_testing_netns::Lab::new("doc")?;
/// let a = lab.add_host("a")?;
/// let b = lab.add_host("b")?;
/// lab.link(&a, "eth0", &b, "eth0")?;
/// a.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24)?;
/// b.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 2), 24)?;
/// a.ping(Ipv4Addr::new(10, 0, 0, 2))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    hosts: Mutex<Vec<Host>>,
    ports: AtomicU32,
}

impl Lab {
    /// Checks the environment (root, `ip`, kernel netns), removes leftovers of
    /// dead test processes and returns an empty lab. `tag` (1 to 12 of
    /// `[a-z0-9_]`) names the test in `ip netns list`.
    ///
    /// Errors for which [`Error::is_environment`] holds mean the machine
    /// cannot run the test; tests normally go through
    /// [`lab_or_skip!`](crate::lab_or_skip) instead of calling this.
    pub fn new(tag: &str) -> Result<Self> {
        Self::with_programs(tag, &[])
    }

    /// Like [`Lab::new`], and also requires each of `programs` (e.g.
    /// `"keepalived"`) to be installed ([`Error::ProgramMissing`] otherwise).
    pub fn with_programs(tag: &str, programs: &[&str]) -> Result<Self> {
        names::check_tag(tag)?;
        check_environment(programs)?;
        clean_leftovers();
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            prefix: names::lab_prefix(std::process::id(), n, tag),
            hosts: Mutex::new(Vec::new()),
            ports: AtomicU32::new(0),
        })
    }

    /// The prefix of every namespace of this lab (`lbt-<pid>-<n>-<tag>`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Creates host `name` (1 to 15 of `[a-z0-9_-]`, unique in the lab): a new
    /// namespace `<prefix>-<name>` with `lo` up and IPv6 DAD off.
    pub fn add_host(&self, name: &str) -> Result<Host> {
        check_host(name)?;
        let mut hosts = self.lock();
        if hosts.iter().any(|h| h.name() == name) {
            return Err(Error::DuplicateHost(name.to_owned()));
        }
        let netns = format!("{}-{name}", self.prefix);
        cmd::ip(["netns", "add", &netns])?;
        let host = Host::new(name, netns);
        // Registered before configuring, so teardown removes it on any error.
        hosts.push(host.clone());
        drop(hosts);
        host.set_link("lo", true)?;
        // `default` covers interfaces created later; `all` the existing ones.
        host.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
        host.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        Ok(host)
    }

    /// The host called `name`, if any.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<Host> {
        self.lock().iter().find(|h| h.name() == name).cloned()
    }

    /// All hosts, in creation order.
    #[must_use]
    pub fn hosts(&self) -> Vec<Host> {
        self.lock().clone()
    }

    /// Joins `a` and `b` with a veth pair: interface `a_if` in `a`, `b_if` in
    /// `b` (each at most 15 bytes), both set up. `a` and `b` may be the same host.
    pub fn link(&self, a: &Host, a_if: &str, b: &Host, b_if: &str) -> Result<()> {
        check_ifname(a_if)?;
        check_ifname(b_if)?;
        // Created directly inside both namespaces: no name ever exists in the
        // root namespace, so parallel tests cannot collide.
        cmd::ip([
            "link",
            "add",
            "name",
            a_if,
            "netns",
            a.netns(),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.netns(),
        ])?;
        a.set_link(a_if, true)?;
        b.set_link(b_if, true)
    }

    /// Creates a host `name` that holds only a bridge `br0`: an L2 switch to
    /// [`attach`](Self::attach) hosts to.
    pub fn add_switch(&self, name: &str) -> Result<Bridge> {
        self.add_host(name)?.add_bridge("br0")
    }

    /// Plugs `host` into `bridge` with a veth pair: `ifname` in `host` (set
    /// up), and a port named `vp<n>` (unique in the lab) in the bridge's
    /// namespace, enslaved and up. Returns the port's name, e.g. to set it
    /// down ("unplug the cable") with `bridge.host().set_link(&port, false)`.
    pub fn attach(&self, bridge: &Bridge, host: &Host, ifname: &str) -> Result<String> {
        let port = format!("vp{}", self.ports.fetch_add(1, Ordering::Relaxed));
        self.link(host, ifname, bridge.host(), &port)?;
        bridge
            .host()
            .ip(["link", "set", "dev", &port, "master", bridge.name()])?;
        Ok(port)
    }

    /// Tears the lab down now and reports the first failure (dropping the lab
    /// does the same but can only print failures).
    pub fn teardown(self) -> Result<()> {
        let hosts = std::mem::take(&mut *self.lock());
        let mut first = Ok(());
        for host in hosts.iter().rev() {
            let result = destroy_netns(host.netns());
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Host>> {
        // A panic while holding the lock leaves a valid Vec: keep going.
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let hosts = std::mem::take(&mut *self.lock());
        for host in hosts.iter().rev() {
            if let Err(e) = destroy_netns(host.netns()) {
                eprintln!("lb-testing-netns: teardown of {}: {e}", host.netns());
            }
        }
    }
}

fn check_environment(programs: &[&str]) -> Result<()> {
    let euid = sys::euid();
    if euid != 0 {
        return Err(Error::NotRoot { euid });
    }
    cmd::ip_program()?;
    if !Path::new("/proc/self/ns/net").exists() {
        return Err(Error::NoNetns);
    }
    for program in programs {
        if find_program(program).is_none() {
            return Err(Error::ProgramMissing {
                program: (*program).to_owned(),
            });
        }
    }
    Ok(())
}

/// Kills every process inside `netns` (except this one) and deletes it.
fn destroy_netns(netns: &str) -> Result<()> {
    let me = std::process::id();
    // `ip netns pids` fails if the namespace is already gone; deletion below
    // then reports the real state.
    if let Ok(pids) = cmd::ip(["netns", "pids", netns]) {
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            // ESRCH (already gone) is fine; anything else shows up as a
            // failure to delete below.
            if pid != me
                && let Ok(pid) = i32::try_from(pid)
            {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
        }
    }
    cmd::ip(["netns", "delete", netns]).map(drop)
}

/// Deletes our namespaces whose owning process no longer exists (a test that
/// was killed before its lab could drop). Best effort: a parallel test may be
/// cleaning the same leftovers.
fn clean_leftovers() {
    let Ok(entries) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = names::owner_pid(name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match destroy_netns(name) {
            Ok(()) => eprintln!("lb-testing-netns: removed leftover namespace {name}"),
            Err(e) if Path::new(NETNS_RUN_DIR).join(name).exists() => {
                eprintln!("lb-testing-netns: cannot remove leftover {name}: {e}");
            }
            Err(_) => {} // Removed by a parallel test meanwhile.
        }
    }
}
