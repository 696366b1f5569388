//! clone and clone3 for threads (a new vCPU on a new host thread over the same RAM), and
//! membarrier.
//!
//! Threads: CLONE_VM | CLONE_THREAD | CLONE_SIGHAND (with the fs and files shared is what
//! glibc 2.36 and musl 1.2.3 pass for pthread_create). A child without CLONE_VM (fork),
//! or with CLONE_VFORK, is a new process: `crate::fork::clone_process` (its exit signal
//! and CLONE_CLEAR_SIGHAND: `clone_proc`). A thread without CLONE_FILES or CLONE_FS gets
//! its own fd table or fs context (`clone_own`). CLONE_VM without CLONE_THREAD or
//! CLONE_VFORK (a process sharing memory) is ENOSYS (see `validate`). CLONE_PIDFD
//! (processes), clone3's set_tid and CLONE_INTO_CGROUP are handled around those paths.
//!
//! The child starts with the parent's registers at the parent's HVC exit (so it resumes
//! at the shim's ERET, returning to the instruction after the SVC) with X0 = 0, SP_EL0
//! from the stack argument, TPIDR_EL0 from CLONE_SETTLS, its own EL1 stack (by vCPU
//! slot) and CONTEXTIDR_EL1 = its tid. Every thread gets a new host thread, whose kernel
//! tid is its tid (so tids are not reused at once: the kernel allocates them cyclically);
//! a vCPU left by an exited thread is reused when there is one. The parent writes
//! CLONE_PARENT_SETTID / CLONE_CHILD_SETTID and registers the thread before the child
//! runs guest code.

use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::{Ctx, SysResult};
use crate::backend::Invalidate;
use crate::errno::Errno;
use crate::guest::layout::RAM_SIZE;

pub const CSIGNAL: u64 = 0xff;
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_IO: u64 = 0x8000_0000;
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Flags a thread may carry besides the required ones.
const THREAD_OK: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID
    | CLONE_DETACHED
    | CLONE_PARENT
    | CLONE_PTRACE
    | CLONE_UNTRACED
    | CLONE_IO;

use super::ctx::ThreadArgs as Request;

fn validate(flags: u64) -> Result<(), Errno> {
    // Linux's own consistency rules first.
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
        || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_VM == 0 || flags & CLONE_THREAD == 0 || flags & CLONE_VFORK != 0 {
        // Only CLONE_VM without CLONE_THREAD or CLONE_VFORK gets here (the callers send
        // new processes to `fork::clone_process`): a separate process sharing this one's
        // memory. A guest process is a host process (its own pid, signal state and shim
        // page), and guest RAM with its page tables is one host process's private
        // memory, so no second process can share it: ENOSYS, the stated limit.
        return Err(Errno::ENOSYS);
    }
    if flags & !(THREAD_OK | CSIGNAL) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// clone(flags, newsp, parent_tid, tls, child_tid) — AArch64 argument order.
pub fn clone(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[0] & 0xffff_ffff;
    if flags & CLONE_PIDFD != 0 {
        // The pidfd goes where parent_tid would (clone's argument list has no room for
        // both).
        if flags & (CLONE_PARENT_SETTID | CLONE_THREAD | CLONE_DETACHED) != 0 {
            return Err(Errno::EINVAL);
        }
        let mut b = a;
        b[0] &= !CLONE_PIDFD;
        return with_pidfd(ctx, a[2], |ctx| clone(ctx, b));
    }
    // A new process (fork, vfork): the fork-IPC path.
    if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
        return ctx.life.fork(ctx, a);
    }
    validate(flags)?;
    ctx.life.spawn_thread(
        ctx,
        Request {
            flags,
            stack: a[1],
            parent_tid: a[2],
            tls: a[3],
            child_tid: a[4],
        },
    )
}

