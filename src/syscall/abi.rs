//! The guest ABI (AArch64 Linux, asm-generic) as explicit definitions, and its
//! translation to the host's.
//!
//! Everything the guest passes in or reads back is defined here with the guest's values
//! and layouts; the host side is always named through `libc` constants and structs, so a
//! host with different numbering (x86_64 Linux's open flags, macOS's everything) maps
//! here and nowhere else.

// Host field types differ between hosts (macOS's stat, statfs, timespec): the casts that
// are no-ops on Linux are the seam.
#![allow(clippy::unnecessary_cast)]

use crate::errno::Errno;
use crate::syscall::Pod;

// ---------------------------------------------------------------------------------------
// open(2) flags
// ---------------------------------------------------------------------------------------

pub const O_ACCMODE: u64 = 0o3;
pub const O_RDONLY: u64 = 0o0;
pub const O_WRONLY: u64 = 0o1;
pub const O_RDWR: u64 = 0o2;
pub const O_CREAT: u64 = 0o100;
pub const O_EXCL: u64 = 0o200;
pub const O_NOCTTY: u64 = 0o400;
pub const O_TRUNC: u64 = 0o1000;
pub const O_APPEND: u64 = 0o2000;
pub const O_NONBLOCK: u64 = 0o4000;
pub const O_DSYNC: u64 = 0o10000;
pub const FASYNC: u64 = 0o20000;
pub const O_DIRECTORY: u64 = 0o40000;
pub const O_NOFOLLOW: u64 = 0o100000;
pub const O_DIRECT: u64 = 0o200000;
pub const O_LARGEFILE: u64 = 0o400000;
pub const O_NOATIME: u64 = 0o1000000;
pub const O_CLOEXEC: u64 = 0o2000000;
/// The bit O_SYNC adds to O_DSYNC.
pub const O___SYNC: u64 = 0o4000000;
#[cfg(test)]
pub const O_SYNC: u64 = O___SYNC | O_DSYNC;
pub const O_PATH: u64 = 0o10000000;
/// The bit O_TMPFILE adds to O_DIRECTORY.
pub const O___TMPFILE: u64 = 0o20000000;
#[cfg(test)]
pub const O_TMPFILE: u64 = O___TMPFILE | O_DIRECTORY;

/// The host's O_LARGEFILE as its kernel reports it in F_GETFL. glibc (and so `libc`)
/// defines O_LARGEFILE as 0 on LP64 hosts because the kernel forces it, but the kernel
/// still sets its own bit in the file flags, so it must be named to be mapped back.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const HOST_O_LARGEFILE: i32 = 0o100000;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const HOST_O_LARGEFILE: i32 = 0o400000;
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
const HOST_O_LARGEFILE: i32 = libc::O_LARGEFILE;

/// Guest open-flag bit(s) → host bit(s). The access mode (O_ACCMODE) is handled apart.
/// Entries whose host value is 0 (no such flag on this host) are ignored both ways.
const OPEN_FLAGS: &[(u64, i32)] = &[
    (O_CREAT, libc::O_CREAT),
    (O_EXCL, libc::O_EXCL),
    (O_NOCTTY, libc::O_NOCTTY),
    (O_TRUNC, libc::O_TRUNC),
    (O_APPEND, libc::O_APPEND),
    (O_NONBLOCK, libc::O_NONBLOCK),
    (O_DSYNC, libc::O_DSYNC),
    (FASYNC, libc::O_ASYNC),
    (O_DIRECTORY, libc::O_DIRECTORY),
    (O_NOFOLLOW, libc::O_NOFOLLOW),
    (O_CLOEXEC, libc::O_CLOEXEC),
    // The host's O_SYNC contains its O_DSYNC too (on Linux; on macOS they are apart).
    (O___SYNC, libc::O_SYNC & !libc::O_DSYNC),
    #[cfg(target_os = "linux")]
    (O_DIRECT, libc::O_DIRECT),
    #[cfg(target_os = "linux")]
    (O_LARGEFILE, HOST_O_LARGEFILE),
    #[cfg(target_os = "linux")]
    (O_NOATIME, libc::O_NOATIME),
    #[cfg(target_os = "linux")]
    (O_PATH, libc::O_PATH),
    #[cfg(target_os = "linux")]
    (O___TMPFILE, libc::O_TMPFILE & !libc::O_DIRECTORY),
];

