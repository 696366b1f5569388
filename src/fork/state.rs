//! The spawn fork path's handover: what `elfuse --fork-child` needs besides the child's
//! [`Inheritance`] (`inherit`): the forking vCPU's registers ([`CpuState`], X0 = 0 for the
//! child), the RAM snapshot (a memfd, passed first) and the address space's VMAs, page-table
//! allocator and brk. Encoded by the fork-IPC actor ([`Handover::encode`]), decoded by the
//! child ([`Handover::decode`]); host fds travel as SCM_RIGHTS and the payload refers to
//! them by index (`wire`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::inherit::{Inheritance, Received};
use super::wire::{index_of, Dec, Enc, Passed};
use crate::backend::{Reg, SysReg, Vcpu};
use crate::guest::mm::{Backing, MmParts, ShmSeg, Vma, VmaName};

/// A VMA's backing tag on the wire for a SysV shm attachment (Anon is u64::MAX, a file
/// its fd's index).
const SHM_BACKING: u64 = u64::MAX - 1;

/// System registers handed over (the child's CONTEXTIDR_EL1 is its own tid).
pub const SYS_REGS: [SysReg; 14] = [
    SysReg::MairEl1,
    SysReg::TcrEl1,
    SysReg::Ttbr0El1,
    SysReg::CpacrEl1,
    SysReg::CntkctlEl1,
    SysReg::VbarEl1,
    SysReg::SpEl1,
    SysReg::ElrEl1,
    SysReg::SpsrEl1,
    SysReg::SpEl0,
    SysReg::TpidrEl0,
    SysReg::TpidrroEl0,
    SysReg::TpidrEl1,
    SysReg::SctlrEl1,
];

/// The calling vCPU's registers, stopped at its syscall `HVC #5`.
#[derive(Clone, Debug)]
pub struct CpuState {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    pub fpcr: u64,
    pub fpsr: u64,
    pub v: [u128; 32],
    pub sys: [u64; SYS_REGS.len()],
}

impl CpuState {
    pub fn read(vcpu: &dyn Vcpu) -> crate::backend::Result<CpuState> {
        let mut s = CpuState {
            x: [0; 31],
            pc: vcpu.reg(Reg::Pc)?,
            pstate: vcpu.reg(Reg::Pstate)?,
            fpcr: vcpu.reg(Reg::Fpcr)?,
            fpsr: vcpu.reg(Reg::Fpsr)?,
            v: [0; 32],
            sys: [0; SYS_REGS.len()],
        };
        for (i, x) in s.x.iter_mut().enumerate() {
            *x = vcpu.reg(Reg::X(i as u8))?;
        }
        for (i, v) in s.v.iter_mut().enumerate() {
            *v = vcpu.simd_reg(i as u8)?;
        }
        for (i, r) in SYS_REGS.iter().enumerate() {
            s.sys[i] = vcpu.sys_reg(*r)?;
        }
        Ok(s)
    }

    pub fn set_sys(&mut self, r: SysReg, v: u64) {
        if let Some(i) = SYS_REGS.iter().position(|&x| x == r) {
            self.sys[i] = v;
        }
    }

    /// Loads the state into a fresh vCPU (PSTATE first: it selects the current SP;
    /// SCTLR_EL1 last, as at start-up).
    pub fn write(&self, vcpu: &mut dyn Vcpu, tid: i32) -> crate::backend::Result<()> {
        vcpu.set_reg(Reg::Pstate, self.pstate)?;
        for (i, r) in SYS_REGS.iter().enumerate() {
            vcpu.set_sys_reg(*r, self.sys[i])?;
        }
        vcpu.set_sys_reg(SysReg::ContextidrEl1, tid as u64)?;
        for (i, x) in self.x.iter().enumerate() {
            vcpu.set_reg(Reg::X(i as u8), *x)?;
        }
        for (i, v) in self.v.iter().enumerate() {
            vcpu.set_simd_reg(i as u8, *v)?;
        }
        vcpu.set_reg(Reg::Fpcr, self.fpcr)?;
        vcpu.set_reg(Reg::Fpsr, self.fpsr)?;
        vcpu.set_reg(Reg::Pc, self.pc)
    }
}

/// A spawned child's state: `H` as in [`Inheritance`].
pub struct Handover<H> {
    pub cpu: CpuState,
    /// The RAM snapshot (fd 0 on the wire).
    pub ram: OwnedFd,
    pub mm: MmParts,
    pub inh: Inheritance<H>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fork handover: bad {what}"),
    )
}

