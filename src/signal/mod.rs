//! Guest signals.
//!
//! - `state`: the data (dispositions, process- and thread-directed pending queues, each
//!   thread's blocked mask) and Linux's rules over it, as plain single-threaded code.
//! - `actor`: the signal actor, the only owner of that state. Threads and senders talk
//!   to it with messages; after each change it republishes the shim's SIGTIMER attention
//!   bit (and the vDSO's mirror) and names the vCPUs that must notice.
//! - `restart`: what a blocking call interrupted by a signal becomes (EINTR or a restart:
//!   the ERESTART* codes of `errno`).
//! - `wait`: blocking the host thread until a guest signal arrives, without lost wake-ups.
//!
//! Signals are acted upon by each vCPU thread at its exits from guest code (after a
//! syscall, on a kick, on a fault): see `vcpu::deliver_pending`.

pub mod actor;
pub mod altstack;
pub mod frame;
pub mod hostact;
pub mod hostsig;
pub mod info;
pub mod jobctl;
pub mod restart;
pub mod state;
pub mod timers;
pub mod wait;
pub mod wakesig;

pub use info::SigInfo;

pub const NSIG: usize = 64;

pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// The mask while a handler for `sig` runs.
pub fn handler_mask(old: u64, act: &KSigaction, sig: u32) -> u64 {
    let mut m = old | act.mask;
    if act.flags & SA_NODEFER == 0 {
        m |= sig_bit(sig);
    }
    m & !(sig_bit(SIGKILL) | sig_bit(SIGSTOP))
}

pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
#[cfg(test)]
pub const SIGUSR1: u32 = 10;
pub const SIGSEGV: u32 = 11;
#[cfg(test)]
pub const SIGUSR2: u32 = 12;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGWINCH: u32 = 28;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// Guest `struct sigaction` as the kernel sees it on AArch64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Where a signal is sent: the whole process (any thread that does not block it takes it)
/// or one thread (tkill, tgkill, a synchronous fault, SIGEV_THREAD_ID timers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Process,
    Thread(i32),
}

/// What the default action of a signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate with a core dump (the exit status is the same for us: 128+N).
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV => DefaultAction::Core,
        24 | 25 | 31 => DefaultAction::Core, // SIGXCPU, SIGXFSZ, SIGSYS
        _ => DefaultAction::Terminate,
    }
}

pub fn sig_bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// What the caller must do about a pending signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposal {
    /// The process dies of `sig`.
    Kill(u32),
    /// The default action of a stop signal: the caller stops the process
    /// (`jobctl::stop`).
    Stop(u32),
    /// Run the guest handler `act` for `info`; the thread's mask was `old_mask` and has
    /// already been set to the handler's.
    Handle {
        act: KSigaction,
        info: SigInfo,
        old_mask: u64,
    },
}

/// The kernel's first real-time signal (libcs reserve 32..34 for themselves).
pub const SIGRTMIN: u32 = 32;
/// SIGKILL and SIGSTOP: never blocked, caught or ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
