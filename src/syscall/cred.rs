//! Credentials: the set*id family, setgroups, capget/capset, and the identity queries.
//!
//! Linux credentials are per thread; glibc and musl make setuid() and friends process-wide
//! by having every thread make the raw call (SIGSETXID / __synccall). A guest thread runs
//! on its own host thread, so each call here is the host's raw syscall on the calling
//! thread: the host thread then holds exactly the guest thread's credentials, checks the
//! guest's file accesses with them, and answers the queries (getuid() & co. ask the host).
//!
//! The EL1 shim answers getuid/geteuid/getgid/getegid from the identity slots
//! (`guest::shimdata`), which hold one value for the whole process. Every change is
//! published in the CRED window (attention set → host change → slots → attention cleared);
//! after it, if the process's threads no longer all share real and effective ids (a raw
//! setresuid on one thread, or midway through glibc's broadcast), `ATTN_CRED_SPLIT` stays
//! set and the shim forwards those queries to the host until a later change makes the
//! threads agree again. The slots are never stale for any thread.
//!
//! Host threads are pooled (`clone`): a thread that changed its credentials, or was
//! created by one that had, is never parked for reuse, and a creator that changed its
//! credentials always gets a fresh host thread (which inherits them, like clone does).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use elfuse_shim::data::{ATTN_CRED, ATTN_CRED_SPLIT};

use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;
use crate::guest::shimdata::ShimData;
use crate::process::Creds;

/// Serialises publications (the check that every thread agrees, then the slots). A flag,
/// not a mutex: a fork child resets it whoever held it in the parent ([`new_process`]).
static PUBLISH: AtomicBool = AtomicBool::new(false);

struct Serial;

fn serial() -> Serial {
    while PUBLISH
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    Serial
}

impl Drop for Serial {
    fn drop(&mut self) {
        PUBLISH.store(false, Ordering::Release);
    }
}

/// A new process (boot, a fork child) with one thread: nothing is being published and
/// every thread agrees.
pub fn new_process(sd: &ShimData) {
    PUBLISH.store(false, Ordering::Release);
    sd.clear_attention(ATTN_CRED_SPLIT);
}

thread_local! {
    /// This host thread's credentials may differ from the process's at its start.
    static TOUCHED: Cell<bool> = const { Cell::new(false) };
}

/// True when this host thread changed its credentials (or inherited changed ones).
pub fn touched() -> bool {
    TOUCHED.with(Cell::get)
}

/// A new guest thread on this host thread: inherits its creator's mark.
pub fn set_touched(on: bool) {
    TOUCHED.with(|t| t.set(on));
}

/// The calling host thread's real and effective ids.
pub fn current() -> Creds {
    // SAFETY: plain queries of the calling thread (glibc makes the raw syscalls).
    unsafe {
        Creds {
            uid: libc::getuid(),
            euid: libc::geteuid(),
            gid: libc::getgid(),
            egid: libc::getegid(),
        }
    }
}

/// (real, effective) uid and gid of host thread `tid` of this process, from
/// /proc/self/task; None if it is gone (or there is no such file).
fn thread_ids(tid: i32) -> Option<[u32; 4]> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |key: &str| -> Option<(u32, u32)> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        let mut it = line[key.len()..].split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let (u, eu) = field("Uid:")?;
    let (g, eg) = field("Gid:")?;
    Some([u, eu, g, eg])
}

/// Whether every registered guest thread has `c`'s real and effective ids.
fn all_agree(ctx: &Ctx, c: &Creds) -> bool {
    let want = [c.uid, c.euid, c.gid, c.egid];
    let me = ctx.thread.tid;
    ctx.proc.threads.tids().into_iter().all(|tid| {
        tid == me
            || match thread_ids(tid) {
                Some(ids) => ids == want,
                // Gone since the listing: it counts for nothing. Unreadable while alive
                // (no /proc): assume the worst, the shim then forwards.
                None => ctx.proc.threads.get(tid).is_none(),
            }
    })
}

/// Runs `change` (a host credential call on this thread) inside the CRED window, then
/// republishes the identity slots, or marks them unusable while the threads disagree.
fn changing(ctx: &mut Ctx, change: impl FnOnce() -> SysResult) -> SysResult {
    let _serial = serial();
    let sd = ShimData::new(ctx.proc.ram.clone());
    sd.set_attention(ATTN_CRED);
    let r = change();
    if r.is_ok() {
        set_touched(true);
    }
    let c = current();
    if all_agree(ctx, &c) {
        let mut id = sd.identity();
        (id.uid, id.euid, id.gid, id.egid) = (c.uid, c.euid, c.gid, c.egid);
        // Slots stored, then CRED cleared; SPLIT after, so no window shows old slots.
        sd.publish_identity(|| (), &id);
        sd.clear_attention(ATTN_CRED_SPLIT);
    } else {
        sd.set_attention(ATTN_CRED_SPLIT);
        sd.clear_attention(ATTN_CRED);
    }
    r
}

