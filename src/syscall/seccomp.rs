//! seccomp(2) and prctl(PR_SET_SECCOMP): strict mode and classic-BPF filters, run by
//! elfuse over the guest's own syscall numbers and `struct seccomp_data` (arch
//! AUDIT_ARCH_AARCH64, nr, the PC after the `SVC`, the six argument registers).
//!
//! - State is per thread (`ThreadState::seccomp`), as on Linux: new threads and fork
//!   children inherit it, execve keeps it. Filters form a chain (newest first); every one
//!   runs and the most restrictive action wins (the lowest action as a signed value; the
//!   newest among equals), as in Linux's `seccomp_run_filters`.
//! - Every syscall must reach the host while any filter or strict mode is in force: the
//!   first install sets the shim's SECCOMP attention bit for good, so the calls the EL1
//!   shim answers itself (getpid, getuid, urandom reads...) are forwarded and filtered
//!   too. The vDSO's clock reads are not syscalls on Linux and stay unfiltered: the vDSO's
//!   own fallback `SVC` for a clock the vDSO serves (which elfuse uses to anchor its
//!   clocks) is exempt. Without seccomp the fast paths are unchanged, and a forwarded
//!   call pays one relaxed load (the TSYNC generation) and one byte compare.
//! - Actions: KILL_PROCESS (the process dies of SIGSYS), KILL_THREAD (the thread exits;
//!   the process dies of SIGSYS when it was the last), TRAP (SIGSYS forced on the thread,
//!   si_code SYS_SECCOMP, si_call_addr, si_syscall, si_arch, si_errno = the action's data;
//!   the syscall is skipped and X0 keeps its first argument, as Linux's rollback), ERRNO
//!   (data, capped at 4095), TRACE (no tracer can attach: -ENOSYS, as Linux without one),
//!   LOG and ALLOW (run). Strict mode allows read, write, exit and rt_sigreturn; anything
//!   else kills the thread with SIGKILL.
//! - SECCOMP_FILTER_FLAG_NEW_LISTENER (user notification) is refused with EINVAL, and
//!   SECCOMP_GET_ACTION_AVAIL reports USER_NOTIF unavailable, SECCOMP_GET_NOTIF_SIZES is
//!   EINVAL: as a Linux before 5.0. A filter returning USER_NOTIF acts as Linux without a
//!   listener: -ENOSYS.
//! - Installing a filter needs no_new_privs (the host thread's, which prctl sets) or
//!   CAP_SYS_ADMIN (the host thread's effective set): EACCES otherwise.
//! - TSYNC: the other threads' filters must be ancestors of the new chain (else the
//!   offending tid, or ESRCH with TSYNC_ESRCH); each other thread takes the new chain (and
//!   the caller's no_new_privs) at its next syscall.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::bpf::{self, Insn};
use super::{Ctx, Stop, SysResult};
use crate::backend::SysReg;
use crate::errno::Errno;
use crate::signal::info::{SigInfo, SysInfo};
use crate::thread::seccomp::GEN;
pub use crate::thread::seccomp::{Filter, Seccomp, MODE_DISABLED, MODE_FILTER, MODE_STRICT};

const SIGSYS: u32 = 31;

const SET_MODE_STRICT: u32 = 0;
const SET_MODE_FILTER: u32 = 1;
const GET_ACTION_AVAIL: u32 = 2;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

/// AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// SIGSYS's si_code for a seccomp trap.
const SYS_SECCOMP: i32 = 1;
/// MAX_INSNS_PER_PATH: instructions (plus 4 per filter) all of a thread's filters may hold.
const MAX_INSNS_PER_PATH: usize = 32768;
const MAX_ERRNO: u32 = 4095;

const NR_READ: u64 = 63;
const NR_WRITE: u64 = 64;
const NR_EXIT: u64 = 93;
const NR_RT_SIGRETURN: u64 = 139;
const NR_CLOCK_GETTIME: u64 = 113;

/// What a thread was last given or installed, for TSYNC: its mode, chain and whether it
/// must set no_new_privs when it takes the chain.
struct Synced {
    mode: u8,
    chain: Option<Arc<Filter>>,
    nnp: bool,
}

static SYNCED: Mutex<BTreeMap<i32, Synced>> = Mutex::new(BTreeMap::new());

