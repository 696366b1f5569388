//! prctl: the options programs commonly use.
//!
//! - Kept by elfuse: the thread name (PR_SET/GET_NAME), the clear-child-tid
//!   address (PR_GET_TID_ADDRESS), and the thread's seccomp mode (PR_SET_SECCOMP and
//!   PR_GET_SECCOMP: see `seccomp`).
//! - The host's, on the calling host thread (which is the guest thread, and whose process
//!   is the guest process): dumpable (a process attribute the host kernel also resets
//!   when credentials change, as Linux does), the parent-death signal (the host kernel sends it to this
//!   process when the parent thread — a guest parent is a host parent — ends, and the
//!   host-signal watcher delivers it to the guest), the child subreaper (orphaned guest
//!   processes are orphaned host processes), no_new_privs, keepcaps, securebits, the
//!   capability bounding and ambient sets (the thread's credentials are the host
//!   thread's, see `cred`), the timer slack, THP disable, the MCE kill policy, I/O
//!   flusher. Their argument checks (unused arguments non-zero, bad values) are the
//!   host's: Linux's.
//!
//! Any other option is EINVAL, as Linux answers for options it does not know (the
//! architecture-specific arm64 ones — SVE/SME vector lengths, pointer authentication,
//! tagged addresses — included: the guest sees none of those features).

use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_GET_KEEPCAPS: u64 = 7;
const PR_SET_KEEPCAPS: u64 = 8;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_GET_SECCOMP: u64 = 21;
const PR_SET_SECCOMP: u64 = 22;
const PR_CAPBSET_READ: u64 = 23;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_SECUREBITS: u64 = 27;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_TIMERSLACK: u64 = 29;
const PR_GET_TIMERSLACK: u64 = 30;
const PR_MCE_KILL: u64 = 33;
const PR_MCE_KILL_GET: u64 = 34;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
const PR_GET_TID_ADDRESS: u64 = 40;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_GET_THP_DISABLE: u64 = 42;
const PR_CAP_AMBIENT: u64 = 47;
const PR_SET_IO_FLUSHER: u64 = 57;
const PR_GET_IO_FLUSHER: u64 = 58;

/// Options among the host's that only read.
const GETTERS: [u64; 10] = [
    PR_GET_DUMPABLE,
    PR_GET_KEEPCAPS,
    PR_CAPBSET_READ,
    PR_GET_SECUREBITS,
    PR_GET_TIMERSLACK,
    PR_MCE_KILL_GET,
    PR_GET_NO_NEW_PRIVS,
    PR_GET_THP_DISABLE,
    PR_GET_IO_FLUSHER,
    // PR_CAP_AMBIENT's IS_SET is a query, but its other operations change the set.
    PR_GET_CHILD_SUBREAPER,
];

fn host(a: [u64; 6]) -> SysResult {
    // SAFETY: prctl options whose arguments are all integers (the callers make sure).
    host_ret(unsafe {
        libc::syscall(
            libc::SYS_prctl,
            a[0] as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
            a[3] as libc::c_long,
            a[4] as libc::c_long,
        )
    })
}

/// An option that stores an int through its second argument: the host writes a local.
fn host_get_int(ctx: &Ctx, a: [u64; 6]) -> SysResult {
    let mut v: i32 = 0;
    // SAFETY: the option writes one int through the pointer, which is ours.
    host_ret(unsafe {
        libc::syscall(
            libc::SYS_prctl,
            a[0] as libc::c_long,
            &mut v as *mut i32 as libc::c_long,
            a[2] as libc::c_long,
            a[3] as libc::c_long,
            a[4] as libc::c_long,
        )
    })?;
    ctx.write_val(a[1], &v)?;
    Ok(0)
}

pub fn prctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // The option is an int.
    let option = a[0] & 0xffff_ffff;
    match option {
        PR_SET_NAME => {
            let name = ctx.read_cstr(a[1], 4096)?;
            let mut comm = [0u8; 16];
            let n = name.len().min(15);
            comm[..n].copy_from_slice(&name[..n]);
            ctx.thread.comm = comm;
            super::procgen::set_comm(ctx.thread.tid, comm);
            Ok(0)
        }
        PR_GET_NAME => {
            let comm = ctx.thread.comm;
            ctx.write_bytes(a[1], &comm)?;
            Ok(0)
        }
        PR_GET_TID_ADDRESS => {
            ctx.write_val(a[1], &ctx.thread.clear_child_tid)?;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(ctx.thread.seccomp.mode.into()),
        PR_SET_SECCOMP => super::seccomp::prctl_set(ctx, a[1], a[2]),
        PR_GET_PDEATHSIG | PR_GET_CHILD_SUBREAPER => host_get_int(ctx, a),
        PR_SET_PDEATHSIG => {
            // A valid signal number or 0; the host's numbering is the guest's for 1..=64.
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            let r = host(a)?;
            // Linux gives every new thread a parent-death signal of 0: this host thread
            // must not be reused for one (see `cred`).
            super::cred::set_touched(true);
            Ok(r)
        }
        PR_GET_KEEPCAPS
        | PR_SET_KEEPCAPS
        | PR_CAPBSET_READ
        | PR_CAPBSET_DROP
        | PR_GET_SECUREBITS
        | PR_SET_SECUREBITS
        | PR_SET_TIMERSLACK
        | PR_GET_TIMERSLACK
        | PR_MCE_KILL
        | PR_MCE_KILL_GET
        | PR_GET_DUMPABLE
        | PR_SET_DUMPABLE
        | PR_SET_CHILD_SUBREAPER
        | PR_SET_NO_NEW_PRIVS
        | PR_GET_NO_NEW_PRIVS
        | PR_SET_THP_DISABLE
        | PR_GET_THP_DISABLE
        | PR_CAP_AMBIENT
        | PR_SET_IO_FLUSHER
        | PR_GET_IO_FLUSHER => {
            let r = host([option, a[1], a[2], a[3], a[4], 0])?;
            if !GETTERS.contains(&option) {
                // The host thread's state now differs from a fresh one's: it must not be
                // parked and handed to a later guest thread (see `cred`).
                super::cred::set_touched(true);
            }
            Ok(r)
        }
        _ => Err(Errno::EINVAL),
    }
}