/// Republishes the slots from the calling thread after an execve (the other threads are
/// gone: the process agrees with it again) or in a new process.
pub fn republish(sd: &ShimData) {
    let _serial = serial();
    let c = current();
    let mut id = sd.identity();
    (id.uid, id.euid, id.gid, id.egid) = (c.uid, c.euid, c.gid, c.egid);
    sd.publish_identity(|| (), &id);
    sd.clear_attention(ATTN_CRED_SPLIT);
}

/// An id argument: the kernel takes uid_t/gid_t (32 bits; the upper half is ignored).
fn id(v: u64) -> libc::c_long {
    libc::c_long::from(v as u32)
}

fn raw(nr: libc::c_long, args: &[libc::c_long]) -> SysResult {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: credential syscalls with integer arguments (setgroups/capget/capset pass
    // host buffers their callers own).
    host_ret(unsafe { libc::syscall(nr, a(0), a(1), a(2)) })
}

pub fn setuid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setuid, &[id(a[0])]))
}
pub fn setgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setgid, &[id(a[0])]))
}
pub fn setreuid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setreuid, &[id(a[0]), id(a[1])]))
}
pub fn setregid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setregid, &[id(a[0]), id(a[1])]))
}
pub fn setresuid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || {
        raw(libc::SYS_setresuid, &[id(a[0]), id(a[1]), id(a[2])])
    })
}
pub fn setresgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || {
        raw(libc::SYS_setresgid, &[id(a[0]), id(a[1]), id(a[2])])
    })
}
/// setfsuid/setfsgid always "succeed": they return the previous value.
pub fn setfsuid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setfsuid, &[id(a[0])]))
}
pub fn setfsgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    changing(ctx, || raw(libc::SYS_setfsgid, &[id(a[0])]))
}

/// Linux's NGROUPS_MAX.
const NGROUPS_MAX: u64 = 65536;

pub fn setgroups(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let n = a[0] as u32 as u64;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let bytes = ctx.read_bytes(a[1], n as usize * 4)?;
    let groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    changing(ctx, || {
        raw(
            libc::SYS_setgroups,
            &[n as libc::c_long, groups.as_ptr() as libc::c_long],
        )
    })
}

pub fn getuid(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(current().uid.into())
}
pub fn geteuid(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(current().euid.into())
}
pub fn getgid(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(current().gid.into())
}
pub fn getegid(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    Ok(current().egid.into())
}

fn get_three(ctx: &Ctx, nr: libc::c_long, ptrs: [u64; 3]) -> SysResult {
    let mut v = [0u32; 3];
    let base = v.as_mut_ptr();
    // SAFETY: offsets inside `v`.
    let args = [0, 1, 2].map(|i| unsafe { base.add(i) } as libc::c_long);
    raw(nr, &args)?;
    for (va, x) in ptrs.into_iter().zip(v) {
        ctx.write_val(va, &x)?;
    }
    Ok(0)
}

pub fn getresuid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    get_three(ctx, libc::SYS_getresuid, [a[0], a[1], a[2]])
}
pub fn getresgid(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    get_three(ctx, libc::SYS_getresgid, [a[0], a[1], a[2]])
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// `struct __user_cap_data_struct` count for a header version (0: unknown).
fn cap_words(version: u32) -> usize {
    match version {
        CAP_V1 => 1,
        CAP_V2 | CAP_V3 => 2,
        _ => 0,
    }
}

/// capget/capset: the header (`{u32 version; int pid}`) and data (`{u32 effective,
/// permitted, inheritable}` × 1 or 2) have one layout on every Linux; pids are the host's.
/// The host decides everything (an unknown version is EINVAL with the preferred version
/// written back, a NULL data pointer a version probe); the guest's buffers are copied.
fn cap(ctx: &mut Ctx, a: [u64; 6], set: bool) -> SysResult {
    let mut hdr: [u32; 2] = ctx.read_val(a[0])?;
    let words = cap_words(hdr[0]);
    let mut data = [0u32; 6];
    if set && words > 0 {
        let d: [u32; 6] = if words == 1 {
            let d1: [u32; 3] = ctx.read_val(a[1])?;
            [d1[0], d1[1], d1[2], 0, 0, 0]
        } else {
            ctx.read_val(a[1])?
        };
        data = d;
    }
    let dp = if a[1] == 0 {
        0
    } else {
        data.as_mut_ptr() as libc::c_long
    };
    let before = hdr[0];
    let nr = if set {
        libc::SYS_capset
    } else {
        libc::SYS_capget
    };
    let call = |hdr: &mut [u32; 2]| raw(nr, &[hdr.as_mut_ptr() as libc::c_long, dp]);
    let r = if set {
        changing(ctx, || call(&mut hdr))
    } else {
        call(&mut hdr)
    };
    if hdr[0] != before {
        ctx.write_val(a[0], &hdr[0])?;
    }
    r?;
    if !set && a[1] != 0 && words > 0 {
        ctx.write_bytes(a[1], &bytes_of(&data[..words * 3]))?;
    }
    Ok(0)
}

fn bytes_of(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn capget(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    cap(ctx, a, false)
}
pub fn capset(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    cap(ctx, a, true)
}
