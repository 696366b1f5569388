//! ns per call of hot syscalls and vDSO calls under elfuse and under qemu-aarch64-static,
//! measured in the same run, alternating, and reported as medians with the ratio
//! elfuse/qemu as a markdown table.
//!
//!     cargo bench --bench hotcalls                 # 5 runs of each
//!     ELFUSE_BENCH_RUNS=9 cargo bench --bench hotcalls
//!     ELFUSE_BENCH_CLOCK=cpu cargo bench --bench hotcalls
//!
//! `ELFUSE_BENCH_CLOCK=cpu` times with the guest process's CPU time (the host process's,
//! all its threads, under both runners) instead of CLOCK_MONOTONIC: on a shared, loaded
//! machine wall time mostly measures the wait for a core.
//!
//! The guest is `benches/guest/hotcalls.c`, built with `aarch64-linux-gnu-gcc -O2 -static`
//! (glibc) into `<target>/bench-guests/` when its source is newer than the binary.

mod guestbench;

fn main() {
    let Some(prog) = guestbench::build_guest("hotcalls", &[]) else {
        return;
    };
    let cpu_clock = std::env::var("ELFUSE_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    let args: &[&str] = if cpu_clock { &["1", "cpu"] } else { &[] };
    let clock = if cpu_clock {
        "process CPU time"
    } else {
        "wall time"
    };
    guestbench::compare(
        &prog,
        args,
        5,
        &format!("hotcalls: ns per call ({clock})"),
        "ns",
    );
}
