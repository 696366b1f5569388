//! Host signals that become guest signals: SIGCHLD (a guest child is a host child, so
//! the host kernel reports its exits, stops and continues), SIGCONT and SIGTSTP (job
//! control from a shell or another guest process), and the other catchable asynchronous
//! signals another process sends, real-time ones included (a guest's `kill` or
//! `sigqueue` of another guest process is a host one: guest pids are host pids). The
//! real-time signal elfuse uses to wake its threads reaches the guest through its
//! handler instead (`wakesig`); 32 and 33 are the host libc's own and are not forwarded.
//!
//! Every host thread blocks them ([`block_in_this_thread`], called first thing in `main`,
//! so all threads inherit it); one watcher thread per host process polls a host signalfd
//! for them and decides as Linux would for the guest's disposition: ignored → dropped;
//! blocked by every guest thread → queued for the guest (`Process::send_signal`: it stays
//! pending for sigwait or a signalfd); handled → `Process::send_signal`; default → the
//! default action right away (SIGTSTP stops, SIGCONT and the ignore-by-default ones do
//! nothing, the others end the process by the same host signal, as the host's default
//! action did before). SIGCHLD is sent
//! unless ignored (or a stop/continue under SA_NOCLDSTOP). Blocking host calls of the vCPU
//! threads are never interrupted by these signals, and blocking changes no kernel action:
//! SIGCONT continues the process when generated, whatever the mask, and an exited child
//! still becomes a zombie (or is auto-reaped, see `signal::hostact::mirror_sigchld`).
//!
//! The statics below (`TARGET`, `SFD`, `DEFERRED`, `DEFER_TIMER`) are the host process's,
//! not a `Process`'s: one signalfd, one watcher thread and one guest process per host
//! process, which a native fork child replaces in memory it inherited. The watcher thread
//! owns them; everything else goes through `watch*`, `flush`, `fork_guard` and `start_*`.
//! They are not an actor: the watcher blocks polling the signalfd, which no actor handler
//! may do (ARCHITECTURE.md, "Why hostsig keeps process-global state").

use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};

use crate::process::Process;
use crate::signal::hostact::die_of_signal;
use crate::signal::info::ChldInfo;
use crate::signal::{SigInfo, Target, SIGCHLD, SIG_DFL, SIG_IGN};

const SA_NOCLDSTOP: u64 = 1;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// The host process's guest process (a fork child replaces it).
static TARGET: Mutex<Option<Weak<Process>>> = Mutex::new(None);
/// This host process's signalfd for the forwarded signals and the host pid it belongs
/// to (a native fork child inherits its parent's and makes its own). Signals are only
/// taken from it with the lock held, and forwarded before it is released: after
/// [`flush`], everything the kernel sent before has reached the guest.
static SFD: Mutex<(i32, i32)> = Mutex::new((-1, 0));

/// The standard host signals taken by the watcher: every catchable, asynchronous one
/// but SIGPIPE (the host ignores its own; `syscall::sigpipe` raises the guest's).
/// SIGTTIN and SIGTTOU are taken too, from other processes (a shell's `kill -TTOU`); the
/// host terminal driver sends none itself since every thread blocks them, so a
/// background read of the controlling terminal fails with EIO (Linux would stop it) and a
/// background tcsetpgrp or write goes through, as for a guest that ignores them (an
/// interactive shell's own set-up). Synchronous fault signals stay the host's own (a fault in elfuse itself).
/// The real-time ones from the host libc's SIGRTMIN up are taken too, but the wake
/// signal.
const FORWARDED: [i32; 20] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGCHLD,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGURG,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGWINCH,
    libc::SIGIO,
];

/// Whether host signal `sig`, sent to this process, reaches the guest through the watcher
/// (on a host without one, none does).
pub fn forwards(sig: i32) -> bool {
    cfg!(target_os = "linux")
        && (FORWARDED.contains(&sig)
            || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig)
                && sig != crate::signal::wakesig::wake_signal())
}

fn forwarded() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit array, valid zeroed; sigemptyset/sigaddset only write
    // the local `set` and the signal numbers are valid (FORWARDED and the RT range).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        for s in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            if s != crate::signal::wakesig::wake_signal() {
                libc::sigaddset(&mut set, s);
            }
        }
        set
    }
}

