//! A thread's seccomp state (`ThreadState::seccomp`): its mode and filter chain, as new
//! threads, fork children and execve carry it. State only; installing and running filters
//! is `syscall::seccomp`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::syscall::bpf::{self, Insn};

pub const MODE_DISABLED: u8 = 0;
pub const MODE_STRICT: u8 = 1;
pub const MODE_FILTER: u8 = 2;

/// Bumped by every TSYNC; a thread whose generation differs looks itself up in `SYNCED`.
/// (A guest process is a host process: these are the process's.)
pub(crate) static GEN: AtomicU64 = AtomicU64::new(0);

/// One installed filter and the ones installed before it.
#[derive(Debug)]
pub struct Filter {
    pub(crate) prog: Box<[Insn]>,
    pub(crate) prev: Option<Arc<Filter>>,
}

/// A thread's seccomp state.
#[derive(Clone, Debug, Default)]
pub struct Seccomp {
    pub mode: u8,
    /// The newest filter (filter mode).
    pub chain: Option<Arc<Filter>>,
    /// The TSYNC generation this thread has taken.
    pub(crate) gen: u64,
}

impl Seccomp {
    /// A copy for a new thread or a fork child.
    pub fn inherit(&self) -> Seccomp {
        self.clone()
    }

    /// The programs, newest first (a spawned fork child gets them over the wire).
    pub fn programs(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut f = self.chain.as_deref();
        while let Some(fl) = f {
            let mut b = Vec::with_capacity(fl.prog.len() * 8);
            for i in fl.prog.iter() {
                b.extend_from_slice(&i.code.to_le_bytes());
                b.extend_from_slice(&[i.jt, i.jf]);
                b.extend_from_slice(&i.k.to_le_bytes());
            }
            out.push(b);
            f = fl.prev.as_deref();
        }
        out
    }

    /// The state `programs` described (checked again: they come from another process).
    pub fn from_programs(mode: u8, progs: &[Vec<u8>]) -> Option<Seccomp> {
        let mut chain: Option<Arc<Filter>> = None;
        for p in progs.iter().rev() {
            let prog: Box<[Insn]> = p.chunks_exact(8).map(Insn::from_bytes).collect();
            bpf::check(&prog).ok()?;
            chain = Some(Arc::new(Filter { prog, prev: chain }));
        }
        Some(Seccomp {
            mode,
            chain,
            gen: GEN.load(Ordering::Relaxed),
        })
    }
}
