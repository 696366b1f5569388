//! execve of a host-native program (an x86_64 ELF on an x86_64 host): as qemu-user
//! hands such an execve to the host kernel, the guest process becomes that program,
//! running natively. It gets what a Linux execve keeps: the guest's open fds (those
//! without close-on-exec, at the same numbers), cwd, umask, blocked signals and ignored
//! dispositions, the NOFILE limit, and the pid; nothing of elfuse's own (its fds are
//! closed by the exec).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::Path;

use crate::errno::Errno;
use crate::signal::SIG_IGN;
use crate::syscall::Ctx;

/// The host's ELF machine, where it is not the guest's.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const HOST_MACHINE: Option<u16> = Some(62);
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
const HOST_MACHINE: Option<u16> = None;

/// Whether `head` (the file's first bytes) is a 64-bit little-endian ELF for the host.
pub fn is_native(head: &[u8]) -> bool {
    let Some(m) = HOST_MACHINE else {
        return false;
    };
    head.len() >= 20
        && head.starts_with(b"\x7fELF")
        && head[4] == 2
        && head[5] == 1
        && u16::from_le_bytes([head[18], head[19]]) == m
}

fn cstrings(v: &[Vec<u8>]) -> Result<Vec<CString>, Errno> {
    v.iter()
        .map(|s| CString::new(s.clone()).map_err(|_| Errno::EINVAL))
        .collect()
}

/// Becomes `host_path` natively. Returns only on an error before the point of no return;
/// after it, a failed exec ends the process.
pub fn exec(
    ctx: &mut Ctx,
    host_path: &Path,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<std::convert::Infallible, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(host_path.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
    let argv = cstrings(argv)?;
    let envp = cstrings(envp)?;
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envpp: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    envpp.push(std::ptr::null());

    // The point of no return: the other guest threads end, the fds are rearranged.
    ctx.proc.threads.kill_others(ctx.thread.tid);
    let kept: Vec<(i32, RawFd)> = ctx
        .fds()
        .fork_snapshot()
        .snapshot()
        .into_iter()
        .filter(|(_, _, cloexec)| !cloexec)
        .map(|(n, f, _)| (n, f.raw()))
        .collect();
    place_fds(&kept);
    drop_wakes();
    restore_signals(ctx);
    let (cur, max) = ctx.fds().limits();
    let rl = libc::rlimit {
        rlim_cur: cur as libc::rlim_t,
        rlim_max: max as libc::rlim_t,
    };
    // SAFETY: `rl` is a live rlimit; `path`, `argp` and `envpp` are a NUL-terminated path and
    // null-terminated arrays of pointers to live CStrings, all kept alive by this frame
    // across execve.
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        libc::execve(path.as_ptr(), argp.as_ptr(), envpp.as_ptr());
    }
    let e = std::io::Error::last_os_error();
    eprintln!("elfuse: execve {}: {e}", host_path.display());
    crate::signal::hostact::die_of_signal(crate::signal::SIGKILL)
}

/// Puts each kept guest fd's host fd at the guest's number (clearing close-on-exec) and
/// marks every other host fd close-on-exec.
fn place_fds(kept: &[(i32, RawFd)]) {
    let top = kept.iter().map(|k| k.0).max().unwrap_or(2).max(2) + 1;
    // Out of the way first, so that placing one cannot clobber another's source.
    let moved: Vec<(i32, RawFd)> = kept
        .iter()
        // SAFETY: F_DUPFD_CLOEXEC takes an int; the fds are the guest's open host fds, held
        // by the snapshot.
        .map(|&(n, h)| (n, unsafe { libc::fcntl(h, libc::F_DUPFD_CLOEXEC, top) }))
        .collect();
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open {
        // SAFETY: F_SETFD takes an int; `fd` was listed open in /proc/self/fd (a stale one
        // only fails).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    for (n, tmp) in moved {
        if tmp >= 0 {
            // dup2 clears FD_CLOEXEC on `n`.
            // SAFETY: dup2 takes two ints; `tmp` is the dup made above.
            unsafe { libc::dup2(tmp, n) };
        }
    }
}

/// No wake signal of elfuse's may reach the program: a pending one survives execve and
/// its default action would kill it. The deferred watcher's timer (a fork child's) is
/// disarmed, the other threads are gone, and what was already sent is taken out.
fn drop_wakes() {
    let _ = crate::signal::hostsig::cancel_deferral();
    #[cfg(target_os = "linux")]
    // SAFETY: a signal set on the stack; sigtimedwait with a zero timeout never blocks.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, crate::signal::wakesig::wake_signal());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) > 0 {}
    }
}

/// The guest's blocked mask and ignored signals on the host thread that execs (handlers
/// become the default, as any execve does).
fn restore_signals(ctx: &Ctx) {
    let actions = ctx.proc.signals.actions();
    for sig in 1..=64i32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let ign = actions
            .get(sig as usize - 1)
            .is_some_and(|a| a.handler == SIG_IGN);
        // SAFETY: plain dispositions for a process about to exec.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = if ign { libc::SIG_IGN } else { libc::SIG_DFL };
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    let mask = ctx.thread.sigmask;
    // SAFETY: the kernel's 64-bit mask, the same signal numbers as the guest's.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}