/// Blocks the forwarded signals in the calling thread (and the threads it creates).
pub fn block_in_this_thread() {
    let set = forwarded();
    // SAFETY: `set` is a live sigset_t; the old mask is not asked for (null).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn lock_sfd() -> std::sync::MutexGuard<'static, (i32, i32)> {
    SFD.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_target() -> std::sync::MutexGuard<'static, Option<Weak<Process>>> {
    TARGET.lock().unwrap_or_else(|p| p.into_inner())
}

/// Routes this host process's forwarded signals to `proc`, starting the watcher thread
/// if this host process has none yet.
#[cfg(target_os = "linux")]
pub fn watch(proc: &Arc<Process>) {
    *lock_target() = Some(Arc::downgrade(proc));
    start_watcher();
}

/// A native fork child's [`watch`], deferred by [`DEFER`]: most children exec or exit
/// within a millisecond, and a watcher thread costs 110–130 µs per fork. Meanwhile the
/// forwarded signals stay blocked, so they wait in the host's pending set (a signal is
/// only delayed, never lost). A kernel timer sends the calling thread the vCPU wake
/// signal every [`DEFER`] until the watcher runs, interrupting a blocked host call (a
/// spurious EINTR, which the syscall layer restarts); the next exit from guest code then
/// starts the watcher ([`start_if_due`]), as does a fork ([`start_now`]).
#[cfg(target_os = "linux")]
pub fn watch_deferred(proc: &Arc<Process>) {
    *lock_target() = Some(Arc::downgrade(proc));
    crate::signal::wakesig::install_wake_handler();
    crate::signal::wakesig::clear_woken();
    // SAFETY: struct sigevent is integers and a union of pointer-sized fields, all valid
    // zeroed.
    let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
    ev.sigev_notify = libc::SIGEV_THREAD_ID;
    ev.sigev_signo = crate::signal::wakesig::wake_signal();
    ev.sigev_notify_thread_id = crate::thread::host_tid();
    let mut timer: libc::timer_t = std::ptr::null_mut();
    // SAFETY: `ev` and `timer` are locals the call reads and writes; SIGEV_THREAD_ID targets
    // this (live) thread.
    if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut timer) } != 0 {
        return start_watcher();
    }
    // Periodic until the watcher starts: a wake that lands after an exit's
    // `start_if_due` but before the host call blocks interrupts nothing, and the next
    // one does.
    let every = libc::timespec {
        tv_sec: 0,
        tv_nsec: DEFER.as_nanos() as i64,
    };
    let spec = libc::itimerspec {
        it_interval: every,
        it_value: every,
    };
    DEFERRED.store(true, SeqCst);
    // SAFETY: `timer` was just created by timer_create; `spec` is a live itimerspec; the old
    // value is not asked for (null).
    if unsafe { libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) } != 0 {
        DEFERRED.store(false, SeqCst);
        // SAFETY: `timer` was created above and is deleted once, here, on the failure path.
        unsafe { libc::timer_delete(timer) };
        return start_watcher();
    }
    *DEFER_TIMER.lock().unwrap_or_else(|p| p.into_inner()) = Some(timer as usize);
}

/// How long a fork child runs before its watcher starts.
pub const DEFER: std::time::Duration = std::time::Duration::from_millis(1);

/// A deferred watcher is waiting (see [`watch_deferred`]).
static DEFERRED: AtomicBool = AtomicBool::new(false);
/// The deferral's kernel timer (`timer_t` as an address).
static DEFER_TIMER: Mutex<Option<usize>> = Mutex::new(None);

/// Called at every exit from guest code: one relaxed load unless a deferred watcher is
/// waiting; starts it once the deferral has elapsed (the wake signal has then been sent).
#[inline]
pub fn start_if_due() {
    if DEFERRED.load(Relaxed) && crate::signal::wakesig::woken() {
        start_now();
    }
}

/// Disarms a deferred watcher's wake timer without starting the watcher (before a native
/// execve: the program that replaces elfuse must not receive elfuse's wake signal).
/// Returns whether a watcher was deferred.
pub fn cancel_deferral() -> bool {
    if !DEFERRED.swap(false, SeqCst) {
        return false;
    }
    if let Some(t) = DEFER_TIMER.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // SAFETY: a timer this process created and nothing else deletes.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::timer_delete(t as libc::timer_t)
        };
        #[cfg(not(target_os = "linux"))]
        let _ = t;
    }
    true
}

