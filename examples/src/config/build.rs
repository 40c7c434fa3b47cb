//! From statements to the typed [`Config`]: keyword dispatch per block, value
//! checks, cross references, and the missing-brace diagnosis.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::error::{ConfigError, ErrorKind, Pos, Warning};
use super::lexer::{Block, Stmt, Word};
use super::model::*;

/// The kinds of block a keyword can open, used to tell a misplaced block
/// (the previous block is missing its `}`) from an unknown keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    VirtualServer,
    RealServer,
    Http,
    Other,
}

/// Where a block-opening keyword belongs.
fn home(keyword: &str) -> Option<Ctx> {
    Some(match keyword {
        "global_defs"
        | "vrrp_script"
        | "vrrp_sync_group"
        | "vrrp_instance"
        | "virtual_server"
        | "virtual_server_group"
        | "track_file"
        | "fwmark_rules"
        | "static_ipaddress"
        | "static_routes"
        | "static_rules"
        | "vrrp_track_process"
        | "SSL"
        | "garp_group"
        | "bfd_instance" => Ctx::Top,
        "real_server" => Ctx::VirtualServer,
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK"
        | "PING_CHECK" | "MISC_CHECK" | "FILE_CHECK" | "BFD_CHECK" => Ctx::RealServer,
        "url" => Ctx::Http,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Frame {
    ctx: Ctx,
    keyword: String,
    open_line: u32,
}

/// Builds the typed configuration, collecting warnings.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub(crate) warnings: Vec<Warning>,
    stack: Vec<Frame>,
}

type R<T> = Result<T, ConfigError>;

fn err<T>(pos: &Pos, kind: ErrorKind) -> R<T> {
    Err(ConfigError::new(pos.clone(), kind))
}

fn bad<T>(w: &Word, keyword: &str, expected: &str) -> R<T> {
    err(
        &w.pos,
        ErrorKind::BadValue {
            keyword: keyword.to_owned(),
            value: w.text.clone(),
            expected: expected.to_owned(),
        },
    )
}

/// A virtual server's address family (see [`VirtualServer::family`]), and
/// an error at the offending line when its servers mix families: every
/// real server (tunnelled ones aside: IPVS tunnels may cross families) and
/// the sorry server must be of the service's family.
fn resolve_family(v: &VirtualServer, ip_family: Option<(IpFamily, Pos)>) -> R<IpFamily> {
    let name = |f: IpFamily| match f {
        IpFamily::Inet => "IPv4",
        IpFamily::Inet6 => "IPv6",
    };
    let direct = v
        .real_servers
        .iter()
        .filter(|r| !matches!(r.method.unwrap_or(v.method), LvsMethod::Tun(_)));
    // The family and where it comes from.
    let (family, from) = match (&v.key, &ip_family) {
        (VsKey::Addr { ip, .. }, _) => {
            let f = IpFamily::of(*ip);
            if let Some((g, pos)) = &ip_family
                && *g != f
            {
                return err(
                    pos,
                    ErrorKind::Conflict(format!(
                        "ip_family {} conflicts with the {} virtual server address",
                        if *g == IpFamily::Inet {
                            "inet"
                        } else {
                            "inet6"
                        },
                        name(f)
                    )),
                );
            }
            (f, format!("its address, line {}", v.pos.line))
        }
        (_, Some((f, pos))) => (*f, format!("ip_family, line {}", pos.line)),
        (VsKey::Group(_), None) => return Ok(IpFamily::Inet),
        (VsKey::Fwmark(_), None) => match direct.clone().next() {
            Some(r) => (
                IpFamily::of(r.ip),
                format!("its first real server, line {}", r.pos.line),
            ),
            None => match v.sorry_server {
                Some((ip, _)) => (IpFamily::of(ip), "its sorry server".into()),
                None => return Ok(IpFamily::Inet),
            },
        },
    };
    if matches!(v.key, VsKey::Group(_)) {
        return Ok(family);
    }
    for r in direct {
        if IpFamily::of(r.ip) != family {
            return err(
                &r.pos,
                ErrorKind::Conflict(format!(
                    "real server {} is {} but the virtual server is {} (from {from}); \
                     only tunnelled real servers may differ",
                    r.ip,
                    name(IpFamily::of(r.ip)),
                    name(family)
                )),
            );
        }
    }
    if let Some((ip, _)) = v.sorry_server
        && IpFamily::of(ip) != family
        && !matches!(v.method, LvsMethod::Tun(_))
    {
        return err(
            &v.pos,
            ErrorKind::Conflict(format!(
                "sorry_server {ip} is {} but the virtual server is {} (from {from})",
                name(IpFamily::of(ip)),
                name(family)
            )),
        );
    }
    Ok(family)
}

fn arg(s: &Stmt, i: usize) -> R<&Word> {
    s.args.get(i).ok_or_else(|| {
        ConfigError::new(
            s.keyword.pos.clone(),
            ErrorKind::MissingValue(s.keyword.text.clone()),
        )
    })
}

/// Keywords that open a block of their own, wherever they belong (not
/// `group`, which is also an argument: `virtual_server group NAME`).
fn opens_block(keyword: &str) -> bool {
    home(keyword).is_some()
        || matches!(
            keyword,
            "virtual_ipaddress"
                | "virtual_ipaddress_excluded"
                | "track_interface"
                | "track_script"
                | "unicast_peer"
                | "authentication"
                | "notification_email"
        )
}

/// keepalived reads one statement per line: `weight 2 TCP_CHECK { … }`
/// is `weight` with three extra words and a block, and the checker would be
/// lost. A block keyword among a statement's arguments is that mistake.
fn check_swallowed(s: &Stmt) -> R<()> {
    if s.block.is_some()
        && let Some(a) = s.args.iter().find(|a| opens_block(&a.text))
    {
        return err(
            &a.pos,
            ErrorKind::UnexpectedBlock {
                keyword: s.keyword.text.clone(),
                after: Some(a.text.clone()),
            },
        );
    }
    Ok(())
}

fn text(s: &Stmt) -> R<String> {
    Ok(arg(s, 0)?.text.clone())
}

/// The rest of the line as one string (for script command lines written
/// without quotes).
fn rest(s: &Stmt) -> R<String> {
    arg(s, 0)?;
    Ok(s.args
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" "))
}

fn num_word(w: &Word, keyword: &str, min: i64, max: i64) -> R<i64> {
    match w.text.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => bad(w, keyword, &format!("an integer from {min} to {max}")),
    }
}

