//! Virtual-service lookup in the order of the kernel's `ip_vs_service_find`
//! (net/netfilter/ipvs/ip_vs_ctl.c), generic over the service value:
//!
//! 1. a non-zero packet mark finds a **fwmark service** of the family first;
//! 2. then the exact `<protocol, vaddr, vport>` service;
//! 3. then, for TCP with an FTP service (port 21) of the family, a packet to
//!    port 20 (`FTPDATA`) or to an unprivileged port (≥
//!    `ip_unprivileged_port_start`, default 1024) finds `<TCP, vaddr, 21>`
//!    (passive/active FTP data connections);
//! 4. then, if port-zero services exist, `<protocol, vaddr, 0>` (the
//!    catch-all of a persistent port-zero service).
//!
//! The kernel skips each step when its per-family counter is zero; so does
//! this table. Maps are keyed with an explicit SipHash key (no random state)
//! and a lookup allocates nothing.
//!
//! Services are named by the crate's [`ServiceKey`]; its protocol counts by
//! number ([`Protocol::number`]), so `Protocol::Other(6)` names the TCP
//! service.

use crate::hashkey::{HashKey, KeyedBuildHasher};
use crate::{AddressFamily, Protocol, ServiceKey};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// `IPPROTO_TCP`.
pub const TCP: u8 = 6;
/// `FTPPORT`.
pub const FTP_PORT: u16 = 21;
/// `FTPDATA`.
pub const FTP_DATA_PORT: u16 = 20;

/// Errors of [`ServiceTable::insert`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The key is taken (`EEXIST`).
    #[error("service {0:?} already exists")]
    Exists(ServiceKey),
    /// fwmark 0 is "no mark" and cannot name a service.
    #[error("fwmark 0 cannot name a service")]
    ZeroMark,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    fwm: u32,
    nonfwm: u32,
    ftp: u32,
    null: u32,
}

/// The service table.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use lb_sched::hashkey::HashKey;
/// use lb_sched::service_table::ServiceTable;
/// use lb_sched::{AddressFamily, Protocol, ServiceKey};
///
/// let vip: IpAddr = "192.0.2.1".parse()?;
/// let tcp = |port| ServiceKey::Addr { protocol: Protocol::Tcp, addr: SocketAddr::new(vip, port) };
/// let mut t = ServiceTable::new(HashKey::new(1, 2));
/// t.insert(ServiceKey::Fwmark { mark: 80, family: AddressFamily::Inet }, "web-fwm")?;
/// t.insert(tcp(22), "ssh")?;
/// t.insert(tcp(21), "ftp")?;
/// assert_eq!(t.find(80, 6, vip, 443), Some(&"web-fwm"));
/// assert_eq!(t.find(0, 6, vip, 22), Some(&"ssh"));
/// assert_eq!(t.find(0, 6, vip, 40000), Some(&"ftp")); // passive FTP data
/// assert_eq!(t.find(0, 6, vip, 23), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServiceTable<S> {
    fwm: HashMap<(AddressFamily, u32), S, KeyedBuildHasher>,
    addr: HashMap<(u8, IpAddr, u16), S, KeyedBuildHasher>,
    counters: [Counters; 2],
    unprivileged_port_start: u16,
}

impl<S> ServiceTable<S> {
    /// An empty table hashing with `key`.
    #[must_use]
    pub fn new(key: HashKey) -> Self {
        Self {
            fwm: HashMap::with_hasher(key.build_hasher()),
            addr: HashMap::with_hasher(key.build_hasher()),
            counters: [Counters::default(); 2],
            unprivileged_port_start: 1024,
        }
    }

    /// sysctl `net.ipv4.ip_unprivileged_port_start` (default 1024), which
    /// decides which ports may carry FTP data.
    pub fn set_unprivileged_port_start(&mut self, port: u16) -> &mut Self {
        self.unprivileged_port_start = port;
        self
    }

    fn fam(family: AddressFamily) -> usize {
        usize::from(family == AddressFamily::Inet6)
    }

    /// The address map's key: `<protocol number, address, port>`.
    fn addr_key(protocol: Protocol, addr: SocketAddr) -> (u8, IpAddr, u16) {
        (protocol.number(), addr.ip(), addr.port())
    }

