//! The synthetic vDSO (linux-vdso.so.1) that elfuse maps into every guest.
//!
//! [`build`] produces one small ET_DYN image (see [`elf`]) whose code (see [`code`]) is
//! assembled with dynasm-rs. The loader maps it per process as `[vdso]` with its data page
//! `[vvar]` immediately before it (layout in [`vvar`]) and passes its address as
//! `AT_SYSINFO_EHDR`. Exports, all with version `LINUX_2.6.39`:
//! `__kernel_clock_gettime`, `__kernel_gettimeofday`, `__kernel_clock_getres`,
//! `__kernel_rt_sigreturn`, `__kernel_getcpu`.

pub mod code;
pub mod elf;
pub mod vvar;

/// The symbol version every vDSO entry point carries on AArch64 Linux.
pub const VDSO_VERSION: &str = "LINUX_2.6.39";
/// DT_SONAME of the image.
pub const VDSO_SONAME: &str = "linux-vdso.so.1";

/// The exported symbols, in .dynsym order.
pub const SYMBOLS: [&str; 5] = [
    "__kernel_clock_gettime",
    "__kernel_gettimeofday",
    "__kernel_clock_getres",
    "__kernel_rt_sigreturn",
    "__kernel_getcpu",
];

/// The built image and the offsets the host needs (relative to the image's start).
#[derive(Clone, Debug)]
pub struct VdsoImage {
    pub bytes: Vec<u8>,
    /// `__kernel_rt_sigreturn`: where signal handlers without SA_RESTORER return.
    pub rt_sigreturn: u64,
    /// ELR_EL1 of clock_gettime's fallback `SVC`: the only syscall site whose
    /// clock_gettime may (re-)anchor the vvar clocks.
    pub fallback_ret: u64,
}

impl VdsoImage {
    /// Size of the mapping (whole pages).
    pub fn map_size(&self) -> u64 {
        (self.bytes.len() as u64).div_ceil(vvar::VVAR_SIZE) * vvar::VVAR_SIZE
    }
}

/// Builds the image. `abi_tag` is the kernel version the guest is told (NT_GNU_ABI_TAG).
pub fn build(abi_tag: (u32, u32, u32)) -> VdsoImage {
    let mut text = (0, 0);
    let mut cgt = None;
    let spec = elf::Spec {
        soname: VDSO_SONAME,
        version: VDSO_VERSION,
        abi_tag,
    };
    let bytes = elf::write(&spec, &SYMBOLS, |text_off| {
        let c = code::assemble(text_off);
        text = (text_off, c.rt_sigreturn.start as u64);
        cgt = Some(c.fallback_ret as u64);
        let funcs = [
            c.clock_gettime,
            c.gettimeofday,
            c.clock_getres,
            c.rt_sigreturn,
            c.getcpu,
        ];
        let exports = SYMBOLS
            .iter()
            .zip(funcs)
            .map(|(&name, f)| elf::Export {
                name,
                value: f.start as u64,
                size: (f.end - f.start) as u64,
            })
            .collect();
        (c.bytes, exports)
    });
    VdsoImage {
        bytes,
        rt_sigreturn: text.0 + text.1,
        fallback_ret: text.0 + cgt.expect("code assembled"),
    }
}

#[cfg(test)]
mod tests;