/// Guest open/fcntl(F_SETFL)/pipe2 flags → host flags. Unknown guest bits are ignored
/// (as Linux does); bits this host has no equivalent for are dropped.
pub fn open_flags_to_host(guest: u64) -> i32 {
    let mut host = match guest & O_ACCMODE {
        O_RDONLY => libc::O_RDONLY,
        O_WRONLY => libc::O_WRONLY,
        O_RDWR => libc::O_RDWR,
        // 3: Linux's "no read, no write" mode (ioctl-only opens); other hosts refuse it.
        _ => libc::O_ACCMODE,
    };
    for &(g, h) in OPEN_FLAGS {
        if guest & g != 0 {
            host |= h;
        }
    }
    host
}

/// Host file flags (F_GETFL) → guest flags.
pub fn open_flags_from_host(host: i32) -> u64 {
    let mut guest = match host & libc::O_ACCMODE {
        libc::O_RDONLY => O_RDONLY,
        libc::O_WRONLY => O_WRONLY,
        libc::O_RDWR => O_RDWR,
        _ => O_ACCMODE,
    };
    for &(g, h) in OPEN_FLAGS {
        if h != 0 && host & h == h {
            guest |= g;
        }
    }
    guest
}

// ---------------------------------------------------------------------------------------
// *at(2) flags and special values
// ---------------------------------------------------------------------------------------

pub const AT_FDCWD: i64 = -100;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// unlinkat. Same bit as AT_EACCESS.
pub const AT_REMOVEDIR: u64 = 0x200;
/// faccessat2. Same bit as AT_REMOVEDIR.
pub const AT_EACCESS: u64 = 0x200;
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
pub const AT_NO_AUTOMOUNT: u64 = 0x800;
pub const AT_EMPTY_PATH: u64 = 0x1000;
pub const AT_STATX_SYNC_TYPE: u64 = 0x6000;
pub const AT_STATX_FORCE_SYNC: u64 = 0x2000;
pub const AT_STATX_DONT_SYNC: u64 = 0x4000;

/// Guest AT_* bit → host bit, except 0x200 (AT_REMOVEDIR / AT_EACCESS), whose meaning
/// depends on the syscall.
const AT_FLAGS: &[(u64, i32)] = &[
    (AT_SYMLINK_NOFOLLOW, libc::AT_SYMLINK_NOFOLLOW),
    (AT_SYMLINK_FOLLOW, libc::AT_SYMLINK_FOLLOW),
    #[cfg(target_os = "linux")]
    (AT_NO_AUTOMOUNT, libc::AT_NO_AUTOMOUNT),
    #[cfg(target_os = "linux")]
    (AT_EMPTY_PATH, libc::AT_EMPTY_PATH),
    #[cfg(target_os = "linux")]
    (AT_STATX_FORCE_SYNC, libc::AT_STATX_FORCE_SYNC),
    #[cfg(target_os = "linux")]
    (AT_STATX_DONT_SYNC, libc::AT_STATX_DONT_SYNC),
];

/// Validates guest AT_* `flags` against the set the syscall accepts (`allowed`; EINVAL
/// for any other bit, as Linux does) and translates them to the host's.
///
/// Bit 0x200 is AT_REMOVEDIR for unlinkat and AT_EACCESS for faccessat2: it is validated
/// but not translated — the caller adds `libc::AT_REMOVEDIR` / `libc::AT_EACCESS`.
pub fn at_flags_to_host(flags: u64, allowed: u64) -> Result<i32, Errno> {
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let mut host = 0;
    for &(g, h) in AT_FLAGS {
        if flags & g != 0 {
            host |= h;
        }
    }
    Ok(host)
}

/// utimensat's special tv_nsec values (guest).
pub const UTIME_NOW: i64 = (1 << 30) - 1;
pub const UTIME_OMIT: i64 = (1 << 30) - 2;

// ---------------------------------------------------------------------------------------
// struct timespec
// ---------------------------------------------------------------------------------------

/// `struct timespec` (AArch64: two 64-bit fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}
// SAFETY: repr(C), two i64s, no padding.
unsafe impl Pod for Timespec {}

impl Timespec {
    pub fn to_host(self) -> libc::timespec {
        libc::timespec {
            tv_sec: self.tv_sec as libc::time_t,
            tv_nsec: self.tv_nsec as _,
        }
    }

