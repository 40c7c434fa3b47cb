//! Firewall-mark classification, the job iptables `mangle` rules do in front
//! of IPVS fwmark services (`-t mangle -A PREROUTING -p tcp -d VIP -m
//! multiport --dports 80,443 -j MARK --set-mark 80`).
//!
//! Rules are ordered and the **first match wins** (as a chain of `MARK` +
//! `RETURN` rules). A rule matches on protocol, source and destination
//! prefix, and destination port list / ranges (`multiport` syntax:
//! `21,10000:20000`). Classification walks the rules with no allocation.

use std::net::IpAddr;

/// Protocols that carry ports (iptables `multiport` accepts these).
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136]; // tcp udp dccp sctp udplite

/// Errors building rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FwmarkError {
    /// A port list item is not `port` or `low:high`.
    #[error("bad port list item {item:?} at byte {offset}")]
    BadPort {
        /// The offending text.
        item: String,
        /// Its byte offset in the list.
        offset: usize,
    },
    /// A range with `low > high`.
    #[error("port range {low}:{high} at byte {offset} is reversed")]
    ReversedRange {
        /// Lower bound as written.
        low: u16,
        /// Upper bound as written.
        high: u16,
        /// Its byte offset in the list.
        offset: usize,
    },
    /// A prefix that is not `addr` or `addr/len` with a valid length.
    #[error("bad prefix {0:?}")]
    BadPrefix(String),
    /// Ports given without a port-carrying protocol (iptables: "multiport
    /// needs -p tcp, -p udp, -p udplite, -p sctp or -p dccp").
    #[error("destination ports need protocol tcp, udp, udplite, sctp or dccp")]
    PortsWithoutProtocol,
    /// Source and destination prefixes of different families.
    #[error("source and destination prefixes mix IPv4 and IPv6")]
    FamilyMismatch,
}

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    v6: bool,
    net: u128,
    mask: u128,
    len: u8,
}

impl Prefix {
    /// A prefix from an address and length (host bits are cleared).
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, FwmarkError> {
        let (v6, bits, max) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (true, u128::from(a), 128u8),
        };
        if len > max {
            return Err(FwmarkError::BadPrefix(format!("{addr}/{len}")));
        }
        let width = u32::from(max);
        let mask = if len == 0 {
            0
        } else {
            let ones = u128::MAX << (128 - u32::from(len));
            ones >> (128 - width)
        };
        Ok(Self {
            v6,
            net: bits & mask,
            mask,
            len,
        })
    }

    /// Parse `addr` or `addr/len`.
    ///
    /// ```
    /// use lb_sched::fwmark::Prefix;
    /// let p = Prefix::parse("192.0.2.0/24")?;
    /// assert!(p.contains("192.0.2.77".parse()?));
    /// assert!(!p.contains("192.0.3.1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, FwmarkError> {
        let bad = || FwmarkError::BadPrefix(s.to_owned());
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let len = match l {
            Some(l) => l.parse::<u8>().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, len)
    }

    /// Whether `addr` is inside the prefix (never across families).
    #[inline]
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => !self.v6 && u128::from(u32::from(a)) & self.mask == self.net,
            IpAddr::V6(a) => self.v6 && u128::from(a) & self.mask == self.net,
        }
    }

    /// Prefix length.
    #[must_use]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for a /0 prefix.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True for IPv6.
    #[must_use]
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }
}

/// A set of destination ports: single ports and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PortSet {
    ranges: Box<[(u16, u16)]>,
}

impl PortSet {
    /// From inclusive `(low, high)` ranges (a single port is `(p, p)`).
    pub fn from_ranges(ranges: &[(u16, u16)]) -> Result<Self, FwmarkError> {
        if let Some(&(low, high)) = ranges.iter().find(|r| r.0 > r.1) {
            return Err(FwmarkError::ReversedRange {
                low,
                high,
                offset: 0,
            });
        }
        Ok(Self {
            ranges: ranges.into(),
        })
    }

    /// Parse `multiport` syntax: `80,443` or `21,10000:20000`.
    ///
    /// ```
    /// use lb_sched::fwmark::PortSet;
    /// let p = PortSet::parse("21,10000:20000")?;
    /// assert!(p.contains(21) && p.contains(15000) && !p.contains(22));
    /// # Ok::<(), lb_sched::fwmark::FwmarkError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, FwmarkError> {
        let mut ranges = Vec::new();
        let mut offset = 0;
        for item in s.split(',') {
            let bad = || FwmarkError::BadPort {
                item: item.to_owned(),
                offset,
            };
            let num = |t: &str| t.trim().parse::<u16>().map_err(|_| bad());
            let r = match item.split_once(':') {
                Some((a, b)) => {
                    let (low, high) = (num(a)?, num(b)?);
                    if low > high {
                        return Err(FwmarkError::ReversedRange { low, high, offset });
                    }
                    (low, high)
                }
                None => {
                    let p = num(item)?;
                    (p, p)
                }
            };
            ranges.push(r);
            offset += item.len() + 1;
        }
        Ok(Self {
            ranges: ranges.into(),
        })
    }

    /// Whether `port` is in the set.
    #[inline]
    #[must_use]
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }

    /// The ranges.
    #[must_use]
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