/// Starts a deferred watcher now (before a fork: the children's SIGCHLD need it).
pub fn start_now() {
    if cancel_deferral() {
        #[cfg(target_os = "linux")]
        start_watcher();
    }
}

/// Starts this host process's watcher thread, if it has none yet.
#[cfg(target_os = "linux")]
fn start_watcher() {
    let pid = nix::unistd::getpid().as_raw();
    let mut sfd = lock_sfd();
    if sfd.1 == pid {
        return;
    }
    block_in_this_thread();
    // The peer channel's thread starts with the watcher (deferred with it), with the
    // forwarded signals blocked as here.
    crate::syscall::procpeer::start();
    if sfd.0 >= 0 {
        let _ = nix::unistd::close(sfd.0); // the fork parent's, inherited
    }
    let set = forwarded();
    // SAFETY: `set` is a live sigset_t; -1 asks for a new signalfd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        tracing::warn!(
            "host signal watcher: signalfd: {}",
            std::io::Error::last_os_error()
        );
        *sfd = (-1, 0);
        return;
    }
    *sfd = (fd, pid);
    // Until its handler is installed the wake signal's host default action would end
    // the process.
    crate::signal::wakesig::install_wake_handler();
    // The wake signal's handler pokes the watcher through this pipe when another process
    // sent it (`wakesig`); the pipe, like the signalfd, is this host process's.
    let mut poke = [-1i32; 2];
    // SAFETY: pipe2 writes two fds into `poke`, a local [i32; 2].
    if unsafe { libc::pipe2(poke.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        tracing::warn!(
            "host signal watcher: pipe: {}",
            std::io::Error::last_os_error()
        );
    }
    crate::signal::wakesig::set_notify(poke[1]);
    let spawned = std::thread::Builder::new()
        .name("hostsig".into())
        .spawn(move || watcher(fd, poke[0]));
    if let Err(e) = spawned {
        tracing::warn!("host signal watcher not started: {e}");
    }
}

/// Held by the forking thread across a native fork: the watcher is then not between
/// taking a signal and forwarding it (it holds both locks meanwhile), and the child finds
/// both free when it drops its copy of the guard (the thread that held them is gone).
/// Lock order: this guard → the timer table → the signal actor → mm.
pub struct ForkGuard {
    _sfd: std::sync::MutexGuard<'static, (i32, i32)>,
    _target: std::sync::MutexGuard<'static, Option<Weak<Process>>>,
}

pub fn fork_guard() -> ForkGuard {
    let sfd = lock_sfd();
    let target = lock_target();
    ForkGuard {
        _sfd: sfd,
        _target: target,
    }
}

/// Forwards every forwarded signal the kernel has sent so far (wait4/waitid call it after
/// reaping, so that the child's SIGCHLD is pending before the wait returns, as on Linux).
#[cfg(target_os = "linux")]
pub fn flush() {
    let sfd = lock_sfd();
    if sfd.1 == nix::unistd::getpid().as_raw() {
        drain(sfd);
    }
}

/// Reads and forwards what is pending, then releases the lock (before a stop).
#[cfg(target_os = "linux")]
fn drain(sfd: std::sync::MutexGuard<'static, (i32, i32)>) {
    let mut stop = None;
    crate::signal::wakesig::take_foreign(|code, pid, uid, value| {
        // SAFETY: struct signalfd_siginfo is integers (and padding), valid zeroed.
        let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        si.ssi_signo = crate::signal::wakesig::wake_signal() as u32;
        si.ssi_code = code;
        si.ssi_pid = pid as u32;
        si.ssi_uid = uid;
        si.ssi_ptr = value;
        si.ssi_int = value as i32;
        stop = stop.or(forward(&si));
    });
    loop {
        // SAFETY: struct signalfd_siginfo is integers (and padding), valid zeroed.
        let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: read writes at most `size` bytes, the size of `si`, a local
        // signalfd_siginfo; `sfd.0` is the signalfd held under the lock.
        let n = unsafe { libc::read(sfd.0, (&mut si as *mut libc::signalfd_siginfo).cast(), size) };
        if n != size as isize {
            break;
        }
        stop = stop.or(forward(&si));
    }
    drop(sfd);
    if let Some(sig) = stop {
        // ^Z (or SIGTTIN/SIGTTOU) with the default action: stop now, whatever the vCPUs
        // are doing, by the same signal (the parent's WSTOPSIG).
        crate::signal::jobctl::stop(sig);
    }
}

