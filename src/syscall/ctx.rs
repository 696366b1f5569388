//! What every handler works with: the call's context (`Ctx`: the process, the calling
//! thread's state, its vCPU), guest-memory access, the result type and host-return helpers.
//! A leaf of the syscall layer: handlers import it, and it imports nothing of theirs.

use std::sync::Arc;

use elfuse_actors::fdtable::{FdError, OpenFile};

use crate::backend::Vcpu;
use crate::errno::Errno;
use crate::guest::slice::GuestSlice;
use crate::process::Process;
pub use crate::thread::state::{Stop, ThreadState};

pub type SysResult = Result<u64, Errno>;

/// A new thread's clone arguments (clone, clone3 with CLONE_THREAD).
#[derive(Clone, Copy, Debug)]
pub struct ThreadArgs {
    pub flags: u64,
    /// New SP_EL0 (0: the parent's).
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
}

/// Process life a handler asks for but does not do itself: a new thread or a new process
/// runs the vCPU loop, which sits above the syscall layer. `thread::run` implements it
/// and hands it to every `Ctx` (so this layer never imports the loop).
pub trait Life: Sync {
    /// Starts a guest thread (clone/clone3 with CLONE_THREAD): its tid.
    fn spawn_thread(&self, ctx: &mut Ctx, args: ThreadArgs) -> SysResult;
    /// Creates a process (fork, vfork, clone without CLONE_VM; clone's raw arguments):
    /// the child's pid in the parent.
    fn fork(&self, ctx: &mut Ctx, a: [u64; 6]) -> SysResult;
    /// Runs the first thread of a new process on the calling host thread until the
    /// process ends (a native fork child, on the forking thread's vCPU).
    fn run_leader(
        &self,
        proc: &Arc<Process>,
        vcpu: &mut dyn Vcpu,
        thread: &mut ThreadState,
    ) -> Result<Stop, String>;
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    /// The process (an `Arc`: a handler that starts a thread or a task hands it on).
    pub proc: &'a Arc<Process>,
    pub thread: &'a mut ThreadState,
    /// The calling vCPU, stopped at its `HVC #5`.
    pub vcpu: &'a mut dyn Vcpu,
    /// New threads and processes (see [`Life`]).
    pub life: &'a dyn Life,
    /// Set by handlers that end the thread or process.
    pub stop: Option<Stop>,
    /// Set by handlers that rewrote the registers themselves (rt_sigreturn): the result
    /// must not be written to X0.
    pub regs_set: bool,
}

/// Plain-old-data guest structures (any bit pattern valid, no padding surprises).
///
/// # Safety
/// Implementors must be `repr(C)` with no invalid bit patterns.
pub unsafe trait Pod: Copy + Default {}
// SAFETY: u8: one byte, no padding, every bit pattern a valid value.
unsafe impl Pod for u8 {}
// SAFETY: u16: no padding, every bit pattern a valid value.
unsafe impl Pod for u16 {}
// SAFETY: u32: no padding, every bit pattern a valid value.
unsafe impl Pod for u32 {}
// SAFETY: i32: no padding, every bit pattern a valid value.
unsafe impl Pod for i32 {}
// SAFETY: u64: no padding, every bit pattern a valid value.
unsafe impl Pod for u64 {}
// SAFETY: i64: no padding, every bit pattern a valid value.
unsafe impl Pod for i64 {}
// SAFETY: an array of Pod elements has no padding between them and every bit pattern of each
// is valid, so the same holds for the array.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] where [T; N]: Default {}

/// Longest path a guest may pass (PATH_MAX).
pub const PATH_MAX: usize = 4096;

impl<'a> Ctx<'a> {
    pub fn new(
        proc: &'a Arc<Process>,
        thread: &'a mut ThreadState,
        vcpu: &'a mut dyn Vcpu,
        life: &'a dyn Life,
    ) -> Self {
        // The sender of this thread's actor messages (actor traces).
        elfuse_actors::trace::set_current_tid(thread.tid);
        Ctx {
            proc,
            thread,
            vcpu,
            life,
            stop: None,
            regs_set: false,
        }
    }

