//! The registered guest file kinds, one line each, and the lookups over them: a
//! description's kind (`of`) and a kind by its fork-wire name (`named`). Above the kinds
//! themselves, which know only the trait (`kinds`).

use std::sync::Arc;

use elfuse_actors::fdtable::{FileKind, OpenFile, Synthetic};

use super::{kind, GuestFile, Kind, Watchers};
use crate::errno::Errno;
use crate::syscall::procdir::{ProcDir, ProcMem};
use crate::syscall::sfd::signalfd::SignalFd;

/// Every emulated kind (one line each).
pub static KINDS: &[Kind] = &[
    kind::<SignalFd>("signalfd", SignalFd::adopt),
    kind::<ProcDir>("proc-dir", not_inherited),
    kind::<ProcMem>("proc-mem", not_inherited),
];

/// For kinds whose [`GuestFile::fork_state`] is always None.
fn not_inherited(_: &[u8], _: &mut Watchers) -> Result<Arc<dyn Synthetic>, Errno> {
    Err(Errno::EINVAL)
}

/// The kind of an emulated description, and its entry in [`KINDS`].
pub fn of(f: &OpenFile) -> Option<(&dyn GuestFile, &'static Kind)> {
    let FileKind::Synthetic(s) = &f.kind else {
        return None;
    };
    let any = s.as_any();
    KINDS.iter().find_map(|k| (k.cast)(any).map(|g| (g, k)))
}

/// The registered kind named `name` (the fork wire).
pub fn named(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}
