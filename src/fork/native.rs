//! The Linux fast path of fork: the host process forks itself from the vCPU thread.
//!
//! The child inherits the vCPU engine with its translated code, every host fd (so the
//! guest's fd table is valid as is: same numbers, same open file descriptions, dup
//! aliases intact), cwd, umask and rlimits, and needs no exec, no dynamic linking and no
//! engine start-up. What fork alone would get wrong is fixed before the child runs guest
//! code again:
//!
//! - RAM is a MAP_SHARED memfd, so after fork() parent and child would share it. The
//!   parent copies its populated extents into a new memfd *before* forking (guest
//!   paused, the same snapshot the spawn path sends) and the child maps that copy over
//!   its RAM at the same host address (`GuestRam::swap_backing`); MAP_SHARED file
//!   mappings are mapped again over it (`Mm::from_parts`).
//! - The child builds its own `Process` (pid, ppid, pending signals cleared) and
//!   `ThreadState`, and runs the vCPU loop again from inside this syscall with X0 = 0.
//!   That loop never returns into the parent's frames: its end is the process's exit
//!   (exit status, or death by the real host signal). Each generation of fork-from-a-
//!   child nests one more vCPU loop on the stack (a few KiB).
//! - Only the calling thread survives fork(): the other host threads (elfuse's main
//!   thread waiting for the vCPU, the fork-IPC actor) are gone, and nothing in the child
//!   waits for them. The caller holds no Process lock across fork().
//!
//! Used by default on Linux; `ELFUSE_FORK=spawn` selects the portable spawn path (the
//! only one where the engine or the VM cannot be forked, e.g. Hypervisor.framework).

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::{snapshot_ram, state::ChildThread, VFORK_DONE};
use crate::backend::{Reg, SysReg};
use crate::errno::Errno;
use crate::guest::mm::Mm;
use crate::process::{FsContext, Process};
use crate::signal::{KSigaction, SignalActor, SignalState, NSIG};
use crate::syscall::clone::CLONE_PARENT_SETTID;
use crate::syscall::{Ctx, Stop, SysResult, ThreadState};
use crate::trace::Tracer;

/// Whether forks use this path (Linux, unless `ELFUSE_FORK=spawn`).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        cfg!(target_os = "linux") && std::env::var_os("ELFUSE_FORK").is_none_or(|v| v != "spawn")
    })
}

/// What the child changes in the registers it inherits.
pub struct ChildRegs {
    pub sp: Option<u64>,
    pub tls: Option<u64>,
}

pub fn fork(
    ctx: &mut Ctx,
    flags: u64,
    ptid: u64,
    regs: ChildRegs,
    t: ChildThread,
    vfork: bool,
) -> SysResult {
    let t0 = std::time::Instant::now();
    let snap = snapshot_ram(&ctx.proc.ram).map_err(|e| {
        tracing::warn!("fork: RAM snapshot failed: {e}");
        Errno::ENOMEM
    })?;
    let done = if vfork {
        let mut p = [0i32; 2];
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Errno::last());
        }
        // SAFETY: fresh fds from pipe2.
        unsafe { Some((OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))) }
    } else {
        None
    };
    tracing::debug!(snapshot = ?t0.elapsed(), "fork: RAM copied");
    // Asked before fork(): the signal actor's thread does not survive into the child.
    let actions = ctx.proc.signals.actions();
    // The timer thread must not be inside a send (holding the signal state) at the fork.
    let timers_quiet = ctx.proc.timers.quiesce();
    // SAFETY: the child only continues this thread, touching state no other thread
    // holds locked (see the module doc).
    let pid = unsafe { libc::fork() };
    drop(timers_quiet);
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        let done = done.map(|(r, w)| {
            drop(r);
            w
        });
        child(ctx, snap, done, regs, t, actions);
    }
    drop(snap);
    tracing::debug!(pid, elapsed = ?t0.elapsed(), "fork: native child started");
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = ctx.write_val(ptid, &pid);
    }
    if let Some((r, w)) = done {
        drop(w);
        // End-of-file: the child exec'd or exited.
        let mut f = std::fs::File::from(r);
        let mut b = [0u8; 16];
        while matches!(f.read(&mut b), Ok(n) if n > 0) {}
    }
    Ok(pid as u64)
}

