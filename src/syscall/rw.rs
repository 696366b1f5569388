//! read, readv, write: an emulated description's own (its guest file kind, `kinds`),
//! else its host fd's (`io`).

use super::{Ctx, SysResult};

/// read(2): an emulated description's own read (`kinds`), else its host fd's (`io::read`).
pub fn read(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if let Some((k, _)) = super::kinds::registry::of(&f) {
        if let Some(r) = k.read(ctx, a[1], super::iov::rw_len(a[2]), None) {
            return r;
        }
    }
    drop(f);
    super::io::read(ctx, a)
}

/// readv(2): as read(2).
pub fn readv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if let Some((k, _)) = super::kinds::registry::of(&f) {
        if let Some(r) = k.readv(ctx, a[1], a[2]) {
            return r;
        }
    }
    drop(f);
    super::io::readv(ctx, a)
}

/// write(2): as read(2) (a signalfd has no write: EINVAL, as on Linux).
pub fn write(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if let Some((k, _)) = super::kinds::registry::of(&f) {
        if let Some(r) = k.write(ctx, a[1], super::iov::rw_len(a[2]), None) {
            return r;
        }
    }
    drop(f);
    super::io::write(ctx, a)
}
