//! `lbsim`: which real server does this client go to?
//!
//! Loads an IPVS rule set in ipvsadm's save format (`ipvsadm -S -n`), then
//! opens one connection per client line through
//! [`lb_sched::director::Director`], the kernel's new-connection path
//! (service lookup, persistence templates, the service's scheduler, counters
//! and OVERLOAD), and reports the destination of each.
//!
//! Rules are applied line by line in file order, as `ipvsadm -R` sends them,
//! so destinations end up in the kernel's list order (each add goes to the
//! front). Every table command is accepted (`-A -E -D -a -e -d -C`); `-Z`
//! and `--set` change nothing that scheduling reads and are ignored.
//!
//! Client lines: `PROTO SRC:SPORT DST:DPORT [fwmark=N] [inactive]`, IPv6 in
//! brackets, `#` comments and blank lines skipped. Connections stay open in
//! file order, all at the same instant. A TCP or SCTP connection counts as
//! active unless marked `inactive`; a UDP connection is always inactive, as
//! the kernel never moves one to active. A one-packet (`-o`) UDP connection
//! is gone once its packet is forwarded.
//!
//! Which TCP connections the kernel counts as inactive: the kernel binds a
//! new connection inactive and its first packet moves it by
//! `tcp_state_active()`, which in current kernels (the Debian 6.1 kernel the
//! differential test runs, and mainline) is true for SYN_SENT, SYN_RECV and
//! ESTABLISHED. So a connection that has only sent its SYN counts as
//! **active**; `inactive` is for a closing one (FIN or RST seen: FIN_WAIT,
//! TIME_WAIT, CLOSE, ...). Kernels from before `tcp_state_active()` counted
//! only ESTABLISHED as active; there, mark SYN-only connections `inactive`.
//!
//! ```
//! use lb_examples::lbsim::Sim;
//! let mut sim = Sim::new();
//! sim.apply_rules("rules", "-A -t 10.0.0.1:80 -s rr\n\
//!                           -a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m\n\
//!                           -a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m\n")?;
//! let clients = lb_examples::lbsim::parse_clients("clients", "tcp 192.0.2.7:40000 10.0.0.1:80\n")?;
//! let answer = sim.connect(&clients[0])?;
//! // rr starts at the head of the list, the destination added last.
//! assert_eq!(answer.dest, Some("10.0.1.2:8080".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use lb_ipvs::cmdline::Command;
use lb_ipvs::{Family, Op};
use lb_sched::director::{Director, DirectorConfig, DirectorError, Outcome, ServiceConfig};
use lb_sched::persist::Netmask;
use lb_sched::{
    AddressFamily, ConnKind, DestConfig, PacketInfo, Protocol, SchedulerKind, ServiceFlags,
    ServiceKey, SplitMix64,
};

/// What the client file's lines look like, for error messages.
pub const CLIENT_SYNTAX: &str = "PROTO SRC:SPORT DST:DPORT [fwmark=N] [inactive]";

/// A bad line in one of the input files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SimError {
    /// The file, as named on the command line.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What was wrong, and what was expected.
    pub message: String,
}

/// One line of the client file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// 1-based line number.
    pub line: usize,
    /// The line as written, without surrounding white space.
    pub text: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: Protocol,
    /// Client address and port.
    pub src: SocketAddr,
    /// Virtual address and port the client connects to.
    pub dst: SocketAddr,
    /// Packet mark (`fwmark=N`), 0 for none.
    pub fwmark: u32,
    /// Marked `inactive`: counted inactive (a closing TCP connection).
    pub inactive: bool,
}

/// Where a client's connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The real server and port the kernel forwards to; `None` when no
    /// connection is made.
    pub dest: Option<SocketAddr>,
    /// The service that matched, in ipvsadm's spelling (`-t 10.0.0.1:80`).
    pub service: Option<String>,
    /// Why there is no destination.
    pub reason: Option<&'static str>,
    /// Whether the connection is counted active (false: inactive, or gone).
    pub active: bool,
}

