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

/// A reading of [`now`] kept in 32 bits, in units of 2^20 ns (about a millisecond, about the
/// coarse clock's own resolution), for the timestamps every task record carries: with them a
/// record fits in two cache lines. [`Stamp::expand`] restores a reading to the unit, as long as
/// it is less than 2^51 ns (26 days) old; a task alive for longer reads younger by a multiple of
/// that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp(u32);

/// Nanoseconds per [`Stamp`] unit, as a shift.
const STAMP_SHIFT: u32 = 20;

impl Stamp {
    #[inline]
    pub(crate) fn of(reading: u64) -> Stamp {
        Stamp((reading >> STAMP_SHIFT) as u32)
    }

    /// The stamp as a `u32` that is never zero, for atomics where zero means "never".
    #[inline]
    pub(crate) fn to_nonzero_bits(self) -> u32 {
        self.0.max(1)
    }

    /// The stamp stored by [`to_nonzero_bits`](Self::to_nonzero_bits); `None` for zero.
    #[inline]
    pub(crate) fn from_nonzero_bits(bits: u32) -> Option<Stamp> {
        (bits != 0).then_some(Stamp(bits))
    }

    /// The reading this stamp was made from (to the unit), given a reading `now` taken after it.
    /// A stamp from after `now` (another thread stamped between our reading and our load of the
    /// stamp) expands to `now`'s unit: it is that recent.
    pub(crate) fn expand(self, now: u64) -> u64 {
        let now_in_units = now >> STAMP_SHIFT << STAMP_SHIFT;
        let units_ago = Stamp::of(now).0.wrapping_sub(self.0);
        if units_ago > i32::MAX as u32 {
            return now_in_units; // Newer than `now`.
        }
        now_in_units.saturating_sub(u64::from(units_ago) << STAMP_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn a_stamp_expands_to_its_reading_to_the_unit() {
        let unit = 1 << 20;
        for reading in [0, 5 * unit + 7, 1 << 40, (1 << 53) + 3 * unit] {
            let stamp = Stamp::of(reading);
            for later in [
                reading,
                reading + unit,
                reading + 1_000 * unit,
                reading + (1 << 50),
            ] {
                let expanded = stamp.expand(later);
                assert!(
                    expanded <= reading && reading - expanded < unit,
                    "{reading} {later}"
                );
            }
        }
        // Stamped on another thread after this one read `now`: that recent, not 26 days ago.
        let now = 1 << 40;
        let just_after = Stamp::of(now + unit);
        assert_eq!(just_after.expand(now), now >> 20 << 20);
        assert_eq!(Stamp::from_nonzero_bits(0), None);
        assert_eq!(
            Stamp::from_nonzero_bits(Stamp::of(9 * unit).to_nonzero_bits()),
            Some(Stamp::of(9 * unit))
        );
    }

    #[test]
    fn is_monotonic_and_moves() {
        let start = super::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = super::now();
        assert!(later >= start + 10_000_000, "{start} → {later}");
    }
}
