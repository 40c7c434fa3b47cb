//! `/proc/net/ip_vs_conn` and `/proc/net/ip_vs_conn_sync`: the connection
//! table, which IPVS exposes only through procfs.
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//! TCP 0A000001 9C40 0A000064 0050 0A000002 0050 ESTABLISHED     899
//! ```
//!
//! IPv4 addresses are 8 hex digits (host order), IPv6 addresses are
//! `%pI6` (eight colon-separated groups), ports 4 hex digits. The `_sync`
//! file has an `Origin` column (`SYNC`/`LOCAL`) before `Expires`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Path of the connection table.
pub const CONN_PROC_FILE: &str = "/proc/net/ip_vs_conn";
/// Path of the connection table with sync origins.
pub const CONN_SYNC_PROC_FILE: &str = "/proc/net/ip_vs_conn_sync";

/// Where a connection entry came from (`_sync` file only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Learnt from the sync daemon (`IP_VS_CONN_F_SYNC`).
    Sync,
    /// Created locally.
    Local,
}

/// One connection entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// Protocol name (`TCP`, `UDP`, `SCTP`, ...).
    pub protocol: String,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port.
    pub virt: (IpAddr, u16),
    /// Destination address and port.
    pub dest: (IpAddr, u16),
    /// State name (`ESTABLISHED`, `SYN_RECV`, `NONE` for templates, ...).
    pub state: String,
    /// Seconds until expiry.
    pub expires: u32,
    /// Origin (`_sync` file only).
    pub origin: Option<Origin>,
    /// Persistence engine name, if the entry carries engine data.
    pub pe_name: Option<String>,
    /// Persistence engine data.
    pub pe_data: Option<String>,
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConnError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

fn addr(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else if s.len() == 8 {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    } else {
        None
    }
}

fn port(s: &str) -> Option<u16> {
    u16::from_str_radix(s, 16).ok()
}

/// Parses the text of either file (the header line says which).
///
/// ```
/// let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
///             TCP 0A000001 9C40 0A000064 0050 0A000002 0050 ESTABLISHED     899\n";
/// let conns = lb_ipvs::conn::parse(text).unwrap();
/// assert_eq!(conns[0].client, ("10.0.0.1".parse().unwrap(), 40000));
/// assert_eq!(conns[0].expires, 899);
/// ```
pub fn parse(text: &str) -> Result<Vec<Conn>, ConnError> {
    let mut lines = text.lines().enumerate();
    let sync = match lines.next() {
        Some((_, h)) if h.starts_with("Pro ") => h.contains("Origin"),
        Some(_) => {
            return Err(ConnError {
                line: 1,
                message: "missing header".into(),
            });
        }
        None => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: &str| ConnError {
            line: i + 1,
            message: m.to_owned(),
        };
        let w: Vec<&str> = line.split_whitespace().collect();
        let min = if sync { 10 } else { 9 };
        if w.len() < min {
            return Err(err("too few fields"));
        }
        let ap = |a: usize, p: usize, what: &str| -> Result<(IpAddr, u16), ConnError> {
            Ok((
                addr(w[a]).ok_or_else(|| err(&format!("bad {what} address `{}`", w[a])))?,
                port(w[p]).ok_or_else(|| err(&format!("bad {what} port `{}`", w[p])))?,
            ))
        };
        let (origin, exp_idx) = if sync {
            let o = match w[8] {
                "SYNC" => Origin::Sync,
                "LOCAL" => Origin::Local,
                o => return Err(err(&format!("bad origin `{o}`"))),
            };
            (Some(o), 9)
        } else {
            (None, 8)
        };
        out.push(Conn {
            protocol: w[0].to_owned(),
            client: ap(1, 2, "client")?,
            virt: ap(3, 4, "virtual")?,
            dest: ap(5, 6, "destination")?,
            state: w[7].to_owned(),
            expires: w[exp_idx].parse().map_err(|_| err("bad expiry"))?,
            origin,
            pe_name: w.get(exp_idx + 1).map(|s| (*s).to_owned()),
            pe_data: w.get(exp_idx + 2).map(|s| (*s).to_owned()),
        });
    }
    Ok(out)
}

/// Reads and parses [`CONN_PROC_FILE`] (the differential tests read it
/// inside the VM).
///
/// ```no_run
/// for c in lb_ipvs::conn::read()? {
///     println!("{:?} -> {:?} via {:?} ({})", c.client, c.virt, c.dest, c.state);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read() -> std::io::Result<Vec<Conn>> {
    read_file(CONN_PROC_FILE)
}

/// Reads and parses one of the two files.
pub fn read_file(path: &str) -> std::io::Result<Vec<Conn>> {
    let text = std::fs::read_to_string(path)?;
    parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