/// One classifier rule. Unset fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    protocol: Option<u8>,
    src: Option<Prefix>,
    dst: Option<Prefix>,
    dports: Option<PortSet>,
    mark: u32,
}

impl Rule {
    /// A rule that sets `mark` on every packet; narrow it with the setters.
    #[must_use]
    pub fn mark(mark: u32) -> Self {
        Self {
            protocol: None,
            src: None,
            dst: None,
            dports: None,
            mark,
        }
    }

    /// Match this IP protocol number (`-p`).
    #[must_use]
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Match this source prefix (`-s`).
    #[must_use]
    pub fn src(mut self, prefix: Prefix) -> Self {
        self.src = Some(prefix);
        self
    }

    /// Match this destination prefix (`-d`).
    #[must_use]
    pub fn dst(mut self, prefix: Prefix) -> Self {
        self.dst = Some(prefix);
        self
    }

    /// Match these destination ports (`-m multiport --dports`).
    #[must_use]
    pub fn dports(mut self, ports: PortSet) -> Self {
        self.dports = Some(ports);
        self
    }

    /// The mark this rule sets.
    #[must_use]
    pub fn mark_value(&self) -> u32 {
        self.mark
    }

    fn validate(&self) -> Result<(), FwmarkError> {
        if self.dports.is_some() && !self.protocol.is_some_and(|p| PORT_PROTOCOLS.contains(&p)) {
            return Err(FwmarkError::PortsWithoutProtocol);
        }
        if let (Some(s), Some(d)) = (self.src, self.dst)
            && s.v6 != d.v6
        {
            return Err(FwmarkError::FamilyMismatch);
        }
        Ok(())
    }

    /// Whether the rule matches a packet.
    #[inline]
    #[must_use]
    pub fn matches(&self, protocol: u8, src: IpAddr, dst: IpAddr, dport: u16) -> bool {
        self.protocol.is_none_or(|p| p == protocol)
            && self.dst.is_none_or(|d| d.contains(dst))
            && self.src.is_none_or(|s| s.contains(src))
            && self
                .dports
                .as_ref()
                .is_none_or(|ports| ports.contains(dport))
    }
}

/// An ordered list of rules; the first match sets the mark.
///
/// ```
/// use lb_sched::fwmark::{Classifier, PortSet, Prefix, Rule};
///
/// let vip = Prefix::parse("192.0.2.1")?;
/// let mut c = Classifier::new();
/// c.push(Rule::mark(80).protocol(6).dst(vip).dports(PortSet::parse("80,443")?))?;
/// c.push(Rule::mark(21).protocol(6).dst(vip).dports(PortSet::parse("21,10000:20000")?))?;
/// let client = "198.51.100.1".parse()?;
/// assert_eq!(c.classify(6, client, "192.0.2.1".parse()?, 443), Some(80));
/// assert_eq!(c.classify(6, client, "192.0.2.1".parse()?, 12345), Some(21));
/// assert_eq!(c.classify(17, client, "192.0.2.1".parse()?, 443), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classifier {
    rules: Vec<Rule>,
}

impl Classifier {
    /// No rules (every packet unmarked).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a rule (after the existing ones).
    pub fn push(&mut self, rule: Rule) -> Result<&mut Self, FwmarkError> {
        rule.validate()?;
        self.rules.push(rule);
        Ok(self)
    }

