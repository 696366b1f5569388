//! The Linux fast path of fork: the host process forks itself from the vCPU thread.
//!
//! The child inherits the vCPU engine with its translated code, every host fd (so the
//! guest's fd table is valid as is: same numbers, same open file descriptions, dup
//! aliases intact), cwd, umask and rlimits, and needs no exec, no dynamic linking and no
//! engine start-up. What fork alone would get wrong is fixed before the child runs guest
//! code again:
//!
//! - RAM: with native forks, guest RAM is private anonymous memory
//!   (`fork::new_guest_ram`), so fork() itself gives the child a copy-on-write copy and
//!   MAP_SHARED file overlays stay shared, as on Linux. If RAM is a MAP_SHARED memfd
//!   (the host refused the private mapping), the parent copies its populated extents
//!   into a new memfd first and the child maps that copy over its RAM at the same host
//!   address (`GuestRam::swap_backing`), mapping the MAP_SHARED files again over it.
//! - The child builds its own `Process` (pid, ppid, pending signals cleared) and
//!   `ThreadState`, and runs the vCPU loop again from inside this syscall with X0 = 0.
//!   That loop never returns into the parent's frames: its end is the process's exit
//!   (exit status, or death by the real host signal). Each generation of fork-from-a-
//!   child nests one more vCPU loop on the stack (a few KiB).
//! - Only the calling thread survives fork(): the other host threads (elfuse's main
//!   thread, other vCPUs, actor threads) are gone, and nothing in the child waits for
//!   them. Any lock one of them held at fork() stays held in the child, so everything
//!   the child inherits is captured by the parent just before fork() ([`Inherited`]):
//!   other vCPUs paused (`crate::thread::pause`), the fd table snapshotted through its actor, the
//!   rest copied out, and the mm lock held across fork() (no VMA or page-table edit in
//!   flight). The child never locks or calls the parent's `Process`; it builds its own
//!   (`fork::fds::adopt` for the fd table).
//!
//! Used by default on Linux; `ELFUSE_FORK=spawn` selects the portable spawn path (the
//! only one where the engine or the VM cannot be forked, e.g. Hypervisor.framework).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use elfuse_actors::fdtable::FdTable;

use super::{snapshot_ram, state::ChildThread};
use crate::backend::{CodeLog, Reg, SysReg};
use crate::errno::Errno;
use crate::guest::mm::Mm;
use crate::guest::shimdata::ShimData;
use crate::process::{FsContext, Process, ProcessInit};
use crate::process::{Rlimit, RLIM_NLIMITS};
use crate::signal::state::SignalState;
use crate::signal::{KSigaction, NSIG};
use crate::syscall::clone::CLONE_PARENT_SETTID;
use crate::syscall::{Ctx, Stop, SysResult, ThreadState};
use crate::thread::Paused;
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

/// What the child inherits, captured by the parent just before fork() (see the module
/// doc).
struct Inherited<'a> {
    /// Held across fork(): in the child it is ours, whoever held it in the parent.
    mm: crate::guest::mmlock::MmGuard<'a>,
    fds: FdTable,
    actions: [KSigaction; NSIG],
    fs: FsContext,
    rlimits: [Rlimit; RLIM_NLIMITS],
    exe: (Vec<u8>, PathBuf),
    sink: Option<OwnedFd>,
    /// Where the child reports the code it translates (`fork::warm`).
    code_log: Option<Arc<CodeLog>>,
    /// Whether the parent gave the child its random ring (held its lock across fork()).
    ring_given: bool,
}

