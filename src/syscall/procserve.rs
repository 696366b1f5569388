//! The answering side of the peer channel (`procpeer`, requests in `procremote`): a
//! request about this process's guest, rendered by the code that renders its own /proc,
//! in a context with no calling thread (there is none: the asker is another process), no
//! vCPU and no way to start threads or processes.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use elfuse_actors::fdtable::{FileKind, OpenFile};

use super::procnode::{Link, LinkTo, Node, FILES};
use super::procremote::*;
use super::{Ctx, ThreadState};
use crate::backend::{BackendError, Invalidate, Kick, Reg, Result as BResult, SysReg};
use crate::backend::{Vcpu, VcpuExit};
use crate::errno::Errno;
use crate::fork::wire::{Dec, Enc};
use crate::process::Process;

/// Answers request `req` about `proc` into `out` (and `fd`).
pub fn handle(
    proc: &Arc<Process>,
    req: &[u8],
    out: &mut Enc,
    fd: &mut Option<OwnedFd>,
) -> Result<(), Errno> {
    let mut thread = ThreadState::default();
    let mut vcpu = NoVcpu;
    let ctx = Ctx::new(proc, &mut thread, &mut vcpu, &NoLife);
    let mut d = Dec::new(req);
    let op = d.u64().map_err(|_| bad())?;
    let num = |d: &mut Dec| d.u64().map(|v| v as u32 as i32).map_err(|_| bad());
    match op {
        PING => {}
        HAS_THREAD => out.bool(ctx.proc.threads.get(num(&mut d)?).is_some()),
        HAS_FD => out.bool(ctx.file(num(&mut d)? as u32 as u64).is_ok()),
        GENERATE => {
            let tid = dec_tid(&mut d)?;
            let name = d.bytes().map_err(|_| bad())?;
            let name = FILES
                .iter()
                .find(|f| f.as_bytes() == name && **f != "mem")
                .ok_or(bad())?;
            if let Some(t) = tid {
                ctx.proc.threads.get(t).ok_or(Errno::ENOENT)?;
            }
            out.0 = super::procfs::generate(&ctx, tid, name)?;
        }
        FDINFO => out.0 = super::procfs::fdinfo(&ctx, num(&mut d)?)?,
        LIST => {
            let node = dec_node(&mut d)?;
            let v = super::procdir::list(&ctx, &node);
            out.u64(v.len() as u64);
            for (name, ty) in v {
                out.bytes(&name);
                out.u64(ty as u64);
            }
        }
        LINK_TEXT => match dec_node(&mut d)? {
            Node::Link(_, l) if l != Link::ThreadSelf => {
                out.0 = super::proclink::link_text(&ctx, &l)?
            }
            _ => return Err(Errno::EINVAL),
        },
        FOLLOW => {
            let Node::Link(_, l) = dec_node(&mut d)? else {
                return Err(bad());
            };
            match l {
                // The guest's cwd as a path (a "." would be the asker's).
                Link::Cwd => {
                    out.u64(1);
                    out.bytes(&super::proclink::link_text(&ctx, &l)?);
                }
                Link::ThreadSelf => return Err(bad()),
                _ => match super::procnode::follow_link(&ctx, &l)? {
                    LinkTo::File(f, _) => {
                        *fd = Some(dup(&f)?);
                        out.u64(0);
                        out.bytes(b"");
                    }
                    LinkTo::Guest(p) => {
                        out.u64(1);
                        out.bytes(&p);
                    }
                    LinkTo::HostPath(p) => {
                        out.u64(2);
                        out.bytes(p.as_bytes());
                    }
                },
            }
        }
        MEM => {
            let addr = d.u64().map_err(|_| bad())?;
            let len = (d.u64().map_err(|_| bad())? as usize).min(MEM_CHUNK);
            match d.opt_bytes().map_err(|_| bad())? {
                Some(mut data) => {
                    let n = data.len().min(len);
                    let put = super::procdir::mem_xfer(&ctx, addr, n, true, &mut data)?;
                    out.u64(put);
                    out.bytes(b"");
                }
                None => {
                    let mut buf = vec![0u8; len];
                    let got = super::procdir::mem_xfer(&ctx, addr, len, false, &mut buf)?;
                    out.u64(got);
                    out.bytes(&buf[..got as usize]);
                }
            }
        }
        GETFD => {
            let f = ctx
                .file(num(&mut d)? as u32 as u64)
                .map_err(|_| Errno::EBADF)?;
            // An emulated description (a signalfd, an open /proc file of the guest's)
            // lives in this process's state; only a host description can be shared.
            if matches!(f.kind, FileKind::Synthetic(_)) {
                return Err(Errno::EBADF);
            }
            *fd = Some(dup(&f)?);
        }
        MADVISE => {
            let advice = num(&mut d)?;
            let iov = d.bytes().map_err(|_| bad())?;
            out.u64(super::sfd::pidfd::advise_ranges(ctx.proc, &iov, advice)?);
        }
        _ => return Err(bad()),
    }
    Ok(())
}

fn dup(f: &Arc<OpenFile>) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new fd of the description `f` holds open.
    let r = unsafe { libc::fcntl(f.raw(), libc::F_DUPFD_CLOEXEC, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh host fd nobody else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(r) })
}

/// Nor does it start threads or processes.
struct NoLife;

impl super::ctx::Life for NoLife {
    fn spawn_thread(&self, _: &mut Ctx, _: super::ctx::ThreadArgs) -> super::SysResult {
        Err(Errno::EPERM)
    }
    fn fork(&self, _: &mut Ctx, _: [u64; 6]) -> super::SysResult {
        Err(Errno::EPERM)
    }
    fn run_leader(
        &self,
        _: &Arc<Process>,
        _: &mut dyn Vcpu,
        _: &mut ThreadState,
    ) -> Result<crate::syscall::Stop, String> {
        Err("no process life on the peer channel".into())
    }
}

/// The answering side's context has no vCPU (it is no guest thread): rendering never
/// touches one, so every call is an error.
struct NoVcpu;

fn no<T>() -> BResult<T> {
    Err(BackendError("no vCPU on the peer channel".into()))
}

impl Vcpu for NoVcpu {
    fn reg(&self, _: Reg) -> BResult<u64> {
        no()
    }
    fn set_reg(&mut self, _: Reg, _: u64) -> BResult<()> {
        no()
    }
    fn sys_reg(&self, _: SysReg) -> BResult<u64> {
        no()
    }
    fn set_sys_reg(&mut self, _: SysReg, _: u64) -> BResult<()> {
        no()
    }
    fn simd_reg(&self, _: u8) -> BResult<u128> {
        no()
    }
    fn set_simd_reg(&mut self, _: u8, _: u128) -> BResult<()> {
        no()
    }
    fn run(&mut self) -> BResult<VcpuExit> {
        no()
    }
    fn run_with(&mut self, _: &mut crate::backend::ExitHandler<'_>) -> BResult<()> {
        no()
    }
    fn kicker(&self) -> Arc<dyn Kick> {
        struct NoKick;
        impl Kick for NoKick {
            fn kick(&self) {}
        }
        Arc::new(NoKick)
    }
    fn invalidate(&mut self, _: Invalidate) -> BResult<()> {
        no()
    }
}
