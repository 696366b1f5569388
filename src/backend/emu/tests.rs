//! Tests of the unicorn backend (`emu/`).

use super::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A vCPU spinning in `b .` at EL1 (MMU off) is stopped by a kick from another
/// thread, repeatedly; an HVC exits with its immediate and PC past it.
#[test]
fn kick_interrupts_a_spinning_vcpu_and_hvc_exits() {
    let mut mem = vec![0u8; 64 << 10].into_boxed_slice();
    let hvc7_then_spin: [u32; 2] = [0xd400_0002 | (7 << 5), 0x1400_0000]; // hvc #7; b .
    for (i, w) in hvc7_then_spin.iter().enumerate() {
        mem[0x1000 + 4 * i..0x1000 + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    let vm = Emu.create_vm().unwrap();
    // SAFETY: `mem` outlives the VM and its vCPU: it is dropped only after the vCPU thread
    // is joined.
    unsafe { vm.map_memory(0, mem.as_mut_ptr(), mem.len()).unwrap() };
    let (ktx, krx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut v = vm.create_vcpu().unwrap();
        v.set_reg(Reg::Pstate, 0x3c5).unwrap();
        v.set_reg(Reg::Pc, 0x1000).unwrap();
        assert_eq!(v.run().unwrap(), VcpuExit::Hvc(7));
        assert_eq!(v.reg(Reg::Pc).unwrap(), 0x1004);
        ktx.send(v.kicker()).unwrap();
        for _ in 0..20 {
            assert_eq!(v.run().unwrap(), VcpuExit::Kicked);
            assert_eq!(v.reg(Reg::Pc).unwrap(), 0x1004);
        }
    });
    let k = krx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.is_finished() && Instant::now() < deadline {
        k.kick();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(t.is_finished(), "kicks did not stop the vCPU");
    t.join().unwrap();
    drop(mem);
}

/// run_with answers HVCs inside the engine: the handler sees each exit in order with
/// PC past the HVC, its register writes reach the guest, a kick made while it runs is
/// reported as `Kicked` before the next guest instruction, `Leave` returns, and a
/// handler panic comes out of `run_with`.
#[test]
fn run_with_handles_exits_in_the_hook() {
    let mut mem = vec![0u8; 64 << 10].into_boxed_slice();
    // hvc #1; add x1, x0, #1; hvc #2; hvc #3; b .
    let code: [u32; 5] = [
        0xd400_0002 | (1 << 5),
        0x9100_0401,
        0xd400_0002 | (2 << 5),
        0xd400_0002 | (3 << 5),
        0x1400_0000,
    ];
    for (i, w) in code.iter().enumerate() {
        mem[0x1000 + 4 * i..0x1000 + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    let vm = Emu.create_vm().unwrap();
    // SAFETY: `mem` outlives the VM and its vCPU (the test ends only after the vCPU
    // thread has stopped).
    unsafe { vm.map_memory(0, mem.as_mut_ptr(), mem.len()).unwrap() };
    std::thread::spawn(move || {
        let mut v = vm.create_vcpu().unwrap();
        v.set_reg(Reg::Pstate, 0x3c5).unwrap();
        v.set_reg(Reg::Pc, 0x1000).unwrap();
        let kicker = v.kicker();
        let mut seen = Vec::new();
        v.run_with(&mut |v, exit| {
            seen.push((exit, v.reg(Reg::Pc).unwrap(), v.reg(Reg::X(1)).unwrap()));
            match exit {
                VcpuExit::Hvc(1) => v.set_reg(Reg::X(0), 41).unwrap(),
                // Returns at once (the vCPU is not running guest code).
                VcpuExit::Hvc(2) => kicker.kick(),
                _ => return Flow::Leave,
            }
            Flow::Resume
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (VcpuExit::Hvc(1), 0x1004, 0),
                (VcpuExit::Hvc(2), 0x100c, 42),
                (VcpuExit::Kicked, 0x100c, 42),
            ]
        );
        // The next run goes on from there; a panic in the hook propagates.
        let r = catch_unwind(AssertUnwindSafe(|| {
            v.run_with(&mut |_, exit| panic!("exit {exit:?}")).ok()
        }));
        let msg = r.unwrap_err();
        assert_eq!(msg.downcast_ref::<String>().unwrap(), "exit Hvc(3)");
        assert_eq!(v.reg(Reg::Pc).unwrap(), 0x1010);
    })
    .join()
    .unwrap();
    drop(mem);
}
