//! gdb's file access on the target (`vFile:`), in the guest's view: `/proc/PID/maps` and
//! `/proc/PID/task/TID/maps` are the guest's mappings (gdb looks for the vDSO there), and
//! other paths open read-only as the guest would see them (`--sysroot` first), so that
//! gdb's default `target:` sysroot finds the guest's shared libraries.

use std::fs::File;
use std::os::unix::fs::FileExt;

use gdbstub::target::ext::host_io::{
    FsKind, HostIo, HostIoClose, HostIoCloseOps, HostIoErrno, HostIoError, HostIoOpen,
    HostIoOpenFlags, HostIoOpenMode, HostIoOpenOps, HostIoPread, HostIoPreadOps, HostIoResult,
    HostIoSetfs, HostIoSetfsOps,
};

use super::stub::GuestTarget;

/// An open `vFile` descriptor.
pub(super) enum Open {
    File(File),
    Bytes(Vec<u8>),
}

fn errno<E>(e: HostIoErrno) -> HostIoError<E> {
    HostIoError::Errno(e)
}

/// True for `/proc/N/maps` and `/proc/N/task/M/maps` (any N, M: gdb's pid is the stub's).
fn is_maps(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let num = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    match parts.as_slice() {
        [n, m] => num(n) && *m == b"maps",
        [n, t, k, m] => num(n) && *t == b"task" && num(k) && *m == b"maps",
        _ => false,
    }
}

impl HostIo for GuestTarget {
    fn support_open(&mut self) -> Option<HostIoOpenOps<'_, Self>> {
        Some(self)
    }
    fn support_close(&mut self) -> Option<HostIoCloseOps<'_, Self>> {
        Some(self)
    }
    fn support_pread(&mut self) -> Option<HostIoPreadOps<'_, Self>> {
        Some(self)
    }
    fn support_setfs(&mut self) -> Option<HostIoSetfsOps<'_, Self>> {
        Some(self)
    }
}

impl HostIoOpen for GuestTarget {
    fn open(
        &mut self,
        filename: &[u8],
        flags: HostIoOpenFlags,
        _mode: HostIoOpenMode,
    ) -> HostIoResult<u32, Self> {
        if flags != HostIoOpenFlags::O_RDONLY {
            return Err(errno(HostIoErrno::EACCES));
        }
        let open = if is_maps(filename) {
            let sysroot = self.proc.fs().sysroot.clone();
            Open::Bytes(crate::syscall::procfs::maps(
                &self.proc.mm(),
                sysroot.as_deref(),
            ))
        } else {
            let sysroot = self.proc.fs().sysroot.clone();
            let path = crate::syscall::resolve::host_path(sysroot.as_deref(), filename);
            Open::File(File::open(path)?)
        };
        let slot = match self.files.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.files.push(None);
                self.files.len() - 1
            }
        };
        self.files[slot] = Some(open);
        Ok(slot as u32)
    }
}

impl HostIoClose for GuestTarget {
    fn close(&mut self, fd: u32) -> HostIoResult<(), Self> {
        match self.files.get_mut(fd as usize).and_then(Option::take) {
            Some(_) => Ok(()),
            None => Err(errno(HostIoErrno::EBADF)),
        }
    }
}

impl HostIoPread for GuestTarget {
    fn pread(
        &mut self,
        fd: u32,
        count: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> HostIoResult<usize, Self> {
        let n = count.min(buf.len());
        match self.files.get(fd as usize).and_then(Option::as_ref) {
            Some(Open::File(f)) => Ok(f.read_at(&mut buf[..n], offset)?),
            Some(Open::Bytes(b)) => {
                let start = (offset as usize).min(b.len());
                let end = start.saturating_add(n).min(b.len());
                buf[..end - start].copy_from_slice(&b[start..end]);
                Ok(end - start)
            }
            None => Err(errno(HostIoErrno::EBADF)),
        }
    }
}

impl HostIoSetfs for GuestTarget {
    fn setfs(&mut self, _fs: FsKind) -> HostIoResult<(), Self> {
        // One process, one filesystem view.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_paths() {
        assert!(super::is_maps(b"/proc/1/maps"));
        assert!(super::is_maps(b"/proc/12/task/34/maps"));
        assert!(!super::is_maps(b"/proc/self/maps"));
        assert!(!super::is_maps(b"/proc/1/task/x/maps"));
        assert!(!super::is_maps(b"/etc/passwd"));
    }
}
