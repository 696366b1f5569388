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
