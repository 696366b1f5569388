//! What a fork child inherits, captured from the parent (`capture`, guest paused inside
//! the syscall) and rebuilt in the child (`rebuild`). Host fds travel as SCM_RIGHTS; the
//! payload refers to them by index.
//!
//! Inherited: every register (the child's X0 is 0), the RAM snapshot, the VMAs and page
//! tables, brk, the fd table (each open file description is sent once, so dup aliases
//! stay aliases, sharing offsets as on Linux), CLOEXEC flags, RLIMIT_NOFILE, signal
//! dispositions and mask, umask, --sysroot, credentials, rlimits, the program name, the
//! trace settings and sink, the thread's comm/dumpable/rseq. Reset as on Linux: pending
//! signals, the robust list, clear_child_tid (unless CLONE_CHILD_CLEARTID). The host cwd
//! and umask are inherited by the spawn itself, but a forking thread's own (a thread
//! with its own fs context, `syscall::clone_own`) travel: the cwd as a directory fd.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use elfuse_actors::fdtable::{FdTable, FileKind, OpenFile};

use super::wire::{Dec, Enc};
use crate::backend::{Reg, SysReg, Vcpu};
use crate::guest::mm::{Backing, MmParts, ShmSeg, Vma, VmaName};

/// A VMA's backing tag on the wire for a SysV shm attachment (Anon is u64::MAX, a file
/// its fd's index).
const SHM_BACKING: u64 = u64::MAX - 1;
use crate::process::{Creds, FsContext, Process, Rlimit, RLIM_NLIMITS};
use crate::signal::state::SignalState;
use crate::signal::{KSigaction, NSIG};
use crate::syscall::kinds;
use crate::syscall::ThreadState;

/// System registers handed over (the child's CONTEXTIDR_EL1 is its own tid).
pub const SYS_REGS: [SysReg; 14] = [
    SysReg::MairEl1,
    SysReg::TcrEl1,
    SysReg::Ttbr0El1,
    SysReg::CpacrEl1,
    SysReg::CntkctlEl1,
    SysReg::VbarEl1,
    SysReg::SpEl1,
    SysReg::ElrEl1,
    SysReg::SpsrEl1,
    SysReg::SpEl0,
    SysReg::TpidrEl0,
    SysReg::TpidrroEl0,
    SysReg::TpidrEl1,
    SysReg::SctlrEl1,
];

/// The calling vCPU's registers, stopped at its syscall `HVC #5`.
#[derive(Clone, Debug)]
pub struct CpuState {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    pub fpcr: u64,
    pub fpsr: u64,
    pub v: [u128; 32],
    pub sys: [u64; SYS_REGS.len()],
}

impl CpuState {
    pub fn read(vcpu: &dyn Vcpu) -> crate::backend::Result<CpuState> {
        let mut s = CpuState {
            x: [0; 31],
            pc: vcpu.reg(Reg::Pc)?,
            pstate: vcpu.reg(Reg::Pstate)?,
            fpcr: vcpu.reg(Reg::Fpcr)?,
            fpsr: vcpu.reg(Reg::Fpsr)?,
            v: [0; 32],
            sys: [0; SYS_REGS.len()],
        };
        for (i, x) in s.x.iter_mut().enumerate() {
            *x = vcpu.reg(Reg::X(i as u8))?;
        }
        for (i, v) in s.v.iter_mut().enumerate() {
            *v = vcpu.simd_reg(i as u8)?;
        }
        for (i, r) in SYS_REGS.iter().enumerate() {
            s.sys[i] = vcpu.sys_reg(*r)?;
        }
        Ok(s)
    }

    pub fn set_sys(&mut self, r: SysReg, v: u64) {
        if let Some(i) = SYS_REGS.iter().position(|&x| x == r) {
            self.sys[i] = v;
        }
    }

    /// Loads the state into a fresh vCPU (PSTATE first: it selects the current SP;
    /// SCTLR_EL1 last, as at start-up).
    pub fn write(&self, vcpu: &mut dyn Vcpu, tid: i32) -> crate::backend::Result<()> {
        vcpu.set_reg(Reg::Pstate, self.pstate)?;
        for (i, r) in SYS_REGS.iter().enumerate() {
            vcpu.set_sys_reg(*r, self.sys[i])?;
        }
        vcpu.set_sys_reg(SysReg::ContextidrEl1, tid as u64)?;
        for (i, x) in self.x.iter().enumerate() {
            vcpu.set_reg(Reg::X(i as u8), *x)?;
        }
        for (i, v) in self.v.iter().enumerate() {
            vcpu.set_simd_reg(i as u8, *v)?;
        }
        vcpu.set_reg(Reg::Fpcr, self.fpcr)?;
        vcpu.set_reg(Reg::Fpsr, self.fpsr)?;
        vcpu.set_reg(Reg::Pc, self.pc)
    }
}

