//! Scheduling and process queries: times, priorities, CPU affinity, scheduling policies
//! and attributes, I/O priorities, personality, robust lists, mlock2, NUMA memory
//! policies, kcmp.
//!
//! A guest thread is a host thread with the same tid, and a guest process a host process
//! with the same pid, so calls naming a task (0 = the caller) are the host's raw calls on
//! the calling host thread: they act on, and answer for, exactly the task the guest named.
//! The structures involved (`struct tms`, `sched_param`, `sched_attr`, `timespec`, CPU
//! and node masks) have one layout on every 64-bit Linux; they are copied through host
//! buffers, never handed over as guest addresses.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;

/// A raw host syscall with integer (or host-pointer) arguments.
fn raw(nr: libc::c_long, a: [libc::c_long; 6]) -> SysResult {
    // SAFETY: the callers pass integers and pointers to host buffers they own, sized as
    // the call requires.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// A pid_t / int argument (the upper half of the register is ignored).
fn int(v: u64) -> libc::c_long {
    libc::c_long::from(v as i32)
}

fn ptr<T>(p: &mut T) -> libc::c_long {
    p as *mut T as libc::c_long
}

pub fn times(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut tms = [0i64; 4];
    let r = raw(libc::SYS_times, [ptr(&mut tms), 0, 0, 0, 0, 0])?;
    if a[0] != 0 {
        ctx.write_val(a[0], &tms)?;
    }
    Ok(r)
}

/// getpriority returns 20 - nice (1..=40) as the kernel does; libc converts.
pub fn getpriority(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(libc::SYS_getpriority, [int(a[0]), int(a[1]), 0, 0, 0, 0])
}

pub fn setpriority(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(
        libc::SYS_setpriority,
        [int(a[0]), int(a[1]), int(a[2]), 0, 0, 0],
    )
}

/// The most of a CPU mask the kernel reads or writes (NR_CPUS = 8192 bits).
const MAX_MASK: usize = 1024;

pub fn sched_setaffinity(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let len = (a[1] as u32 as usize).min(MAX_MASK);
    let mut mask = ctx.read_bytes(a[2], len)?;
    raw(
        libc::SYS_sched_setaffinity,
        [
            int(a[0]),
            len as libc::c_long,
            mask.as_mut_ptr() as libc::c_long,
            0,
            0,
            0,
        ],
    )
}

pub fn sched_getaffinity(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let len = a[1] as u32 as usize;
    let mut mask = vec![0u8; len.min(MAX_MASK)];
    // The kernel's length checks see the guest's length (rounded down only past NR_CPUS).
    let host_len = if len > MAX_MASK { MAX_MASK } else { len };
    let n = raw(
        libc::SYS_sched_getaffinity,
        [
            int(a[0]),
            host_len as libc::c_long,
            mask.as_mut_ptr() as libc::c_long,
            0,
            0,
            0,
        ],
    )? as usize;
    ctx.write_bytes(a[2], &mask[..n])?;
    Ok(n as u64)
}

pub fn sched_setparam(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let mut p: i32 = ctx.read_val(a[1])?;
    raw(
        libc::SYS_sched_setparam,
        [int(a[0]), ptr(&mut p), 0, 0, 0, 0],
    )
}

pub fn sched_getparam(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let mut p = 0i32;
    raw(
        libc::SYS_sched_getparam,
        [int(a[0]), ptr(&mut p), 0, 0, 0, 0],
    )?;
    ctx.write_val(a[1], &p)?;
    Ok(0)
}

pub fn sched_setscheduler(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[2] == 0 {
        return Err(Errno::EINVAL);
    }
    let mut p: i32 = ctx.read_val(a[2])?;
    raw(
        libc::SYS_sched_setscheduler,
        [int(a[0]), int(a[1]), ptr(&mut p), 0, 0, 0],
    )
}

pub fn sched_getscheduler(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(libc::SYS_sched_getscheduler, [int(a[0]), 0, 0, 0, 0, 0])
}

/// SCHED_ATTR_SIZE_VER0, and the largest `struct sched_attr` the kernel accepts (a page).
const ATTR_VER0: usize = 48;
const ATTR_MAX: usize = 4096;

pub fn sched_setattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let size: u32 = ctx.read_val(a[1])?;
    let n = if size == 0 { ATTR_VER0 } else { size as usize };
    // Out of range: the host refuses with E2BIG and writes its size back, from a buffer
    // that holds only the size field.
    let mut buf = if (ATTR_VER0..=ATTR_MAX).contains(&n) {
        ctx.read_bytes(a[1], n)?
    } else {
        let mut b = vec![0u8; ATTR_MAX];
        b[..4].copy_from_slice(&size.to_le_bytes());
        b
    };
    let r = raw(
        libc::SYS_sched_setattr,
        [
            int(a[0]),
            buf.as_mut_ptr() as libc::c_long,
            int(a[2]),
            0,
            0,
            0,
        ],
    );
    if r == Err(Errno::E2BIG) {
        ctx.write_bytes(a[1], &buf[..4])?;
    }
    r
}

