//! A from-scratch checksum verifier, independent of `lb_forward::checksum`:
//! 16-bit big-endian words summed in a u32 with end-around carry.
#![allow(dead_code, unreachable_pub)]

pub fn ones_sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    for pair in data.chunks(2) {
        let w = (u32::from(pair[0]) << 8) | pair.get(1).map_or(0, |b| u32::from(*b));
        acc += w;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn add(a: u32, b: u32) -> u32 {
    let s = a + b;
    (s & 0xffff) + (s >> 16)
}

/// True if the IPv4 header at `ip` verifies.
pub fn ipv4_header_ok(ip: &[u8]) -> bool {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ones_sum(&ip[..ihl]) == 0xffff
}

/// True if the TCP/UDP/ICMPv6 segment of the IP packet `ip` verifies
/// (ICMPv4 has no pseudo-header). UDP over IPv4 with checksum 0 passes.
pub fn l4_ok(ip: &[u8]) -> bool {
    let (hl, proto, src, dst, end) = if ip[0] >> 4 == 4 {
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        (
            usize::from(ip[0] & 0x0f) * 4,
            ip[9],
            &ip[12..16],
            &ip[16..20],
            total,
        )
    } else {
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        (40, ip[6], &ip[8..24], &ip[24..40], 40 + plen)
    };
    let seg = &ip[hl..end];
    if proto == 1 {
        return ones_sum(seg) == 0xffff;
    }
    if proto == 17 && ip[0] >> 4 == 4 && seg[6] == 0 && seg[7] == 0 {
        return true;
    }
    let len = seg.len() as u32;
    let mut acc = add(ones_sum(src), ones_sum(dst));
    acc = add(acc, u32::from(proto));
    acc = add(acc, len >> 16);
    acc = add(acc, len & 0xffff);
    add(acc, ones_sum(seg)) == 0xffff
}

/// Every checksum of the IP packet `ip` verifies.
pub fn all_ok(ip: &[u8]) -> bool {
    (ip[0] >> 4 == 6 || ipv4_header_ok(ip)) && l4_ok(ip)
}
