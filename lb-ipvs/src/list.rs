//! ipvsadm's listings (`-L` with every modifier) and save format (`-S`),
//! byte for byte as ipvsadm 1.31 prints them (`print_title`,
//! `print_service_entry`, `list_all`, `list_timeout`, `list_daemon`,
//! `list_conn` in ipvsadm.c).

use std::{collections::HashMap, fmt::Write as _, net::IpAddr};

use crate::{
    cmdline::Format,
    conn::Conn,
    sort::{cmp_dests, cmp_services, glibc_msort},
    types::{
        Daemon, DestEntry, Family, ForwardMethod, Protocol, ServiceEntry, ServiceFlags, ServiceKey,
        Snapshot, Timeouts, TunnelType,
    },
};

/// Turns addresses and ports into names for listings without `-n`.
pub trait Resolver {
    /// A host name for an address (`gethostbyaddr`).
    fn host(&self, addr: &IpAddr) -> Option<String>;
    /// A service name for a port (`getservbyport`).
    fn service(&self, port: u16, protocol: Protocol) -> Option<String>;
}

/// Resolves nothing: every listing is numeric.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numeric;

impl Resolver for Numeric {
    fn host(&self, _: &IpAddr) -> Option<String> {
        None
    }

    fn service(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// Resolves from `/etc/hosts` and `/etc/services` only (no DNS).
#[derive(Debug, Clone, Default)]
pub struct Files {
    hosts: HashMap<IpAddr, String>,
    services: HashMap<(u16, &'static str), String>,
}

impl Files {
    /// Reads `/etc/hosts` and `/etc/services` (missing files resolve
    /// nothing).
    pub fn load() -> Self {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
        Self::from_text(&hosts, &services)
    }

    /// Builds a resolver from the text of a hosts and a services file.
    ///
    /// ```
    /// use lb_ipvs::{list::{Files, Resolver}, Protocol};
    /// let r = Files::from_text("127.0.0.1 localhost\n", "http 80/tcp www\n");
    /// assert_eq!(r.service(80, Protocol::Tcp).as_deref(), Some("http"));
    /// assert_eq!(r.host(&"127.0.0.1".parse().unwrap()).as_deref(), Some("localhost"));
    /// ```
    pub fn from_text(hosts_file: &str, services_file: &str) -> Self {
        let mut hosts = HashMap::new();
        for line in hosts_file.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            if let (Some(a), Some(name)) = (w.next(), w.next())
                && let Ok(a) = a.parse()
            {
                hosts.entry(a).or_insert_with(|| name.to_owned());
            }
        }
        let mut services = HashMap::new();
        for line in services_file.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            if let (Some(name), Some(pp)) = (w.next(), w.next())
                && let Some((port, proto)) = pp.split_once('/')
            {
                let proto = match proto {
                    "tcp" => "tcp",
                    "udp" => "udp",
                    "sctp" => "sctp",
                    _ => continue,
                };
                if let Ok(port) = port.parse() {
                    services
                        .entry((port, proto))
                        .or_insert_with(|| name.to_owned());
                }
            }
        }
        Self { hosts, services }
    }
}

impl Resolver for Files {
    fn host(&self, addr: &IpAddr) -> Option<String> {
        self.hosts.get(addr).cloned()
    }

    fn service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let p = match protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Other(_) => return None,
        };
        self.services.get(&(port, p)).cloned()
    }
}

/// `addrport_to_anyname`.
fn addrport(
    addr: &IpAddr,
    port: u16,
    proto: Protocol,
    format: &Format,
    res: &dyn Resolver,
) -> String {
    let (open, close) = if addr.is_ipv6() { ("[", "]") } else { ("", "") };
    if format.numeric {
        format!("{open}{addr}{close}:{port}")
    } else {
        let host = res.host(addr).unwrap_or_else(|| addr.to_string());
        let port = res.service(port, proto).unwrap_or_else(|| port.to_string());
        format!("{open}{host}{close}:{port}")
    }
}