/// The simulated director: rules applied so far and the open connections.
#[derive(Debug)]
pub struct Sim {
    director: Director,
    now: Instant,
    rng: SplitMix64,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

/// An ipvsadm service key as `lb_sched` spells it.
#[must_use]
pub fn sched_key(key: &lb_ipvs::ServiceKey) -> ServiceKey {
    match *key {
        lb_ipvs::ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => ServiceKey::Addr {
            // Protocol numbers above 255 cannot be parsed by ipvsadm.
            protocol: Protocol::from_number(protocol.number() as u8),
            addr: SocketAddr::new(addr, port),
        },
        lb_ipvs::ServiceKey::Fwmark { family, mark } => ServiceKey::Fwmark {
            mark,
            family: match family {
                Family::Inet => AddressFamily::Inet,
                Family::Inet6 => AddressFamily::Inet6,
            },
        },
    }
}

/// ipvsadm's spelling of a service (`-t 10.0.0.1:80`, `-f 7 -6`).
#[must_use]
pub fn service_name(key: &ServiceKey) -> String {
    let k = match *key {
        ServiceKey::Addr { protocol, addr } => lb_ipvs::ServiceKey::Addr {
            protocol: lb_ipvs::Protocol::from_number(u16::from(protocol.number())),
            addr: addr.ip(),
            port: addr.port(),
        },
        ServiceKey::Fwmark { mark, family } => lb_ipvs::ServiceKey::Fwmark {
            mark,
            family: match family {
                AddressFamily::Inet => Family::Inet,
                AddressFamily::Inet6 => Family::Inet6,
            },
        },
    };
    k.to_string()
}

/// The errno the kernel answers for a director error, when there is one,
/// so that messages read as ipvsadm's.
fn errno(e: &DirectorError) -> Option<i32> {
    Some(match e {
        DirectorError::ServiceExists(_) => libc::EEXIST,
        DirectorError::NoSuchService(_) => libc::ESRCH,
        DirectorError::Sched(lb_sched::Error::DestExists(_)) => libc::EEXIST,
        DirectorError::Sched(lb_sched::Error::NoSuchAddr(_)) => libc::ENOENT,
        _ => return None,
    })
}

fn service_config(s: &lb_ipvs::Service) -> Result<ServiceConfig, String> {
    if let Some(pe) = &s.pe_name {
        return Err(format!(
            "persistence engine `{pe}` is not simulated (lbsim models the kernel without --pe)"
        ));
    }
    let kind = SchedulerKind::from_str(&s.scheduler).map_err(|_| {
        format!(
            "unknown scheduler `{}` (expected one of rr wrr lc wlc sed nq fo ovf lblc lblcr dh sh mh twos)",
            s.scheduler
        )
    })?;
    let key = sched_key(&s.key);
    let netmask = match s.key.family() {
        Family::Inet => Netmask::V4(s.netmask),
        Family::Inet6 => Netmask::V6(u8::try_from(s.netmask).unwrap_or(u8::MAX)),
    };
    let flags = ServiceFlags::from_bits(s.flags.0 & !lb_ipvs::ServiceFlags::HASHED);
    let mut cfg = ServiceConfig::new(key, kind).netmask(netmask).flags(flags);
    cfg.timeout = Duration::from_secs(u64::from(s.timeout));
    Ok(cfg)
}

fn dest_config(d: &lb_ipvs::Dest) -> Result<DestConfig, String> {
    let weight = u32::try_from(d.weight)
        .map_err(|_| format!("weight {} is negative (expected 0..=2147483647)", d.weight))?;
    Ok(DestConfig::new(SocketAddr::new(d.addr, d.port), weight)
        .thresholds(d.u_threshold, d.l_threshold))
}

impl Sim {
    /// An empty director with the kernel's default sysctls.
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(DirectorConfig::default())
    }

    /// An empty director with the given sysctls.
    #[must_use]
    pub fn with_config(config: DirectorConfig) -> Self {
        let now = Instant::now();
        Self {
            director: Director::new(config, now),
            now,
            // Only `twos` draws; the kernel's draws are random, so its picks
            // are one possible outcome.
            rng: SplitMix64::new(0),
        }
    }

    /// The director, for counters and configuration.
    #[must_use]
    pub fn director(&self) -> &Director {
        &self.director
    }