    /// Add a service.
    pub fn insert(&mut self, key: ServiceKey, service: S) -> Result<(), ServiceError> {
        match key {
            ServiceKey::Fwmark { mark: 0, .. } => return Err(ServiceError::ZeroMark),
            ServiceKey::Fwmark { mark, family } => {
                if self.fwm.contains_key(&(family, mark)) {
                    return Err(ServiceError::Exists(key));
                }
                self.fwm.insert((family, mark), service);
                self.counters[Self::fam(family)].fwm += 1;
            }
            ServiceKey::Addr { protocol, addr } => {
                let k = Self::addr_key(protocol, addr);
                if self.addr.contains_key(&k) {
                    return Err(ServiceError::Exists(key));
                }
                self.addr.insert(k, service);
                let port = addr.port();
                let c = &mut self.counters[Self::fam(key.family())];
                c.nonfwm += 1;
                if port == FTP_PORT {
                    c.ftp += 1;
                } else if port == 0 {
                    c.null += 1;
                }
            }
        }
        Ok(())
    }

    /// Remove a service.
    pub fn remove(&mut self, key: &ServiceKey) -> Option<S> {
        match *key {
            ServiceKey::Fwmark { mark, family } => {
                let s = self.fwm.remove(&(family, mark))?;
                self.counters[Self::fam(family)].fwm -= 1;
                Some(s)
            }
            ServiceKey::Addr { protocol, addr } => {
                let s = self.addr.remove(&Self::addr_key(protocol, addr))?;
                let port = addr.port();
                let c = &mut self.counters[Self::fam(key.family())];
                c.nonfwm -= 1;
                if port == FTP_PORT {
                    c.ftp -= 1;
                } else if port == 0 {
                    c.null -= 1;
                }
                Some(s)
            }
        }
    }

    /// The service with exactly this key.
    #[must_use]
    pub fn get(&self, key: &ServiceKey) -> Option<&S> {
        match *key {
            ServiceKey::Fwmark { mark, family } => self.fwm.get(&(family, mark)),
            ServiceKey::Addr { protocol, addr } => self.addr.get(&Self::addr_key(protocol, addr)),
        }
    }

    /// Mutable access to the service with exactly this key.
    pub fn get_mut(&mut self, key: &ServiceKey) -> Option<&mut S> {
        match *key {
            ServiceKey::Fwmark { mark, family } => self.fwm.get_mut(&(family, mark)),
            ServiceKey::Addr { protocol, addr } => {
                self.addr.get_mut(&Self::addr_key(protocol, addr))
            }
        }
    }

