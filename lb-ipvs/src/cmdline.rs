//! ipvsadm's command line (1.31): the grammar both `ipvsadm` invocations and
//! restore-file lines (`ipvsadm -R`) use.
//!
//! [`parse`] turns the arguments (without the program name) into a
//! [`Command`], applying ipvsadm's defaults (scheduler `wlc`, weight 1,
//! direct routing, persistence 360 s — what ipvsadm 1.31 does, although its man page says 300 —, sync interface `eth0`) and its checks,
//! with ipvsadm's error messages. Host and service names are not resolved:
//! addresses and ports must be numeric.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    ops::Op,
    types::{
        Daemon, DaemonState, Dest, Family, ForwardMethod, Protocol, Service, ServiceFlags,
        ServiceKey, Timeouts, TunnelFlags, TunnelType,
    },
};

/// Largest timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Default persistence timeout.
pub const DEFAULT_PERSISTENCE: u32 = 360;

/// What an ipvsadm command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// A change: `-A -E -D -a -e -d -C -Z --set --start-daemon --stop-daemon`.
    Apply(Op),
    /// `-L`/`-l` (also the bare command).
    List(ListOptions),
    /// `-S`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-R`: read commands from standard input.
    Restore,
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

/// Output modifiers of `-L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--tun-info`.
    pub tun_info: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// Rule (save) format, set by `-S`.
    pub rule: bool,
}

/// What `-L` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// One service only.
    pub service: Option<ServiceKey>,
    /// `-c`: the connection table.
    pub connections: bool,
    /// `--timeout`.
    pub timeout: bool,
    /// `--daemon`.
    pub daemon: bool,
    /// Formatting.
    pub format: Format,
}

/// A command-line error, with ipvsadm's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CmdError {
    /// The message.
    pub message: String,
}

