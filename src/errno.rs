//! Linux (asm-generic) errno values as the guest sees them, and the seam to the host's.

/// A guest-visible error number (positive; syscalls return its negation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $v:expr),* $(,)?) => {
        impl Errno { $(pub const $name: Errno = Errno($v);)* }
        /// Symbolic name of a Linux errno, for traces.
        pub fn errno_name(e: i32) -> Option<&'static str> {
            match e { $($v => Some(stringify!($name)),)* _ => None }
        }
    };
}

errnos! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
    ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
    EFAULT = 14, ENOTBLK = 15, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19,
    ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25,
    ETXTBSY = 26, EFBIG = 27, ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31,
    EPIPE = 32, EDOM = 33, ERANGE = 34, EDEADLK = 35, ENAMETOOLONG = 36, ENOLCK = 37,
    ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENOMSG = 42, EOVERFLOW = 75,
    EILSEQ = 84, ENOTSOCK = 88, EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91,
    ENOPROTOOPT = 92, EPROTONOSUPPORT = 93, ESOCKTNOSUPPORT = 94, EOPNOTSUPP = 95,
    EPFNOSUPPORT = 96, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99,
    ENETDOWN = 100, ENETUNREACH = 101, ENETRESET = 102, ECONNABORTED = 103,
    ECONNRESET = 104, ENOBUFS = 105, EISCONN = 106, ENOTCONN = 107, ESHUTDOWN = 108,
    ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTDOWN = 112, EHOSTUNREACH = 113,
    EALREADY = 114, EINPROGRESS = 115, ESTALE = 116, EDQUOT = 122,
    // Kernel-internal restart codes (never seen by the guest). A blocking call that a
    // signal interrupted returns one of these; the vCPU loop, once it knows whether a
    // handler runs and with which flags, turns it into -EINTR or a restart of the call,
    // as Linux's signal delivery does:
    // - ERESTARTSYS: restart if no handler runs or the handler has SA_RESTART (read,
    //   write, wait4, futex without timeout, ...);
    // - ERESTARTNOINTR: always restart;
    // - ERESTARTNOHAND: restart only if no handler runs (ppoll, pselect6, epoll_pwait,
    //   rt_sigsuspend, rt_sigtimedwait);
    // - ERESTART_RESTARTBLOCK: like ERESTARTNOHAND, the call resumes with the time left
    //   (nanosleep, clock_nanosleep, futex with a timeout).
    ERESTARTSYS = 512, ERESTARTNOINTR = 513, ERESTARTNOHAND = 514,
    ERESTART_RESTARTBLOCK = 516,
}

impl Errno {
    /// Converts a host errno to the guest's. On Linux hosts the numbering is the same
    /// (asm-generic and x86_64 agree on every errno); a macOS host maps here.
    pub fn from_host(e: i32) -> Errno {
        #[cfg(target_os = "linux")]
        {
            Errno(e)
        }
        #[cfg(not(target_os = "linux"))]
        {
            host_to_linux(e)
        }
    }

    /// The calling thread's last host error.
    pub fn last() -> Errno {
        Errno::from_host(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))
    }

    pub fn from_io(e: &std::io::Error) -> Errno {
        e.raw_os_error().map_or(Errno::EIO, Errno::from_host)
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Self {
        Errno::from_host(e as i32)
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno::from_io(&e)
    }
}

#[cfg(not(target_os = "linux"))]
fn host_to_linux(e: i32) -> Errno {
    // BSD numbering agrees with Linux up to ERANGE (34); beyond it the tables differ.
    match e {
        1..=34 => Errno(e),
        libc::EAGAIN => Errno::EAGAIN,
        libc::ENOSYS => Errno::ENOSYS,
        libc::ENOTEMPTY => Errno::ENOTEMPTY,
        libc::ELOOP => Errno::ELOOP,
        libc::ENAMETOOLONG => Errno::ENAMETOOLONG,
        libc::EOVERFLOW => Errno::EOVERFLOW,
        libc::ENOTSUP => Errno::EOPNOTSUPP,
        libc::EDEADLK => Errno::EDEADLK,
        libc::ENOLCK => Errno::ENOLCK,
        _ => Errno::EIO,
    }
}