/// clone3(struct clone_args *, size).
pub fn clone3(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const VER0: u64 = 64;
    const KNOWN: u64 = 88;
    let size = a[1];
    if size < VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut f = [0u64; 11];
    let n = size.min(KNOWN) as usize;
    let raw = ctx.read_bytes(a[0], n)?;
    for (i, c) in raw.chunks_exact(8).enumerate() {
        f[i] = u64::from_le_bytes(c.try_into().unwrap());
    }
    if size > KNOWN
        && ctx
            .read_bytes(a[0] + KNOWN, (size - KNOWN) as usize)?
            .iter()
            .any(|&b| b != 0)
    {
        return Err(Errno::E2BIG);
    }
    let [flags, _, _, _, exit_signal, stack, stack_size, _, set_tid, set_tid_size, cgroup] = f;
    // Linux's checks, in its order (copy_clone_args_from_user, clone3_args_valid).
    if set_tid_size > 32 || (set_tid == 0) != (set_tid_size == 0) {
        return Err(Errno::EINVAL);
    }
    if exit_signal > 64 || flags & CSIGNAL != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_INTO_CGROUP != 0 && (cgroup > i32::MAX as u64 || size < KNOWN) {
        return Err(Errno::EINVAL);
    }
    let tids = if set_tid_size != 0 {
        ctx.read_bytes(set_tid, set_tid_size as usize * 4)?
    } else {
        Vec::new()
    };
    if flags & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
        || flags & CLONE_DETACHED != 0
        || flags & (CLONE_CLEAR_SIGHAND | CLONE_SIGHAND) == CLONE_CLEAR_SIGHAND | CLONE_SIGHAND
        || flags & (CLONE_THREAD | CLONE_PARENT) != 0 && exit_signal != 0
    {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    if !tids.is_empty() {
        return Err(set_tid_answer(&tids));
    }
    clone3_rest(ctx, f)
}

/// clone3 after Linux's argument checks: the flags elfuse applies around a plain clone.
fn clone3_rest(ctx: &mut Ctx, f: [u64; 11]) -> SysResult {
    let (flags, pidfd, cgroup) = (f[0], f[1], f[10]);
    if flags & CLONE_INTO_CGROUP != 0 {
        let mut b = f;
        b[0] &= !CLONE_INTO_CGROUP;
        return into_cgroup(ctx, flags, cgroup, |ctx| clone3_rest(ctx, b));
    }
    if flags & CLONE_PIDFD != 0 {
        if flags & (CLONE_THREAD | CLONE_DETACHED) != 0 {
            return Err(Errno::EINVAL);
        }
        let mut b = f;
        b[0] &= !CLONE_PIDFD;
        return with_pidfd(ctx, pidfd, |ctx| clone3_args(ctx, &b));
    }
    clone3_args(ctx, &f)
}

/// The answer to clone3 with set_tid (a chosen tid, for checkpoint/restore): Linux's
/// checks in its order (one pid namespace level; a tid in 1..pid_max; the capability),
/// then EEXIST for a taken tid. A free tid with the privilege: ENOSYS (the host picks
/// every tid elfuse gets).
fn set_tid_answer(tids: &[u8]) -> Errno {
    if tids.len() > 4 {
        return Errno::EINVAL;
    }
    let tid = i32::from_le_bytes(tids[..4].try_into().unwrap());
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(1 << 22);
    if tid < 1 || tid >= pid_max {
        return Errno::EINVAL;
    }
    // CAP_SYS_ADMIN (21) or CAP_CHECKPOINT_RESTORE (40), effective.
    let caps = std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    if caps & (1 << 21 | 1 << 40) == 0 {
        return Errno::EPERM;
    }
    if std::path::Path::new(&format!("/proc/{tid}")).exists() {
        return Errno::EEXIST;
    }
    Errno::ENOSYS
}

/// CLONE_PIDFD for a new process: the child's pidfd (close-on-exec, as Linux) is
/// installed and its number written to `at`. The pointer is checked first: Linux fails
/// the clone with EFAULT before the child exists.
fn with_pidfd(ctx: &mut Ctx, at: u64, clone: impl FnOnce(&mut Ctx) -> SysResult) -> SysResult {
    ctx.proc.mm.check_user(at, 4, true)?;
    let pid = clone(ctx)?;
    // SAFETY: a syscall with no pointer arguments; the child is ours and not yet reaped
    // (only the guest's wait reaps it).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as i32, 0) };
    let fd = if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a new descriptor the host just gave us, owned from here on.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    };
    let gfd = ctx.install(OpenFile::host(fd?, None), true)?;
    let _ = ctx.write_val(at, &(gfd as i32));
    Ok(pid)
}

