//! The requests of the peer channel (`procpeer`): what one elfuse process asks another
//! about its guest, and how the asked one answers, with the same code that renders its
//! own /proc (`procnode`, `procgen`, `procdir`).
//!
//! The asker's side keeps the other process's /proc/<pid> as `Node::Peer(pid, node)`,
//! `node` being the entry's node in the other process's own tree; lookups that depend on
//! that process (does thread T, fd N exist), file contents, directory listings, link
//! texts and targets, memory and fds are requests. The answering side builds a context
//! with no calling thread (there is none: the caller is another process) and renders.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use elfuse_actors::fdtable::{FileKind, OpenFile};

use super::procnode::{Dir, Link, LinkTo, Node, FILES};
use super::procpeer::ask;
use super::{Ctx, ThreadState};
use crate::backend::{BackendError, Invalidate, Kick, Reg, Result as BResult, SysReg};
use crate::backend::{Vcpu, VcpuExit};
use crate::errno::Errno;
use crate::fork::wire::{Dec, Enc};
use crate::process::Process;

const PING: u64 = 0;
const HAS_THREAD: u64 = 1;
const HAS_FD: u64 = 2;
const GENERATE: u64 = 3;
const FDINFO: u64 = 4;
const LIST: u64 = 5;
const LINK_TEXT: u64 = 6;
const FOLLOW: u64 = 7;
const MEM: u64 = 8;
const GETFD: u64 = 9;
const MADVISE: u64 = 10;

/// Largest memory transfer of one request.
pub const MEM_CHUNK: usize = 1 << 20;

fn bad() -> Errno {
    Errno::EINVAL
}

fn opt_tid(e: &mut Enc, t: Option<i32>) {
    e.u64(t.map_or(u64::MAX, |t| t as u32 as u64));
}

fn dec_tid(d: &mut Dec) -> Result<Option<i32>, Errno> {
    let v = d.u64().map_err(|_| bad())?;
    Ok((v != u64::MAX).then_some(v as u32 as i32))
}

fn enc_node(e: &mut Enc, n: &Node) {
    match n {
        Node::Dir(t, d) => {
            e.u64(0);
            opt_tid(e, *t);
            e.u64(match d {
                Dir::Pid => 0,
                Dir::Fd => 1,
                Dir::FdInfo => 2,
                Dir::Task => 3,
            });
        }
        Node::File(t, name) => {
            e.u64(1);
            opt_tid(e, *t);
            e.bytes(name.as_bytes());
        }
        Node::FdInfo(t, n) => {
            e.u64(2);
            opt_tid(e, *t);
            e.u64(*n as u32 as u64);
        }
        Node::Link(t, l) => {
            e.u64(3);
            opt_tid(e, *t);
            let (k, n) = match l {
                Link::Fd(n) => (0, *n),
                Link::Exe => (1, 0),
                Link::Cwd => (2, 0),
                Link::Root => (3, 0),
                Link::ThreadSelf => (4, 0),
            };
            e.u64(k);
            e.u64(n as u32 as u64);
        }
        Node::Host(rest) => {
            e.u64(4);
            e.bytes(rest);
        }
        // Never sent: a process describes only itself.
        Node::Peer(..) => e.u64(5),
    }
}

fn dec_node(d: &mut Dec) -> Result<Node, Errno> {
    let tag = d.u64().map_err(|_| bad())?;
    if tag == 4 {
        return Ok(Node::Host(d.bytes().map_err(|_| bad())?));
    }
    let t = dec_tid(d)?;
    let num = |d: &mut Dec| d.u64().map(|v| v as u32 as i32).map_err(|_| bad());
    Ok(match tag {
        0 => Node::Dir(
            t,
            match d.u64().map_err(|_| bad())? {
                0 => Dir::Pid,
                1 => Dir::Fd,
                2 => Dir::FdInfo,
                3 => Dir::Task,
                _ => return Err(bad()),
            },
        ),
        1 => {
            let name = d.bytes().map_err(|_| bad())?;
            let f = FILES.iter().find(|f| f.as_bytes() == name).ok_or(bad())?;
            Node::File(t, f)
        }
        2 => Node::FdInfo(t, num(d)?),
        3 => {
            let k = d.u64().map_err(|_| bad())?;
            let n = num(d)?;
            Node::Link(
                t,
                match k {
                    0 => Link::Fd(n),
                    1 => Link::Exe,
                    2 => Link::Cwd,
                    3 => Link::Root,
                    _ => return Err(bad()),
                },
            )
        }
        _ => return Err(bad()),
    })
}

