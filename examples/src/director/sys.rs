//! Small reads of the host's network state (`/proc`, `/sys`, `ip`, `nft`),
//! kept in one place so the rest of the director stays testable.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

/// The addresses on `iface`, in the order `ip` lists them.
pub fn iface_addrs(iface: &str) -> Vec<IpAddr> {
    let Ok(out) = Command::new("ip")
        .args(["-o", "addr", "show", "dev", iface])
        .output()
    else {
        return Vec::new();
    };
    parse_ip_addr(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `ip -o addr` lines (`2: eth0 inet 10.0.0.1/24 brd …`).
pub fn parse_ip_addr(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if (w == "inet" || w == "inet6")
                && let Some(a) = words.next()
                && let Ok(ip) = a.split('/').next().unwrap_or("").parse()
            {
                out.push(ip);
            }
        }
    }
    out
}

/// The interface's MAC address.
pub fn iface_mac(iface: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).ok()?;
    parse_mac(s.trim())
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut n = 0;
    for (i, part) in s.split(':').enumerate() {
        *mac.get_mut(i)? = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(mac)
}

/// Complete IPv4 neighbour entries: (address, MAC, device).
pub fn arp_table() -> Vec<(IpAddr, [u8; 6], String)> {
    std::fs::read_to_string("/proc/net/arp")
        .map(|t| parse_arp(&t))
        .unwrap_or_default()
}

/// Parses `/proc/net/arp`.
pub fn parse_arp(text: &str) -> Vec<(IpAddr, [u8; 6], String)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        // Flags 0x2: ATF_COM (complete).
        let complete = u32::from_str_radix(f[2].trim_start_matches("0x"), 16)
            .map(|v| v & 2 != 0)
            .unwrap_or(false);
        if let (true, Ok(ip), Some(mac)) = (complete, f[0].parse(), parse_mac(f[3])) {
            out.push((ip, mac, f[5].to_owned()));
        }
    }
    out
}

/// The IPv4 default gateway and its device, from `/proc/net/route`.
pub fn default_gateway() -> Option<(IpAddr, String)> {
    let t = std::fs::read_to_string("/proc/net/route").ok()?;
    for line in t.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 2 && f[1] == "00000000" {
            let gw = u32::from_str_radix(f[2], 16).ok()?;
            if gw != 0 {
                return Some((IpAddr::V4(Ipv4Addr::from(gw.swap_bytes())), f[0].to_owned()));
            }
        }
    }
    None
}

/// The device of the kernel's route to `ip` (longest prefix, then lowest
/// metric), from `/proc/net/route` or `/proc/net/ipv6_route`.
pub fn route_iface(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(ip) => parse_route_iface(&std::fs::read_to_string("/proc/net/route").ok()?, ip),
        IpAddr::V6(ip) => {
            let text = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
            let routes = parse_ipv6_routes(&text);
            lookup_route6(&routes, ip).map(|r| r.dev.clone())
        }
    }
}

/// The IPv6 default gateway and its device, from `/proc/net/ipv6_route`.
pub fn default_gateway6() -> Option<(IpAddr, String)> {
    let text = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    parse_ipv6_routes(&text)
        .into_iter()
        .filter(|r| r.prefix_len == 0)
        .filter_map(|r| Some((r.metric, IpAddr::V6(r.gateway?), r.dev)))
        .min_by_key(|(metric, ..)| *metric)
        .map(|(_, gw, dev)| (gw, dev))
}

/// One usable line of `/proc/net/ipv6_route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    /// Destination prefix.
    pub dst: Ipv6Addr,
    /// Its length.
    pub prefix_len: u8,
    /// The next hop, when the route has one (`RTF_GATEWAY`).
    pub gateway: Option<Ipv6Addr>,
    /// Metric.
    pub metric: u32,
    /// Device.
    pub dev: String,
}

