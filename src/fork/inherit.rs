//! What a fork child inherits: one description, [`Inheritance`], built once in the parent
//! from its `Process` and the forking thread (`Captured::capture`) and consumed by
//! both fork paths. The native child (host fork(), `native`) takes it over in place
//! (`native::adopt_host_fds`); the spawn path writes it on the wire (`Captured::encode`)
//! and `elfuse --fork-child` reads it back (`Received::decode`). Either way the
//! child's `Process` is made from it in one place (`Received::into_process`, which
//! calls `Process::new`). A new fact a child inherits is a field here plus its line in
//! `capture`, `map_fds`, `encode`, `decode` and `into_process`, all in this file; the fd
//! table's part is `fds::Fds`.
//!
//! Inherited, as on Linux: the fd table (each open file description once, so dup aliases
//! stay aliases sharing offsets; CLOEXEC flags; RLIMIT_NOFILE), an emulated description as
//! its kind's fork state from which the child makes its own (`syscall::kinds`; a kind
//! without one is not inherited), signal dispositions, the forking thread's signal mask,
//! alternate signal stack, comm, dumpable, rseq registration, seccomp mode and filters and
//! credentials, umask, `--sysroot` and chroot, rlimits, the personality, the program name,
//! the trace settings and sink, where the vDSO and the sigreturn trampoline are.
//! Not inherited (Linux's fork resets them): pending signals, interval timers and POSIX
//! timers (the child's signal actor starts without any), the robust list, the other
//! threads, and clear_child_tid unless CLONE_CHILD_CLEARTID. The host cwd is the host
//! process's own (a native child shares it by fork(), a spawned one by the spawn).
//!
//! The address space and the registers are not described here: each path moves them by
//! its own means (native: fork() copies RAM and the engine, the mm lock held across it;
//! spawn: a RAM snapshot, the VMAs and the registers in `state`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::fds::Fds;
use super::wire::{index_of, Dec, Enc, Passed};
use crate::backend::Vm;
use crate::guest::mm::Mm;
use crate::guest::ram::GuestRam;
use crate::process::{Creds, FsContext, Process, ProcessInit, Rlimit, RLIM_NLIMITS};
use crate::signal::altstack::AltStack;
use crate::signal::state::SignalState;
use crate::signal::{KSigaction, NSIG};
use crate::syscall::clone::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_CLEAR_SIGHAND, CLONE_VFORK,
};
use crate::syscall::clone_state::Own;
use crate::syscall::seccomp::Seccomp;
use crate::thread::{El1Regs, ThreadState};
use crate::trace::{TraceSet, Tracer};

/// What a child inherits. `H` is how a description's host fd is held: the parent's raw fd
/// number ([`Captured`], kept open by `fds.parent`) or the child's own fd ([`Received`]).
pub struct Inheritance<H> {
    /// CLONE_VFORK: the parent waits until the child execs or exits.
    pub vfork: bool,
    pub thread: ChildThread,
    pub fds: Fds<H>,
    pub actions: [KSigaction; NSIG],
    pub fs: FsContext,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    /// The forking thread's real and effective ids (the child's shim answers with them).
    pub creds: Creds,
    /// personality(2)'s persona.
    pub personality: u32,
    pub exe: (Vec<u8>, PathBuf),
    pub trace: TraceSet,
    /// A dup of the trace sink, if tracing goes to a file.
    pub trace_sink: Option<OwnedFd>,
    pub sigreturn_tramp: u64,
    /// The `[vvar]` page (the vDSO follows it).
    pub vvar: u64,
}

impl<H> Inheritance<H> {
    /// The same inheritance with its fd table converted by `f` (a native child taking the
    /// parent's host fds over as its own: `native::adopt_host_fds`).
    pub fn map_fds<G>(self, f: impl FnOnce(Fds<H>) -> Fds<G>) -> Inheritance<G> {
        Inheritance {
            vfork: self.vfork,
            thread: self.thread,
            fds: f(self.fds),
            actions: self.actions,
            fs: self.fs,
            rlimits: self.rlimits,
            creds: self.creds,
            personality: self.personality,
            exe: self.exe,
            trace: self.trace,
            trace_sink: self.trace_sink,
            sigreturn_tramp: self.sigreturn_tramp,
            vvar: self.vvar,
        }
    }
}

