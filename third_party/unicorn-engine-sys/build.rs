// elfuse: replaces upstream unicorn-engine-sys 2.1.5's build.rs (see PATCHES).
//
// - No bindgen: the bindings are committed (bindings/rust/sys/src/bindings.rs).
// - No pkg-config: a system libunicorn is never used; the vendored, patched source is always built.
// - No cmake: the C sources are compiled directly with the `cc` crate, with the file lists and
//   flags of upstream CMakeLists.txt for `UNICORN_ARCH=aarch64` on an x86_64 Linux host.
//   The headers that cmake obtains by running qemu/configure are committed in `generated/`.
// - AArch64 target only (no 32-bit arm target; UNICORN_HAS_ARM stays undefined).
use std::{
    env,
    path::{Path, PathBuf},
};

/// CMakeLists.txt `UNICORN_SRCS` (the `unicorn` library), plus our uc_ctl wrappers.
const UNICORN_SRCS: &[&str] = &[
    "uc.c",
    "qemu/softmmu/vl.c",
    "qemu/hw/core/cpu.c",
    "elfuse_helpers.c",
];

/// CMakeLists.txt `UNICORN_ARCH_COMMON` + the `aarch64-softmmu` sources. Largest files first so
/// the parallel build keeps both cores busy until the end.
const AARCH64_SRCS: &[&str] = &[
    "qemu/target/arm/translate-sve.c",
    "qemu/target/arm/translate-a64.c",
    "qemu/target/arm/sve_helper.c",
    "qemu/target/arm/helper.c",
    "qemu/target/arm/translate.c",
    "qemu/fpu/softfloat.c",
    "qemu/tcg/tcg-op-gvec.c",
    "qemu/target/arm/vec_helper.c",
    "qemu/target/arm/neon_helper.c",
    "qemu/tcg/tcg.c",
    "qemu/accel/tcg/cputlb.c",
    "qemu/target/arm/helper-a64.c",
    "qemu/tcg/tcg-op.c",
    "qemu/target/arm/cpu.c",
    "qemu/target/arm/m_helper.c",
    "qemu/target/arm/vfp_helper.c",
    "qemu/target/arm/crypto_helper.c",
    "qemu/target/arm/iwmmxt_helper.c",
    "qemu/target/arm/op_helper.c",
    "qemu/target/arm/pauth_helper.c",
    "qemu/accel/tcg/translate-all.c",
    "qemu/accel/tcg/tcg-runtime-gvec.c",
    "qemu/exec.c",
    "qemu/softmmu/memory.c",
    "qemu/tcg/optimize.c",
    "qemu/target/arm/debug_helper.c",
    "qemu/target/arm/cpu64.c",
    "qemu/target/arm/unicorn_aarch64.c",
    "qemu/tcg/tcg-op-vec.c",
    "qemu/accel/tcg/cpu-exec.c",
    "qemu/target/arm/tlb_helper.c",
    "qemu/target/arm/psci.c",
    "qemu/accel/tcg/tcg-runtime.c",
    "qemu/accel/tcg/tcg-all.c",
    "qemu/accel/tcg/translator.c",
    "qemu/accel/tcg/cpu-exec-common.c",
    "qemu/softmmu/cpus.c",
    "qemu/softmmu/ioport.c",
    "qemu/softmmu/memory_mapping.c",
    "qemu/softmmu/unicorn_vtlb.c",
    "qemu/exec-vary.c",
];

/// CMakeLists.txt `UNICORN_COMMON_SRCS` (non-MSVC).
const COMMON_SRCS: &[&str] = &[
    "list.c",
    "glib_compat/glib_compat.c",
    "glib_compat/gtestutils.c",
    "glib_compat/garray.c",
    "glib_compat/gtree.c",
    "glib_compat/grand.c",
    "glib_compat/glist.c",
    "glib_compat/gmem.c",
    "glib_compat/gpattern.c",
    "glib_compat/gslice.c",
    "qemu/util/bitmap.c",
    "qemu/util/bitops.c",
    "qemu/util/crc32c.c",
    "qemu/util/cutils.c",
    "qemu/util/getauxval.c",
    "qemu/util/guest-random.c",
    "qemu/util/host-utils.c",
    "qemu/util/osdep.c",
    "qemu/util/qdist.c",
    "qemu/util/qemu-timer.c",
    "qemu/util/qemu-timer-common.c",
    "qemu/util/range.c",
    "qemu/util/qht.c",
    "qemu/util/pagesize.c",
    "qemu/util/cacheinfo.c",
    "qemu/crypto/aes.c",
    "qemu/util/oslib-posix.c",
    "qemu/util/qemu-thread-posix.c",
];