/// Parses `/proc/net/ipv6_route` (every table): destination (32 hex
/// digits), prefix length (hex), source and its length, next hop, metric,
/// reference count, use count, flags (all hex), device. Routes that are not
/// up (`RTF_UP` 0x1) or are reject / blackhole routes (`RTF_REJECT` 0x200,
/// the kernel's `lo` catch-alls) are left out, as are malformed lines.
pub fn parse_ipv6_routes(text: &str) -> Vec<Route6> {
    let addr = |w: &str| {
        (w.len() == 32)
            .then(|| u128::from_str_radix(w, 16).ok())
            .flatten()
            .map(Ipv6Addr::from)
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dst, plen, _src, _splen, gw, metric, _refs, _use, flags, dev] = f[..] else {
            continue;
        };
        let (Some(dst), Ok(prefix_len), Some(gw), Ok(metric), Ok(flags)) = (
            addr(dst),
            u8::from_str_radix(plen, 16),
            addr(gw),
            u32::from_str_radix(metric, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        if prefix_len > 128 || flags & 0x1 == 0 || flags & 0x200 != 0 {
            continue;
        }
        out.push(Route6 {
            dst,
            prefix_len,
            gateway: (flags & 0x2 != 0 && !gw.is_unspecified()).then_some(gw),
            metric,
            dev: dev.to_owned(),
        });
    }
    out
}

/// The route `ip` takes among `routes`: longest prefix, then lowest metric.
pub fn lookup_route6(routes: &[Route6], ip: Ipv6Addr) -> Option<&Route6> {
    let mask = |len: u8| u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    routes
        .iter()
        .filter(|r| u128::from(ip) & mask(r.prefix_len) == u128::from(r.dst) & mask(r.prefix_len))
        .min_by_key(|r| (std::cmp::Reverse(r.prefix_len), r.metric))
}

/// The first global unicast IPv6 address among `addrs` (not link-local,
/// loopback, multicast or unspecified): a port's source for IPv6 tunnels.
pub fn global_v6(addrs: &[IpAddr]) -> Option<Ipv6Addr> {
    addrs.iter().find_map(|a| match a {
        IpAddr::V6(a)
            if !a.is_loopback()
                && !a.is_multicast()
                && !a.is_unspecified()
                && !a.is_unicast_link_local() =>
        {
            Some(*a)
        }
        _ => None,
    })
}

/// The interface index of `iface`, from `/sys/class/net`.
pub fn ifindex(iface: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The kernel's usable neighbour entries of both families (address, MAC,
/// interface index): an rtnetlink `RTM_GETNEIGH` dump, built and parsed by
/// [`lb_forward::neigh`], in the calling thread's network namespace. No
/// privilege is needed to read it.
pub fn neighbours() -> std::io::Result<Vec<(IpAddr, [u8; 6], i32)>> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    sock.send(&lb_forward::neigh::neigh_dump_request(1), 0)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut out = Vec::new();
    loop {
        buf.clear();
        sock.recv(&mut buf, 0)?;
        let part = lb_forward::neigh::parse_neigh_dump(&buf);
        if let Some(e) = part.error {
            return Err(std::io::Error::from_raw_os_error(-e));
        }
        out.extend(part.entries.iter().map(|e| (e.ip, e.mac, e.ifindex)));
        if part.done || buf.is_empty() {
            return Ok(out);
        }
    }
}

/// [`route_iface`] on the text of `/proc/net/route` (addresses and masks
/// as host-order hex of the network-order bytes; flag 0x1 is RTF_UP).
pub fn parse_route_iface(text: &str, ip: Ipv4Addr) -> Option<String> {
    let hex = |w: &str| u32::from_str_radix(w, 16).ok().map(u32::swap_bytes);
    let ip = u32::from(ip);
    let mut best: Option<(u32, u32, &str)> = None;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dev, dst, _gw, flags, _, _, metric, mask, ..] = f[..] else {
            continue;
        };
        let (Some(dst), Some(mask), Ok(flags), Ok(metric)) = (
            hex(dst),
            hex(mask),
            u32::from_str_radix(flags, 16),
            metric.parse::<u32>(),
        ) else {
            continue;
        };
        if flags & 0x1 == 0 || ip & mask != dst {
            continue;
        }
        if best
            .is_none_or(|(m, k, _)| mask.count_ones() > m || (mask.count_ones() == m && metric < k))
        {
            best = Some((mask.count_ones(), metric, dev));
        }
    }
    best.map(|(_, _, dev)| dev.to_owned())
}

