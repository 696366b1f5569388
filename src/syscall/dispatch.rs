//! One syscall's way through the layer: seccomp, the table lookup, tracing, the handler,
//! the SIGPIPE fact. The only user is the vCPU loop.

use super::ctx::Ctx;
use super::{seccomp, sigpipe, table, tracefmt};
use crate::errno::Errno;

/// Runs one syscall: looks it up, traces it, runs the handler; returns the value for X0
/// (None if the handler set the registers itself).
pub fn dispatch(ctx: &mut Ctx, nr: u64, args: [u64; 6]) -> Option<u64> {
    if let seccomp::Verdict::Skip(ret) = seccomp::enter(ctx, nr, &args) {
        return ret;
    }
    let def = table::lookup(nr);
    let tracing = ctx.proc.tracer.set.syscalls;
    let pre = tracing.then(|| tracefmt::entry(ctx, nr, def, &args));
    let res = match def.and_then(|d| d.handler) {
        Some(h) => h(ctx, args),
        None => Err(Errno::ENOSYS),
    };
    if res == Err(Errno::EPIPE) {
        if let Some(d) = def {
            sigpipe::on_epipe(ctx, d.facts.sigpipe, &args);
        }
    }
    if let Some(pre) = pre {
        ctx.proc.tracer.line(&tracefmt::exit(pre, &res, ctx.stop));
    }
    if ctx.regs_set {
        return None;
    }
    Some(match res {
        Ok(v) => v,
        Err(e) => (-(e.0 as i64)) as u64,
    })
}
