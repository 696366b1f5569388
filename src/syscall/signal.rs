//! The signal calls: kill, tkill, tgkill, rt_sigaction, rt_sigprocmask, rt_sigpending,
//! rt_sigreturn, rt_sigsuspend, rt_sigtimedwait, rt_sigqueueinfo, rt_tgsigqueueinfo;
//! and [`with_sigmask`], the temporary mask of ppoll, pselect6 and epoll_pwait.
//!
//! All state is the signal actor's (`crate::signal`); `ThreadState::sigmask` is the
//! thread's copy of its mask, updated from every reply that changes it.

use std::time::{Duration, Instant};

use super::{host_ret, Ctx, Stop, SysResult};
use crate::errno::Errno;
use crate::signal::frame;
use crate::signal::info::{SI_TKILL, SI_USER};
use crate::signal::state::MaskOp;
use crate::signal::wait::{wait_for_signal, Woke};
use crate::signal::{KSigaction, SigInfo, Target, NSIG, SIGKILL, SIGSEGV, SIGSTOP, UNBLOCKABLE};

fn valid_sig(sig: u64) -> Result<u32, Errno> {
    if (1..=NSIG as u64).contains(&sig) {
        Ok(sig as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

/// Sends `sig` (0 = existence check) to this process or one of its threads, from itself.
fn raise(ctx: &Ctx, target: Target, sig: u64, code: i32) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    let signo = valid_sig(sig)?;
    let info = SigInfo {
        signo,
        code,
        pid: ctx.proc.pid,
        uid: super::cred::current().uid,
        ..Default::default()
    };
    ctx.proc.signals.send(target, info)?;
    Ok(0)
}

/// Changes the calling thread's mask (in the actor and in its copy); returns the old one.
fn set_mask(ctx: &mut Ctx, op: MaskOp) -> u64 {
    let old = ctx.proc.signals.set_mask(ctx.thread.tid, op);
    ctx.thread.sigmask = match op {
        MaskOp::Block(s) => old | s,
        MaskOp::Unblock(s) => old & !s,
        MaskOp::Set(s) => s,
    } & !UNBLOCKABLE;
    old
}

pub fn kill(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid == ctx.proc.pid {
        return raise(ctx, Target::Process, a[1], SI_USER);
    }
    if a[1] > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if pid <= 0 {
        // A process group (0: the caller's) or every process (-1): see `killgrp`.
        return super::killgrp::kill_many(pid, a[1] as i32, || {
            raise(ctx, Target::Process, a[1], SI_USER)
        });
    }
    // Another process (a child is a host process: guest pids are host pids) or another
    // process group: through the host. Signal numbers agree between x86_64 and AArch64.
    // SAFETY: no pointers; the raw number is kept (not nix's Signal) because real-time
    // signals and invalid numbers must reach the host as the guest gave them.
    host_ret(unsafe { libc::kill(pid, a[1] as i32) } as i64)?;
    Ok(0)
}

/// Signals thread `tid` of this process: it is pending for that thread only, and that
/// thread runs the handler.
fn signal_thread(ctx: &Ctx, tid: i32, sig: u64) -> SysResult {
    if tid != ctx.thread.tid && ctx.proc.threads.get(tid).is_none() {
        return Err(Errno::ESRCH);
    }
    raise(ctx, Target::Thread(tid), sig, SI_TKILL)
}

pub fn tkill(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let tid = a[0] as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tid != ctx.thread.tid && ctx.proc.threads.get(tid).is_none() {
        // A thread of another process: its thread group is the host's.
        let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Tgid:"))
                    .and_then(|v| v.trim().parse::<i32>().ok())
            })
            .ok_or(Errno::ESRCH)?;
        if tgid != ctx.proc.pid {
            return to_other_group(ctx, tgid, tid, a[1]);
        }
    }
    signal_thread(ctx, tid, a[1])
}

/// tgkill/tkill of a thread of another thread group (`sigremote`).
fn to_other_group(ctx: &Ctx, tgid: i32, tid: i32, sig: u64) -> SysResult {
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    super::sigremote::send(tgid, tid, sig as i32, (SI_TKILL, ctx.proc.pid, 0), None)
}

pub fn tgkill(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 || a[1] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    if a[0] as i32 != ctx.proc.pid {
        return to_other_group(ctx, a[0] as i32, a[1] as i32, a[2]);
    }
    signal_thread(ctx, a[1] as i32, a[2])
}

