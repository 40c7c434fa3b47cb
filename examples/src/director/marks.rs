//! fwmark services: the configuration's `fwmark_rules`, installed while the
//! services they mark are planned.
//!
//! keepalived leaves marking to the operator (iptables `mangle` / nftables
//! rules written by hand); the director installs the rules of the planned
//! fwmark services itself, from the same [`MarkRule`]s, in the dataplane's
//! own way:
//!
//! * kernel IPVS: an nftables table `inet lb_director_mark` whose
//!   `prerouting` chain (mangle priority, before routing and IPVS) sets the
//!   mark; each rule ends in `accept`, so the first match wins, as in
//!   `lb-sched`'s classifier.
//! * userspace: the rules go to the forwarder's classifier
//!   ([`lb_forward::forwarder::Forwarder::add_fwmark_rule`]), and the same
//!   table holds an `input` chain dropping the marked TCP/UDP traffic so
//!   the kernel does not answer it (the forwarder has its copy from the
//!   packet socket).
//!
//! The table is replaced in one `nft -f` transaction when the rules change
//! (a reload, mastership), and deleted when no rule is wanted (backup,
//! shutdown).

use lb_sched::fwmark::{FwmarkError, PortSet, Prefix, Rule};

use super::sys;
use crate::config::{MarkRule, Protocol};

/// The nftables table the director owns for its marking rules.
pub const TABLE: &str = "inet lb_director_mark";

/// Which dataplane the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Kernel IPVS: set the mark in `prerouting`.
    Kernel,
    /// The userspace forwarder: keep the kernel off the marked traffic.
    Userspace,
}

/// The nftables match expression of a rule (what follows `chain … {`),
/// without its verdict. `None` when the rule cannot apply in `mode` (SCTP
/// with the userspace dataplane, which forwards TCP and UDP only).
fn matches(r: &MarkRule, mode: Mode) -> Option<String> {
    let fam = if r.daddr.0.is_ipv4() { "ip" } else { "ip6" };
    let mut m = String::new();
    if let Some((a, l)) = r.saddr {
        m.push_str(&format!("{fam} saddr {} ", crate::config::Prefix(a, l)));
    }
    m.push_str(&format!(
        "{fam} daddr {} ",
        crate::config::Prefix(r.daddr.0, r.daddr.1)
    ));
    match (r.protocol, mode) {
        (Some(Protocol::Sctp), Mode::Userspace) => return None,
        (Some(p), _) if !r.dports.is_empty() => {
            let ports: Vec<String> = r
                .dports
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect();
            m.push_str(&format!("{} dport {{ {} }} ", p.as_str(), ports.join(", ")));
        }
        (Some(p), _) => m.push_str(&format!("meta l4proto {} ", p.as_str())),
        (None, Mode::Userspace) => m.push_str("meta l4proto { tcp, udp } "),
        (None, Mode::Kernel) => {}
    }
    Some(m)
}

/// The `nft -f` script that replaces the table with `rules` in one
/// transaction (creating it first, so the delete cannot fail).
///
/// ```
/// use lb_examples::config::{MarkRule, Protocol};
/// use lb_examples::director::marks::{script, Mode};
/// let r = MarkRule {
///     protocol: Some(Protocol::Tcp),
///     saddr: None,
///     daddr: ("192.0.2.1".parse()?, 32),
///     dports: vec![(80, 80), (443, 443)],
///     mark: 100,
/// };
/// let s = script(&[r], Mode::Kernel);
/// assert!(s.contains("ip daddr 192.0.2.1 tcp dport { 80, 443 } meta mark set 100 accept"));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn script(rules: &[MarkRule], mode: Mode) -> String {
    let mut s = format!("table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    match mode {
        Mode::Kernel => {
            s.push_str(
                " chain prerouting {\n  type filter hook prerouting priority mangle; policy accept;\n",
            );
            for r in rules {
                if let Some(m) = matches(r, mode) {
                    s.push_str(&format!("  {m}meta mark set {} accept\n", r.mark));
                }
            }
        }
        Mode::Userspace => {
            s.push_str(" chain input {\n  type filter hook input priority -150; policy accept;\n");
            for r in rules {
                if let Some(m) = matches(r, mode) {
                    s.push_str(&format!("  {m}drop\n"));
                }
            }
        }
    }
    s.push_str(" }\n}\n");
    s
}

/// The rule as `lb-sched`'s classifier rule (for the userspace dataplane).
///
/// ```
/// use lb_examples::config::{MarkRule, Protocol};
/// use lb_examples::director::marks::classifier_rule;
/// let r = MarkRule {
///     protocol: Some(Protocol::Udp),
///     saddr: Some(("10.0.0.0".parse()?, 8)),
///     daddr: ("192.0.2.0".parse()?, 24),
///     dports: vec![(53, 53)],
///     mark: 5,
/// };
/// let c = classifier_rule(&r).unwrap();
/// assert!(c.matches(17, "10.1.2.3".parse()?, "192.0.2.9".parse()?, 53));
/// assert!(!c.matches(6, "10.1.2.3".parse()?, "192.0.2.9".parse()?, 53));
/// assert!(!c.matches(17, "11.1.2.3".parse()?, "192.0.2.9".parse()?, 53));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn classifier_rule(r: &MarkRule) -> Result<Rule, FwmarkError> {
    let mut rule = Rule::mark(r.mark).dst(Prefix::new(r.daddr.0, r.daddr.1)?);
    if let Some((a, l)) = r.saddr {
        rule = rule.src(Prefix::new(a, l)?);
    }
    if let Some(p) = r.protocol {
        rule = rule.protocol(match p {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        });
    }
    if !r.dports.is_empty() {
        rule = rule.dports(PortSet::from_ranges(&r.dports)?);
    }
    Ok(rule)
}

