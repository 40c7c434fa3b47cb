//! ipvsadm's save/restore format (`ipvsadm -S` / `ipvsadm -R`).
//!
//! A restore file is one ipvsadm command line per line (a leading
//! `ipvsadm` word is allowed); `ipvsadm -S` writes `-A` (service) and `-a`
//! (real server) lines:
//!
//! ```text
//! -A -t 10.0.0.1:80 -s wlc -p 300 -M 255.255.255.0
//! -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1
//! -A -f 7 -6 -s sh -b sh-fallback
//! ```
//!
//! [`parse_commands`] gives the commands, [`parse_table`] the table they
//! build (run against the kernel model, so "Destination already exists" and
//! the like are reported with their line), [`emit`] writes a table back in
//! exactly ipvsadm's format and order.

use crate::{
    cmdline::{self, Command},
    list::{self, Numeric},
    model::Model,
    ops::Op,
    types::{DestEntry, Info, ServiceEntry, Snapshot, Stats, Table},
};

/// A restore-file error, naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SaveError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Parses every non-empty, non-comment line into a command.
///
/// ```
/// let cmds = lb_ipvs::save::parse_commands("-A -t 10.0.0.1:80 -s rr\n\n-C\n").unwrap();
/// assert_eq!(cmds.len(), 2);
/// assert_eq!(cmds[1].0, 3);
/// ```
pub fn parse_commands(text: &str) -> Result<Vec<(usize, Command)>, SaveError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| *w != "ipvsadm")
            .collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        let cmd = cmdline::parse(&words).map_err(|e| SaveError {
            line: i + 1,
            message: e.message,
        })?;
        out.push((i + 1, cmd));
    }
    Ok(out)
}

/// Parses a restore file and runs it against an empty table, returning the
/// result. Lines must be table changes (`-A -E -D -a -e -d -C`; `-Z` and
/// `--set` are accepted and ignored).
///
/// ```
/// let t = lb_ipvs::save::parse_table(
///     "-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.1.1 -m -w 3\n",
/// ).unwrap();
/// assert_eq!(t.services[0].dests[0].weight, 3);
/// let err = lb_ipvs::save::parse_table("-a -u 10.0.0.1:53 -r 10.0.1.1\n").unwrap_err();
/// assert_eq!(err.to_string(), "line 1: Service not defined");
/// ```
pub fn parse_table(text: &str) -> Result<Table, SaveError> {
    let mut model = Model::new();
    for (line, cmd) in parse_commands(text)? {
        let Command::Apply(op) = cmd else {
            return Err(SaveError {
                line,
                message: "not a table command".into(),
            });
        };
        if let Op::StartDaemon(_) | Op::StopDaemon(_) = op {
            return Err(SaveError {
                line,
                message: "not a table command".into(),
            });
        }
        model.apply(&op).map_err(|errno| SaveError {
            line,
            message: crate::error::strerror(&op, errno),
        })?;
    }
    Ok(model.to_table())
}

/// Writes `table` as `ipvsadm -S -n` would (services and destinations in
/// ipvsadm's sort order, applied to the table's order: ipvsadm's comparator
/// wraps for addresses more than 2^31 apart, so for such tables the output
/// equals `ipvsadm -S -n` only when `table` is in the kernel's dump order,
/// as [`crate::Client::table`] returns it).
///
/// ```
/// let text = "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n";
/// let table = lb_ipvs::save::parse_table(text).unwrap();
/// assert_eq!(lb_ipvs::save::emit(&table), text);
/// ```
pub fn emit(table: &Table) -> String {
    let snap = Snapshot {
        info: Info {
            version: 0,
            conn_tab_size: 0,
        },
        services: table
            .services
            .iter()
            .map(|vs| {
                (
                    ServiceEntry {
                        service: vs.service.clone(),
                        stats: Stats::default(),
                    },
                    vs.dests
                        .iter()
                        .map(|d| DestEntry {
                            dest: d.clone(),
                            active_conns: 0,
                            inact_conns: 0,
                            persist_conns: 0,
                            stats: Stats::default(),
                        })
                        .collect(),
                )
            })
            .collect(),
    };
    list::save(&snap, true, &Numeric)
}