/// Forwards what the signalfd `fd` and the wake signal's handler (poking `poke`) bring.
/// Drains first: foreign wake signals may have been queued before the watcher existed.
#[cfg(target_os = "linux")]
fn watcher(fd: i32, poke: i32) {
    let mut parent = watch_parent();
    loop {
        let sfd = lock_sfd();
        if sfd.0 != fd {
            return; // replaced (cannot happen in this host process; defensive)
        }
        drain(sfd);
        let mut pfd = [fd, poke, parent].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `pfd` holds 3 pollfds, alive across the call (a negative fd is skipped).
        if unsafe { libc::poll(pfd.as_mut_ptr(), 3, -1) } <= 0 {
            continue;
        }
        if pfd[1].revents != 0 {
            let mut b = [0u8; 64];
            // SAFETY: read writes at most `b.len()` bytes into the local `b`; `poke` is the
            // watcher's own pipe.
            while unsafe { libc::read(poke, b.as_mut_ptr().cast(), b.len()) } > 0 {}
        }
        if pfd[2].revents != 0 {
            // SAFETY: the watcher's own pidfd, closed once here.
            unsafe { libc::close(parent) };
            parent = watch_parent();
        }
    }
}

/// The parent watch: a pidfd of the host parent, readable once it has exited, by which
/// time the kernel has reparented this process (exit_notify reparents the children
/// before it wakes pidfd pollers). Each (re)start republishes the shim's getppid slot,
/// so getppid, served in EL1, follows reparenting. -1 without pidfd_open.
#[cfg(target_os = "linux")]
fn watch_parent() -> i32 {
    loop {
        let ppid = nix::unistd::getppid().as_raw();
        // SAFETY: pidfd_open takes integers; the fd it returns is the watcher's.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, ppid, 0) } as i32;
        if let Some(p) = lock_target().as_ref().and_then(Weak::upgrade) {
            crate::guest::shimdata::ShimData::new(p.ram.clone()).republish_ppid();
        }
        if fd < 0 {
            return -1;
        }
        if nix::unistd::getppid().as_raw() == ppid {
            return fd; // still the parent: the pidfd names the right process
        }
        // SAFETY: the pidfd just opened, closed once here.
        unsafe { libc::close(fd) };
    }
}

/// What the watcher does with one host signal.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Action {
    Drop,
    Send(SigInfo),
    /// A SIGTSTP the guest leaves at its default action: stop.
    Stop,
    /// A signal whose default action ends the process, not handled by the guest: die of
    /// it, as the host's default action would have done.
    Die(u32),
}

/// Forwards one host signal; the stop signal if the process must stop.
#[cfg(target_os = "linux")]
fn forward(si: &libc::signalfd_siginfo) -> Option<u32> {
    let proc = lock_target().as_ref().and_then(Weak::upgrade);
    if let Some((tid, code, pid, uid, value)) =
        crate::syscall::sigremote::decode(si.ssi_code, si.ssi_pid, si.ssi_uid, si.ssi_ptr)
    {
        let info = SigInfo {
            signo: si.ssi_signo,
            code,
            pid,
            uid,
            value,
            ..Default::default()
        };
        return match proc {
            Some(p) => to_thread(&p, tid, info).then_some(si.ssi_signo),
            None => None,
        };
    }
    // The death of a child whose exit signal is not SIGCHLD (`syscall::clone_proc`).
    let mut as_exit = *si;
    let report = si.ssi_signo == SIGCHLD;
    let (si, report) = match proc.as_ref().and_then(|p| {
        p.clone_kids
            .exit_report(si.ssi_signo, si.ssi_code, si.ssi_pid)
    }) {
        None => (si, report),
        Some(None) => return None,
        Some(Some(sig)) => {
            as_exit.ssi_signo = sig;
            (&as_exit, true)
        }
    };
    let action = match &proc {
        Some(p) => decide(
            p.signals.actions()[si.ssi_signo as usize - 1],
            si,
            p.signals.blocked_by_all(),
            report,
        ),
        None => default_only(si.ssi_signo),
    };
    match action {
        Action::Drop => None,
        Action::Stop => Some(si.ssi_signo),
        Action::Die(sig) => die_of_signal(sig),
        Action::Send(info) => {
            tracing::debug!(
                sig = info.signo,
                code = info.code,
                pid = info.pid,
                "host signal for the guest"
            );
            if let Some(p) = proc {
                p.send_signal(Target::Process, info);
            }
            None
        }
    }
}