/// A captured parent, ready to send. `fds[0]` is the RAM snapshot; the rest are kept
/// open by `keep` until sent.
pub struct Outgoing {
    pub payload: Vec<u8>,
    pub fds: Vec<RawFd>,
    pub owned: Vec<OwnedFd>,
    pub keep: (Vec<Arc<OpenFile>>, Vec<Arc<OwnedFd>>),
    pub vfork: bool,
}

impl Outgoing {
    /// A handover that carries nothing: the child rejects it and exits.
    pub fn abandon() -> Outgoing {
        Outgoing {
            payload: Vec::new(),
            fds: Vec::new(),
            owned: Vec::new(),
            keep: (Vec::new(), Vec::new()),
            vfork: false,
        }
    }
}

/// Thread-level facts the child starts with.
pub struct ChildThread {
    pub comm: [u8; 16],
    pub dumpable: bool,
    pub rseq: Option<(u64, u32, u32)>,
    /// CLONE_CHILD_CLEARTID.
    pub clear_child_tid: u64,
    /// CLONE_CHILD_SETTID: where the child writes its tid, 0 if not asked.
    pub set_child_tid: u64,
    /// The forking thread's signal mask.
    pub sigmask: u64,
    /// The forking thread's alternate signal stack (a fork child keeps it).
    pub altstack: crate::signal::altstack::AltStack,
    /// The forking thread's seccomp mode and filters (a fork child keeps them).
    pub seccomp: crate::syscall::seccomp::Seccomp,
    /// The forking thread's own fd table and fs context, if it has them: the child's
    /// come from those (`syscall::clone_own`).
    pub own: crate::syscall::clone_state::Own,
    /// CLONE_CLEAR_SIGHAND: the child's handled signals are reset to SIG_DFL.
    pub clear_sighand: bool,
}

fn index_of(fds: &mut Vec<RawFd>, fd: RawFd) -> u64 {
    match fds.iter().position(|&f| f == fd) {
        Some(i) => i as u64,
        None => {
            fds.push(fd);
            (fds.len() - 1) as u64
        }
    }
}

