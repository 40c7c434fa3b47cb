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
//! is accepted in between. Elements left behind by a killed process are
//! removed when a driver for the same addresses starts.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

const TABLE: &str = "table inet lb_vrrp {
  set vips4 { type ipv4_addr; }
  set vips6 { type ipv6_addr; }
  chain input { type filter hook input priority filter - 1; policy accept; }
}
";

const RULES: &str = "add rule inet lb_vrrp input ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
add rule inet lb_vrrp input ip daddr @vips4 drop
add rule inet lb_vrrp input ip6 daddr @vips6 drop
";

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

/// Creates the table, sets and chain if missing (and the rules if the chain
/// has none), then removes `addrs` from the sets: what a killed process may
/// have left. Fails when nft cannot be run, so a router configured with
/// Accept_Mode False does not run without enforcement.
pub(crate) fn prepare(addrs: &[IpAddr]) -> io::Result<()> {
    nft(TABLE)?;
    let chain = nft("list chain inet lb_vrrp input\n")?;
    if !chain.contains("@vips4") {
        nft(RULES)?;
    }
    for a in addrs {
        // One by one: deleting an absent element fails the whole script.
        let _ = nft(&element("delete", *a));
    }
    Ok(())
}

fn element(verb: &str, a: IpAddr) -> String {
    let set = if a.is_ipv4() { "vips4" } else { "vips6" };
    format!("{verb} element inet lb_vrrp {set} {{ {a} }}\n")
}

/// Drops (`block`) or accepts again traffic to `addrs`. Removing an
/// element that is not there is not an error.
pub(crate) fn set_blocked(addrs: &[IpAddr], block: bool) -> io::Result<()> {
    if block {
        let script: String = addrs.iter().map(|a| element("add", *a)).collect();
        nft(&script).map(drop)
    } else {
        for a in addrs {
            if let Err(e) = nft(&element("delete", *a))
                && !e.to_string().contains("No such file or directory")
            {
                return Err(e);
            }
        }
        Ok(())
    }
}