/// The parent's side: host fds are the parent's own numbers.
pub type Captured = Inheritance<RawFd>;
/// The child's side: host fds it owns.
pub type Received = Inheritance<OwnedFd>;

/// The forking thread's facts the child's only thread starts with.
pub struct ChildThread {
    pub comm: [u8; 16],
    pub dumpable: bool,
    pub rseq: Option<(u64, u32, u32)>,
    /// CLONE_CHILD_CLEARTID.
    pub clear_child_tid: u64,
    /// CLONE_CHILD_SETTID: where the child writes its tid, 0 if not asked.
    pub set_child_tid: u64,
    pub sigmask: u64,
    pub altstack: AltStack,
    pub seccomp: Seccomp,
}

impl ChildThread {
    /// The calling thread `t`, for a clone with `flags` and child tid pointer `ctid`.
    pub fn of(t: &ThreadState, flags: u64, ctid: u64) -> ChildThread {
        let ctid_if = |f: u64| if flags & f != 0 { ctid } else { 0 };
        ChildThread {
            comm: t.comm,
            dumpable: t.dumpable,
            rseq: t.rseq,
            clear_child_tid: ctid_if(CLONE_CHILD_CLEARTID),
            set_child_tid: ctid_if(CLONE_CHILD_SETTID),
            sigmask: t.sigmask,
            altstack: t.altstack,
            seccomp: t.seccomp.inherit(),
        }
    }
}

impl Captured {
    /// The inheritance of `proc`'s child made by clone `flags` from a thread holding
    /// `own` (its own fd table and fs context, if it has them: the child's come from
    /// those). The fd table first (a message to the fd actor), then the rest, then the
    /// dispositions from `actions`, called last (the native path takes the mm lock and
    /// holds the signal actor still there, in that order); CLONE_CLEAR_SIGHAND resets the
    /// handled ones to SIG_DFL.
    pub fn capture(
        proc: &Process,
        thread: ChildThread,
        own: &Own,
        flags: u64,
        actions: impl FnOnce() -> [KSigaction; NSIG],
    ) -> Captured {
        let fds = Fds::capture(own.table(proc).fork_snapshot());
        let mut inh = Inheritance {
            vfork: flags & CLONE_VFORK != 0,
            thread,
            fds,
            fs: own.fs_copy(proc),
            rlimits: *proc.rlimits(),
            creds: crate::syscall::cred::current(),
            personality: crate::syscall::sched::persona(),
            exe: proc.exe(),
            trace: proc.tracer.set,
            trace_sink: proc.tracer.sink_dup(),
            sigreturn_tramp: proc.sigreturn_tramp(),
            vvar: proc.vdso.vvar,
            actions: actions(),
        };
        if flags & CLONE_CLEAR_SIGHAND != 0 {
            crate::syscall::clone_proc::clear_sighand(&mut inh.actions);
        }
        inh
    }
}

/// What the child's path brings besides its inheritance: the machine it runs on.
pub struct Machine {
    pub ram: Arc<GuestRam>,
    pub mm: Mm,
    pub vm: Arc<dyn Vm>,
    pub el1: El1Regs,
}

