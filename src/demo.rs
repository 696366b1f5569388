//! The embedded demo guest (`elfuse --demo`): a tiny static AArch64 ELF assembled at run
//! time, so the demo needs no cross toolchain. It writes a greeting with `write(2)`, asks
//! `uname(2)` for the machine name and prints it, and exits with status 0 — every call
//! an `SVC` that the EL1 shim forwards to the host with `HVC #5`.

use dynasmrt::{aarch64::Assembler, dynasm, DynasmApi, DynasmLabelApi};

pub const LOAD_ADDR: u64 = 0x40_0000;
const EHDR: usize = 64;
const PHDR: usize = 56;

const GREETING: &[u8] =
    b"Hello from an AArch64 guest! This line went SVC -> EL1 shim -> HVC #5 -> host write(2).\n";
const MACHINE: &[u8] = b"uname(2) inside the guest says the machine is: ";

fn code() -> Vec<u8> {
    let mut ops = Assembler::new().expect("assembler");
    dynasm!(ops
        ; .arch aarch64
        // write(1, greeting, len)
        ; mov x0, 1
        ; adr x1, >greeting
        ; mov x2, GREETING.len() as u64
        ; mov x8, 64
        ; svc 0
        // write(1, machine-prefix, len)
        ; mov x0, 1
        ; adr x1, >machine
        ; mov x2, MACHINE.len() as u64
        ; mov x8, 64
        ; svc 0
        // uname(sp - 400)
        ; sub sp, sp, 400
        ; mov x0, sp
        ; mov x8, 160
        ; svc 0
        // x1 = utsname.machine (offset 4 * 65), x2 = strlen(x1)
        ; add x1, sp, 260
        ; mov x2, 0
        ; strlen:
        ; ldrb w3, [x1, x2]
        ; cbz w3, >done
        ; add x2, x2, 1
        ; b <strlen
        ; done:
        // append '\n' and write(1, machine, len + 1)
        ; mov w3, 10
        ; strb w3, [x1, x2]
        ; add x2, x2, 1
        ; mov x0, 1
        ; mov x8, 64
        ; svc 0
        // exit_group(0)
        ; mov x0, 0
        ; mov x8, 94
        ; svc 0
        ; brk 0
        ; greeting:
        ; .bytes GREETING
        ; machine:
        ; .bytes MACHINE
    );
    ops.finalize().expect("finalize demo").to_vec()
}

/// The complete ELF image.
pub fn image() -> Vec<u8> {
    let code = code();
    let total = (EHDR + PHDR + code.len()) as u64;
    let entry = LOAD_ADDR + (EHDR + PHDR) as u64;
    let mut e = Vec::with_capacity(total as usize);
    // ELF header
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&entry.to_le_bytes());
    e.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    e.extend_from_slice(&(EHDR as u16).to_le_bytes());
    e.extend_from_slice(&(PHDR as u16).to_le_bytes());
    e.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    e.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // PT_LOAD, R+X, the whole file at LOAD_ADDR
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&5u32.to_le_bytes());
    e.extend_from_slice(&0u64.to_le_bytes());
    e.extend_from_slice(&LOAD_ADDR.to_le_bytes());
    e.extend_from_slice(&LOAD_ADDR.to_le_bytes());
    e.extend_from_slice(&total.to_le_bytes());
    e.extend_from_slice(&total.to_le_bytes());
    e.extend_from_slice(&0x1000u64.to_le_bytes());
    e.extend_from_slice(&code);
    e
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_is_a_valid_aarch64_exec() {
        let img = super::image();
        let elf = crate::guest::loader::parse(&img).unwrap();
        assert_eq!(elf.entry, super::LOAD_ADDR + 120);
        assert_eq!(elf.program_headers.len(), 1);
    }
}