    /// Number of services.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fwm.len() + self.addr.len()
    }

    /// True when there is no service.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The service a packet belongs to, as `ip_vs_service_find` decides:
    /// `fwmark` is the packet mark (0 = none), the rest the packet's
    /// destination (for ICMP errors, the inner packet's, inverted).
    #[inline]
    #[must_use]
    pub fn find(&self, fwmark: u32, protocol: u8, vaddr: IpAddr, vport: u16) -> Option<&S> {
        self.find_key(fwmark, protocol, vaddr, vport)
            .map(|(_, s)| s)
    }

    /// Like [`Self::find`], also returning which key matched (with the
    /// protocol as [`Protocol::from_number`] names it).
    #[must_use]
    pub fn find_key(
        &self,
        fwmark: u32,
        protocol: u8,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<(ServiceKey, &S)> {
        let family = AddressFamily::of(vaddr);
        let c = &self.counters[Self::fam(family)];
        if fwmark != 0
            && c.fwm > 0
            && let Some(s) = self.fwm.get(&(family, fwmark))
        {
            return Some((
                ServiceKey::Fwmark {
                    mark: fwmark,
                    family,
                },
                s,
            ));
        }
        if c.nonfwm == 0 {
            return None;
        }
        let addr = |port: u16| {
            self.addr.get(&(protocol, vaddr, port)).map(|s| {
                (
                    ServiceKey::Addr {
                        protocol: Protocol::from_number(protocol),
                        addr: SocketAddr::new(vaddr, port),
                    },
                    s,
                )
            })
        };
        if let Some(hit) = addr(vport) {
            return Some(hit);
        }
        if protocol == TCP
            && c.ftp > 0
            && (vport == FTP_DATA_PORT || vport >= self.unprivileged_port_start)
            && let Some(hit) = addr(FTP_PORT)
        {
            return Some(hit);
        }
        if c.null > 0 {
            return addr(0);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn addr_key_of(protocol: u8, addr: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::from_number(protocol),
            addr: SocketAddr::new(addr, port),
        }
    }

    fn fwm_key(v6: bool, mark: u32) -> ServiceKey {
        let family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        ServiceKey::Fwmark { mark, family }
    }

    #[test]
    fn lookup_order_golden() {
        let mut t = ServiceTable::new(HashKey::new(3, 4));
        t.insert(addr_key_of(6, vip(1), 0), "tcp-any").unwrap();
        t.insert(addr_key_of(6, vip(1), 21), "ftp").unwrap();
        t.insert(addr_key_of(6, vip(1), 80), "http").unwrap();
        t.insert(fwm_key(false, 7), "fwm7").unwrap();
        // fwmark first, even over an exact match.
        assert_eq!(t.find(7, 6, vip(1), 80), Some(&"fwm7"));
        // A mark without a service falls through.
        assert_eq!(t.find(8, 6, vip(1), 80), Some(&"http"));
        // FTP data: port 20 and unprivileged ports; privileged others go to port zero.
        assert_eq!(t.find(0, 6, vip(1), 20), Some(&"ftp"));
        assert_eq!(t.find(0, 6, vip(1), 1024), Some(&"ftp"));
        assert_eq!(t.find(0, 6, vip(1), 1023), Some(&"tcp-any"));
        assert_eq!(t.find(0, 17, vip(1), 5000), None);
        t.set_unprivileged_port_start(0);
        assert_eq!(t.find(0, 6, vip(1), 1023), Some(&"ftp"));
        // Families are separate.
        assert_eq!(t.find(7, 6, "2001:db8::1".parse().unwrap(), 80), None);
        // Duplicates and mark 0.
        assert_eq!(
            t.insert(fwm_key(false, 7), "x"),
            Err(ServiceError::Exists(fwm_key(false, 7)))
        );
        assert_eq!(t.insert(fwm_key(true, 0), "x"), Err(ServiceError::ZeroMark));
        // Removal updates the counters.
        assert_eq!(t.remove(&addr_key_of(6, vip(1), 21)), Some("ftp"));
        assert_eq!(t.find(0, 6, vip(1), 1024), Some(&"tcp-any"));
        assert_eq!(t.len(), 3);
        *t.get_mut(&fwm_key(false, 7)).unwrap() = "fwm7b";
        assert_eq!(t.get(&fwm_key(false, 7)), Some(&"fwm7b"));
    }

    /// Naive model: a Vec of services and the kernel's rules as linear scans.
    fn naive(
        svcs: &[(ServiceKey, usize)],
        mark: u32,
        proto: u8,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<usize> {
        let v6 = vaddr.is_ipv6();
        let exact = |p: u8, port: u16| {
            svcs.iter()
                .find(|(k, _)| *k == addr_key_of(p, vaddr, port))
                .map(|s| s.1)
        };
        let fwm = svcs.iter().find(|(k, _)| *k == fwm_key(v6, mark));
        if mark != 0 && fwm.is_some() {
            return fwm.map(|s| s.1);
        }
        if let Some(s) = exact(proto, vport) {
            return Some(s);
        }
        let has_ftp = svcs.iter().any(
            |(k, _)| matches!(k, ServiceKey::Addr { addr, .. } if addr.port() == 21 && addr.is_ipv6() == v6),
        );
        let ftp = exact(6, 21);
        if proto == 6 && has_ftp && (vport == 20 || vport >= 1024) && ftp.is_some() {
            return ftp;
        }
        exact(proto, 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn find_matches_naive(
            adds in prop::collection::vec((any::<bool>(), 1u32..4, prop::sample::select(vec![6u8, 17]), 1u8..3, prop::sample::select(vec![0u16, 20, 21, 80, 1023, 1024, 5000])), 0..12),
            removes in prop::collection::vec(0usize..12, 0..4),
            pkts in prop::collection::vec((0u32..4, prop::sample::select(vec![6u8, 17]), 1u8..3, prop::sample::select(vec![0u16, 20, 21, 22, 80, 1023, 1024, 5000])), 30),
        ) {
            let mut t = ServiceTable::new(HashKey::new(5, 6));
            let mut model: Vec<(ServiceKey, usize)> = Vec::new();
            for (n, (fwm, mark, proto, host, port)) in adds.into_iter().enumerate() {
                let key = if fwm {
                    fwm_key(false, mark)
                } else {
                    addr_key_of(proto, vip(host), port)
                };
                let dup = model.iter().any(|(k, _)| *k == key);
                prop_assert_eq!(t.insert(key, n).is_err(), dup);
                if !dup {
                    model.push((key, n));
                }
            }
            for r in removes {
                if r < model.len() {
                    let (k, v) = model.remove(r);
                    prop_assert_eq!(t.remove(&k), Some(v));
                }
            }
            for (mark, proto, host, port) in pkts {
                prop_assert_eq!(t.find(mark, proto, vip(host), port).copied(), naive(&model, mark, proto, vip(host), port));
            }
        }
    }
}
