//! Thread-directed signals to other guest processes: tgkill, tkill and rt_tgsigqueueinfo
//! naming a thread of another thread group.
//!
//! Guest pids are host pids, but a host signal aimed at one thread of another elfuse
//! process would stay pending on that host thread forever: elfuse's threads block every
//! forwarded signal and its watcher (`hostsig`) only takes what is pending for the whole
//! process. So when the target is an elfuse process (its /proc/PID/exe is our own), the
//! signal goes as a process-directed `rt_sigqueueinfo` (the host checks permission and
//! existence) whose siginfo says which thread it is for: si_code is
//! `-(REMOTE | -original_code)`, si_uid the target guest tid, si_pid and si_value those of
//! the original; the receiving watcher decodes it ([`decode`]) and queues it for that
//! thread with the original si_code and the sender's real uid. Any other process (a
//! native program) gets the host's own tgkill / rt_tgsigqueueinfo: its tids are host
//! tids.
//!
//! Guest tids of another process are host tids (its main thread's is the pid), so the
//! thread's existence is the host's /proc/TGID/task/TID; a tid that names one of that
//! process's own helper threads is dropped by the receiver (the sender sees success).

use super::{host_ret, SysResult};
use crate::errno::Errno;

/// Marks an encoded si_code (kept negative, clear of Linux's own codes).
const REMOTE: i32 = 0x2000_0000;

/// Whether host process `pid` runs elfuse (the same executable as this one).
pub fn is_elfuse(pid: i32) -> bool {
    let me = std::fs::read_link("/proc/self/exe");
    let it = std::fs::read_link(format!("/proc/{pid}/exe"));
    matches!((me, it), (Ok(a), Ok(b)) if a == b)
}

/// Signal `sig` for thread `tid` of thread group `tgid` (another process), with si_code
/// `code` (negative: SI_TKILL, SI_QUEUE...), si_pid `pid` and si_value `value`;
/// `raw`: the guest's whole siginfo for a native target (None: a tgkill).
pub fn send(
    tgid: i32,
    tid: i32,
    sig: i32,
    (code, pid, value): (i32, i32, u64),
    raw: Option<&[u8]>,
) -> SysResult {
    if !std::path::Path::new(&format!("/proc/{tgid}/task/{tid}")).exists() {
        return Err(Errno::ESRCH);
    }
    if !is_elfuse(tgid) {
        // SAFETY: plain host calls; `raw` is a live 128-byte siginfo.
        let r = unsafe {
            match raw {
                None => libc::syscall(libc::SYS_tgkill, tgid, tid, sig),
                Some(b) => libc::syscall(libc::SYS_rt_tgsigqueueinfo, tgid, tid, sig, b.as_ptr()),
            }
        };
        return host_ret(r);
    }
    if sig == 0 {
        // The checks alone: permission is the host's.
        // SAFETY: signal 0 sends nothing.
        return host_ret(unsafe { libc::kill(tgid, 0) } as i64);
    }
    let mut si = [0u8; 128];
    si[0..4].copy_from_slice(&sig.to_le_bytes());
    si[8..12].copy_from_slice(&(-(REMOTE | code.wrapping_neg())).to_le_bytes());
    si[16..20].copy_from_slice(&pid.to_le_bytes());
    si[20..24].copy_from_slice(&tid.to_le_bytes());
    si[24..32].copy_from_slice(&value.to_le_bytes());
    // SAFETY: `si` is a live 128-byte siginfo.
    host_ret(unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, tgid, sig, si.as_ptr()) })
}

/// A signal another elfuse process sent for one thread: (tid, si_code, si_pid, si_uid,
/// si_value), or None for an ordinary signal.
pub fn decode(code: i32, pid: u32, uid: u32, value: u64) -> Option<(i32, i32, i32, u32, u64)> {
    let c = code.wrapping_neg();
    if code >= 0 || c & REMOTE == 0 {
        return None;
    }
    let orig = -(c & !REMOTE);
    Some((uid as i32, orig, pid as i32, real_uid(pid as i32), value))
}

/// The real uid of host process `pid` (0 if it is gone).
fn real_uid(pid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
