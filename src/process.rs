//! Per-process guest state shared by all of the process's vCPU threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use elfuse_actors::fdactor::{FdActor, FdActorConfig};
use elfuse_actors::fdtable::FdTable;

use crate::backend::Vm;
use crate::guest::mm::Mm;
use crate::guest::mmlock::{MmGuard, MmLock};
use crate::guest::ram::GuestRam;
use crate::guest::shimdata::ShimData;
use crate::guest::vvar::Vdso;
use crate::signal::actor::SignalActor;
use crate::signal::state::SignalState;
use crate::thread::directory::Directory;
use crate::thread::registry::Threads;
use crate::thread::shared::El1Regs;
use crate::trace::Tracer;

/// Real and effective ids (the host thread's: see `syscall::cred`).
#[derive(Clone, Copy, Debug)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// Filesystem context (a leaf module: a thread may hold its own, `syscall::clone_own`).
pub use crate::syscall::fsctx::FsContext;

/// One resource limit (RLIM_INFINITY = u64::MAX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

pub const RLIM_NLIMITS: usize = 16;

pub struct Process {
    pub ram: Arc<GuestRam>,
    /// The address space; `mm.check_user` checks user pointers without the lock.
    pub mm: MmLock,
    /// The fd-table actor: lookups through its view, mutations as messages.
    pub fds: FdActor,
    pub fs: Mutex<FsContext>,
    /// The signal actor: dispositions, pending signals, every thread's blocked mask.
    pub signals: SignalActor,
    /// Resource limits but RLIMIT_NOFILE, which the fd-table actor owns and enforces (its
    /// slot here is never read).
    pub rlimits: Mutex<[Rlimit; RLIM_NLIMITS]>,
    /// The ids the process started with (the auxv of a fresh process). Credentials
    /// change per thread: `syscall::cred::current()` is the calling thread's.
    pub creds: Creds,
    /// Guest pid and parent pid: the host's (a guest process is a host process, so
    /// process groups, sessions, kill and wait need no translation).
    pub pid: i32,
    pub ppid: i32,
    /// The program as the guest named it (AT_EXECFN, /proc/self/exe) and the host path
    /// of the program actually loaded; execve replaces both.
    pub exe: Mutex<(Vec<u8>, PathBuf)>,
    pub tracer: Tracer,
    /// EL0 code `mov x8, #139; svc #0` (the vDSO's `__kernel_rt_sigreturn`): where
    /// handlers return without SA_RESTORER (execve maps it anew).
    pub sigreturn_tramp: AtomicU64,
    /// The `[vdso]` and `[vvar]` mappings and the vvar writer (execve maps them again at
    /// the same addresses).
    pub vdso: Vdso,
    /// The urandom-refill actor: keeps the shim's random ring topped up off the vCPU
    /// threads (told to check when a read or getrandom reaches the host).
    pub entropy: elfuse_actors::runtime::ActorRef<elfuse_actors::urandom::RefillActor>,
    /// The thread registry: every vCPU of the process (see `thread`).
    pub threads: Threads,
    /// Where native fork children report the code they translate, created at the first
    /// fork (`None`: it could not be; see `fork::warm`).
    pub code_log: std::sync::OnceLock<Option<Arc<crate::backend::CodeLog>>>,
    /// A vfork child's end of the socket whose closing releases its parent.
    pub vfork_done: VforkDone,
    /// The fd tables threads hold apart from `fds` (see `syscall::clone_own`).
    pub own_tables: crate::syscall::clone_state::OwnTables,
    /// Children whose exit signal is not SIGCHLD (see `syscall::clone_proc`).
    pub clone_kids: crate::syscall::clone_state::CloneKids,
}

/// A vfork child's end of the vfork socket: closed at execve or exit, which lets the
/// parent go on. The raw fd in an atomic (-1: none), taken exactly once.
#[derive(Debug)]
pub struct VforkDone(std::sync::atomic::AtomicI32);

impl VforkDone {
    pub fn new(fd: Option<std::os::fd::OwnedFd>) -> VforkDone {
        use std::os::fd::IntoRawFd;
        VforkDone(std::sync::atomic::AtomicI32::new(
            fd.map_or(-1, |f| f.into_raw_fd()),
        ))
    }

    /// Releases the vfork parent (after a successful execve, or at exit).
    pub fn release(&self) {
        let fd = self.0.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: the fd was ours alone (`new`), and the swap took it exactly once.
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
    }
}

impl Drop for VforkDone {
    fn drop(&mut self) {
        self.release();
    }
}