impl Received {
    /// The child's `Process` (with its own pid and ppid, the host's) and its one thread's
    /// state. `ring_given`: the parent left the shim's random ring to the child.
    pub fn into_process(
        self,
        m: Machine,
        vfork_done: Option<OwnedFd>,
        ring_given: bool,
    ) -> (Arc<Process>, ThreadState) {
        // SAFETY: getpid and getppid have no preconditions.
        let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
        let t = self.thread;
        if t.set_child_tid != 0 && m.mm.check_user(t.set_child_tid, 4, true).is_ok() {
            m.ram.write(t.set_child_tid, &pid.to_le_bytes());
        }
        crate::syscall::sched::set_persona(self.personality);
        let mut signals = SignalState::with_actions(self.actions);
        let fds = self.fds.into_table(&mut signals);
        let tracer = Tracer::new(self.trace, self.trace_sink.map(std::fs::File::from));
        let kids = ChildServices::start(&m.ram, &self.creds, pid, ppid, &tracer, ring_given);
        let proc = Process::new(ProcessInit {
            vdso: crate::guest::vvar::Vdso::at(m.ram.clone(), self.vvar),
            ram: m.ram,
            mm: m.mm,
            vm: m.vm,
            el1: m.el1,
            fds,
            shim_data: kids.shim_data,
            fs: self.fs,
            signals,
            rlimits: self.rlimits,
            creds: self.creds,
            pid,
            ppid,
            exe: self.exe,
            tracer,
            sigreturn_tramp: self.sigreturn_tramp,
            entropy: kids.entropy,
            vfork_done,
        });
        crate::syscall::procgen::reset_comms(Some((pid, t.comm)));
        crate::syscall::procpeer::serve(&proc, crate::syscall::procserve::handle);
        let thread = ThreadState {
            tid: pid,
            comm: t.comm,
            dumpable: t.dumpable,
            rseq: t.rseq,
            sigmask: t.sigmask,
            altstack: t.altstack,
            seccomp: t.seccomp,
            clear_child_tid: t.clear_child_tid,
            ..Default::default()
        };
        (proc, thread)
    }
}