    /// A utimensat time: UTIME_NOW/UTIME_OMIT mapped to the host's values.
    pub fn utime_to_host(self) -> libc::timespec {
        let mut t = self.to_host();
        if self.tv_nsec == UTIME_NOW {
            t.tv_nsec = libc::UTIME_NOW as _;
        } else if self.tv_nsec == UTIME_OMIT {
            t.tv_nsec = libc::UTIME_OMIT as _;
        }
        t
    }
}

// ---------------------------------------------------------------------------------------
// struct stat
// ---------------------------------------------------------------------------------------

/// AArch64's `struct stat` (asm-generic), as newfstatat/fstat write it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_mode: u32,
    pub st_nlink: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_rdev: u64,
    pub __pad1: u64,
    pub st_size: i64,
    pub st_blksize: i32,
    pub __pad2: i32,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: u64,
    pub st_mtime: i64,
    pub st_mtime_nsec: u64,
    pub st_ctime: i64,
    pub st_ctime_nsec: u64,
    pub __unused: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<Stat>() == 128);
// SAFETY: repr(C), integer fields only, explicit padding fields.
unsafe impl Pod for Stat {}

impl Stat {
    /// Copies the host's `struct stat` field by field (x86_64's has another order).
    pub fn from_host(s: &libc::stat) -> Stat {
        Stat {
            st_dev: s.st_dev as u64,
            st_ino: s.st_ino as u64,
            st_mode: s.st_mode as u32,
            st_nlink: s.st_nlink as u32,
            st_uid: s.st_uid,
            st_gid: s.st_gid,
            st_rdev: s.st_rdev as u64,
            __pad1: 0,
            st_size: s.st_size as i64,
            st_blksize: s.st_blksize as i32,
            __pad2: 0,
            st_blocks: s.st_blocks as i64,
            st_atime: s.st_atime as i64,
            st_atime_nsec: s.st_atime_nsec as u64,
            st_mtime: s.st_mtime as i64,
            st_mtime_nsec: s.st_mtime_nsec as u64,
            st_ctime: s.st_ctime as i64,
            st_ctime_nsec: s.st_ctime_nsec as u64,
            __unused: [0; 2],
        }
    }
}

/// Linux's dev_t encoding (the one `struct stat` carries): major/minor.
pub fn dev_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}
pub fn dev_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

// ---------------------------------------------------------------------------------------
// struct statx (arch-independent)
// ---------------------------------------------------------------------------------------

pub const STATX_BASIC_STATS: u32 = 0x07ff;
pub const STATX__RESERVED: u32 = 0x8000_0000;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub __reserved: i32,
}
// SAFETY: repr(C), 16 bytes of integers, no implicit padding.
unsafe impl Pod for StatxTimestamp {}

/// Linux's `struct statx` (the same on every architecture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub __spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub stx_mnt_id: u64,
    pub stx_dio_mem_align: u32,
    pub stx_dio_offset_align: u32,
    pub stx_subvol: u64,
    pub stx_atomic_write_unit_min: u32,
    pub stx_atomic_write_unit_max: u32,
    pub stx_atomic_write_segments_max: u32,
    pub stx_dio_read_offset_align: u32,
    pub stx_atomic_write_unit_max_opt: u32,
    pub __spare2: u32,
    pub __spare3: [u64; 8],
}
const _: () = assert!(std::mem::size_of::<Statx>() == 256);
// SAFETY: repr(C), integer fields only, no implicit padding (size asserted).
unsafe impl Pod for Statx {}

impl Statx {
    /// A statx filled from a `struct stat` (hosts without statx): the basic stats only.
    pub fn from_stat(s: &Stat) -> Statx {
        let ts = |sec: i64, nsec: u64| StatxTimestamp {
            tv_sec: sec,
            tv_nsec: nsec as u32,
            __reserved: 0,
        };
        Statx {
            stx_mask: STATX_BASIC_STATS,
            stx_blksize: s.st_blksize as u32,
            stx_nlink: s.st_nlink,
            stx_uid: s.st_uid,
            stx_gid: s.st_gid,
            stx_mode: s.st_mode as u16,
            stx_ino: s.st_ino,
            stx_size: s.st_size as u64,
            stx_blocks: s.st_blocks as u64,
            stx_atime: ts(s.st_atime, s.st_atime_nsec),
            stx_ctime: ts(s.st_ctime, s.st_ctime_nsec),
            stx_mtime: ts(s.st_mtime, s.st_mtime_nsec),
            stx_rdev_major: dev_major(s.st_rdev),
            stx_rdev_minor: dev_minor(s.st_rdev),
            stx_dev_major: dev_major(s.st_dev),
            stx_dev_minor: dev_minor(s.st_dev),
            ..Statx::default()
        }
    }
}

