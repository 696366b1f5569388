//! kill(0), kill(-pgid) and kill(-1): every process they name, guest or host.
//!
//! A guest process is a host process with the same pid, so the group is the host's. The
//! host kernel delivers the signal to every member; this process's own copy reaches the
//! guest through the host-signal watcher (`hostsig`), which is drained before kill
//! returns, so a signal the caller sends its own group is pending (and, unblocked,
//! delivered on the way back to guest code) as on Linux. SIGKILL and SIGSTOP act on the
//! host process itself, as they would on the guest. A signal the watcher does not take
//! (SIGPIPE, the synchronous fault signals, the host libc's reserved real-time ones) is
//! sent to the other members one by one, found in /proc, and raised in this process
//! through the guest's own path.
//!
//! kill(-1) is the host's: every process the caller may signal but init and the caller
//! itself (Linux excludes the caller's thread group).

use super::{host_ret, SysResult};
use crate::errno::Errno;

/// `kill(pid, sig)` for pid 0, -1 or < -1. `raise_self` signals this process through the
/// guest path (for the signals the watcher does not carry).
pub fn kill_many(pid: i32, sig: i32, raise_self: impl Fn() -> SysResult) -> SysResult {
    if pid == i32::MIN {
        // No group has that id (and -pid does not exist).
        return Err(Errno::ESRCH);
    }
    let host_kill = |p: i32| {
        // SAFETY: kill(2) with integer arguments.
        host_ret(unsafe { libc::kill(p, sig) } as i64)
    };
    if sig == 0
        || pid == -1
        || crate::signal::hostsig::forwards(sig)
        || sig == libc::SIGKILL
        || sig == libc::SIGSTOP
    {
        crate::signal::hostsig::start_now();
        let r = host_kill(pid);
        crate::signal::hostsig::flush();
        return r.map(|_| 0);
    }
    // SAFETY: plain queries of this process.
    let (me, pgid) = unsafe {
        (
            libc::getpid(),
            if pid == 0 { libc::getpgrp() } else { -pid },
        )
    };
    let mut found = false;
    let mut sent = false;
    let mut err = Errno::ESRCH;
    for p in group_members(pgid) {
        found = true;
        let r = if p == me { raise_self() } else { host_kill(p) };
        match r {
            Ok(_) => sent = true,
            Err(e) => err = e,
        }
    }
    match (found, sent) {
        (_, true) => Ok(0),
        (false, _) => Err(Errno::ESRCH),
        (true, false) => Err(err),
    }
}

/// The pids of process group `pgid`, from /proc/<pid>/stat (the field after the state and
/// the parent pid).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        let pgrp: i32 = rest.split_whitespace().nth(2)?.parse().ok()?;
        (pgrp == pgid).then_some(pid)
    })
    .collect()
}