    /// The rules in order.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The mark of the first matching rule, `None` if no rule matches.
    #[inline]
    #[must_use]
    pub fn classify(&self, protocol: u8, src: IpAddr, dst: IpAddr, dport: u16) -> Option<u32> {
        self.rules
            .iter()
            .find(|r| r.matches(protocol, src, dst, dport))
            .map(|r| r.mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_errors_carry_offsets() {
        assert_eq!(
            PortSet::parse("80,x,443"),
            Err(FwmarkError::BadPort {
                item: "x".into(),
                offset: 3
            })
        );
        assert_eq!(
            PortSet::parse("80,20:10"),
            Err(FwmarkError::ReversedRange {
                low: 20,
                high: 10,
                offset: 3
            })
        );
        assert!(PortSet::parse("70000").is_err());
        assert!(PortSet::parse("").is_err());
        assert!(Prefix::parse("10.0.0.0/33").is_err());
        assert!(Prefix::parse("::/129").is_err());
        assert!(Prefix::parse("nope").is_err());
        assert!(
            Classifier::new()
                .push(Rule::mark(1).dports(PortSet::parse("80").unwrap()))
                .is_err()
        );
        assert!(
            Classifier::new()
                .push(
                    Rule::mark(1)
                        .protocol(1)
                        .dports(PortSet::parse("80").unwrap())
                )
                .is_err()
        );
        let mixed = Rule::mark(1)
            .src(Prefix::parse("10.0.0.0/8").unwrap())
            .dst(Prefix::parse("::/0").unwrap());
        assert_eq!(
            Classifier::new().push(mixed).unwrap_err(),
            FwmarkError::FamilyMismatch
        );
    }

    #[test]
    fn prefixes_and_families() {
        let p = Prefix::parse("10.1.0.0/16").unwrap();
        assert!(p.contains("10.1.255.255".parse().unwrap()));
        assert!(!p.contains("10.2.0.0".parse().unwrap()));
        assert!(
            !p.contains("::a01:0".parse().unwrap()),
            "never across families"
        );
        let any4 = Prefix::parse("0.0.0.0/0").unwrap();
        assert!(any4.contains("255.255.255.255".parse().unwrap()) && any4.is_empty());
        let p6 = Prefix::parse("2001:db8::/32").unwrap();
        assert!(p6.contains("2001:db8:ffff::1".parse().unwrap()) && p6.is_ipv6());
        assert_eq!(
            Prefix::parse("10.1.2.3/8").unwrap(),
            Prefix::parse("10.0.0.0/8").unwrap()
        );
    }

    #[test]
    fn first_match_wins() {
        let mut c = Classifier::new();
        c.push(
            Rule::mark(1)
                .protocol(6)
                .dports(PortSet::parse("80").unwrap()),
        )
        .unwrap();
        c.push(Rule::mark(2).protocol(6)).unwrap();
        c.push(Rule::mark(3)).unwrap();
        let (a, b) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
        assert_eq!(c.classify(6, a, b, 80), Some(1));
        assert_eq!(c.classify(6, a, b, 81), Some(2));
        assert_eq!(c.classify(17, a, b, 80), Some(3));
        assert_eq!(Classifier::new().classify(6, a, b, 80), None);
    }

    /// Naive model: expand every port set into a full 65 536-entry bitmap and
    /// compare prefixes bit by bit.
    type NaiveRule = (Option<u8>, Option<(u32, u8)>, Option<Vec<(u16, u16)>>, u32);

    fn naive(rules: &[NaiveRule], proto: u8, dst: u32, port: u16) -> Option<u32> {
        for (p, d, ports, mark) in rules {
            if p.is_some_and(|p| p != proto) {
                continue;
            }
            if let Some((net, len)) = d {
                let same =
                    (0..u32::from(*len)).all(|b| (net >> (31 - b)) & 1 == (dst >> (31 - b)) & 1);
                if !same {
                    continue;
                }
            }
            if let Some(ranges) = ports {
                let mut bitmap = vec![false; 65536];
                for &(lo, hi) in ranges {
                    for q in lo..=hi {
                        bitmap[q as usize] = true;
                    }
                }
                if !bitmap[port as usize] {
                    continue;
                }
            }
            return Some(*mark);
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn classify_matches_naive(
            rules in prop::collection::vec((
                prop::option::of(prop::sample::select(vec![6u8, 17])),
                prop::option::of((any::<u32>(), 0u8..=32)),
                prop::option::of(prop::collection::vec((0u16..200, 0u16..50), 1..4)),
                0u32..10,
            ), 0..8),
            pkts in prop::collection::vec((prop::sample::select(vec![6u8, 17, 1]), 0usize..16, any::<u32>(), 0u16..260), 20),
        ) {
            // Ports need a protocol; ranges are (start, width).
            let rules: Vec<_> = rules.into_iter().map(|(p, d, ports, m)| {
                let ports = ports.map(|v| v.into_iter().map(|(a, w)| (a, a + w)).collect::<Vec<_>>());
                let p = if ports.is_some() { Some(p.unwrap_or(6)) } else { p };
                (p, d, ports, m)
            }).collect();
            let mut c = Classifier::new();
            for (p, d, ports, m) in &rules {
                let mut r = Rule::mark(*m);
                if let Some(p) = p { r = r.protocol(*p); }
                if let Some((net, len)) = d {
                    r = r.dst(Prefix::new(IpAddr::V4((*net).into()), *len).unwrap());
                }
                if let Some(ranges) = ports { r = r.dports(PortSet::from_ranges(ranges).unwrap()); }
                c.push(r).unwrap();
            }
            for (proto, aim, noise, port) in pkts {
                // Most packets aim near some rule's network (low bits flipped).
                let dst = match rules.get(aim).and_then(|r| r.1) {
                    Some((net, _)) => net ^ (noise & 0xff),
                    None => noise,
                };
                let got = c.classify(proto, "192.0.2.1".parse().unwrap(), IpAddr::V4(dst.into()), port);
                prop_assert_eq!(got, naive(&rules, proto, dst, port));
            }
        }
    }
}
