//! MISC_CHECK: run a script. Exit 0 passes, anything else fails; with
//! `misc_dynamic`, exit 1 fails and 2..=255 passes with weight `code - 2`.
//!
//! The script runs in its own process group; on timeout the whole group is
//! killed (a script's children must not outlive it) and the check fails.
//! The weight is absolute, so a killed script cannot leak weight
//! (keepalived #2720).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::error::{ConfigError, Failure, FailureClass};

/// MISC_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiscSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// `misc_timeout`.
    pub timeout: Duration,
    /// `misc_dynamic`.
    pub dynamic: bool,
    /// Run as this user id (keepalived `user`).
    pub uid: Option<u32>,
    /// Run with this group id.
    pub gid: Option<u32>,
}

impl MiscSpec {
    /// Parses keepalived's `misc_path` string: words split on blanks,
    /// double quotes group words.
    ///
    /// ```
    /// let m = lb_health::probe::MiscSpec::from_command_line(
    ///     r#"/bin/check "a b" c"#, std::time::Duration::from_secs(5)).unwrap();
    /// assert_eq!(m.args, ["a b", "c"]);
    /// ```
    pub fn from_command_line(line: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    in_word = true;
                }
                ' ' | '\t' if !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                _ => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if quoted {
            return Err(ConfigError::MiscCommand("unterminated quote"));
        }
        if in_word {
            words.push(cur);
        }
        let mut words = words.into_iter();
        let program = words
            .next()
            .ok_or(ConfigError::MiscCommand("empty command"))?;
        Ok(Self {
            program: program.into(),
            args: words.collect(),
            timeout,
            dynamic: false,
            uid: None,
            gid: None,
        })
    }

    /// Sets `misc_dynamic`.
    pub fn dynamic(&mut self, on: bool) -> &mut Self {
        self.dynamic = on;
        self
    }

    /// Runs the script as `uid`/`gid`.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.uid = Some(uid);
        self.gid = Some(gid);
        self
    }
}

/// Maps an exit status to a result.
pub(crate) fn verdict(status: ExitStatus, dynamic: bool) -> Result<Option<u32>, Failure> {
    match status.code() {
        Some(0) => Ok(None),
        Some(c) if dynamic && c >= 2 => Ok(Some((c - 2) as u32)),
        Some(c) => Err(Failure::new(
            FailureClass::ScriptFailed,
            format!("exit code {c}"),
        )),
        None => Err(Failure::new(
            FailureClass::ScriptFailed,
            "killed by a signal",
        )),
    }
}

pub(crate) async fn run(spec: &MiscSpec) -> Result<Option<u32>, Failure> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(uid) = spec.uid {
        cmd.uid(uid);
    }
    if let Some(gid) = spec.gid {
        cmd.gid(gid);
    }
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            FailureClass::ScriptFailed,
            format!("spawn {}: {e}", spec.program.display()),
        )
    })?;
    let pid = child.id();
    match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(Ok(status)) => verdict(status, spec.dynamic),
        Ok(Err(e)) => Err(Failure::new(
            FailureClass::ScriptFailed,
            format!("wait: {e}"),
        )),
        Err(_) => {
            if let Some(pid) = pid {
                crate::sys::kill_process_group(pid);
            }
            let _ = child.kill().await;
            Err(Failure::new(
                FailureClass::ScriptTimeout,
                format!("killed after {:?}", spec.timeout),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_codes() {
        let st = |c: i32| ExitStatus::from_raw(c << 8);
        assert_eq!(verdict(st(0), false), Ok(None));
        assert_eq!(verdict(st(0), true), Ok(None));
        assert_eq!(
            verdict(st(1), true).unwrap_err().class,
            FailureClass::ScriptFailed
        );
        assert_eq!(verdict(st(2), true), Ok(Some(0)));
        assert_eq!(verdict(st(255), true), Ok(Some(253)));
        assert!(verdict(st(7), false).is_err());
        assert!(verdict(ExitStatus::from_raw(9), true).is_err()); // SIGKILL
    }

    #[test]
    fn command_lines() {
        let d = Duration::from_secs(1);
        assert!(MiscSpec::from_command_line("  ", d).is_err());
        assert!(MiscSpec::from_command_line("a \"b", d).is_err());
        let m = MiscSpec::from_command_line("x  \"\" y", d).unwrap();
        assert_eq!(
            (m.program.to_str().unwrap(), &m.args[..]),
            ("x", &["".to_string(), "y".to_string()][..])
        );
    }
}