fn fail<T>(message: impl Into<String>) -> Result<T, CmdError> {
    Err(CmdError {
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

// Option indices, as ipvsadm's OPTC_* (1.31).
const O_NUMERIC: usize = 0;
const O_CONNECTION: usize = 1;
const O_SERVICE: usize = 2;
const O_SCHEDULER: usize = 3;
const O_PERSISTENT: usize = 4;
const O_NETMASK: usize = 5;
const O_SERVER: usize = 6;
const O_FORWARD: usize = 7;
const O_WEIGHT: usize = 8;
const O_UTHRESHOLD: usize = 9;
const O_LTHRESHOLD: usize = 10;
const O_MCAST: usize = 11;
const O_TIMEOUT: usize = 12;
const O_DAEMON: usize = 13;
const O_STATS: usize = 14;
const O_RATE: usize = 15;
const O_THRESHOLDS: usize = 16;
const O_PERSISTENTCONN: usize = 17;
const O_NOSORT: usize = 18;
const O_SYNCID: usize = 19;
const O_EXACT: usize = 20;
const O_ONEPACKET: usize = 21;
const O_PE: usize = 22;
const O_SCHED_FLAGS: usize = 23;
const O_MCAST_GROUP: usize = 24;
const O_MCAST_PORT: usize = 25;
const O_MCAST_TTL: usize = 26;
const O_SYNC_MAXLEN: usize = 27;
const O_TUN_INFO: usize = 28;
const O_TUN_TYPE: usize = 29;
const O_TUN_PORT: usize = 30;
const O_TUN_NOCSUM: usize = 31;
const O_TUN_CSUM: usize = 32;
const O_TUN_REMCSUM: usize = 33;

const OPT_NAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// ipvsadm's `commands_v_options`: '+' compulsory, 'x' illegal, '1'
/// exclusive, ' ' optional.
const COMMANDS_V_OPTIONS: [&[u8; 34]; 14] = [
    /*ADD*/ b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    /*EDIT*/ b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    /*DEL*/ b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*FLUSH*/ b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*LIST*/ b" 11xxxxxxxxx11       xxxxxxx xxxxx",
    /*ADDSRV*/ b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    /*DELSRV*/ b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*EDITSRV*/ b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    /*TIMEOUT*/ b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*STARTD*/ b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
    /*STOPD*/ b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
    /*RESTORE*/ b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*SAVE*/ b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /*ZERO*/ b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

/// (long name, short letter, argument, tag)
const OPTIONS: &[(&str, Option<char>, Arg, &str)] = &[
    ("add-service", Some('A'), Arg::None, "A"),
    ("edit-service", Some('E'), Arg::None, "E"),
    ("delete-service", Some('D'), Arg::None, "D"),
    ("clear", Some('C'), Arg::None, "C"),
    ("list", Some('L'), Arg::None, "L"),
    ("list", Some('l'), Arg::None, "L"),
    ("zero", Some('Z'), Arg::None, "Z"),
    ("add-server", Some('a'), Arg::None, "a"),
    ("edit-server", Some('e'), Arg::None, "e"),
    ("delete-server", Some('d'), Arg::None, "d"),
    ("set", None, Arg::None, "set"),
    ("help", Some('h'), Arg::None, "h"),
    ("version", Some('v'), Arg::None, "v"),
    ("restore", Some('R'), Arg::None, "R"),
    ("save", Some('S'), Arg::None, "S"),
    ("start-daemon", None, Arg::Required, "start-daemon"),
    ("stop-daemon", None, Arg::Required, "stop-daemon"),
    ("tcp-service", Some('t'), Arg::Required, "t"),
    ("udp-service", Some('u'), Arg::Required, "u"),
    ("sctp-service", None, Arg::Required, "sctp"),
    ("fwmark-service", Some('f'), Arg::Required, "f"),
    ("scheduler", Some('s'), Arg::Required, "s"),
    ("persistent", Some('p'), Arg::Optional, "p"),
    ("netmask", Some('M'), Arg::Required, "M"),
    ("real-server", Some('r'), Arg::Required, "r"),
    ("masquerading", Some('m'), Arg::None, "m"),
    ("ipip", Some('i'), Arg::None, "i"),
    ("gatewaying", Some('g'), Arg::None, "g"),
    ("weight", Some('w'), Arg::Required, "w"),
    ("u-threshold", Some('x'), Arg::Required, "x"),
    ("l-threshold", Some('y'), Arg::Required, "y"),
    ("numeric", Some('n'), Arg::None, "n"),
    ("connection", Some('c'), Arg::None, "c"),
    ("mcast-interface", None, Arg::Required, "mcast-interface"),
    ("syncid", None, Arg::Required, "syncid"),
    ("timeout", None, Arg::None, "timeout"),
    ("daemon", None, Arg::None, "daemon"),
    ("stats", None, Arg::None, "stats"),
    ("rate", None, Arg::None, "rate"),
    ("thresholds", None, Arg::None, "thresholds"),
    ("persistent-conn", None, Arg::None, "persistent-conn"),
    ("nosort", None, Arg::None, "nosort"),
    ("sort", None, Arg::None, "sort"),
    ("exact", Some('X'), Arg::None, "X"),
    ("ipv6", Some('6'), Arg::None, "6"),
    ("ops", Some('o'), Arg::None, "o"),
    ("pe", None, Arg::Required, "pe"),
    ("sched-flags", Some('b'), Arg::Required, "b"),
    ("mcast-group", None, Arg::Required, "mcast-group"),
    ("mcast-port", None, Arg::Required, "mcast-port"),
    ("mcast-ttl", None, Arg::Required, "mcast-ttl"),
    ("sync-maxlen", None, Arg::Required, "sync-maxlen"),
    ("tun-info", None, Arg::None, "tun-info"),
    ("tun-type", None, Arg::Required, "tun-type"),
    ("tun-port", None, Arg::Required, "tun-port"),
    ("tun-nocsum", None, Arg::None, "tun-nocsum"),
    ("tun-csum", None, Arg::None, "tun-csum"),
    ("tun-remcsum", None, Arg::None, "tun-remcsum"),
];

/// An option's tag and value.
type OptValue = (&'static str, Option<String>);

/// Splits argv into (tag, value) pairs and positional arguments, popt-style:
/// `--long value`, `--long=value`, `-x value`, `-xvalue`, bundled `-Ln`;
/// an optional argument is taken only when the next word does not start
/// with `-`.
fn tokenize<S: AsRef<str>>(args: &[S]) -> Result<(Vec<OptValue>, Vec<String>), CmdError> {
    let mut opts = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    let take_next = |i: &mut usize, arg: Arg, name: &str| -> Result<Option<String>, CmdError> {
        match arg {
            Arg::None => Ok(None),
            Arg::Required => match args.get(*i + 1) {
                Some(v) => {
                    *i += 1;
                    Ok(Some(v.as_ref().to_owned()))
                }
                None => fail(format!("{name}: missing argument")),
            },
            Arg::Optional => match args.get(*i + 1) {
                Some(v) if !v.as_ref().starts_with('-') => {
                    *i += 1;
                    Ok(Some(v.as_ref().to_owned()))
                }
                _ => Ok(None),
            },
        }
    };
    while i < args.len() {
        let a = args[i].as_ref();
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let Some(&(_, _, arg, tag)) = OPTIONS.iter().find(|o| o.0 == name) else {
                return fail(format!("{a}: unknown option"));
            };
            let value = match inline {
                Some(v) if arg != Arg::None => Some(v),
                Some(_) => return fail(format!("{a}: option does not take an argument")),
                None => take_next(&mut i, arg, a)?,
            };
            opts.push((tag, value));
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let Some(&(_, _, arg, tag)) = OPTIONS.iter().find(|o| o.1 == Some(c)) else {
                    return fail(format!("-{c}: unknown option"));
                };
                if arg != Arg::None && j + 1 < chars.len() {
                    opts.push((tag, Some(chars[j + 1..].iter().collect())));
                    break;
                }
                let value = take_next(&mut i, arg, &format!("-{c}"))?;
                opts.push((tag, value));
                j += 1;
            }
        } else {
            positional.push(a.to_owned());
        }
        i += 1;
    }
    Ok((opts, positional))
}

/// `string_to_number`: a decimal in `min..=max`.
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}

/// `parse_service`: `addr`, `addr:port`, `[v6]:port` or bare `v6`.
/// Returns the address and the port if one was given.
fn parse_addr_port(buf: &str) -> Option<(IpAddr, Option<u16>)> {
    if buf.is_empty() || buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(rest) = buf.strip_prefix('[') {
        let (addr, port) = rest.split_once(']')?;
        let port = port.strip_prefix(':')?;
        let addr: Ipv6Addr = addr.parse().ok()?;
        let port = number(port, 0, 65535)? as u16;
        return Some((IpAddr::V6(addr), Some(port)));
    }
    if let Ok(v6) = buf.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(v6), None));
    }
    match buf.rsplit_once(':') {
        Some((addr, port)) => {
            let addr: Ipv4Addr = addr.parse().ok()?;
            Some((IpAddr::V4(addr), Some(number(port, 0, 65535)? as u16)))
        }
        None => Some((IpAddr::V4(buf.parse().ok()?), None)),
    }
}

