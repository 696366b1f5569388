//! SysV IPC (shared memory, semaphores, message queues) and POSIX message queues.
//!
//! The objects are the host kernel's own: a guest process is a host process, so keys,
//! ids, permissions, SEM_UNDO, `ipcs` and every other process (guest or native) see one
//! set of objects, with Linux's semantics across processes. What is translated is what
//! names something of the guest: its memory (buffers copied in and out, shm segments
//! mapped into guest RAM: `guest::mm::shm`), its fds (mq descriptors live in the guest
//! fd table), its signals (mq_notify), and the one structure whose layout differs
//! (`struct semid64_ds`). `ipc64_perm`, `shmid64_ds`, `msqid64_ds`, `shminfo64`,
//! `shm_info`, `seminfo`, `msginfo`, `sembuf`, `mq_attr`, `sigevent` and `timespec`
//! are the same bytes on AArch64 and x86_64 (asm-generic layouts; x86_64 includes the
//! generic ones but for `semid64_ds`). The command numbers are the same too, and neither
//! architecture takes the IPC_64 flag (both ignore the old `ipc_parse_version`), so the
//! commands pass as they are.
//!
//! Blocking calls block in the host call; a guest signal interrupts it (the wake
//! signal), and [`blocking`] answers as Linux does for each call.

pub mod mq;
pub mod msg;
pub mod sem;
pub mod shm;

use super::Ctx;
use crate::errno::Errno;

/// Host syscalls (ENOSYS where the host has no SysV IPC or mqueue in this form).
mod host {
    #[cfg(target_os = "linux")]
    pub use libc::{
        SYS_mq_getsetattr, SYS_mq_notify, SYS_mq_open, SYS_mq_timedreceive, SYS_mq_timedsend,
        SYS_mq_unlink, SYS_msgctl, SYS_msgget, SYS_msgrcv, SYS_msgsnd, SYS_semctl, SYS_semget,
        SYS_semtimedop, SYS_shmat, SYS_shmctl, SYS_shmget,
    };

    /// A raw host syscall: its return value, or -1 with the host errno.
    #[cfg(target_os = "linux")]
    pub fn call(nr: libc::c_long, a: [u64; 6]) -> i64 {
        // SAFETY: every pointer argument the callers pass is a host buffer of the size
        // the call reads or writes, or a checked slice of guest RAM.
        unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) }
    }

    #[cfg(not(target_os = "linux"))]
    mod nrs {
        pub const SYS_mq_getsetattr: i64 = 0;
        pub const SYS_mq_notify: i64 = 0;
        pub const SYS_mq_open: i64 = 0;
        pub const SYS_mq_timedreceive: i64 = 0;
        pub const SYS_mq_timedsend: i64 = 0;
        pub const SYS_mq_unlink: i64 = 0;
        pub const SYS_msgctl: i64 = 0;
        pub const SYS_msgget: i64 = 0;
        pub const SYS_msgrcv: i64 = 0;
        pub const SYS_msgsnd: i64 = 0;
        pub const SYS_semctl: i64 = 0;
        pub const SYS_semget: i64 = 0;
        pub const SYS_semtimedop: i64 = 0;
        pub const SYS_shmat: i64 = 0;
        pub const SYS_shmctl: i64 = 0;
        pub const SYS_shmget: i64 = 0;
    }
    #[cfg(not(target_os = "linux"))]
    pub use nrs::*;

    #[cfg(not(target_os = "linux"))]
    pub fn call(_nr: i64, _a: [u64; 6]) -> i64 {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__error() = libc::ENOSYS };
        -1
    }
}

/// A host call: its result or the guest errno.
fn call(nr: libc::c_long, a: [u64; 6]) -> Result<u64, Errno> {
    let r = host::call(nr, a);
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}

/// A blocking host call, retried after an EINTR that brought no guest signal for this
/// thread (a wake meant for something else). Interrupted by a guest signal, it returns
/// `code` (Linux: plain EINTR for semop, ERESTARTNOHAND for msgsnd/msgrcv, ERESTARTSYS
/// for the mq calls); a thread being killed leaves with EINTR.
pub(super) fn blocking(ctx: &Ctx, code: Errno, mut f: impl FnMut() -> i64) -> Result<u64, Errno> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as u64);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
        if ctx.proc.signals.deliverable(ctx.thread.tid) != 0 {
            return Err(code);
        }
        if ctx
            .proc
            .threads
            .get(ctx.thread.tid)
            .is_none_or(|t| t.killed())
        {
            return Err(Errno::EINTR);
        }
    }
}

/// A fixed-size guest structure copied into a host buffer (EFAULT if unreadable).
pub(super) fn read_struct<const N: usize>(ctx: &Ctx, va: u64) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    ctx.user_slice(va, N, false)?.copy_to(&mut b);
    Ok(b)
}

/// A pid the host recorded for a thread rather than its process: Linux's msgsnd hands
/// a message straight to a receiver blocked in msgrcv and records that *thread* as
/// `msg_lrpid`. A guest's main thread has the pid as its tid, but runs on elfuse's
/// "vcpu0" host thread, whose host tid is another number: that one becomes its
/// process's pid again (for any elfuse process: same executable as ours).
fn guest_pid(tid: i32) -> i32 {
    let status = match std::fs::read_to_string(format!("/proc/{tid}/status")) {
        Ok(s) => s,
        Err(_) => return tid,
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let Some(tgid) = field("Tgid:").and_then(|v| v.parse::<i32>().ok()) else {
        return tid;
    };
    let ours = || {
        let me = std::fs::read_link("/proc/self/exe").ok();
        me.is_some() && std::fs::read_link(format!("/proc/{tgid}/exe")).ok() == me
    };
    if tgid != tid && field("Name:").as_deref() == Some("vcpu0") && ours() {
        tgid
    } else {
        tid
    }
}