    /// A guest buffer, after checking the guest may access it (`write`: for writing):
    /// a [`GuestSlice`], reached by copies and raw pointers only, never a `&mut [u8]`
    /// (other vCPUs may write it at the same time; see `guest::slice`).
    pub fn user_slice(&self, va: u64, len: usize, write: bool) -> Result<GuestSlice<'_>, Errno> {
        if len == 0 {
            return Ok(GuestSlice::empty());
        }
        self.proc.mm.check_user(va, len as u64, write)?;
        let p = self.proc.ram.ptr(va, len);
        // SAFETY: `check_user` put `[va, va+len)` inside a user mapping, and `ram.ptr`
        // checked it against the RAM mapping, which lives as long as the process (that
        // `self` borrows).
        Ok(unsafe { GuestSlice::new(p, len) })
    }

    pub fn read_bytes(&self, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
        Ok(self.user_slice(va, len, false)?.to_vec())
    }

    pub fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Errno> {
        self.user_slice(va, data.len(), true)?.copy_from(data);
        Ok(())
    }

    pub fn read_val<T: Pod>(&self, va: u64) -> Result<T, Errno> {
        let mut v = T::default();
        let src = self.user_slice(va, std::mem::size_of::<T>(), false)?;
        // SAFETY: T is Pod (every bit pattern valid), so its storage may be viewed and
        // overwritten as `size_of::<T>()` plain bytes; `v` is a local, not guest RAM.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut v as *mut T).cast::<u8>(),
                std::mem::size_of::<T>(),
            )
        };
        src.copy_to(dst);
        Ok(v)
    }

    pub fn write_val<T: Pod>(&self, va: u64, v: &T) -> Result<(), Errno> {
        // SAFETY: T is Pod (repr(C), no padding with undefined contents per its
        // contract), so its `size_of::<T>()` bytes are initialised and readable.
        let bytes = unsafe {
            std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
        };
        self.write_bytes(va, bytes)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&self, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cur = va;
        let mut piece = [0u8; 64];
        loop {
            // Check up to the end of the current page at a time, copy out in pieces (a
            // path is short; most of a page is not read).
            let chunk = (4096 - (cur % 4096)) as usize;
            let s = self.user_slice(cur, chunk, false)?;
            let mut off = 0;
            while off < chunk {
                let n = piece.len().min(chunk - off);
                s.sub(off, n).copy_to(&mut piece[..n]);
                if let Some(z) = piece[..n].iter().position(|&b| b == 0) {
                    out.extend_from_slice(&piece[..z]);
                    return Ok(out);
                }
                out.extend_from_slice(&piece[..n]);
                off += n;
            }
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            cur += chunk as u64;
        }
    }

    /// A path argument: at most PATH_MAX bytes (ENAMETOOLONG). An empty path is returned
    /// as is; callers decide (ENOENT, or AT_EMPTY_PATH).
    pub fn read_path(&self, va: u64) -> Result<Vec<u8>, Errno> {
        let p = self.read_cstr(va, PATH_MAX)?;
        if p.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(p)
    }

    /// The open file behind guest fd `fd`: a lookup in the fd-table actor's published
    /// view (no message). The `Arc` keeps the description alive for the whole call, even
    /// if another thread closes `fd` meanwhile.
    pub fn file(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        // The kernel takes `unsigned int fd`: upper bits are ignored.
        self.fds().get(fd as i32).map_err(fd_err)
    }

    /// Installs a new open file description at the lowest free guest fd (open, socket,
    /// eventfd...) and returns the fd: a message to the fd-table actor. On failure the
    /// description is dropped.
    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool) -> SysResult {
        self.fds()
            .install(file, cloexec, 0)
            .map(|n| n as u64)
            .map_err(fd_err)
    }
}

pub fn fd_err(e: FdError) -> Errno {
    match e {
        FdError::BadFd => Errno::EBADF,
        FdError::TooMany => Errno::EMFILE,
        FdError::Invalid => Errno::EINVAL,
        FdError::Perm => Errno::EPERM,
    }
}

/// Converts a host libc return value (-1 + errno) to a result.
pub fn host_ret(r: i64) -> SysResult {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}
