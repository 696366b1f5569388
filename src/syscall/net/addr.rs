//! Socket addresses between the guest and the host.
//!
//! AArch64 and x86_64 Linux lay out every `sockaddr_*` the same way, so an address is
//! copied, not converted; only AF_UNIX path names change: they are guest paths, resolved
//! by the one path resolver like every other, relative ones included (`--sysroot`, the
//! guest's /proc: see [`crate::syscall::at::socket_path`]; bind creates, connect and
//! sendto look up), and the names the host reports back (getsockname, accept, recvfrom)
//! are shown as the guest names them. A resolved path relative to a directory the
//! resolver holds open, or longer than `sun_path`, is reached through that directory's
//! `/proc/self/fd/N/` (elfuse's own fd, in the host's /proc), which the host kernel
//! accepts for bind and connect. The abstract namespace (a leading NUL) and autobind (no
//! path) pass as they are.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::Errno;
use crate::syscall::hostdir::HostDir;
use crate::syscall::Ctx;

pub const AF_UNIX: u16 = 1;
/// sizeof(struct sockaddr_storage).
pub const SOCKADDR_MAX: usize = 128;
/// offsetof(struct sockaddr_un, sun_path), and its size.
const SUN_PATH_OFF: usize = 2;
const SUN_PATH_LEN: usize = 108;

/// A host socket address built from a guest one, with what must stay alive while the
/// host call uses it (the directory fd of a long AF_UNIX path).
pub struct HostAddr {
    pub buf: [u8; SOCKADDR_MAX],
    pub len: u32,
    _dir: Option<OwnedFd>,
    _held: Option<HostDir>,
}

impl HostAddr {
    pub fn ptr(&self) -> *const libc::sockaddr {
        self.buf.as_ptr().cast()
    }
}

/// Reads the guest's `addr`/`addrlen` (bind, connect, sendto, sendmsg's msg_name) and
/// makes the host address. Linux's checks: a length above sockaddr_storage (or
/// negative) is EINVAL; an unreadable buffer is EFAULT. A NULL address is `None`.
/// `create`: an AF_UNIX path names a socket file to be made (bind).
pub fn from_guest(ctx: &Ctx, va: u64, len: u64, create: bool) -> Result<Option<HostAddr>, Errno> {
    let len = len as i32;
    if len < 0 || len as usize > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    if va == 0 || len == 0 {
        return Ok(None);
    }
    let raw = ctx.read_bytes(va, len as usize)?;
    let mut out = HostAddr {
        buf: [0; SOCKADDR_MAX],
        len: len as u32,
        _dir: None,
        _held: None,
    };
    out.buf[..raw.len()].copy_from_slice(&raw);
    if raw.len() > SUN_PATH_OFF
        && u16::from_ne_bytes([raw[0], raw[1]]) == AF_UNIX
        && raw[SUN_PATH_OFF] != 0
    {
        unix_path(ctx, &raw[SUN_PATH_OFF..], create, &mut out)?;
    }
    Ok(Some(out))
}

/// Rewrites an AF_UNIX path name (not abstract, not empty) to the host's.
fn unix_path(ctx: &Ctx, sun_path: &[u8], create: bool, out: &mut HostAddr) -> Result<(), Errno> {
    let end = sun_path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(sun_path.len());
    let guest = &sun_path[..end];
    let (dir, path) = crate::syscall::at::socket_path(ctx, guest, create)?;
    let host = path.as_bytes().to_vec();
    out._held = Some(dir);
    if host == guest {
        return Ok(());
    }
    let (name, dir) = if host.len() < SUN_PATH_LEN {
        (host, None)
    } else {
        long_path(&host)?
    };
    out.buf[SUN_PATH_OFF..].fill(0);
    out.buf[SUN_PATH_OFF..SUN_PATH_OFF + name.len()].copy_from_slice(&name);
    // The length Linux computes for a path name: up to and including its NUL.
    out.len = (SUN_PATH_OFF + name.len() + 1) as u32;
    out._dir = dir;
    Ok(())
}

/// A host path too long for sun_path: its directory, opened O_PATH, named through
/// /proc/self/fd (ENAMETOOLONG if even that does not fit, as Linux says for a long path).
fn long_path(host: &[u8]) -> Result<(Vec<u8>, Option<OwnedFd>), Errno> {
    let p = Path::new(std::ffi::OsStr::from_bytes(host));
    let (Some(dir), Some(base)) = (p.parent(), p.file_name()) else {
        return Err(Errno::ENAMETOOLONG);
    };
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a NUL-terminated path; the fd returned is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: just opened, owned by nobody else.
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut name = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    name.extend_from_slice(base.as_bytes());
    if name.len() >= SUN_PATH_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok((name, Some(dir)))
}

/// Makes a host address (as a host call filled it: `len` bytes of `buf`) the guest's: an
/// AF_UNIX path inside `--sysroot` loses the prefix.
pub fn to_guest(ctx: &Ctx, buf: &[u8]) -> Vec<u8> {
    if buf.len() > SUN_PATH_OFF
        && u16::from_ne_bytes([buf[0], buf[1]]) == AF_UNIX
        && buf[SUN_PATH_OFF] == b'/'
    {
        let path = &buf[SUN_PATH_OFF..];
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let host = Path::new(std::ffi::OsStr::from_bytes(&path[..end]));
        let guest = crate::syscall::hostdir::guest_view_in(ctx.fs().sysroot.as_deref(), host);
        if guest != path[..end] {
            let mut v = buf[..SUN_PATH_OFF].to_vec();
            v.extend_from_slice(&guest);
            v.push(0);
            return v;
        }
    }
    buf.to_vec()
}

/// Writes an address back the way Linux's `move_addr_to_user` does: the guest's
/// `*addrlen` says how much room there is (negative: EINVAL); at most that much of the
/// address is copied, and `*addrlen` gets the address's full length. Callers whose
/// address argument is optional (accept, recvfrom) skip this for a NULL address.
pub fn write_guest(ctx: &Ctx, addr_va: u64, len_va: u64, host: &[u8]) -> Result<(), Errno> {
    let room: i32 = ctx.read_val(len_va)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let addr = to_guest(ctx, host);
    let n = addr.len().min(room as usize);
    if n > 0 {
        ctx.write_bytes(addr_va, &addr[..n])?;
    }
    ctx.write_val(len_va, &(addr.len() as u32))
}