/// `lvs_sync_daemon IFACE [inst] VRRP_INSTANCE [id N] [maxlen N] [port N]
/// [ttl N] [group ADDR]`, with keepalived's ranges; a bare word in third
/// place is the instance, a bare number in fourth place the sync id (the
/// pre-2.0 positional form).
fn lvs_sync_daemon(s: &Stmt) -> R<LvsSyncDaemon> {
    const KW: &str = "lvs_sync_daemon";
    let iface = arg(s, 0)?;
    // IP_VS_IFNAME_MAXLEN is 16 with the NUL.
    if iface.text.len() >= 16 {
        return bad(iface, KW, "an interface name of at most 15 bytes");
    }
    let mut d = LvsSyncDaemon {
        interface: iface.text.clone(),
        instance: None,
        syncid: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
        pos: s.keyword.pos.clone(),
    };
    let mut i = 1;
    while i < s.args.len() {
        let k = &s.args[i];
        let value = || {
            s.args.get(i + 1).ok_or_else(|| {
                ConfigError::new(k.pos.clone(), ErrorKind::MissingValue(k.text.clone()))
            })
        };
        match k.text.as_str() {
            "inst" => d.instance = Some(value()?.text.clone()),
            "id" => d.syncid = Some(num_word(value()?, "lvs_sync_daemon id", 0, 255)? as u8),
            // keepalived's limit: 65535 less the IPv4 and UDP headers.
            "maxlen" => {
                d.maxlen = Some(num_word(value()?, "lvs_sync_daemon maxlen", 1, 65_507)? as u16)
            }
            "port" => d.port = Some(num_word(value()?, "lvs_sync_daemon port", 1, 65_535)? as u16),
            "ttl" => d.ttl = Some(num_word(value()?, "lvs_sync_daemon ttl", 1, 255)? as u8),
            "group" => {
                let w = value()?;
                match w.text.parse::<IpAddr>() {
                    Ok(a) if a.is_multicast() => d.group = Some(a),
                    _ => return bad(w, "lvs_sync_daemon group", "a multicast address"),
                }
            }
            _ if i == 1 && d.instance.is_none() => {
                d.instance = Some(k.text.clone());
                i += 1;
                continue;
            }
            _ if i == 2 && d.syncid.is_none() => {
                d.syncid = Some(num_word(k, "lvs_sync_daemon", 0, 255)? as u8);
                i += 1;
                continue;
            }
            _ => {
                return bad(
                    k,
                    KW,
                    "inst NAME, id N, maxlen N, port N, ttl N or group ADDR",
                );
            }
        }
        i += 2;
    }
    Ok(d)
}

fn num(s: &Stmt, min: i64, max: i64) -> R<i64> {
    num_word(arg(s, 0)?, &s.keyword.text, min, max)
}

fn u32_of(s: &Stmt, min: u32, max: u32) -> R<u32> {
    Ok(num(s, min.into(), max.into())? as u32)
}

fn ip_word(w: &Word, keyword: &str) -> R<IpAddr> {
    w.text
        .parse()
        .or_else(|_| bad(w, keyword, "an IPv4 or IPv6 address"))
}

fn ip(s: &Stmt) -> R<IpAddr> {
    ip_word(arg(s, 0)?, &s.keyword.text)
}

fn port_word(w: &Word, keyword: &str) -> R<u16> {
    Ok(num_word(w, keyword, 0, 65535)? as u16)
}

