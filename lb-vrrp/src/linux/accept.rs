//! Accept_Mode enforcement (RFC 9568 §6.4.3): a non-owner Active router
//! with Accept_Mode False "MUST NOT accept packets addressed to the IPvX
//! address(es) associated with the Virtual Router", but "MUST NOT drop IPv6
//! Neighbor Solicitations and Neighbor Advertisements" (§6.1, §6.4.3).
//!
//! As keepalived with `no_accept` / `vrrp_strict`, the driver installs
//! nftables drop rules for the addresses while it holds them. It runs the
//! `nft` program (package nftables) with a script on standard input rather
//! than speaking nf_tables netlink itself: the messages (batches, set
//! element attributes, expressions) are far more than this driver's
//! hand-built rtnetlink, and a state change is rare enough for a process
//! spawn. One table of our own, shared by every router on the host:
//!
//! ```text
//! table inet lb_vrrp {
//!     set vips4 { type ipv4_addr; }
//!     set vips6 { type ipv6_addr; }
//!     chain input {
//!         type filter hook input priority filter - 1; policy accept;
//!         ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
//!         ip daddr @vips4 drop
//!         ip6 daddr @vips6 drop
//!     }
//! }
//! ```
//!
//! A router adds its addresses to the sets before it adds them to the
//! interface, and removes them after it removed the addresses, so no packet
//! is accepted in between.
//!
//! Sharing, inside one process: every router with Accept_Mode False holds a
//! [`Holder`]; an address stays in the set while any holder of the process
//! blocks it (two VRIDs with one VIP: the first to leave Active does not
//! unblock the other), and when the last holder goes (its driver dropped)
//! with nothing blocked, the table is deleted if both sets are empty.
//!
//! Across processes (no shared state but the table):
//! * an address blocked by two processes is one set element: the first to
//!   unblock it unblocks it for both (configure a VIP in one process);
//! * every block re-creates the table, sets, chain and rules in the same
//!   nft transaction as the elements, so a process that deleted the table
//!   (its sets were empty) does not leave another without enforcement;
//! * the residual race: the "sets empty" check and the `delete table` are
//!   two nft calls, so an element another process adds between them is
//!   deleted with the table, until that process blocks again;
//! * elements left behind by a killed process are removed when a driver for
//!   the same addresses starts (unless this process blocks them), and so
//!   would be a live one's in another process.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Creates what is missing and puts the rules back in one transaction
/// (`add` of an existing table, set or chain is a no-op).
const SETUP: &str = "add table inet lb_vrrp
add set inet lb_vrrp vips4 { type ipv4_addr; }
add set inet lb_vrrp vips6 { type ipv6_addr; }
add chain inet lb_vrrp input { type filter hook input priority filter - 1; policy accept; }
flush chain inet lb_vrrp input
add rule inet lb_vrrp input ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
add rule inet lb_vrrp input ip daddr @vips4 drop
add rule inet lb_vrrp input ip6 daddr @vips6 drop
";

/// This process's view: which holders block each address, how many
/// holders exist.
struct Registry {
    blocked: BTreeMap<IpAddr, Vec<u64>>,
    holders: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    blocked: BTreeMap::new(),
    holders: 0,
});
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The registry, held across the nft calls so that this process's changes
/// to the table do not interleave.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `nft -f -` with `script`; the error carries nft's message.
fn nft(script: &str) -> io::Result<String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("accept mode: cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "accept mode: nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn element(verb: &str, a: IpAddr) -> String {
    let set = if a.is_ipv4() { "vips4" } else { "vips6" };
    format!("{verb} element inet lb_vrrp {set} {{ {a} }}\n")
}

/// One router's share of the table: what it blocks, released on drop.
#[derive(Debug)]
pub(crate) struct Holder {
    id: u64,
}

impl Holder {
    /// Creates the table if missing, then removes from the sets those of
    /// `addrs` that no router of this process blocks: what a killed process
    /// may have left. Fails when nft cannot be run, so a router configured
    /// with Accept_Mode False does not run without enforcement.
    pub(crate) fn new(addrs: &[IpAddr]) -> io::Result<Self> {
        let mut reg = registry();
        nft(SETUP)?;
        for a in addrs {
            if !reg.blocked.contains_key(a) {
                // One by one: deleting an absent element fails the whole script.
                let _ = nft(&element("delete", *a));
            }
        }
        reg.holders += 1;
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Drops (`block`) or accepts again traffic to `addrs`. An address
    /// leaves the sets only when no other holder of this process blocks it;
    /// unblocking what this holder does not block does nothing.
    pub(crate) fn set_blocked(&self, addrs: &[IpAddr], block: bool) -> io::Result<()> {
        let mut reg = registry();
        if block {
            for a in addrs {
                let holders = reg.blocked.entry(*a).or_default();
                if !holders.contains(&self.id) {
                    holders.push(self.id);
                }
            }
            let mut script = String::from(SETUP);
            script.extend(addrs.iter().map(|a| element("add", *a)));
            return nft(&script).map(drop);
        }
        for a in addrs {
            let Some(holders) = reg.blocked.get_mut(a) else {
                continue;
            };
            let before = holders.len();
            holders.retain(|&h| h != self.id);
            if holders.len() == before || !holders.is_empty() {
                continue;
            }
            reg.blocked.remove(a);
            if let Err(e) = nft(&element("delete", *a))
                && !e.to_string().contains("No such file or directory")
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Holder {
    /// Forgets this holder. What it still blocks (its driver stopped
    /// without shutting down: the addresses may still be configured) stays
    /// in the sets, as a killed process's would. The last holder of the
    /// process deletes the table if both sets are empty.
    fn drop(&mut self) {
        let mut reg = registry();
        reg.blocked.retain(|_, holders| {
            holders.retain(|&h| h != self.id);
            !holders.is_empty()
        });
        reg.holders -= 1;
        if reg.holders == 0
            && reg.blocked.is_empty()
            && nft("list table inet lb_vrrp\n").is_ok_and(|t| !t.contains("elements"))
        {
            // Best effort: nothing to report to from a drop.
            let _ = nft("delete table inet lb_vrrp\n");
        }
    }
}
