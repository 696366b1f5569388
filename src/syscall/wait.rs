//! wait4 and waitid. A guest's children are host processes (`elfuse --fork-child`) whose
//! host pids are their guest pids, so the host's own wait4/waitid answer for them; the
//! status word, `struct rusage` and the SIGCHLD `siginfo_t` have the same layout on
//! x86_64 and AArch64 Linux. A child killed by guest signal N dies of host signal N
//! (`signal::hostact::die_of_signal`), so WIFSIGNALED/WTERMSIG come out right; a stopped or
//! continued child is a host process stopped or continued by the kernel (see `jobctl`),
//! so WUNTRACED/WCONTINUED/WNOWAIT are the host's too. SIGCHLD reaches the parent guest
//! through `hostsig`.

use super::clone_proc::{self, Plan, Sel};
use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2; // WSTOPPED for waitid
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

const CLD_EXITED: i32 = 1;
const CLD_DUMPED: i32 = 3;

const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
const P_PIDFD: u64 = 3;

/// sizeof(struct rusage) and sizeof(siginfo_t) on 64-bit Linux.
const RUSAGE_SIZE: usize = 144;
const SIGINFO_SIZE: usize = 128;

/// A host EINTR ends the wait only if a guest signal is now deliverable to this thread
/// (the vCPU loop then turns ERESTARTSYS into EINTR or a restart, per SA_RESTART);
/// otherwise it was the wake signal for something else, and the wait goes on (the
/// signal actor interrupts the wait again until a signal it chose this thread for is
/// taken).
fn interrupted(ctx: &Ctx) -> Result<(), Errno> {
    if ctx.proc.signals.deliverable(ctx.thread.tid) != 0 {
        return Err(Errno::ERESTARTSYS);
    }
    Ok(())
}

fn write_rusage(ctx: &Ctx, va: u64, ru: &libc::rusage) -> Result<(), Errno> {
    if va == 0 {
        return Ok(());
    }
    // SAFETY: struct rusage is RUSAGE_SIZE bytes of plain data.
    let b = unsafe { std::slice::from_raw_parts((ru as *const libc::rusage).cast(), RUSAGE_SIZE) };
    ctx.write_bytes(va, b)
}

pub fn wait4(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // The options are an int (__WCLONE is its sign bit).
    let (pid, status_va, options, ru_va) = (a[0] as i32, a[1], a[2] as u32 as u64, a[3]);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let sel = match pid {
        -1 => Sel::Any,
        0 => Sel::Pgid(nix::unistd::getpgrp().as_raw()),
        p if p < 0 => Sel::Pgid(-p),
        p => Sel::Pid(p),
    };
    let mut status = 0i32;
    // SAFETY: struct rusage is integers and timevals, valid zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut host_wait4 = |pid: i32, options: u64| loop {
        // SAFETY: wait4 writes the status and one rusage into the locals `status` and `ru`.
        let r = unsafe { libc::wait4(pid, &mut status, options as i32, &mut ru) };
        if r < 0 && Errno::last() == Errno::EINTR {
            interrupted(ctx)?;
            continue;
        }
        break host_ret(r as i64);
    };
    let r = loop {
        match clone_proc::plan(ctx, sel, options) {
            Plan::Host(o) => break host_wait4(pid, o)?,
            Plan::None => return Err(Errno::ECHILD),
            Plan::Each(pids, o) => {
                let got = clone_proc::round(&pids, |p| {
                    host_wait4(p, o | WNOHANG).map(|r| (r != 0).then_some(r))
                })?;
                match got {
                    Some(r) => break r,
                    None if options & WNOHANG != 0 => break 0,
                    None => clone_proc::nap(ctx)?,
                }
            }
        }
    };
    if r != 0 {
        crate::signal::hostsig::flush();
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            clone_proc::reaped(ctx, r as i32, 0);
        }
        if status_va != 0 {
            ctx.write_val(status_va, &status)?;
        }
        write_rusage(ctx, ru_va, &ru)?;
    }
    Ok(r)
}

pub fn waitid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (idtype, id, info_va, options, ru_va) = (a[0], a[1], a[2], a[3] as u32 as u64, a[4]);
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WUNTRACED | WEXITED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    // Keeps a pidfd's description alive for the host call.
    let mut _pidfd = None;
    let host_id = match idtype {
        P_ALL => 0,
        P_PID | P_PGID => {
            if (id as i32) < 0 || (idtype == P_PID && id as i32 == 0) {
                return Err(Errno::EINVAL);
            }
            id as i32 as libc::id_t
        }
        P_PIDFD => {
            let f = ctx.file(id)?;
            let raw = f.raw();
            _pidfd = Some(f);
            raw as libc::id_t
        }
        _ => return Err(Errno::EINVAL),
    };
    let sel = match idtype {
        P_PID => Sel::Pid(id as i32),
        P_PGID if id as i32 == 0 => Sel::Pgid(nix::unistd::getpgrp().as_raw()),
        P_PGID => Sel::Pgid(id as i32),
        // A pidfd names one process: its class is the host's to check (all SIGCHLD).
        P_PIDFD => Sel::Pid(0),
        _ => Sel::Any,
    };
    let mut info = [0u8; SIGINFO_SIZE];
    // SAFETY: struct rusage is integers and timevals, valid zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut host_waitid = |idtype: u64, host_id: libc::id_t, options: u64| loop {
        // SAFETY: waitid writes a siginfo into `info` (SIGINFO_SIZE = 128 bytes, the kernel's
        // size) and one rusage into `ru`, both locals.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                idtype as libc::c_long,
                host_id as libc::c_long,
                info.as_mut_ptr(),
                options as libc::c_long,
                &mut ru as *mut libc::rusage,
            )
        };
        if r < 0 && Errno::last() == Errno::EINTR {
            interrupted(ctx)?;
            continue;
        }
        host_ret(r)?;
        // si_pid: 0 when WNOHANG found nothing.
        break Ok::<i32, Errno>(i32::from_ne_bytes(info[16..20].try_into().unwrap()));
    };
    let got = loop {
        let plan = match (idtype, sel) {
            (P_PIDFD, _) => Plan::Host(options & !WCLONE | WALL),
            _ => clone_proc::plan(ctx, sel, options),
        };
        match plan {
            Plan::Host(o) => break host_waitid(idtype, host_id, o)?,
            Plan::None => return Err(Errno::ECHILD),
            Plan::Each(pids, o) => {
                let got = clone_proc::round(&pids, |p| {
                    host_waitid(P_PID, p as libc::id_t, o | WNOHANG).map(|r| (r != 0).then_some(r))
                })?;
                match got {
                    Some(r) => break r,
                    None if options & WNOHANG != 0 => {
                        info = [0u8; SIGINFO_SIZE];
                        break 0;
                    }
                    None => clone_proc::nap(ctx)?,
                }
            }
        }
    };
    crate::signal::hostsig::flush();
    let code = i32::from_ne_bytes(info[8..12].try_into().unwrap());
    if got != 0 && (CLD_EXITED..=CLD_DUMPED).contains(&code) {
        clone_proc::reaped(ctx, got, options);
    }
    if info_va != 0 {
        ctx.write_bytes(info_va, &info)?;
    }
    write_rusage(ctx, ru_va, &ru)?;
    Ok(0)
}
