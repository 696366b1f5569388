//! Host signals that become guest signals: SIGCHLD (a guest child is a host child, so
//! the host kernel reports its exits, stops and continues), SIGCONT and SIGTSTP (job
//! control from a shell or another guest process).
//!
//! Every host thread blocks these three ([`block_in_this_thread`], called first thing in
//! `main`, so all threads inherit it); one watcher thread per host process polls a host
//! signalfd for them and sends the guest signal with `Process::send_signal`. Blocking
//! host calls of the vCPU threads are therefore never interrupted by them. Blocking
//! changes no kernel action: SIGCONT continues the process when generated, whatever the
//! mask, and an exited child still becomes a zombie (or is auto-reaped, see
//! `fork::mirror_sigchld`). SIGTTIN/SIGTTOU are left alone: a blocked SIGTTIN would turn
//! a background read of the terminal into EIO.

use std::sync::{Arc, Mutex, Weak};

use crate::process::Process;
use crate::sigframe::ChldInfo;
use crate::signal::{SigInfo, Target, SIGCHLD, SIGCONT, SIGTSTP, SIG_DFL, SIG_IGN};

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

fn forwarded() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGCONT, libc::SIGTSTP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the forwarded signals in the calling thread (and the threads it creates).
pub fn block_in_this_thread() {
    let set = forwarded();
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

#[cfg(target_os = "linux")]
fn lock_sfd() -> std::sync::MutexGuard<'static, (i32, i32)> {
    SFD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Routes this host process's forwarded signals to `proc`, starting the watcher thread
/// if this host process has none yet.
#[cfg(target_os = "linux")]
pub fn watch(proc: &Arc<Process>) {
    *TARGET.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(proc));
    let pid = unsafe { libc::getpid() };
    let mut sfd = lock_sfd();
    if sfd.1 == pid {
        return;
    }
    block_in_this_thread();
    if sfd.0 >= 0 {
        unsafe { libc::close(sfd.0) }; // the fork parent's, inherited
    }
    let set = forwarded();
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
    let spawned = std::thread::Builder::new()
        .name("hostsig".into())
        .spawn(move || watcher(fd));
    if let Err(e) = spawned {
        tracing::warn!("host signal watcher not started: {e}");
    }
}

/// Forwards every forwarded signal the kernel has sent so far (wait4/waitid call it after
/// reaping, so that the child's SIGCHLD is pending before the wait returns, as on Linux).
#[cfg(target_os = "linux")]
pub fn flush() {
    let sfd = lock_sfd();
    if sfd.1 == unsafe { libc::getpid() } {
        drain(sfd);
    }
}

/// Reads and forwards what is pending, then releases the lock (before a stop).
#[cfg(target_os = "linux")]
fn drain(sfd: std::sync::MutexGuard<'static, (i32, i32)>) {
    let mut stop = false;
    loop {
        let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe { libc::read(sfd.0, (&mut si as *mut libc::signalfd_siginfo).cast(), size) };
        if n != size as isize {
            break;
        }
        stop |= forward(&si);
    }
    drop(sfd);
    if stop {
        // ^Z with the default action: stop now, whatever the vCPUs are doing.
        crate::jobctl::stop(SIGTSTP);
    }
}

#[cfg(target_os = "linux")]
fn watcher(fd: i32) {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
            continue; // EINTR
        }
        let sfd = lock_sfd();
        if sfd.0 != fd {
            return; // replaced (cannot happen in this host process; defensive)
        }
        drain(sfd);
    }
}

/// Sends the guest signal for one host signal; true if the process must stop (a SIGTSTP
/// the guest leaves at its default action).
#[cfg(target_os = "linux")]
fn forward(si: &libc::signalfd_siginfo) -> bool {
    let sig = si.ssi_signo;
    let proc = TARGET
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(Weak::upgrade);
    let Some(proc) = proc else {
        return sig == SIGTSTP;
    };
    let act = proc.signals().actions[sig as usize - 1];
    let mut info = SigInfo {
        signo: sig,
        code: si.ssi_code,
        pid: si.ssi_pid as i32,
        uid: si.ssi_uid,
        ..Default::default()
    };
    match sig {
        SIGCHLD => {
            if act.handler == SIG_IGN
                || (act.flags & SA_NOCLDSTOP != 0
                    && matches!(si.ssi_code, CLD_STOPPED | CLD_CONTINUED))
            {
                return false;
            }
            info.chld = Some(ChldInfo {
                status: si.ssi_status,
                utime: si.ssi_utime as i64,
                stime: si.ssi_stime as i64,
            });
        }
        SIGTSTP if act.handler == SIG_DFL => return true,
        SIGCONT if act.handler == SIG_DFL => return false, // the kernel continued us
        _ if act.handler == SIG_IGN => return false,
        _ => {}
    }
    tracing::debug!(
        sig,
        code = si.ssi_code,
        pid = si.ssi_pid,
        "host signal for the guest"
    );
    proc.send_signal(Target::Process, info);
    false
}

/// Elsewhere (macOS) there is no signalfd: host signals do not reach the guest yet.
#[cfg(not(target_os = "linux"))]
pub fn watch(_: &Arc<Process>) {
    tracing::debug!("host signals are not forwarded to the guest on this host");
}

#[cfg(not(target_os = "linux"))]
pub fn flush() {}
