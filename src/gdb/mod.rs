//! The gdb remote stub (`elfuse -g PORT`): gdb-multiarch debugs the guest like it would
//! under `qemu-aarch64 -g PORT`.
//!
//! Two halves meet here. The vCPU threads stop ("park") at debug events: a breakpoint or
//! the end of a single step ([`VcpuExit::Debug`](crate::backend::VcpuExit), from the
//! backend's [`Vcpu::set_debug`]), a signal about to be delivered, or — all-stop mode — any
//! stop of another thread. A parked thread serves register requests with its own vCPU
//! (backends bind a vCPU to its thread) until gdb resumes it. The stub thread
//! ([`stub`]) speaks the protocol through the `gdbstub` crate; it reads and writes guest
//! memory itself, through the same checks user pointers get (the reserved region — shim,
//! shim data, page tables — is refused).
//!
//! The guest's view of a parked vCPU: at EL0 its registers; at an exit inside the shim
//! (EL1, where every guest register is still the guest's) PC, PSTATE and SP are the
//! guest's ELR_EL1, SPSR_EL1 and SP_EL0. gdb never sees the shim.
//!
//! A thread blocked in a host syscall parks only when the syscall returns; until then
//! gdb's register requests for it fail.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::backend::{BackendError, DebugConfig, Reg, SysReg, Vcpu, VcpuExit};
use crate::process::Process;
use crate::syscall::Stop;

mod hostio;
mod regs;

use gdbstub_arch::aarch64::reg::AArch64CoreRegs;
use regs::{in_shim, read_regs, write_regs};
pub mod stub;

/// Why a thread parks (what the stub reports to gdb).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Another thread stopped (all-stop), or the initial stop: nothing to report.
    Quiet,
    /// A single step ended.
    Step,
    /// A breakpoint (software or hardware, as gdb inserted it).
    SwBreak,
    HwBreak,
    /// A signal is about to reach the guest.
    Signal(u32),
}

/// What gdb told one thread to do next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    pub step: bool,
    pub signal: Option<u32>,
}

/// A request the stub makes of a parked thread.
enum Req {
    ReadRegs,
    WriteRegs(Box<AArch64CoreRegs>),
}

enum Resp {
    Regs(Box<AArch64CoreRegs>),
    Done,
    Failed,
}

#[derive(Default)]
struct ThreadDbg {
    parked: bool,
    /// The guest's registers while the thread is in a host syscall (it may block there
    /// and not park): gdb reads them, as Linux shows a thread blocked in a syscall.
    in_syscall: Option<Box<AArch64CoreRegs>>,
    req: Option<Req>,
    resp: Option<Resp>,
}

#[derive(Default)]
struct State {
    attached: bool,
    sw: BTreeSet<u64>,
    hw: BTreeSet<u64>,
    /// Every guest thread of the process (gdb's thread list), parked or not.
    threads: BTreeMap<i32, ThreadDbg>,
    /// Stops not yet reported to gdb.
    events: VecDeque<(i32, Why)>,
    /// Bumped by every resume: parked threads wake up.
    resumes: u64,
    actions: BTreeMap<i32, Action>,
    /// For threads gdb did not name; `None`: they stay stopped (scheduler locking).
    default_action: Option<Action>,
    /// The process ended (reported to gdb as W/X).
    ended: Option<Stop>,
    /// The initial stack pointer: argc, argv, envp, auxv.
    initial_sp: u64,
    /// gdb interrupted (Ctrl-C): the first thread to park reports SIGINT.
    interrupted: bool,
}

