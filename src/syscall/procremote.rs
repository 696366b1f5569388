//! The requests of the peer channel (`procpeer`): what one elfuse process asks another
//! about its guest, and their encoding (`procserve` answers them, with the same code that
//! renders its own /proc: `procnode`, `procgen`, `procdir`).
//!
//! The asker's side keeps the other process's /proc/<pid> as `Node::Peer(pid, node)`,
//! `node` being the entry's node in the other process's own tree; lookups that depend on
//! that process (does thread T, fd N exist), file contents, directory listings, link
//! texts and targets, memory and fds are requests.

use std::os::fd::{AsRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::procnode::{Dir, Link, LinkTo, Node, FILES};
use super::procpeer::ask;
use crate::errno::Errno;
use crate::fork::wire::{Dec, Enc};

pub(super) const PING: u64 = 0;
pub(super) const HAS_THREAD: u64 = 1;
pub(super) const HAS_FD: u64 = 2;
pub(super) const GENERATE: u64 = 3;
pub(super) const FDINFO: u64 = 4;
pub(super) const LIST: u64 = 5;
pub(super) const LINK_TEXT: u64 = 6;
pub(super) const FOLLOW: u64 = 7;
pub(super) const MEM: u64 = 8;
pub(super) const GETFD: u64 = 9;
pub(super) const MADVISE: u64 = 10;

/// Largest memory transfer of one request.
pub const MEM_CHUNK: usize = 1 << 20;

pub(super) fn bad() -> Errno {
    Errno::EINVAL
}

pub(super) fn opt_tid(e: &mut Enc, t: Option<i32>) {
    e.u64(t.map_or(u64::MAX, |t| t as u32 as u64));
}

pub(super) fn dec_tid(d: &mut Dec) -> Result<Option<i32>, Errno> {
    let v = d.u64().map_err(|_| bad())?;
    Ok((v != u64::MAX).then_some(v as u32 as i32))
}

pub(super) fn enc_node(e: &mut Enc, n: &Node) {
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

pub(super) fn dec_node(d: &mut Dec) -> Result<Node, Errno> {
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
