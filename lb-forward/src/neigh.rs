//! Reading the kernel's neighbour tables, so a driver can fill
//! [`Forwarder::set_neighbour`](crate::Forwarder::set_neighbour) from what
//! the host already resolved: the IPv4 ARP table as `/proc/net/arp` prints
//! it, and both families from an rtnetlink `RTM_GETNEIGH` dump
//! ([`parse_neigh_dump`], the bytes [`neigh_dump_request`] asks for).

use crate::addr::Mac;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// `NUD_VALID` (include/net/neighbour.h): reachable, stale, delay, probe,
/// permanent, noarp.
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80 | 0x40;

/// One usable entry of an `RTM_GETNEIGH` dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighEntry {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its link-layer address.
    pub mac: Mac,
    /// The interface index it was resolved on.
    pub ifindex: i32,
}

/// What one netlink datagram of a dump said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpPart {
    /// Usable entries (valid state, 6-byte link-layer address).
    pub entries: Vec<NeighEntry>,
    /// `NLMSG_DONE` seen: the dump is over.
    pub done: bool,
    /// An `NLMSG_ERROR` with this (negative) errno.
    pub error: Option<i32>,
}

/// The request: `nlmsghdr` (`RTM_GETNEIGH`, `NLM_F_REQUEST | NLM_F_DUMP`)
/// plus an all-zero `ndmsg` (any family, any interface).
#[must_use]
pub fn neigh_dump_request(seq: u32) -> [u8; 28] {
    let mut m = [0u8; 28];
    m[0..4].copy_from_slice(&28u32.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    m[6..8].copy_from_slice(&(0x0001u16 | 0x0300).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// Parses one datagram of an `RTM_GETNEIGH` dump (native-endian netlink
/// headers). Malformed parts are skipped, never panicked on.
///
/// # Examples
///
/// ```
/// // NLMSG_DONE alone.
/// let mut d = [0u8; 20];
/// d[0..4].copy_from_slice(&20u32.to_ne_bytes());
/// d[4..6].copy_from_slice(&3u16.to_ne_bytes());
/// assert!(lb_forward::neigh::parse_neigh_dump(&d).done);
/// ```
#[must_use]
pub fn parse_neigh_dump(buf: &[u8]) -> DumpPart {
    let mut out = DumpPart::default();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if len < 16 || off + len > buf.len() {
            break;
        }
        let msg = &buf[off..off + len];
        match ty {
            NLMSG_DONE => out.done = true,
            NLMSG_ERROR if msg.len() >= 20 => {
                let e = i32::from_ne_bytes([msg[16], msg[17], msg[18], msg[19]]);
                if e != 0 {
                    out.error = Some(e);
                }
            }
            RTM_NEWNEIGH if msg.len() >= 28 => {
                let family = msg[16];
                let ifindex = i32::from_ne_bytes([msg[20], msg[21], msg[22], msg[23]]);
                let state = u16::from_ne_bytes([msg[24], msg[25]]);
                let (mut ip, mut mac) = (None, None);
                let mut a = 28;
                while a + 4 <= msg.len() {
                    let alen = usize::from(u16::from_ne_bytes([msg[a], msg[a + 1]]));
                    let aty = u16::from_ne_bytes([msg[a + 2], msg[a + 3]]) & 0x3fff;
                    if alen < 4 || a + alen > msg.len() {
                        break;
                    }
                    let v = &msg[a + 4..a + alen];
                    match (aty, family, v.len()) {
                        (NDA_DST, 2, 4) => {
                            ip = Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])))
                        }
                        (NDA_DST, 10, 16) => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(v);
                            ip = Some(IpAddr::V6(Ipv6Addr::from(b)));
                        }
                        (NDA_LLADDR, _, 6) => mac = Some([v[0], v[1], v[2], v[3], v[4], v[5]]),
                        _ => {}
                    }
                    a += (alen + 3) & !3;
                }
                if let (Some(ip), Some(mac), true) = (ip, mac, state & NUD_VALID != 0) {
                    out.entries.push(NeighEntry { ip, mac, ifindex });
                }
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    out
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

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(v);
        while !a.len().is_multiple_of(4) {
            a.push(0);
        }
        a
    }

    fn newneigh(family: u8, ifindex: i32, state: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![family, 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]);
        for a in attrs {
            body.extend_from_slice(a);
        }
        let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn dump_golden() {
        let v6: Ipv6Addr = "fd00::7".parse().unwrap();
        let mut d = newneigh(
            2,
            3,
            0x02,
            &[
                attr(NDA_DST, &[10, 0, 0, 9]),
                attr(NDA_LLADDR, &[2, 0, 0, 0, 0, 9]),
            ],
        );
        d.extend(newneigh(
            10,
            4,
            0x04,
            &[
                attr(NDA_DST, &v6.octets()),
                attr(NDA_LLADDR, &[2, 0, 0, 0, 0, 7]),
            ],
        ));
        // Incomplete (state 0x01): skipped.
        d.extend(newneigh(
            2,
            3,
            0x01,
            &[attr(NDA_DST, &[10, 0, 0, 8]), attr(NDA_LLADDR, &[0; 6])],
        ));
        let p = parse_neigh_dump(&d);
        assert!(!p.done);
        assert_eq!(
            p.entries,
            [
                NeighEntry {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
                    mac: [2, 0, 0, 0, 0, 9],
                    ifindex: 3
                },
                NeighEntry {
                    ip: IpAddr::V6(v6),
                    mac: [2, 0, 0, 0, 0, 7],
                    ifindex: 4
                },
            ]
        );
        // Truncated input never panics.
        for cut in 0..d.len() {
            let _ = parse_neigh_dump(&d[..cut]);
        }
    }
}
