//! The layout of shim_data: the EL1-only page(s) the shim serves fast paths from.
//!
//! TPIDR_EL1 holds the guest address of shim_data; every offset here is relative to it.
//! The same constants are used by the assembler (`lib.rs`) and by the host writer
//! (`src/guest/shimdata.rs`), so the two cannot disagree.
//!
//! ```text
//! 0x000  attention word (u32, read by the shim with LDAR; any bit set → forward)
//! 0x040  identity slots, u32 each: pid ppid uid euid gid egid pgid sid
//! 0x060  user range for fast-path buffers: lowest address (u64), end (u64, exclusive)
//! 0x080  ring head (u32, bytes consumed, free-running)
//! 0x084  ring tail (u32, bytes produced, free-running)
//! 0x088  ring lock (u32, 0 free / 1 held; EL1 LDAXR/STXR, host CAS)
//! 0x100  bitmap of guest fds open for reading on /dev/urandom (URANDOM_FDS bits)
//! 0x1000 random ring (RING_SIZE bytes); byte n lives at RING + (n % RING_SIZE)
//! ```

/// Attention word.
pub const ATTENTION: u32 = 0x000;
/// A signal is pending and unblocked (or a timer needs the host): do not serve.
pub const ATTN_SIGTIMER: u32 = 0x1;
/// Credentials are being published: the identity slots may be inconsistent.
pub const ATTN_CRED: u32 = 0x2;
/// Syscall tracing is on: every call must reach the host to be traced.
pub const ATTN_TRACE: u32 = 0x4;
/// The process's threads do not all hold the same real and effective ids (per-thread
/// credentials): the identity slots cannot answer for every thread.
pub const ATTN_CRED_SPLIT: u32 = 0x8;
/// A seccomp mode is in force on some thread: every syscall must reach the host to be
/// filtered (set for good).
pub const ATTN_SECCOMP: u32 = 0x10;

/// Identity slots (u32 each), in this order. The first six are indexed by
/// `syscall number - 172` (getpid..getegid are 172..177).
pub const IDENT: u32 = 0x040;
pub const SLOT_PID: u32 = 0;
pub const SLOT_PPID: u32 = 1;
pub const SLOT_UID: u32 = 2;
pub const SLOT_EUID: u32 = 3;
pub const SLOT_GID: u32 = 4;
pub const SLOT_EGID: u32 = 5;
pub const SLOT_PGID: u32 = 6;
pub const SLOT_SID: u32 = 7;
pub const IDENT_SLOTS: u32 = 8;

/// The user range (u64 low, u64 end) buffers must lie in. Zero until published: then
/// every buffer is out of range and forwarded.
pub const USER_LIMITS: u32 = 0x060;

/// Ring bookkeeping.
pub const RING_HEAD: u32 = 0x080;
pub const RING_TAIL: u32 = 0x084;
pub const RING_LOCK: u32 = 0x088;

/// The urandom fd bitmap: bit `fd % 64` of u64 word `fd / 64`.
pub const URANDOM_BITMAP: u32 = 0x100;
/// Guest fds the bitmap covers (fds at or above it are always forwarded).
pub const URANDOM_FDS: u32 = 4096;

/// The random ring.
pub const RING: u32 = 0x1000;
pub const RING_SIZE: u32 = 4096;

/// Bytes of shim_data in use (the reserved region is larger).
pub const SIZE: u32 = RING + RING_SIZE;

/// The largest read/readv/getrandom the shim serves; larger ones go to the host.
pub const MAX_FAST_READ: u32 = 256;
/// The most iovecs a readv may have to be served by the shim.
pub const MAX_FAST_IOV: u32 = 8;

const _: () = {
    assert!(IDENT + IDENT_SLOTS * 4 <= USER_LIMITS);
    assert!(USER_LIMITS + 16 <= RING_HEAD);
    assert!(URANDOM_BITMAP + URANDOM_FDS / 8 <= RING);
    assert!(RING_SIZE.is_power_of_two());
    assert!(MAX_FAST_READ <= RING_SIZE);
};
