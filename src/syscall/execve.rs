//! execve and execveat: read the guest's path, argv and envp, then `exec::exec`.

use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::exec::{self, MAX_ARG_STRLEN};

const AT_FDCWD: u64 = -100i64 as u64;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// Reads a NULL-terminated array of guest string pointers (a NULL array is empty).
fn read_strings(ctx: &Ctx, mut va: u64, budget: &mut usize) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if va == 0 {
        return Ok(out);
    }
    loop {
        let p: u64 = ctx.read_val(va)?;
        if p == 0 {
            return Ok(out);
        }
        let s = ctx.read_cstr(p, MAX_ARG_STRLEN).map_err(|e| match e {
            Errno::ENAMETOOLONG => Errno::E2BIG,
            e => e,
        })?;
        if s.len() >= MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        // Each string costs its bytes, its NUL and its pointer on the new stack.
        *budget = budget.checked_sub(s.len() + 1 + 8).ok_or(Errno::E2BIG)?;
        out.push(s);
        va += 8;
    }
}

fn exec_common(
    ctx: &mut Ctx,
    dirfd: u64,
    path_va: u64,
    argv: u64,
    envp: u64,
    flags: u64,
) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = if flags & AT_EMPTY_PATH != 0 && path_va == 0 {
        Vec::new()
    } else {
        ctx.read_path(path_va)?
    };
    if path.is_empty() && flags & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    let mut budget = exec::arg_budget(ctx.proc);
    let argv = read_strings(ctx, argv, &mut budget)?;
    let envp = read_strings(ctx, envp, &mut budget)?;
    let target = exec::Target {
        dirfd,
        path,
        nofollow: flags & AT_SYMLINK_NOFOLLOW != 0,
    };
    exec::exec(ctx, target, argv, envp)
}

pub fn execve(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    exec_common(ctx, AT_FDCWD, a[0], a[1], a[2], 0)
}

pub fn execveat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    exec_common(ctx, a[0], a[1], a[2], a[3], a[4])
}