pub fn rt_sigaction(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let sig = valid_sig(a[0])?;
    let new: Option<KSigaction> = if a[1] != 0 {
        let v: [u64; 4] = ctx.read_val(a[1])?;
        Some(KSigaction {
            handler: v[0],
            flags: v[1],
            restorer: v[2],
            mask: v[3],
        })
    } else {
        None
    };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = ctx.proc.signals.set_action(sig, new);
    if let (Some(n), crate::signal::SIGCHLD) = (new, sig) {
        crate::signal::hostact::mirror_sigchld(&n);
    }
    if a[2] != 0 {
        ctx.write_val(a[2], &[old.handler, old.flags, old.restorer, old.mask])?;
    }
    Ok(0)
}

pub fn rt_sigprocmask(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let op = if a[1] != 0 {
        let set: u64 = ctx.read_val(a[1])?;
        Some(match a[0] {
            SIG_BLOCK => MaskOp::Block(set),
            SIG_UNBLOCK => MaskOp::Unblock(set),
            SIG_SETMASK => MaskOp::Set(set),
            _ => return Err(Errno::EINVAL),
        })
    } else {
        None
    };
    let old = match op {
        Some(op) => set_mask(ctx, op),
        None => ctx.thread.sigmask,
    };
    if a[2] != 0 {
        ctx.write_val(a[2], &old)?;
    }
    Ok(0)
}

pub fn rt_sigpending(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let p = ctx.proc.signals.pending(ctx.thread.tid);
    ctx.write_val(a[0], &p)?;
    Ok(0)
}

pub fn rt_sigreturn(ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    ctx.regs_set = true;
    match frame::sigreturn(ctx.proc, ctx.vcpu, &mut ctx.thread.altstack) {
        Ok(Some(mask)) => {
            set_mask(ctx, MaskOp::Set(mask));
            Ok(0)
        }
        // A corrupt frame: Linux sends SIGSEGV.
        Ok(None) | Err(_) => {
            ctx.stop = Some(Stop::Signal(SIGSEGV));
            Ok(0)
        }
    }
}

/// Installs a temporary mask for the duration of a call (Linux's set_user_sigmask): the
/// old one is restored when the call returns, except when a signal interrupted it: then
/// the signals it let through are delivered first, and the vCPU loop restores it
/// (`ThreadState::saved_mask`). A signal already deliverable under it ends the call at
/// once (ERESTARTNOHAND: EINTR if a handler runs).
pub fn with_sigmask(
    ctx: &mut Ctx,
    mask: Option<u64>,
    call: impl FnOnce(&mut Ctx) -> SysResult,
) -> SysResult {
    let Some(m) = mask else {
        return call(ctx);
    };
    let old = set_mask(ctx, MaskOp::Set(m));
    let r = if ctx.proc.signals.deliverable(ctx.thread.tid) != 0 {
        Err(Errno::ERESTARTNOHAND)
    } else {
        call(ctx)
    };
    match r {
        Err(Errno::EINTR | Errno::ERESTARTNOHAND) => ctx.thread.saved_mask = Some(old),
        _ => {
            set_mask(ctx, MaskOp::Set(old));
        }
    }
    r
}

/// Reads a syscall's optional sigset argument (`va`, `size` must be 8).
pub fn read_sigmask(ctx: &Ctx, va: u64, size: u64) -> Result<Option<u64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(ctx.read_val(va)?))
}

/// rt_sigsuspend: waits with a temporary mask until a signal is acted upon; always -EINTR
/// to the guest (ERESTARTNOHAND), the handler running with the old mask restored after.
pub fn rt_sigsuspend(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = ctx.read_val(a[0])?;
    let old = set_mask(ctx, MaskOp::Set(m));
    ctx.thread.saved_mask = Some(old);
    wait_for_signal(ctx.proc, ctx.thread.tid, None);
    Err(Errno::ERESTARTNOHAND)
}