fn parse_timeout(s: Option<&str>, min: u32) -> Result<u32, CmdError> {
    match s {
        None => Ok(DEFAULT_PERSISTENCE),
        Some(s) => match number(s, i64::from(min), i64::from(MAX_TIMEOUT)) {
            Some(n) => Ok(n as u32),
            None => fail(format!("invalid timeout value `{s}' specified")),
        },
    }
}

/// `parse_sched_flags` of ipvsadm 1.31 (with `mh-fallback`/`mh-port`).
pub fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, CmdError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let (bit, needs) = match flag {
            "flag-1" => (ServiceFlags::SCHED1, None),
            "flag-2" => (ServiceFlags::SCHED2, None),
            "flag-3" => (ServiceFlags::SCHED3, None),
            "sh-fallback" => (ServiceFlags::SCHED1, Some("sh")),
            "sh-port" => (ServiceFlags::SCHED2, Some("sh")),
            "mh-fallback" => (ServiceFlags::SCHED1, Some("mh")),
            "mh-port" => (ServiceFlags::SCHED2, Some("mh")),
            _ => return fail(format!("invalid scheduler flag `{flag}'")),
        };
        flags |= bit;
        if needs.is_some_and(|n| n != sched) {
            return fail(format!("incompatible scheduler flag `{flag}'"));
        }
    }
    Ok(flags)
}

