//! A cheap monotonic clock in nanoseconds, for the "since when" of task states.
//!
//! Task states are stamped on hot paths (every spawn, every poll of a tracked future), and reports
//! show durations of milliseconds to minutes. So on Linux this reads the kernel's coarse monotonic
//! clock, which costs a few nanoseconds instead of the ~30 of a precise reading, at the price of a
//! resolution of one scheduler tick (1–4 ms). Readings fit in atomics as plain `u64`s. Precise
//! timing (the grace period, `waited`) uses `Instant`.

/// Nanoseconds on a monotonic clock with an arbitrary origin; only differences are meaningful.
#[cfg(all(target_os = "linux", not(miri)))]
#[inline]
pub(crate) fn now() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every Linux
    // since 2.6.32 and is served by the vDSO without a system call.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut time) };
    debug_assert_eq!(result, 0);
    (time.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(time.tv_nsec as u64)
}

/// Nanoseconds on a monotonic clock with an arbitrary origin; only differences are meaningful.
/// (Also under Miri, which does not emulate the coarse clock.)
#[cfg(any(not(target_os = "linux"), miri))]
pub(crate) fn now() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let nanos = ORIGIN.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_monotonic_and_moves() {
        let start = super::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = super::now();
        assert!(later >= start + 10_000_000, "{start} → {later}");
    }
}