/// A signal another guest process sent one thread of this one (`syscall::sigremote`),
/// queued for that thread; true if the process must stop.
#[cfg(target_os = "linux")]
fn to_thread(p: &Arc<Process>, tid: i32, info: SigInfo) -> bool {
    let sig = info.signo;
    if p.threads.get(tid).is_none() {
        return false;
    }
    let act = p.signals.actions()[sig as usize - 1];
    if act.handler == SIG_IGN {
        return false;
    }
    let mask = p
        .signals
        .set_mask(tid, crate::signal::state::MaskOp::Block(0));
    if act.handler == SIG_DFL && mask & crate::signal::sig_bit(sig) == 0 {
        match default_only(sig) {
            Action::Die(s) => die_of_signal(s),
            Action::Stop => return true,
            _ => return false,
        };
    }
    p.send_signal(Target::Thread(tid), info);
    false
}

/// The default action alone (no guest process yet, or it is gone).
#[cfg(target_os = "linux")]
fn default_only(sig: u32) -> Action {
    use crate::signal::{default_action, DefaultAction};
    match default_action(sig) {
        DefaultAction::Terminate | DefaultAction::Core => Action::Die(sig),
        DefaultAction::Stop => Action::Stop,
        DefaultAction::Ignore | DefaultAction::Continue => Action::Drop,
    }
}

/// Linux's choice for a signal sent to a process whose disposition is `act`. `report`: a
/// child's report (SIGCHLD, or a child's own exit signal), which carries its status.
#[cfg(target_os = "linux")]
fn decide(
    act: crate::signal::KSigaction,
    si: &libc::signalfd_siginfo,
    blocked: u64,
    report: bool,
) -> Action {
    let sig = si.ssi_signo;
    let mut info = SigInfo {
        signo: sig,
        code: si.ssi_code,
        pid: si.ssi_pid as i32,
        uid: si.ssi_uid,
        value: si.ssi_ptr,
        ..Default::default()
    };
    if act.handler == SIG_IGN {
        return Action::Drop;
    }
    if sig == SIGCHLD {
        // Sent whatever the disposition (SIG_DFL: for signalfd and sigwait users).
        if act.flags & SA_NOCLDSTOP != 0 && matches!(si.ssi_code, CLD_STOPPED | CLD_CONTINUED) {
            return Action::Drop;
        }
    }
    // A child's report carries its status and times.
    if report {
        info.chld = Some(ChldInfo {
            status: si.ssi_status,
            utime: si.ssi_utime as i64,
            stime: si.ssi_stime as i64,
        });
    }
    if sig == SIGCHLD {
        return Action::Send(info);
    }
    let blocked = blocked & crate::signal::sig_bit(sig) != 0;
    if act.handler == SIG_DFL && !blocked {
        // SIGTSTP stops now, whatever the vCPUs are doing (^Z while blocked in a read);
        // SIGCONT already continued the process. A signal that ends the process ends it
        // right here, by the same host signal (as the host's default action would).
        return default_only(sig);
    }
    // A signal every thread blocks stays pending (for sigwait, sigtimedwait or a
    // signalfd), whatever its disposition, as on Linux: the guest's signal state
    // queues it.
    Action::Send(info)
}

/// Elsewhere (macOS) there is no signalfd: host signals do not reach the guest yet.
#[cfg(not(target_os = "linux"))]
pub fn watch_deferred(proc: &Arc<Process>) {
    watch(proc)
}

#[cfg(not(target_os = "linux"))]
pub fn watch(_: &Arc<Process>) {
    tracing::debug!("host signals are not forwarded to the guest on this host");
}

#[cfg(not(target_os = "linux"))]
pub fn flush() {}
