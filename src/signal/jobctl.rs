//! Job control: the default action of SIGSTOP, SIGTSTP, SIGTTIN and SIGTTOU stops the
//! whole guest process. A guest process is one host process, so it stops by stopping
//! the host process with the same signal: the parent (a guest's `waitpid(WUNTRACED)`, a
//! shell) then sees WIFSTOPPED with the right WSTOPSIG, and a SIGCONT from anyone
//! continues it. A handled SIGCONT reaches the guest through the host-signal watcher
//! (`hostsig`), which also turns a host SIGTSTP (^Z) into a guest one.
//!
//! Stopping this way needs no quiescing of the other vCPU threads: the kernel's group
//! stop parks every host thread of the process, wherever it is (guest code, a blocking
//! host call, an actor), and resumes them all on SIGCONT.

use crate::signal::{sig_bit, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU};

/// True for the signals whose default action is to stop.
pub fn is_stop_signal(sig: u32) -> bool {
    matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU)
}

/// The pending signals that generating `sig` discards (Linux's `prepare_signal`): a
/// stop signal cancels a pending SIGCONT, SIGCONT cancels every pending stop signal.
pub fn discarded_by(sig: u32) -> u64 {
    if is_stop_signal(sig) {
        sig_bit(SIGCONT)
    } else if sig == SIGCONT {
        [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]
            .iter()
            .fold(0, |m, &s| m | sig_bit(s))
    } else {
        0
    }
}

/// Stops this host process (all its threads) by `sig`, returning once it has been
/// continued. For SIGTSTP/SIGTTIN/SIGTTOU the kernel itself discards the stop in an
/// orphaned process group, exactly as it would for a native Linux process.
pub fn stop(sig: u32) {
    debug_assert!(is_stop_signal(sig));
    tracing::debug!(sig, "job control: stopping the process");
    unsafe {
        if sig == SIGSTOP {
            // Cannot be blocked or caught: the group stop begins before kill returns.
            libc::kill(libc::getpid(), libc::SIGSTOP);
            return;
        }
        // The host threads block SIGTSTP (see `hostsig`) and never handle TTIN/TTOU: let
        // this thread take it, with the host's default action (stop), then block again.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig as i32);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut old);
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            sig as libc::c_long,
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    tracing::debug!(sig, "job control: continued");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_continue_cancel_each_other() {
        assert_eq!(discarded_by(SIGTSTP), sig_bit(SIGCONT));
        let stops = discarded_by(SIGCONT);
        assert!(stops & sig_bit(SIGSTOP) != 0 && stops & sig_bit(SIGTTOU) != 0);
        assert_eq!(stops & sig_bit(SIGCONT), 0);
        assert_eq!(discarded_by(crate::signal::SIGUSR1), 0);
    }
}