pub fn sched_getattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let size = a[2] as u32 as usize;
    if a[1] == 0 || !(ATTR_VER0..=ATTR_MAX).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; size];
    raw(
        libc::SYS_sched_getattr,
        [
            int(a[0]),
            buf.as_mut_ptr() as libc::c_long,
            size as libc::c_long,
            int(a[3]),
            0,
            0,
        ],
    )?;
    ctx.write_bytes(a[1], &buf)?;
    Ok(0)
}

pub fn sched_get_priority_max(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(libc::SYS_sched_get_priority_max, [int(a[0]), 0, 0, 0, 0, 0])
}

pub fn sched_get_priority_min(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(libc::SYS_sched_get_priority_min, [int(a[0]), 0, 0, 0, 0, 0])
}

pub fn sched_rr_get_interval(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut ts = [0i64; 2];
    raw(
        libc::SYS_sched_rr_get_interval,
        [int(a[0]), ptr(&mut ts), 0, 0, 0, 0],
    )?;
    ctx.write_val(a[1], &ts)?;
    Ok(0)
}

pub fn ioprio_set(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(
        libc::SYS_ioprio_set,
        [int(a[0]), int(a[1]), int(a[2]), 0, 0, 0],
    )
}

pub fn ioprio_get(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    raw(libc::SYS_ioprio_get, [int(a[0]), int(a[1]), 0, 0, 0, 0])
}

/// The process's persona (PER_LINUX = 0 plus flags). Kept here, not in the host process:
/// the host's would change elfuse's own behaviour.
static PERSONA: AtomicU64 = AtomicU64::new(0);
const PER_MASK: u32 = 0xff;
const PER_LINUX32: u32 = 0x8;

/// The persona, which a fork child inherits (`fork::inherit`).
pub fn persona() -> u32 {
    PERSONA.load(Ordering::Relaxed) as u32
}

/// A fork child's persona, as its parent's was.
pub fn set_persona(p: u32) {
    PERSONA.store(u64::from(p), Ordering::Relaxed);
}

/// personality(0xffffffff) reports the persona; any other value replaces it and the old
/// one is returned. A 32-bit persona is EINVAL, as on arm64 hardware without AArch32 EL0.
pub fn personality(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let p = a[0] as u32;
    let old = PERSONA.load(Ordering::Relaxed);
    if p == u32::MAX {
        return Ok(old);
    }
    if p & PER_MASK == PER_LINUX32 {
        return Err(Errno::EINVAL);
    }
    PERSONA.store(u64::from(p), Ordering::Relaxed);
    Ok(old)
}

pub fn get_robust_list(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid != 0 && pid != ctx.thread.tid {
        return Err(if ctx.proc.threads.get(pid).is_some() {
            Errno::EPERM
        } else {
            Errno::ESRCH
        });
    }
    let (head, len) = ctx.thread.robust_list;
    ctx.write_val(a[2], &len)?;
    ctx.write_val(a[1], &head)?;
    Ok(0)
}

