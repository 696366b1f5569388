//! Terminal ioctls: termios, window size, job control and the pty master/slave calls.
//!
//! A guest terminal is a host one: /dev/ptmx and /dev/pts are the host's whatever the
//! sysroot holds (`resolve`), a guest process is a host process with the same pid, and
//! its process group and session are the host's. So the host kernel keeps the state a
//! terminal has (controlling terminal, foreground group, window size, line discipline)
//! and these calls pass through, with the guest's pointers checked and the guest's fd
//! numbers translated. The asm-generic ioctl numbers and the kernel's `termios`,
//! `termios2`, `termio` and `winsize` layouts are the same on AArch64 and x86_64.
//!
//! Job control a terminal drives by signals is the host kernel's, sent to host
//! processes: SIGWINCH on a new size, SIGHUP on hang-up, SIGINT/SIGQUIT/SIGTSTP from the
//! line discipline reach each guest through its host-signal watcher (`hostsig`). The
//! driver sends no SIGTTIN/SIGTTOU (every host thread blocks them): a background read of
//! the controlling terminal is EIO, a background write or tcsetpgrp goes through, as for
//! a guest that ignores them; sent by another process they are forwarded.

use elfuse_actors::fdtable::OpenFile;
use std::os::fd::{FromRawFd, OwnedFd};

use super::abi::open_flags_to_host;
use super::{host_ret, Ctx, SysResult};

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCGETA: u64 = 0x5405;
const TCSETA: u64 = 0x5406;
const TCSETAW: u64 = 0x5407;
const TCSETAF: u64 = 0x5408;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCEXCL: u64 = 0x540c;
const TIOCNXCL: u64 = 0x540d;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCSTI: u64 = 0x5412;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCMGET: u64 = 0x5415;
const TIOCMBIS: u64 = 0x5416;
const TIOCMBIC: u64 = 0x5417;
const TIOCMSET: u64 = 0x5418;
const TIOCGSOFTCAR: u64 = 0x5419;
const TIOCSSOFTCAR: u64 = 0x541a;
const TIOCPKT: u64 = 0x5420;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCSIG: u64 = 0x4004_5436;
const TIOCVHANGUP: u64 = 0x5437;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGEXCL: u64 = 0x8004_5440;
const TIOCGPTPEER: u64 = 0x5441;
const TIOCGLCKTRMIOS: u64 = 0x5456;
const TIOCSLCKTRMIOS: u64 = 0x5457;

const TERMIOS: usize = 36;
const TERMIOS2: usize = 44;
const TERMIO: usize = 18;

/// How an ioctl's argument travels.
enum Arg {
    /// None, or an integer by value.
    Value,
    /// A guest buffer of this size the host reads (false) or writes (true).
    Buf(usize, bool),
}

/// The argument of terminal ioctl `req`, None if it is not one.
fn arg_of(req: u64) -> Option<Arg> {
    use Arg::*;
    Some(match req {
        TCGETS | TIOCGLCKTRMIOS => Buf(TERMIOS, true),
        TCSETS | TCSETSW | TCSETSF | TIOCSLCKTRMIOS => Buf(TERMIOS, false),
        TCGETS2 => Buf(TERMIOS2, true),
        TCSETS2 | TCSETSW2 | TCSETSF2 => Buf(TERMIOS2, false),
        TCGETA => Buf(TERMIO, true),
        TCSETA | TCSETAW | TCSETAF => Buf(TERMIO, false),
        TIOCGWINSZ => Buf(8, true),
        TIOCSWINSZ => Buf(8, false),
        TIOCGPGRP | TIOCGSID | TIOCOUTQ | TIOCMGET | TIOCGSOFTCAR | TIOCGETD | TIOCGPTN
        | TIOCGPKT | TIOCGPTLCK | TIOCGEXCL => Buf(4, true),
        TIOCSPGRP | TIOCMBIS | TIOCMBIC | TIOCMSET | TIOCSSOFTCAR | TIOCSETD | TIOCSPTLCK
        | TIOCPKT => Buf(4, false),
        TIOCSTI => Buf(1, false),
        TCSBRK | TCSBRKP | TCXONC | TCFLSH | TIOCEXCL | TIOCNXCL | TIOCSCTTY | TIOCNOTTY
        | TIOCSIG | TIOCVHANGUP => Value,
        _ => return None,
    })
}

/// Terminal ioctl `req` on `f`, or None when `req` is not a terminal ioctl.
pub fn ioctl(ctx: &mut Ctx, f: &OpenFile, req: u64, arg: u64) -> Option<SysResult> {
    if req == TIOCGPTPEER {
        return Some(open_peer(ctx, f, arg));
    }
    let r = match arg_of(req)? {
        Arg::Value => {
            // SAFETY: ioctl with an integer argument; the host fd is held by `f`.
            host_ret(unsafe { libc::ioctl(f.raw(), req as _, arg as libc::c_ulong) } as i64)
        }
        Arg::Buf(size, out) => ctx.user_slice(arg, size, out).and_then(|buf| {
            // SAFETY: `buf` is `size` bytes of checked guest memory, the size the host
            // kernel reads or writes for `req`.
            host_ret(unsafe { libc::ioctl(f.raw(), req as _, buf.as_mut_ptr()) } as i64)
        }),
    };
    Some(r)
}

/// TIOCGPTPEER: opens the slave of master `f` with open flags `flags` (O_RDWR,
/// O_NOCTTY, O_NONBLOCK, O_CLOEXEC...) as a new guest fd.
fn open_peer(ctx: &mut Ctx, f: &OpenFile, flags: u64) -> SysResult {
    const GUEST_O_CLOEXEC: u64 = super::abi::GUEST_O_CLOEXEC;
    let host_flags = open_flags_to_host(flags & !GUEST_O_CLOEXEC) | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let r = host_ret(unsafe { libc::ioctl(f.raw(), TIOCGPTPEER as _, host_flags) } as i64)?;
    // SAFETY: a fresh host fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
    let path = pts_path(f);
    ctx.install(
        OpenFile::host(fd, path.as_deref()),
        flags & GUEST_O_CLOEXEC != 0,
    )
}

/// `/dev/pts/N` for master `f`, if the host names its slave.
fn pts_path(f: &OpenFile) -> Option<Vec<u8>> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    let r = unsafe { libc::ioctl(f.raw(), TIOCGPTN as _, &mut n) };
    (r == 0).then(|| format!("/dev/pts/{n}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_ioctl_encoding() {
        // _IOC encodes the argument size in bits 16..30 for the numbered forms.
        for req in [TCGETS2, TCSETS2, TIOCGPTN, TIOCSPTLCK, TIOCGPKT, TIOCSIG] {
            let size = ((req >> 16) & 0x3fff) as usize;
            match arg_of(req) {
                Some(Arg::Buf(n, _)) => assert_eq!(n, size, "{req:#x}"),
                Some(Arg::Value) => assert_eq!(size, 4, "{req:#x}: an int by value"),
                None => panic!("{req:#x} unknown"),
            }
        }
        assert!(arg_of(0x1234).is_none());
    }
}
