//! execve: replace the process's program, keeping the process (pid, fds without
//! CLOEXEC, ignored signals, mask, pending signals, cwd, umask, rlimits).
//!
//! Everything that can fail with an error the caller sees is checked first: the file
//! (ENOENT, EACCES for a non-regular or non-executable file), `#!` scripts (interpreter
//! plus an optional single argument, chained at most [`MAX_SCRIPT_DEPTH`] deep, ELOOP
//! beyond), ELF validity (ENOEXEC for anything that is neither ELF nor script), the
//! interpreter's existence, argv/envp size (E2BIG). Then the point of no return: the old
//! address space is unmapped and a fresh one built with boot.rs's loading pieces; a
//! failure past this point kills the process with SIGSEGV, as Linux does.
//! The vCPU restarts at the new entry with zeroed registers and no stale translations.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::backend::{Invalidate, Reg, SysReg};
use crate::errno::Errno;
use crate::guest::layout::RAM_SIZE;
use crate::guest::loader;
use crate::guest::mm::Mm;
use crate::image;
use crate::mapped::{Image, MappedFile};
use crate::process::Process;
use crate::signal::SIGSEGV;
use crate::syscall::{Ctx, Stop, SysResult};

/// Longest single argument or environment string (32 pages, as Linux).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// How many `#!` scripts may be chained before the final ELF: Linux's exec_binprm
/// allows interpreter depth 0..=5 (checked on Linux 6.18: five nested scripts run,
/// six give ELOOP). The check comes after the next file is opened, as Linux's does.
pub const MAX_SCRIPT_DEPTH: usize = 5;
/// Linux reads this much of a file to recognise it (the `#!` line must fit).
const BINPRM_BUF_SIZE: usize = 256;

/// What to execute: a guest path relative to `dirfd` (or, empty, `dirfd` itself).
pub struct Target {
    pub dirfd: u64,
    pub path: Vec<u8>,
    pub nofollow: bool,
}

/// Bytes argv + envp may take on the new stack (strings, NULs and pointers): a quarter
/// of RLIMIT_STACK as Linux, at least 128 KiB, and no more than our fixed 8 MiB stack
/// leaves room for.
pub fn arg_budget(proc: &Process) -> usize {
    let stack = proc.rlimits()[3].cur;
    (stack / 4).clamp(128 << 10, 6 << 20) as usize
}

/// execve first ends every other thread of the process (Linux's de_thread); a caller
/// that is not the leader then takes over the leader's tid (the pid), as on Linux:
/// registry entry, `ThreadState::tid` and CONTEXTIDR_EL1 (what the shim's gettid reads).
fn kill_other_threads(ctx: &mut Ctx) -> Result<(), String> {
    let proc = ctx.proc;
    let me = ctx.thread.tid;
    proc.threads.kill_others(me);
    if me == proc.pid {
        return Ok(());
    }
    if let Some(t) = proc.threads.get(me) {
        proc.threads.become_leader(&t);
        // The signal actor knows threads by tid: the old leader left it when it ended;
        // this thread comes back under the pid (its own pending signals are dropped).
        proc.signals.unregister(me);
        proc.signals.register(t.tid(), ctx.thread.sigmask, true);
    }
    ctx.thread.tid = proc.pid;
    ctx.vcpu
        .set_sys_reg(SysReg::ContextidrEl1, proc.pid as u64)
        .map_err(|e| e.0)
}