/// Parses a non-negative decimal number of seconds (`1`, `0.1`, `2.25`)
/// exactly, without floating point.
pub(crate) fn parse_secs(t: &str) -> Option<Duration> {
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 6 {
        return None;
    }
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || int.len() > 9 {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..6 {
        micros *= 10;
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(micros))
}

fn secs(s: &Stmt, max: Duration) -> R<Duration> {
    let w = arg(s, 0)?;
    match parse_secs(&w.text) {
        Some(d) if d <= max => Ok(d),
        _ => bad(
            w,
            &s.keyword.text,
            &format!("a number of seconds up to {}", max.as_secs()),
        ),
    }
}

fn user(s: &Stmt) -> R<(String, Option<String>)> {
    Ok((text(s)?, s.args.get(1).map(|w| w.text.clone())))
}

/// `ADDR[/PREFIX]`.
fn ip_prefix(w: &Word, keyword: &str) -> R<(IpAddr, u8)> {
    let (a, p) = w.text.split_once('/').unwrap_or((&w.text, ""));
    let Ok(addr) = a.parse::<IpAddr>() else {
        return bad(w, keyword, "an address with an optional /prefix");
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = if p.is_empty() {
        max
    } else {
        match p.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => return bad(w, keyword, &format!("a prefix length from 0 to {max}")),
        }
    };
    Ok((addr, prefix))
}

const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

impl Builder {
    fn warn(&mut self, pos: &Pos, message: impl Into<String>) {
        self.warnings.push(Warning {
            pos: pos.clone(),
            message: message.into(),
        });
    }

    /// Handles a keyword the current block does not know: a block keyword of
    /// an enclosing block means the block we are in is missing its `}`;
    /// anything else is a warning, as keepalived gives.
    fn unknown(&mut self, s: &Stmt) -> R<()> {
        if let Some(h) = home(&s.keyword.text) {
            let at = if h == Ctx::Top {
                Some(0)
            } else {
                self.stack
                    .iter()
                    .position(|f| f.ctx == h)
                    .map(|i| i + 1)
                    .filter(|&i| i < self.stack.len())
            };
            if let Some(i) = at {
                let f = &self.stack[i];
                return err(
                    &s.keyword.pos,
                    ErrorKind::UnclosedBlock {
                        keyword: f.keyword.clone(),
                        opened: f.open_line,
                        before: Some(s.keyword.text.clone()),
                    },
                );
            }
        }
        let where_ = self
            .stack
            .last()
            .map(|f| format!(" in '{}'", f.keyword))
            .unwrap_or_default();
        self.warn(
            &s.keyword.pos,
            format!("unknown keyword '{}'{where_} ignored", s.keyword.text),
        );
        Ok(())
    }

    /// Runs `f` over the statements of `s`'s block with `ctx` pushed, then
    /// checks the block was closed.
    fn in_block<'s>(
        &mut self,
        s: &'s Stmt,
        ctx: Ctx,
        mut f: impl FnMut(&mut Self, &'s Stmt) -> R<()>,
    ) -> R<()> {
        let Some(block) = &s.block else {
            return err(
                &s.keyword.pos,
                ErrorKind::MissingBlock(s.keyword.text.clone()),
            );
        };
        self.stack.push(Frame {
            ctx,
            keyword: s.keyword.text.clone(),
            open_line: block.open.line,
        });
        let r = block.stmts.iter().try_for_each(|c| {
            check_swallowed(c)?;
            f(self, c)
        });
        self.stack.pop();
        r?;
        self.closed(s, block)
    }

    fn closed(&self, s: &Stmt, block: &Block) -> R<()> {
        if block.close.is_none() {
            return err(
                &block.open,
                ErrorKind::UnclosedBlock {
                    keyword: s.keyword.text.clone(),
                    opened: block.open.line,
                    before: None,
                },
            );
        }
        Ok(())
    }

    /// A block whose lines are plain items (`group`, `virtual_ipaddress`,
    /// `unicast_peer`, …): each statement's words, keyword first.
    fn items<'s>(&mut self, s: &'s Stmt) -> R<Vec<(&'s Word, &'s [Word])>> {
        let Some(block) = &s.block else {
            return err(
                &s.keyword.pos,
                ErrorKind::MissingBlock(s.keyword.text.clone()),
            );
        };
        let mut out = Vec::new();
        for c in &block.stmts {
            if c.block.is_some() || home(&c.keyword.text).is_some() {
                // A block inside an item list: the list's `}` is missing.
                return err(
                    &c.keyword.pos,
                    ErrorKind::UnclosedBlock {
                        keyword: s.keyword.text.clone(),
                        opened: block.open.line,
                        before: Some(c.keyword.text.clone()),
                    },
                );
            }
            out.push((&c.keyword, c.args.as_slice()));
        }
        self.closed(s, block)?;
        Ok(out)
    }

    pub(crate) fn build(&mut self, stmts: &[Stmt]) -> R<Config> {
        let mut cfg = Config::default();
        for s in stmts {
            check_swallowed(s)?;
            match s.keyword.text.as_str() {
                "global_defs" => self.global_defs(s, &mut cfg.global)?,
                "vrrp_script" => {
                    let v = self.vrrp_script(s)?;
                    cfg.vrrp_scripts.push(v);
                }
                "vrrp_sync_group" => {
                    let v = self.sync_group(s)?;
                    cfg.sync_groups.push(v);
                }
                "vrrp_instance" => {
                    let v = self.vrrp_instance(s, &cfg.global)?;
                    cfg.vrrp_instances.push(v);
                }
                "virtual_server_group" => {
                    let v = self.vs_group(s)?;
                    cfg.virtual_server_groups.push(v);
                }
                "virtual_server" => {
                    let v = self.virtual_server(s)?;
                    cfg.virtual_servers.push(v);
                }
                "track_file" => {
                    let v = self.track_file(s)?;
                    cfg.track_files.push(v);
                }
                "fwmark_rules" => {
                    let v = self.fwmark_rules(s)?;
                    cfg.fwmark_rules.extend(v);
                }
                _ if home(&s.keyword.text) == Some(Ctx::Top) => {
                    self.warn(
                        &s.keyword.pos,
                        format!("block '{}' is not supported and is ignored", s.keyword.text),
                    );
                    if let Some(b) = &s.block {
                        self.closed(s, b)?;
                    }
                }
                _ => self.unknown(s)?,
            }
        }
        self.cross_check(&cfg)?;
        Ok(cfg)
    }

    fn global_defs(&mut self, s: &Stmt, g: &mut GlobalDefs) -> R<()> {
        self.in_block(s, Ctx::Other, |b, c| {
            match c.keyword.text.as_str() {
                "router_id" => g.router_id = Some(text(c)?),
                "notification_email" => {
                    g.notification_email = b.items(c)?.iter().map(|(w, _)| w.text.clone()).collect()
                }
                "notification_email_from" => g.notification_email_from = Some(text(c)?),
                "smtp_server" => g.smtp_server = Some(text(c)?),
                "smtp_connect_timeout" => {
                    g.smtp_connect_timeout = Some(secs(c, Duration::from_secs(3600))?)
                }
                "vrrp_version" => g.vrrp_version = Some(num(c, 2, 3)? as u8),
                "script_user" => g.script_user = Some(user(c)?),
                "enable_script_security" => g.enable_script_security = true,
                "vrrp_strict" => g.vrrp_strict = true,
                "vrrp_garp_master_delay" => {
                    g.vrrp_garp_master_delay = Some(secs(c, Duration::from_secs(255))?)
                }
                "lvs_sync_daemon" => {
                    if let Some(first) = &g.lvs_sync_daemon {
                        b.warn(
                            &c.keyword.pos,
                            format!(
                                "lvs_sync_daemon ignored: already set at line {}",
                                first.pos.line
                            ),
                        );
                    } else {
                        g.lvs_sync_daemon = Some(lvs_sync_daemon(c)?);
                    }
                }
                "lvs_timeouts" => {
                    let mut it = c.args.iter();
                    while let Some(k) = it.next() {
                        let Some(v) = it.next() else {
                            return err(&k.pos, ErrorKind::MissingValue(k.text.clone()));
                        };
                        let v = num_word(v, &k.text, 0, i64::from(u32::MAX))? as u32;
                        match k.text.as_str() {
                            "tcp" => g.lvs_timeouts.tcp = Some(v),
                            "tcpfin" => g.lvs_timeouts.tcpfin = Some(v),
                            "udp" => g.lvs_timeouts.udp = Some(v),
                            _ => return bad(k, "lvs_timeouts", "tcp, tcpfin or udp"),
                        }
                    }
                }
                // Accepted and not acted on: notification transport and
                // daemon tuning that the director has no equivalent for.
                "smtp_helo_name"
                | "notification_email_to"
                | "enable_traps"
                | "enable_snmp_vrrp"
                | "enable_snmp_checker"
                | "vrrp_mcast_group4"
                | "vrrp_mcast_group6"
                | "vrrp_skip_check_adv_addr"
                | "vrrp_garp_interval"
                | "vrrp_gna_interval"
                | "lvs_id"
                | "lvs_flush"
                | "max_auto_priority"
                | "vrrp_no_swap"
                | "checker_no_swap" => {}
                _ => b.unknown(c)?,
            }
            Ok(())
        })
    }

    fn vrrp_script(&mut self, s: &Stmt) -> R<VrrpScript> {
        let name = text(s)?;
        let mut v = VrrpScript {
            name,
            pos: s.keyword.pos.clone(),
            script: String::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        };
        let mut have_script = false;
        self.in_block(s, Ctx::Other, |b, c| {
            match c.keyword.text.as_str() {
                "script" => {
                    v.script = rest(c)?;
                    have_script = true;
                }
                "interval" => v.interval = secs(c, Duration::from_secs(86_400))?,
                "timeout" => v.timeout = Some(secs(c, Duration::from_secs(86_400))?),
                "weight" => {
                    v.weight = num(c, -253, 253)? as i32;
                    v.weight_reverse = c.args.get(1).is_some_and(|w| w.text == "reverse");
                }
                "rise" => v.rise = u32_of(c, 1, 1_000_000)?,
                "fall" => v.fall = u32_of(c, 1, 1_000_000)?,
                "user" => v.user = Some(user(c)?),
                "init_fail" => v.init_fail = true,
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        if !have_script {
            return err(&s.keyword.pos, ErrorKind::MissingValue("script".into()));
        }
        Ok(v)
    }

    fn notify(c: &Stmt, n: &mut Notify) -> R<bool> {
        let slot = match c.keyword.text.as_str() {
            "notify_master" => &mut n.master,
            "notify_backup" => &mut n.backup,
            "notify_fault" => &mut n.fault,
            "notify_stop" => &mut n.stop,
            "notify" => &mut n.any,
            _ => return Ok(false),
        };
        *slot = Some(rest(c)?);
        Ok(true)
    }

    fn sync_group(&mut self, s: &Stmt) -> R<SyncGroup> {
        let mut g = SyncGroup {
            name: text(s)?,
            pos: s.keyword.pos.clone(),
            members: Vec::new(),
            notify: Notify::default(),
        };
        self.in_block(s, Ctx::Other, |b, c| {
            if c.keyword.text == "group" {
                for (w, more) in b.items(c)? {
                    g.members.push(w.text.clone());
                    g.members.extend(more.iter().map(|w| w.text.clone()));
                }
            } else if !Self::notify(c, &mut g.notify)? {
                match c.keyword.text.as_str() {
                    "smtp_alert" | "global_tracking" | "sync_group_tracking_weight" => {}
                    _ => b.unknown(c)?,
                }
            }
            Ok(())
        })?;
        Ok(g)
    }

    fn vips(&mut self, c: &Stmt) -> R<Vec<VipEntry>> {
        let mut out = Vec::new();
        for (w, opts) in self.items(c)? {
            let (addr, prefix) = ip_prefix(w, &c.keyword.text)?;
            let mut v = VipEntry {
                addr,
                prefix,
                dev: None,
                label: None,
                scope: None,
                brd: None,
                pos: w.pos.clone(),
            };
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                let mut val = |name: &str| {
                    it.next().ok_or_else(|| {
                        ConfigError::new(o.pos.clone(), ErrorKind::MissingValue(name.into()))
                    })
                };
                match o.text.as_str() {
                    "dev" => v.dev = Some(val("dev")?.text.clone()),
                    "label" => v.label = Some(val("label")?.text.clone()),
                    "scope" => v.scope = Some(val("scope")?.text.clone()),
                    "brd" => v.brd = Some(ip_word(val("brd")?, "brd")?),
                    "-nodad" | "nodad" | "noprefixroute" | "home" | "no_track" => {}
                    _ => self.warn(
                        &o.pos,
                        format!("virtual_ipaddress option '{}' ignored", o.text),
                    ),
                }
            }
            out.push(v);
        }
        Ok(out)
    }

    fn tracks(&mut self, c: &Stmt) -> R<Vec<Track>> {
        let mut out = Vec::new();
        for (w, opts) in self.items(c)? {
            let mut t = Track {
                name: w.text.clone(),
                weight: None,
                reverse: false,
            };
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                match o.text.as_str() {
                    "weight" => {
                        let Some(v) = it.next() else {
                            return err(&o.pos, ErrorKind::MissingValue("weight".into()));
                        };
                        t.weight = Some(num_word(v, "weight", -254, 254)? as i32);
                    }
                    "reverse" => t.reverse = true,
                    _ => return bad(o, &c.keyword.text, "'weight N' or 'reverse'"),
                }
            }
            out.push(t);
        }
        Ok(out)
    }

    fn vrrp_instance(&mut self, s: &Stmt, g: &GlobalDefs) -> R<VrrpInstance> {
        let mut v = VrrpInstance {
            name: text(s)?,
            pos: s.keyword.pos.clone(),
            state: InitialState::Backup,
            interface: String::new(),
            vrid: 0,
            priority: 100,
            advert_int: Duration::from_secs(1),
            version: g.vrrp_version.unwrap_or(2),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            auth: None,
            vips: Vec::new(),
            vips_excluded: Vec::new(),
            track_interface: Vec::new(),
            track_script: Vec::new(),
            track_file: Vec::new(),
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            mcast_src_ip: None,
            garp_master_delay: g.vrrp_garp_master_delay.unwrap_or(Duration::from_secs(5)),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: 1,
            dont_track_primary: false,
            lvs_sync_daemon_interface: None,
            accept: None,
            notify: Notify::default(),
        };
        let mut have_vrid = false;
        let mut advert_word: Option<Word> = None;
        self.in_block(s, Ctx::Other, |b, c| {
            if Self::notify(c, &mut v.notify)? {
                return Ok(());
            }
            match c.keyword.text.as_str() {
                "state" => {
                    let w = arg(c, 0)?;
                    v.state = match w.text.as_str() {
                        "MASTER" => InitialState::Master,
                        "BACKUP" => InitialState::Backup,
                        _ => return bad(w, "state", "MASTER or BACKUP"),
                    }
                }
                "interface" => v.interface = text(c)?,
                "virtual_router_id" => {
                    v.vrid = num(c, 1, 255)? as u8;
                    have_vrid = true;
                }
                "priority" => v.priority = num(c, 1, 255)? as u8,
                "advert_int" => {
                    v.advert_int = secs(c, Duration::from_millis(40_950))?;
                    advert_word = Some(arg(c, 0)?.clone());
                }
                "version" => v.version = num(c, 2, 3)? as u8,
                "nopreempt" => v.nopreempt = true,
                "preempt" => v.nopreempt = false,
                "preempt_delay" => v.preempt_delay = secs(c, Duration::from_secs(1000))?,
                "authentication" => {
                    let mut ty: Option<Word> = None;
                    let mut pass = None;
                    b.in_block(c, Ctx::Other, |b, a| {
                        match a.keyword.text.as_str() {
                            "auth_type" => ty = Some(arg(a, 0)?.clone()),
                            "auth_pass" => {
                                let mut p = text(a)?;
                                if p.len() > 8 {
                                    b.warn(
                                        &a.keyword.pos,
                                        "auth_pass longer than 8 characters is truncated",
                                    );
                                    let mut cut = 8;
                                    while !p.is_char_boundary(cut) {
                                        cut -= 1;
                                    }
                                    p.truncate(cut);
                                }
                                pass = Some(p);
                            }
                            _ => b.unknown(a)?,
                        }
                        Ok(())
                    })?;
                    let Some(ty) = ty else {
                        return err(&c.keyword.pos, ErrorKind::MissingValue("auth_type".into()));
                    };
                    let pass = pass.unwrap_or_default();
                    v.auth = Some(match ty.text.as_str() {
                        "PASS" => Auth::Pass(pass),
                        "AH" => Auth::Ah(pass),
                        _ => return bad(&ty, "auth_type", "PASS or AH"),
                    });
                }
                "virtual_ipaddress" => v.vips = b.vips(c)?,
                "virtual_ipaddress_excluded" => v.vips_excluded = b.vips(c)?,
                "track_interface" => v.track_interface = b.tracks(c)?,
                "track_script" => v.track_script = b.tracks(c)?,
                "track_file" => v.track_file = b.tracks(c)?,
                "unicast_src_ip" => v.unicast_src_ip = Some(ip(c)?),
                "unicast_peer" => {
                    for (w, _) in b.items(c)? {
                        v.unicast_peers.push(ip_word(w, "unicast_peer")?);
                    }
                }
                "mcast_src_ip" => v.mcast_src_ip = Some(ip(c)?),
                "garp_master_delay" => v.garp_master_delay = secs(c, Duration::from_secs(255))?,
                "garp_master_repeat" => v.garp_master_repeat = u32_of(c, 1, 255)?,
                "garp_master_refresh" => {
                    v.garp_master_refresh = secs(c, Duration::from_secs(86_400))?
                }
                "garp_master_refresh_repeat" => v.garp_master_refresh_repeat = u32_of(c, 1, 255)?,
                "dont_track_primary" => v.dont_track_primary = true,
                "lvs_sync_daemon_interface" => v.lvs_sync_daemon_interface = Some(text(c)?),
                "accept" => v.accept = Some(true),
                "no_accept" => v.accept = Some(false),
                "smtp_alert" | "debug" | "native_ipv6" | "strict_mode" | "skip_check_adv_addr" => {}
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        if v.interface.is_empty() {
            return err(&s.keyword.pos, ErrorKind::MissingValue("interface".into()));
        }
        if !have_vrid {
            return err(
                &s.keyword.pos,
                ErrorKind::MissingValue("virtual_router_id".into()),
            );
        }
        if v.vips.iter().any(|a| a.addr.is_ipv6()) {
            v.version = 3;
        }
        if v.vips.iter().any(|a| a.addr.is_ipv6()) && v.vips.iter().any(|a| a.addr.is_ipv4()) {
            return err(
                &s.keyword.pos,
                ErrorKind::Conflict(format!(
                    "vrrp_instance '{}' mixes IPv4 and IPv6 in virtual_ipaddress (use virtual_ipaddress_excluded)",
                    v.name
                )),
            );
        }
        if let Some(w) = advert_word {
            let cs = v.advert_int.as_micros();
            if v.version == 2 && !cs.is_multiple_of(1_000_000) {
                return bad(&w, "advert_int", "whole seconds (1–255) for VRRP version 2");
            }
            if cs < 10_000 || !cs.is_multiple_of(10_000) {
                return bad(&w, "advert_int", "a multiple of 0.01 s from 0.01 to 40.95");
            }
        }
        if v.nopreempt && v.state == InitialState::Master {
            self.warn(
                &s.keyword.pos,
                "nopreempt with state MASTER: starting as BACKUP, as keepalived does",
            );
            v.state = InitialState::Backup;
        }
        Ok(v)
    }

    fn vs_group(&mut self, s: &Stmt) -> R<VirtualServerGroup> {
        let mut g = VirtualServerGroup {
            name: text(s)?,
            pos: s.keyword.pos.clone(),
            ranges: Vec::new(),
            fwmarks: Vec::new(),
        };
        for (w, more) in self.items(s)? {
            if w.text == "fwmark" {
                let Some(m) = more.first() else {
                    return err(&w.pos, ErrorKind::MissingValue("fwmark".into()));
                };
                g.fwmarks
                    .push(num_word(m, "fwmark", 1, i64::from(u32::MAX))? as u32);
                continue;
            }
            let port = match more.first() {
                Some(p) => port_word(p, "virtual_server_group")?,
                None => 0,
            };
            // a.b.c.d-e (last octet range) or a single address.
            let (first, count) = match w.text.split_once('-') {
                Some((a, last)) => {
                    let addr: IpAddr = a
                        .parse()
                        .or_else(|_| bad(w, "virtual_server_group", "ADDR or ADDR-LAST"))?;
                    let IpAddr::V4(v4) = addr else {
                        return bad(w, "virtual_server_group", "an IPv4 range a.b.c.d-e");
                    };
                    let start = v4.octets()[3];
                    match last.parse::<u8>() {
                        Ok(e) if e >= start => (addr, u32::from(e - start) + 1),
                        _ => {
                            return bad(
                                w,
                                "virtual_server_group",
                                "a range end ≥ its start, ≤ 255",
                            );
                        }
                    }
                }
                None => (ip_word(w, "virtual_server_group")?, 1),
            };
            g.ranges.push((first, count, port));
        }
        Ok(g)
    }

    /// `fwmark_rules { PROTO [saddr P] daddr P [dport PORTS] mark N … }`,
    /// one rule per line.
    fn fwmark_rules(&mut self, s: &Stmt) -> R<Vec<FwmarkRule>> {
        if let Some(w) = s.args.first() {
            return bad(w, "fwmark_rules", "a '{' block (it takes no name)");
        }
        let mut out = Vec::new();
        for (proto, fields) in self.items(s)? {
            out.push(fwmark_rule(proto, fields)?);
        }
        Ok(out)
    }

    fn method(&mut self, c: &Stmt) -> R<LvsMethod> {
        let w = arg(c, 0)?;
        Ok(match w.text.as_str() {
            "NAT" => LvsMethod::Nat,
            "DR" => LvsMethod::Dr,
            "TUN" => {
                let mut ty = TunType::Ipip;
                let mut it = c.args[1..].iter();
                while let Some(o) = it.next() {
                    match o.text.as_str() {
                        "type" => {
                            let Some(t) = it.next() else {
                                return err(&o.pos, ErrorKind::MissingValue("type".into()));
                            };
                            ty = match t.text.as_str() {
                                "ipip" => TunType::Ipip,
                                "gue" => TunType::Gue {
                                    port: 0,
                                    csum: TunCsum::None,
                                },
                                "gre" => TunType::Gre {
                                    csum: TunCsum::None,
                                },
                                _ => return bad(t, "type", "ipip, gue or gre"),
                            };
                        }
                        "port" => {
                            let Some(p) = it.next() else {
                                return err(&o.pos, ErrorKind::MissingValue("port".into()));
                            };
                            let p = port_word(p, "port")?;
                            if let TunType::Gue { port, .. } = &mut ty {
                                *port = p;
                            }
                        }
                        "nocsum" | "csum" | "remcsum" => {
                            let cs = match o.text.as_str() {
                                "csum" => TunCsum::Csum,
                                "remcsum" => TunCsum::RemCsum,
                                _ => TunCsum::None,
                            };
                            match &mut ty {
                                TunType::Gue { csum, .. } => *csum = cs,
                                TunType::Gre { csum } if cs != TunCsum::RemCsum => *csum = cs,
                                _ => {
                                    return bad(
                                        o,
                                        "TUN",
                                        "a checksum option valid for this tunnel type",
                                    );
                                }
                            }
                        }
                        _ => return bad(o, "TUN", "type, port, nocsum, csum or remcsum"),
                    }
                }
                if matches!(ty, TunType::Gue { port: 0, .. }) {
                    return err(
                        &w.pos,
                        ErrorKind::MissingValue("port (for type gue)".into()),
                    );
                }
                LvsMethod::Tun(ty)
            }
            _ => return bad(w, &c.keyword.text, "NAT, DR or TUN"),
        })
    }

    fn virtual_server(&mut self, s: &Stmt) -> R<VirtualServer> {
        let a0 = arg(s, 0)?;
        let key = match a0.text.as_str() {
            "fwmark" => {
                VsKey::Fwmark(num_word(arg(s, 1)?, "fwmark", 1, i64::from(u32::MAX))? as u32)
            }
            "group" => VsKey::Group(arg(s, 1)?.text.clone()),
            _ => {
                // `IP PORT` or `IP` alone (port 0, all ports).
                let ip = ip_word(a0, "virtual_server")?;
                let port = match s.args.get(1) {
                    Some(p) => port_word(p, "virtual_server")?,
                    None => 0,
                };
                VsKey::Addr { ip, port }
            }
        };
        let vs_port = match key {
            VsKey::Addr { port, .. } => port,
            _ => 0,
        };
        let mut v = VirtualServer {
            key,
            pos: s.keyword.pos.clone(),
            delay_loop: Duration::from_secs(60),
            scheduler: "wlc".into(),
            sched_flags: Vec::new(),
            ops: false,
            method: LvsMethod::Nat,
            protocol: Protocol::Tcp,
            family: IpFamily::Inet,
            persistence_timeout: None,
            persistence_granularity: None,
            virtualhost: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            quorum: 1,
            hysteresis: 0,
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            ha_suspend: false,
            real_servers: Vec::new(),
        };
        let mut ip_family: Option<(IpFamily, Pos)> = None;
        self.in_block(s, Ctx::VirtualServer, |b, c| {
            match c.keyword.text.as_str() {
                "ip_family" => {
                    let w = arg(c, 0)?;
                    let f = match w.text.as_str() {
                        "inet" => IpFamily::Inet,
                        "inet6" => IpFamily::Inet6,
                        _ => return bad(w, "ip_family", "inet or inet6"),
                    };
                    ip_family = Some((f, c.keyword.pos.clone()));
                }
                "delay_loop" => v.delay_loop = secs(c, Duration::from_secs(86_400))?,
                "lb_algo" | "lvs_sched" => {
                    let w = arg(c, 0)?;
                    if !SCHEDULERS.contains(&w.text.as_str()) {
                        return bad(
                            w,
                            &c.keyword.text,
                            &format!("one of {}", SCHEDULERS.join(" ")),
                        );
                    }
                    v.scheduler = w.text.clone();
                }
                "lb_kind" | "lvs_method" => v.method = b.method(c)?,
                "protocol" => {
                    let w = arg(c, 0)?;
                    v.protocol = match w.text.as_str() {
                        "TCP" => Protocol::Tcp,
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => return bad(w, "protocol", "TCP, UDP or SCTP"),
                    };
                }
                "persistence_timeout" => {
                    v.persistence_timeout = Some(if c.args.is_empty() {
                        360
                    } else {
                        u32_of(c, 1, u32::MAX / 1000)?
                    })
                }
                "persistence_granularity" => {
                    let w = arg(c, 0)?;
                    v.persistence_granularity =
                        Some(if let Ok(IpAddr::V4(m)) = w.text.parse::<IpAddr>() {
                            let bits = u32::from(m);
                            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                                return bad(w, "persistence_granularity", "a contiguous netmask");
                            }
                            bits.leading_ones() as u8
                        } else {
                            num_word(w, "persistence_granularity", 1, 128)? as u8
                        });
                }
                "virtualhost" => v.virtualhost = Some(text(c)?),
                "sorry_server" => {
                    let ip = ip(c)?;
                    let port = match c.args.get(1) {
                        Some(p) => port_word(p, "sorry_server")?,
                        None => vs_port,
                    };
                    v.sorry_server = Some((ip, port));
                }
                "sorry_server_inhibit" => v.sorry_server_inhibit = true,
                "quorum" => v.quorum = u32_of(c, 1, u32::MAX)?,
                "hysteresis" => v.hysteresis = u32_of(c, 0, u32::MAX)?,
                "alpha" => v.alpha = true,
                "omega" => v.omega = true,
                "inhibit_on_failure" => v.inhibit_on_failure = true,
                "ha_suspend" => v.ha_suspend = true,
                "ops" => v.ops = true,
                f @ ("sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" | "flag-1"
                | "flag-2" | "flag-3") => v.sched_flags.push(f.to_owned()),
                "real_server" => {
                    let r = b.real_server(c, vs_port, v.inhibit_on_failure)?;
                    v.real_servers.push(r);
                }
                "quorum_up"
                | "quorum_down"
                | "smtp_alert"
                | "snmp_name"
                | "sorry_server_lvs_method"
                | "persistence_engine"
                | "retry"
                | "delay_before_retry"
                | "warmup"
                | "connect_timeout" => {}
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        v.family = resolve_family(&v, ip_family)?;
        if v.ops && v.protocol != Protocol::Udp {
            return err(
                &s.keyword.pos,
                ErrorKind::Conflict(
                    "'ops' (one-packet scheduling) applies to UDP services only".into(),
                ),
            );
        }
        if matches!(v.key, VsKey::Addr { port: 0, .. }) && v.persistence_timeout.is_none() {
            return err(
                &s.keyword.pos,
                ErrorKind::Conflict(
                    "a virtual server without a port needs persistence_timeout".into(),
                ),
            );
        }
        Ok(v)
    }

    fn real_server(&mut self, s: &Stmt, vs_port: u16, inherit_inhibit: bool) -> R<RealServer> {
        let ip = ip(s)?;
        let port = match s.args.get(1) {
            Some(p) => port_word(p, "real_server")?,
            None => vs_port,
        };
        let mut r = RealServer {
            ip,
            port,
            pos: s.keyword.pos.clone(),
            weight: 1,
            uthreshold: 0,
            lthreshold: 0,
            inhibit_on_failure: inherit_inhibit,
            method: None,
            notify_up: None,
            notify_down: None,
            checkers: Vec::new(),
        };
        self.in_block(s, Ctx::RealServer, |b, c| {
            match c.keyword.text.as_str() {
                "weight" => r.weight = u32_of(c, 0, 65535)?,
                "uthreshold" => r.uthreshold = u32_of(c, 0, u32::MAX)?,
                "lthreshold" => r.lthreshold = u32_of(c, 0, u32::MAX)?,
                "inhibit_on_failure" => r.inhibit_on_failure = true,
                "lvs_method" | "lb_kind" => r.method = Some(b.method(c)?),
                "notify_up" => r.notify_up = Some(rest(c)?),
                "notify_down" => r.notify_down = Some(rest(c)?),
                "smtp_alert" | "virtualhost" | "alpha" | "retry" | "delay_before_retry"
                | "warmup" | "delay_loop" | "connect_timeout" => {}
                k if home(k) == Some(Ctx::RealServer) => {
                    if k == "BFD_CHECK" {
                        b.warn(&c.keyword.pos, "BFD_CHECK is not supported and is ignored");
                        if let Some(bl) = &c.block {
                            b.closed(c, bl)?;
                        }
                    } else {
                        let ck = b.checker(c)?;
                        r.checkers.push(ck);
                    }
                }
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        if r.lthreshold > 0 && r.uthreshold > 0 && r.lthreshold > r.uthreshold {
            return err(
                &s.keyword.pos,
                ErrorKind::Conflict(format!(
                    "lthreshold {} is above uthreshold {}",
                    r.lthreshold, r.uthreshold
                )),
            );
        }
        Ok(r)
    }

    /// A common checker option; `Ok(false)` if `c` is not one.
    fn common(c: &Stmt, k: &mut CheckCommon) -> R<bool> {
        let day = Duration::from_secs(86_400);
        match c.keyword.text.as_str() {
            "connect_ip" => k.connect_ip = Some(ip(c)?),
            "connect_port" => k.connect_port = Some(port_word(arg(c, 0)?, "connect_port")?),
            "bindto" => k.bindto = Some(ip(c)?),
            "bind_port" => k.bind_port = Some(port_word(arg(c, 0)?, "bind_port")?),
            "connect_timeout" => k.connect_timeout = Some(secs(c, day)?),
            "retry" | "nb_get_retry" => k.retry = Some(u32_of(c, 0, 1_000_000)?),
            "delay_before_retry" => k.delay_before_retry = Some(secs(c, day)?),
            "warmup" => k.warmup = Some(secs(c, day)?),
            "delay_loop" => k.delay_loop = Some(secs(c, day)?),
            "alpha" => k.alpha = true,
            "fwmark" | "bind_if" | "log_all_failures" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn checker(&mut self, s: &Stmt) -> R<Checker> {
        let mut common = CheckCommon::default();
        let kind = match s.keyword.text.as_str() {
            "TCP_CHECK" => {
                self.in_block(s, Ctx::Other, |b, c| {
                    if !Self::common(c, &mut common)? {
                        b.unknown(c)?;
                    }
                    Ok(())
                })?;
                CheckKind::Tcp
            }
            "PING_CHECK" => {
                self.in_block(s, Ctx::Other, |b, c| {
                    if !Self::common(c, &mut common)? {
                        b.unknown(c)?;
                    }
                    Ok(())
                })?;
                CheckKind::Ping
            }
            k @ ("HTTP_GET" | "SSL_GET") => {
                let (mut urls, mut protocol, mut vhost, mut sni, mut sni_name) =
                    (Vec::new(), None, None, false, None);
                self.in_block(s, Ctx::Http, |b, c| {
                    match c.keyword.text.as_str() {
                        "url" => {
                            let u = b.url(c)?;
                            urls.push(u);
                        }
                        "http_protocol" => {
                            let w = arg(c, 0)?;
                            if !["1.0", "1.0C", "1.0c", "1.1"].contains(&w.text.as_str()) {
                                return bad(w, "http_protocol", "1.0, 1.0C or 1.1");
                            }
                            protocol = Some(w.text.clone());
                        }
                        "virtualhost" => vhost = Some(text(c)?),
                        "enable_sni" => sni = true,
                        "sni_name" => sni_name = Some(text(c)?),
                        "fast_recovery" | "tls_compliant" => {}
                        _ if Self::common(c, &mut common)? => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                if urls.is_empty() {
                    return err(&s.keyword.pos, ErrorKind::MissingValue("url".into()));
                }
                CheckKind::Http {
                    ssl: k == "SSL_GET",
                    urls,
                    protocol,
                    virtualhost: vhost,
                    enable_sni: sni,
                    sni_name,
                }
            }
            "SMTP_CHECK" => {
                let mut helo = None;
                self.in_block(s, Ctx::Other, |b, c| {
                    match c.keyword.text.as_str() {
                        "helo_name" => helo = Some(text(c)?),
                        // Old-style nested `host { … }` blocks: take their options.
                        "host" => b.in_block(c, Ctx::Other, |b, h| {
                            if !Self::common(h, &mut common)? {
                                b.unknown(h)?;
                            }
                            Ok(())
                        })?,
                        _ if Self::common(c, &mut common)? => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                CheckKind::Smtp { helo_name: helo }
            }
            "DNS_CHECK" => {
                let (mut qtype, mut name) = ("SOA".to_owned(), ".".to_owned());
                self.in_block(s, Ctx::Other, |b, c| {
                    match c.keyword.text.as_str() {
                        "type" => {
                            let w = arg(c, 0)?;
                            let t = w.text.to_ascii_uppercase();
                            if !["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"]
                                .contains(&t.as_str())
                            {
                                return bad(w, "type", "A, NS, CNAME, SOA, MX, TXT or AAAA");
                            }
                            qtype = t;
                        }
                        "name" => name = text(c)?,
                        _ if Self::common(c, &mut common)? => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                CheckKind::Dns { qtype, name }
            }
            "UDP_CHECK" => {
                let (mut payload, mut require) = (Vec::new(), None);
                self.in_block(s, Ctx::Other, |b, c| {
                    match c.keyword.text.as_str() {
                        "payload" => {
                            let w = arg(c, 0)?;
                            payload = hex_bytes(&w.text)
                                .map_or_else(|| bad(w, "payload", "hex bytes"), Ok)?;
                        }
                        "require_reply" => {
                            let pat = c.args.first().map(|w| w.text.clone()).unwrap_or_default();
                            if !pat
                                .chars()
                                .all(|ch| ch.is_ascii_hexdigit() || ch == 'X' || ch == 'x')
                            {
                                return bad(
                                    &c.args[0],
                                    "require_reply",
                                    "hex digits, X for any nibble",
                                );
                            }
                            require = Some(pat);
                        }
                        "min_reply_length" | "max_reply_length" => {}
                        _ if Self::common(c, &mut common)? => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                CheckKind::Udp {
                    payload,
                    require_reply: require,
                }
            }
            "MISC_CHECK" => {
                let (mut path, mut timeout, mut dynamic, mut usr) = (None, None, false, None);
                self.in_block(s, Ctx::Other, |b, c| {
                    match c.keyword.text.as_str() {
                        "misc_path" => path = Some(rest(c)?),
                        "misc_timeout" => timeout = Some(secs(c, Duration::from_secs(86_400))?),
                        "misc_dynamic" => dynamic = true,
                        "user" => usr = Some(user(c)?),
                        _ if Self::common(c, &mut common)? => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                let Some(path) = path else {
                    return err(&s.keyword.pos, ErrorKind::MissingValue("misc_path".into()));
                };
                CheckKind::Misc {
                    path,
                    timeout,
                    dynamic,
                    user: usr,
                }
            }
            "FILE_CHECK" => {
                let (mut tf, mut weight) = (None, None);
                self.in_block(s, Ctx::Other, |b, c| {
                    match c.keyword.text.as_str() {
                        "track_file" => tf = Some(text(c)?),
                        "weight" => {
                            weight = Some((
                                num(c, -254, 254)? as i32,
                                c.args.get(1).is_some_and(|w| w.text == "reverse"),
                            ))
                        }
                        "dynamic" => {}
                        _ => b.unknown(c)?,
                    }
                    Ok(())
                })?;
                let Some(track_file) = tf else {
                    return err(&s.keyword.pos, ErrorKind::MissingValue("track_file".into()));
                };
                CheckKind::File { track_file, weight }
            }
            other => {
                return err(
                    &s.keyword.pos,
                    ErrorKind::BadValue {
                        keyword: "checker".into(),
                        value: other.into(),
                        expected: "a checker block".into(),
                    },
                );
            }
        };
        Ok(Checker {
            pos: s.keyword.pos.clone(),
            common,
            kind,
        })
    }

    fn url(&mut self, s: &Stmt) -> R<Url> {
        let mut u = Url::default();
        let mut have_path = false;
        self.in_block(s, Ctx::Other, |b, c| {
            match c.keyword.text.as_str() {
                "path" => {
                    u.path = text(c)?;
                    have_path = true;
                }
                "digest" => {
                    let w = arg(c, 0)?;
                    if w.text.len() != 32 || !w.text.bytes().all(|x| x.is_ascii_hexdigit()) {
                        return bad(w, "digest", "32 hex digits (an MD5 digest)");
                    }
                    u.digest = Some(w.text.to_ascii_lowercase());
                }
                "status_code" => {
                    for w in &c.args {
                        let (lo, hi) = w.text.split_once('-').unwrap_or((&w.text, &w.text));
                        match (lo.parse::<u16>(), hi.parse::<u16>()) {
                            (Ok(l), Ok(h))
                                if (100..=599).contains(&l) && (l..=599).contains(&h) =>
                            {
                                u.status.push((l, h))
                            }
                            _ => {
                                return bad(
                                    w,
                                    "status_code",
                                    "a status code or range within 100-599",
                                );
                            }
                        }
                    }
                    arg(c, 0)?;
                }
                "virtualhost" => u.virtualhost = Some(text(c)?),
                "regex" => u.regex = Some(rest(c)?),
                "regex_no_match" => u.regex_no_match = true,
                "regex_options" => {
                    arg(c, 0)?;
                    for w in &c.args {
                        if u.regex_options.set(&w.text).is_err() {
                            return bad(
                                w,
                                "regex_options",
                                "a keepalived regex option the regex crate can follow \
                                 (caseless dotall multiline extended ungreedy firstline utf ucp \
                                 never_utf never_ucp, or a matcher-tuning one)",
                            );
                        }
                    }
                }
                "regex_min_offset" => u.regex_min_offset = num(c, 0, i64::from(u32::MAX))? as usize,
                "regex_max_offset" => {
                    u.regex_max_offset = Some(num(c, 0, i64::from(u32::MAX))? as usize);
                }
                // PCRE2's JIT stack sizes: the regex crate needs none.
                "regex_stack" => {
                    for w in &c.args {
                        num_word(w, "regex_stack", 0, i64::from(u32::MAX))?;
                    }
                }
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        if !have_path {
            return err(&s.keyword.pos, ErrorKind::MissingValue("path".into()));
        }
        Ok(u)
    }

    fn track_file(&mut self, s: &Stmt) -> R<TrackFile> {
        let mut t = TrackFile {
            name: text(s)?,
            pos: s.keyword.pos.clone(),
            file: String::new(),
            weight: 1,
            reverse: false,
            init_file: None,
        };
        self.in_block(s, Ctx::Other, |b, c| {
            match c.keyword.text.as_str() {
                "file" => t.file = text(c)?,
                "weight" => {
                    t.weight = num(c, -254, 254)? as i32;
                    t.reverse = c.args.get(1).is_some_and(|w| w.text == "reverse");
                }
                "init_file" => {
                    t.init_file = Some(match c.args.first() {
                        Some(w) => num_word(w, "init_file", -254, 254)?,
                        None => 0,
                    })
                }
                _ => b.unknown(c)?,
            }
            Ok(())
        })?;
        if t.file.is_empty() {
            return err(&s.keyword.pos, ErrorKind::MissingValue("file".into()));
        }
        Ok(t)
    }

    /// References between blocks, and uniqueness.
    fn cross_check(&mut self, cfg: &Config) -> R<()> {
        let mut names: HashMap<&str, &Pos> = HashMap::new();
        for i in &cfg.vrrp_instances {
            if let Some(p) = names.insert(&i.name, &i.pos) {
                return err(
                    &i.pos,
                    ErrorKind::Duplicate {
                        what: "vrrp_instance",
                        name: i.name.clone(),
                        first_line: p.line,
                    },
                );
            }
        }
        let mut vrids: HashMap<(&str, u8, bool), &VrrpInstance> = HashMap::new();
        for i in &cfg.vrrp_instances {
            let v6 = i.vips.first().is_some_and(|a| a.addr.is_ipv6());
            if let Some(o) = vrids.insert((&i.interface, i.vrid, v6), i) {
                return err(
                    &i.pos,
                    ErrorKind::Conflict(format!(
                        "vrrp_instance '{}' uses virtual_router_id {} on {} like '{}' (line {})",
                        i.name, i.vrid, i.interface, o.name, o.pos.line
                    )),
                );
            }
            for t in &i.track_script {
                if !cfg.vrrp_scripts.iter().any(|s| s.name == t.name) {
                    return err(
                        &i.pos,
                        ErrorKind::Undefined {
                            what: "vrrp_script",
                            name: t.name.clone(),
                        },
                    );
                }
            }
            for t in &i.track_file {
                if !cfg.track_files.iter().any(|s| s.name == t.name) {
                    return err(
                        &i.pos,
                        ErrorKind::Undefined {
                            what: "track_file",
                            name: t.name.clone(),
                        },
                    );
                }
            }
        }
        let mut in_group: HashMap<&str, &str> = HashMap::new();
        for g in &cfg.sync_groups {
            for m in &g.members {
                if !names.contains_key(m.as_str()) {
                    return err(
                        &g.pos,
                        ErrorKind::Undefined {
                            what: "vrrp_instance",
                            name: m.clone(),
                        },
                    );
                }
                if let Some(other) = in_group.insert(m, &g.name) {
                    return err(
                        &g.pos,
                        ErrorKind::Conflict(format!(
                            "vrrp_instance '{m}' is in sync groups '{other}' and '{}'",
                            g.name
                        )),
                    );
                }
            }
        }
        let mut seen: HashMap<&str, &Pos> = HashMap::new();
        for s in &cfg.vrrp_scripts {
            if let Some(p) = seen.insert(&s.name, &s.pos) {
                return err(
                    &s.pos,
                    ErrorKind::Duplicate {
                        what: "vrrp_script",
                        name: s.name.clone(),
                        first_line: p.line,
                    },
                );
            }
        }
        for vs in &cfg.virtual_servers {
            if let VsKey::Group(g) = &vs.key
                && !cfg.virtual_server_groups.iter().any(|x| &x.name == g)
            {
                return err(
                    &vs.pos,
                    ErrorKind::Undefined {
                        what: "virtual_server_group",
                        name: g.clone(),
                    },
                );
            }
            for rs in &vs.real_servers {
                for ck in &rs.checkers {
                    if let CheckKind::File { track_file, .. } = &ck.kind
                        && !cfg.track_files.iter().any(|t| &t.name == track_file)
                    {
                        return err(
                            &ck.pos,
                            ErrorKind::Undefined {
                                what: "track_file",
                                name: track_file.clone(),
                            },
                        );
                    }
                }
            }
            if vs.real_servers.is_empty() && vs.sorry_server.is_none() {
                self.warn(&vs.pos, "virtual_server has no real_server");
            }
        }
        // One connection-sync daemon per director, as keepalived: the
        // global `lvs_sync_daemon`, else the first instance naming an
        // interface, owns it.
        let mut syncd = cfg
            .vrrp_instances
            .iter()
            .filter(|i| i.lvs_sync_daemon_interface.is_some());
        if let Some(d) = &cfg.global.lvs_sync_daemon {
            match &d.instance {
                None => self.warn(
                    &d.pos,
                    "lvs_sync_daemon names no VRRP instance to follow: the sync daemon is not run",
                ),
                Some(n) if !cfg.vrrp_instances.iter().any(|i| &i.name == n) => self.warn(
                    &d.pos,
                    format!("lvs_sync_daemon: no vrrp_instance {n}: the sync daemon is not run"),
                ),
                Some(_) => {}
            }
            for i in syncd {
                self.warn(
                    &i.pos,
                    format!(
                        "lvs_sync_daemon_interface ignored: lvs_sync_daemon (line {}) sets the sync daemon",
                        d.pos.line
                    ),
                );
            }
        } else if let Some(first) = syncd.next() {
            let (name, line) = (first.name.clone(), first.pos.line);
            let others: Vec<Pos> = syncd.map(|i| i.pos.clone()).collect();
            for pos in others {
                self.warn(
                    &pos,
                    format!(
                        "lvs_sync_daemon_interface ignored: the sync daemon follows {name} (line {line})"
                    ),
                );
            }
        }
        // A mark no virtual server serves: the rule would mark packets for
        // nothing, so the dataplanes never install it.
        let served = |m: u32| {
            cfg.virtual_servers.iter().any(|vs| match &vs.key {
                VsKey::Fwmark(x) => *x == m,
                VsKey::Group(g) => cfg
                    .virtual_server_groups
                    .iter()
                    .any(|x| &x.name == g && x.fwmarks.contains(&m)),
                VsKey::Addr { .. } => false,
            })
        };
        for r in &cfg.fwmark_rules {
            if !served(r.rule.mark) {
                self.warn(
                    &r.pos,
                    format!(
                        "fwmark_rules: no virtual_server serves mark {}; the rule is not installed",
                        r.rule.mark
                    ),
                );
            }
        }
        Ok(())
    }
}

/// `ADDR[/LEN]` with its host bits cleared.
fn net_prefix(w: &Word, keyword: &str) -> R<(IpAddr, u8)> {
    let (addr, len) = ip_prefix(w, keyword)?;
    let net = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    Ok((net, len))
}

/// `80,443,10000:20000` (iptables `multiport` syntax). An error stands at
/// the offending item, not at the start of the list.
fn port_list(w: &Word) -> R<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    let mut col = w.pos.col;
    for item in w.text.split(',') {
        let at = Word {
            text: item.to_owned(),
            pos: Pos::new(w.pos.file.clone(), w.pos.line, col),
        };
        let port = |t: &str| t.parse::<u16>().ok();
        let range = match item.split_once(':') {
            Some((lo, hi)) => port(lo).zip(port(hi)),
            None => port(item).map(|p| (p, p)),
        };
        match range {
            Some((lo, hi)) if lo <= hi => out.push((lo, hi)),
            _ => return bad(&at, "dport", "a port or LOW:HIGH range within 0-65535"),
        }
        col += item.chars().count() as u32 + 1;
    }
    Ok(out)
}

/// One `fwmark_rules` line: the protocol, then `saddr`, `daddr`, `dport`
/// and `mark` with their values, in any order, each at most once.
fn fwmark_rule(proto: &Word, fields: &[Word]) -> R<FwmarkRule> {
    let protocol = match proto.text.to_ascii_lowercase().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        "all" => None,
        _ => {
            return bad(
                proto,
                "fwmark_rules",
                "a rule: tcp, udp, sctp or all, then its fields",
            );
        }
    };
    let (mut saddr, mut daddr, mut dports, mut mark) = (None, None, None, None);
    let mut seen: Vec<&str> = Vec::new();
    let mut it = fields.iter();
    while let Some(f) = it.next() {
        let name = f.text.as_str();
        if !["saddr", "daddr", "dport", "mark"].contains(&name) {
            return bad(f, "fwmark_rules", "saddr, daddr, dport or mark");
        }
        if seen.contains(&name) {
            return err(
                &f.pos,
                ErrorKind::Conflict(format!("'{name}' given twice in one fwmark rule")),
            );
        }
        seen.push(name);
        let Some(v) = it.next() else {
            return err(&f.pos, ErrorKind::MissingValue(name.to_owned()));
        };
        match name {
            "saddr" => saddr = Some((net_prefix(v, "saddr")?, &f.pos)),
            "daddr" => daddr = Some(net_prefix(v, "daddr")?),
            "dport" => {
                if protocol.is_none() {
                    return err(
                        &f.pos,
                        ErrorKind::Conflict("'dport' needs protocol tcp, udp or sctp".into()),
                    );
                }
                dports = Some(port_list(v)?);
            }
            _ => mark = Some(num_word(v, "mark", 1, i64::from(u32::MAX))? as u32),
        }
    }
    let Some(daddr) = daddr else {
        return err(&proto.pos, ErrorKind::MissingValue("daddr".into()));
    };
    let Some(mark) = mark else {
        return err(&proto.pos, ErrorKind::MissingValue("mark".into()));
    };
    if let Some(((s, _), at)) = saddr
        && s.is_ipv4() != daddr.0.is_ipv4()
    {
        return err(
            at,
            ErrorKind::Conflict("saddr and daddr mix IPv4 and IPv6".into()),
        );
    }
    Ok(FwmarkRule {
        pos: proto.pos.clone(),
        rule: MarkRule {
            protocol,
            saddr: saddr.map(|(p, _)| p),
            daddr,
            dports: dports.unwrap_or_default(),
            mark,
        },
    })
}

fn hex_bytes(t: &str) -> Option<Vec<u8>> {
    let t = t.strip_prefix("0x").unwrap_or(t);
    if !t.len().is_multiple_of(2) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}
