//! Classification of a new flow: firewall-mark rules first (what
//! `iptables -t mangle ... -j MARK` does in front of IPVS), then the
//! service lookup in the kernel's order: fwmark services, then
//! `<proto, vaddr, vport>`, then a port-zero service `<proto, vaddr, 0>`.

use crate::addr::Addr;
use crate::parse::FlowKey;
use std::collections::HashMap;
use std::ops::RangeInclusive;

/// A prefix (`addr/len`; `len` counts IPv4 bits for IPv4 addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The network address.
    pub addr: Addr,
    /// Prefix length.
    pub len: u8,
}

impl Prefix {
    /// The prefix `addr/len` (host bits are cleared).
    #[must_use]
    pub fn new(addr: impl Into<Addr>, len: u8) -> Self {
        let addr = addr.into();
        Self {
            addr: addr.masked(len),
            len,
        }
    }

    /// True if `a` is inside.
    #[must_use]
    pub fn contains(&self, a: &Addr) -> bool {
        a.is_v4() == self.addr.is_v4() && a.masked(self.len) == self.addr
    }
}

/// One mark rule; the first matching rule gives the mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwmarkRule {
    /// Protocol to match, or any.
    pub proto: Option<u8>,
    /// Source prefix, or any.
    pub src: Option<Prefix>,
    /// Destination prefix, or any.
    pub dst: Option<Prefix>,
    /// Destination ports (TCP/UDP).
    pub dports: RangeInclusive<u16>,
    /// The mark to set (non-zero).
    pub mark: u32,
}

impl FwmarkRule {
    /// True if the rule matches `f`.
    #[must_use]
    pub fn matches(&self, f: &FlowKey) -> bool {
        self.proto.is_none_or(|p| p == f.proto)
            && self.src.is_none_or(|p| p.contains(&f.src))
            && self.dst.is_none_or(|p| p.contains(&f.dst))
            && self.dports.contains(&f.dport)
    }
}

/// What identifies a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `-t|-u addr:port` (port 0: all ports, persistent services only).
    Addr {
        /// IP protocol (6 or 17).
        proto: u8,
        /// Virtual address.
        addr: Addr,
        /// Virtual port.
        port: u16,
    },
    /// `-f mark`: every packet carrying the mark, any protocol.
    Fwmark(u32),
}

/// The mark rules and the service index.
#[derive(Debug, Default)]
pub struct Classifier {
    rules: Vec<FwmarkRule>,
    by_addr: HashMap<(u8, Addr, u16), u16>,
    by_mark: HashMap<u32, u16>,
}

impl Classifier {
    /// Appends a mark rule.
    pub fn add_rule(&mut self, rule: FwmarkRule) {
        self.rules.push(rule);
    }

    /// Removes every mark rule.
    pub fn clear_rules(&mut self) {
        self.rules.clear();
    }

    /// The mark of a flow (0 when no rule matches).
    #[must_use]
    pub fn mark(&self, f: &FlowKey) -> u32 {
        self.rules
            .iter()
            .find(|r| r.matches(f))
            .map_or(0, |r| r.mark)
    }

    /// Indexes service `svc` under `key`; false if the key is taken.
    pub fn insert(&mut self, key: ServiceKey, svc: u16) -> bool {
        match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.try_insert_compat((proto, addr, port), svc)
            }
            ServiceKey::Fwmark(m) => self.by_mark.try_insert_compat(m, svc),
        }
    }

    /// Drops `key` from the index.
    pub fn remove(&mut self, key: ServiceKey) {
        match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.remove(&(proto, addr, port));
            }
            ServiceKey::Fwmark(m) => {
                self.by_mark.remove(&m);
            }
        }
    }

    /// The service for a new flow, in the kernel's order.
    ///
    /// # Examples
    ///
    /// ```
    /// use lb_forward::{addr::Addr, classify::*, parse::FlowKey};
    /// let mut c = Classifier::default();
    /// let vip = Addr::v4([10, 0, 0, 100]);
    /// c.insert(ServiceKey::Addr { proto: 6, addr: vip, port: 80 }, 0);
    /// c.insert(ServiceKey::Fwmark(7), 1);
    /// c.add_rule(FwmarkRule { proto: Some(6), src: None, dst: None, dports: 443..=443, mark: 7 });
    /// let f = FlowKey { proto: 6, src: Addr::v4([1, 2, 3, 4]), dst: vip, sport: 999, dport: 80 };
    /// assert_eq!(c.lookup(&f), Some(0));
    /// assert_eq!(c.lookup(&FlowKey { dport: 443, ..f }), Some(1));
    /// assert_eq!(c.lookup(&FlowKey { dport: 22, ..f }), None);
    /// ```
    #[must_use]
    pub fn lookup(&self, f: &FlowKey) -> Option<u16> {
        if !self.by_mark.is_empty() && !self.rules.is_empty() {
            let m = self.mark(f);
            if m != 0
                && let Some(&s) = self.by_mark.get(&m)
            {
                return Some(s);
            }
        }
        self.by_addr
            .get(&(f.proto, f.dst, f.dport))
            .or_else(|| self.by_addr.get(&(f.proto, f.dst, 0)))
            .copied()
    }
}

trait TryInsertCompat<K, V> {
    fn try_insert_compat(&mut self, k: K, v: V) -> bool;
}

impl<K: std::hash::Hash + Eq, V> TryInsertCompat<K, V> for HashMap<K, V> {
    fn try_insert_compat(&mut self, k: K, v: V) -> bool {
        if self.contains_key(&k) {
            return false;
        }
        self.insert(k, v);
        true
    }
}