/// CLONE_INTO_CGROUP: the host decides. `cgroup` must be a cgroup2 directory fd (else
/// EBADF, as Linux), and its cgroup.procs writable to this process (the host's
/// answer: EACCES, EROFS...); the child is moved there right after it is created, and a
/// refused move kills and reaps it and fails the clone.
fn into_cgroup(
    ctx: &mut Ctx,
    flags: u64,
    cgroup: u64,
    clone: impl FnOnce(&mut Ctx) -> SysResult,
) -> SysResult {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A thread (or a process sharing memory) joins its creator's cgroup on Linux too
        // only through a new process: CLONE_THREAD with CLONE_INTO_CGROUP is EINVAL.
        return Err(Errno::EINVAL);
    }
    let file = ctx.file(cgroup)?;
    let dir = file.raw();
    // SAFETY: a zeroed statfs for the host to fill; `dir` is held open by `file`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one struct statfs into `st`, a local; `dir` is held by `file`.
    if unsafe { libc::fstatfs(dir, &mut st) } != 0 || st.f_type as i64 != CGROUP2_SUPER_MAGIC {
        return Err(Errno::EBADF);
    }
    // SAFETY: a constant path relative to a directory fd we hold.
    let procs = unsafe {
        libc::openat(
            dir,
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if procs < 0 {
        return Err(match Errno::last() {
            Errno::ENOTDIR | Errno::ENOENT => Errno::EBADF,
            e => e,
        });
    }
    // SAFETY: the descriptor openat just returned, owned from here on.
    let procs = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(procs) });
    let pid = clone(ctx)?;
    use std::io::Write;
    if let Err(e) = (&procs).write_all(pid.to_string().as_bytes()) {
        // SAFETY: our own child, killed and reaped before anyone learns its pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
        }
        return Err(Errno::from_io(&e));
    }
    Ok(pid)
}

/// clone3 once its arguments are checked (no set_tid, cgroup or pidfd left).
fn clone3_args(ctx: &mut Ctx, f: &[u64; 11]) -> SysResult {
    let [flags, _, child_tid, parent_tid, exit_signal, stack, stack_size, tls, _, _, _] = *f;
    if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
        // A new process (fork, vfork, posix_spawn): clone's arguments, the exit signal in
        // CSIGNAL, the child's SP at the top of the given stack.
        let sp = if stack == 0 {
            0
        } else {
            stack.wrapping_add(stack_size)
        };
        let a = [flags | exit_signal, sp, parent_tid, tls, child_tid, 0];
        return ctx.life.fork(ctx, a);
    }
    validate(flags)?;
    if exit_signal != 0 {
        // A thread has no exit signal.
        return Err(Errno::EINVAL);
    }
    ctx.life.spawn_thread(
        ctx,
        Request {
            flags,
            stack: stack.wrapping_add(stack_size),
            parent_tid,
            tls,
            child_tid,
        },
    )
}

const MEMBARRIER_CMD_QUERY: u64 = 0;
const MEMBARRIER_CMD_GLOBAL: u64 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: u64 = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: u64 = 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: u64 = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: u64 = 16;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 64;
const SUPPORTED: u64 = MEMBARRIER_CMD_GLOBAL
    | MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;

/// membarrier(cmd, flags, cpu_id): every other vCPU of the process is kicked out of guest
/// code (a full barrier for it); SYNC_CORE also drops every vCPU's translated code — the
/// way to publish cross-modified code, since the engine ignores guest `IC IVAU`. Only this
/// process's threads are reached (GLOBAL included): other guest processes are separate
/// host processes.
pub fn membarrier(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    use std::sync::atomic::Ordering::SeqCst;
    let (cmd, flags) = (a[0], a[1]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let threads = &ctx.proc.threads;
    let registered = u64::from(threads.membarrier_registered.load(SeqCst));
    let need = |reg: u64| {
        if registered & reg == 0 {
            Err(Errno::EPERM)
        } else {
            Ok(())
        }
    };
    match cmd {
        MEMBARRIER_CMD_QUERY => return Ok(SUPPORTED),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            threads.membarrier_registered.fetch_or(cmd as u32, SeqCst);
            return Ok(0);
        }
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => {}
        MEMBARRIER_CMD_PRIVATE_EXPEDITED => need(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)?,
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            need(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)?;
            let all_code = Invalidate {
                tlb: false,
                code: Some((0, RAM_SIZE)),
            };
            ctx.vcpu.invalidate(all_code).map_err(|_| Errno::EINVAL)?;
            threads.broadcast(ctx.thread.tid, Some(all_code));
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    }
    threads.broadcast(ctx.thread.tid, None);
    Ok(0)
}
