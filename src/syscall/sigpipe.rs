//! SIGPIPE: Linux sends it to the writing thread when a write to a pipe or socket fails
//! with EPIPE (`pipe_write`, `sk_stream_error`), unless a send passed MSG_NOSIGNAL. The
//! host's own SIGPIPE is ignored (Rust's runtime does that), so the guest's is raised
//! here, after the call failed with EPIPE (as on Linux, the call still returns EPIPE: a
//! handler runs first, the default action kills).

use super::Ctx;
use crate::signal::{SigInfo, Target, SIGPIPE};

const MSG_NOSIGNAL: u64 = 0x4000;

/// Called by `dispatch` for every call that failed with EPIPE.
pub fn on_epipe(ctx: &Ctx, nr: u64, args: &[u64; 6]) {
    let sends = match nr {
        64 | 66 | 75 | 76 | 77 | 287 => true, // write writev vmsplice splice tee pwritev2
        206 | 269 => args[3] & MSG_NOSIGNAL == 0, // sendto sendmmsg
        211 => args[2] & MSG_NOSIGNAL == 0,   // sendmsg
        _ => false,
    };
    if !sends {
        return;
    }
    // send_sig(SIGPIPE, current, 0): SI_USER from the process itself.
    let info = SigInfo {
        signo: SIGPIPE,
        code: crate::signal::info::SI_USER,
        pid: ctx.proc.pid,
        uid: super::cred::current().uid,
        ..Default::default()
    };
    ctx.proc.send_signal(Target::Thread(ctx.thread.tid), info);
}