fn truncate(s: &mut String, n: usize) {
    if s.len() > n {
        let mut n = n;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
}

/// `print_largenum`.
fn largenum(out: &mut String, i: u64, format: &Format) {
    if format.exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>w$}");
        return;
    }
    let _ = if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

/// `print_sched_flags` of ipvsadm 1.31: sh and mh have named flags and
/// never print `flag-3` (so `sh` with only SCHED3 lists as `sh ()`).
fn sched_flags(scheduler: &str, flags: ServiceFlags) -> String {
    let names: &[(u32, &str)] = match scheduler {
        "sh" => &[
            (ServiceFlags::SCHED1, "sh-fallback"),
            (ServiceFlags::SCHED2, "sh-port"),
        ],
        "mh" => &[
            (ServiceFlags::SCHED1, "mh-fallback"),
            (ServiceFlags::SCHED2, "mh-port"),
        ],
        _ => &[
            (ServiceFlags::SCHED1, "flag-1"),
            (ServiceFlags::SCHED2, "flag-2"),
            (ServiceFlags::SCHED3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(bit, _)| flags.has(*bit))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// `print_title`.
pub fn title(format: &Format) -> String {
    const P: &str = "Prot LocalAddress:Port";
    const R: &str = "  -> RemoteAddress:Port";
    if format.stats {
        format!(
            "{P:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{R}\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format.rate {
        format!(
            "{P:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{R}\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format.thresholds {
        format!(
            "{P:<33} {:<10} {:<10} {:<10} {:<10}\n{R}\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!(
            "{P:<33} {:<9} {:<11} {:<10} {:<10}\n{R}\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format.tun_info {
        format!(
            "{P} Scheduler Flags\n{R}           Forward TunnelInfo    Weight ActiveConn InActConn\n"
        )
    } else if !format.rule {
        format!("{P} Scheduler Flags\n{R}           Forward Weight ActiveConn InActConn\n")
    } else {
        String::new()
    }
}

fn fwd_name(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::Local => "Local",
        ForwardMethod::Tunnel => "Tunnel",
        ForwardMethod::Route => "Route",
        ForwardMethod::Other(_) => "(null)",
    }
}

fn fwd_switch(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "-m",
        ForwardMethod::Tunnel => "-i",
        ForwardMethod::Local | ForwardMethod::Route => "-g",
        ForwardMethod::Other(_) => "(null)",
    }
}

const TUN_FLAG_NAMES: [&str; 3] = ["-c", "+c", "r+c"];
const TUN_FLAG_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

fn tun_flag(table: &[&'static str; 3], flags: u16) -> &'static str {
    table.get(usize::from(flags)).copied().unwrap_or("(null)")
}

/// `fwd_tun_info`.
fn tun_info(d: &crate::types::Dest) -> Option<String> {
    if d.fwd != ForwardMethod::Tunnel {
        return None;
    }
    match d.tun_type {
        TunnelType::Ipip => Some("ipip".into()),
        TunnelType::Gue => Some(format!(
            "gue:{}:{}",
            d.tun_port,
            tun_flag(&TUN_FLAG_NAMES, d.tun_flags.0)
        )),
        TunnelType::Gre => Some(format!("gre:{}", tun_flag(&TUN_FLAG_NAMES, d.tun_flags.0))),
        TunnelType::Other(_) => None,
    }
}

/// `print_service_entry`: one service and its destinations.
pub fn service_entry(
    out: &mut String,
    se: &ServiceEntry,
    dests: &[DestEntry],
    format: &Format,
    res: &dyn Resolver,
) {
    let s = &se.service;
    let family = s.key.family();
    let proto = match s.key {
        ServiceKey::Addr { protocol, .. } => protocol,
        ServiceKey::Fwmark { .. } => Protocol::Other(0),
    };
    let svc_name = match s.key {
        ServiceKey::Fwmark { family, mark } => match (format.rule, family) {
            (true, Family::Inet6) => format!("-f {mark} -6"),
            (true, Family::Inet) => format!("-f {mark}"),
            (false, Family::Inet6) => format!("FWM  {mark} IPv6"),
            (false, Family::Inet) => format!("FWM  {mark}"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let vname = addrport(&addr, port, protocol, format, res);
            if format.rule {
                let stype = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                    Protocol::Other(_) => "--xxx-service",
                };
                format!("{stype} {vname}")
            } else {
                let stype = match protocol {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                    Protocol::Sctp => "SCTP",
                    Protocol::Other(_) => "?",
                };
                let mut n = format!("{stype:<4} {vname}");
                if family != Family::Inet6 {
                    truncate(&mut n, 33);
                }
                n
            }
        }
    };
    let sched_bits = s.flags.0 & ServiceFlags::SCHED_MASK != 0;
    let mask = || match family {
        Family::Inet if s.netmask != u32::MAX => {
            Some(std::net::Ipv4Addr::from(s.netmask).to_string())
        }
        Family::Inet6 if s.netmask != 128 => Some((s.netmask as i32).to_string()),
        _ => None,
    };
    if format.rule {
        let _ = write!(out, "-A {svc_name} -s {}", s.scheduler);
        if s.persistent() {
            let _ = write!(out, " -p {}", s.timeout);
            if let Some(m) = mask() {
                let _ = write!(out, " -M {m}");
            }
        }
        if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " --pe {pe}");
        }
        if s.flags.has(ServiceFlags::ONEPACKET) {
            out.push_str(" -o");
        }
        if sched_bits {
            let _ = write!(out, " -b {}", sched_flags(&s.scheduler, s.flags));
        }
    } else if format.stats || format.rate {
        let _ = write!(out, "{svc_name:<33}");
        let st = &se.stats;
        let vals = if format.stats {
            [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes]
        } else {
            [st.cps, st.inpps, st.outpps, st.inbps, st.outbps]
        };
        for v in vals {
            largenum(out, v, format);
        }
    } else {
        let _ = write!(out, "{svc_name} {}", s.scheduler);
        if sched_bits {
            let _ = write!(out, " ({})", sched_flags(&s.scheduler, s.flags));
        }
        if s.persistent() {
            let _ = write!(out, " persistent {}", s.timeout);
            if let Some(m) = mask() {
                let _ = write!(out, " mask {m}");
            }
            if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
                let _ = write!(out, " pe {pe}");
            }
        }
        if s.flags.has(ServiceFlags::ONEPACKET) {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let mut dests = dests.to_vec();
    if !format.nosort {
        glibc_msort(&mut dests, &|a: &DestEntry, b: &DestEntry| {
            cmp_dests(&a.dest, &b.dest)
        });
    }
    for e in &dests {
        let d = &e.dest;
        let mut dname = addrport(&d.addr, d.port, proto, format, res);
        if !format.rule && !d.addr.is_ipv6() {
            truncate(&mut dname, 28);
        }
        if format.rule {
            let sw = fwd_switch(d.fwd);
            let w = d.weight;
            let _ = match (d.fwd, d.tun_type) {
                (ForwardMethod::Tunnel, TunnelType::Gue) => writeln!(
                    out,
                    "-a {svc_name} -r {dname} {sw} -w {w} --tun-type gue --tun-port {} {}",
                    d.tun_port,
                    tun_flag(&TUN_FLAG_OPTS, d.tun_flags.0)
                ),
                (ForwardMethod::Tunnel, TunnelType::Gre) => writeln!(
                    out,
                    "-a {svc_name} -r {dname} {sw} -w {w} --tun-type gre {}",
                    tun_flag(&TUN_FLAG_OPTS, d.tun_flags.0)
                ),
                (ForwardMethod::Tunnel, TunnelType::Ipip) => {
                    writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w} --tun-type ipip")
                }
                _ => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w}"),
            };
        } else if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            let st = &e.stats;
            for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                largenum(out, v, format);
            }
            out.push('\n');
        } else if format.rate {
            let st = &e.stats;
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                st.cps, st.inpps, st.outpps
            );
            largenum(out, st.inbps, format);
            largenum(out, st.outbps, format);
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold, d.l_threshold, e.active_conns, e.inact_conns
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight as u32, e.persist_conns, e.active_conns, e.inact_conns
            );
        } else if format.tun_info {
            let ti = tun_info(d).unwrap_or_else(|| "n/a".into());
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {ti:<13} {:<6} {:<10} {:<10}",
                fwd_name(d.fwd),
                d.weight,
                e.active_conns,
                e.inact_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(d.fwd),
                d.weight,
                e.active_conns,
                e.inact_conns
            );
        }
    }
}

