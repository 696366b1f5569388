//! setsockopt and getsockopt.
//!
//! Option values have the same layout on AArch64 and x86_64 Linux (int, linger, timeval
//! for SO_RCVTIMEO/SO_SNDTIMEO, ucred for SO_PEERCRED with host pids, which are the
//! guest's, tcp_info, ip_mreqn, ...), so a value is copied between guest memory and a
//! host buffer and the host answers, including its error for an option it does not know.
//! Values that embed a pointer or an fd are the exceptions, since the host would read them
//! in elfuse's own address space or fd table: classic BPF programs (`struct sock_fprog`:
//! SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF, PACKET_FANOUT_DATA) are copied in and
//! pointed at the copy, eBPF program fds (SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_EBPF) are
//! translated like any guest fd, and TCP_ZEROCOPY_RECEIVE (an address in the guest's
//! memory map) is refused with EOPNOTSUPP. SO_PEERPIDFD's pidfd, which the host makes in
//! elfuse's fd table, is installed in the guest's.

use std::os::fd::FromRawFd;

use super::Ctx;
use crate::errno::Errno;
use crate::syscall::{host_ret, SysResult};

const SOL_SOCKET: i32 = 1;
const SOL_PACKET: i32 = 263;
const IPPROTO_TCP: i32 = 6;
const SO_ATTACH_FILTER: i32 = 26;
const SO_ATTACH_BPF: i32 = 50;
const SO_ATTACH_REUSEPORT_CBPF: i32 = 51;
const SO_ATTACH_REUSEPORT_EBPF: i32 = 52;
const SO_PEERPIDFD: i32 = 77;
const PACKET_FANOUT_DATA: i32 = 22;
const TCP_ZEROCOPY_RECEIVE: i32 = 35;
/// sizeof(struct sock_fprog), sizeof(struct sock_filter); BPF_MAXINSNS.
const FPROG: usize = 16;
const FILTER_INSN: usize = 8;
const BPF_MAXINSNS: usize = 4096;
/// The most of a value getsockopt copies (no option returns more).
const GETSOCKOPT_MAX: usize = 1 << 16;

/// What a value embeds, for the few options where it is not plain data.
enum Value {
    Plain,
    /// A `struct sock_fprog` (when the value has its size).
    Fprog,
    /// An fd (when the value is an int).
    Fd,
}

fn value_kind(level: i32, name: i32, len: usize) -> Value {
    match (level, name) {
        (SOL_SOCKET, SO_ATTACH_FILTER | SO_ATTACH_REUSEPORT_CBPF) => Value::Fprog,
        (SOL_SOCKET, SO_ATTACH_BPF | SO_ATTACH_REUSEPORT_EBPF) => Value::Fd,
        (SOL_PACKET, PACKET_FANOUT_DATA) if len >= FPROG => Value::Fprog,
        (SOL_PACKET, PACKET_FANOUT_DATA) => Value::Fd,
        _ => Value::Plain,
    }
}

pub fn setsockopt(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let (level, name, va, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as i32);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let mut val = if len == 0 {
        Vec::new()
    } else {
        ctx.read_bytes(va, len as usize)?
    };
    // A filter copied in (kept alive for the call) or a guest fd resolved.
    let mut filter: Vec<u8> = Vec::new();
    let mut _held = None;
    match value_kind(level, name, val.len()) {
        Value::Plain => {}
        Value::Fprog if val.len() >= FPROG => {
            let n = u16::from_ne_bytes([val[0], val[1]]) as usize;
            let ptr = u64::from_ne_bytes(val[8..16].try_into().unwrap());
            if n > BPF_MAXINSNS {
                return Err(Errno::EINVAL);
            }
            filter = ctx.read_bytes(ptr, n * FILTER_INSN)?;
            let host = filter.as_ptr() as u64;
            val[8..16].copy_from_slice(&host.to_ne_bytes());
        }
        Value::Fprog => {}
        Value::Fd if val.len() >= 4 => {
            let guest = i32::from_ne_bytes(val[..4].try_into().unwrap());
            let file = ctx.file(guest as u32 as u64)?;
            val[..4].copy_from_slice(&file.raw().to_ne_bytes());
            _held = Some(file);
        }
        Value::Fd => {}
    }
    let p = if val.is_empty() {
        std::ptr::null()
    } else {
        val.as_ptr()
    };
    // SAFETY: `p` is NULL or `val.len()` bytes, pointing (for a filter) at `filter`,
    // which outlives the call.
    let r = unsafe { libc::setsockopt(f.raw(), level, name, p.cast(), val.len() as u32) };
    drop(filter);
    host_ret(r as i64)
}

pub fn getsockopt(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let (level, name, va, len_va) = (a[1] as i32, a[2] as i32, a[3], a[4]);
    if level == IPPROTO_TCP && name == TCP_ZEROCOPY_RECEIVE {
        return Err(Errno::EOPNOTSUPP);
    }
    let room: i32 = ctx.read_val(len_va)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; (room as usize).min(GETSOCKOPT_MAX)];
    let mut len = buf.len() as libc::socklen_t;
    let p = if buf.is_empty() {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr()
    };
    // SAFETY: `p` is NULL or `len` writable bytes.
    let r = unsafe { libc::getsockopt(f.raw(), level, name, p.cast(), &mut len) };
    host_ret(r as i64)?;
    if level == SOL_SOCKET && name == SO_PEERPIDFD && len as usize >= 4 && buf.len() >= 4 {
        // A pidfd the host made in elfuse's table: it becomes the guest's (always
        // CLOEXEC, as every pidfd).
        let raw = i32::from_ne_bytes(buf[..4].try_into().unwrap());
        // SAFETY: the host just created this fd for us; nothing else owns it.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let g = ctx.install(elfuse_actors::fdtable::OpenFile::host(fd, None), true)?;
        buf[..4].copy_from_slice(&(g as i32).to_ne_bytes());
    }
    let n = (len as usize).min(buf.len());
    if n > 0 {
        ctx.write_bytes(va, &buf[..n])?;
    }
    ctx.write_val(len_va, &len)?;
    Ok(0)
}