pub fn mlock2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MLOCK_ONFAULT: u64 = 1;
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    super::mem::mlock(ctx, a)
}

/// The most node-mask bits the kernel takes (a page's worth).
const MAX_NODES: u64 = 4096 * 8;

/// A node mask of `maxnode` bits (the kernel uses maxnode - 1 of them) from the guest.
pub(super) fn read_nodes(ctx: &Ctx, va: u64, maxnode: u64) -> Result<Vec<u64>, Errno> {
    let bits = maxnode.saturating_sub(1);
    if va == 0 || bits == 0 {
        return Ok(Vec::new());
    }
    if bits > MAX_NODES {
        return Err(Errno::EINVAL);
    }
    let words = bits.div_ceil(64) as usize;
    let bytes = ctx.read_bytes(va, words * 8)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect())
}

pub(super) fn nodes_arg(nodes: &mut [u64]) -> libc::c_long {
    if nodes.is_empty() {
        0
    } else {
        nodes.as_mut_ptr() as libc::c_long
    }
}

/// NUMA calls go to the host on this thread (a single-node host answers as one).
pub fn set_mempolicy(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut nodes = read_nodes(ctx, a[1], a[2])?;
    let maxnode = if nodes.is_empty() {
        0
    } else {
        a[2] as libc::c_long
    };
    raw(
        libc::SYS_set_mempolicy,
        [int(a[0]), nodes_arg(&mut nodes), maxnode, 0, 0, 0],
    )
}

/// The host address of guest range `[va, va+len)`, which must be mapped (EFAULT).
fn host_range(ctx: &Ctx, va: u64, len: u64) -> Result<libc::c_long, Errno> {
    let end = va.checked_add(len.max(1)).ok_or(Errno::EFAULT)?;
    if !ctx.proc.mm().is_mapped(va & !0xfff, (end + 0xfff) & !0xfff) {
        return Err(Errno::EFAULT);
    }
    Ok(ctx.proc.ram.ptr(va, len.max(1) as usize) as libc::c_long)
}

pub fn get_mempolicy(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MPOL_F_ADDR: u64 = 2;
    let (flags, maxnode) = (a[4] as u32 as u64, a[2]);
    let addr = if flags & MPOL_F_ADDR != 0 {
        host_range(ctx, a[3], 1)?
    } else {
        a[3] as libc::c_long
    };
    if a[1] != 0 && maxnode > MAX_NODES {
        return Err(Errno::EINVAL);
    }
    let words = if a[1] == 0 {
        0
    } else {
        maxnode.div_ceil(64) as usize
    };
    let mut nodes = vec![0u64; words];
    let mut mode = 0i32;
    let mode_p = if a[0] == 0 { 0 } else { ptr(&mut mode) };
    raw(
        libc::SYS_get_mempolicy,
        [
            mode_p,
            nodes_arg(&mut nodes),
            maxnode as libc::c_long,
            addr,
            flags as libc::c_long,
            0,
        ],
    )?;
    if a[0] != 0 {
        ctx.write_val(a[0], &mode)?;
    }
    if words > 0 {
        let bytes: Vec<u8> = nodes.iter().flat_map(|w| w.to_le_bytes()).collect();
        ctx.write_bytes(a[1], &bytes)?;
    }
    Ok(0)
}

pub fn mbind(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[0] & 0xfff != 0 {
        return Err(Errno::EINVAL);
    }
    let len = (a[1] + 0xfff) & !0xfff;
    let mut nodes = read_nodes(ctx, a[3], a[4])?;
    let maxnode = if nodes.is_empty() {
        0
    } else {
        a[4] as libc::c_long
    };
    let start = if len == 0 {
        0
    } else {
        host_range(ctx, a[0], len)?
    };
    if len == 0 {
        // Nothing to bind: the host validates the rest.
        return raw(
            libc::SYS_mbind,
            [0, 0, int(a[2]), nodes_arg(&mut nodes), maxnode, int(a[5])],
        );
    }
    raw(
        libc::SYS_mbind,
        [
            start,
            len as libc::c_long,
            int(a[2]),
            nodes_arg(&mut nodes),
            maxnode,
            int(a[5]),
        ],
    )
}

