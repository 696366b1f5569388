//! The `[vvar]` page: the data the vDSO's clock fast path reads, written only by the host.
//!
//! One 4 KiB page mapped EL0 read-only immediately *before* the vDSO image (the code finds
//! it PC-relatively). All fields are little-endian; the host writes them with atomic
//! stores, the vDSO reads them under the seqlock `SEQ`.
//!
//! | offset | size | field | meaning |
//! |---:|---:|---|---|
//! | 0x00 | u32 | `SEQ` | seqlock: odd while the host rewrites the anchor |
//! | 0x04 | u32 | `SEEDED` | 0 unseeded, 2 being seeded, 1 seeded (three-state CAS by the host) |
//! | 0x08 | u32 | `ATTENTION` | non-zero: the vDSO always takes the `SVC` fallback |
//! | 0x0c | u32 | `SHIFT` | ns = (ticks × `MULT`) >> `SHIFT` |
//! | 0x10 | u64 | `MULT` | see `SHIFT`; derived from CNTFRQ_EL0 by the host |
//! | 0x18 | u64 | `CYCLE_LAST` | CNTVCT_EL0 at the anchor |
//! | 0x20 | u64 | `MAX_DELTA` | anchors older than this many ticks are stale ([`max_delta`]) |
//! | 0x28 | u64 | `RES_HIRES` | clock_getres of the counter-backed clocks, ns |
//! | 0x30 | u64 | `RES_COARSE` | clock_getres of the *_COARSE clocks, ns |
//! | 0x40 | 4 × (u64 sec, u64 nsec) | `CLOCKS` | anchor values: REALTIME, MONOTONIC, BOOTTIME, MONOTONIC_RAW |
//!
//! The host reads every anchored clock *before* it reads CNTVCT_EL0, so an interpolated
//! time is never ahead of the host clock it stands for (beyond one counter tick), and a
//! re-anchor never makes a clock go backwards.

pub const SEQ: u32 = 0x00;
pub const SEEDED: u32 = 0x04;
pub const ATTENTION: u32 = 0x08;
pub const SHIFT: u32 = 0x0c;
pub const MULT: u32 = 0x10;
pub const CYCLE_LAST: u32 = 0x18;
pub const MAX_DELTA: u32 = 0x20;
pub const RES_HIRES: u32 = 0x28;
pub const RES_COARSE: u32 = 0x30;
pub const CLOCKS: u32 = 0x40;
/// Size of one anchor slot in `CLOCKS`: (sec, nsec).
pub const CLOCK_SLOT: u32 = 16;

/// Size of the page (and the distance from the vvar page to the vDSO image).
pub const VVAR_SIZE: u64 = 4096;

/// `SEEDED` states.
pub const UNSEEDED: u32 = 0;
pub const SEEDED_OK: u32 = 1;
pub const SEEDING: u32 = 2;

/// The clocks the fast path serves, in `CLOCKS` slot order (Linux clock ids).
pub const ANCHORED: [i32; 4] = [
    CLOCK_REALTIME,
    CLOCK_MONOTONIC,
    CLOCK_BOOTTIME,
    CLOCK_MONOTONIC_RAW,
];

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_REALTIME_COARSE: i32 = 5;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;

/// The anchor slot of a Linux clock id, if the fast path serves it.
pub fn slot_of(clock: i32) -> Option<usize> {
    ANCHORED.iter().position(|&c| c == clock)
}

/// Staleness limit: an anchor older than 2^22 counter ticks (67 ms at the emulated CPU's
/// 62.5 MHz, 175 ms at Apple Silicon's 24 MHz) makes the vDSO fall back to the `SVC`, and
/// the host re-anchors. It bounds both the drift between the counter and the host clocks
/// and the size of `delta × MULT` (see [`mult_shift`]).
pub const STALE_TICKS: u64 = 1 << 22;

/// `MAX_DELTA` for a `freq_hz` counter: [`STALE_TICKS`], and under one second of ticks
/// (the vDSO normalises nanoseconds with a single conditional subtraction).
pub fn max_delta(freq_hz: u64) -> u64 {
    STALE_TICKS.min(freq_hz)
}

/// The (mult, shift) pair converting `delta` ticks of a `freq_hz` counter to nanoseconds as
/// `(delta * mult) >> shift`, with `delta * mult` guaranteed not to overflow for
/// `delta < STALE_TICKS`. The largest shift ≤ 32 that fits gives the best precision.
pub fn mult_shift(freq_hz: u64) -> Option<(u64, u32)> {
    if freq_hz == 0 {
        return None;
    }
    let limit = u64::MAX / STALE_TICKS;
    (0..=32u32).rev().find_map(|shift| {
        let mult = ((1_000_000_000u128 << shift) / freq_hz as u128) as u64;
        (mult > 0 && mult <= limit).then_some((mult, shift))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mult_shift_is_precise_and_cannot_overflow() {
        for freq in [62_500_000u64, 24_000_000, 19_200_000, 1_000_000_000, 1] {
            let (mult, shift) = mult_shift(freq).unwrap();
            assert!(mult.checked_mul(STALE_TICKS - 1).is_some(), "freq {freq}");
            // One second of ticks converts to one second within 1 ppm.
            let ns = ((freq as u128 * mult as u128) >> shift) as i128;
            assert!((ns - 1_000_000_000).abs() <= 1000, "freq {freq}: {ns}");
        }
        assert_eq!(mult_shift(62_500_000), Some((16 << 32, 32)));
        assert_eq!(mult_shift(0), None);
    }

    /// The vDSO's one-step nanosecond carry needs every accepted delta under a second.
    #[test]
    fn max_delta_is_under_a_second() {
        for freq in [62_500_000u64, 24_000_000, 4_000_000, 1_000_000_000, 1000, 1] {
            let (mult, shift) = mult_shift(freq).unwrap();
            let d = max_delta(freq);
            assert!(d <= STALE_TICKS);
            let ns = ((d - 1) as u128 * mult as u128) >> shift;
            assert!(ns < 1_000_000_000, "freq {freq}: {ns}");
        }
    }
}
