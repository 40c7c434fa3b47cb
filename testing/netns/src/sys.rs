//! The few raw system calls the lab needs.
//!
//! `unsafe_code` is denied workspace-wide. This module relaxes it because
//! entering a network namespace from Rust (`setns(2)`), signalling a process
//! group (`kill(2)` with a negative pid) and reading the effective uid have no
//! safe wrapper in `std`. Each call is a plain FFI call on integer arguments and
//! a file descriptor we own for the duration of the call.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Moves the **calling thread** into the network namespace bound at `path`
/// (e.g. `/run/netns/NAME`). Other threads of the process are unaffected.
pub(crate) fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: `file` is an open descriptor that outlives the call; setns only
    // reads its two integer arguments and changes the calling thread's netns.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to process `pid` (or to process group `-pid` if negative).
pub(crate) fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid(2) has no arguments, always succeeds and touches no memory.
    unsafe { libc::geteuid() }
}
