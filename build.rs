//! Links the `elfuse` binary as a non-PIE executable on x86_64 Linux: the vendored engine
//! carries large tables of pointers, and resolving them at link time instead of at every
//! start (R_X86_64_RELATIVE relocations) is a measurable part of start-up.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo:rustc-link-arg-bin=elfuse=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