/// What a new process is made of: start-up's, a spawned fork child's (from the wire) and
/// a native fork child's (from the parent's capture) differ only in where these come
/// from. [`Process::new`] is the one place that builds a `Process` from them.
pub struct ProcessInit {
    pub ram: Arc<GuestRam>,
    pub mm: Mm,
    pub vm: Arc<dyn Vm>,
    pub el1: El1Regs,
    /// The fd table the fd actor starts with, and the shim data its observer updates.
    pub fds: FdTable,
    pub shim_data: ShimData,
    pub fs: FsContext,
    pub signals: SignalState,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    pub creds: Creds,
    pub pid: i32,
    pub ppid: i32,
    pub exe: (Vec<u8>, PathBuf),
    pub tracer: Tracer,
    pub sigreturn_tramp: u64,
    pub vdso: Vdso,
    pub entropy: elfuse_actors::runtime::ActorRef<elfuse_actors::urandom::RefillActor>,
    /// A vfork child's end of the vfork socket ([`VforkDone`]).
    pub vfork_done: Option<std::os::fd::OwnedFd>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another vCPU thread must not wedge the rest: take the data anyway.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Process {
    /// The one constructor: starts the process's actors (fd table, signals/timers) over
    /// what `init` brings, and has its address space keep the vDSO's vvar watch.
    pub fn new(init: ProcessInit) -> Arc<Process> {
        let ProcessInit {
            ram,
            mut mm,
            vm,
            el1,
            fds,
            shim_data,
            fs,
            signals,
            rlimits,
            creds,
            pid,
            ppid,
            exe,
            tracer,
            sigreturn_tramp,
            vdso,
            entropy,
            vfork_done,
        } = init;
        vdso.watch(&mut mm);
        let own_tables = crate::syscall::clone_state::OwnTables::default();
        let fds = fd_actor(fds, &shim_data, &tracer, own_tables.urandom_flag());
        // The threads' handles: written by the registry, read by the signal actor.
        let dir = Arc::new(Directory::default());
        let signals = SignalActor::spawn(
            vdso.clone(),
            ram.clone(),
            signals,
            dir.clone(),
            tracer.actor_sink(),
        );
        Arc::new(Process {
            threads: Threads::new(vm, el1, pid, dir),
            ram,
            mm: MmLock::new(mm),
            fds,
            fs: Mutex::new(fs),
            signals,
            rlimits: Mutex::new(rlimits),
            creds,
            pid,
            ppid,
            exe: Mutex::new(exe),
            tracer,
            sigreturn_tramp: sigreturn_tramp.into(),
            vdso,
            entropy,
            code_log: Default::default(),
            vfork_done: VforkDone::new(vfork_done),
            own_tables,
            clone_kids: Default::default(),
        })
    }

    pub fn mm(&self) -> MmGuard<'_> {
        self.mm.lock()
    }
    pub fn fds(&self) -> &FdActor {
        &self.fds
    }
    pub fn fs(&self) -> MutexGuard<'_, FsContext> {
        lock(&self.fs)
    }
    /// Sends a signal to this process or one of its threads, from any host thread (a vCPU,
    /// a timer, the SIGCHLD watcher). The one entry point for every sender: the signal
    /// actor queues it and names the thread that must act on it, which is kicked out of
    /// guest code and out of a blocking host call. A signal that cannot be queued (the
    /// thread is gone, a full real-time queue) is dropped here; syscalls that must report
    /// it call `signals.send` themselves.
    pub fn send_signal(&self, target: crate::signal::Target, info: crate::signal::SigInfo) {
        if let Err(e) = self.signals.send(target, info) {
            tracing::debug!(?target, signo = info.signo, "signal dropped: {e:?}");
        }
    }
    /// The program's guest name and host path (see `exe`).
    pub fn exe(&self) -> (Vec<u8>, PathBuf) {
        lock(&self.exe).clone()
    }
    pub fn sigreturn_tramp(&self) -> u64 {
        self.sigreturn_tramp.load(Ordering::Relaxed)
    }
    pub fn rlimits(&self) -> MutexGuard<'_, [Rlimit; RLIM_NLIMITS]> {
        lock(&self.rlimits)
    }
}

/// The host process's RLIMIT_NOFILE (what the shell gave elfuse, and so the guest, as a
/// process inherits its parent's limits), at most NR_OPEN.
pub fn host_nofile() -> Rlimit {
    use elfuse_actors::fdtable::{DEFAULT_NOFILE, NR_OPEN};
    use nix::sys::resource::{getrlimit, Resource};
    let Ok((cur, max)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Rlimit {
            cur: DEFAULT_NOFILE,
            max: NR_OPEN,
        };
    };
    let max = max.min(NR_OPEN);
    Rlimit {
        cur: cur.min(max),
        max,
    }
}

/// Linux's defaults for a fresh login process (RLIMIT_STACK 8 MiB...), NOFILE the host's.
pub fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    const INF: u64 = u64::MAX;
    let mut r = [Rlimit { cur: INF, max: INF }; RLIM_NLIMITS];
    r[3] = Rlimit {
        cur: 8 << 20,
        max: INF,
    }; // STACK
    r[4] = Rlimit { cur: 0, max: INF }; // CORE
    r[6] = Rlimit {
        cur: 63_459,
        max: 63_459,
    }; // NPROC
       // NOFILE (7): the fd-table actor's (the host's, `host_nofile`, set at boot).
    r[8] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    }; // MEMLOCK
    r[11] = Rlimit {
        cur: 63_459,
        max: 63_459,
    }; // SIGPENDING
    r[12] = Rlimit {
        cur: 819_200,
        max: 819_200,
    }; // MSGQUEUE
    r[13] = Rlimit { cur: 0, max: 0 }; // NICE
    r[14] = Rlimit { cur: 0, max: 0 }; // RTPRIO
    r
}

/// The fd-table actor over `table`; its observer keeps the shim's urandom fd bits.
fn fd_actor(
    mut table: FdTable,
    shim_data: &ShimData,
    tracer: &Tracer,
    urandom_off: Arc<std::sync::atomic::AtomicBool>,
) -> FdActor {
    let sd = shim_data.clone();
    table.set_observer(Arc::new(move |fd, on| {
        crate::syscall::clone_state::urandom_bit(&sd, &urandom_off, fd, on)
    }));
    FdActor::new(
        table,
        FdActorConfig {
            sink: tracer.actor_sink(),
            ..FdActorConfig::default()
        },
    )
}