impl Handover<RawFd> {
    /// The payload and the host fds to pass with it (open as long as `self` is).
    pub fn encode(&self) -> (Vec<u8>, Vec<RawFd>) {
        let mut e = Enc::default();
        let mut fds = vec![self.ram.as_raw_fd()];
        let cpu = &self.cpu;
        cpu.x.iter().for_each(|&x| e.u64(x));
        for v in [cpu.pc, cpu.pstate, cpu.fpcr, cpu.fpsr] {
            e.u64(v);
        }
        cpu.v.iter().for_each(|&v| e.u128(v));
        cpu.sys.iter().for_each(|&v| e.u64(v));
        encode_mm(&self.mm, &mut e, &mut fds);
        self.inh.encode(&mut e, &mut fds);
        (e.0, fds)
    }
}

fn encode_mm(mm: &MmParts, e: &mut Enc, fds: &mut Vec<RawFd>) {
    e.u64(mm.vmas.len() as u64);
    for (start, v) in &mm.vmas {
        e.u64(*start);
        e.u64(v.end);
        e.u64(v.prot.into());
        e.bool(v.shared);
        match &v.backing {
            Backing::Anon => e.u64(u64::MAX),
            Backing::File { fd, offset } => {
                e.u64(index_of(fds, fd.as_raw_fd()));
                e.u64(*offset);
            }
            Backing::Shm { seg, offset } => {
                // The attachment's identity (its fragments share it), then the segment.
                e.u64(SHM_BACKING);
                e.u64(Arc::as_ptr(seg) as u64);
                e.u64(seg.id as u32 as u64);
                e.u64(seg.size);
                e.bool(seg.writable);
                e.u64(*offset);
            }
        }
        match &v.name {
            VmaName::None => e.u64(0),
            VmaName::Heap => e.u64(1),
            VmaName::Stack => e.u64(2),
            VmaName::Path(p) => {
                e.u64(3);
                e.bytes(p.as_bytes());
            }
        }
    }
    let (root, next, free) = &mm.pt;
    e.u64(*root);
    e.u64(*next);
    e.u64(free.len() as u64);
    free.iter().for_each(|&f| e.u64(f));
    e.u64(mm.brk_start);
    e.u64(mm.brk);
}

impl Handover<OwnedFd> {
    /// Decodes what [`Handover::encode`] wrote; `fds` are the received host fds, in order.
    pub fn decode(payload: &[u8], fds: Vec<OwnedFd>) -> io::Result<Handover<OwnedFd>> {
        let mut d = Dec::new(payload);
        let fds = Passed::new(fds);
        let mut x = [0u64; 31];
        for v in x.iter_mut() {
            *v = d.u64()?;
        }
        let (pc, pstate, fpcr, fpsr) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
        let mut v = [0u128; 32];
        for r in v.iter_mut() {
            *r = d.u128()?;
        }
        let mut sys = [0u64; SYS_REGS.len()];
        for r in sys.iter_mut() {
            *r = d.u64()?;
        }
        let cpu = CpuState {
            x,
            pc,
            pstate,
            fpcr,
            fpsr,
            v,
            sys,
        };
        let mm = decode_mm(&mut d, &fds)?;
        let inh = Received::decode(&mut d, &fds)?;
        Ok(Handover {
            cpu,
            ram: fds.owned(0)?,
            mm,
            inh,
        })
    }
}

fn decode_mm(d: &mut Dec, fds: &Passed) -> io::Result<MmParts> {
    let nvma = d.u64()?;
    let mut vmas = Vec::new();
    let mut attaches: std::collections::HashMap<u64, Arc<ShmSeg>> = Default::default();
    for _ in 0..nvma {
        let (start, end, prot, shared) = (d.u64()?, d.u64()?, d.u64()? as u32, d.bool()?);
        let backing = match d.u64()? {
            u64::MAX => Backing::Anon,
            SHM_BACKING => {
                let (key, id, size, writable) = (d.u64()?, d.u64()? as i32, d.u64()?, d.bool()?);
                let seg = attaches
                    .entry(key)
                    .or_insert_with(|| Arc::new(ShmSeg { id, size, writable }));
                Backing::Shm {
                    seg: seg.clone(),
                    offset: d.u64()?,
                }
            }
            i => Backing::File {
                fd: fds.shared(i)?,
                offset: d.u64()?,
            },
        };
        let name = match d.u64()? {
            0 => VmaName::None,
            1 => VmaName::Heap,
            2 => VmaName::Stack,
            3 => VmaName::Path(String::from_utf8_lossy(&d.bytes()?).as_ref().into()),
            _ => return Err(bad("vma name")),
        };
        let vma = Vma {
            end,
            prot,
            shared,
            backing,
            name,
        };
        vmas.push((start, vma));
    }
    let (root, next, nfree) = (d.u64()?, d.u64()?, d.u64()?);
    let mut free = Vec::new();
    for _ in 0..nfree {
        free.push(d.u64()?);
    }
    Ok(MmParts {
        vmas,
        pt: (root, next, free),
        brk_start: d.u64()?,
        brk: d.u64()?,
    })
}
