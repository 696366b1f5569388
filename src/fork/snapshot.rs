//! The spawn path's RAM snapshot (and a native fork's, when RAM is a memfd): a private
//! copy of guest RAM at the moment of fork, in a new memfd.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::guest::ram::GuestRam;

/// Copies the populated extents of memfd-backed guest RAM into a new memfd of the same
/// size. Private RAM (native forks only) has no memfd to copy: Unsupported.
pub fn snapshot_ram(ram: &GuestRam) -> std::io::Result<OwnedFd> {
    let Some(src) = ram.raw_fd() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "private guest RAM cannot be snapshotted",
        ));
    };
    let dst = GuestRam::create_fd(ram.size())?;
    let d = dst.as_raw_fd();
    let mut off: i64 = 0;
    let mut copied = 0u64;
    let size = ram.size() as i64;
    let mut use_cfr = true;
    while off < size {
        // SAFETY: no pointers: `src` is the RAM memfd, open for the call.
        let data = unsafe { libc::lseek(src, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data past `off`
            }
            return Err(e);
        }
        // SAFETY: no pointers: `src` is the RAM memfd, open for the call.
        let hole = unsafe { libc::lseek(src, data, libc::SEEK_HOLE) };
        let hole = if hole < 0 { size } else { hole };
        let mut pos = data;
        while pos < hole {
            let len = (hole - pos) as usize;
            let n = if use_cfr {
                let (mut i, mut o) = (pos, pos);
                // SAFETY: `i` and `o` are local offsets the call updates; `src` and `d` are
                // open memfds (RAM and its snapshot).
                let n = unsafe { libc::copy_file_range(src, &mut i, d, &mut o, len, 0) };
                if n <= 0 {
                    use_cfr = false;
                    continue;
                }
                n
            } else {
                let p = ram.ptr(pos as u64, len);
                // SAFETY: `p` is `len` bytes of guest RAM inside the mapping (`ram.ptr`
                // checked the range), read by pwrite through a raw pointer (no reference);
                // `d` is the snapshot memfd.
                let n = unsafe { libc::pwrite(d, p.cast(), len, pos) };
                if n <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                n as isize
            };
            pos += n as i64;
        }
        copied += (hole - data) as u64;
        off = hole;
    }
    tracing::trace!(copied, "fork: RAM snapshot");
    Ok(dst)
}
