//! The initial process stack: argc, argv, envp and the auxiliary vector, laid out as
//! Linux's `create_elf_tables` does for AArch64.

use super::ram::GuestRam;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Linux's AArch64 signal frame minimum without SVE (arch/arm64 `signal_minsigstksz`).
pub const MINSIGSTKSZ: u64 = 5120;

/// Auxv entries whose values are strings or bytes placed on the stack by the builder.
pub struct StackInput<'a> {
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    pub execfn: &'a [u8],
    pub random: [u8; 16],
    /// (type, value) pairs, without AT_RANDOM / AT_PLATFORM / AT_EXECFN / AT_NULL.
    pub auxv: &'a [(u64, u64)],
}

/// Where the last stack built put the argument and environment strings and the auxv:
/// `[arg_start, arg_end, env_start, env_end, auxv_start, auxv_end, sp]` (what Linux keeps in
/// the mm for /proc/<pid>/cmdline, environ and auxv). One guest process per host process,
/// so one slot; execve builds a new stack and replaces it.
static SPANS: std::sync::Mutex<[u64; 7]> = std::sync::Mutex::new([0; 7]);

/// The spans recorded by the last [`build`].
pub fn spans() -> [u64; 7] {
    *SPANS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes the stack below `top` and returns the initial SP (16-byte aligned).
pub fn build(ram: &GuestRam, top: u64, input: &StackInput) -> u64 {
    let mut sp = top;
    let push_bytes = |sp: &mut u64, b: &[u8], nul: bool| -> u64 {
        let len = b.len() as u64 + u64::from(nul);
        *sp -= len;
        ram.write(*sp, b);
        if nul {
            ram.write(*sp + b.len() as u64, &[0]);
        }
        *sp
    };
    let execfn = push_bytes(&mut sp, input.execfn, true);
    // Strings are pushed last-first so that they lie in order in memory, as Linux does.
    let push_all = |sp: &mut u64, strings: &[Vec<u8>]| -> Vec<u64> {
        let mut ptrs: Vec<u64> = strings
            .iter()
            .rev()
            .map(|s| push_bytes(sp, s, true))
            .collect();
        ptrs.reverse();
        ptrs
    };
    let envp = push_all(&mut sp, input.envp);
    let argv = push_all(&mut sp, input.argv);
    let platform = push_bytes(&mut sp, b"aarch64", true);
    sp &= !15;
    let random = push_bytes(&mut sp, &input.random, false);

    let mut aux: Vec<(u64, u64)> = input.auxv.to_vec();
    aux.push((AT_RANDOM, random));
    aux.push((AT_PLATFORM, platform));
    aux.push((AT_EXECFN, execfn));
    aux.push((AT_NULL, 0));

    let words = 1 + argv.len() + 1 + envp.len() + 1 + aux.len() * 2;
    sp -= words as u64 * 8;
    sp &= !15;
    let arg_start = argv.first().copied().unwrap_or(execfn);
    let env_start = envp.first().copied().unwrap_or(execfn);
    let auxv_start = sp + 8 * (1 + argv.len() as u64 + 1 + envp.len() as u64 + 1);
    *SPANS.lock().unwrap_or_else(|p| p.into_inner()) = [
        arg_start,
        env_start,
        env_start,
        execfn,
        auxv_start,
        auxv_start + 16 * aux.len() as u64,
        sp,
    ];
    let mut w = sp;
    let mut put = |v: u64| {
        ram.write_u64(w, v);
        w += 8;
    };
    put(argv.len() as u64);
    argv.iter().for_each(|&a| put(a));
    put(0);
    envp.iter().for_each(|&e| put(e));
    put(0);
    for (k, v) in aux {
        put(k);
        put(v);
    }
    sp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_linux_abi() {
        let ram = GuestRam::new(1 << 20).unwrap();
        let argv = [b"prog".to_vec(), b"a1".to_vec()];
        let envp = [b"K=V".to_vec()];
        let sp = build(
            &ram,
            1 << 20,
            &StackInput {
                argv: &argv,
                envp: &envp,
                execfn: b"/bin/prog",
                random: [7; 16],
                auxv: &[(AT_PAGESZ, 4096)],
            },
        );
        assert_eq!(sp % 16, 0);
        assert_eq!(ram.read_u64(sp), 2);
        let a0 = ram.read_u64(sp + 8);
        let mut b = [0u8; 5];
        ram.read(a0, &mut b);
        assert_eq!(&b, b"prog\0");
        assert_eq!(ram.read_u64(sp + 24), 0);
        let e0 = ram.read_u64(sp + 32);
        let mut e = [0u8; 4];
        ram.read(e0, &mut e);
        assert_eq!(&e, b"K=V\0");
        assert_eq!(ram.read_u64(sp + 40), 0);
        assert_eq!(ram.read_u64(sp + 48), AT_PAGESZ);
        assert_eq!(ram.read_u64(sp + 56), 4096);
        assert_eq!(ram.read_u64(sp + 64), AT_RANDOM);
    }
}
