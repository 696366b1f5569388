//! SIGPIPE: Linux sends it to the writing thread when a write to a pipe or socket fails
//! with EPIPE (`pipe_write`, `sk_stream_error`), unless a send passed MSG_NOSIGNAL. The
//! host's own SIGPIPE is ignored (Rust's runtime does that), so the guest's is raised
//! here, after the call failed with EPIPE (as on Linux, the call still returns EPIPE: a
//! handler runs first, the default action kills).

use super::table::SigPipe;
use super::Ctx;
use crate::signal::{SigInfo, Target, SIGPIPE};

const MSG_NOSIGNAL: u64 = 0x4000;

/// Called by `dispatch` for every call that failed with EPIPE, with the call's
/// `sigpipe` fact from the syscall table.
pub fn on_epipe(ctx: &Ctx, fact: SigPipe, args: &[u64; 6]) {
    let sends = match fact {
        SigPipe::No => false,
        SigPipe::Always => true,
        SigPipe::UnlessNoSignal(n) => args[n] & MSG_NOSIGNAL == 0,
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
