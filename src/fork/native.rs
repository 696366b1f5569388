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
//!   the child inherits is captured by the parent just before fork() (the same
//!   `inherit::Inheritance` the spawn path sends): other vCPUs paused (`crate::thread::pause`),
//!   the fd table snapshotted through its actor, emulated descriptions' fork state asked
//!   for, the rest copied out, and the mm lock held across fork() (no VMA or page-table
//!   edit in flight). The child never locks or calls the parent's `Process`; it takes
//!   over the inherited host fds ([`adopt_host_fds`]) and builds its own `Process` from the
//!   inheritance (`Inheritance::into_process`), as a spawned child does.
//!
//! Used by default on Linux; `ELFUSE_FORK=spawn` selects the portable spawn path (the
//! only one where the engine or the VM cannot be forked, e.g. Hypervisor.framework).

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::FileKind;

use super::fds::{Desc, Fds};
use super::inherit::{Captured, ChildThread, Machine, Received};
use super::snapshot::snapshot_ram;
use crate::backend::{Reg, SysReg};
use crate::errno::Errno;
use crate::guest::mm::Mm;
use crate::guest::mmlock::MmGuard;
use crate::guest::shimdata::ShimData;
use crate::syscall::clone::CLONE_PARENT_SETTID;
use crate::syscall::{Ctx, Stop, SysResult};
use crate::thread::Paused;

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

/// What the native child takes besides its inheritance.
struct Native<'a> {
    /// Held across fork(): in the child it is ours, whoever held it in the parent.
    mm: MmGuard<'a>,
    /// A copy of memfd-backed RAM to map over ours (None: private RAM, copied by fork()).
    snap: Option<OwnedFd>,
    /// Where the child reports the code it translates (`fork::warm`).
    code_log: Option<std::sync::Arc<crate::backend::CodeLog>>,
    /// Whether the parent gave the child its random ring (held its lock across fork()).
    ring_given: bool,
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
) -> SysResult {
    let t0 = std::time::Instant::now();
    let code_log = super::warm::before_fork(ctx.proc, ctx.vcpu);
    let done = if flags & crate::syscall::clone::CLONE_VFORK != 0 {
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
    let (mut mm, mut signals_quiet) = (None, None);
    let inh = Captured::capture(proc, t, &ctx.thread.own, flags, || {
        mm = Some(proc.mm());
        signals_quiet.insert(proc.signals.hold()).actions()
    });
    let Some(mm) = mm else {
        unreachable!("capture asks for the dispositions")
    };
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
    let ring_given = ring.try_lock_ring();
    let native = Native {
        mm,
        snap,
        code_log,
        ring_given,
    };
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
        child(ctx, inh, native, done, regs);
    }
    let err = Errno::last();
    if ring_given {
        ring.give_away_and_unlock();
    }
    drop(native);
    drop(inh);
    drop(paused);
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

/// The child: take the RAM copy, become a new process, run the guest until it ends.
fn child(
    ctx: &mut Ctx,
    inh: Captured,
    mut n: Native<'_>,
    done: Option<OwnedFd>,
    r: ChildRegs,
) -> ! {
    crate::signal::wakesig::after_fork_child();
    // A vfork release inherited from our parent's own vfork is not ours to signal: close
    // our copy (the parent still holds its own). Ours is `done`.
    ctx.proc.vfork_done.release();
    let fail = |what: &str| -> ! {
        eprintln!("elfuse: fork child: {what}");
        // SAFETY: _exit ends the fork child at once: it is a single-threaded copy whose other
        // threads do not exist, so nothing is left to clean up.
        unsafe { libc::_exit(70) }
    };
    let old = ctx.proc;
    if let Some(Err(e)) = n.snap.take().map(|s| old.ram.swap_backing(s)) {
        fail(&format!("RAM: {e}"));
    }
    let mm = match Mm::from_parts(old.ram.clone(), n.mm.take_parts()) {
        Ok(mm) => mm,
        Err(e) => fail(&format!("mappings: {e:?}")),
    };
    drop(n.mm);
    // SAFETY: this is the native child, and `inh` what its parent captured before fork().
    let inh = unsafe { adopt_host_fds(inh) };
    let machine = Machine {
        ram: old.ram.clone(),
        mm,
        vm: old.threads.vm.clone(),
        el1: old.threads.el1,
    };
    let (proc, mut thread) = inh.into_process(machine, done, n.ring_given);
    crate::signal::hostsig::watch_deferred(&proc);
    let pid = proc.pid;
    let life = ctx.life;
    let vcpu = &mut *ctx.vcpu;
    super::warm::in_child(vcpu, n.code_log.take());
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

/// The parent's captured inheritance as the native child's own: each inherited host fd
/// (the same number after fork()) is now owned by the child's new description, the host
/// fds of emulated descriptions are closed, and the parent's objects are forgotten, never
/// dropped, so a guest close() in the child closes the host fd exactly once. Nothing of
/// the parent's is locked or called (its fd-table actor's thread does not exist here).
///
/// # Safety
/// Only in a native fork child, once, on what its parent captured just before fork().
pub unsafe fn adopt_host_fds(inh: Captured) -> Received {
    inh.map_fds(|f| {
        for p in &f.parent {
            if let FileKind::Synthetic(s) = &p.kind {
                // SAFETY: the child's copy of this host fd, whose owner (the parent's
                // object) is forgotten below: closed exactly once, here.
                unsafe { libc::close(s.raw()) };
            }
        }
        std::mem::forget(f.parent);
        let descs = f.descs.into_iter().map(|d| match d {
            Desc::Host {
                fd,
                path,
                urandom,
                cache,
            } => Desc::Host {
                // SAFETY: after fork() this number is the child's copy of the fd; its
                // parent-side owner is forgotten above, so this is its only owner.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path,
                urandom,
                cache,
            },
            Desc::Stdio { fd, path } => Desc::Stdio { fd, path },
            Desc::Kind { kind, state } => Desc::Kind { kind, state },
        });
        Fds {
            limits: f.limits,
            slots: f.slots,
            descs: descs.collect(),
            parent: Vec::new(),
        }
    })
}