/// The director's marking table as installed: applies a new rule set only
/// when it differs, and removes the table when none is wanted.
#[derive(Debug)]
pub struct MarkTable {
    mode: Mode,
    installed: Vec<MarkRule>,
}

impl MarkTable {
    /// Starts from a clean state: a table left by a director that did not
    /// stop cleanly is removed.
    pub fn new(mode: Mode) -> Self {
        let _ = sys::nft(&format!("delete table {TABLE}\n"));
        Self {
            mode,
            installed: Vec::new(),
        }
    }

    /// Installs `rules` (atomically replacing the table) if they differ
    /// from what is installed; with no rules, removes the table. On
    /// failure the next call tries again.
    pub fn sync(&mut self, rules: &[MarkRule]) {
        if rules == self.installed.as_slice() {
            return;
        }
        if rules.is_empty() {
            self.remove();
            return;
        }
        match sys::nft(&script(rules, self.mode)) {
            Ok(()) => {
                tracing::info!(table = TABLE, rules = rules.len(), mode = ?self.mode, "fwmark rules installed");
                self.installed = rules.to_vec();
            }
            Err(e) => tracing::warn!(table = TABLE, error = %e, "cannot install the fwmark rules"),
        }
    }

    /// Removes the table (if this director installed it).
    pub fn remove(&mut self) {
        if self.installed.is_empty() {
            return;
        }
        match sys::nft(&format!("delete table {TABLE}\n")) {
            Ok(()) => tracing::info!(table = TABLE, "fwmark rules removed"),
            Err(e) => tracing::warn!(table = TABLE, error = %e, "cannot remove the fwmark rules"),
        }
        self.installed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> MarkRule {
        let cfg = crate::config::parse_str(
            "t.conf",
            &format!("fwmark_rules {{\n{text}\n}}\nvirtual_server fwmark 1 {{\n real_server 10.0.0.1 80 {{\n }}\n}}\n"),
        )
        .unwrap()
        .config;
        cfg.fwmark_rules[0].rule.clone()
    }

    #[test]
    fn nft_expressions() {
        let cases = [
            (
                "tcp daddr 192.0.2.1 dport 80,443 mark 1",
                "ip daddr 192.0.2.1 tcp dport { 80, 443 } meta mark set 1 accept",
                Some("ip daddr 192.0.2.1 tcp dport { 80, 443 } drop"),
            ),
            (
                "udp saddr 10.1.2.3/8 daddr 192.0.2.0/24 dport 53,1000:2000 mark 1",
                "ip saddr 10.0.0.0/8 ip daddr 192.0.2.0/24 udp dport { 53, 1000-2000 } meta mark set 1 accept",
                Some("ip saddr 10.0.0.0/8 ip daddr 192.0.2.0/24 udp dport { 53, 1000-2000 } drop"),
            ),
            (
                "tcp daddr 2001:db8::1 mark 1",
                "ip6 daddr 2001:db8::1 meta l4proto tcp meta mark set 1 accept",
                Some("ip6 daddr 2001:db8::1 meta l4proto tcp drop"),
            ),
            (
                "all daddr 192.0.2.1 mark 1",
                "ip daddr 192.0.2.1 meta mark set 1 accept",
                Some("ip daddr 192.0.2.1 meta l4proto { tcp, udp } drop"),
            ),
            (
                "sctp daddr 192.0.2.1 dport 9 mark 1",
                "ip daddr 192.0.2.1 sctp dport { 9 } meta mark set 1 accept",
                None,
            ),
        ];
        for (text, kernel, user) in cases {
            let r = rule(text);
            let k = script(std::slice::from_ref(&r), Mode::Kernel);
            assert!(k.contains(&format!("  {kernel}\n")), "{text}\n{k}");
            assert!(k.contains("hook prerouting priority mangle"), "{k}");
            let u = script(std::slice::from_ref(&r), Mode::Userspace);
            match user {
                Some(x) => assert!(u.contains(&format!("  {x}\n")), "{text}\n{u}"),
                None => assert!(!u.contains("drop"), "{text}\n{u}"),
            }
            assert!(classifier_rule(&r).is_ok(), "{text}");
        }
    }

    #[test]
    fn script_replaces_the_table_in_one_transaction() {
        let s = script(&[rule("tcp daddr 192.0.2.1 mark 1")], Mode::Kernel);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "table inet lb_director_mark");
        assert_eq!(lines[1], "delete table inet lb_director_mark");
        assert_eq!(lines[2], "table inet lb_director_mark {");
        // Balanced braces: one well-formed table.
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    /// The classifier rule agrees with the configuration's meaning on a
    /// grid of packets (protocol, source, destination, port).
    #[test]
    fn classifier_rule_matches_the_rule() {
        let r = rule("tcp saddr 198.51.100.0/24 daddr 192.0.2.0/30 dport 21,10000:20000 mark 1");
        let c = classifier_rule(&r).unwrap();
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        for proto in [6u8, 17] {
            for src in ["198.51.100.7", "198.51.101.7"] {
                for dst in ["192.0.2.3", "192.0.2.4"] {
                    for port in [20u16, 21, 22, 9999, 10000, 15000, 20000, 20001] {
                        let want = proto == 6
                            && src.starts_with("198.51.100.")
                            && dst == "192.0.2.3"
                            && (port == 21 || (10000..=20000).contains(&port));
                        assert_eq!(
                            c.matches(proto, ip(src), ip(dst), port),
                            want,
                            "{proto} {src} {dst} {port}"
                        );
                    }
                }
            }
        }
    }
}
