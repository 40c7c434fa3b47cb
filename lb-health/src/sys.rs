//! The crate's only `unsafe`: one libc call.
#![allow(unsafe_code)] // kill(2) has no safe std wrapper for process groups.

/// Sends SIGKILL to the process group `pgid` (a MISC_CHECK script that ran
/// with `process_group(0)` leads a group whose id is its pid).
pub(crate) fn kill_process_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // a negative pid addresses the group. pgid > 1 rules out "every process".
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