// ---- The asking side ----

pub fn ping() -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(PING);
    e.0
}

fn request(op: u64, f: impl FnOnce(&mut Enc)) -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(op);
    f(&mut e);
    e.0
}

/// Whether thread `tid` (`fd` false) or fd `n` (`fd` true) of elfuse process `pid` exists.
pub fn exists(pid: i32, fd: bool, n: i32) -> Result<bool, Errno> {
    let op = if fd { HAS_FD } else { HAS_THREAD };
    let (r, _) = ask(pid, &request(op, |e| e.u64(n as u32 as u64)))?;
    Ok(Dec::new(&r).bool().unwrap_or(false))
}

/// The text of generated file `name` of `pid` (of its thread `tid`).
pub fn generate(pid: i32, tid: Option<i32>, name: &str) -> Result<Vec<u8>, Errno> {
    let req = request(GENERATE, |e| {
        opt_tid(e, tid);
        e.bytes(name.as_bytes());
    });
    Ok(ask(pid, &req)?.0)
}

/// fdinfo/N of `pid`.
pub fn fdinfo(pid: i32, n: i32) -> Result<Vec<u8>, Errno> {
    Ok(ask(pid, &request(FDINFO, |e| e.u64(n as u32 as u64)))?.0)
}

/// The entries of directory `node` of `pid`.
pub fn list(pid: i32, node: &Node) -> Result<Vec<(Vec<u8>, u8)>, Errno> {
    let (r, _) = ask(pid, &request(LIST, |e| enc_node(e, node)))?;
    let mut d = Dec::new(&r);
    let n = d.u64().map_err(|_| bad())?;
    let mut v = Vec::new();
    for _ in 0..n {
        let name = d.bytes().map_err(|_| bad())?;
        let ty = d.u64().map_err(|_| bad())? as u8;
        v.push((name, ty));
    }
    Ok(v)
}

/// What readlink shows for link `node` of `pid`.
pub fn link_text(pid: i32, node: &Node) -> Result<Vec<u8>, Errno> {
    Ok(ask(pid, &request(LINK_TEXT, |e| enc_node(e, node)))?.0)
}

/// Where link `node` of `pid` leads.
pub fn follow(pid: i32, node: &Node) -> Result<LinkTo, Errno> {
    let (r, fd) = ask(pid, &request(FOLLOW, |e| enc_node(e, node)))?;
    let mut d = Dec::new(&r);
    let kind = d.u64().map_err(|_| bad())?;
    let text = d.bytes().map_err(|_| bad())?;
    let c = |b: Vec<u8>| std::ffi::CString::new(b).map_err(|_| bad());
    Ok(match (kind, fd) {
        (0, Some(fd)) => {
            let path = c(format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes())?;
            LinkTo::File(OpenFile::host(fd, None), path)
        }
        (1, _) => LinkTo::Guest(text),
        (2, _) => LinkTo::HostPath(c(text)?),
        _ => return Err(bad()),
    })
}

/// The host file description behind guest fd `n` of `pid` (a new host fd of it).
pub fn get_fd(pid: i32, n: i32) -> Result<OwnedFd, Errno> {
    let (_, fd) = ask(pid, &request(GETFD, |e| e.u64(n as u32 as u64)))?;
    fd.ok_or(Errno::EBADF)
}

/// Reads (`data` empty, `len` bytes) or writes `data` at guest address `addr` of `pid`,
/// as far as that guest's own mappings allow: the bytes read, or the count written.
pub fn mem(pid: i32, addr: u64, len: usize, data: Option<&[u8]>) -> Result<(Vec<u8>, u64), Errno> {
    let req = request(MEM, |e| {
        e.u64(addr);
        e.u64(len.min(MEM_CHUNK) as u64);
        e.opt_bytes(data);
    });
    let (r, _) = ask(pid, &req)?;
    let mut d = Dec::new(&r);
    let n = d.u64().map_err(|_| bad())?;
    let bytes = d.bytes().map_err(|_| bad())?;
    Ok((bytes, n))
}

/// process_madvise of elfuse process `pid`: `advice` over each (base, len) range of
/// `iov` (guest iovecs); the bytes advised, or the first range's error.
pub fn madvise(pid: i32, iov: &[u8], advice: i32) -> Result<u64, Errno> {
    let req = request(MADVISE, |e| {
        e.u64(advice as u32 as u64);
        e.bytes(iov);
    });
    let (r, _) = ask(pid, &req)?;
    Dec::new(&r).u64().map_err(|_| bad())
}

// ---- The answering side ----

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