/// Captures the process for a child. `cpu` is already adjusted (X0 = 0, new SP, TLS).
pub fn capture(
    proc: &Process,
    cpu: &CpuState,
    t: &ChildThread,
    ram_snapshot: OwnedFd,
    vfork: bool,
) -> Outgoing {
    let mut e = Enc::default();
    e.bool(vfork);
    let mut fds = vec![ram_snapshot.as_raw_fd()];
    let mut owned = vec![ram_snapshot];
    let (mut keep_files, mut keep_maps) = (Vec::new(), Vec::new());

    // Registers.
    cpu.x.iter().for_each(|&x| e.u64(x));
    for v in [cpu.pc, cpu.pstate, cpu.fpcr, cpu.fpsr] {
        e.u64(v);
    }
    cpu.v.iter().for_each(|&v| e.u128(v));
    cpu.sys.iter().for_each(|&v| e.u64(v));

    // Address space.
    let mm = proc.mm().to_parts();
    e.u64(mm.vmas.len() as u64);
    for (start, v) in &mm.vmas {
        e.u64(*start);
        e.u64(v.end);
        e.u64(v.prot.into());
        e.bool(v.shared);
        match &v.backing {
            Backing::Anon => e.u64(u64::MAX),
            Backing::File { fd, offset } => {
                e.u64(index_of(&mut fds, fd.as_raw_fd()));
                e.u64(*offset);
                keep_maps.push(fd.clone());
            }
            Backing::Shm { seg, offset } => {
                // The attachment's identity (its fragments share it), then the segment.
                e.u64(SHM_BACKING);
                e.u64(Arc::as_ptr(seg) as u64);
                e.u64(seg.id as u32 as u64);
                e.u64(seg.size);
                e.bool(seg.writable);
                e.u64(*offset);
            }
        }
        match &v.name {
            VmaName::None => e.u64(0),
            VmaName::Heap => e.u64(1),
            VmaName::Stack => e.u64(2),
            VmaName::Path(p) => {
                e.u64(3);
                e.bytes(p.as_bytes());
            }
        }
    }
    let (root, next, free) = &mm.pt;
    e.u64(*root);
    e.u64(*next);
    e.u64(free.len() as u64);
    free.iter().for_each(|&f| e.u64(f));
    e.u64(mm.brk_start);
    e.u64(mm.brk);

    // Fd table: each description once, then guest fd → description. An emulated
    // description is state, not a host fd: its kind's fork state crosses and the child
    // makes its own (`syscall::kinds`); kinds with none are not inherited.
    let (snap, limit) = {
        let t = t.own.table(proc);
        let snap: Vec<_> = t
            .fork_snapshot()
            .snapshot()
            .into_iter()
            .filter_map(|(fd, f, cloexec)| {
                let state = match f.kind {
                    FileKind::Synthetic(_) => {
                        let (g, k) = kinds::registry::of(&f)?;
                        Some((k.name, g.fork_state()?))
                    }
                    _ => None,
                };
                Some((fd, f, cloexec, state))
            })
            .collect();
        (snap, t.limits())
    };
    e.u64(limit.0);
    e.u64(limit.1);
    e.u64(snap.len() as u64);
    let mut descs: Vec<*const OpenFile> = Vec::new();
    for (fd, file, cloexec, state) in &snap {
        e.u64(*fd as u64);
        e.bool(*cloexec);
        let ptr = Arc::as_ptr(file);
        match descs.iter().position(|&p| p == ptr) {
            Some(i) => e.u64(i as u64),
            None => {
                descs.push(ptr);
                e.u64(u64::MAX);
                match &file.kind {
                    FileKind::Host(h) => {
                        e.u64(0);
                        e.u64(index_of(&mut fds, h.as_raw_fd()));
                    }
                    FileKind::Stdio(n) => {
                        e.u64(1);
                        e.u64(*n as u64);
                    }
                    FileKind::Urandom { fd: h, .. } => {
                        e.u64(2);
                        e.u64(index_of(&mut fds, h.as_raw_fd()));
                    }
                    FileKind::Synthetic(_) => {
                        let (name, state) = state.as_ref().expect("filtered above");
                        e.u64(3);
                        e.bytes(name.as_bytes());
                        e.bytes(state);
                    }
                }
                e.opt_bytes(file.path.as_deref());
                keep_files.push(file.clone());
            }
        }
    }

    // Signals: dispositions and mask (pending signals are not inherited).
    {
        let mut actions = proc.signals.actions();
        if t.clear_sighand {
            crate::syscall::clone_proc::clear_sighand(&mut actions);
        }
        for a in &actions {
            for v in [a.handler, a.flags, a.restorer, a.mask] {
                e.u64(v);
            }
        }
        e.u64(t.sigmask);
        for v in [t.altstack.sp, t.altstack.size, t.altstack.flags.into()] {
            e.u64(v);
        }
    }
    // Filesystem context, limits, identity, program, tracing.
    {
        let fs = t.own.fs_copy(proc);
        e.opt_bytes(fs.sysroot.as_ref().map(|p| p.as_os_str().as_bytes()));
        e.u64(fs.umask.into());
        e.bool(fs.chroot);
        // A thread with its own fs context: its cwd and umask, which the spawn (made by
        // another host thread) does not carry.
        let cwd = t
            .own
            .fs
            .as_ref()
            .and_then(|_| std::fs::File::open(".").ok())
            .map(OwnedFd::from);
        e.bool(cwd.is_some());
        if let Some(cwd) = cwd {
            e.u64(index_of(&mut fds, cwd.as_raw_fd()));
            owned.push(cwd);
        }
    }
    for r in proc.rlimits().iter() {
        e.u64(r.cur);
        e.u64(r.max);
    }
    let c = crate::syscall::cred::current();
    for v in [c.uid, c.euid, c.gid, c.egid] {
        e.u64(v.into());
    }
    let (exe, exe_host) = proc.exe();
    e.bytes(&exe);
    e.bytes(exe_host.as_os_str().as_bytes());
    e.bool(proc.tracer.set.syscalls);
    e.bool(proc.tracer.set.actors);
    match proc.tracer.sink_dup() {
        Some(fd) => {
            e.u64(index_of(&mut fds, fd.as_raw_fd()));
            owned.push(fd);
        }
        None => e.u64(u64::MAX),
    }
    e.u64(proc.sigreturn_tramp());
    e.u64(proc.vdso.vvar);

    // Thread.
    e.bytes(&t.comm);
    e.bool(t.dumpable);
    match t.rseq {
        Some((a, l, s)) => {
            e.bool(true);
            e.u64(a);
            e.u64(l.into());
            e.u64(s.into());
        }
        None => e.bool(false),
    }
    e.u64(t.clear_child_tid);
    e.u64(t.set_child_tid);
    e.u64(t.seccomp.mode.into());
    let progs = t.seccomp.programs();
    e.u64(progs.len() as u64);
    for p in &progs {
        e.bytes(p);
    }
    Outgoing {
        payload: e.0,
        fds,
        owned,
        keep: (keep_files, keep_maps),
        vfork,
    }
}

