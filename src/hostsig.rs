//! Host signals that become guest signals: SIGCHLD (a guest child is a host child, so
//! the host kernel reports its exits, stops and continues), SIGCONT and SIGTSTP (job
//! control from a shell or another guest process).
//!
//! Every host thread blocks these three ([`block_in_this_thread`], called first thing in
//! `main`, so all threads inherit it); one watcher thread per host process takes them
//! with `sigwaitinfo` and sends the guest signal with `Process::send_signal`. Blocking
//! host calls of the vCPU threads are therefore never interrupted by them. Blocking
//! changes no kernel action: SIGCONT continues the process when generated, whatever the
//! mask, and an exited child still becomes a zombie (or is auto-reaped, see
//! `fork::mirror_sigchld`). SIGTTIN/SIGTTOU are left alone: a blocked SIGTTIN would turn
//! a background read of the terminal into EIO.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::process::Process;
use crate::sigframe::ChldInfo;
use crate::signal::{SigInfo, Target, SIGCHLD, SIGCONT, SIGTSTP, SIG_DFL, SIG_IGN};

const SA_NOCLDSTOP: u64 = 1;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// The host process's guest process (a fork child replaces it).
static TARGET: Mutex<Option<Weak<Process>>> = Mutex::new(None);
/// Host pid the watcher thread runs in (a native fork child has none until started).
static WATCHER_PID: AtomicI32 = AtomicI32::new(0);

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

/// Routes this host process's forwarded signals to `proc`, starting the watcher thread
/// if this host process has none yet.
pub fn watch(proc: &Arc<Process>) {
    *TARGET.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(proc));
    let pid = unsafe { libc::getpid() };
    if WATCHER_PID.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    block_in_this_thread();
    let spawned = std::thread::Builder::new()
        .name("hostsig".into())
        .spawn(watcher);
    if let Err(e) = spawned {
        tracing::warn!("host signal watcher not started: {e}");
        WATCHER_PID.store(0, Ordering::Release);
    }
}

fn watcher() {
    let set = forwarded();
    loop {
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(&set, &mut si) };
        if sig < 0 {
            continue; // EINTR (the vCPU wake signal is not ours)
        }
        let proc = TARGET
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        match proc {
            Some(p) => forward(&p, sig, &si),
            None if sig == libc::SIGTSTP => crate::jobctl::stop(SIGTSTP),
            None => {}
        }
    }
}

fn forward(proc: &Process, sig: i32, si: &libc::siginfo_t) {
    let act = proc.signals().actions[sig as usize - 1];
    // SAFETY: si_pid/si_uid/si_status read the union as the kernel filled it for these
    // signals (kill-style or SIGCHLD layout).
    let (pid, uid) = unsafe { (si.si_pid(), si.si_uid()) };
    let mut info = SigInfo {
        signo: sig as u32,
        code: si.si_code,
        pid,
        uid,
        ..Default::default()
    };
    match sig as u32 {
        SIGCHLD => {
            if act.handler == SIG_IGN
                || (act.flags & SA_NOCLDSTOP != 0
                    && matches!(si.si_code, CLD_STOPPED | CLD_CONTINUED))
            {
                return;
            }
            // SAFETY: as above; utime/stime follow si_status in the SIGCHLD layout.
            info.chld = Some(unsafe {
                ChldInfo {
                    status: si.si_status(),
                    utime: si.si_utime(),
                    stime: si.si_stime(),
                }
            });
        }
        SIGTSTP if act.handler == SIG_DFL => {
            // ^Z with the default action: stop now, whatever the vCPUs are doing.
            crate::jobctl::stop(SIGTSTP);
            return;
        }
        SIGCONT if act.handler == SIG_DFL => return, // already continued by the kernel
        _ if act.handler == SIG_IGN => return,
        _ => {}
    }
    tracing::debug!(sig, code = si.si_code, pid, "host signal for the guest");
    proc.send_signal(Target::Process, info);
}