/// The child's new `Process`, inheriting from the parent's as fork does. The parent's
/// copy in this process is dead: its fd table and mappings are moved out, not shared,
/// so that a guest close() here really closes the host fd.
fn inherit(old: &Process, pid: i32, actions: [KSigaction; NSIG]) -> Result<Arc<Process>, Errno> {
    let mm = Mm::from_parts(old.ram.clone(), old.mm().take_parts())?;
    let fs = {
        let f = old.fs();
        FsContext {
            sysroot: f.sysroot.clone(),
            umask: f.umask,
        }
    };
    // Take the table out of the parent's dead copy (so a guest close here really closes
    // the host fd): snapshot, then empty the old table.
    let table = old.fds().fork_snapshot();
    old.fds().close_range(0, u32::MAX, false);
    let rlimits = *old.rlimits();
    let tracer = Tracer::new(
        old.tracer.set,
        old.tracer.sink_dup().map(std::fs::File::from),
    );
    let ppid = unsafe { libc::getppid() };
    let kids = super::ChildServices::start(&old.ram, &old.creds, pid, ppid, &tracer);
    Ok(Arc::new_cyclic(|weak| Process {
        threads: crate::thread::Threads::new(
            old.threads.vm.clone(),
            old.threads.el1,
            pid,
            weak.clone(),
        ),
        // A fork child has no timers (interval or POSIX).
        timers: crate::timers::Timers::new(weak.clone()),
        ram: old.ram.clone(),
        mm: Mutex::new(mm),
        fds: crate::boot::new_fd_actor(table, &kids.shim_data, &tracer),
        vdso: old.vdso.clone(),
        entropy: kids.entropy,
        fs: Mutex::new(fs),
        signals: SignalActor::spawn(
            weak.clone(),
            old.ram.clone(),
            SignalState::with_actions(actions),
            tracer.actor_sink(),
        ),
        rlimits: Mutex::new(rlimits),
        creds: old.creds,
        pid,
        ppid,
        exe: Mutex::new(old.exe()),
        tracer,
        sigreturn_tramp: old.sigreturn_tramp().into(),
    }))
}

/// The child: take the RAM copy, become a new process, run the guest until it ends.
fn child(
    ctx: &mut Ctx,
    snap: OwnedFd,
    done: Option<OwnedFd>,
    r: ChildRegs,
    t: ChildThread,
    actions: [KSigaction; NSIG],
) -> ! {
    // A vfork release inherited from our parent's own vfork is not ours to signal.
    let mut slot = VFORK_DONE.lock().unwrap_or_else(|p| p.into_inner());
    let inherited = std::mem::replace(&mut *slot, done);
    drop(slot);
    drop(inherited);
    let pid = unsafe { libc::getpid() };
    let fail = |what: &str| -> ! {
        eprintln!("elfuse: fork child: {what}");
        unsafe { libc::_exit(70) }
    };
    if let Err(e) = ctx.proc.ram.swap_backing(snap) {
        fail(&format!("RAM: {e}"));
    }
    let proc = match inherit(ctx.proc, pid, actions) {
        Ok(p) => p,
        Err(e) => fail(&format!("mappings: {e:?}")),
    };
    crate::hostsig::watch(&proc);
    if t.set_child_tid != 0 && proc.mm().check_user(t.set_child_tid, 4, true).is_ok() {
        proc.ram.write(t.set_child_tid, &pid.to_le_bytes());
    }
    let mut thread = ThreadState {
        tid: pid,
        sigmask: t.sigmask,
        altstack: t.altstack,
        comm: t.comm,
        dumpable: t.dumpable,
        rseq: t.rseq,
        clear_child_tid: t.clear_child_tid,
        ..Default::default()
    };
    let vcpu = &mut *ctx.vcpu;
    let set = (|| {
        vcpu.set_reg(Reg::X(0), 0)?;
        if let Some(sp) = r.sp {
            vcpu.set_sys_reg(SysReg::SpEl0, sp)?;
        }
        if let Some(tls) = r.tls {
            vcpu.set_sys_reg(SysReg::TpidrEl0, tls)?;
        }
        vcpu.set_sys_reg(SysReg::ContextidrEl1, pid as u64)
    })();
    if let Err(e) = set {
        fail(&e.0);
    }
    let stop = crate::thread::run_as_leader(&proc, vcpu, &mut thread);
    super::vfork_release();
    match stop {
        Ok(Stop::Exit(code) | Stop::ThreadExit(code)) => unsafe { libc::_exit(code & 0xff) },
        Ok(Stop::Signal(sig)) => super::die_of_signal(sig),
        Err(e) => fail(&format!("internal error: {e}")),
    }
}