fn synced() -> std::sync::MutexGuard<'static, BTreeMap<i32, Synced>> {
    SYNCED.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the syscall layer does with a call after the filters ran.
pub enum Verdict {
    /// Run it.
    Run,
    /// Skip it; X0 gets this (or nothing, when the registers were set or the thread stops).
    Skip(Option<u64>),
}

/// Before every syscall: takes a TSYNC'd chain, then applies strict mode or the filters.
#[inline]
pub fn enter(ctx: &mut Ctx, nr: u64, args: &[u64; 6]) -> Verdict {
    let g = GEN.load(Ordering::Relaxed);
    if g != ctx.thread.seccomp.gen {
        adopt(ctx, g);
    }
    match ctx.thread.seccomp.mode {
        MODE_DISABLED => Verdict::Run,
        MODE_STRICT => match nr {
            NR_READ | NR_WRITE | NR_EXIT | NR_RT_SIGRETURN => Verdict::Run,
            _ => kill(ctx, crate::signal::SIGKILL, false),
        },
        _ => filter(ctx, nr, args),
    }
}

#[cold]
fn adopt(ctx: &mut Ctx, g: u64) {
    ctx.thread.seccomp.gen = g;
    let reg = synced();
    let Some(s) = reg.get(&ctx.thread.tid) else {
        return;
    };
    if s.mode != MODE_FILTER || is_ancestor(&s.chain, &ctx.thread.seccomp.chain) {
        return;
    }
    ctx.thread.seccomp.mode = MODE_FILTER;
    ctx.thread.seccomp.chain = s.chain.clone();
    if s.nnp {
        // SAFETY: an integer-only prctl on the calling thread.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        super::cred::set_touched(true);
    }
}

/// True if `old` is `new` or one of the filters `new` was installed over.
fn is_ancestor(old: &Option<Arc<Filter>>, new: &Option<Arc<Filter>>) -> bool {
    let Some(old) = old else {
        return true;
    };
    let mut f = new.as_ref();
    while let Some(fl) = f {
        if Arc::ptr_eq(fl, old) {
            return true;
        }
        f = fl.prev.as_ref();
    }
    false
}

fn filter(ctx: &mut Ctx, nr: u64, args: &[u64; 6]) -> Verdict {
    let ip = ctx.vcpu.sys_reg(SysReg::ElrEl1).unwrap_or(0);
    if nr == NR_CLOCK_GETTIME
        && ip == ctx.proc.vdso.fallback_ret
        && elfuse_vdso::vvar::slot_of(args[0] as i32).is_some()
    {
        // The vDSO's own clock read (see the module doc).
        return Verdict::Run;
    }
    let mut data = [0u32; 16];
    data[0] = nr as u32;
    data[1] = AUDIT_ARCH_AARCH64;
    data[2] = ip as u32;
    data[3] = (ip >> 32) as u32;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let ret = run_filters(ctx.thread.seccomp.chain.as_deref(), &data);
    let value = ret & RET_DATA;
    match ret & RET_ACTION_FULL {
        RET_ALLOW | RET_LOG => Verdict::Run,
        RET_ERRNO => Verdict::Skip(Some((-i64::from(value.min(MAX_ERRNO))) as u64)),
        RET_TRACE | RET_USER_NOTIF => Verdict::Skip(Some((-(Errno::ENOSYS.0 as i64)) as u64)),
        RET_TRAP => trap(ctx, nr, ip, value),
        RET_KILL_THREAD => kill(ctx, SIGSYS, false),
        _ => kill(ctx, SIGSYS, true),
    }
}

/// Every filter of the chain; the most restrictive result.
fn run_filters(mut f: Option<&Filter>, data: &[u32; 16]) -> u32 {
    let action = |r: u32| (r & RET_ACTION_FULL) as i32;
    let mut ret = RET_ALLOW;
    while let Some(fl) = f {
        let cur = bpf::run(&fl.prog, data);
        if action(cur) < action(ret) {
            ret = cur;
        }
        f = fl.prev.as_deref();
    }
    ret
}

