//! The guest's own `/proc/<pid>` as a tree of nodes, reached by the path resolver
//! (`resolve`) once a path, however spelled, has resolved to `/proc/self`,
//! `/proc/thread-self` or `/proc/<guest pid>`.
//!
//! Every entry is the guest's: generated files (maps, status, stat, statm, cmdline,
//! environ, auxv, comm, fdinfo/N), directories listing the guest's fds and threads, and
//! magic links (`fd/N`, `exe`, `cwd`, `root`) that lead to the guest's own objects. A few
//! host entries that describe the host process as the guest would see it anyway (limits,
//! mountinfo, cgroup, ns/...) pass through; anything else is ENOENT, so nothing of
//! elfuse's own (its fds, memory or threads) is reachable.

use std::ffi::CString;
use std::sync::Arc;

use elfuse_actors::fdtable::OpenFile;

use super::hostdir::HostDir;
use super::Ctx;
use crate::errno::Errno;

/// A directory of the guest's /proc/<pid>; `tid`: under `task/<tid>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dir {
    Pid,
    Fd,
    FdInfo,
    Task,
}

/// A magic link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Fd(i32),
    Exe,
    Cwd,
    Root,
    ThreadSelf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir(Option<i32>, Dir),
    /// A generated file (`name`), or `fdinfo/N`.
    File(Option<i32>, &'static str),
    FdInfo(Option<i32>, i32),
    Link(Option<i32>, Link),
    /// A host entry passed through: its path under /proc/self.
    Host(Vec<u8>),
    /// An entry of another elfuse process's /proc/<pid>: its node in that process's own
    /// tree, answered over the peer channel (`procremote`).
    Peer(i32, Box<Node>),
}

/// Generated files of /proc/<pid> and /proc/<pid>/task/<tid>.
pub const FILES: &[&str] = &[
    "maps",
    "smaps",
    "smaps_rollup",
    "status",
    "stat",
    "statm",
    "cmdline",
    "environ",
    "auxv",
    "comm",
    "mem",
];

/// Host entries that show nothing of elfuse's own and pass through.
pub const HOST_ENTRIES: &[&str] = &[
    "limits",
    "mountinfo",
    "mounts",
    "mountstats",
    "cgroup",
    "oom_score",
    "oom_score_adj",
    "oom_adj",
    "loginuid",
    "sessionid",
    "uid_map",
    "gid_map",
    "setgroups",
    "ns",
    "attr",
    "coredump_filter",
    "cpuset",
    "autogroup",
    "timerslack_ns",
    "personality",
];

/// What a name under /proc is.
pub enum Enter {
    /// The host's entry (cpuinfo, another process...).
    Host,
    /// A symlink to follow (`self` -> `<pid>`).
    Link(Vec<u8>),
    /// The guest's own /proc/<pid> (or an unfollowed `thread-self`), or another elfuse
    /// process's (a `Node::Peer`).
    Own(Node),
    /// The /proc/<pid> of an elfuse process that no longer answers (exiting): gone, as
    /// on Linux once a process is reaped (its host entry would show elfuse).
    Gone,
}

pub fn enter(ctx: &Ctx, name: &[u8], last_unfollowed: bool) -> Enter {
    let pid = ctx.proc.pid.to_string();
    match name {
        // The host's /proc/self link reads `<pid>` too: the guest's pid is the host's.
        b"self" if last_unfollowed => Enter::Host,
        b"self" => Enter::Link(pid.into_bytes()),
        b"thread-self" if last_unfollowed => Enter::Own(Node::Link(None, Link::ThreadSelf)),
        b"thread-self" => Enter::Link(thread_self(ctx)),
        n if n == pid.as_bytes() => Enter::Own(Node::Dir(None, Dir::Pid)),
        n => match parse_num(n) {
            Some(other) => other_pid(other),
            None => Enter::Host,
        },
    }
}

/// /proc/<pid> of another process: another elfuse process's guest, asked over the peer
/// channel; a host process's own entry.
pub fn other_pid(pid: i32) -> Enter {
    if super::procpeer::answers(pid) {
        return Enter::Own(Node::Peer(pid, Box::new(Node::Dir(None, Dir::Pid))));
    }
    if super::sigremote::is_elfuse(pid) || zombie_elfuse(pid) {
        return Enter::Gone;
    }
    Enter::Host
}

