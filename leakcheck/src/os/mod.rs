//! What the operating system knows about threads: identities, the thread list, live stacks.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

mod status;
#[cfg(not(target_os = "linux"))]
mod unsupported;

pub(crate) use status::ThreadStatus;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::*;

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long one thread gets to answer a live-stack request.
pub(crate) const LIVE_STACK_TIMEOUT: Duration = Duration::from_millis(200);

/// The time one check may spend taking live stacks, in total, and the one way the crate takes a
/// live stack. Each request may wait for a thread that does not answer, and a report may ask
/// dozens of threads: without a budget, a report of unresponsive threads could take a minute to
/// build. The budget counts the time spent in requests, not the time between them, so that the
/// `ignore_function` verdicts of a long grace period are bounded too without running out
/// merely because the period is long.
pub(crate) struct LiveStackBudget {
    spent: Cell<Duration>,
}

impl LiveStackBudget {
    /// The total for one check.
    pub(crate) const TOTAL: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> LiveStackBudget {
        LiveStackBudget {
            spent: Cell::new(Duration::ZERO),
        }
    }

    /// The live stack of `thread`, if the budget allows one more request.
    pub(crate) fn take(&self, thread: &ThreadHandle) -> Result<Vec<usize>, String> {
        let remaining = Self::TOTAL.saturating_sub(self.spent.get());
        if remaining.is_zero() {
            return Err(format!(
                "not taken: this check already spent {:?} on live stacks of other threads",
                Self::TOTAL
            ));
        }
        let start = Instant::now();
        let stack = live_stack(thread, remaining.min(LIVE_STACK_TIMEOUT));
        self.spent.set(self.spent.get() + start.elapsed());
        stack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_spent_budget_takes_no_more_stacks() {
        let budget = LiveStackBudget::new();
        let me = ThreadHandle::current();
        if cfg!(target_os = "linux") {
            assert!(budget.take(&me).is_ok());
            assert!(
                budget.spent.get() > Duration::ZERO,
                "the request was counted"
            );
        }
        budget.spent.set(LiveStackBudget::TOTAL);
        let error = budget.take(&me).unwrap_err();
        assert!(
            error.starts_with("not taken: this check already spent 1s"),
            "{error}"
        );
    }
}
