//! futex, futex_waitv, and the futex work of a thread's exit (CLONE_CHILD_CLEARTID and
//! the robust list).
//!
//! Guest memory is host memory here (one memfd mapped into this process), so a guest
//! futex is the host futex on the same word: every operation is checked against the
//! guest's mappings (`Mm::check_user`), translated to the host address and passed to the
//! host kernel, which then also does WAKE_OP's atomic update and CMP_REQUEUE's compare.
//! Guest FUTEX_PRIVATE_FLAG is passed through (a shared futex on a MAP_SHARED mapping is
//! keyed by the memfd page, so it keeps working across processes sharing the memory).
//! `host` below is the only host-specific part: macOS has no futex syscall and will need
//! an emulated wait table keyed by guest address there.
//!
//! Blocking waits hold no lock. exit_group interrupts them with a host signal (EINTR, see
//! `thread`); the vCPU loop then sees the thread's killed flag. A guest signal interrupts
//! them the same way; the vCPU loop turns the EINTR into a restart or -EINTR
//! (`signal::restart`).

use super::{futex_pi, Ctx, SysResult, ThreadState};
use crate::errno::Errno;
use crate::process::Process;

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_LOCK_PI: u32 = 6;
const FUTEX_UNLOCK_PI: u32 = 7;
const FUTEX_TRYLOCK_PI: u32 = 8;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
const FUTEX_CMP_REQUEUE_PI: u32 = 12;
const FUTEX_LOCK_PI2: u32 = 13;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;

/// The host side: the Linux futex syscalls on host addresses.
pub(super) mod host {
    pub fn futex(
        uaddr: *mut u32,
        op: u32,
        val: u32,
        arg4: usize,
        uaddr2: *mut u32,
        val3: u32,
    ) -> i64 {
        // SAFETY: the kernel does every access to `uaddr`/`uaddr2` itself, atomically, and
        // fails with EFAULT on a bad address; callers pass guest-RAM futex words from `word`
        // (checked, aligned, inside the live RAM mapping) or null where the op ignores the
        // argument.
        unsafe { libc::syscall(libc::SYS_futex, uaddr, op, val, arg4, uaddr2, val3) }
    }

    pub fn waitv(
        waiters: *const u8,
        n: u32,
        flags: u32,
        timeout: *const libc::timespec,
        clock: i32,
    ) -> i64 {
        // SAFETY: as for `futex`: `waiters` is a host array of `n` futex_waitv entries naming
        // checked guest words, `timeout` null or a live timespec; the kernel reads them and
        // reports EFAULT itself.
        unsafe { libc::syscall(449, waiters, n, flags, timeout, clock) }
    }
}

/// The host address of an aligned guest futex word the guest may access.
pub(super) fn word(ctx: &Ctx, va: u64, write: bool) -> Result<*mut u32, Errno> {
    if !va.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    ctx.proc.mm.check_user(va, 4, write)?;
    Ok(ctx.proc.ram.ptr(va, 4).cast())
}

fn read_timespec(ctx: &Ctx, va: u64) -> Result<libc::timespec, Errno> {
    let [s, ns]: [i64; 2] = ctx.read_val(va)?;
    Ok(libc::timespec {
        tv_sec: s,
        tv_nsec: ns,
    })
}

fn ret(r: i64) -> SysResult {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}

/// futex(uaddr, op, val, timeout | val2, uaddr2, val3).
pub fn futex(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let op = a[1] as u32;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let (val, val3) = (a[2] as u32, a[5] as u32);
    if op & FUTEX_CLOCK_REALTIME != 0
        && !matches!(
            cmd,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(Errno::ENOSYS);
    }
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let uaddr = word(ctx, a[0], false)?;
            let ts = if a[3] != 0 {
                Some(read_timespec(ctx, a[3])?)
            } else {
                None
            };
            let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
            ret(host::futex(
                uaddr,
                op,
                val,
                tsp as usize,
                std::ptr::null_mut(),
                val3,
            ))
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let uaddr = word(ctx, a[0], false)?;
            ret(host::futex(uaddr, op, val, 0, std::ptr::null_mut(), val3))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP => {
            let uaddr = word(ctx, a[0], false)?;
            // WAKE_OP also writes the second word.
            let uaddr2 = word(ctx, a[4], cmd == FUTEX_WAKE_OP)?;
            ret(host::futex(
                uaddr,
                op,
                val,
                a[3] as u32 as usize,
                uaddr2,
                val3,
            ))
        }
        // The PI family: elfuse's own (see `futex_pi`). LOCK_PI's timeout is on
        // CLOCK_REALTIME, LOCK_PI2's and WAIT_REQUEUE_PI's on CLOCK_MONOTONIC unless
        // FUTEX_CLOCK_REALTIME; all absolute.
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let dl = if cmd == FUTEX_TRYLOCK_PI {
                futex_pi::Deadline::read(ctx, 0, false)?
            } else {
                futex_pi::Deadline::read(ctx, a[3], realtime || cmd == FUTEX_LOCK_PI)?
            };
            let uaddr = word(ctx, a[0], true)?;
            futex_pi::lock(ctx, a[0], uaddr, private, dl, cmd == FUTEX_TRYLOCK_PI)
        }
        FUTEX_UNLOCK_PI => {
            let uaddr = word(ctx, a[0], true)?;
            futex_pi::unlock(ctx, a[0], uaddr, private)
        }
        FUTEX_WAIT_REQUEUE_PI => {
            let dl = futex_pi::Deadline::read(ctx, a[3], realtime)?;
            let uaddr = word(ctx, a[0], false)?;
            let uaddr2 = word(ctx, a[4], true)?;
            futex_pi::wait_requeue(ctx, (a[0], uaddr), val, (a[4], uaddr2), private, dl)
        }
        FUTEX_CMP_REQUEUE_PI => {
            let uaddr = word(ctx, a[0], false)?;
            let uaddr2 = word(ctx, a[4], true)?;
            futex_pi::cmp_requeue(ctx, (a[0], uaddr), val, a[3] as i32, (a[4], uaddr2), val3)
        }
        // FUTEX_FD (gone from Linux) and unknown commands.
        _ => Err(Errno::ENOSYS),
    }
}

