//! Process-level calls of the spine: exit, identity, limits, uname, scheduling queries,
//! randomness, rseq, process groups. The signal calls are in `signal`.
//!
//! Guest pids are the host's: getpid() is the elfuse process's pid, so a pid a guest sees
//! is one `kill(1)` and `ps` agree with.

use super::{host_ret, Ctx, Stop, SysResult};
use crate::errno::Errno;
use crate::process::Rlimit;

/// exit: this thread only. The last thread's exit ends the process (`thread`).
pub fn exit(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.stop = Some(Stop::ThreadExit((a[0] & 0xff) as i32));
    Ok(0)
}

/// exit_group: the thread's end then stops every other thread (`thread::run_thread`).
pub fn exit_group(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.stop = Some(Stop::Exit((a[0] & 0xff) as i32));
    Ok(0)
}

pub fn set_tid_address(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.thread.clear_child_tid = a[0];
    Ok(ctx.thread.tid as u64)
}

pub fn set_robust_list(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // sizeof(struct robust_list_head) on 64-bit.
    if a[1] != 24 {
        return Err(Errno::EINVAL);
    }
    ctx.thread.robust_list = (a[0], a[1]);
    Ok(0)
}

pub fn rseq(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const RSEQ_FLAG_UNREGISTER: u64 = 1;
    const RSEQ_MIN_LEN: u64 = 32;
    let (area, len, flags, sig) = (a[0], a[1] as u32, a[2], a[3] as u32);
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        return match ctx.thread.rseq {
            Some((p, l, s)) if p == area && l == len => {
                if s != sig {
                    return Err(Errno::EPERM);
                }
                ctx.thread.rseq = None;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        };
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((p, l, s)) = ctx.thread.rseq {
        return Err(if p == area && l == len && s == sig {
            Errno::EBUSY
        } else {
            Errno::EINVAL
        });
    }
    if u64::from(len) < RSEQ_MIN_LEN || area % 32 != 0 {
        return Err(Errno::EINVAL);
    }
    // Like the kernel, publish the current CPU in cpu_id_start / cpu_id right away.
    let cpu = current_cpu();
    ctx.write_bytes(area, &[cpu.to_le_bytes(), cpu.to_le_bytes()].concat())?;
    ctx.thread.rseq = Some((area, len, sig));
    Ok(0)
}

fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling thread's CPU.
    let c = unsafe { libc::sched_getcpu() };
    c.max(0) as u32
}

pub fn getpid(ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(ctx.proc.pid as u64)
}
/// The host's answer, asked every time (the shim does not serve it): guest pids are host
/// pids, and the parent changes when it dies and the process is reparented.
pub fn getppid(_: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(current_ppid() as u64)
}
pub fn gettid(ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(ctx.thread.tid as u64)
}
fn own_pid(ctx: &Ctx, pid: u64) -> Result<i32, Errno> {
    match pid as i32 {
        0 => Ok(ctx.proc.pid),
        p if p == ctx.proc.pid => Ok(p),
        p if p < 0 => Err(Errno::EINVAL),
        p => {
            // Another host process: answer as the host does.
            // SAFETY: kill with signal 0 sends nothing: it only checks that `p` exists and
            // may be signalled.
            if unsafe { libc::kill(p, 0) } == 0 || Errno::last() == Errno::EPERM {
                Ok(p)
            } else {
                Err(Errno::ESRCH)
            }
        }
    }
}

pub fn getpgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = own_pid(ctx, a[0])?;
    // SAFETY: getpgid takes a pid by value, no pointers.
    host_ret(unsafe { libc::getpgid(pid) } as i64)
}

pub fn getsid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = own_pid(ctx, a[0])?;
    // SAFETY: getsid takes a pid by value, no pointers.
    host_ret(unsafe { libc::getsid(pid) } as i64)
}