/// Opens the file to execute and checks that it may be executed.
fn open_exec(ctx: &Ctx, t: &Target) -> Result<(File, PathBuf), Errno> {
    let file = if t.path.is_empty() {
        let f = ctx.file(t.dirfd)?;
        // SAFETY: F_DUPFD_CLOEXEC takes an int; `f` keeps the fd open.
        let dup = unsafe { libc::fcntl(f.raw(), libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the dup succeeded (checked): `dup` is a new fd owned by nobody else.
        unsafe { File::from_raw_fd(dup) }
    } else {
        let how = if t.nofollow {
            crate::syscall::resolve::NOFOLLOW
        } else {
            crate::syscall::resolve::FOLLOW
        };
        let (dir, c) = crate::syscall::at::at_how(ctx, t.dirfd, &t.path, how)?;
        // O_NONBLOCK: a FIFO is refused below (EACCES) instead of waiting for a writer.
        let mut fl = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK;
        if t.nofollow {
            fl |= libc::O_NOFOLLOW;
        }
        // SAFETY: `c` is a NUL-terminated CString and `dir` holds its host fd open for the
        // call.
        let fd = unsafe { libc::openat(dir.raw(), c.as_ptr(), fl) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: openat succeeded (checked): `fd` is a new fd owned by nobody else.
        unsafe { File::from_raw_fd(fd) }
    };
    let meta = file.metadata().map_err(|e| Errno::from_io(&e))?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    // The exact rule for this user (root may run anything with some x bit).
    let me = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
    // SAFETY: `me` is a NUL-terminated CString the call only reads.
    if unsafe { libc::faccessat(libc::AT_FDCWD, me.as_ptr(), libc::X_OK, libc::AT_EACCESS) } != 0
        && Errno::last() == Errno::EACCES
    {
        return Err(Errno::EACCES);
    }
    let host = std::fs::read_link(me.to_str().unwrap_or_default())
        .unwrap_or_else(|_| PathBuf::from(std::ffi::OsStr::from_bytes(&t.path)));
    Ok((file, host))
}

/// Parses a `#!` line: the interpreter and at most one argument (the rest of the line).
fn parse_shebang(head: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), Errno> {
    let line = &head[2..];
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(n) => &line[..n],
        // The whole buffer without a newline: the interpreter name may be cut short.
        None if head.len() == BINPRM_BUF_SIZE => return Err(Errno::ENOEXEC),
        None => line,
    };
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !ws(b)).ok_or(Errno::ENOEXEC)?;
    let line = &line[start..];
    let end = line.iter().position(ws).unwrap_or(line.len());
    let interp = line[..end].to_vec();
    let rest = &line[end..];
    let arg = match (
        rest.iter().position(|b| !ws(b)),
        rest.iter().rposition(|b| !ws(b)),
    ) {
        (Some(a), Some(b)) => Some(rest[a..=b].to_vec()),
        _ => None,
    };
    Ok((interp, arg))
}

/// execve proper. On success the vCPU's registers are already set for the new program.
pub fn exec(ctx: &mut Ctx, mut t: Target, mut argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult {
    if argv.is_empty() {
        // Linux 5.18+: a program is never started with argc == 0.
        argv.push(Vec::new());
    }
    let execfn = if t.path.is_empty() {
        format!("/dev/fd/{}", t.dirfd as i32).into_bytes()
    } else {
        t.path.clone()
    };
    let budget = arg_budget(ctx.proc);
    let mut depth = 0;
    let (file, host_path) = loop {
        let (file, host) = open_exec(ctx, &t)?;
        if depth > MAX_SCRIPT_DEPTH {
            return Err(Errno::ELOOP);
        }
        let mut head = vec![0u8; BINPRM_BUF_SIZE];
        // SAFETY: pread writes at most `head.len()` bytes into `head`, a host Vec of that
        // length; `file` keeps the fd open.
        let n = unsafe { libc::pread(file.as_raw_fd(), head.as_mut_ptr().cast(), head.len(), 0) };
        head.truncate(n.max(0) as usize);
        if crate::native_exec::is_native(&head) {
            drop(file);
            let Err(e) = crate::native_exec::exec(ctx, &host, &argv, &envp);
            return Err(e);
        }
        if head.starts_with(b"\x7fELF") {
            break (file, host);
        }
        if !head.starts_with(b"#!") {
            return Err(Errno::ENOEXEC);
        }
        depth += 1;
        let (interp, arg) = parse_shebang(&head)?;
        // argv becomes: interpreter, [argument], the script's path, argv[1..].
        let script = if t.path.is_empty() {
            execfn.clone()
        } else {
            t.path.clone()
        };
        let mut new = vec![interp.clone()];
        new.extend(arg);
        new.push(script);
        new.extend(argv.drain(1..));
        argv = new;
        let used: usize = argv.iter().chain(&envp).map(|s| s.len() + 9).sum();
        if used > budget {
            return Err(Errno::E2BIG);
        }
        t = Target {
            dirfd: -100i64 as u64,
            path: interp,
            nofollow: false,
        };
    };
    let map = MappedFile::open(&file).map_err(|e| Errno::from_io(&e))?;
    let image = Image::Mapped(map, file);
    let elf = loader::parse(&image).map_err(|_| Errno::ENOEXEC)?;
    let sysroot = ctx.fs().sysroot.clone();
    let mut cross_sysroot = None;
    if let Some(interp) = elf.interpreter {
        let p = crate::syscall::resolve::host_path(sysroot.as_deref(), interp.as_bytes());
        if let Err(e) = std::fs::metadata(&p) {
            // No sysroot and no loader on the host: the cross location, as at start-up.
            let cross = std::path::Path::new(crate::sysroot::CROSS_ROOT);
            match crate::sysroot::for_interpreter(sysroot.as_deref(), interp, cross) {
                Ok(Some(root)) if sysroot.is_none() => cross_sysroot = Some(root),
                _ => return Err(Errno::from_io(&e)),
            }
        }
    }

    // The point of no return.
    if let Some(root) = cross_sysroot {
        ctx.fs().sysroot = Some(root);
    }
    let guest_name = t.path.clone();
    let done = kill_other_threads(ctx)
        .and_then(|()| replace_image(ctx, &image, &elf, &guest_name, &execfn, &argv, &envp));
    if let Err(e) = done {
        tracing::warn!("execve: failed past the point of no return: {e}");
        ctx.stop = Some(Stop::Signal(SIGSEGV));
        return Ok(0);
    }
    ctx.regs_set = true;

    // AIO contexts end with the address space (Linux's exit_aio), before the fds.
    crate::syscall::aio::exec();
    // The closed descriptions are dropped by the fd-table actor's caller, here.
    ctx.fds().close_on_exec();
    // A thread with its own table keeps it; the process's goes with the other threads.
    crate::syscall::clone_own::exec_keeps_own(ctx);
    // POSIX timers are deleted; interval timers go on.
    {
        let actions = ctx.proc.signals.reset_for_exec();
        crate::signal::hostact::mirror_sigchld(&actions[crate::signal::SIGCHLD as usize - 1]);
    }
    *ctx.proc.exe.lock().unwrap_or_else(|p| p.into_inner()) = (guest_name.clone(), host_path);
    let base = guest_name.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
    let mut comm = [0u8; 16];
    let n = base.len().min(15);
    comm[..n].copy_from_slice(&base[..n]);
    ctx.thread.comm = comm;
    crate::syscall::procgen::reset_comms(None);
    ctx.thread.rseq = None;
    ctx.thread.altstack = Default::default();
    ctx.thread.robust_list = (0, 0);
    ctx.thread.clear_child_tid = 0;
    ctx.proc.vfork_done.release();
    Ok(0)
}

/// Tears down the address space, loads the new program and sets the registers.
fn replace_image(
    ctx: &mut Ctx,
    image: &Image,
    elf: &goblin::elf::Elf,
    guest_name: &[u8],
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<(), String> {
    let proc = ctx.proc;
    let sysroot = ctx.fs().sysroot.clone();
    let mut mm = proc.mm();
    let old: Vec<(u64, u64)> = mm.vmas().map(|(s, v)| (s, v.end - s)).collect();
    for (start, len) in old {
        let _ = mm.unmap(start, len);
    }
    *mm = Mm::new(proc.ram.clone());
    let file = image.file().and_then(|f| f.try_clone().ok()).map(|f| {
        (
            Arc::new(std::os::fd::OwnedFd::from(f)),
            Arc::<str>::from(String::from_utf8_lossy(guest_name).as_ref()),
        )
    });
    let prog = image::load_program(&mut mm, elf, image, file, sysroot.as_deref())
        .map_err(|e| e.to_string())?;
    let vdso = image::map_stack_and_vdso(&mut mm).map_err(|e| e.to_string())?;
    // A fresh address space puts the vDSO where the first one was, so `proc.vdso` (which
    // the clock and attention code use) stays right.
    if vdso.vvar != proc.vdso.vvar {
        return Err(format!(
            "vDSO placed at {:#x}, not {:#x}",
            vdso.vvar, proc.vdso.vvar
        ));
    }
    proc.vdso.watch(&mut mm);
    proc.sigreturn_tramp
        .store(vdso.rt_sigreturn, Ordering::Relaxed);
    let hw = crate::guest::hwcap::from_vcpu(ctx.vcpu);
    let sp = image::build_initial_stack(
        &proc.ram,
        &prog,
        hw,
        &crate::syscall::cred::current(),
        vdso.base,
        (argv, envp, execfn),
    );
    // The other threads are gone: the process holds this thread's credentials.
    crate::syscall::cred::republish(&crate::guest::shimdata::ShimData::new(proc.ram.clone()));
    let ttbr0 = mm.ttbr0();
    mm.take_invalidate();
    drop(mm);

    let v = &mut *ctx.vcpu;
    crate::fork::warm::at_exec(proc, v);
    let err = |e: crate::backend::BackendError| e.0;
    for n in 0..31 {
        v.set_reg(Reg::X(n), 0).map_err(err)?;
    }
    for n in 0..32 {
        v.set_simd_reg(n, 0).map_err(err)?;
    }
    v.set_reg(Reg::Fpcr, 0).map_err(err)?;
    v.set_reg(Reg::Fpsr, 0).map_err(err)?;
    for (r, val) in [
        (SysReg::Ttbr0El1, ttbr0),
        (SysReg::SpEl0, sp),
        (SysReg::ElrEl1, prog.entry),
        (SysReg::SpsrEl1, 0),
        (SysReg::TpidrEl0, 0),
        (SysReg::TpidrroEl0, 0),
    ] {
        v.set_sys_reg(r, val).map_err(err)?;
    }
    // The shim's ERET after the HVC now enters the new program at EL0.
    v.invalidate(Invalidate {
        tlb: true,
        code: Some((0, RAM_SIZE)),
    })
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        let p = |s: &[u8]| parse_shebang(s);
        assert_eq!(p(b"#!/bin/i\n").unwrap(), (b"/bin/i".to_vec(), None));
        assert_eq!(
            p(b"#!  /bin/i  -x  y \t\nrest").unwrap(),
            (b"/bin/i".to_vec(), Some(b"-x  y".to_vec()))
        );
        assert_eq!(p(b"#!/bin/i").unwrap(), (b"/bin/i".to_vec(), None));
        assert_eq!(p(b"#!   \n"), Err(Errno::ENOEXEC));
        assert_eq!(p(b"#!\n"), Err(Errno::ENOEXEC));
    }
}
