//! Reading the kernel's IPv4 neighbour (ARP) table, as `/proc/net/arp`
//! prints it, so a driver can fill
//! [`Forwarder::set_neighbour`](crate::Forwarder::set_neighbour) from what
//! the host already resolved.
//! IPv6 neighbours have no such file (they need rtnetlink) and are left to
//! the caller.

use crate::addr::Mac;
use std::net::Ipv4Addr;

/// `ATF_COM`: the entry is complete (resolved).
const ATF_COM: u32 = 0x2;

/// One complete entry of `/proc/net/arp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpEntry<'a> {
    /// The neighbour's address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: Mac,
    /// The interface it was resolved on.
    pub dev: &'a str,
}

/// Parses the text of `/proc/net/arp`, yielding complete entries and
/// skipping the header and anything malformed or incomplete.
///
/// # Examples
///
/// ```
/// let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
///             10.0.2.2         0x1         0x2         02:00:00:00:00:10     *        eth1\n\
///             10.0.2.9         0x1         0x0         00:00:00:00:00:00     *        eth1\n";
/// let v: Vec<_> = lb_forward::neigh::parse_proc_arp(text).collect();
/// assert_eq!(v.len(), 1);
/// assert_eq!(v[0].mac, [2, 0, 0, 0, 0, 0x10]);
/// ```
pub fn parse_proc_arp(text: &str) -> impl Iterator<Item = ArpEntry<'_>> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut f = line.split_whitespace();
        let ip = f.next()?.parse().ok()?;
        let _hw_type = f.next()?;
        let flags = u32::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
        let mac = parse_mac(f.next()?)?;
        let _mask = f.next()?;
        let dev = f.next()?;
        (flags & ATF_COM != 0).then_some(ArpEntry { ip, mac, dev })
    })
}

fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_garbage() {
        let t = "header\n1.2.3.4 0x1 0x2 zz:00:00:00:00:00 * eth0\n1.2.3.5 0x1 0x6 02:00:00:00:00:01 * eth0\nshort\n";
        let v: Vec<_> = parse_proc_arp(t).collect();
        assert_eq!(
            v,
            [ArpEntry {
                ip: Ipv4Addr::new(1, 2, 3, 5),
                mac: [2, 0, 0, 0, 0, 1],
                dev: "eth0"
            }]
        );
    }
}