/// Ends the thread (or the whole process) as Linux's seccomp kill: the last thread's
/// death is the process's, by `sig`.
fn kill(ctx: &mut Ctx, sig: u32, process: bool) -> Verdict {
    if ctx.proc.tracer.set.syscalls {
        ctx.proc.tracer.line(&format!(
            "[{}] +++ killed by seccomp (signal {sig}) +++",
            ctx.thread.tid
        ));
    }
    ctx.stop = Some(if process || ctx.proc.threads.count() <= 1 {
        Stop::Signal(sig)
    } else {
        Stop::ThreadExit(0)
    });
    Verdict::Skip(None)
}

/// SECCOMP_RET_TRAP: a forced SIGSYS (a blocked or ignored one kills, as Linux's
/// force_sig_seccomp), with the registers as they were at the `SVC`.
fn trap(ctx: &mut Ctx, nr: u64, ip: u64, data: u32) -> Verdict {
    let info = SigInfo {
        signo: SIGSYS,
        code: SYS_SECCOMP,
        addr: Some(ip),
        sys: Some(SysInfo {
            errno: data as i32,
            syscall: nr as i32,
            arch: AUDIT_ARCH_AARCH64,
        }),
        ..Default::default()
    };
    let Some((act, old_mask)) = ctx.proc.signals.fault(ctx.thread.tid, SIGSYS) else {
        return kill(ctx, SIGSYS, true);
    };
    ctx.thread.sigmask = crate::signal::handler_mask(old_mask, &act, SIGSYS);
    let tramp = ctx.proc.sigreturn_tramp();
    let alt = &mut ctx.thread.altstack;
    match crate::signal::frame::deliver(ctx.proc, ctx.vcpu, alt, &act, &info, old_mask, tramp) {
        Ok(true) => {
            ctx.regs_set = true;
            Verdict::Skip(None)
        }
        _ => kill(ctx, crate::signal::SIGSEGV, true),
    }
}

