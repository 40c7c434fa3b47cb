//! The crate's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::vm::Output;

/// Why a VM could not be prepared or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `lbvm prepare` has not run (or did not finish) for this cache directory.
    #[error(
        "the kernel VM is not prepared in {}: run `cargo run -p lb-testing-vm --bin lbvm -- prepare`",
        dir.display()
    )]
    NotPrepared {
        /// The cache directory that was searched.
        dir: PathBuf,
    },
    /// A program the VM needs is not installed.
    #[error("{program} is not installed (Debian package {package})")]
    ToolMissing {
        /// The program looked up on `PATH`.
        program: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A step of `lbvm prepare` failed.
    #[error("cannot prepare the kernel VM ({step}): {detail}")]
    Prepare {
        /// The step that failed.
        step: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// An I/O operation on the host failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The command did not finish within the time limit; qemu was killed.
    #[error(
        "the VM command did not finish within {limit:?} (qemu killed)\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
        tail(&output.stdout),
        tail(&output.stderr)
    )]
    Timeout {
        /// The limit that was exceeded.
        limit: Duration,
        /// What the command and the console had written until then.
        output: Box<Output>,
    },
    /// qemu exited without the guest reporting an exit code: a boot or init failure.
    #[error(
        "the VM stopped without reporting an exit code (qemu: {qemu})\n--- console (tail) ---\n{}",
        tail(console)
    )]
    NoStatus {
        /// qemu's exit status and its own error output.
        qemu: String,
        /// The kernel console (serial port) output.
        console: Vec<u8>,
    },
    /// An environment variable name cannot be passed to a shell.
    #[error("invalid environment variable name {0:?}")]
    BadEnvName(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The last 40 lines of `bytes`, lossily decoded.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
