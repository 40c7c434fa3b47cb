//! Shared test helpers.
#![allow(dead_code, unreachable_pub)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_vrrp::wire::{Auth, ChecksumMode, MULTICAST_V4, MULTICAST_V6, Repr, Version};
use lb_vrrp::{Config, Event, Instant, MAX_TRANSMIT_LEN, RxMeta, State, Transmit, VirtualRouter};

pub const LOW: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
pub const HIGH: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
pub const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
pub const MCAST4: IpAddr = IpAddr::V4(MULTICAST_V4);
pub const ME6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
pub const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3));
pub const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 100));
pub const MCAST6: IpAddr = IpAddr::V6(MULTICAST_V6);

/// VRID 1, primary ME, one VIP, priority `prio`.
pub fn cfg(version: Version, prio: u8) -> Config {
    let mut c = Config::new(version, 1, ME);
    c.priority = prio;
    c.virtual_addresses = vec![VIP];
    c
}

pub fn cfg6(prio: u8) -> Config {
    let mut c = Config::new(Version::V3, 1, ME6);
    c.priority = prio;
    c.virtual_addresses = vec![VIP6];
    c
}

pub fn router(c: Config) -> VirtualRouter {
    VirtualRouter::new(c).expect("valid config")
}

/// The bytes of an advertisement matching `c` except for priority/interval.
pub fn advert_for(c: &Config, src: IpAddr, prio: u8, interval: u16) -> Vec<u8> {
    let repr = Repr {
        version: c.version,
        vrid: c.vrid,
        priority: prio,
        interval,
        auth: c.auth,
        addresses: c.virtual_addresses.iter().copied().collect(),
    };
    let dst = mcast_of(src);
    let mut buf = vec![0u8; MAX_TRANSMIT_LEN];
    let n = repr
        .emit(&mut buf, src, dst, ChecksumMode::PseudoHeader)
        .unwrap();
    buf.truncate(n);
    buf
}

pub fn emit(repr: &Repr, src: IpAddr) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_TRANSMIT_LEN];
    let n = repr
        .emit(&mut buf, src, mcast_of(src), ChecksumMode::PseudoHeader)
        .unwrap();
    buf.truncate(n);
    buf
}

pub fn repr_for(c: &Config, prio: u8) -> Repr {
    Repr {
        version: c.version,
        vrid: c.vrid,
        priority: prio,
        interval: c.interval,
        auth: if c.version == Version::V2 {
            c.auth
        } else {
            Auth::None
        },
        addresses: c.virtual_addresses.iter().copied().collect(),
    }
}

pub fn mcast_of(src: IpAddr) -> IpAddr {
    match src {
        IpAddr::V4(_) => MCAST4,
        IpAddr::V6(_) => MCAST6,
    }
}

pub fn meta(src: IpAddr) -> RxMeta {
    RxMeta {
        src,
        dst: mcast_of(src),
        ttl: 255,
    }
}

/// Delivers a valid advertisement from `src` with `prio` and the router's own interval.
pub fn rx(r: &mut VirtualRouter, now: Instant, src: IpAddr, prio: u8) {
    let bytes = advert_for(r.config(), src, prio, r.config().interval);
    r.handle_packet(now, meta(src), &bytes);
}

pub fn events(r: &mut VirtualRouter) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

pub fn transmits(r: &mut VirtualRouter) -> Vec<(Transmit, Vec<u8>)> {
    let mut buf = vec![0u8; MAX_TRANSMIT_LEN];
    std::iter::from_fn(|| {
        r.poll_transmit(&mut buf)
            .map(|t| (t, buf[..t.len()].to_vec()))
    })
    .collect()
}

/// Priorities of the advertisements sent.
pub fn adverts_sent(r: &mut VirtualRouter) -> Vec<u8> {
    transmits(r)
        .into_iter()
        .filter_map(|(t, _)| match t {
            Transmit::Advertisement { priority, .. } => Some(priority),
            _ => None,
        })
        .collect()
}

/// Drives a fresh router to Backup at time 0.
pub fn backup(c: Config) -> VirtualRouter {
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    assert_eq!(r.state(), State::Backup);
    let _ = events(&mut r);
    r
}

/// Drives a fresh router to Master (its down timer expires); returns it and the time.
pub fn master(c: Config) -> (VirtualRouter, Instant) {
    let mut r = router(c);
    r.handle_startup(Instant::ZERO);
    let t = r.poll_timeout().unwrap_or(Instant::ZERO);
    r.handle_timeout(t);
    assert_eq!(r.state(), State::Master);
    let _ = events(&mut r);
    let _ = transmits(&mut r);
    (r, t)
}