/// futex_waitv(waiters, nr, flags, timeout, clockid): the vector is copied with each
/// guest address replaced by its host address.
pub fn futex_waitv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const FUTEX_WAITV_MAX: u64 = 128;
    const FUTEX_32: u32 = 2;
    let n = a[1];
    if a[2] != 0 || n == 0 || n > FUTEX_WAITV_MAX || a[0] == 0 {
        return Err(Errno::EINVAL);
    }
    let mut raw = ctx.read_bytes(a[0], n as usize * 24)?;
    for e in raw.chunks_exact_mut(24) {
        let uaddr = u64::from_le_bytes(e[8..16].try_into().unwrap());
        let flags = u32::from_le_bytes(e[16..20].try_into().unwrap());
        let reserved = u32::from_le_bytes(e[20..24].try_into().unwrap());
        if reserved != 0 || flags & !(FUTEX_32 | FUTEX_PRIVATE_FLAG) != 0 || flags & FUTEX_32 == 0 {
            return Err(Errno::EINVAL);
        }
        let host = word(ctx, uaddr, false)? as u64;
        e[8..16].copy_from_slice(&host.to_le_bytes());
    }
    let ts = if a[3] != 0 {
        Some(read_timespec(ctx, a[3])?)
    } else {
        None
    };
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    ret(host::waitv(raw.as_ptr(), n as u32, 0, tsp, a[4] as i32))
}

/// A thread's exit (`exit`, not exit_group): the robust list as Linux walks it, then
/// CLONE_CHILD_CLEARTID (write 0, wake one waiter) — what pthread_join waits for.
pub fn thread_exit_cleanup(proc: &Process, t: &ThreadState) {
    thread_gone(proc, t);
    let va = t.clear_child_tid;
    if va != 0 && va.is_multiple_of(4) && proc.mm.check_user(va, 4, true).is_ok() {
        let p = proc.ram.ptr(va, 4).cast::<u32>();
        // SAFETY: an aligned, checked word of guest RAM; other vCPUs access it atomically.
        unsafe {
            (*p.cast::<std::sync::atomic::AtomicU32>())
                .store(0, std::sync::atomic::Ordering::SeqCst)
        };
        host::futex(p, FUTEX_WAKE, 1, 0, std::ptr::null_mut(), 0);
    }
}

/// What every ending thread does to futexes, `exit` or killed (exit_group, a fatal
/// signal, another thread's execve), as Linux's futex_exit_release: the robust list, then
/// the PI locks it still owns go to their waiters.
pub fn thread_gone(proc: &Process, t: &ThreadState) {
    if t.robust_list.0 != 0 {
        walk_robust_list(proc, t.robust_list.0, t.tid);
    }
    futex_pi::owner_exited(proc, t.tid);
}

fn read_u64(proc: &Process, va: u64) -> Option<u64> {
    proc.mm.check_user(va, 8, false).ok()?;
    let mut b = [0u8; 8];
    proc.ram.read(va, &mut b);
    Some(u64::from_le_bytes(b))
}

/// struct robust_list_head { list.next; futex_offset; list_op_pending }.
fn walk_robust_list(proc: &Process, head: u64, tid: i32) {
    const ROBUST_LIST_LIMIT: usize = 2048;
    let (Some(mut entry), Some(offset), Some(pending)) = (
        read_u64(proc, head),
        read_u64(proc, head + 8),
        read_u64(proc, head + 16),
    ) else {
        return;
    };
    // Bit 0 of an entry (and of list_op_pending) marks a PI lock.
    let (pending, pending_pi) = (pending & !1, pending & 1 != 0);
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry & !1 == head {
            break;
        }
        let next = read_u64(proc, entry & !1);
        if entry & !1 != pending {
            futex_death(proc, (entry & !1).wrapping_add(offset), tid, entry & 1 != 0);
        }
        match next {
            Some(n) => entry = n,
            None => break,
        }
    }
    if pending != 0 {
        futex_death(proc, pending.wrapping_add(offset), tid, pending_pi);
    }
}

/// Linux's handle_futex_death: a lock word owned by the dead thread gets OWNER_DIED
/// (keeping WAITERS), and a waiter is woken; a PI lock goes to a waiter (`futex_pi`).
fn futex_death(proc: &Process, va: u64, tid: i32, pi: bool) {
    if pi {
        return futex_pi::robust_death(proc, va, tid);
    }
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    if !va.is_multiple_of(4) || proc.mm.check_user(va, 4, true).is_err() {
        return;
    }
    let p = proc.ram.ptr(va, 4).cast::<u32>();
    // SAFETY: an aligned, checked word of guest RAM.
    let w = unsafe { &*p.cast::<AtomicU32>() };
    let mut cur = w.load(SeqCst);
    loop {
        if cur & FUTEX_TID_MASK != tid as u32 {
            return;
        }
        let new = (cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match w.compare_exchange(cur, new, SeqCst, SeqCst) {
            Ok(_) => break,
            Err(v) => cur = v,
        }
    }
    if cur & FUTEX_WAITERS != 0 {
        host::futex(p, FUTEX_WAKE, 1, 0, std::ptr::null_mut(), 0);
    }
}