/// Whether host process `pid` is a zombie that ran elfuse (its exe link is gone then; its
/// name is elfuse's own): the guest it ran has exited, and its host entry would show
/// elfuse.
fn zombie_elfuse(pid: i32) -> bool {
    let name_state = |p: String| -> Option<(String, char)> {
        let s = std::fs::read_to_string(p).ok()?;
        let (head, rest) = s.rsplit_once(") ")?;
        let name = head.split_once(" (")?.1.to_string();
        Some((name, rest.chars().next()?))
    };
    match (
        name_state(format!("/proc/{pid}/stat")),
        name_state("/proc/self/stat".into()),
    ) {
        (Some((theirs, 'Z')), Some((ours, _))) => theirs == ours,
        _ => false,
    }
}

pub(crate) fn thread_self(ctx: &Ctx) -> Vec<u8> {
    format!("{}/task/{}", ctx.proc.pid, ctx.thread.tid).into_bytes()
}

fn parse_num(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || (name.len() > 1 && name[0] == b'0') {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The entry `name` of directory node `node`.
pub fn child(ctx: &Ctx, node: &Node, name: &[u8]) -> Result<Node, Errno> {
    if let Node::Peer(pid, inner) = node {
        let pid = *pid;
        let c = child_in(inner, name, |fd, n| {
            super::procremote::exists(pid, fd, n).unwrap_or(false)
        })?;
        return Ok(Node::Peer(pid, Box::new(c)));
    }
    child_in(node, name, |fd, n| {
        if fd {
            ctx.file(n as u64).is_ok()
        } else {
            ctx.proc.threads.get(n).is_some()
        }
    })
}

/// [`child`] in a process's own tree; `has(fd, n)`: whether its fd (`fd` true) or
/// thread `n` exists.
fn child_in(node: &Node, name: &[u8], has: impl Fn(bool, i32) -> bool) -> Result<Node, Errno> {
    let name_str = std::str::from_utf8(name).unwrap_or("");
    match node {
        Node::Dir(tid, Dir::Pid) => {
            let tid = *tid;
            Ok(match name {
                b"fd" => Node::Dir(tid, Dir::Fd),
                b"fdinfo" => Node::Dir(tid, Dir::FdInfo),
                b"task" if tid.is_none() => Node::Dir(None, Dir::Task),
                b"exe" => Node::Link(tid, Link::Exe),
                b"cwd" => Node::Link(tid, Link::Cwd),
                b"root" => Node::Link(tid, Link::Root),
                _ => {
                    if let Some(f) = FILES.iter().find(|f| **f == name_str) {
                        Node::File(tid, f)
                    } else if HOST_ENTRIES.contains(&name_str) {
                        Node::Host(name.to_vec())
                    } else {
                        return Err(Errno::ENOENT);
                    }
                }
            })
        }
        Node::Dir(_, Dir::Task) => {
            let tid = parse_num(name).ok_or(Errno::ENOENT)?;
            if !has(false, tid) {
                return Err(Errno::ENOENT);
            }
            Ok(Node::Dir(Some(tid), Dir::Pid))
        }
        Node::Dir(tid, Dir::Fd) | Node::Dir(tid, Dir::FdInfo) => {
            let n = parse_num(name).ok_or(Errno::ENOENT)?;
            if !has(true, n) {
                return Err(Errno::ENOENT);
            }
            Ok(if matches!(node, Node::Dir(_, Dir::Fd)) {
                Node::Link(*tid, Link::Fd(n))
            } else {
                Node::FdInfo(*tid, n)
            })
        }
        Node::Host(rest) => {
            let mut r = rest.clone();
            r.push(b'/');
            r.extend_from_slice(name);
            Ok(Node::Host(r))
        }
        Node::File(..) | Node::FdInfo(..) | Node::Link(..) => Err(Errno::ENOTDIR),
        Node::Peer(..) => Err(Errno::ENOENT),
    }
}

/// The directory above `node`, or `None` above /proc/<pid>.
pub fn parent(node: &Node) -> Option<Node> {
    match node {
        Node::Dir(None, Dir::Pid) => None,
        Node::Dir(Some(_), Dir::Pid) => Some(Node::Dir(None, Dir::Task)),
        Node::Dir(tid, _) => Some(Node::Dir(*tid, Dir::Pid)),
        Node::Host(rest) => match rest.iter().rposition(|&b| b == b'/') {
            Some(i) => Some(Node::Host(rest[..i].to_vec())),
            None => Some(Node::Dir(None, Dir::Pid)),
        },
        Node::File(tid, _) | Node::FdInfo(tid, _) | Node::Link(tid, _) => {
            Some(Node::Dir(*tid, Dir::Pid))
        }
        Node::Peer(pid, inner) => parent(inner).map(|p| Node::Peer(*pid, Box::new(p))),
    }
}

/// Whether `node` is a magic link (of this process or another).
pub fn is_link(node: &Node) -> bool {
    match node {
        Node::Link(..) => true,
        Node::Peer(_, inner) => is_link(inner),
        _ => false,
    }
}

/// Whether `node` is a host entry passed through (its symlinks are the host's).
pub fn is_host(node: &Node) -> bool {
    match node {
        Node::Host(_) => true,
        Node::Peer(_, inner) => is_host(inner),
        _ => false,
    }
}

/// Where link node `node` leads.
pub fn follow(ctx: &Ctx, node: &Node) -> Result<LinkTo, Errno> {
    match node {
        Node::Link(_, l) => follow_link(ctx, l),
        Node::Peer(pid, inner) if is_link(inner) => super::procremote::follow(*pid, inner),
        _ => Err(Errno::EINVAL),
    }
}

/// Where a magic link leads.
pub enum LinkTo {
    /// The guest's open file (held for the host call) and the host path that reopens it.
    File(Arc<OpenFile>, CString),
    /// A guest path to resolve (`/` for root, `.` for cwd).
    Guest(Vec<u8>),
    /// A host path (the program).
    HostPath(CString),
}

pub fn follow_link(ctx: &Ctx, link: &Link) -> Result<LinkTo, Errno> {
    match link {
        Link::Fd(n) => {
            let f = ctx.file(*n as u64).map_err(|_| Errno::ENOENT)?;
            if let Some(d) = f.synthetic_as::<super::procdir::ProcDir>() {
                return Ok(LinkTo::Guest(guest_path(ctx, &d.node)));
            }
            let host = fd_path(&f)?;
            Ok(LinkTo::File(f, host))
        }
        Link::Exe => {
            let (_, host) = ctx.proc.exe();
            let c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(host.as_os_str()))
                .map_err(|_| Errno::ENOENT)?;
            Ok(LinkTo::HostPath(c))
        }
        Link::Cwd => Ok(LinkTo::Guest(b".".to_vec())),
        Link::Root => Ok(LinkTo::Guest(b"/".to_vec())),
        Link::ThreadSelf => Ok(LinkTo::Guest(
            [b"/proc/".as_slice(), &thread_self(ctx)].concat(),
        )),
    }
}

/// The host path that reopens the guest's description `f`: the host's magic link of its
/// host fd (never an fd number of elfuse's own).
fn fd_path(f: &OpenFile) -> Result<CString, Errno> {
    CString::new(format!("/proc/self/fd/{}", f.raw())).map_err(|_| Errno::EINVAL)
}

/// The host location standing in for `node` in calls that only look at it (stat,
/// access, chmod...): the host's /proc/self entry of the same kind, or the guest's file
/// behind an `fd/N` link.
pub(crate) fn stand_in(ctx: &Ctx, node: &Node) -> Result<(HostDir, CString), Errno> {
    let plain = |rest: &str| -> Result<(HostDir, CString), Errno> {
        let p = CString::new(format!("/proc/self{rest}")).map_err(|_| Errno::EINVAL)?;
        Ok((HostDir::cwd(), p))
    };
    match node {
        Node::Dir(_, Dir::Pid) => plain(""),
        Node::Dir(_, Dir::Fd) => plain("/fd"),
        Node::Dir(_, Dir::FdInfo) => plain("/fdinfo"),
        Node::Dir(_, Dir::Task) => plain("/task"),
        Node::File(_, name) => plain(&format!("/{name}")),
        Node::FdInfo(_, n) | Node::Link(_, Link::Fd(n)) => {
            let f = ctx.file(*n as u64).map_err(|_| Errno::ENOENT)?;
            let what = if matches!(node, Node::FdInfo(..)) {
                "fdinfo"
            } else {
                "fd"
            };
            let p = CString::new(format!("/proc/self/{what}/{}", f.raw()))
                .map_err(|_| Errno::EINVAL)?;
            Ok((HostDir::held_cwd(f), p))
        }
        Node::Link(_, Link::Exe) => plain("/exe"),
        Node::Link(_, Link::Cwd) => plain("/cwd"),
        Node::Link(_, Link::Root) => plain("/root"),
        Node::Link(_, Link::ThreadSelf) => Ok((HostDir::cwd(), c"/proc/thread-self".into())),
        Node::Host(rest) => plain(&format!("/{}", String::from_utf8_lossy(rest))),
        Node::Peer(pid, inner) => peer_stand_in(*pid, inner),
    }
}

/// [`stand_in`] for another elfuse process's `node`: the host's entry of that process of
/// the same kind, or the guest's file behind an `fd/N` link (a host fd of it, asked for).
fn peer_stand_in(pid: i32, node: &Node) -> Result<(HostDir, CString), Errno> {
    if let Node::FdInfo(_, n) | Node::Link(_, Link::Fd(n)) = node {
        let f = OpenFile::host(super::procremote::get_fd(pid, *n)?, None);
        let what = if matches!(node, Node::FdInfo(..)) {
            "fdinfo"
        } else {
            "fd"
        };
        let p =
            CString::new(format!("/proc/self/{what}/{}", f.raw())).map_err(|_| Errno::EINVAL)?;
        return Ok((HostDir::held_cwd(f), p));
    }
    let (_, host) = node_path_of(pid, node);
    // A thread's entries stand in by the process's (the guest's tids are not the host's).
    let mut comps: Vec<&[u8]> = host.split(|&b| b == b'/').collect();
    if comps.len() >= 5 && comps[3] == b"task" {
        comps.drain(3..5);
    }
    let p = CString::new(comps.join(&b'/')).map_err(|_| Errno::EINVAL)?;
    Ok((HostDir::cwd(), p))
}

/// The guest's absolute path of `node`.
pub fn guest_path(ctx: &Ctx, node: &Node) -> Vec<u8> {
    let (comps, _) = node_path(ctx, node);
    let mut p = Vec::new();
    for c in comps {
        p.push(b'/');
        p.extend_from_slice(&c);
    }
    p
}

/// The guest's components of `node` and the host path of its /proc stand-in.
pub fn node_path(ctx: &Ctx, node: &Node) -> (Vec<Vec<u8>>, Vec<u8>) {
    node_path_of(ctx.proc.pid, node)
}

/// [`node_path`] of `node` in process `pid`'s tree.
fn node_path_of(pid: i32, node: &Node) -> (Vec<Vec<u8>>, Vec<u8>) {
    if let Node::Peer(p, inner) = node {
        return node_path_of(*p, inner);
    }
    let mut comps = vec![b"proc".to_vec(), pid.to_string().into_bytes()];
    let tid = match node {
        Node::Dir(t, _) | Node::File(t, _) | Node::FdInfo(t, _) | Node::Link(t, _) => *t,
        Node::Host(_) | Node::Peer(..) => None,
    };
    if let Some(t) = tid {
        comps.push(b"task".to_vec());
        comps.push(t.to_string().into_bytes());
    }
    let leaf: Vec<Vec<u8>> = match node {
        Node::Dir(_, Dir::Pid) => vec![],
        Node::Dir(_, Dir::Fd) => vec![b"fd".to_vec()],
        Node::Dir(_, Dir::FdInfo) => vec![b"fdinfo".to_vec()],
        Node::Dir(_, Dir::Task) => vec![b"task".to_vec()],
        Node::File(_, n) => vec![n.as_bytes().to_vec()],
        Node::FdInfo(_, n) => vec![b"fdinfo".to_vec(), n.to_string().into_bytes()],
        Node::Link(_, l) => match l {
            Link::Fd(n) => vec![b"fd".to_vec(), n.to_string().into_bytes()],
            Link::Exe => vec![b"exe".to_vec()],
            Link::Cwd => vec![b"cwd".to_vec()],
            Link::Root => vec![b"root".to_vec()],
            Link::ThreadSelf => vec![],
        },
        Node::Host(rest) => rest.split(|&b| b == b'/').map(|c| c.to_vec()).collect(),
        Node::Peer(..) => vec![],
    };
    comps.extend(leaf);
    let mut host = b"/proc".to_vec();
    for c in &comps[1..] {
        host.push(b'/');
        host.extend_from_slice(c);
    }
    (comps, host)
}

/// A host path under /proc (from a host fd or cwd inside procfs) as the guest names it:
/// elfuse's own `task/<host tid>` is dropped (the guest's tids are not the host's).
pub fn host_to_guest(mut comps: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if comps.len() >= 4 && comps[2] == b"task" {
        comps.drain(2..4);
    }
    comps
}

/// The /proc node behind guest dirfd `dirfd`, if it is a directory of the guest's /proc
/// opened earlier.
pub fn dir_node(ctx: &Ctx, dirfd: u64) -> Result<Option<Node>, Errno> {
    if dirfd as i32 == super::abi::AT_FDCWD as i32 {
        return Ok(None);
    }
    let f = ctx.file(dirfd as i32 as u64)?;
    Ok(f.synthetic_as::<super::procdir::ProcDir>()
        .map(|d| d.node.clone()))
}