/// Parses one ipvsadm command line (without the program name; a leading
/// `ipvsadm` word is skipped, as in restore files).
///
/// ```
/// use lb_ipvs::{Op, cmdline::{parse, Command}};
/// let cmd = parse(&["-A", "-t", "10.0.0.1:80", "-s", "rr", "-p", "60"]).unwrap();
/// let Command::Apply(Op::AddService(svc)) = cmd else { panic!() };
/// assert_eq!((svc.scheduler.as_str(), svc.timeout), ("rr", 60));
/// assert_eq!(
///     parse(&["-a", "-t", "10.0.0.1:80"]).unwrap_err().to_string(),
///     "You need to supply the 'real-server' option for the 'add-server' command"
/// );
/// ```
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, CmdError> {
    let args: Vec<&str> = args
        .iter()
        .map(AsRef::as_ref)
        .filter(|a| *a != "ipvsadm")
        .collect();
    if args.is_empty() {
        return Ok(Command::List(ListOptions::default()));
    }
    let (opts, positional) = tokenize(&args)?;
    let mut cmd = None;
    let mut options = 0u64;
    let mut format = Format::default();
    let set_option = |options: &mut u64, o: usize| -> Result<(), CmdError> {
        if *options & (1 << o) != 0 {
            return fail(format!("multiple '{}' options specified", OPT_NAMES[o]));
        }
        *options |= 1 << o;
        Ok(())
    };

    // The service being described, with ipvsadm's defaults.
    let mut family = Family::Inet;
    let mut protocol = Protocol::Tcp;
    let mut vaddr: Option<IpAddr> = None;
    let mut vport = 0u16;
    let mut fwmark = 0u32;
    let mut sched = String::new();
    let mut flags = 0u32;
    let mut timeout = 0u32;
    let mut netmask = u32::MAX;
    let mut pe = None;
    let mut sched_flags_arg = None;
    // The destination.
    let mut daddr: Option<IpAddr> = None;
    let mut dport = 0u16;
    let mut fwd = ForwardMethod::Route;
    let mut weight = 1i32;
    let (mut uthr, mut lthr) = (0u32, 0u32);
    let mut tun_type = TunnelType::Ipip;
    let mut tun_port = 0u16;
    let mut tun_flags = 0u16;
    // The daemon.
    let mut dstate = DaemonState::Master;
    let mut ifn = String::new();
    let mut syncid = 0u32;
    let mut maxlen = 0u16;
    let mut group = None;
    let mut mport = 0u16;
    let mut ttl = 0u8;

    for (idx, (tag, value)) in opts.iter().enumerate() {
        let v = value.as_deref();
        let vs = v.unwrap_or("");
        let new_cmd = match *tag {
            "A" => Some(Cmd::Add),
            "E" => Some(Cmd::Edit),
            "D" => Some(Cmd::Del),
            "C" => Some(Cmd::Flush),
            "L" => Some(Cmd::List),
            "Z" => Some(Cmd::Zero),
            "a" => Some(Cmd::AddDest),
            "e" => Some(Cmd::EditDest),
            "d" => Some(Cmd::DelDest),
            "set" => Some(Cmd::Timeout),
            "R" => Some(Cmd::Restore),
            "S" => Some(Cmd::Save),
            "start-daemon" | "stop-daemon" => {
                dstate = match vs {
                    "master" => DaemonState::Master,
                    "backup" => DaemonState::Backup,
                    _ if *tag == "start-daemon" => {
                        return fail("illegal start-daemon parameter specified");
                    }
                    _ => return fail("illegal start_daemon specified"),
                };
                Some(if *tag == "start-daemon" {
                    Cmd::StartDaemon
                } else {
                    Cmd::StopDaemon
                })
            }
            "h" if idx == 0 => return Ok(Command::Help),
            "v" if idx == 0 => return Ok(Command::Version),
            _ => None,
        };
        if let Some(c) = new_cmd {
            if cmd.is_some() {
                return fail("multiple commands specified");
            }
            cmd = Some(c);
            continue;
        }
        if idx == 0 {
            return fail("no command specified (try -h)");
        }
        match *tag {
            "t" | "u" | "sctp" => {
                set_option(&mut options, O_SERVICE)?;
                protocol = match *tag {
                    "t" => Protocol::Tcp,
                    "u" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let Some((addr, port)) = parse_addr_port(vs) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                family = Family::of(&addr);
                if family == Family::Inet6 {
                    netmask = 128;
                }
                vaddr = Some(addr);
                vport = port.unwrap_or(0);
            }
            "f" => {
                set_option(&mut options, O_SERVICE)?;
                family = Family::Inet;
                protocol = Protocol::Tcp;
                fwmark = match vs.parse::<i64>() {
                    Ok(n) if n > 0 && n <= i64::from(u32::MAX) => n as u32,
                    _ => return fail(format!("invalid fwmark value `{vs}' specified")),
                };
            }
            "s" => {
                set_option(&mut options, O_SCHEDULER)?;
                sched = vs.chars().take(16).collect();
            }
            "p" => {
                set_option(&mut options, O_PERSISTENT)?;
                flags |= ServiceFlags::PERSISTENT;
                timeout = parse_timeout(v, 1)?;
            }
            "M" => {
                set_option(&mut options, O_NETMASK)?;
                if family != Family::Inet6 {
                    match vs.parse::<Ipv4Addr>() {
                        Ok(m) => netmask = u32::from(m),
                        Err(_) => return fail("illegal virtual server persistent mask specified"),
                    }
                } else {
                    match number(vs, 1, 128) {
                        Some(n) => netmask = n as u32,
                        None => return fail("illegal ipv6 netmask specified"),
                    }
                }
            }
            "r" => {
                set_option(&mut options, O_SERVER)?;
                let Some((addr, port)) = parse_addr_port(vs) else {
                    return fail("illegal real server address[:port] specified");
                };
                daddr = Some(addr);
                dport = port.unwrap_or(vport);
            }
            "i" | "g" | "m" => {
                set_option(&mut options, O_FORWARD)?;
                fwd = match *tag {
                    "i" => ForwardMethod::Tunnel,
                    "g" => ForwardMethod::Route,
                    _ => ForwardMethod::Masq,
                };
            }
            "w" => {
                set_option(&mut options, O_WEIGHT)?;
                weight = match number(vs, 0, i64::from(i32::MAX)) {
                    Some(n) => n as i32,
                    None => return fail("illegal weight specified"),
                };
            }
            "x" | "y" => {
                let o = if *tag == "x" {
                    O_UTHRESHOLD
                } else {
                    O_LTHRESHOLD
                };
                set_option(&mut options, o)?;
                let Some(n) = number(vs, 0, i64::from(i32::MAX)) else {
                    return fail(if *tag == "x" {
                        "illegal u_threshold specified"
                    } else {
                        "illegal l_threshold specified"
                    });
                };
                if *tag == "x" {
                    uthr = n as u32;
                } else {
                    lthr = n as u32;
                }
            }
            "c" => set_option(&mut options, O_CONNECTION)?,
            "n" => {
                set_option(&mut options, O_NUMERIC)?;
                format.numeric = true;
            }
            "mcast-interface" => {
                set_option(&mut options, O_MCAST)?;
                ifn = vs.chars().take(16).collect();
            }
            "syncid" => {
                set_option(&mut options, O_SYNCID)?;
                syncid = match number(vs, 0, 255) {
                    Some(n) => n as u32,
                    None => return fail("illegal syncid specified"),
                };
            }
            "timeout" => set_option(&mut options, O_TIMEOUT)?,
            "daemon" => set_option(&mut options, O_DAEMON)?,
            "stats" => {
                set_option(&mut options, O_STATS)?;
                format.stats = true;
            }
            "rate" => {
                set_option(&mut options, O_RATE)?;
                format.rate = true;
            }
            "thresholds" => {
                set_option(&mut options, O_THRESHOLDS)?;
                format.thresholds = true;
            }
            "persistent-conn" => {
                set_option(&mut options, O_PERSISTENTCONN)?;
                format.persistent_conn = true;
            }
            "nosort" => {
                set_option(&mut options, O_NOSORT)?;
                format.nosort = true;
            }
            "sort" => {}
            "X" => {
                set_option(&mut options, O_EXACT)?;
                format.exact = true;
            }
            "6" => {
                if fwmark != 0 {
                    family = Family::Inet6;
                    netmask = 128;
                } else {
                    return fail("-6 used before -f\n");
                }
            }
            "o" => {
                set_option(&mut options, O_ONEPACKET)?;
                flags |= ServiceFlags::ONEPACKET;
            }
            "pe" => {
                set_option(&mut options, O_PE)?;
                pe = Some(vs.chars().take(16).collect::<String>());
            }
            "b" => {
                set_option(&mut options, O_SCHED_FLAGS)?;
                sched_flags_arg = Some(vs.to_owned());
            }
            "mcast-group" => {
                set_option(&mut options, O_MCAST_GROUP)?;
                if vs.contains(':') {
                    match vs.parse::<Ipv6Addr>() {
                        Ok(g) if g.is_multicast() => group = Some(IpAddr::V6(g)),
                        _ => return fail(format!("invalid IPv6 mcast-group `{vs}'")),
                    }
                } else {
                    match vs.parse::<Ipv4Addr>() {
                        Ok(g) if g.is_multicast() => group = Some(IpAddr::V4(g)),
                        _ => return fail(format!("invalid IPv4 mcast-group `{vs}'")),
                    }
                }
            }
            "mcast-port" => {
                set_option(&mut options, O_MCAST_PORT)?;
                mport = match number(vs, 1, 65535) {
                    Some(n) => n as u16,
                    None => return fail("illegal mcast-port specified"),
                };
            }
            "mcast-ttl" => {
                set_option(&mut options, O_MCAST_TTL)?;
                ttl = match number(vs, 1, 255) {
                    Some(n) => n as u8,
                    None => return fail("illegal mcast-ttl specified"),
                };
            }
            "sync-maxlen" => {
                set_option(&mut options, O_SYNC_MAXLEN)?;
                maxlen = match number(vs, 1, 65535 - 20 - 8) {
                    Some(n) => n as u16,
                    None => return fail("illegal sync-maxlen specified"),
                };
            }
            "tun-info" => {
                set_option(&mut options, O_TUN_INFO)?;
                format.tun_info = true;
            }
            "tun-type" => {
                set_option(&mut options, O_TUN_TYPE)?;
                tun_type = match vs {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return fail("illegal tunnel type specified"),
                };
            }
            "tun-port" => {
                set_option(&mut options, O_TUN_PORT)?;
                tun_port = match number(vs, 1, 65535) {
                    Some(n) => n as u16,
                    None => return fail("illegal tunnel port specified"),
                };
            }
            "tun-nocsum" => set_option(&mut options, O_TUN_NOCSUM)?,
            "tun-csum" => {
                set_option(&mut options, O_TUN_CSUM)?;
                tun_flags |= TunnelFlags::CSUM;
            }
            "tun-remcsum" => {
                set_option(&mut options, O_TUN_REMCSUM)?;
                tun_flags |= TunnelFlags::REMCSUM;
            }
            "h" | "v" => return fail("multiple commands specified"),
            other => return fail(format!("invalid option `{other}'")),
        }
    }
    let Some(cmd) = cmd else {
        return fail("no command specified (try -h)");
    };

    let mut timeouts = None;
    let mut positional = positional.into_iter();
    if cmd == Cmd::Timeout {
        let vals: Vec<String> = positional.by_ref().take(3).collect();
        if vals.len() != 3 {
            return fail("--set option requires 3 timeout values");
        }
        timeouts = Some(Timeouts {
            tcp: parse_timeout(Some(&vals[0]), 0)?,
            tcp_fin: parse_timeout(Some(&vals[1]), 0)?,
            udp: parse_timeout(Some(&vals[2]), 0)?,
        });
    }
    if let Some(extra) = positional.next() {
        return fail(format!("unexpected argument {extra}"));
    }
    if let Some(arg) = &sched_flags_arg {
        flags &= !ServiceFlags::SCHED_MASK;
        flags |= parse_sched_flags(&sched, arg)?;
    }

    generic_opt_check(cmd, options)?;

    let key = if fwmark != 0 {
        Some(ServiceKey::Fwmark {
            family,
            mark: fwmark,
        })
    } else {
        vaddr.map(|addr| ServiceKey::Addr {
            protocol,
            addr,
            port: vport,
        })
    };
    let service = |key: ServiceKey| -> Result<Service, CmdError> {
        if fwmark == 0 && vport == 0 && flags & ServiceFlags::PERSISTENT == 0 {
            return fail("Zero port specified for non-persistent service");
        }
        if flags & ServiceFlags::ONEPACKET != 0 && fwmark == 0 && protocol != Protocol::Udp {
            return fail("One-Packet Scheduling is only for UDP virtual services");
        }
        Ok(Service {
            key,
            scheduler: if sched.is_empty() {
                "wlc".into()
            } else {
                sched.clone()
            },
            flags: ServiceFlags(flags),
            timeout,
            netmask,
            pe_name: pe.clone(),
        })
    };
    let dest = || -> Result<Dest, CmdError> {
        let addr = daddr.expect("checked by generic_opt_check");
        let mut port = dport;
        if fwmark == 0 && matches!(fwd, ForwardMethod::Tunnel | ForwardMethod::Route) {
            port = vport;
        }
        if Family::of(&addr) != family && fwd != ForwardMethod::Tunnel {
            return fail("Different address family is allowed only for tunneling servers");
        }
        let tun_opts = (1 << O_TUN_TYPE)
            | (1 << O_TUN_PORT)
            | (1 << O_TUN_NOCSUM)
            | (1 << O_TUN_CSUM)
            | (1 << O_TUN_REMCSUM);
        if options & tun_opts != 0 && fwd != ForwardMethod::Tunnel {
            return fail("Tunnel options conflict with forward method");
        }
        tunnel_opt_check(tun_type, options)?;
        Ok(Dest {
            addr,
            port,
            fwd,
            weight,
            u_threshold: uthr,
            l_threshold: lthr,
            tun_type,
            tun_port,
            tun_flags: TunnelFlags(tun_flags),
        })
    };
    let need_key = || {
        key.ok_or_else(|| CmdError {
            message: "no service specified".into(),
        })
    };

    Ok(match cmd {
        Cmd::Add => Command::Apply(Op::AddService(service(need_key()?)?)),
        Cmd::Edit => Command::Apply(Op::EditService(service(need_key()?)?)),
        Cmd::Del => Command::Apply(Op::DelService(need_key()?)),
        Cmd::Flush => Command::Apply(Op::Flush),
        Cmd::Zero => Command::Apply(Op::Zero(key)),
        Cmd::AddDest => Command::Apply(Op::AddDest(need_key()?, dest()?)),
        Cmd::EditDest => Command::Apply(Op::EditDest(need_key()?, dest()?)),
        Cmd::DelDest => {
            let addr = daddr.expect("checked by generic_opt_check");
            Command::Apply(Op::DelDest(need_key()?, addr, dport))
        }
        Cmd::Timeout => Command::Apply(Op::SetTimeouts(timeouts.expect("parsed above"))),
        Cmd::StartDaemon => Command::Apply(Op::StartDaemon(Daemon {
            state: dstate,
            mcast_ifn: if ifn.is_empty() { "eth0".into() } else { ifn },
            syncid,
            sync_maxlen: maxlen,
            mcast_group: group,
            mcast_port: mport,
            mcast_ttl: ttl,
        })),
        Cmd::StopDaemon => Command::Apply(Op::StopDaemon(dstate)),
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: format.numeric,
        },
        Cmd::List => {
            let has = |o: usize| options & (1 << o) != 0;
            if ((has(O_CONNECTION) || has(O_TIMEOUT) || has(O_DAEMON))
                && (has(O_STATS) || has(O_RATE) || has(O_THRESHOLDS)))
                || ((has(O_TIMEOUT) || has(O_DAEMON)) && has(O_PERSISTENTCONN))
            {
                return fail("options conflicts in the list command");
            }
            Command::List(ListOptions {
                service: key,
                connections: has(O_CONNECTION),
                timeout: has(O_TIMEOUT),
                daemon: has(O_DAEMON),
                format,
            })
        }
    })
}

fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), CmdError> {
    let i = cmd as usize;
    let row = COMMANDS_V_OPTIONS[i];
    let mut last = None;
    for (j, &rule) in row.iter().enumerate() {
        if options & (1 << j) == 0 {
            if rule == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPT_NAMES[j], CMD_NAMES[i]
                ));
            }
        } else {
            if rule == b'x' {
                return fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    OPT_NAMES[j], CMD_NAMES[i]
                ));
            }
            if rule == b'1' {
                if let Some(l) = last {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPT_NAMES[j], OPT_NAMES[l], CMD_NAMES[i]
                    ));
                }
                last = Some(j);
            }
        }
    }
    Ok(())
}

/// ipvsadm's `tunnel_types_v_options` (tun-port, nocsum, csum, remcsum).
fn tunnel_opt_check(t: TunnelType, options: u64) -> Result<(), CmdError> {
    let (row, name): (&[u8; 4], &str) = match t {
        TunnelType::Ipip => (b"xxxx", "ipip"),
        TunnelType::Gue => (b"+111", "gue"),
        TunnelType::Gre => (b"x11x", "gre"),
        TunnelType::Other(_) => return Ok(()),
    };
    let opts = [O_TUN_PORT, O_TUN_NOCSUM, O_TUN_CSUM, O_TUN_REMCSUM];
    let mut last = None;
    for (j, &o) in opts.iter().enumerate() {
        if options & (1 << o) == 0 {
            if row[j] == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    OPT_NAMES[o]
                ));
            }
        } else {
            if row[j] == b'x' {
                return fail(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    OPT_NAMES[o]
                ));
            }
            if row[j] == b'1' {
                if let Some(l) = last {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                        OPT_NAMES[o], OPT_NAMES[l]
                    ));
                }
                last = Some(o);
            }
        }
    }
    Ok(())
}
