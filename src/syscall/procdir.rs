//! Opening entries of the guest's own /proc/<pid> (see `procnode`): generated files are
//! read-only snapshots, directories list the guest's entries, `mem` reads and writes the
//! guest's memory through the guest's own checks.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use elfuse_actors::fdtable::{OpenFile, Synthetic};

use super::kinds::GuestFile;
use super::procnode::{Dir, Node, FILES, HOST_ENTRIES};
use super::{Ctx, SysResult};
use crate::errno::Errno;
use nix::unistd::Whence;

/// An open directory of the guest's /proc: its node, and a host fd of the host's
/// directory of the same kind (for fstat, fchdir and poll). The listing position is the
/// host fd's file position (so lseek and rewinddir work).
#[derive(Debug)]
pub struct ProcDir {
    pub node: Node,
    fd: OwnedFd,
}

impl Synthetic for ProcDir {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A fork child does not inherit it (a known difference: Linux's child keeps the
/// directory open).
impl GuestFile for ProcDir {
    fn proc_link(&self, ctx: &Ctx) -> Option<Vec<u8>> {
        Some(super::procnode::guest_path(ctx, &self.node))
    }
}

/// An open /proc/<pid>/mem: reads and writes at the file position address the guest's
/// memory (`pid`: another elfuse process's, over the peer channel). The position lives
/// in an empty memfd's offset.
#[derive(Debug)]
pub struct ProcMem {
    fd: OwnedFd,
    pid: Option<i32>,
}

impl Synthetic for ProcMem {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A fork child does not inherit it (a known difference: on Linux the child's copy
/// still addresses the parent's memory).
impl GuestFile for ProcMem {
    fn read(&self, ctx: &mut Ctx, va: u64, len: usize, at: Option<u64>) -> Option<SysResult> {
        Some(mem_read(ctx, self, va, len, at))
    }
    fn write(&self, ctx: &mut Ctx, va: u64, len: usize, at: Option<u64>) -> Option<SysResult> {
        Some(mem_write(ctx, self, va, len, at))
    }
}

fn host_open(path: &std::ffi::CStr, flags: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated; the result is checked and owned just below.
    let r = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh host fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Opens `node` with guest open flags `flags`.
pub fn open(ctx: &Ctx, node: &Node, flags: u64, host_flags: i32) -> Result<Arc<OpenFile>, Errno> {
    use super::abi::{O_ACCMODE, O_PATH};
    let acc = flags & O_ACCMODE;
    let (_dir, standin) = super::procnode::stand_in(ctx, node)?;
    if flags & O_PATH != 0 {
        return Ok(OpenFile::host(host_open(&standin, host_flags)?, None));
    }
    if let Node::Peer(pid, inner) = node {
        return open_peer(*pid, node, inner, (flags, host_flags), &standin);
    }
    match node {
        Node::Dir(..) => {
            if acc != 0 {
                return Err(Errno::EISDIR);
            }
            let fd = host_open(&standin, libc::O_RDONLY | libc::O_DIRECTORY)?;
            Ok(OpenFile::synthetic(Arc::new(ProcDir {
                node: node.clone(),
                fd,
            })))
        }
        Node::File(_, "mem") => {
            let fd = nix::sys::memfd::memfd_create(
                c"elfuse-mem",
                nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
            )?;
            Ok(OpenFile::synthetic(Arc::new(ProcMem { fd, pid: None })))
        }
        Node::File(tid, name) => {
            if acc != 0 {
                return Err(Errno::EACCES);
            }
            let text = super::procfs::generate(ctx, *tid, name)?;
            Ok(OpenFile::host(super::procfs::snapshot_fd(&text)?, None))
        }
        Node::FdInfo(_, n) => {
            if acc != 0 {
                return Err(Errno::EACCES);
            }
            let text = super::procfs::fdinfo(ctx, *n)?;
            Ok(OpenFile::host(super::procfs::snapshot_fd(&text)?, None))
        }
        // Opened without following (O_NOFOLLOW): the host's answer for a link (ELOOP).
        Node::Link(..) | Node::Host(_) | Node::Peer(..) => {
            Ok(OpenFile::host(host_open(&standin, host_flags)?, None))
        }
    }
}

/// [`open`] of entry `inner` of another elfuse process `pid` (`node` is the whole
/// `Node::Peer`): its files are that process's answers, its directories list what it
/// says, its `mem` addresses its guest's memory.
fn open_peer(
    pid: i32,
    node: &Node,
    inner: &Node,
    (flags, host_flags): (u64, i32),
    standin: &std::ffi::CStr,
) -> Result<Arc<OpenFile>, Errno> {
    let acc = flags & super::abi::O_ACCMODE;
    let text = match inner {
        Node::Dir(..) => {
            if acc != 0 {
                return Err(Errno::EISDIR);
            }
            let fd = host_open(standin, libc::O_RDONLY | libc::O_DIRECTORY)?;
            return Ok(OpenFile::synthetic(Arc::new(ProcDir {
                node: node.clone(),
                fd,
            })));
        }
        Node::File(_, "mem") => {
            let fd = nix::sys::memfd::memfd_create(
                c"elfuse-mem",
                nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
            )?;
            return Ok(OpenFile::synthetic(Arc::new(ProcMem {
                fd,
                pid: Some(pid),
            })));
        }
        Node::File(_, _) | Node::FdInfo(..) if acc != 0 => return Err(Errno::EACCES),
        Node::File(tid, name) => super::procremote::generate(pid, *tid, name),
        Node::FdInfo(_, n) => super::procremote::fdinfo(pid, *n),
        // Opened without following (O_NOFOLLOW): the host's answer for a link (ELOOP).
        Node::Link(..) | Node::Host(_) | Node::Peer(..) => {
            return Ok(OpenFile::host(host_open(standin, host_flags)?, None));
        }
    };
    // The process went away meanwhile: as a reaped process's entry.
    let text = text.map_err(|e| if e == Errno::ESRCH { Errno::ENOENT } else { e })?;
    Ok(OpenFile::host(super::procfs::snapshot_fd(&text)?, None))
}

/// getdents64 on a /proc directory of the guest.
pub fn getdents(ctx: &Ctx, d: &ProcDir, out: &mut Vec<u8>, count: usize) -> Result<(), Errno> {
    let entries = list(ctx, &d.node);
    let pos = nix::unistd::lseek(&d.fd, 0, Whence::SeekCur).unwrap_or(-1);
    let mut i = pos.max(0) as usize;
    while let Some((name, ty)) = entries.get(i) {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > count {
            if out.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let ino = 0x1000_0000u64 + i as u64;
        out.extend_from_slice(&ino.to_ne_bytes());
        out.extend_from_slice(&((i + 1) as i64).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(*ty);
        out.extend_from_slice(name);
        out.resize(out.len() + reclen - 19 - name.len(), 0);
        i += 1;
    }
    let _ = nix::unistd::lseek(&d.fd, i as i64, Whence::SeekSet);
    Ok(())
}

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// The entries of directory `node` (of this process, or asked of another).
pub(super) fn list(ctx: &Ctx, node: &Node) -> Vec<(Vec<u8>, u8)> {
    if let Node::Peer(pid, inner) = node {
        return super::procremote::list(*pid, inner).unwrap_or_default();
    }
    let mut v: Vec<(Vec<u8>, u8)> = vec![(b".".to_vec(), DT_DIR), (b"..".to_vec(), DT_DIR)];
    let fds = || {
        let t = ctx.fds().fork_snapshot();
        t.snapshot()
            .into_iter()
            .map(|(n, _, _)| n)
            .collect::<Vec<_>>()
    };
    match node {
        Node::Dir(tid, Dir::Pid) => {
            v.push((b"fd".to_vec(), DT_DIR));
            v.push((b"fdinfo".to_vec(), DT_DIR));
            if tid.is_none() {
                v.push((b"task".to_vec(), DT_DIR));
            }
            for l in ["exe", "cwd", "root"] {
                v.push((l.as_bytes().to_vec(), DT_LNK));
            }
            for f in FILES {
                v.push((f.as_bytes().to_vec(), DT_REG));
            }
            for h in HOST_ENTRIES {
                if let Ok(m) = std::fs::symlink_metadata(format!("/proc/self/{h}")) {
                    let ty = if m.is_dir() { DT_DIR } else { DT_REG };
                    v.push((h.as_bytes().to_vec(), ty));
                }
            }
        }
        Node::Dir(_, Dir::Fd) => {
            v.extend(
                fds()
                    .into_iter()
                    .map(|n| (n.to_string().into_bytes(), DT_LNK)),
            );
        }
        Node::Dir(_, Dir::FdInfo) => {
            v.extend(
                fds()
                    .into_iter()
                    .map(|n| (n.to_string().into_bytes(), DT_REG)),
            );
        }
        Node::Dir(_, Dir::Task) => {
            let tids = ctx.proc.threads.tids();
            v.extend(tids.iter().map(|t| (t.to_string().into_bytes(), DT_DIR)));
        }
        _ => {}
    }
    v
}

/// The position of a /proc/<pid>/mem description.
fn mem_pos(m: &ProcMem) -> u64 {
    nix::unistd::lseek(&m.fd, 0, Whence::SeekCur).unwrap_or(-1) as u64
}

/// Copies between the guest's memory at `addr` and `buf` a page at a time, as far as
/// the guest's own mappings allow; nothing at all is EIO (as on Linux).
pub(super) fn mem_xfer(ctx: &Ctx, addr: u64, len: usize, write: bool, buf: &mut [u8]) -> SysResult {
    let mut done = 0usize;
    while done < len {
        let va = addr.wrapping_add(done as u64);
        let chunk = ((0x1000 - (va & 0xfff)) as usize).min(len - done);
        let Ok(s) = ctx.user_slice(va, chunk, write) else {
            break;
        };
        if write {
            s.copy_from(&buf[done..done + chunk]);
        } else {
            s.copy_to(&mut buf[done..done + chunk]);
        }
        done += chunk;
    }
    if done == 0 && len > 0 {
        return Err(Errno::EIO);
    }
    Ok(done as u64)
}

/// read/pread on /proc/<pid>/mem (`at`: the position for pread). Another process's
/// that has gone reads and writes nothing (0), as Linux's once the mm is gone.
pub fn mem_read(ctx: &Ctx, m: &ProcMem, buf_va: u64, len: usize, at: Option<u64>) -> SysResult {
    let addr = at.unwrap_or_else(|| mem_pos(m));
    let mut tmp = vec![0u8; len.min(1 << 20)];
    let n = tmp.len();
    let got = match m.pid {
        Some(pid) => match super::procremote::mem(pid, addr, n, None) {
            Ok((bytes, _)) => {
                let k = bytes.len().min(n);
                tmp[..k].copy_from_slice(&bytes[..k]);
                k
            }
            Err(Errno::ESRCH) => 0,
            Err(e) => return Err(e),
        },
        None => mem_xfer(ctx, addr, n, false, &mut tmp)? as usize,
    };
    ctx.write_bytes(buf_va, &tmp[..got])?;
    if at.is_none() {
        advance(m, addr + got as u64);
    }
    Ok(got as u64)
}

/// write/pwrite on /proc/<pid>/mem.
pub fn mem_write(ctx: &Ctx, m: &ProcMem, buf_va: u64, len: usize, at: Option<u64>) -> SysResult {
    let addr = at.unwrap_or_else(|| mem_pos(m));
    let mut tmp = ctx.read_bytes(buf_va, len.min(1 << 20))?;
    let n = tmp.len();
    let put = match m.pid {
        Some(pid) => match super::procremote::mem(pid, addr, n, Some(&tmp)) {
            Ok((_, put)) => put,
            Err(Errno::ESRCH) => 0,
            Err(e) => return Err(e),
        },
        None => mem_xfer(ctx, addr, n, true, &mut tmp)?,
    };
    if at.is_none() {
        advance(m, addr + put);
    }
    Ok(put)
}

fn advance(m: &ProcMem, to: u64) {
    let _ = nix::unistd::lseek(&m.fd, to as i64, Whence::SeekSet);
}