impl<'a> Inherited<'a> {
    /// Everything but the dispositions, which are read from the signal actor held still
    /// until fork() (`fork`).
    fn capture(p: &'a Process, t: &ChildThread, code_log: Option<Arc<CodeLog>>) -> Inherited<'a> {
        let fds = t.own.table(p).fork_snapshot();
        let fs = t.own.fs_copy(p);
        let rlimits = *p.rlimits();
        Inherited {
            fds,
            actions: [KSigaction::default(); NSIG],
            fs,
            rlimits,
            exe: p.exe(),
            sink: p.tracer.sink_dup(),
            mm: p.mm(),
            code_log,
            ring_given: false,
        }
    }
}

/// Forks the host process. `paused`: the other vCPUs, kept out of guest code until the
/// child exists.
pub fn fork(
    ctx: &mut Ctx,
    paused: Paused<'_>,
    flags: u64,
    ptid: u64,
    regs: ChildRegs,
    t: ChildThread,
    vfork: bool,
) -> SysResult {
    let t0 = std::time::Instant::now();
    let code_log = super::warm::before_fork(ctx.proc, ctx.vcpu);
    let done = if vfork {
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
    } else {
        None
    };
    let proc = ctx.proc;
    // Neither the host-signal watcher nor the signal actor (its timer tick included) may
    // be in the middle of a change at the fork (state some thread the child lacks was
    // changing would stay half-changed there). Order: the hostsig guard, then the
    // capture (an fd-actor message, the mm lock), then the signal actor held still; no
    // signal handler takes a lock or sends a message, so nothing waits the other way.
    // The peer channel's thread, likewise (before the hostsig guard: it takes none).
    let peer_quiet = crate::syscall::procpeer::fork_guard();
    let hostsig_quiet = crate::signal::hostsig::fork_guard();
    let mut inh = Inherited::capture(proc, &t, code_log);
    let mut signals_quiet = proc.signals.hold();
    inh.actions = signals_quiet.actions();
    if t.clear_sighand {
        crate::syscall::clone_proc::clear_sighand(&mut inh.actions);
    }
    // Private RAM is copied by fork() itself; a memfd needs a snapshot first.
    let snap = if proc.ram.is_private() {
        None
    } else {
        Some(snapshot_ram(&proc.ram).map_err(|e| {
            tracing::warn!("fork: RAM snapshot failed: {e}");
            Errno::ENOMEM
        })?)
    };
    // The shim's random ring goes to the child, unless a vCPU paused in the shim holds
    // its lock (then the child throws the parent's bytes away and refills).
    let ring = ShimData::new(proc.ram.clone());
    inh.ring_given = ring.try_lock_ring();
    // SAFETY: the child only continues this thread and touches nothing another thread
    // may have held locked (see the module doc).
    let pid = unsafe { libc::fork() };
    if pid > 0 {
        // Known before the host-signal watcher may report the child's death.
        proc.clone_kids
            .record(pid, flags & crate::syscall::clone::CSIGNAL);
    }
    drop(signals_quiet);
    drop(hostsig_quiet);
    drop(peer_quiet);
    if pid == 0 {
        let done = done.map(|(r, w)| {
            drop(r);
            w
        });
        child(ctx, inh, snap, done, regs, t);
    }
    let err = Errno::last();
    if inh.ring_given {
        ring.give_away_and_unlock();
    }
    drop(inh);
    drop(paused);
    drop(snap);
    if pid < 0 {
        return Err(err);
    }
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

/// The child's new `Process`, from what the parent captured: nothing of the parent's
/// `Process` is locked or called (only its immutable parts are read).
fn inherit(
    old: &Process,
    mut inh: Inherited<'_>,
    pid: i32,
    vfork_done: Option<OwnedFd>,
) -> Result<Arc<Process>, Errno> {
    let mm = Mm::from_parts(old.ram.clone(), inh.mm.take_parts())?;
    drop(inh.mm);
    let mut signals = SignalState::with_actions(inh.actions);
    let table = super::fds::adopt(inh.fds, &mut signals);
    let tracer = Tracer::new(old.tracer.set, inh.sink.map(std::fs::File::from));
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    let kids = super::ChildServices::start(
        &old.ram,
        &crate::syscall::cred::current(),
        pid,
        ppid,
        &tracer,
        inh.ring_given,
    );
    Ok(Process::new(ProcessInit {
        ram: old.ram.clone(),
        mm,
        vm: old.threads.vm.clone(),
        el1: old.threads.el1,
        fds: table,
        shim_data: kids.shim_data.clone(),
        fs: inh.fs,
        signals,
        rlimits: inh.rlimits,
        creds: old.creds,
        pid,
        ppid,
        exe: inh.exe,
        tracer,
        sigreturn_tramp: old.sigreturn_tramp(),
        // A fork child has no timers (interval or POSIX): the new actor starts without.
        vdso: old.vdso.clone(),
        entropy: kids.entropy,
        vfork_done,
    }))
}

/// The child: take the RAM copy, become a new process, run the guest until it ends.
fn child(
    ctx: &mut Ctx,
    mut inh: Inherited<'_>,
    snap: Option<OwnedFd>,
    done: Option<OwnedFd>,
    r: ChildRegs,
    t: ChildThread,
) -> ! {
    crate::signal::wakesig::after_fork_child();
    // A vfork release inherited from our parent's own vfork is not ours to signal: close
    // our copy (the parent still holds its own). Ours is `done`.
    ctx.proc.vfork_done.release();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let fail = |what: &str| -> ! {
        eprintln!("elfuse: fork child: {what}");
        // SAFETY: _exit ends the fork child at once: it is a single-threaded copy whose other
        // threads do not exist, so nothing is left to clean up.
        unsafe { libc::_exit(70) }
    };
    if let Some(Err(e)) = snap.map(|s| ctx.proc.ram.swap_backing(s)) {
        fail(&format!("RAM: {e}"));
    }
    let parent_log = inh.code_log.take();
    let proc = match inherit(ctx.proc, inh, pid, done) {
        Ok(p) => p,
        Err(e) => fail(&format!("mappings: {e:?}")),
    };
    crate::syscall::procgen::reset_comms(Some((pid, t.comm)));
    crate::syscall::procpeer::serve(&proc, crate::syscall::procserve::handle);
    crate::signal::hostsig::watch_deferred(&proc);
    if t.set_child_tid != 0 && proc.mm.check_user(t.set_child_tid, 4, true).is_ok() {
        proc.ram.write(t.set_child_tid, &pid.to_le_bytes());
    }
    let mut thread = ThreadState {
        tid: pid,
        sigmask: t.sigmask,
        altstack: t.altstack,
        comm: t.comm,
        dumpable: t.dumpable,
        rseq: t.rseq,
        seccomp: t.seccomp,
        clear_child_tid: t.clear_child_tid,
        ..Default::default()
    };
    let life = ctx.life;
    let vcpu = &mut *ctx.vcpu;
    super::warm::in_child(vcpu, parent_log);
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
    let stop = life.run_leader(&proc, vcpu, &mut thread);
    proc.vfork_done.release();
    match stop {
        // SAFETY: _exit ends the fork child with the guest's status; its state (a copy) needs
        // no teardown.
        Ok(Stop::Exit(code) | Stop::ThreadExit(code)) => unsafe { libc::_exit(code & 0xff) },
        Ok(Stop::Signal(sig)) => crate::signal::hostact::die_of_signal(sig),
        Err(e) => fail(&format!("internal error: {e}")),
    }
}