/// The child's rebuilt state.
pub struct Incoming {
    pub vfork: bool,
    pub cpu: CpuState,
    pub ram: OwnedFd,
    pub mm: MmParts,
    pub fds: FdTable,
    pub signals: SignalState,
    pub fs: FsContext,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    pub creds: Creds,
    pub exe: (Vec<u8>, PathBuf),
    pub trace: (crate::trace::TraceSet, Option<OwnedFd>),
    pub sigreturn_tramp: u64,
    /// The `[vvar]` page (the vDSO follows it).
    pub vvar: u64,
    pub thread: ThreadState,
    pub set_child_tid: u64,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fork handover: bad {what}"),
    )
}

/// Decodes what [`capture`] encoded. `fds` are the received host fds, in order.
pub fn rebuild(payload: &[u8], fds: Vec<OwnedFd>) -> io::Result<Incoming> {
    let mut d = Dec::new(payload);
    let vfork = d.bool()?;
    let fds: Vec<Arc<OwnedFd>> = fds.into_iter().map(Arc::new).collect();
    let fd_at = |i: u64| fds.get(i as usize).cloned().ok_or_else(|| bad("fd index"));

    let mut x = [0u64; 31];
    for v in x.iter_mut() {
        *v = d.u64()?;
    }
    let (pc, pstate, fpcr, fpsr) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
    let mut v = [0u128; 32];
    for r in v.iter_mut() {
        *r = d.u128()?;
    }
    let mut sys = [0u64; SYS_REGS.len()];
    for r in sys.iter_mut() {
        *r = d.u64()?;
    }
    let cpu = CpuState {
        x,
        pc,
        pstate,
        fpcr,
        fpsr,
        v,
        sys,
    };

    let nvma = d.u64()?;
    let mut vmas = Vec::new();
    let mut attaches: std::collections::HashMap<u64, Arc<ShmSeg>> = Default::default();
    for _ in 0..nvma {
        let (start, end, prot, shared) = (d.u64()?, d.u64()?, d.u64()? as u32, d.bool()?);
        let backing = match d.u64()? {
            u64::MAX => Backing::Anon,
            SHM_BACKING => {
                let (key, id, size, writable) = (d.u64()?, d.u64()? as i32, d.u64()?, d.bool()?);
                let seg = attaches
                    .entry(key)
                    .or_insert_with(|| Arc::new(ShmSeg { id, size, writable }));
                Backing::Shm {
                    seg: seg.clone(),
                    offset: d.u64()?,
                }
            }
            i => Backing::File {
                fd: fd_at(i)?,
                offset: d.u64()?,
            },
        };
        let name = match d.u64()? {
            0 => VmaName::None,
            1 => VmaName::Heap,
            2 => VmaName::Stack,
            3 => VmaName::Path(String::from_utf8_lossy(&d.bytes()?).as_ref().into()),
            _ => return Err(bad("vma name")),
        };
        let vma = Vma {
            end,
            prot,
            shared,
            backing,
            name,
        };
        vmas.push((start, vma));
    }
    let (root, next, nfree) = (d.u64()?, d.u64()?, d.u64()?);
    let mut free = Vec::new();
    for _ in 0..nfree {
        free.push(d.u64()?);
    }
    let mm = MmParts {
        vmas,
        pt: (root, next, free),
        brk_start: d.u64()?,
        brk: d.u64()?,
    };

    let mut table = FdTable::new();
    let (soft, hard) = (d.u64()?, d.u64()?);
    table
        .set_limits(soft, hard, true)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad RLIMIT_NOFILE"))?;
    let nfd = d.u64()?;
    let mut descs: Vec<Arc<OpenFile>> = Vec::new();
    let mut watchers = kinds::Watchers::new();
    for _ in 0..nfd {
        let (fd, cloexec) = (d.u64()? as i32, d.bool()?);
        let file = match d.u64()? {
            u64::MAX => {
                let kind = d.u64()?;
                if kind == 3 {
                    let name = d.bytes()?;
                    let state = d.bytes()?;
                    let _path = d.opt_bytes()?;
                    let k = std::str::from_utf8(&name)
                        .ok()
                        .and_then(kinds::registry::named)
                        .ok_or_else(|| bad("file kind"))?;
                    let s = (k.adopt)(&state, &mut watchers)
                        .map_err(|e| io::Error::from_raw_os_error(e.0))?;
                    let f = OpenFile::synthetic(s);
                    descs.push(f.clone());
                    table
                        .install_at(fd, f, cloexec)
                        .map_err(|_| bad("guest fd"))?;
                    continue;
                }
                let host = match kind {
                    // Each description's fd is sent once, so this is the only Arc.
                    0 | 2 => Some(Arc::try_unwrap(fd_at(d.u64()?)?).or_else(|a| a.try_clone())?),
                    1 => None,
                    _ => return Err(bad("fd kind")),
                };
                let stdio = if kind == 1 { d.u64()? as RawFd } else { -1 };
                let path: Option<Box<[u8]>> = d.opt_bytes()?.map(Into::into);
                let f = match (kind, host) {
                    // /dev/urandom: a fresh entropy cache (never the parent's bytes).
                    (2, Some(h)) => OpenFile::opened(h, path.as_deref(), true),
                    (_, Some(h)) => OpenFile::host(h, path.as_deref()),
                    _ => OpenFile::stdio(stdio, path),
                };
                descs.push(f.clone());
                f
            }
            i => descs.get(i as usize).cloned().ok_or_else(|| bad("alias"))?,
        };
        table
            .install_at(fd, file, cloexec)
            .map_err(|_| bad("guest fd"))?;
    }

    let mut signals = SignalState::default();
    for a in signals.actions.iter_mut().take(NSIG) {
        *a = KSigaction {
            handler: d.u64()?,
            flags: d.u64()?,
            restorer: d.u64()?,
            mask: d.u64()?,
        };
    }
    for w in watchers {
        signals.watch(w);
    }
    let sigmask = d.u64()?;
    let altstack = crate::signal::altstack::AltStack {
        sp: d.u64()?,
        size: d.u64()?,
        flags: d.u64()? as u32,
    };
    let sysroot = d
        .opt_bytes()?
        .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b)));
    let fs = FsContext {
        sysroot,
        umask: d.u64()? as u32,
        chroot: d.bool()?,
    };
    if d.bool()? {
        let cwd = fd_at(d.u64()?)?;
        nix::unistd::fchdir(&*cwd).map_err(io::Error::from)?;
        // SAFETY: umask takes a mode by value and cannot fail.
        unsafe { libc::umask(fs.umask as libc::mode_t) };
    }
    let mut rlimits = [Rlimit { cur: 0, max: 0 }; RLIM_NLIMITS];
    for r in rlimits.iter_mut() {
        *r = Rlimit {
            cur: d.u64()?,
            max: d.u64()?,
        };
    }
    let creds = Creds {
        uid: d.u64()? as u32,
        euid: d.u64()? as u32,
        gid: d.u64()? as u32,
        egid: d.u64()? as u32,
    };
    let exe = d.bytes()?;
    let exe_host = PathBuf::from(std::ffi::OsStr::from_bytes(&d.bytes()?));
    let trace_on = crate::trace::TraceSet {
        syscalls: d.bool()?,
        actors: d.bool()?,
    };
    let trace_fd = match d.u64()? {
        u64::MAX => None,
        i => Some(fd_at(i)?.try_clone()?),
    };
    let sigreturn_tramp = d.u64()?;
    let vvar = d.u64()?;

    let comm_v = d.bytes()?;
    let mut comm = [0u8; 16];
    let n = comm_v.len().min(16);
    comm[..n].copy_from_slice(&comm_v[..n]);
    let dumpable = d.bool()?;
    let rseq = if d.bool()? {
        Some((d.u64()?, d.u64()? as u32, d.u64()? as u32))
    } else {
        None
    };
    let thread = ThreadState {
        comm,
        dumpable,
        rseq,
        sigmask,
        altstack,
        clear_child_tid: d.u64()?,
        ..Default::default()
    };
    let set_child_tid = d.u64()?;
    let mut thread = thread;
    let mode = d.u64()? as u8;
    let n = d.u64()?;
    let progs = (0..n).map(|_| d.bytes()).collect::<io::Result<Vec<_>>>()?;
    thread.seccomp = crate::syscall::seccomp::Seccomp::from_programs(mode, &progs)
        .ok_or_else(|| io::Error::other("seccomp filters"))?;
    let ram = Arc::try_unwrap(fd_at(0)?).or_else(|a| a.try_clone())?;
    Ok(Incoming {
        vfork,
        cpu,
        ram,
        mm,
        fds: table,
        signals,
        fs,
        rlimits,
        creds,
        exe: (exe, exe_host),
        trace: (trace_on, trace_fd),
        sigreturn_tramp,
        vvar,
        thread,
        set_child_tid,
    })
}