/// kcmp between tasks of this process (its threads share every resource kcmp names);
/// KCMP_FILE compares the guest fds' open file descriptions. A task of another elfuse
/// process is compared over the peer channel (`procremote::get_fd`): its descriptions
/// by the host's kcmp of host fds of them, its other resources (every elfuse process
/// has its own) as different, ordered by pid.
pub fn kcmp(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const KCMP_FILE: u64 = 0;
    /// KCMP_VM, FILES, FS, SIGHAND, IO, SYSVSEM: one each per process.
    const KCMP_SHARED: std::ops::RangeInclusive<u64> = 1..=6;
    let ours = |p: i32| p == ctx.proc.pid || ctx.proc.threads.get(p).is_some();
    let (p1, p2) = (a[0] as i32, a[1] as i32);
    if (!ours(p1) || !ours(p2)) && [p1, p2].iter().all(|&p| ours(p) || peer(p)) {
        return kcmp_peers(ctx, [(p1, ours(p1)), (p2, ours(p2))], a);
    }
    for p in [p1, p2] {
        if !ours(p) {
            // SAFETY: an existence probe of a host pid.
            let alive =
                p > 0 && (unsafe { libc::kill(p, 0) } == 0 || Errno::last() == Errno::EPERM);
            // Another process's resources are not this process's to compare.
            return Err(if alive { Errno::EPERM } else { Errno::ESRCH });
        }
    }
    match a[2] {
        KCMP_FILE => {
            let f1 = ctx.file(a[3])?;
            let f2 = ctx.file(a[4])?;
            let (x, y) = (
                std::sync::Arc::as_ptr(&f1) as usize,
                std::sync::Arc::as_ptr(&f2) as usize,
            );
            Ok(match x.cmp(&y) {
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Less => 1,
                std::cmp::Ordering::Greater => 2,
            })
        }
        t if KCMP_SHARED.contains(&t) => Ok(0),
        // KCMP_EPOLL_TFD (7) included: epoll targets are not compared.
        _ => Err(Errno::EINVAL),
    }
}

/// Whether `pid` is another elfuse process that answers on the peer channel.
fn peer(pid: i32) -> bool {
    super::procpeer::answers(pid)
}

/// [`kcmp`] with a task of another elfuse process: `tasks` are (pid, of this process).
fn kcmp_peers(ctx: &Ctx, tasks: [(i32, bool); 2], a: [u64; 6]) -> SysResult {
    let (t1, t2) = (tasks[0], tasks[1]);
    // A task of this process: its thread group is this process.
    let proc_of = |(p, ours): (i32, bool)| if ours { ctx.proc.pid } else { p };
    let (g1, g2) = (proc_of(t1), proc_of(t2));
    match a[2] {
        0 => {
            use elfuse_actors::fdtable::OpenFile;
            // A host fd of each description: this process's own, or one the other sent.
            let host_fd = |(p, ours): (i32, bool),
                           fd: u64|
             -> Result<std::sync::Arc<OpenFile>, Errno> {
                if ours {
                    return ctx.file(fd);
                }
                let h = super::procremote::get_fd(p, fd as u32 as i32).map_err(|e| match e {
                    Errno::EACCES => Errno::EPERM,
                    e => e,
                })?;
                Ok(OpenFile::host(h, None))
            };
            let (f1, f2) = (host_fd(t1, a[3])?, host_fd(t2, a[4])?);
            let me = nix::unistd::getpid().as_raw();
            // SAFETY: kcmp of two fds of this host process (held open by f1, f2); no
            // memory is passed.
            let r = unsafe { libc::syscall(libc::SYS_kcmp, me, me, 0, f1.raw(), f2.raw()) };
            super::host_ret(r)
        }
        1..=6 => Ok(match g1.cmp(&g2) {
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Less => 1,
            std::cmp::Ordering::Greater => 2,
        }),
        _ => Err(Errno::EINVAL),
    }
}