    /// Applies a rule file (ipvsadm save/restore format) line by line.
    ///
    /// # Errors
    /// The first bad line: a parse error, a command that is not a table
    /// change, or a change the kernel would refuse ("Service already
    /// exists", "No such destination", ...). Lines before it stay applied.
    pub fn apply_rules(&mut self, file: &str, text: &str) -> Result<(), SimError> {
        let cmds = lb_ipvs::save::parse_commands(text).map_err(|e| SimError {
            file: file.to_owned(),
            line: e.line,
            message: format!("{} (expected an ipvsadm -S line)", e.message),
        })?;
        for (line, cmd) in cmds {
            let err = |message: String| SimError {
                file: file.to_owned(),
                line,
                message,
            };
            let Command::Apply(op) = cmd else {
                return Err(err(
                    "not a table command (expected -A, -E, -D, -a, -e, -d or -C)".into(),
                ));
            };
            self.apply(&op).map_err(err)?;
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        let d = &mut self.director;
        let now = self.now;
        let res = match op {
            Op::AddService(s) => d.add_service(service_config(s)?, now).map(drop),
            Op::EditService(s) => d.edit_service(service_config(s)?, now),
            Op::DelService(k) => d.remove_service(&sched_key(k), now),
            Op::AddDest(k, dest) => d.add_dest(&sched_key(k), dest_config(dest)?).map(drop),
            Op::EditDest(k, dest) => d.edit_dest(&sched_key(k), dest_config(dest)?).map(drop),
            Op::DelDest(k, addr, port) => {
                d.remove_dest(&sched_key(k), SocketAddr::new(*addr, *port))
            }
            Op::Flush => {
                d.flush(now);
                Ok(())
            }
            Op::Zero(_) | Op::SetTimeouts(_) => Ok(()),
            _ => {
                return Err("not a table command (expected -A, -E, -D, -a, -e, -d or -C)".into());
            }
        };
        res.map_err(|e| match errno(&e) {
            Some(n) => lb_ipvs::error::strerror(op, n),
            None => e.to_string(),
        })
    }

    /// Opens one client's connection and reports where it went.
    ///
    /// # Errors
    /// Only on internal limits (a counter overflow, a full template table).
    pub fn connect(&mut self, c: &Client) -> Result<Answer, SimError> {
        let err = |e: DirectorError| SimError {
            file: String::new(),
            line: c.line,
            message: e.to_string(),
        };
        let pkt = PacketInfo::new(c.protocol, c.src, c.dst);
        let out = self
            .director
            .schedule(self.now, &pkt, c.fwmark, &mut self.rng)
            .map_err(err)?;
        let name = |d: &Director, id| d.service_config(id).map(|cfg| service_name(&cfg.key));
        Ok(match out {
            Outcome::Conn(mut conn) => {
                let service = name(&self.director, conn.service());
                let mut active = false;
                if conn.is_one_packet() {
                    self.director.close(self.now, conn).map_err(err)?;
                } else if !c.inactive && c.protocol != Protocol::Udp {
                    self.director.set_active(&mut conn, true).map_err(err)?;
                    active = conn.kind() == ConnKind::Active;
                }
                Answer {
                    dest: Some(conn.daddr()),
                    service,
                    reason: None,
                    active,
                }
            }
            Outcome::Refused(r) => Answer {
                dest: None,
                service: r.service().and_then(|id| name(&self.director, id)),
                reason: Some(r.reason()),
                active: false,
            },
        })
    }
}

fn bad(file: &str, line: usize, message: String) -> SimError {
    SimError {
        file: file.to_owned(),
        line,
        message,
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses the client file (see the [module documentation](self)).
///
/// # Errors
/// The first bad line, naming what was expected.
pub fn parse_clients(file: &str, text: &str) -> Result<Vec<Client>, SimError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |m: String| bad(file, line, format!("{m}; expected `{CLIENT_SYNTAX}`"));
        let mut words = trimmed.split_whitespace();
        let (Some(proto), Some(src), Some(dst)) = (words.next(), words.next(), words.next()) else {
            return Err(bad("too few fields".into()));
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => {
                return Err(bad(format!(
                    "unknown protocol `{proto}` (tcp, udp or sctp)"
                )));
            }
        };
        let addr = |s: &str, what: &str| -> Result<SocketAddr, SimError> {
            s.parse()
                .map_err(|_| bad(format!("bad {what} `{s}` (ADDR:PORT, IPv6 as [ADDR]:PORT)")))
        };
        let src = addr(src, "client address")?;
        let dst = addr(dst, "virtual address")?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(bad(format!("`{src}` and `{dst}` mix IPv4 and IPv6")));
        }
        let mut fwmark = 0;
        let mut inactive = false;
        for w in words {
            if let Some(v) = w.strip_prefix("fwmark=") {
                fwmark = parse_u32(v)
                    .filter(|&m| m != 0)
                    .ok_or_else(|| bad(format!("bad fwmark `{v}` (1..=4294967295)")))?;
            } else if w == "inactive" {
                inactive = true;
            } else {
                return Err(bad(format!("unexpected `{w}`")));
            }
        }
        out.push(Client {
            line,
            text: trimmed.to_owned(),
            protocol,
            src,
            dst,
            fwmark,
            inactive,
        });
    }
    Ok(out)
}

/// Runs a whole simulation and returns the text to print: each client line
/// followed by ` -> RIP:RPORT` or ` -> none`, or with `json` one JSON
/// object per line.
///
/// # Errors
/// The first bad line of either file; nothing is returned then.
pub fn run(
    rules_file: &str,
    rules: &str,
    clients_file: &str,
    clients: &str,
    json: bool,
) -> Result<String, SimError> {
    let mut sim = Sim::new();
    sim.apply_rules(rules_file, rules)?;
    let clients = parse_clients(clients_file, clients)?;
    let mut out = String::new();
    for c in &clients {
        let a = sim.connect(c).map_err(|mut e| {
            e.file = clients_file.to_owned();
            e
        })?;
        if json {
            let v = serde_json::json!({
                "line": c.line,
                "input": c.text,
                "protocol": match c.protocol {
                    Protocol::Udp => "udp",
                    Protocol::Sctp => "sctp",
                    _ => "tcp",
                },
                "client": c.src.to_string(),
                "virtual": c.dst.to_string(),
                "fwmark": (c.fwmark != 0).then_some(c.fwmark),
                "service": a.service,
                "dest": a.dest.map(|d| d.to_string()),
                "active": a.active,
                "reason": a.reason,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        } else {
            match a.dest {
                Some(d) => writeln!(out, "{} -> {d}", c.text),
                None => writeln!(out, "{} -> none", c.text),
            }
            .expect("writing to a String cannot fail");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
