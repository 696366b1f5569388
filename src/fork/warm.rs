//! Translated code for native fork children, learned from earlier children.
//!
//! A native fork child inherits its parent's translated code, but not the blocks only a
//! child runs, which each child would translate anew (perf: that and the copy-on-write
//! faults it causes were a third of a child's life in fork + `_exit` + wait). So a
//! child reports what it translates to a [`CodeLog`] its parent created, and the parent,
//! at its next fork, translates those blocks ahead: from then on children find them.
//! See `backend::codelog` for the log and why a bad hint is harmless.

use std::sync::Arc;

use crate::backend::{CodeLog, Vcpu};
use crate::process::Process;

/// The parent, before fork(): translates what earlier children reported, and returns
/// the log the next child reports to (`None` if it cannot be created).
pub fn before_fork(proc: &Process, vcpu: &mut dyn Vcpu) -> Option<Arc<CodeLog>> {
    let log = proc
        .code_log
        .get_or_init(|| match CodeLog::new() {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                tracing::debug!("fork: no code log: {e}");
                None
            }
        })
        .clone()?;
    let mm = proc.mm();
    let mut n = 0;
    log.drain(|pc, key| {
        if mm.is_executable(pc) && vcpu.pretranslate(pc, key) {
            n += 1;
        }
    });
    drop(mm);
    if n > 0 {
        tracing::debug!(blocks = n, "fork: translated ahead what children reported");
    }
    Some(log)
}

/// Blocks a child reports at most: its first ones are the fork path every child runs;
/// what it does after that may be its own business, and the parent translates every
/// report at its next fork.
const CHILD_REPORTS: u32 = 64;

/// The child: report what this vCPU translates to the parent's log (until it execs).
/// Without one, report nothing: the engine copied from the parent may still be
/// reporting to the grandparent's.
pub fn in_child(vcpu: &mut dyn Vcpu, parent_log: Option<Arc<CodeLog>>) {
    vcpu.log_translations(parent_log, CHILD_REPORTS);
}

/// execve: the reports of the old image are of no use to anyone.
pub fn at_exec(proc: &Process, vcpu: &mut dyn Vcpu) {
    vcpu.log_translations(None, 0);
    if let Some(Some(l)) = proc.code_log.get() {
        l.drain(|_, _| {});
    }
}
