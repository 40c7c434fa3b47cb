//! A background process guard that kills its whole process group on drop.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::cmd;
use crate::error::{Error, Result};
use crate::sys;

/// A background process (keepalived, an HTTP server, `sleep`, ...) started in
/// its own process group.
///
/// Dropping the guard sends `SIGKILL` to the whole group (so children that the
/// program forked die too) and reaps the process. Processes that left the group
/// (`setsid`) are still killed when the [`Lab`](crate::Lab) deletes their
/// namespace, since teardown kills every process inside it.
///
/// ```no_run
/// # fn main() -> Result<(), lb_testing_netns::Error> {
/// let lab = lb_testing_netns::Lab::new("doc")?;
/// let server = lab.add_host("server")?;
/// let mut daemon = server.spawn("sleep", ["600"])?;
/// daemon.terminate()?; // SIGTERM to the group: a graceful stop
/// let status = daemon.wait()?;
/// # let _ = status;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Process {
    child: Child,
    command: String,
    reaped: bool,
}

impl Process {
    /// Starts `cmd` (typically from [`Host::command`](crate::Host::command)) in a
    /// new process group with stdin closed. Its stdout/stderr are whatever `cmd`
    /// says (inherited by default, so the test harness captures them).
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        cmd.process_group(0).stdin(Stdio::null());
        let command = cmd::display(&cmd);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(Self {
            child,
            command,
            reaped: false,
        })
    }

    /// The process id (also its process group id).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    #[must_use]
    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// The underlying child, e.g. to take a piped stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `signal` (a `libc::SIG*` number) to the whole process group.
    /// Does nothing once the process has been reaped.
    pub fn signal(&self, signal: i32) -> Result<()> {
        if self.reaped {
            return Ok(());
        }
        let pgid = i32::try_from(self.pid()).unwrap_or(i32::MAX);
        match sys::kill(-pgid, signal) {
            Ok(()) => Ok(()),
            // The group is already empty: nothing left to signal.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(source) => Err(self.error(source)),
        }
    }

    /// Asks the group to stop (`SIGTERM`); use [`wait`](Self::wait) to see it exit.
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Kills the group (`SIGKILL`) and reaps the process.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(libc::SIGKILL)?;
        self.wait()
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait().map_err(|e| self.error(e))?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child.wait().map_err(|e| self.error(e))?;
        self.reaped = true;
        Ok(status)
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::Process {
            pid: self.pid(),
            command: self.command.clone(),
            source,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Only signal the group while the leader is unreaped: after that its
        // pid (the group id) could in principle be reused.
        if !self.reaped
            && let Err(e) = self.kill()
        {
            eprintln!("lb-testing-netns: cannot kill {}: {e}", self.command);
        }
    }
}
