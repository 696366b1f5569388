//! openat2: `struct open_how` checked as Linux's `build_open_flags` does, then openat
//! with its RESOLVE_* restrictions honoured by the one path resolver (`resolve`):
//! NO_XDEV, NO_MAGICLINKS, NO_SYMLINKS, BENEATH, IN_ROOT. RESOLVE_CACHED is EAGAIN
//! with O_CREAT, O_TRUNC or O_TMPFILE, as Linux; otherwise the lookup is done (a cached
//! lookup may succeed on Linux too).

use super::resolve::{
    RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
    RESOLVE_NO_XDEV,
};
use super::{abi, fs, Ctx, SysResult};
use crate::errno::Errno;

/// The first version's size, and the most Linux copies (one page).
const OPEN_HOW_SIZE_VER0: u64 = 24;
const MAX_SIZE: u64 = 4096;
/// Every open flag Linux knows (AArch64 numbering): the access mode up to __O_TMPFILE.
const VALID_OPEN_FLAGS: u64 = 0o37777703;
const O_TMPFILE_BIT: u64 = 0o20000000;
/// What O_PATH may be combined with.
const O_PATH_FLAGS: u64 = 0o40000 | 0o100000 | abi::O_PATH | abi::O_CLOEXEC;
const VALID_RESOLVE: u64 = RESOLVE_NO_XDEV
    | RESOLVE_NO_MAGICLINKS
    | RESOLVE_NO_SYMLINKS
    | RESOLVE_BENEATH
    | RESOLVE_IN_ROOT
    | RESOLVE_CACHED;

pub fn openat2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (dirfd, path_va, how_va, size) = (a[0], a[1], a[2], a[3]);
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > MAX_SIZE {
        return Err(Errno::E2BIG);
    }
    let raw = ctx.read_bytes(how_va, size as usize)?;
    if raw[OPEN_HOW_SIZE_VER0 as usize..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags & !VALID_OPEN_FLAGS != 0 || resolve & !VALID_RESOLVE != 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (abi::O_CREAT | O_TMPFILE_BIT) == 0 && mode != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & abi::O_PATH != 0 && flags & !O_PATH_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    if resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    if resolve & RESOLVE_CACHED != 0 && flags & (abi::O_TRUNC | abi::O_CREAT | O_TMPFILE_BIT) != 0 {
        return Err(Errno::EAGAIN);
    }
    let path = ctx.read_path(path_va)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    fs::open_how(ctx, dirfd, &path, flags, mode, resolve)
}