impl Captured {
    /// Writes this inheritance; host fds go to `fds` (SCM_RIGHTS), referred to by index.
    pub fn encode(&self, e: &mut Enc, fds: &mut Vec<RawFd>) {
        e.bool(self.vfork);
        self.fds.encode(e, fds);
        for a in &self.actions {
            for v in [a.handler, a.flags, a.restorer, a.mask] {
                e.u64(v);
            }
        }
        e.opt_bytes(self.fs.sysroot.as_ref().map(|p| p.as_os_str().as_bytes()));
        e.u64(self.fs.umask.into());
        e.bool(self.fs.chroot);
        for r in &self.rlimits {
            e.u64(r.cur);
            e.u64(r.max);
        }
        let c = &self.creds;
        for v in [c.uid, c.euid, c.gid, c.egid, self.personality] {
            e.u64(v.into());
        }
        e.bytes(&self.exe.0);
        e.bytes(self.exe.1.as_os_str().as_bytes());
        e.bool(self.trace.syscalls);
        e.bool(self.trace.actors);
        match &self.trace_sink {
            Some(fd) => e.u64(index_of(fds, fd.as_raw_fd())),
            None => e.u64(u64::MAX),
        }
        e.u64(self.sigreturn_tramp);
        e.u64(self.vvar);
        let t = &self.thread;
        e.bytes(&t.comm);
        e.bool(t.dumpable);
        match t.rseq {
            Some((a, l, s)) => {
                e.bool(true);
                e.u64(a);
                e.u64(l.into());
                e.u64(s.into());
            }
            None => e.bool(false),
        }
        e.u64(t.clear_child_tid);
        e.u64(t.set_child_tid);
        e.u64(t.sigmask);
        for v in [t.altstack.sp, t.altstack.size, t.altstack.flags.into()] {
            e.u64(v);
        }
        e.u64(t.seccomp.mode.into());
        let progs = t.seccomp.programs();
        e.u64(progs.len() as u64);
        for p in &progs {
            e.bytes(p);
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fork handover: bad {what}"),
    )
}

impl Received {
    /// Reads what [`Captured::encode`] wrote; `fds` are the fds passed with it.
    pub fn decode(d: &mut Dec, fds: &Passed) -> io::Result<Received> {
        let vfork = d.bool()?;
        let fds_in = Fds::decode(d, fds)?;
        let mut actions = [KSigaction::default(); NSIG];
        for a in actions.iter_mut() {
            *a = KSigaction {
                handler: d.u64()?,
                flags: d.u64()?,
                restorer: d.u64()?,
                mask: d.u64()?,
            };
        }
        let fs = FsContext {
            sysroot: d
                .opt_bytes()?
                .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b))),
            umask: d.u64()? as u32,
            chroot: d.bool()?,
        };
        let mut rlimits = [Rlimit { cur: 0, max: 0 }; RLIM_NLIMITS];
        for r in rlimits.iter_mut() {
            *r = Rlimit {
                cur: d.u64()?,
                max: d.u64()?,
            };
        }
        let creds = Creds {
            uid: d.u64()? as u32,
            euid: d.u64()? as u32,
            gid: d.u64()? as u32,
            egid: d.u64()? as u32,
        };
        let personality = d.u64()? as u32;
        let exe = (
            d.bytes()?,
            PathBuf::from(std::ffi::OsStr::from_bytes(&d.bytes()?)),
        );
        let trace = TraceSet {
            syscalls: d.bool()?,
            actors: d.bool()?,
        };
        let trace_sink = match d.u64()? {
            u64::MAX => None,
            i => Some(fds.owned(i)?),
        };
        let (sigreturn_tramp, vvar) = (d.u64()?, d.u64()?);
        let comm_v = d.bytes()?;
        let mut comm = [0u8; 16];
        let n = comm_v.len().min(16);
        comm[..n].copy_from_slice(&comm_v[..n]);
        let dumpable = d.bool()?;
        let rseq = if d.bool()? {
            Some((d.u64()?, d.u64()? as u32, d.u64()? as u32))
        } else {
            None
        };
        let (clear_child_tid, set_child_tid, sigmask) = (d.u64()?, d.u64()?, d.u64()?);
        let altstack = AltStack {
            sp: d.u64()?,
            size: d.u64()?,
            flags: d.u64()? as u32,
        };
        let mode = d.u64()? as u8;
        let n = d.u64()?;
        let progs = (0..n).map(|_| d.bytes()).collect::<io::Result<Vec<_>>>()?;
        let seccomp = Seccomp::from_programs(mode, &progs).ok_or_else(|| bad("seccomp filters"))?;
        Ok(Inheritance {
            vfork,
            thread: ChildThread {
                comm,
                dumpable,
                rseq,
                clear_child_tid,
                set_child_tid,
                sigmask,
                altstack,
                seccomp,
            },
            fds: fds_in,
            actions,
            fs,
            rlimits,
            creds,
            personality,
            exe,
            trace,
            trace_sink,
            sigreturn_tramp,
            vvar,
        })
    }
}

/// What a fork child sets up anew rather than inherits: its shim_data identity (new pid
/// and ppid) and a reseeded random ring (its RAM copy holds the parent's unconsumed
/// bytes, which the parent hands out too), and its own urandom-refill actor (actor
/// threads do not survive a fork).
pub(crate) struct ChildServices {
    pub shim_data: crate::guest::shimdata::ShimData,
    pub entropy: elfuse_actors::runtime::ActorRef<elfuse_actors::urandom::RefillActor>,
}

impl ChildServices {
    pub fn start(
        ram: &std::sync::Arc<crate::guest::ram::GuestRam>,
        creds: &crate::process::Creds,
        pid: i32,
        ppid: i32,
        tracer: &crate::trace::Tracer,
        ring_given: bool,
    ) -> ChildServices {
        let shim_data = crate::image::publish_shim_data(ram, creds, pid, ppid, tracer.set.syscalls);
        shim_data.adopt_ring(ring_given);
        let entropy = elfuse_actors::urandom::spawn_refill(
            std::sync::Arc::new(shim_data.clone()),
            crate::image::RING_LOW_WATER,
            crate::image::RING_TICK,
            tracer.actor_sink(),
        );
        ChildServices { shim_data, entropy }
    }
}

#[cfg(test)]
mod tests;
