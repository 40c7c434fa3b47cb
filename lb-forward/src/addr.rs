//! A compact address type for both families.
//!
//! IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291
//! §2.5.5.2), so one 16-byte value carries the family with it and the
//! connection table needs no separate family field.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address in 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Addr {
    /// The all-zero IPv6 address.
    pub const UNSPECIFIED: Self = Self([0; 16]);

    /// From the 4 bytes of an IPv4 address.
    #[must_use]
    pub fn v4(b: [u8; 4]) -> Self {
        let mut a = [0u8; 16];
        a[..12].copy_from_slice(&MAPPED);
        a[12..].copy_from_slice(&b);
        Self(a)
    }

    /// From a 4- or 16-byte slice (anything else gives `None`).
    #[must_use]
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        match b.len() {
            4 => Some(Self::v4([b[0], b[1], b[2], b[3]])),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(Self(a))
            }
            _ => None,
        }
    }

    /// True for an IPv4(-mapped) address.
    #[must_use]
    pub fn is_v4(&self) -> bool {
        self.0[..12] == MAPPED
    }

    /// The address bytes as they appear on the wire (4 or 16 bytes).
    #[must_use]
    pub fn wire(&self) -> &[u8] {
        if self.is_v4() { &self.0[12..] } else { &self.0 }
    }

    /// Keeps the top `prefix` bits of the wire address (IPv4: of 32 bits).
    #[must_use]
    pub fn masked(&self, prefix: u8) -> Self {
        let (start, bits) = if self.is_v4() {
            (12, 32u32)
        } else {
            (0, 128u32)
        };
        let keep = u32::from(prefix).min(bits);
        let mut out = self.0;
        for (i, b) in out[start..].iter_mut().enumerate() {
            let lo = (i as u32) * 8;
            if keep <= lo {
                *b = 0;
            } else if keep < lo + 8 {
                *b &= 0xffu8 << (8 - (keep - lo));
            }
        }
        Self(out)
    }

    /// Applies an IPv4 netmask (any bit pattern, as IPVS allows); IPv6
    /// addresses pass unchanged.
    #[must_use]
    pub fn masked_v4(&self, netmask: u32) -> Self {
        if !self.is_v4() {
            return *self;
        }
        let v = u32::from_be_bytes([self.0[12], self.0[13], self.0[14], self.0[15]]) & netmask;
        Self::v4(v.to_be_bytes())
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v) => Self::v4(v.octets()),
            IpAddr::V6(v) => Self(v.octets()),
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(ip: Ipv4Addr) -> Self {
        Self::v4(ip.octets())
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(ip: Ipv6Addr) -> Self {
        Self(ip.octets())
    }
}

impl From<Addr> for IpAddr {
    fn from(a: Addr) -> Self {
        if a.is_v4() {
            Self::V4(Ipv4Addr::new(a.0[12], a.0[13], a.0[14], a.0[15]))
        } else {
            Self::V6(Ipv6Addr::from(a.0))
        }
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        IpAddr::from(*self).fmt(f)
    }
}

/// A link-layer (Ethernet) address.
pub type Mac = [u8; 6];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip_and_mask() {
        let a = Addr::from(Ipv4Addr::new(10, 1, 2, 3));
        assert!(a.is_v4());
        assert_eq!(a.wire(), &[10, 1, 2, 3]);
        assert_eq!(IpAddr::from(a.masked(16)), IpAddr::from([10, 1, 0, 0]));
        assert_eq!(IpAddr::from(a.masked(20)), IpAddr::from([10, 1, 0, 0]));
        assert_eq!(
            IpAddr::from(a.masked_v4(0xffff_ff00)),
            IpAddr::from([10, 1, 2, 0])
        );
        let b: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
        let m = Addr::from(b).masked(36);
        assert_eq!(
            IpAddr::from(m),
            "2001:db8:f000::".parse::<IpAddr>().unwrap()
        );
        assert!(!Addr::from(b).is_v4());
    }
}
