//! The host's own signal actions that stand for the guest's: the SIGCHLD disposition the
//! kernel applies to children (auto-reaping, stop reports), and ending the host process
//! by a signal as the guest's death by it.

/// Mirrors the guest's SIGCHLD disposition onto the host where it changes what the
/// kernel does with children: SIG_IGN or SA_NOCLDWAIT make exited children reap
/// themselves (wait4 then reports ECHILD), as on Linux. With SA_NOCLDWAIT and no SIG_IGN
/// the kernel still sends SIGCHLD, which `hostsig` forwards to the guest's handler.
/// SA_NOCLDSTOP is mirrored too.
pub fn mirror_sigchld(act: &crate::signal::KSigaction) {
    const SA_NOCLDSTOP: u64 = 1;
    const SA_NOCLDWAIT: u64 = 2;
    // SAFETY: sigaction is integers, a sigset and a handler word, valid zeroed;
    // SIG_IGN/SIG_DFL need no handler function; `sa` outlives the call and the old action is
    // not asked for (null).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = if act.handler == crate::signal::SIG_IGN {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        if act.flags & SA_NOCLDWAIT != 0 {
            sa.sa_flags |= libc::SA_NOCLDWAIT;
        }
        // Not generated at all, as on Linux: a filtered-out stop report still pending on
        // the host would swallow a later exit report (standard signals do not queue).
        if act.flags & SA_NOCLDSTOP != 0 {
            sa.sa_flags |= libc::SA_NOCLDSTOP;
        }
        libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
    }
}

/// Ends this host process by the real host signal `sig`, so that the parent's wait4
/// sees WIFSIGNALED(sig) (no core dump: RLIMIT_CORE is set to 0). Falls back to exit
/// status 128+sig if the signal does not kill.
pub fn die_of_signal(sig: u32) -> ! {
    // SAFETY: rlimit/sigset_t locals outlive each call; SIG_DFL needs no handler; kill
    // targets this process itself with the signal it is to die of.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::signal(sig as i32, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig as i32);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig as i32);
    }
    // The signal is delivered before kill returns to an unblocked thread; if we are
    // still here it did not kill (an ignorable default), so exit as a shell would show.
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::process::exit(128 + sig as i32)
}