/// Flags shared by every unicorn target on non-MSVC x86_64 (CMakeLists.txt `include_directories`
/// and `add_compile_options`, CMAKE_BUILD_TYPE=Release, C_STANDARD 11 with extensions).
fn base(root: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.include(root.join("generated"))
        .include(root.join("glib_compat"))
        .include(root.join("qemu"))
        .include(root.join("qemu/include"))
        .include(root.join("include"))
        .include(root.join("qemu/tcg"))
        .include(root.join("qemu/tcg/i386"))
        // Always optimised: QEMU's TCG is unusably slow at -O0. No C debug info (build time).
        .opt_level(3)
        .debug(false)
        .define("NDEBUG", None)
        .pic(true)
        .warnings(false)
        .extra_warnings(false)
        .flag("-w")
        .flag("-m64")
        .flag("-mcx16")
        .define("_GNU_SOURCE", None)
        .define("_FILE_OFFSET_BITS", "64")
        .define("_LARGEFILE_SOURCE", None)
        .flag("-std=gnu11")
        .cargo_metadata(false);
    b
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    watch_source_files(&root);

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap();
    assert!(
        arch == "x86_64" && os == "linux",
        "this vendored unicorn-engine-sys only supports x86_64 Linux hosts (its qemu configure \
         output in generated/ is for x86_64-linux); target is {arch}-{os}"
    );
    if env::var_os("CARGO_FEATURE_ARCH_AARCH64").is_none() {
        println!(
            "cargo:warning=unicorn-engine-sys (elfuse copy) always builds the AArch64 target only"
        );
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut objects = Vec::new();

    // `unicorn` library: uc.c, vl.c, hw/core/cpu.c (+ elfuse_helpers.c).
    let mut unicorn = base(&root);
    unicorn.define("UNICORN_HAS_ARM64", None);
    unicorn.files(UNICORN_SRCS.iter().map(|f| root.join(f)));
    objects.extend(unicorn.compile_intermediates());

    // `aarch64-softmmu` library: TCG core + target/arm, symbols renamed by aarch64.h.
    let mut target = base(&root);
    target
        .define("NEED_CPU_H", None)
        .flag("-include")
        .flag("aarch64.h")
        .include(root.join("generated/aarch64-softmmu"))
        .include(root.join("qemu/target/arm"));
    target.files(AARCH64_SRCS.iter().map(|f| root.join(f)));
    objects.extend(target.compile_intermediates());

    // `unicorn-common` library: glib_compat, util, crypto (hidden visibility, as in cmake).
    let mut common = base(&root);
    common
        .define("UNICORN_HAS_ARM64", None)
        .flag("-fvisibility=hidden");
    common.files(COMMON_SRCS.iter().map(|f| root.join(f)));
    objects.extend(common.compile_intermediates());

    // One archive with everything (what cmake's bundle step produces as libunicorn.a).
    cc::Build::new()
        .objects(&objects)
        .cargo_metadata(false)
        .compile("unicorn");

    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static=unicorn");
    println!("cargo:rustc-link-lib=pthread");
    println!("cargo:rustc-link-lib=m");
}

fn watch_source_files(root: &Path) {
    println!("cargo:rerun-if-changed=build.rs");
    for f in ["uc.c", "list.c", "elfuse_helpers.c"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    for dir in ["qemu", "include", "glib_compat", "generated"] {
        register_dir_files(&root.join(dir));
    }
}

fn register_dir_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                register_dir_files(&path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("c" | "h" | "inc")
            ) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