// ---------------------------------------------------------------------------------------
// struct statfs
// ---------------------------------------------------------------------------------------

/// AArch64's `struct statfs` (asm-generic, 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}
const _: () = assert!(std::mem::size_of::<Statfs>() == 120);
// SAFETY: repr(C), integer fields only, no implicit padding (size asserted).
unsafe impl Pod for Statfs {}

/// The host struct statfs/fstatfs fill (glibc's `statfs64` names f_flags).
#[cfg(target_os = "linux")]
pub type HostStatfs = libc::statfs64;
#[cfg(not(target_os = "linux"))]
pub type HostStatfs = libc::statfs;

impl Statfs {
    #[cfg(target_os = "linux")]
    pub fn from_host(s: &HostStatfs) -> Statfs {
        Statfs {
            f_type: s.f_type as i64,
            f_bsize: s.f_bsize as i64,
            f_blocks: s.f_blocks as u64,
            f_bfree: s.f_bfree as u64,
            f_bavail: s.f_bavail as u64,
            f_files: s.f_files as u64,
            f_ffree: s.f_ffree as u64,
            f_fsid: fsid(&s.f_fsid),
            f_namelen: s.f_namelen as i64,
            f_frsize: s.f_frsize as i64,
            f_flags: s.f_flags as i64,
            f_spare: [0; 4],
        }
    }

    /// macOS seam: no f_type numbering, f_namelen or f_frsize of Linux's kind.
    #[cfg(not(target_os = "linux"))]
    pub fn from_host(s: &HostStatfs) -> Statfs {
        Statfs {
            f_type: 0,
            f_bsize: s.f_bsize as i64,
            f_blocks: s.f_blocks as u64,
            f_bfree: s.f_bfree as u64,
            f_bavail: s.f_bavail as u64,
            f_files: s.f_files as u64,
            f_ffree: s.f_ffree as u64,
            f_fsid: fsid(&s.f_fsid),
            f_namelen: 255,
            f_frsize: s.f_bsize as i64,
            f_flags: 0,
            f_spare: [0; 4],
        }
    }
}

/// `fsid_t`'s fields are private in `libc`; it is two ints everywhere.
fn fsid(f: &libc::fsid_t) -> [i32; 2] {
    // SAFETY: fsid_t is two 32-bit ints (the transmute checks the size).
    unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(*f) }
}

/// statfs(2) on the host.
pub fn host_statfs(path: &std::ffi::CStr) -> Result<Statfs, Errno> {
    // SAFETY: zeroed is a valid HostStatfs; the host fills it.
    let mut s: HostStatfs = unsafe { std::mem::zeroed() };
    #[cfg(target_os = "linux")]
    // SAFETY: `path` is NUL-terminated and statfs64 writes one struct statfs into `s`, a
    // local of that type.
    let r = unsafe { libc::statfs64(path.as_ptr(), &mut s) };
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::statfs(path.as_ptr(), &mut s) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(Statfs::from_host(&s))
}

/// fstatfs(2) on the host.
pub fn host_fstatfs(fd: i32) -> Result<Statfs, Errno> {
    // SAFETY: as above.
    let mut s: HostStatfs = unsafe { std::mem::zeroed() };
    #[cfg(target_os = "linux")]
    // SAFETY: fstatfs64 writes one struct statfs into `s`, a local of that type; `fd` is the
    // caller's open fd.
    let r = unsafe { libc::fstatfs64(fd, &mut s) };
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::fstatfs(fd, &mut s) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(Statfs::from_host(&s))
}

// ---------------------------------------------------------------------------------------
// struct linux_dirent64 (arch-independent)
// ---------------------------------------------------------------------------------------

