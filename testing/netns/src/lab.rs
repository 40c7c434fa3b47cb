//! The lab: one per test, owning its namespaces and tearing them down.

use std::path::{Path, PathBuf};
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
    dir: PathBuf,
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
        init_netns_run_dir()?;
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = names::lab_prefix(std::process::id(), n, tag);
        Ok(Self {
            dir: scratch_base().join(&prefix),
            prefix,
            hosts: Mutex::new(Vec::new()),
            ports: AtomicU32::new(0),
        })
    }

    /// The prefix of every namespace of this lab (`lbt-<pid>-<n>-<tag>`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A scratch directory for this lab (keepalived configs, pid files,
    /// logs...), `$TMPDIR/lb-testing-netns/<prefix>`, created on first use and
    /// removed with the lab.
    pub fn dir(&self) -> Result<&Path> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(&self.dir)
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
        let mut errors = self.destroy();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Deletes every namespace and the scratch directory; returns the failures.
    fn destroy(&self) -> Vec<Error> {
        let hosts = std::mem::take(&mut *self.lock());
        let mut errors: Vec<Error> = hosts
            .iter()
            .rev()
            .filter_map(|host| destroy_netns(host.netns()).err())
            .collect();
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => errors.push(Error::Io {
                path: self.dir.clone(),
                source: e,
            }),
            _ => {}
        }
        errors
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
        for e in self.destroy() {
            eprintln!("lb-testing-netns: teardown of {}: {e}", self.prefix);
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

/// Where labs keep their scratch directories.
fn scratch_base() -> PathBuf {
    std::env::temp_dir().join("lb-testing-netns")
}

/// Makes sure `/run/netns` is set up (a shared bind mount) before tests add
/// namespaces in parallel: `ip netns add` sets it up on first use without
/// locking, and two processes racing there can stack two mounts.
fn init_netns_run_dir() -> Result<()> {
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
            info.lines()
                .any(|l| l.split_whitespace().nth(4) == Some(NETNS_RUN_DIR))
        })
    };
    if mounted() {
        return Ok(());
    }
    let path = PathBuf::from("/run/lb-testing-netns.lock");
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    sys::flock_exclusive(&lock).map_err(io)?;
    if !mounted() {
        let probe = format!("{}{}-init", names::NETNS_PREFIX, std::process::id());
        cmd::ip(["netns", "add", &probe])?;
        cmd::ip(["netns", "delete", &probe])?;
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

/// Deletes our namespaces and scratch directories whose owning process no
/// longer exists (a test that was killed before its lab could drop). Best effort: a parallel test may be
/// cleaning the same leftovers.
fn clean_leftovers() {
    for name in dead_owners(Path::new(NETNS_RUN_DIR)) {
        match destroy_netns(&name) {
            Ok(()) => eprintln!("lb-testing-netns: removed leftover namespace {name}"),
            Err(e) if Path::new(NETNS_RUN_DIR).join(&name).exists() => {
                eprintln!("lb-testing-netns: cannot remove leftover {name}: {e}");
            }
            Err(_) => {} // Removed by a parallel test meanwhile.
        }
    }
    let base = scratch_base();
    for name in dead_owners(&base) {
        // A parallel test may be removing it too: ignore errors.
        let _ = std::fs::remove_dir_all(base.join(name));
    }
}

/// Entries of `dir` named by this crate whose owning process is gone.
fn dead_owners(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            names::owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect()
}