/// `list_all`: the whole table (with the version line unless saving).
///
/// ```
/// use lb_ipvs::{cmdline::Format, list, Info, Snapshot};
/// let snap = Snapshot { info: Info { version: 0x010201, conn_tab_size: 4096 }, services: vec![] };
/// let out = list::list_all(&snap, &Format { numeric: true, ..Format::default() }, &list::Numeric);
/// assert_eq!(out, "IP Virtual Server version 1.2.1 (size=4096)\n\
///     Prot LocalAddress:Port Scheduler Flags\n  \
///     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
/// ```
pub fn list_all(snap: &Snapshot, format: &Format, res: &dyn Resolver) -> String {
    let mut out = String::new();
    if !format.rule {
        let (a, b, c) = snap.info.version_triple();
        let _ = writeln!(
            out,
            "IP Virtual Server version {a}.{b}.{c} (size={})",
            snap.info.conn_tab_size as i32
        );
    }
    let mut services = snap.services.clone();
    if !format.nosort {
        glibc_msort(
            &mut services,
            &|a: &(ServiceEntry, Vec<DestEntry>), b: &(ServiceEntry, Vec<DestEntry>)| {
                cmp_services(&a.0.service, &b.0.service)
            },
        );
    }
    out.push_str(&title(format));
    for (s, d) in &services {
        service_entry(&mut out, s, d, format, res);
    }
    out
}

