//! Which sysroot a run uses (the directory absolute guest paths resolve inside first).
//!
//! In order: `--sysroot DIR`; the `ELFUSE_SYSROOT` environment variable; `QEMU_LD_PREFIX`
//! (what qemu-user's `-L` reads, for people switching from qemu). With none of them, a
//! dynamic program whose interpreter (PT_INTERP, e.g. `/lib/ld-linux-aarch64.so.1`) is
//! missing on the host is run with the standard cross location as its sysroot,
//! `/usr/aarch64-linux-gnu`, where Debian's and Ubuntu's `libc6-arm64-cross` put the arm64
//! glibc (`lib/ld-linux-aarch64.so.1`, `lib/libc.so.6`). Empty variables count as unset.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The standard cross location (Debian's libc6-arm64-cross).
pub const CROSS_ROOT: &str = "/usr/aarch64-linux-gnu";

/// The environment variables read, in order of precedence.
pub const ENV_VARS: [&str; 2] = ["ELFUSE_SYSROOT", "QEMU_LD_PREFIX"];

/// The sysroot given explicitly: `option` (from `--sysroot`), else the first non-empty
/// variable of [`ENV_VARS`] read through `env`. A variable naming something other than a
/// directory is an error (one line, naming the variable).
pub fn explicit(
    option: Option<PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<PathBuf>, String> {
    if option.is_some() {
        return Ok(option);
    }
    for var in ENV_VARS {
        match env(var) {
            Some(v) if !v.is_empty() => {
                let dir = PathBuf::from(v);
                if !dir.is_dir() {
                    return Err(format!("{var}={}: not a directory", dir.display()));
                }
                return Ok(Some(dir));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The PT_INTERP path of a 64-bit little-endian ELF image, read from its program headers
/// only (cheaper than a full parse; anything malformed gives None and is left to the
/// loader to report).
pub fn interpreter_of(image: &[u8]) -> Option<&str> {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| Some(u16::from_le_bytes(image.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(image.get(o..o + 8)?.try_into().ok()?));
    if image.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    if phentsize < 56 {
        return None;
    }
    (0..phnum).find_map(|i| {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != PT_INTERP {
            return None;
        }
        let off = usize::try_from(u64_at(ph + 8)?).ok()?;
        let len = usize::try_from(u64_at(ph + 32)?).ok()?;
        let bytes = image.get(off..off.checked_add(len)?)?;
        let bytes = bytes.split(|&b| b == 0).next()?;
        std::str::from_utf8(bytes).ok().filter(|s| !s.is_empty())
    })
}

/// `guest` (absolute) as seen inside `root`.
fn inside(root: &Path, guest: &str) -> PathBuf {
    root.join(guest.trim_start_matches('/'))
}

/// Where the interpreter `interp` of a dynamic program is found, and the sysroot to run
/// with. `sysroot` is the explicit one (if any): the interpreter resolves inside it first,
/// then on the host, as every absolute guest path does. Without an explicit sysroot and
/// with the interpreter missing on the host, `cross_root` (normally [`CROSS_ROOT`]) is
/// tried and becomes the sysroot. The error says every place tried.
pub fn for_interpreter(
    sysroot: Option<&Path>,
    interp: &str,
    cross_root: &Path,
) -> Result<Option<PathBuf>, String> {
    let host = Path::new(interp);
    let mut tried = Vec::new();
    if let Some(root) = sysroot {
        let p = inside(root, interp);
        if p.exists() {
            return Ok(Some(root.to_path_buf()));
        }
        tried.push(format!("{} (the sysroot)", p.display()));
        if host.exists() {
            return Ok(Some(root.to_path_buf()));
        }
        tried.push(format!("{interp} (the host)"));
        return Err(format!(
            "interpreter {interp} not found: tried {}",
            tried.join(", ")
        ));
    }
    if host.exists() {
        return Ok(None);
    }
    tried.push(format!("{interp} (the host)"));
    let p = inside(cross_root, interp);
    if p.exists() {
        return Ok(Some(cross_root.to_path_buf()));
    }
    tried.push(format!("{} (libc6-arm64-cross)", p.display()));
    Err(format!(
        "interpreter {interp} not found: tried {}; give an arm64 root with --sysroot DIR or ELFUSE_SYSROOT=DIR",
        tried.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn precedence() {
        let opt = Some(PathBuf::from("/opt-root"));
        let both = env_of(&[("ELFUSE_SYSROOT", "/"), ("QEMU_LD_PREFIX", "/tmp")]);
        assert_eq!(explicit(opt.clone(), &both).unwrap(), opt);
        assert_eq!(explicit(None, &both).unwrap(), Some(PathBuf::from("/")));
        let qemu = env_of(&[("ELFUSE_SYSROOT", ""), ("QEMU_LD_PREFIX", "/tmp")]);
        assert_eq!(explicit(None, qemu).unwrap(), Some(PathBuf::from("/tmp")));
        assert_eq!(explicit(None, env_of(&[])).unwrap(), None);
        let bad = env_of(&[("QEMU_LD_PREFIX", "/nonexistent-elfuse-root")]);
        assert_eq!(
            explicit(None, bad).unwrap_err(),
            "QEMU_LD_PREFIX=/nonexistent-elfuse-root: not a directory"
        );
    }

    #[test]
    fn reads_pt_interp() {
        // A minimal ELF64 header with one PT_INTERP program header.
        let mut img = vec![0u8; 64 + 56 + 32];
        img[..6].copy_from_slice(b"\x7fELF\x02\x01");
        img[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        img[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        img[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        img[64..68].copy_from_slice(&3u32.to_le_bytes());
        img[64 + 8..64 + 16].copy_from_slice(&120u64.to_le_bytes());
        let path = b"/lib/ld-linux-aarch64.so.1\0";
        img[64 + 32..64 + 40].copy_from_slice(&(path.len() as u64).to_le_bytes());
        img[120..120 + path.len()].copy_from_slice(path);
        assert_eq!(interpreter_of(&img), Some("/lib/ld-linux-aarch64.so.1"));
        img[64] = 1; // PT_LOAD: no interpreter
        assert_eq!(interpreter_of(&img), None);
        assert_eq!(interpreter_of(b"\x7fELF"), None);
        // Truncated: the path runs past the end.
        img[64] = 3;
        img[64 + 32..64 + 40].copy_from_slice(&1000u64.to_le_bytes());
        assert_eq!(interpreter_of(&img), None);
    }

    #[test]
    fn interpreter_lookup() {
        let dir = std::env::temp_dir().join(format!("elfuse-sysroot-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("lib/ld-test.so"), b"").unwrap();
        // Found in the cross root when missing on the host.
        assert_eq!(
            for_interpreter(None, "/lib/ld-test.so", &dir).unwrap(),
            Some(dir.clone())
        );
        // Present on the host: no sysroot needed.
        assert_eq!(for_interpreter(None, "/", &dir).unwrap(), None);
        // Found nowhere: every place tried is named.
        let e = for_interpreter(None, "/lib/ld-nowhere.so", &dir).unwrap_err();
        assert!(e.contains("/lib/ld-nowhere.so (the host)"), "{e}");
        assert!(
            e.contains(&format!("{}/lib/ld-nowhere.so", dir.display())),
            "{e}"
        );
        // An explicit sysroot is searched, then the host; the cross root is not.
        assert_eq!(
            for_interpreter(Some(&dir), "/lib/ld-test.so", Path::new("/x")).unwrap(),
            Some(dir.clone())
        );
        let e = for_interpreter(Some(&dir), "/lib/ld-nowhere.so", &dir).unwrap_err();
        assert!(
            e.contains("(the sysroot)") && !e.contains("libc6-arm64-cross"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
