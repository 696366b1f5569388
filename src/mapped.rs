//! A read-only, private mapping of a whole file (program images are parsed in place
//! instead of being copied into a buffer first).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

pub struct MappedFile {
    ptr: *mut libc::c_void,
    len: usize,
}

// Read-only for its whole life.
// SAFETY: the mapping is read-only and owned by this value (unmapped only on drop); nothing
// ties it to a thread.
unsafe impl Send for MappedFile {}
// SAFETY: the mapping is never written after creation, so shared `&[u8]` access from several
// threads is sound.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    pub fn open(file: &File) -> io::Result<MappedFile> {
        let len = file.metadata()?.len() as usize;
        if len == 0 {
            return Ok(MappedFile {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh private read-only mapping of an open file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedFile { ptr, len })
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: mapped for `len` bytes until drop. (A file truncated under us would
        // SIGBUS, as it would for any program loader reading through mmap.)
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: the mapping this value created and owns (`len` non-zero); nothing uses
            // it after drop.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// A program image: mapped from a file (kept open: it backs the guest's mappings), or
/// built in memory (the demo).
pub enum Image {
    Mapped(MappedFile, File),
    Owned(Vec<u8>),
}

impl Image {
    /// The file the image came from, if any.
    pub fn file(&self) -> Option<&File> {
        match self {
            Image::Mapped(_, f) => Some(f),
            Image::Owned(_) => None,
        }
    }
}

impl std::ops::Deref for Image {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Image::Mapped(m, _) => m,
            Image::Owned(v) => v,
        }
    }
}
