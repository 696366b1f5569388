//! Socket ioctls: the interface queries programs make (`struct ifreq`, 40 bytes on both
//! AArch64 and x86_64, no pointers inside), SIOCGIFCONF (whose `struct ifconf` points at
//! a guest buffer: the host fills a copy), SIOCATMARK and SIOCOUTQ. Everything else is
//! ENOTTY, as before.

use super::Ctx;
use crate::errno::Errno;
use crate::syscall::{host_ret, SysResult};
use elfuse_actors::fdtable::OpenFile;

const SIOCATMARK: u64 = 0x8905;
const SIOCGIFNAME: u64 = 0x8910;
const SIOCGIFCONF: u64 = 0x8912;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCGIFADDR: u64 = 0x8915;
const SIOCGIFDSTADDR: u64 = 0x8917;
const SIOCGIFBRDADDR: u64 = 0x8919;
const SIOCGIFNETMASK: u64 = 0x891b;
const SIOCGIFMETRIC: u64 = 0x891d;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCGIFHWADDR: u64 = 0x8927;
const SIOCGIFINDEX: u64 = 0x8933;
const SIOCGIFTXQLEN: u64 = 0x8942;
const SIOCOUTQ: u64 = 0x5411;
const SIOCOUTQNSD: u64 = 0x894b;
/// sizeof(struct ifreq).
const IFREQ: usize = 40;
/// The most SIOCGIFCONF fills (a buffer for 4096 interfaces).
const IFCONF_MAX: usize = 4096 * IFREQ;

/// A socket ioctl `req` on `f` (ENOTTY for one this file does not know).
pub fn ioctl(ctx: &Ctx, f: &OpenFile, req: u64, arg: u64) -> SysResult {
    match req {
        SIOCGIFNAME | SIOCGIFFLAGS | SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR
        | SIOCGIFNETMASK | SIOCGIFMETRIC | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFINDEX
        | SIOCGIFTXQLEN => {
            let mut ifr: [u64; IFREQ / 8] = ctx.read_val(arg)?;
            // SAFETY: a 40-byte ifreq the host reads and fills.
            host_ret(unsafe { libc::ioctl(f.raw(), req as _, ifr.as_mut_ptr()) } as i64)?;
            ctx.write_val(arg, &ifr)?;
            Ok(0)
        }
        SIOCATMARK | SIOCOUTQ | SIOCOUTQNSD => {
            let mut v = 0i32;
            // SAFETY: an int the host fills.
            host_ret(unsafe { libc::ioctl(f.raw(), req as _, &mut v) } as i64)?;
            ctx.write_val(arg, &v)?;
            Ok(0)
        }
        SIOCGIFCONF => ifconf(ctx, f, arg),
        _ => Err(Errno::ENOTTY),
    }
}

/// SIOCGIFCONF: `struct ifconf { int ifc_len; char *ifc_buf; }`; a NULL buffer asks
/// for the length needed.
fn ifconf(ctx: &Ctx, f: &OpenFile, arg: u64) -> SysResult {
    let [len, buf]: [u64; 2] = ctx.read_val(arg)?;
    let len = (len as i32).max(0) as usize;
    let mut host = vec![0u8; if buf == 0 { 0 } else { len.min(IFCONF_MAX) }];
    if buf != 0 {
        ctx.user_slice(buf, len, true)?;
    }
    #[repr(C)]
    struct Ifconf {
        len: i32,
        buf: *mut u8,
    }
    let mut ic = Ifconf {
        len: host.len() as i32,
        buf: if buf == 0 {
            std::ptr::null_mut()
        } else {
            host.as_mut_ptr()
        },
    };
    // SAFETY: `ic` points at `host`, `ic.len` bytes, or is NULL.
    host_ret(unsafe { libc::ioctl(f.raw(), SIOCGIFCONF as _, &mut ic) } as i64)?;
    let used = (ic.len.max(0) as usize).min(host.len());
    if buf != 0 && used > 0 {
        ctx.write_bytes(buf, &host[..used])?;
    }
    ctx.write_val(arg, &(ic.len as u32))?;
    Ok(0)
}
