//! The crate's error type.

use std::io;
use std::process::ExitStatus;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or using a [`Lab`](crate::Lab).
///
/// [`Error::is_environment`] separates "this machine cannot run netns tests"
/// (not root, `ip` missing, ...) from real failures; [`lab_or_skip!`](crate::lab_or_skip)
/// skips only on the former.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process does not run as root (network namespaces need `CAP_SYS_ADMIN`).
    #[error("not running as root (euid {euid}); network namespaces need root")]
    NotRoot {
        /// The effective user id found.
        euid: u32,
    },
    /// A program the lab (or the test) needs is not installed.
    #[error("program `{program}` not found in PATH, /usr/sbin or /sbin")]
    ProgramMissing {
        /// The program's name.
        program: String,
    },
    /// The kernel offers no network namespaces (`/proc/self/ns/net` is missing).
    #[error("the kernel has no network namespaces (/proc/self/ns/net is missing)")]
    NoNetns,
    /// A command ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as a shell would show it.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A command could not be started at all.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why `fork`/`exec` failed.
        source: io::Error,
    },
    /// A name (lab tag, host, interface) breaks the naming rules.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// What kind of name: "tag", "host" or "interface".
        what: &'static str,
        /// The rejected name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A host of that name already exists in this lab.
    #[error("host {0:?} already exists in this lab")]
    DuplicateHost(String),
    /// A prefix length does not fit the address family.
    #[error("prefix length /{prefix_len} is too long for {addr}")]
    PrefixLen {
        /// The address.
        addr: std::net::IpAddr,
        /// The prefix length given.
        prefix_len: u8,
    },
    /// Entering a namespace with `setns(2)` failed.
    #[error("cannot enter network namespace {netns}: {source}")]
    Setns {
        /// The namespace name.
        netns: String,
        /// The OS error.
        source: io::Error,
    },
    /// Reading or writing a sysctl inside a namespace failed.
    #[error("sysctl {key} in {netns}: {source}")]
    Sysctl {
        /// The namespace name.
        netns: String,
        /// The key, dotted or slashed as given.
        key: String,
        /// The OS error.
        source: io::Error,
    },
    /// An ethtool ioctl (offload settings) on an interface failed.
    #[error("ethtool on {ifname} in {netns}: {source}")]
    Ethtool {
        /// The namespace name.
        netns: String,
        /// The interface.
        ifname: String,
        /// The OS error.
        source: io::Error,
    },
    /// A file or directory of the lab (its scratch directory, the init lock)
    /// could not be created or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Sending a signal or waiting for a process failed.
    #[error("process {pid} ({command}): {source}")]
    Process {
        /// The process id.
        pid: u32,
        /// The command line it was started with.
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// A command's output did not contain what we looked for.
    #[error("unexpected output of `{command}`: {output:?}")]
    Parse {
        /// The command line.
        command: String,
        /// Its (trimmed) standard output.
        output: String,
    },
}

impl Error {
    /// Whether the error means "this machine cannot run netns tests at all"
    /// (not root, `ip` or another required program missing, no kernel netns)
    /// rather than a failure of the test or of the lab.
    #[must_use]
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            Self::NotRoot { .. } | Self::ProgramMissing { .. } | Self::NoNetns
        )
    }
}
