//! Classification of a new flow, delegated to `lb-sched`: its firewall-mark
//! rules ([`lb_sched::fwmark::Classifier`], first match wins, what
//! `iptables -t mangle ... -j MARK` does in front of IPVS), then its service
//! table ([`lb_sched::service_table::ServiceTable`]) in the order of the
//! kernel's `ip_vs_service_find`: fwmark services, `<proto, vaddr, vport>`,
//! the FTP data ports of a port-21 service, then a port-zero service
//! `<proto, vaddr, 0>`. Neither step allocates.

use crate::addr::Addr;
use crate::parse::FlowKey;
use lb_sched::AddressFamily;
use lb_sched::fwmark::{self, FwmarkError, Rule};
use lb_sched::hashkey::HashKey;
use lb_sched::service_table::ServiceTable;
use std::net::IpAddr;

/// What identifies a virtual service of the forwarder.
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
    /// `-f mark`: every packet carrying the mark, any protocol, either
    /// family (one fwmark service per family in `lb-sched`'s table).
    Fwmark(u32),
}

impl ServiceKey {
    /// The `lb-sched` service-table keys this service occupies.
    fn table_keys(self) -> ([lb_sched::ServiceKey; 2], usize) {
        match self {
            Self::Addr { proto, addr, port } => {
                let k = lb_sched::ServiceKey::Addr {
                    protocol: lb_sched::Protocol::from_number(proto),
                    addr: std::net::SocketAddr::new(addr.into(), port),
                };
                ([k, k], 1)
            }
            Self::Fwmark(mark) => (
                [AddressFamily::Inet, AddressFamily::Inet6]
                    .map(|family| lb_sched::ServiceKey::Fwmark { mark, family }),
                2,
            ),
        }
    }
}

/// The mark rules and the service index.
#[derive(Debug)]
pub struct Classifier {
    rules: fwmark::Classifier,
    services: ServiceTable<u16>,
}

impl Classifier {
    /// An empty classifier whose service index hashes with `key`.
    #[must_use]
    pub fn new(key: HashKey) -> Self {
        Self {
            rules: fwmark::Classifier::new(),
            services: ServiceTable::new(key),
        }
    }

    /// Appends a mark rule.
    pub fn add_rule(&mut self, rule: Rule) -> Result<(), FwmarkError> {
        self.rules.push(rule).map(|_| ())
    }

    /// Drops every mark rule (to install a new set: flows already tracked
    /// keep their destination, only new flows see the new rules).
    pub fn clear_rules(&mut self) {
        self.rules = fwmark::Classifier::new();
    }

    /// The mark rules, in order.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        self.rules.rules()
    }

    /// Indexes service `svc` under `key`; false if the key is taken (or is
    /// fwmark 0).
    pub fn insert(&mut self, key: ServiceKey, svc: u16) -> bool {
        let (keys, n) = key.table_keys();
        if keys[..n].iter().any(|k| self.services.get(k).is_some()) {
            return false;
        }
        keys[..n]
            .iter()
            .all(|&k| self.services.insert(k, svc).is_ok())
    }

    /// Drops `key` from the index.
    pub fn remove(&mut self, key: ServiceKey) {
        let (keys, n) = key.table_keys();
        for k in &keys[..n] {
            self.services.remove(k);
        }
    }

    /// The service for a new flow, in the kernel's order.
    ///
    /// # Examples
    ///
    /// ```
    /// use lb_forward::{addr::Addr, classify::*, parse::FlowKey};
    /// use lb_sched::{fwmark::{PortSet, Rule}, hashkey::HashKey};
    /// let mut c = Classifier::new(HashKey::new(1, 2));
    /// let vip = Addr::v4([10, 0, 0, 100]);
    /// c.insert(ServiceKey::Addr { proto: 6, addr: vip, port: 80 }, 0);
    /// c.insert(ServiceKey::Fwmark(7), 1);
    /// c.add_rule(Rule::mark(7).protocol(6).dports(PortSet::parse("443").unwrap())).unwrap();
    /// let f = FlowKey { proto: 6, src: Addr::v4([1, 2, 3, 4]), dst: vip, sport: 999, dport: 80 };
    /// assert_eq!(c.lookup(&f), Some(0));
    /// assert_eq!(c.lookup(&FlowKey { dport: 443, ..f }), Some(1));
    /// assert_eq!(c.lookup(&FlowKey { dport: 22, ..f }), None);
    /// ```
    #[must_use]
    pub fn lookup(&self, f: &FlowKey) -> Option<u16> {
        let (src, dst) = (IpAddr::from(f.src), IpAddr::from(f.dst));
        let mark = self.rules.classify(f.proto, src, dst, f.dport).unwrap_or(0);
        self.services.find(mark, f.proto, dst, f.dport).copied()
    }
}
