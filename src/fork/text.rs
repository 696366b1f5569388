//! Host code pages for native fork children.
//!
//! Linux's fork copies no page-table entries for a file mapping that has never had a
//! private page (no `anon_vma`): the child faults in every page of elfuse's and libc's
//! code it runs, a few hundred faults per child (about a fifth of a short child's
//! life, perf). Giving each such mapping one private page (a write under a brief
//! mprotect, then the old protection back) makes fork copy the parent's entries, so a
//! child starts with the code the parent has used already mapped.

/// Call once at start-up, before any thread exists (mprotect of code other threads run
/// would be a race). Failures (a W^X policy refusing the write) leave the mapping as it
/// was: children then fault its pages in as before.
#[cfg(target_os = "linux")]
pub fn map_code_into_children() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        // Private, file-backed (a path after offset, dev and inode), not writable.
        let path = f.nth(3).unwrap_or("");
        if !path.starts_with('/') || perms.as_bytes().get(1) != Some(&b'-') || !perms.ends_with('p')
        {
            continue;
        }
        let Some((lo, hi)) = range.split_once('-') else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        else {
            continue;
        };
        let mut prot = libc::PROT_READ;
        if perms.as_bytes().get(2) == Some(&b'x') {
            prot |= libc::PROT_EXEC;
        }
        let p = lo as *mut u8;
        // SAFETY: a whole mapping of this process, single-threaded; the byte written is
        // the byte read, and the protection is restored before anything else runs.
        unsafe {
            if libc::mprotect(p.cast(), hi - lo, prot | libc::PROT_WRITE) != 0 {
                continue;
            }
            std::ptr::write_volatile(p, std::ptr::read_volatile(p));
            libc::mprotect(p.cast(), hi - lo, prot);
        }
    }
}
