//! The NUMA calls beyond the memory policies (`sched`): migrate_pages, move_pages and
//! set_mempolicy_home_node, answered by the host for the guest's memory (guest RAM is one
//! host mapping, so a guest page has one host address; a single-node host answers as a
//! single-node Linux does).

use super::sched::{nodes_arg, read_nodes};
use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;
use crate::guest::layout::PAGE_SIZE;

fn raw(nr: libc::c_long, a: [libc::c_long; 6]) -> SysResult {
    // SAFETY: callers pass integers and pointers to host buffers they own, sized as the
    // call requires.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// Whether `pid` names the calling process (0 or its own pid).
fn own(ctx: &Ctx, pid: u64) -> bool {
    let pid = pid as i32;
    pid == 0 || pid == ctx.proc.pid
}

/// migrate_pages(pid, maxnode, old_nodes, new_nodes): the host's, for any process (all of
/// a host process's memory moves, the guest's included).
pub fn migrate_pages(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut old = read_nodes(ctx, a[2], a[1])?;
    let mut new = read_nodes(ctx, a[3], a[1])?;
    let pid = a[0] as i32 as libc::c_long;
    raw(
        libc::SYS_migrate_pages,
        [
            pid,
            a[1] as libc::c_long,
            nodes_arg(&mut old),
            nodes_arg(&mut new),
            0,
            0,
        ],
    )
}

/// move_pages(pid, count, pages, nodes, status, flags) of the calling process: each guest
/// page becomes its host address (an unmapped one an address the host has nothing at,
/// whose status is -EFAULT as on Linux).
pub fn move_pages(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MPOL_MF_MOVE: u64 = 2;
    const MPOL_MF_MOVE_ALL: u64 = 4;
    let (count, flags) = (a[1] as usize, a[5] as i32 as i64 as u64);
    if flags & !(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL) != 0 {
        return Err(Errno::EINVAL);
    }
    if !own(ctx, a[0]) {
        // Another process's pages are at its own guest addresses, not ours.
        return Err(Errno::EPERM);
    }
    if count > (1 << 20) {
        return Err(Errno::E2BIG);
    }
    let pages = ctx.read_bytes(a[2], count * 8)?;
    let mut host_pages: Vec<u64> = pages
        .chunks_exact(8)
        .map(|c| {
            let va = u64::from_le_bytes(c.try_into().unwrap_or_default());
            if ctx
                .proc
                .mm
                .check_user(va & !(PAGE_SIZE - 1), 1, false)
                .is_ok()
            {
                ctx.proc.ram.ptr(va, 1) as u64
            } else {
                // Never mapped in the host's lower half past its user space: -EFAULT.
                !(PAGE_SIZE - 1)
            }
        })
        .collect();
    let mut nodes = if a[3] == 0 {
        Vec::new()
    } else {
        ctx.read_bytes(a[3], count * 4)?
    };
    let mut status = vec![0u8; count * 4];
    ctx.user_slice(a[4], count * 4, true)?;
    let nodes_p = if a[3] == 0 {
        0
    } else {
        nodes.as_mut_ptr() as libc::c_long
    };
    let r = raw(
        libc::SYS_move_pages,
        [
            0,
            count as libc::c_long,
            host_pages.as_mut_ptr() as libc::c_long,
            nodes_p,
            status.as_mut_ptr() as libc::c_long,
            flags as libc::c_long,
        ],
    )?;
    ctx.write_bytes(a[4], &status)?;
    Ok(r)
}

/// set_mempolicy_home_node(start, len, home_node, flags): the host's over the range's
/// host addresses.
pub fn set_mempolicy_home_node(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (start, len) = (a[0], a[1]);
    if start & (PAGE_SIZE - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.checked_add(PAGE_SIZE - 1).ok_or(Errno::EINVAL)? & !(PAGE_SIZE - 1);
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    // Outside the guest's address space there is nothing: the host sees an empty range.
    let (hs, hl) = if len > 0 && end <= crate::guest::layout::INFRA_BASE {
        (ctx.proc.ram.ptr(start, len as usize) as libc::c_long, len)
    } else {
        (0, 0)
    };
    raw(
        libc::SYS_set_mempolicy_home_node,
        [
            hs,
            hl as libc::c_long,
            a[2] as libc::c_long,
            a[3] as libc::c_long,
            0,
            0,
        ],
    )
}
