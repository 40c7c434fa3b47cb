//! Small reads of the host's network state (`/proc`, `/sys`, `ip`, `nft`),
//! kept in one place so the rest of the director stays testable.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
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

/// The device of the kernel's IPv4 route to `ip` (longest prefix, then
/// lowest metric), from `/proc/net/route`; `None` for IPv6 or no route.
pub fn route_iface(ip: IpAddr) -> Option<String> {
    let IpAddr::V4(ip) = ip else { return None };
    parse_route_iface(&std::fs::read_to_string("/proc/net/route").ok()?, ip)
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

    #[test]
    fn parses_mac() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:00"), None);
    }
}
