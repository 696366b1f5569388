//! Guest RAM: one host mapping, mapped (by the backend) into the guest physical address
//! space at GPA 0; sparse, so that only touched pages cost host memory. Two backings:
//!
//! - a memfd mapped shared ([`GuestRam::new`]): what the portable fork path needs, since
//!   its snapshot is a copy of the memfd that travels to the child as an fd;
//! - private anonymous memory ([`GuestRam::new_private`]): what the native fork path
//!   uses, so that the host's fork() itself gives the child a copy-on-write copy (no
//!   snapshot, no refaulting a new memfd in the child).

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};

pub struct GuestRam {
    /// The memfd (owned; closed on drop), or -1 for private anonymous memory. Atomic only
    /// so that a native fork child can swap in its private copy
    /// ([`GuestRam::swap_backing`]).
    fd: AtomicI32,
    base: NonNull<u8>,
    size: u64,
}

// The mapping is plain shared memory; concurrent access is the guest's business, as with
// a kernel touching user memory. All host access goes through bounds-checked copies.
// SAFETY: the fields are an atomic fd, a length and the base of a mapping owned by this value
// (unmapped only in Drop); nothing is tied to the creating thread.
unsafe impl Send for GuestRam {}
// SAFETY: `&GuestRam` only reads the size/base and the atomic fd, or reaches the mapping
// through raw-pointer volatile copies (`read`/`write`/`GuestSlice`), never through shared
// references into it; concurrent guest writes tear data, as they would under a kernel.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    pub fn new(size: u64) -> io::Result<Self> {
        Self::from_fd(Self::create_fd(size)?, size)
    }

    /// Guest RAM in private anonymous memory (MAP_NORESERVE: only touched pages are
    /// committed). A host fork() copies it copy-on-write.
    pub fn new_private(size: u64) -> io::Result<Self> {
        // SAFETY: a fresh anonymous mapping.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Small pages as with the memfd (shmem has no huge pages by default): a fork
        // child copies 4 KiB on a write, not 2 MiB. Advisory; failure changes nothing.
        // SAFETY: `p` is the mapping of `size` bytes created just above; madvise only changes
        // paging advice.
        unsafe { libc::madvise(p, size as usize, libc::MADV_NOHUGEPAGE) };
        Ok(GuestRam {
            fd: AtomicI32::new(-1),
            base: NonNull::new(p.cast()).expect("mmap returned null"),
            size,
        })
    }

    /// A new, empty (sparse) memfd of `size` bytes to hold guest RAM.
    pub fn create_fd(size: u64) -> io::Result<OwnedFd> {
        let name = c"elfuse-guest-ram";
        let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, size as libc::off_t)?;
        Ok(fd)
    }

    /// Guest RAM over an existing memfd of `size` bytes (a fork child's copy).
    pub fn from_fd(fd: OwnedFd, size: u64) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of the memfd we own (the kernel picks the address);
        // the result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(GuestRam {
            fd: AtomicI32::new(fd.into_raw_fd()),
            base: NonNull::new(p.cast()).expect("mmap returned null"),
            size,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn host_base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The memfd behind guest RAM (None for private anonymous memory).
    pub fn raw_fd(&self) -> Option<RawFd> {
        let fd = self.fd.load(Ordering::Relaxed);
        (fd >= 0).then_some(fd)
    }

    /// Whether RAM is private anonymous memory (a host fork() copies it).
    pub fn is_private(&self) -> bool {
        self.raw_fd().is_none()
    }

    /// Makes `fd` (a memfd of the same size, such as a snapshot) the RAM's backing at the
    /// same host address, so every cached host pointer stays valid; the old memfd is
    /// closed. A native fork child does this before it runs the guest. MAP_SHARED file
    /// overlays are replaced too: the caller maps them again (`Mm::from_parts`).
    pub fn swap_backing(&self, fd: OwnedFd) -> io::Result<()> {
        // SAFETY: replaces our own mapping in place with a mapping of the same size.
        let r = unsafe {
            libc::mmap(
                self.base.as_ptr().cast(),
                self.size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let old = self.fd.swap(fd.into_raw_fd(), Ordering::Relaxed);
        if old >= 0 {
            // `old` was the previous backing fd, which this value owned.
            let _ = nix::unistd::close(old);
        }
        Ok(())
    }

    fn check(&self, gpa: u64, len: usize) {
        let end = gpa.checked_add(len as u64);
        assert!(
            end.is_some_and(|e| e <= self.size),
            "guest RAM access out of range: {gpa:#x}+{len:#x}"
        );
    }

    /// Host pointer for `gpa`. Panics if `[gpa, gpa+len)` is outside RAM: callers check
    /// guest-supplied ranges first (user ranges are always inside RAM).
    pub fn ptr(&self, gpa: u64, len: usize) -> *mut u8 {
        self.check(gpa, len);
        // SAFETY: in bounds of the mapping.
        unsafe { self.base.as_ptr().add(gpa as usize) }
    }

    pub fn read(&self, gpa: u64, buf: &mut [u8]) {
        let p = self.ptr(gpa, buf.len());
        // SAFETY: `ptr` bounds-checked `[gpa, gpa+len)` against the mapping, which lives
        // as long as `self`; `buf` is a host buffer (not guest RAM). Volatile copies: a
        // racing vCPU yields torn bytes, as with a kernel's copy_from_user, never a
        // Rust-level data race on a reference.
        unsafe { super::slice::copy_out(buf.as_mut_ptr(), p, buf.len()) }
    }

    pub fn write(&self, gpa: u64, data: &[u8]) {
        let p = self.ptr(gpa, data.len());
        // SAFETY: as in `read`, with the roles swapped.
        unsafe { super::slice::copy_in(p, data.as_ptr(), data.len()) }
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write_u64(&self, gpa: u64, v: u64) {
        self.write(gpa, &v.to_le_bytes())
    }

    pub fn fill(&self, gpa: u64, len: u64, byte: u8) {
        let p = self.ptr(gpa, len as usize);
        // SAFETY: `ptr` bounds-checked the range against the live mapping.
        unsafe { super::slice::GuestSlice::new(p, len as usize) }.fill(byte)
    }

    /// Maps `len` bytes of file `fd` at `offset` over guest RAM at `gpa`, shared with the
    /// file (MAP_SHARED file mappings: the guest and every other mapper see one page
    /// cache). `writable` must match the fd's access mode. Undone by [`GuestRam::restore`].
    pub fn overlay_file(
        &self,
        gpa: u64,
        len: u64,
        fd: RawFd,
        offset: u64,
        writable: bool,
    ) -> io::Result<()> {
        let p = self.ptr(gpa, len as usize);
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: replaces pages inside our own RAM mapping; the host address is unchanged,
        // so the vCPU engine's cached host pointers stay valid.
        let r = unsafe {
            libc::mmap(
                p.cast(),
                len as usize,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                offset as libc::off_t,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Maps `len` bytes of host SysV segment `id` (of `seg_len` bytes, whole pages) from
    /// `offset` over guest RAM at `gpa`: the segment is attached anywhere, the piece is
    /// moved into place (mremap keeps it an attachment: the host counts it in
    /// `shm_nattch`) and the rest detached. Undone by [`GuestRam::restore`].
    #[cfg(target_os = "linux")]
    pub fn overlay_shm(
        &self,
        gpa: u64,
        len: u64,
        id: i32,
        offset: u64,
        seg_len: u64,
        writable: bool,
    ) -> io::Result<()> {
        let p = self.ptr(gpa, len as usize);
        let flags = if writable { 0 } else { libc::SHM_RDONLY };
        // SAFETY: attaches at an address the host chooses, outside our mappings.
        let tmp = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if tmp as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let tmp = tmp as *mut u8;
        // SAFETY: moves a piece of the attachment just made over pages of our own RAM
        // mapping (same host address, so the engine's cached pointers stay valid).
        let r = unsafe {
            libc::mremap(
                tmp.add(offset as usize).cast(),
                len as usize,
                len as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                p.cast::<libc::c_void>(),
            )
        };
        let err = (r == libc::MAP_FAILED).then(io::Error::last_os_error);
        // SAFETY: the rest of the attachment made above, which nothing else uses.
        unsafe {
            if err.is_some() {
                libc::munmap(tmp.cast(), seg_len as usize);
            } else {
                libc::munmap(tmp.cast(), offset as usize);
                let end = offset + len;
                if seg_len > end {
                    libc::munmap(tmp.add(end as usize).cast(), (seg_len - end) as usize);
                }
            }
        }
        err.map_or(Ok(()), Err)
    }

    /// Elsewhere SysV segments are not mapped into guest memory yet.
    #[cfg(not(target_os = "linux"))]
    pub fn overlay_shm(
        &self,
        _gpa: u64,
        _len: u64,
        _id: i32,
        _offset: u64,
        _seg_len: u64,
        _writable: bool,
    ) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }

    /// Puts guest RAM's own (zeroed) pages back at `[gpa, gpa+len)` after an overlay.
    pub fn restore(&self, gpa: u64, len: u64) {
        let p = self.ptr(gpa, len as usize);
        self.discard(gpa, len);
        let (flags, fd) = match self.raw_fd() {
            Some(fd) => (libc::MAP_SHARED, fd),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        let off = if fd < 0 { 0 } else { gpa as libc::off_t };
        // SAFETY: MAP_FIXED over `[p, p+len)`, which `ptr` checked lies inside our own RAM
        // mapping; it replaces only those pages of it (with the RAM's own memfd pages, or
        // fresh anonymous ones).
        let r = unsafe {
            libc::mmap(
                p.cast(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_FIXED | libc::MAP_NORESERVE,
                fd,
                off,
            )
        };
        // Failing to map our own memfd back over our own range is not recoverable.
        assert!(
            r != libc::MAP_FAILED,
            "cannot restore guest RAM at {gpa:#x}: {}",
            io::Error::last_os_error()
        );
    }

    /// Returns the pages of `[gpa, gpa+len)` to the host; they read back as zeroes.
    pub fn discard(&self, gpa: u64, len: u64) {
        self.check(gpa, len as usize);
        let r = match self.raw_fd() {
            // SAFETY: no pointers: punches a hole in our own memfd at a range `check` put
            // inside it.
            Some(fd) => unsafe {
                libc::fallocate(
                    fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    gpa as libc::off_t,
                    len as libc::off_t,
                )
            },
            // SAFETY: inside our own private mapping; the pages read back as zeroes.
            None => unsafe {
                libc::madvise(
                    self.ptr(gpa, len as usize).cast(),
                    len as usize,
                    libc::MADV_DONTNEED,
                )
            },
        };
        if r != 0 {
            // Punching holes is an optimisation; zeroing keeps the semantics.
            self.fill(gpa, len, 0);
        }
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        // SAFETY: `base`/`size` is the mapping this value created and owns; nothing uses it
        // after drop.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size as usize) };
        if let Some(fd) = self.raw_fd() {
            let _ = nix::unistd::close(fd);
        }
    }
}