pub struct Debugger {
    /// The host process that owns the stub (a fork child is not debugged).
    owner: u32,
    listener: Mutex<Option<TcpListener>>,
    state: Mutex<State>,
    cv: Condvar,
    /// All-stop in progress: every thread parks at its next chance.
    stopping: AtomicBool,
    /// Bumped when breakpoints change; threads compare it with what they applied.
    config_gen: AtomicU64,
    stub: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static DEBUGGER: OnceLock<Debugger> = OnceLock::new();

/// Per vCPU thread: what this thread's vCPU was last told.
#[derive(Default)]
struct Local {
    applied_gen: u64,
    /// gdb asked this thread to single-step.
    stepping: bool,
    /// The vCPU steps only to park at its next EL0 instruction.
    park_armed: bool,
}

thread_local! {
    static LOCAL: std::cell::RefCell<Local> = Default::default();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `-g PORT`: listens on 127.0.0.1:PORT; the first guest thread waits there for gdb.
pub fn listen(port: u16) -> std::io::Result<()> {
    let l = TcpListener::bind(("127.0.0.1", port))?;
    let d = Debugger {
        owner: std::process::id(),
        listener: Mutex::new(Some(l)),
        state: Mutex::default(),
        cv: Condvar::new(),
        stopping: AtomicBool::new(true),
        config_gen: AtomicU64::new(1),
        stub: Mutex::new(None),
    };
    DEBUGGER
        .set(d)
        .map_err(|_| std::io::Error::other("gdb stub already set up"))
}

/// The debugger, if one is set up in this host process (never in a fork child).
fn get() -> Option<&'static Debugger> {
    let d = DEBUGGER.get()?;
    (d.owner == std::process::id()).then_some(d)
}

/// A new guest thread starts on this host thread. The first one (the main thread) waits
/// for gdb to connect and stops before the program's first instruction.
pub fn thread_started(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    tid: i32,
) -> Result<(), BackendError> {
    let Some(d) = get() else { return Ok(()) };
    let listener = lock(&d.listener).take();
    if let Some(l) = listener {
        let proc = proc.clone();
        let (conn, _) = l
            .accept()
            .map_err(|e| BackendError(format!("gdb stub: accept: {e}")))?;
        drop(l);
        let _ = conn.set_nodelay(true);
        {
            let mut st = lock(&d.state);
            st.attached = true;
            st.initial_sp = vcpu.sys_reg(SysReg::SpEl0)?;
        }
        let h = std::thread::Builder::new()
            .name("gdb-stub".into())
            .spawn(move || stub::serve(d, proc, conn))
            .map_err(|e| BackendError(format!("gdb stub thread: {e}")))?;
        *lock(&d.stub) = Some(h);
    }
    let mut st = lock(&d.state);
    if !st.attached {
        return Ok(());
    }
    st.threads.entry(tid).or_default();
    drop(st);
    LOCAL.with(|l| *l.borrow_mut() = Local::default());
    // Stop before the first guest instruction when a stop is in progress (at start-up:
    // always), otherwise just take the breakpoints.
    sync(d, vcpu, d.stopping.load(SeqCst))
}

/// The guest thread `tid` has finished on this host thread.
pub fn thread_ended(tid: i32) {
    let Some(d) = get() else { return };
    lock(&d.state).threads.remove(&tid);
    d.cv.notify_all();
}

/// The whole process ended (on the host's main thread): tells gdb and waits, briefly,
/// for the stub to finish.
pub fn process_ended(stop: Stop) {
    let Some(d) = get() else { return };
    lock(&d.state).ended = Some(stop);
    d.cv.notify_all();
    let h = lock(&d.stub).take();
    if let Some(h) = h {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !h.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// Applies the current breakpoints to this thread's vCPU, stepping if gdb asked it to or
/// (`park`) to park at its next EL0 instruction.
fn sync(d: &Debugger, vcpu: &mut dyn Vcpu, park: bool) -> Result<(), BackendError> {
    let gen = d.config_gen.load(SeqCst);
    let cfg = {
        let st = lock(&d.state);
        if st.attached {
            st.sw.iter().chain(st.hw.iter()).copied().collect()
        } else {
            Vec::new()
        }
    };
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.applied_gen = gen;
        l.park_armed = park;
        vcpu.set_debug(&DebugConfig {
            breakpoints: cfg,
            step: l.stepping || park,
        })
    })
}

/// At the end of every vCPU exit the loop answered: parks if a stop is in progress, and
/// brings the breakpoints up to date. Costs one atomic load without a debugger.
pub fn after_exit(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    tid: i32,
    exit: VcpuExit,
) -> Result<(), BackendError> {
    let Some(d) = get() else { return Ok(()) };
    if d.stopping.load(SeqCst) {
        if exit == VcpuExit::Kicked && !in_shim(vcpu)? {
            return park(d, proc, vcpu, tid, Why::Quiet).map(drop);
        }
        // Inside the shim: park at the guest's next instruction.
        if !LOCAL.with(|l| l.borrow().park_armed) {
            return sync(d, vcpu, true);
        }
        return Ok(());
    }
    if LOCAL.with(|l| l.borrow().applied_gen) != d.config_gen.load(SeqCst) {
        sync(d, vcpu, false)?;
    }
    Ok(())
}

/// A syscall reaches the host on this thread: while a debugger is attached, its
/// registers are kept for gdb until [`syscall_done`] (the thread may block).
pub fn syscall_entered(vcpu: &dyn Vcpu, tid: i32) {
    let Some(d) = get() else { return };
    if !lock(&d.state).attached {
        return;
    }
    let Ok(regs) = read_regs(vcpu) else { return };
    if let Some(t) = lock(&d.state).threads.get_mut(&tid) {
        t.in_syscall = Some(Box::new(regs));
    }
}

/// The syscall [`syscall_entered`] saw has been answered.
pub fn syscall_done(tid: i32) {
    let Some(d) = get() else { return };
    if let Some(t) = lock(&d.state).threads.get_mut(&tid) {
        t.in_syscall = None;
    }
}

/// A [`VcpuExit::Debug`]: a breakpoint, a finished step, or a thread arriving to park.
pub fn on_debug_exit(proc: &Process, vcpu: &mut dyn Vcpu, tid: i32) -> Result<(), BackendError> {
    let Some(d) = get() else {
        // A fork child inherits its parent's vCPU settings: nothing watches here.
        return vcpu.set_debug(&DebugConfig::default());
    };
    let pc = vcpu.reg(Reg::Pc)?;
    let (stepping, armed) = LOCAL.with(|l| {
        let l = l.borrow();
        (l.stepping, l.park_armed)
    });
    let why = {
        let st = lock(&d.state);
        if !st.attached {
            Why::Quiet
        } else if stepping {
            Why::Step
        } else if st.sw.contains(&pc) {
            Why::SwBreak
        } else if st.hw.contains(&pc) {
            Why::HwBreak
        } else {
            Why::Quiet
        }
    };
    if why == Why::Quiet && !armed && !d.stopping.load(SeqCst) {
        // A breakpoint gdb removed meanwhile.
        return sync(d, vcpu, false);
    }
    park(d, proc, vcpu, tid, why).map(drop)
}

/// A signal is about to reach the guest thread: gdb sees it first and says which signal
/// (if any) the thread gets. Without a debugger: `signo` itself.
pub fn on_signal(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    tid: i32,
    signo: u32,
) -> Result<Option<u32>, BackendError> {
    const SIGKILL: u32 = 9;
    match get() {
        Some(d) if signo != SIGKILL && lock(&d.state).attached => {
            Ok(park(d, proc, vcpu, tid, Why::Signal(signo))?.signal)
        }
        _ => Ok(Some(signo)),
    }
}

/// Parks this thread until gdb resumes it; returns what gdb said.
fn park(
    d: &Debugger,
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    tid: i32,
    why: Why,
) -> Result<Action, BackendError> {
    let mut st = lock(&d.state);
    if !st.attached || (why == Why::Quiet && !d.stopping.load(SeqCst)) {
        drop(st);
        sync(d, vcpu, false)?;
        let signal = match why {
            Why::Signal(s) => Some(s),
            _ => None,
        };
        return Ok(Action {
            step: false,
            signal,
        });
    }
    let first = !d.stopping.swap(true, SeqCst);
    if why != Why::Quiet {
        st.events.push_back((tid, why));
        st.interrupted = false;
    } else if std::mem::take(&mut st.interrupted) {
        st.events.push_back((tid, Why::Signal(2)));
    }
    st.threads.entry(tid).or_default().parked = true;
    let mut seen = st.resumes;
    d.cv.notify_all();
    if first {
        drop(st);
        proc.threads.kick_all();
        st = lock(&d.state);
    }
    let action = loop {
        let req = st.threads.get_mut(&tid).and_then(|t| t.req.take());
        if let Some(req) = req {
            drop(st);
            let resp = serve(vcpu, req);
            st = lock(&d.state);
            if let Some(t) = st.threads.get_mut(&tid) {
                t.resp = Some(resp);
            }
            d.cv.notify_all();
            continue;
        }
        if !st.attached {
            break Action::default();
        }
        // Killed meanwhile (another thread's exit_group while gdb kept this one stopped).
        if proc.threads.get(tid).is_some_and(|t| t.killed()) {
            break Action::default();
        }
        if st.resumes != seen && !d.stopping.load(SeqCst) {
            match st.actions.get(&tid).copied().or(st.default_action) {
                Some(a) => break a,
                // Scheduler locking: this one stays stopped.
                None => seen = st.resumes,
            }
        }
        st =
            d.cv.wait_timeout(st, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
    };
    if let Some(t) = st.threads.get_mut(&tid) {
        t.parked = false;
    }
    drop(st);
    LOCAL.with(|l| l.borrow_mut().stepping = action.step);
    sync(d, vcpu, false)?;
    Ok(action)
}

/// Serves one stub request with this thread's vCPU.
fn serve(vcpu: &mut dyn Vcpu, req: Req) -> Resp {
    let r = match req {
        Req::ReadRegs => read_regs(vcpu).map(|r| Resp::Regs(Box::new(r))),
        Req::WriteRegs(r) => write_regs(vcpu, &r).map(|_| Resp::Done),
    };
    r.unwrap_or_else(|e| {
        tracing::debug!("gdb stub: register access failed: {e}");
        Resp::Failed
    })
}

/// The stub's side of the state: what `stub` needs, on the stub thread.
impl Debugger {
    /// Asks parked thread `tid` to serve `req` (waiting a little for it to park).
    fn request(&self, tid: i32, req: Req) -> Option<Resp> {
        let mut st = lock(&self.state);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !st.threads.get(&tid)?.parked {
            // Blocked in a host syscall: its registers as they were when it entered.
            if let (Some(r), Req::ReadRegs) = (&st.threads.get(&tid)?.in_syscall, &req) {
                return Some(Resp::Regs(r.clone()));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        st.threads.get_mut(&tid)?.req = Some(req);
        self.cv.notify_all();
        loop {
            let t = st.threads.get_mut(&tid)?;
            if let Some(r) = t.resp.take() {
                return Some(r);
            }
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn read_regs(&self, tid: i32) -> Option<AArch64CoreRegs> {
        match self.request(tid, Req::ReadRegs)? {
            Resp::Regs(r) => Some(*r),
            _ => None,
        }
    }

    fn write_regs(&self, tid: i32, r: &AArch64CoreRegs) -> bool {
        matches!(
            self.request(tid, Req::WriteRegs(Box::new(r.clone()))),
            Some(Resp::Done)
        )
    }

    fn tids(&self) -> Vec<i32> {
        lock(&self.state).threads.keys().copied().collect()
    }

    fn set_breakpoint(&self, hw: bool, addr: u64, on: bool) {
        let mut st = lock(&self.state);
        let set = if hw { &mut st.hw } else { &mut st.sw };
        if on {
            set.insert(addr);
        } else {
            set.remove(&addr);
        }
        self.config_gen.fetch_add(1, SeqCst);
    }

    /// Resumes every parked thread with the actions gdb gave (false: a stop is already
    /// waiting to be reported, so nothing resumes).
    fn resume(&self, actions: BTreeMap<i32, Action>, default: Option<Action>) -> bool {
        let mut st = lock(&self.state);
        if !st.events.is_empty() {
            return false;
        }
        st.actions = actions;
        st.default_action = default;
        st.resumes += 1;
        self.stopping.store(false, SeqCst);
        self.cv.notify_all();
        true
    }

    /// Stops every thread (Ctrl-C): the first to park reports SIGINT.
    fn interrupt(&self, proc: &Process) {
        let mut st = lock(&self.state);
        if !self.stopping.swap(true, SeqCst) {
            st.interrupted = true;
        }
        drop(st);
        proc.threads.kick_all();
    }

    /// The next stop to report, or the end of the process.
    fn next_event(&self) -> Option<Result<(i32, Why), Stop>> {
        let mut st = lock(&self.state);
        if let Some(e) = st.events.pop_front() {
            return Some(Ok(e));
        }
        st.ended.map(Err)
    }

    /// gdb detached (or went away): breakpoints off, every thread runs free.
    fn detach(&self) {
        let mut st = lock(&self.state);
        st.attached = false;
        st.sw.clear();
        st.hw.clear();
        st.events.clear();
        st.resumes += 1;
        self.stopping.store(false, SeqCst);
        self.config_gen.fetch_add(1, SeqCst);
        self.cv.notify_all();
    }

    fn initial_sp(&self) -> u64 {
        lock(&self.state).initial_sp
    }
}