/// The fixed head of `struct linux_dirent64`; `d_name` (NUL-terminated, padded to 8)
/// follows. Linux hosts produce these records already; other hosts would build them.
#[cfg(not(target_os = "linux"))]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirent64Head {
    pub d_ino: u64,
    pub d_off: i64,
    pub d_reclen: u16,
    pub d_type: u8,
    pub __pad: [u8; 5],
}
// SAFETY: repr(C), integers only; the trailing pad is explicit.
#[cfg(not(target_os = "linux"))]
unsafe impl Pod for Dirent64Head {}

/// Guest O_CLOEXEC (asm-generic).
pub const GUEST_O_CLOEXEC: u64 = 0o2000000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_round_trip() {
        let g = O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        let h = open_flags_to_host(g);
        assert_eq!(
            h,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
        );
        assert_eq!(open_flags_from_host(h), g);
        for g in [
            O_RDWR | O_CREAT | O_EXCL | O_TRUNC,
            O_WRONLY | O_APPEND | O_NONBLOCK | O_SYNC,
            O_RDONLY | O_DSYNC | FASYNC | O_NOCTTY,
            O_RDWR | O_DIRECT | O_LARGEFILE | O_NOATIME,
            O_PATH | O_CLOEXEC,
            O_RDWR | O_TMPFILE,
        ] {
            assert_eq!(open_flags_from_host(open_flags_to_host(g)), g, "{g:#o}");
        }
        // Unknown guest bits are ignored.
        assert_eq!(open_flags_to_host(1 << 40 | O_WRONLY), libc::O_WRONLY);
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn x86_64_differs() {
        assert_eq!(open_flags_to_host(O_DIRECTORY), 0o200000);
        assert_eq!(open_flags_to_host(O_NOFOLLOW), 0o400000);
        assert_eq!(open_flags_to_host(O_DIRECT), 0o40000);
        assert_eq!(open_flags_to_host(O_LARGEFILE), 0o100000);
        // F_GETFL of a file the host opened (the kernel adds its O_LARGEFILE).
        assert_eq!(open_flags_from_host(0o100002), O_RDWR | O_LARGEFILE);
    }

    #[test]
    fn at_flags() {
        assert_eq!(
            at_flags_to_host(AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW),
            Ok(libc::AT_SYMLINK_NOFOLLOW)
        );
        assert_eq!(
            at_flags_to_host(0x8000, AT_SYMLINK_NOFOLLOW),
            Err(Errno::EINVAL)
        );
        assert_eq!(at_flags_to_host(AT_REMOVEDIR, AT_REMOVEDIR), Ok(0));
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Stat>(), 128);
        assert_eq!(std::mem::size_of::<Statfs>(), 120);
        assert_eq!(std::mem::size_of::<Statx>(), 256);
        assert_eq!(std::mem::size_of::<Timespec>(), 16);
        assert_eq!(std::mem::offset_of!(Stat, st_size), 48);
        assert_eq!(std::mem::offset_of!(Stat, st_blocks), 64);
        assert_eq!(std::mem::offset_of!(Stat, st_atime), 72);
        assert_eq!(std::mem::offset_of!(Statx, stx_atime), 64);
        assert_eq!(std::mem::offset_of!(Statx, stx_rdev_major), 128);
        assert_eq!(std::mem::offset_of!(Statx, stx_mnt_id), 144);
        assert_eq!(std::mem::offset_of!(Statfs, f_fsid), 56);
        assert_eq!(std::mem::offset_of!(Statfs, f_namelen), 64);
    }

    #[test]
    fn stat_from_host() {
        let c = std::ffi::CString::new("/").unwrap();
        // SAFETY: struct stat is integers and timespecs, valid zeroed.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is NUL-terminated and stat writes one struct stat into `st`, a local of
        // that type.
        assert_eq!(unsafe { libc::stat(c.as_ptr(), &mut st) }, 0);
        let g = Stat::from_host(&st);
        assert_eq!(g.st_mode & 0o170000, 0o040000);
        assert_eq!(g.st_ino, st.st_ino as u64);
        assert_eq!(g.st_mtime, st.st_mtime as i64);
        let x = Statx::from_stat(&g);
        assert_eq!(x.stx_mode as u32, g.st_mode);
        let fs = host_statfs(&c).unwrap();
        assert!(fs.f_bsize > 0);
    }

    #[test]
    fn dev_encoding() {
        let d = libc::makedev(259, 70000);
        assert_eq!((dev_major(d as u64), dev_minor(d as u64)), (259, 70000));
    }
}