/// `list_service`: one service (`-L -t addr:port`).
pub fn list_service(
    se: &ServiceEntry,
    dests: &[DestEntry],
    format: &Format,
    res: &dyn Resolver,
) -> String {
    let mut out = title(format);
    service_entry(&mut out, se, dests, format, res);
    out
}

/// `ipvsadm -S`: the save format.
pub fn save(snap: &Snapshot, numeric: bool, res: &dyn Resolver) -> String {
    list_all(
        snap,
        &Format {
            numeric,
            rule: true,
            ..Format::default()
        },
        res,
    )
}

/// `list_timeout`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `list_daemon`.
pub fn daemons(daemons: &[Daemon]) -> String {
    let mut out = String::new();
    for d in daemons.iter().take(2) {
        let _ = write!(
            out,
            "{} sync daemon (mcast={}, syncid={}",
            d.state.name(),
            d.mcast_ifn,
            d.syncid as i32
        );
        if d.sync_maxlen != 0 {
            let _ = write!(out, ", maxlen={}", d.sync_maxlen);
        }
        if let Some(g) = d.mcast_group {
            let _ = write!(out, ", group={g}");
        }
        if d.mcast_port != 0 {
            let _ = write!(out, ", port={}", d.mcast_port);
        }
        if d.mcast_ttl != 0 {
            let _ = write!(out, ", ttl={}", d.mcast_ttl);
        }
        out.push_str(")\n");
    }
    out
}

/// `list_conn`: `ipvsadm -L -c` from parsed `/proc/net/ip_vs_conn` rows.
pub fn conns(conns: &[Conn], format: &Format, res: &dyn Resolver) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if format.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let proto = match c.protocol.as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => Protocol::Other(0),
        };
        let cname = addrport(&c.client.0, c.client.1, proto, format, res);
        let vname = addrport(&c.virt.0, c.virt.1, proto, format, res);
        let dname = addrport(&c.dest.0, c.dest.1, proto, format, res);
        let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        match (&c.pe_name, &c.pe_data, format.persistent_conn) {
            (Some(n), Some(d), true) => {
                let _ = writeln!(
                    out,
                    "{:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname:<16} {n:<18} {d}",
                    c.protocol, c.state
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname}",
                    c.protocol, c.state
                );
            }
        }
    }
    out
}
