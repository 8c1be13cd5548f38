//! A process-relative monotonic clock in nanoseconds.
//!
//! Task states carry "since when" timestamps that are written on hot paths (every poll of a tracked
//! future), so they are kept as plain `u64`s that fit in atomics instead of `Instant`s.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the first time leakcheck looked at the clock in this process.
pub(crate) fn now() -> u64 {
    let nanos = epoch().elapsed().as_nanos();
    // 2^64 ns is 584 years of process uptime; saturate rather than wrap.
    u64::try_from(nanos).unwrap_or(u64::MAX)
}