/// seccomp(op, flags, uargs).
pub fn seccomp(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (op, flags, uargs) = (a[0] as u32, a[1] as u32, a[2]);
    match op {
        SET_MODE_STRICT => {
            if flags != 0 || uargs != 0 {
                return Err(Errno::EINVAL);
            }
            set_strict(ctx)
        }
        SET_MODE_FILTER => set_filter(ctx, flags, uargs),
        GET_ACTION_AVAIL => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            let action: u32 = ctx.read_val(uargs)?;
            match action {
                RET_KILL_PROCESS | RET_KILL_THREAD | RET_TRAP | RET_ERRNO | RET_TRACE | RET_LOG
                | RET_ALLOW => Ok(0),
                _ => Err(Errno::EOPNOTSUPP),
            }
        }
        // SECCOMP_GET_NOTIF_SIZES and unknown operations (see the module doc).
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(PR_SET_SECCOMP, mode, filter).
pub fn prctl_set(ctx: &mut Ctx, mode: u64, prog: u64) -> SysResult {
    match mode {
        1 => set_strict(ctx),
        2 => set_filter(ctx, 0, prog),
        _ => Err(Errno::EINVAL),
    }
}

fn set_strict(ctx: &mut Ctx) -> SysResult {
    if ctx.thread.seccomp.mode == MODE_FILTER {
        return Err(Errno::EINVAL);
    }
    ctx.thread.seccomp.mode = MODE_STRICT;
    installed(ctx, false);
    Ok(0)
}

/// Publishes the calling thread's new state: the shim forwards every call from now on,
/// and TSYNC sees it.
fn installed(ctx: &Ctx, nnp: bool) {
    crate::guest::shimdata::ShimData::new(ctx.proc.ram.clone())
        .set_attention(elfuse_shim::data::ATTN_SECCOMP);
    let s = &ctx.thread.seccomp;
    synced().insert(
        ctx.thread.tid,
        Synced {
            mode: s.mode,
            chain: s.chain.clone(),
            nnp,
        },
    );
}

fn host_nnp() -> bool {
    // SAFETY: an integer-only prctl query.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

/// CAP_SYS_ADMIN in the host thread's effective set.
fn host_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    super::sysadm::host_capable(CAP_SYS_ADMIN)
}

fn set_filter(ctx: &mut Ctx, flags: u32, uargs: u64) -> SysResult {
    let known = FLAG_TSYNC
        | FLAG_LOG
        | FLAG_SPEC_ALLOW
        | FLAG_NEW_LISTENER
        | FLAG_TSYNC_ESRCH
        | FLAG_WAIT_KILLABLE_RECV;
    if flags & !known != 0 || flags & (FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV) != 0 {
        return Err(Errno::EINVAL);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    let fprog: [u64; 2] = ctx.read_val(uargs)?;
    let len = (fprog[0] & 0xffff) as usize;
    if len == 0 || len > bpf::MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    let nnp = host_nnp();
    if !nnp && !host_sys_admin() {
        return Err(Errno::EACCES);
    }
    let raw = ctx.read_bytes(fprog[1], len * 8)?;
    let prog: Box<[Insn]> = raw.chunks_exact(8).map(Insn::from_bytes).collect();
    bpf::check(&prog)?;
    let mut total = prog.len();
    let mut f = ctx.thread.seccomp.chain.as_deref();
    while let Some(fl) = f {
        total += fl.prog.len() + 4;
        f = fl.prev.as_deref();
    }
    if total > MAX_INSNS_PER_PATH {
        return Err(Errno::ENOMEM);
    }
    if ctx.thread.seccomp.mode == MODE_STRICT {
        return Err(Errno::EINVAL);
    }
    let new = Some(Arc::new(Filter {
        prog,
        prev: ctx.thread.seccomp.chain.clone(),
    }));
    if flags & FLAG_TSYNC != 0 {
        let mut reg = synced();
        let me = ctx.thread.tid;
        let others: Vec<i32> = ctx
            .proc
            .threads
            .tids()
            .into_iter()
            .filter(|&t| t != me)
            .collect();
        for &t in &others {
            if let Some(s) = reg.get(&t) {
                let ok = s.mode == MODE_DISABLED
                    || (s.mode == MODE_FILTER && is_ancestor(&s.chain, &new));
                if !ok {
                    return if flags & FLAG_TSYNC_ESRCH != 0 {
                        Err(Errno::ESRCH)
                    } else {
                        Ok(t as u64)
                    };
                }
            }
        }
        for t in others {
            reg.insert(
                t,
                Synced {
                    mode: MODE_FILTER,
                    chain: new.clone(),
                    nnp,
                },
            );
        }
        GEN.fetch_add(1, Ordering::SeqCst);
        // The caller is in sync with what it published.
        ctx.thread.seccomp.gen = GEN.load(Ordering::Relaxed);
    }
    ctx.thread.seccomp.mode = MODE_FILTER;
    ctx.thread.seccomp.chain = new;
    installed(ctx, nnp);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(ret: u32) -> Box<[Insn]> {
        vec![Insn {
            code: 6,
            jt: 0,
            jf: 0,
            k: ret,
        }]
        .into_boxed_slice()
    }

    #[test]
    fn most_restrictive_wins() {
        let a = Arc::new(Filter {
            prog: prog(RET_ERRNO | 5),
            prev: None,
        });
        let b = Arc::new(Filter {
            prog: prog(RET_ALLOW),
            prev: Some(a.clone()),
        });
        assert_eq!(run_filters(Some(&b), &[0; 16]), RET_ERRNO | 5);
        let c = Arc::new(Filter {
            prog: prog(RET_KILL_PROCESS),
            prev: Some(b.clone()),
        });
        assert_eq!(run_filters(Some(&c), &[0; 16]), RET_KILL_PROCESS);
        let d = Arc::new(Filter {
            prog: prog(RET_ERRNO | 7),
            prev: Some(b.clone()),
        });
        // Equal actions: the newest filter's data.
        assert_eq!(run_filters(Some(&d), &[0; 16]), RET_ERRNO | 7);
        assert!(is_ancestor(&Some(a.clone()), &Some(d.clone())));
        assert!(!is_ancestor(&Some(c), &Some(d)));
    }

    #[test]
    fn programs_round_trip() {
        let s = Seccomp {
            mode: MODE_FILTER,
            chain: Some(Arc::new(Filter {
                prog: prog(RET_TRAP),
                prev: Some(Arc::new(Filter {
                    prog: prog(RET_ALLOW),
                    prev: None,
                })),
            })),
            gen: 0,
        };
        let back = Seccomp::from_programs(MODE_FILTER, &s.programs()).unwrap();
        assert_eq!(back.programs(), s.programs());
    }
}
