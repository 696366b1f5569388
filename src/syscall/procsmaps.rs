//! `/proc/<pid>/smaps` and `smaps_rollup` of the guest, in Linux 6.x's layout: each
//! `maps` line followed by its figures. Resident pages come from the host's residency
//! of the guest RAM behind a mapping (`mincore`); every page is mapped once (Pss = Rss),
//! anonymous pages count as private dirty and file pages as private clean (which of them
//! the guest has written is not tracked), nothing is swapped, locked or huge. The infra
//! reserve is its one `---p` line with nothing resident, as the guest can touch none of
//! it.

use std::fmt::Write as _;

use super::Ctx;

/// One maps line's figures, in bytes.
#[derive(Default, Clone, Copy)]
struct Figures {
    size: u64,
    rss: u64,
    anon: u64,
    file: u64,
}

/// Parses a maps line's range, permissions and inode.
fn parse(line: &str) -> Option<(u64, u64, &str, bool)> {
    let mut it = line.split_whitespace();
    let (a, b) = it.next()?.split_once('-')?;
    let perms = it.next()?;
    let _off = it.next()?;
    let _dev = it.next()?;
    let ino: u64 = it.next()?.parse().ok()?;
    let named = it.next().is_some_and(|n| n.starts_with('/'));
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
        perms,
        ino != 0 || named,
    ))
}

fn kb(out: &mut String, key: &str, bytes: u64) {
    let _ = writeln!(out, "{:<16}{:>8} kB", format!("{key}:"), bytes / 1024);
}

fn figures_block(out: &mut String, f: Figures, rollup: bool) {
    if !rollup {
        kb(out, "Size", f.size);
        kb(out, "KernelPageSize", 4096);
        kb(out, "MMUPageSize", 4096);
    }
    kb(out, "Rss", f.rss);
    kb(out, "Pss", f.rss);
    kb(out, "Pss_Dirty", f.anon);
    if rollup {
        kb(out, "Pss_Anon", f.anon);
        kb(out, "Pss_File", f.file);
        kb(out, "Pss_Shmem", 0);
    }
    kb(out, "Shared_Clean", 0);
    kb(out, "Shared_Dirty", 0);
    kb(out, "Private_Clean", f.file);
    kb(out, "Private_Dirty", f.anon);
    kb(out, "Referenced", f.rss);
    kb(out, "Anonymous", f.anon);
    for k in [
        "KSM",
        "LazyFree",
        "AnonHugePages",
        "ShmemPmdMapped",
        "FilePmdMapped",
        "Shared_Hugetlb",
        "Private_Hugetlb",
        "Swap",
        "SwapPss",
        "Locked",
    ] {
        kb(out, k, 0);
    }
}

/// The kernel's VmFlags mnemonics for a mapping with `perms` (`rwxp`/`rwxs`).
fn vm_flags(perms: &str, stack: bool) -> String {
    let p = perms.as_bytes();
    let mut f = Vec::new();
    if p[0] == b'r' {
        f.push("rd");
    }
    if p[1] == b'w' {
        f.push("wr");
    }
    if p[2] == b'x' {
        f.push("ex");
    }
    if p[3] == b's' {
        f.push("sh");
    }
    f.extend(["mr", "mw", "me"]);
    if p[3] == b's' {
        f.push("ms");
    }
    if stack {
        f.push("gd");
    }
    if p[3] == b'p' && p[1] == b'w' {
        f.push("ac");
    }
    let mut s = f.join(" ");
    s.push(' ');
    s
}

/// `smaps` (rollup false) or `smaps_rollup` of the guest.
pub fn generate(ctx: &Ctx, rollup: bool) -> Vec<u8> {
    let sysroot = ctx.fs().sysroot.clone();
    let maps = super::procfs::maps(&ctx.proc.mm(), sysroot.as_deref());
    let maps = String::from_utf8_lossy(&maps).into_owned();
    let mut out = String::new();
    let mut total = Figures::default();
    let (mut first, mut last) = (None, 0);
    for line in maps.lines() {
        let Some((start, end, perms, file)) = parse(line) else {
            continue;
        };
        let size = end - start;
        let rss = if perms.starts_with("---") {
            0
        } else {
            super::procgen::resident(ctx, start, size)
        };
        let f = Figures {
            size,
            rss,
            anon: if file { 0 } else { rss },
            file: if file { rss } else { 0 },
        };
        total.rss += f.rss;
        total.anon += f.anon;
        total.file += f.file;
        first.get_or_insert(start);
        last = end;
        if !rollup {
            out.push_str(line);
            out.push('\n');
            figures_block(&mut out, f, false);
            let _ = writeln!(out, "{:<16}{:>8}", "THPeligible:", 0);
            let _ = writeln!(
                out,
                "VmFlags: {}",
                vm_flags(perms, line.ends_with("[stack]"))
            );
        }
    }
    if rollup {
        let head = format!(
            "{:08x}-{:08x} ---p 00000000 00:00 0 ",
            first.unwrap_or(0),
            last
        );
        let _ = writeln!(out, "{head:<73}[rollup]");
        figures_block(&mut out, total, true);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_aligned_as_linux_prints_them() {
        let mut s = String::new();
        kb(&mut s, "Rss", 8192);
        kb(&mut s, "KernelPageSize", 4096);
        assert_eq!(
            s,
            "Rss:                   8 kB\nKernelPageSize:        4 kB\n"
        );
        assert_eq!(vm_flags("r-xp", false), "rd ex mr mw me ");
        assert_eq!(vm_flags("rw-p", true), "rd wr mr mw me gd ac ");
        let (a, b, p, f) = parse("00400000-00401000 r-xp 00000000 08:01 42    /bin/x").unwrap();
        assert_eq!((a, b, p, f), (0x400000, 0x401000, "r-xp", true));
    }
}
