//! wait4 and waitid. A guest's children are host processes (`elfuse --fork-child`) whose
//! host pids are their guest pids, so the host's own wait4/waitid answer for them; the
//! status word, `struct rusage` and the SIGCHLD `siginfo_t` have the same layout on
//! x86_64 and AArch64 Linux. A child killed by guest signal N dies of host signal N
//! (`signal::hostsig::die_of_signal`), so WIFSIGNALED/WTERMSIG come out right; a stopped or
//! continued child is a host process stopped or continued by the kernel (see `jobctl`),
//! so WUNTRACED/WCONTINUED/WNOWAIT are the host's too. SIGCHLD reaches the parent guest
//! through `hostsig`.

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
    let (pid, status_va, options, ru_va) = (a[0] as i32, a[1], a[2], a[3]);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut status = 0i32;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        let r = unsafe { libc::wait4(pid, &mut status, options as i32, &mut ru) };
        if r < 0 && Errno::last() == Errno::EINTR {
            interrupted(ctx)?;
            continue;
        }
        break host_ret(r as i64)?;
    };
    if r != 0 {
        crate::signal::hostsig::flush();
        if status_va != 0 {
            ctx.write_val(status_va, &status)?;
        }
        write_rusage(ctx, ru_va, &ru)?;
    }
    Ok(r)
}

pub fn waitid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (idtype, id, info_va, options, ru_va) = (a[0], a[1], a[2], a[3], a[4]);
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
    let mut info = [0u8; SIGINFO_SIZE];
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
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
        break;
    }
    crate::signal::hostsig::flush();
    if info_va != 0 {
        ctx.write_bytes(info_va, &info)?;
    }
    write_rusage(ctx, ru_va, &ru)?;
    Ok(0)
}