/// rt_sigtimedwait: takes a signal of the set pending for the thread or the process
/// (blocked or not: the caller normally blocks them), waiting up to the timeout.
pub fn rt_sigtimedwait(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let set = ctx.read_val::<u64>(a[0])? & !UNBLOCKABLE;
    let deadline = if a[2] != 0 {
        let t = super::time::read_ts(ctx, a[2])?;
        Some(Instant::now() + Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    } else {
        None
    };
    let tid = ctx.thread.tid;
    let mut got = ctx.proc.signals.dequeue(tid, set);
    let mut woke = Woke::Signal;
    if got.is_none() {
        // Waiting, the set is unblocked in the actor (Linux's real_blocked), so that a
        // process-directed signal of the set may choose this thread and wake it.
        let old = set_mask(ctx, MaskOp::Unblock(set));
        woke = wait_for_signal(ctx.proc, tid, deadline);
        set_mask(ctx, MaskOp::Set(old));
        got = ctx.proc.signals.dequeue(tid, set);
    }
    let Some(info) = got else {
        return Err(match woke {
            Woke::Timeout => Errno::EAGAIN,
            _ => Errno::EINTR,
        });
    };
    if a[1] != 0 {
        ctx.write_bytes(a[1], &info.bytes())?;
    }
    Ok(info.signo.into())
}

/// The siginfo a guest passes to rt_(tg)sigqueueinfo: code, pid, uid and value are kept.
fn queued_info(ctx: &Ctx, sig: u32, va: u64) -> Result<SigInfo, Errno> {
    let raw = ctx.read_bytes(va, 128)?;
    let word = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    Ok(SigInfo {
        signo: sig,
        code: word(8) as i32,
        pid: word(16) as i32,
        uid: word(20),
        value: u64::from_le_bytes(raw[24..32].try_into().unwrap()),
        ..Default::default()
    })
}

/// Linux refuses a forged kernel si_code (>= 0, or SI_TKILL) unless the caller signals
/// itself (its own tid).
fn check_code(ctx: &Ctx, info: &SigInfo, target_tid: i32) -> Result<(), Errno> {
    if (info.code >= 0 || info.code == SI_TKILL) && target_tid != ctx.thread.tid {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// Queues `info` as signal `sig` (0: only the checks) to this process.
fn queue_to_self(ctx: &Ctx, sig: u64, info: SigInfo) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    let info = SigInfo {
        signo: valid_sig(sig)?,
        ..info
    };
    ctx.proc.signals.send(Target::Process, info)?;
    Ok(0)
}

/// rt_sigqueueinfo(pid, sig, info): sigqueue(3).
pub fn rt_sigqueueinfo(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let info = queued_info(ctx, 0, a[2])?;
    check_code(ctx, &info, pid)?;
    if pid != ctx.proc.pid {
        // Another process: through the host (which applies the same checks).
        let raw = ctx.read_bytes(a[2], 128)?;
        // SAFETY: `raw` holds the 128 bytes of a siginfo the call reads; the other arguments
        // are integers.
        let r = unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, a[1] as i32, raw.as_ptr()) };
        return host_ret(r);
    }
    queue_to_self(ctx, a[1], info)
}

/// rt_tgsigqueueinfo(tgid, tid, sig, info): pthread_sigqueue(3).
pub fn rt_tgsigqueueinfo(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = queued_info(ctx, 0, a[3])?;
    check_code(ctx, &info, tid)?;
    if tgid != ctx.proc.pid {
        if a[2] > NSIG as u64 {
            return Err(Errno::EINVAL);
        }
        let raw = ctx.read_bytes(a[3], 128)?;
        let orig = (info.code, info.pid, info.value);
        return super::sigremote::send(tgid, tid, a[2] as i32, orig, Some(&raw));
    }
    if tid != ctx.thread.tid && ctx.proc.threads.get(tid).is_none() {
        return Err(Errno::ESRCH);
    }
    if a[2] == 0 {
        return Ok(0);
    }
    let info = SigInfo {
        signo: valid_sig(a[2])?,
        ..info
    };
    ctx.proc.signals.send(Target::Thread(tid), info)?;
    Ok(0)
}

/// pidfd_send_signal(pidfd, sig, info, flags): a pidfd of this process (pidfd_open of
/// the guest's own pid) signals it like kill; a pidfd of another process (inherited, or
/// sent over a socket) goes to the host.
pub fn pidfd_send_signal(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[3] != 0 {
        return Err(Errno::EINVAL);
    }
    let f = ctx.file(a[0])?;
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.raw()))
        .map_err(|_| Errno::EBADF)?;
    let pid = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or(Errno::EBADF)?;
    if pid != nix::unistd::getpid().as_raw() {
        let info = if a[2] != 0 {
            ctx.read_bytes(a[2], 128)?
        } else {
            Vec::new()
        };
        let ip = if a[2] != 0 {
            info.as_ptr()
        } else {
            std::ptr::null()
        };
        // SAFETY: `ip` is null or points at `info`, 128 bytes of siginfo alive across the
        // call; `f` keeps the pidfd open.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, f.raw(), a[1] as i32, ip, 0) };
        return host_ret(r);
    }
    if a[2] == 0 {
        return raise(ctx, Target::Process, a[1], SI_USER);
    }
    let info = queued_info(ctx, 0, a[2])?;
    check_code(ctx, &info, ctx.proc.pid)?;
    queue_to_self(ctx, a[1], info)
}
