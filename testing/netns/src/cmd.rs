//! Running external commands (`ip`, `ping`, ...) with typed errors.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Directories searched after `PATH`: `ip`, `keepalived` and `ipvsadm` live in
/// sbin, which a non-login shell's `PATH` may lack.
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Finds `program` in `PATH` or the sbin directories; `None` if it is not an
/// executable file anywhere. A name containing `/` is checked as given.
#[must_use]
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The resolved path of `ip`, looked up once.
pub(crate) fn ip_program() -> Result<&'static Path> {
    static IP: OnceLock<Option<PathBuf>> = OnceLock::new();
    IP.get_or_init(|| find_program("ip"))
        .as_deref()
        .ok_or_else(|| Error::ProgramMissing {
            program: "ip".into(),
        })
}

/// `program` resolved to an absolute path when it can be, else unchanged (so
/// the error names the program when it is eventually run).
pub(crate) fn resolve(program: &OsStr) -> PathBuf {
    program
        .to_str()
        .and_then(find_program)
        .unwrap_or_else(|| PathBuf::from(program))
}

/// The command line as a shell would show it (arguments with spaces quoted).
pub(crate) fn display(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!("{arg:?}"));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// Runs `cmd` to completion with stdin closed and output captured; a non-zero
/// exit is an [`Error::Command`] carrying the command line and its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null());
    let output = cmd.output().map_err(|source| Error::Spawn {
        command: display(cmd),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command {
            command: display(cmd),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip ARGS...` and returns its standard output.
pub(crate) fn ip<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(ip_program()?);
    cmd.args(args);
    let output = run(&mut cmd)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_arguments_with_spaces() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hi", ""]);
        assert_eq!(display(&cmd), r#"sh -c "echo hi" """#);
    }

    #[test]
    fn find_program_finds_sh_and_rejects_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("definitely-not-a-program-lb").is_none());
        assert!(find_program("/nonexistent/sh").is_none());
    }

    #[test]
    fn run_reports_command_line_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo oops >&2; exit 3"]);
        let err = run(&mut cmd).unwrap_err();
        match &err {
            Error::Command {
                command,
                status,
                stderr,
            } => {
                assert_eq!(command, r#"sh -c "echo oops >&2; exit 3""#);
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "oops");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("oops"));
        assert!(!err.is_environment());
    }
}
