//! The few raw system calls the lab needs.
//!
//! `unsafe_code` is denied workspace-wide. This module relaxes it because
//! entering a network namespace from Rust (`setns(2)`), signalling a process
//! group (`kill(2)` with a negative pid), reading the effective uid, `flock(2)`
//! and the `SIOCETHTOOL` ioctl that turns veth offloads off have no safe
//! wrapper in `std`. Each call is a plain FFI call on integer arguments, a file
//! descriptor we own for the duration of the call and, for the ioctl, structs
//! on our stack.
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

/// Takes an exclusive `flock(2)` on `file`, blocking; released when the file
/// is closed.
pub(crate) fn flock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: `file` is an open descriptor that outlives the call; flock only
    // takes two integers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Legacy `SIOCETHTOOL` commands that get or set one feature through a
/// `struct ethtool_value` (include/uapi/linux/ethtool.h).
pub(crate) mod ethtool {
    pub(crate) const GTXCSUM: u32 = 0x16;
    pub(crate) const STXCSUM: u32 = 0x17;
    pub(crate) const GSG: u32 = 0x18;
    pub(crate) const SSG: u32 = 0x19;
    pub(crate) const GTSO: u32 = 0x1e;
    pub(crate) const STSO: u32 = 0x1f;
    pub(crate) const GGSO: u32 = 0x23;
    pub(crate) const SGSO: u32 = 0x24;
    pub(crate) const GGRO: u32 = 0x2b;
    pub(crate) const SGRO: u32 = 0x2c;
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes on LP64,
/// like the kernel's).
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    pad: [u8; 16],
}

/// Runs ethtool command `cmd` with value `data` on interface `ifname` of the
/// namespace `socket` belongs to, and returns the value the kernel left in
/// the struct (the feature's state for a `G*` command).
pub(crate) fn ethtool_value(
    socket: &impl AsRawFd,
    ifname: &str,
    cmd: u32,
    data: u32,
) -> io::Result<u32> {
    if ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut value = EthtoolValue { cmd, data };
    let mut ifr = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: &raw mut value,
        pad: [0; 16],
    };
    for (dst, src) in ifr.name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `ifr` is a fully initialised ifreq-sized struct whose name is
    // NUL-terminated (checked length, zero fill) and whose data pointer points
    // at `value`; both live on this stack frame across the call, which is the
    // only use the kernel makes of them.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &raw mut ifr) };
    if rc == 0 {
        Ok(value.data)
    } else {
        Err(io::Error::last_os_error())
    }
}
