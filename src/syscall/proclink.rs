//! What readlink shows for a magic link of the guest's /proc (`procnode::Link`): a guest
//! fd's file as the guest names it (or its kind's own text: `anon_inode:[...]`,
//! `pipe:[...]`), the program, the cwd, the root.

use super::procnode::{thread_self, Link, Node};
use super::Ctx;
use crate::errno::Errno;

/// What `readlink` shows for a link.
pub fn link_text(ctx: &Ctx, link: &Link) -> Result<Vec<u8>, Errno> {
    match link {
        Link::Fd(n) => {
            let f = ctx.file(*n as u64).map_err(|_| Errno::ENOENT)?;
            if let Some(link) = super::kinds::registry::of(&f).and_then(|(k, _)| k.proc_link(ctx)) {
                return Ok(link);
            }
            let host = std::fs::read_link(format!("/proc/self/fd/{}", f.raw()))
                .map_err(|e| Errno::from_io(&e))?;
            let b = std::os::unix::ffi::OsStrExt::as_bytes(host.as_os_str());
            if b.first() == Some(&b'/') {
                Ok(super::hostdir::guest_view_of(ctx, &host))
            } else {
                // pipe:[ino], socket:[ino], anon_inode:[...]
                Ok(b.to_vec())
            }
        }
        Link::Exe => Ok(super::hostdir::guest_exe(ctx)),
        Link::Cwd => {
            let cwd = std::env::current_dir().map_err(|e| Errno::from_io(&e))?;
            Ok(super::hostdir::guest_view_of(ctx, &cwd))
        }
        Link::Root => Ok(b"/".to_vec()),
        Link::ThreadSelf => Ok(thread_self(ctx)),
    }
}

/// What readlink shows for link node `node`.
pub fn readlink(ctx: &Ctx, node: &Node) -> Result<Vec<u8>, Errno> {
    match node {
        Node::Link(_, l) => link_text(ctx, l),
        Node::Peer(pid, inner) if super::procnode::is_link(inner) => {
            super::procremote::link_text(*pid, inner)
        }
        _ => Err(Errno::EINVAL),
    }
}