pub fn getgroups(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let size = a[0] as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: getgroups with size 0 writes nothing (the null list is never touched) and
    // returns the count.
    let n = host_ret(unsafe { libc::getgroups(0, std::ptr::null_mut()) } as i64)? as usize;
    if size == 0 {
        return Ok(n as u64);
    }
    if (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let mut g = vec![0 as libc::gid_t; n];
    // SAFETY: getgroups writes at most `n` gids into `g`, a Vec of exactly `n` gid_t.
    let n = host_ret(unsafe { libc::getgroups(n as i32, g.as_mut_ptr()) } as i64)? as usize;
    let bytes: Vec<u8> = g[..n].iter().flat_map(|x| x.to_le_bytes()).collect();
    ctx.write_bytes(a[1], &bytes)?;
    Ok(n as u64)
}

/// The kernel release the guest sees.
pub const UNAME_RELEASE: &str = "6.8.0-elfuse";

pub fn uname(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // SAFETY: struct utsname is arrays of c_char, for which all-zero bytes are valid.
    let mut host: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes one struct utsname into `host`, a local of that type.
    unsafe { libc::uname(&mut host) };
    let nodename: Vec<u8> = host
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let fields: [&[u8]; 6] = [
        b"Linux",
        &nodename,
        UNAME_RELEASE.as_bytes(),
        b"#1 SMP PREEMPT elfuse",
        b"aarch64",
        b"(none)",
    ];
    let mut buf = [0u8; 6 * 65];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        buf[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    ctx.write_bytes(a[0], &buf)?;
    Ok(0)
}

const RLIMIT_NOFILE: usize = 7;

/// A limit's current value. RLIMIT_NOFILE belongs to the fd-table actor, which enforces
/// it (read lock-free from what it publishes); the others are the process's record.
fn get_rlimit(ctx: &Ctx, res: u64) -> Result<Rlimit, Errno> {
    if res as usize == RLIMIT_NOFILE {
        let (cur, max) = ctx.fds().limits();
        return Ok(Rlimit { cur, max });
    }
    let lim = ctx.proc.rlimits();
    lim.get(res as usize).copied().ok_or(Errno::EINVAL)
}

/// Sets a limit; returns the old one (checked and replaced in one step, as Linux's
/// do_prlimit does under the task lock).
fn set_rlimit(ctx: &Ctx, res: u64, new: Rlimit) -> Result<Rlimit, Errno> {
    let may_raise = super::cred::current().euid == 0;
    if res as usize == RLIMIT_NOFILE {
        // One message; no lock held across it.
        let (cur, max) = super::clone_own::set_nofile(ctx, new.cur, new.max, may_raise)?;
        return Ok(Rlimit { cur, max });
    }
    if new.cur > new.max {
        return Err(Errno::EINVAL);
    }
    let mut lim = ctx.proc.rlimits();
    let slot = lim.get_mut(res as usize).ok_or(Errno::EINVAL)?;
    if new.max > slot.max && !may_raise {
        return Err(Errno::EPERM);
    }
    Ok(std::mem::replace(slot, new))
}

fn read_rlimit(ctx: &Ctx, va: u64) -> Result<Rlimit, Errno> {
    let [cur, max]: [u64; 2] = ctx.read_val(va)?;
    Ok(Rlimit { cur, max })
}

fn write_rlimit(ctx: &Ctx, va: u64, r: Rlimit) -> Result<(), Errno> {
    ctx.write_val(va, &[r.cur, r.max])
}

pub fn getrlimit(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let r = get_rlimit(ctx, a[0])?;
    write_rlimit(ctx, a[1], r)?;
    Ok(0)
}

pub fn setrlimit(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let r = read_rlimit(ctx, a[1])?;
    set_rlimit(ctx, a[0], r)?;
    Ok(0)
}

pub fn prlimit64(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid != 0 && pid != ctx.proc.pid {
        return Err(Errno::ESRCH);
    }
    let old = if a[2] != 0 {
        let new = read_rlimit(ctx, a[2])?;
        set_rlimit(ctx, a[1], new)?
    } else {
        get_rlimit(ctx, a[1])?
    };
    if a[3] != 0 {
        write_rlimit(ctx, a[3], old)?;
    }
    Ok(0)
}

pub fn getrusage(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let who = match a[0] as i32 {
        0 => libc::RUSAGE_SELF,
        -1 => libc::RUSAGE_CHILDREN,
        1 => libc::RUSAGE_THREAD,
        _ => return Err(Errno::EINVAL),
    };
    // struct rusage has the same 144-byte layout on every 64-bit Linux.
    // SAFETY: struct rusage is integers and timevals, for which all-zero bytes are valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one struct rusage into `ru`, a local of that type.
    host_ret(unsafe { libc::getrusage(who, &mut ru) } as i64)?;
    let bytes =
        // SAFETY: `ru` is a live, initialised struct rusage of at least 144 bytes (its size
        // on 64-bit Linux), viewed as bytes only while borrowed here.
        unsafe { std::slice::from_raw_parts((&ru as *const libc::rusage).cast::<u8>(), 144) };
    ctx.write_bytes(a[1], bytes)?;
    Ok(0)
}

pub fn umask(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let new = (a[0] & 0o777) as u32;
    let mut fs = ctx.fs();
    let old = std::mem::replace(&mut fs.umask, new);
    // The host applies it to files the guest creates.
    // SAFETY: umask takes a mode by value and cannot fail.
    unsafe { libc::umask(new as libc::mode_t) };
    Ok(old.into())
}

pub fn getcpu(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let cpu = current_cpu();
    if a[0] != 0 {
        ctx.write_val(a[0], &cpu)?;
    }
    if a[1] != 0 {
        ctx.write_val(a[1], &0u32)?;
    }
    Ok(0)
}

pub fn sched_yield(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

pub fn sysinfo(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // struct sysinfo is 112 bytes with the same layout on every 64-bit Linux.
    // SAFETY: struct sysinfo is integers (and padding), for which all-zero bytes are valid.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes one struct sysinfo into `si`, a local of that type.
    host_ret(unsafe { libc::sysinfo(&mut si) } as i64)?;
    let bytes =
        // SAFETY: `si` is a live, zero-initialised then host-filled struct sysinfo of 112
        // bytes (its size on 64-bit Linux), viewed as bytes only while borrowed here.
        unsafe { std::slice::from_raw_parts((&si as *const libc::sysinfo).cast::<u8>(), 112) };
    ctx.write_bytes(a[0], bytes)?;
    Ok(0)
}

pub fn getrandom(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    // Linux's flags are an unsigned int: the upper half of the register is ignored.
    let flags = a[2] & 0xffff_ffff;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = a[1].min(i32::MAX as u64) as usize;
    let buf = ctx.user_slice(a[0], len, true)?;
    let host_flags = (flags & GRND_NONBLOCK) as u32;
    // SAFETY: `buf` is checked, writable guest RAM of `buf.len()` bytes (a raw pointer, no
    // reference); getrandom writes at most that many bytes.
    let r = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), host_flags) };
    host_ret(r as i64)
}

pub fn setpgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let sd = crate::guest::shimdata::ShimData::new(ctx.proc.ram.clone());
    // SAFETY: setpgid takes two pids by value, no pointers.
    sd.republish_group(|| host_ret(unsafe { libc::setpgid(a[0] as i32, a[1] as i32) } as i64))
}

pub fn setsid(ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    let sd = crate::guest::shimdata::ShimData::new(ctx.proc.ram.clone());
    // SAFETY: setsid takes no arguments.
    sd.republish_group(|| host_ret(unsafe { libc::setsid() } as i64))
}

/// The calling process's parent now (see `getppid`).
pub fn current_ppid() -> i32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::getppid() }
}
