//! Sockets under elfuse and under qemu-aarch64-static, in the same run, alternating:
//! loopback TCP 1-byte round trip, 64 KiB-chunk throughput, and a unix-socket
//! SCM_RIGHTS round trip (ns per operation; medians and the ratio). The time is the
//! process's CPU time (all its host threads, under both runners): on the shared 2-core
//! machine wall time mostly measures the wait for a core. `ELFUSE_BENCH_CLOCK=wall` for
//! wall time.
//!
//!     cargo bench --bench net                  # 5 runs of each
//!     ELFUSE_BENCH_RUNS=9 cargo bench --bench net
//!
//! The guest is `benches/guest/net.c` (static glibc, two threads; loopback, port 0).

mod guestbench;

fn main() {
    let Some(prog) = guestbench::build_guest("net", &["-pthread"]) else {
        return;
    };
    let wall = std::env::var("ELFUSE_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    let (args, clock): (&[&str], _) = if wall {
        (&[], "wall time")
    } else {
        (&["1", "cpu"], "process CPU time")
    };
    guestbench::compare(
        &prog,
        args,
        5,
        &format!("net: ns per operation ({clock})"),
        "ns",
    );
}