/// Runs an `nft -f -` script.
pub fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// 64 random bits from the kernel (hash seeds; not secret).
pub fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b) ^ u64::from(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arp() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device
10.0.0.21        0x1         0x2         02:00:00:00:00:15     *        eth0
10.0.0.22        0x1         0x0         00:00:00:00:00:00     *        eth0
";
        assert_eq!(
            parse_arp(t),
            [(
                "10.0.0.21".parse().unwrap(),
                [2, 0, 0, 0, 0, 0x15],
                "eth0".to_owned()
            )]
        );
    }

    #[test]
    fn parses_ip_addr() {
        let t = "2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever
2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever";
        assert_eq!(
            parse_ip_addr(t),
            [
                "10.0.0.11".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn finds_the_route_device() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t01C8A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t00C8A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t000C0B0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth2\t000C0B0A\t00000000\t0001\t0\t0\t5\t00FFFFFF\t0\t0\t0
eth3\t030C0B0A\t00000000\t0000\t0\t0\t0\tFFFFFFFF\t0\t0\t0
";
        let dev = |ip: &str| parse_route_iface(t, ip.parse().unwrap());
        // 10.11.12.0/24 on eth1 (metric 0) beats eth2 (metric 5); the /32
        // on eth3 is not up; anything else takes the default route.
        assert_eq!(dev("10.11.12.3").as_deref(), Some("eth1"));
        assert_eq!(dev("192.168.200.7").as_deref(), Some("eth0"));
        assert_eq!(dev("203.0.113.1").as_deref(), Some("eth0"));
        assert_eq!(
            parse_route_iface("Iface\n", "10.0.0.1".parse().unwrap()),
            None
        );
    }

    const IPV6_ROUTE: &str = "\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000200 00000001 00000000 00000001     eth1
20010db8000000000001000000000000 50 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001     eth2
20010db8000000000002000000000000 50 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000000     eth3
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
20010db8000000000000000000000100 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 80200001       lo
not a route line
20010db800000000000000000000zzzz 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 00000001       lo
";

    #[test]
    fn parses_ipv6_routes() {
        let r = parse_ipv6_routes(IPV6_ROUTE);
        // The down eth3 route, the reject catch-all, and the two bad lines
        // are left out.
        assert_eq!(r.len(), 6, "{r:?}");
        assert_eq!(
            r[5],
            Route6 {
                dst: "2001:db8::100".parse().unwrap(),
                prefix_len: 128,
                gateway: None,
                metric: 0,
                dev: "lo".into(),
            }
        );
        assert_eq!(r[4].gateway, Some("fe80::1".parse().unwrap()));
        assert_eq!(r[4].metric, 0x400);
        assert!(r[..4].iter().all(|x| x.gateway.is_none()));
    }

    #[test]
    fn finds_the_ipv6_route_device() {
        let r = parse_ipv6_routes(IPV6_ROUTE);
        let dev = |ip: &str| lookup_route6(&r, ip.parse().unwrap()).map(|x| x.dev.as_str());
        // Longest prefix: the /80 on eth2 beats the /64s; the /64 on eth0
        // (metric 0x100) beats eth1 (0x200); the down /80 on eth3 is not
        // used; the local /128 goes to lo; the rest takes the default.
        assert_eq!(dev("2001:db8::1:0:0:5"), Some("eth2"));
        assert_eq!(dev("2001:db8::11"), Some("eth0"));
        assert_eq!(dev("2001:db8::2:0:0:5"), Some("eth0"));
        assert_eq!(dev("2001:db8::100"), Some("lo"));
        assert_eq!(dev("2001:db9::1"), Some("eth1"));
        assert_eq!(dev("fe80::7"), Some("eth0"));
        assert_eq!(lookup_route6(&[], "::1".parse().unwrap()), None);
    }

    #[test]
    fn picks_a_global_ipv6_address() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            global_v6(&[a("10.0.0.1"), a("fe80::1"), a("::1"), a("2001:db8::1")]),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(global_v6(&[a("10.0.0.1"), a("fe80::1")]), None);
    }

    #[test]
    fn parses_mac() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:00"), None);
    }
}
