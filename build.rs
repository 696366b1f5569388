//! Links the `elfuse` binary as a non-PIE executable on x86_64 Linux: the vendored engine
//! carries large tables of pointers, and resolving them at link time instead of at every
//! start (R_X86_64_RELATIVE relocations) is a measurable part of start-up. With
//! `-C target-feature=+crt-static` (the static build for binfmt_misc, README) rustc links with
//! `-static-pie`, which `-no-pie` turns into an executable that still names a dynamic loader
//! (PT_INTERP): `-static` makes it a plain static executable.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo:rustc-link-arg-bin=elfuse=-no-pie");
        let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
        if features.split(',').any(|f| f == "crt-static") {
            println!("cargo:rustc-link-arg-bin=elfuse=-static");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
