//! Per-call facts the syscall table keeps on each row beyond dispatch (`table`): what a
//! host EINTR means (restart codes) and whether EPIPE raises SIGPIPE. A leaf module, so
//! the signal layer can read the types without importing the handlers.

/// What a host EINTR of the call means once a signal handler runs (Linux's restart
/// codes; see `signal::restart`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// It stays EINTR.
    No,
    /// ERESTARTSYS: restarted if the handler has SA_RESTART.
    Sys,
    /// ERESTARTNOHAND: restarted only when no handler runs.
    NoHand,
    /// futex: a wait with a timeout is NoHand, one without is Sys, the rest No.
    Futex,
}

/// Whether a failure with EPIPE raises SIGPIPE in the calling thread (`sigpipe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigPipe {
    No,
    Always,
    /// Unless argument `n` (a flags word) has MSG_NOSIGNAL.
    UnlessNoSignal(usize),
}

/// Per-call facts beyond dispatch, kept on the call's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub restart: Restart,
    pub sigpipe: SigPipe,
}

impl Facts {
    pub const NONE: Facts = Facts {
        restart: Restart::No,
        sigpipe: SigPipe::No,
    };
    pub const fn restart(self, restart: Restart) -> Facts {
        Facts { restart, ..self }
    }
    pub const fn sigpipe(self, sigpipe: SigPipe) -> Facts {
        Facts { sigpipe, ..self }
    }
}
