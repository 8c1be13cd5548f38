//! One check: wait for a scope's survivors to finish, then report those that did not.
//!
//! The grace wait never sleep-polls. It reads the exit epoch, looks at the survivors, and sleeps
//! until a tracked task exits or the deadline passes, so it returns the moment the last survivor
//! ends. An async variant does the same without blocking the runtime it runs on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::census::UntrackedWatch;
use super::ignore_file::{self, IgnoreFile};
use crate::config::{self, Mode};
use crate::context;
use crate::options::Options;
use crate::os::LiveStackBudget;
use crate::plain_threads;
use crate::registry::{exit_signal, ExitSubscription, Scope, Shared, TaskRecord};
use crate::report::{LeakReport, Site};
use crate::vocab::TaskId;

/// Whether a survivor counts, and if not, what forgave it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Counts,
    IgnoredByOptions,
    /// Hidden by the project's rule at this index.
    HiddenByRule(usize),
}

/// How long a plain thread that is about to exit (joined, in its thread-local teardown) gets
/// before a check spends time reading its stacks to classify it.
pub(super) const SETTLE: Duration = Duration::from_millis(5);

/// One check in progress: what it looks at, and what it has seen.
pub(crate) struct Check {
    pub(super) options: Options,
    pub(super) scope: Arc<Scope>,
    /// The task running the check and its ancestors: alive by definition, never leaks.
    pub(super) excluded: Vec<TaskId>,
    pub(super) untracked: Option<UntrackedWatch>,
    /// Every survivor seen while waiting, to count those that exited: ascending, no repeats,
    /// so that a scan of 100,000 survivors merges into it in one linear pass.
    pub(super) seen: Vec<TaskId>,
    /// Verdicts of the ignore patterns and the project's rules, per task (see
    /// `tracked_survivors` for when a verdict is decided again).
    pub(super) ignored: HashMap<TaskId, Verdict>,
    /// The check's one live-stack budget: the `ignore_function` and idle-pool verdicts of the
    /// wait (tracked tasks and untracked threads) and the report's stacks all draw on it.
    pub(super) live_stacks: LiveStackBudget,
    /// The project's ignore file, if it has one.
    pub(super) project: Option<&'static IgnoreFile>,
    /// Per rule of the project's file, the tracked tasks of the last scan it hid.
    pub(super) hidden_by_rule: HashMap<usize, usize>,
    /// Plain threads' verdicts: whether a one-time initialiser started them (then they belong
    /// to the process, and where), per task. Decided once a survivor has had [`SETTLE`] to
    /// finish, since it takes symbolising its creation stack.
    pub(super) process_global: HashMap<TaskId, Option<Option<Site>>>,
    /// Where the process-global threads alive at the last classifying scan were started.
    pub(super) global_sites: Vec<String>,
    /// When the check began, to know when [`SETTLE`] is over.
    pub(super) began: Instant,
    /// Whether the last scan left threads to classify once [`SETTLE`] is over.
    pub(super) unclassified: bool,
    /// Whether a report is handed back as it is, for the caller to deliver once it has added to
    /// it (see [`Check::deferring_delivery`]).
    pub(super) deferred: bool,
}

impl Check {
    /// Starts a check of the current scope.
    ///
    /// # Panics
    ///
    /// With a malformed `LEAKCHECK*` variable or project ignore file, naming it and what was
    /// expected. `#[track_caller]`: the panic points at the guard or test that asked for the
    /// check, as a failed check does (see `outcome`).
    #[track_caller]
    pub(crate) fn new(options: Options) -> Check {
        match Check::try_new(options) {
            Ok(check) => check,
            Err(error) => panic!("leakcheck: {error}"),
        }
    }

    /// Starts a check of the current scope, or says why it cannot run: a malformed `LEAKCHECK*`
    /// variable or project ignore file, named with what was expected.
    pub(crate) fn try_new(options: Options) -> Result<Check, String> {
        let config = config::get();
        config.validity()?;
        let scope = context::current_scope();
        if !options.process_wide {
            // A process-wide check (verify_test_main's) looks at every scope: it must not make
            // the harness threads main creates afterwards the main thread's.
            plain_threads::checking(&scope);
        }
        if options.capture_backtraces {
            scope.capture_backtraces();
        }
        let excluded = context::current_task()
            .map(|task| {
                std::iter::once(task.id)
                    .chain(task.ancestors().map(|a| a.id))
                    .collect()
            })
            .unwrap_or_default();
        let project = match config.mode {
            Mode::Off => None,
            _ => match ignore_file::project() {
                Ok(project) => project,
                Err(error) => {
                    return Err(format!("the project's ignore file cannot be used: {error}"))
                }
            },
        };
        let untracked =
            (config.mode != Mode::Off).then(|| UntrackedWatch::start(&options, project));
        Ok(Check {
            options,
            scope,
            excluded,
            untracked,
            seen: Vec::new(),
            ignored: HashMap::new(),
            live_stacks: LiveStackBudget::new(),
            project,
            hidden_by_rule: HashMap::new(),
            process_global: HashMap::new(),
            global_sites: Vec::new(),
            began: Instant::now(),
            unclassified: false,
            deferred: false,
        })
    }

    /// Hands a report back undelivered (no JSON file written, the `LEAKCHECK` mode not applied
    /// yet), for a caller that adds to it and then delivers it with `check::deliver`.
    #[cfg(feature = "tokio")]
    pub(crate) fn deferring_delivery(mut self) -> Check {
        self.deferred = true;
        self
    }

    /// How long the grace wait may sleep before it looks again: until the deadline, or until
    /// [`SETTLE`] is over if threads are left to classify then.
    fn next_look(&self, deadline: Instant) -> Instant {
        if self.unclassified {
            deadline.min(self.began + SETTLE)
        } else {
            deadline
        }
    }

    /// How long survivors are waited for: the timeout, but never less than [`SETTLE`] where
    /// plain threads are tracked. A plain thread's record exits in its thread-local destructors,
    /// which `join` waits for but `std::thread::scope` does not (it returns once the threads'
    /// closures have), so right after a scope its threads can still be alive for a moment.
    pub(crate) fn grace(&self) -> Duration {
        let timeout = self.options.timeout.unwrap_or(config::get().timeout);
        if plain_threads::tracking() == plain_threads::Tracking::FromCreation {
            timeout.max(SETTLE)
        } else {
            timeout
        }
    }

    /// Whether an empty scan that started at `start` can be trusted. Shards are read one after
    /// the other, so a task that spawned a child into an already-read shard and then exited
    /// before its own shard was read would hide the child; that spawn moved the subscription's
    /// count of spawns (see `ExitSignal`), so such a scan is repeated (until the deadline, after
    /// which an empty scan is taken as it is).
    fn scan_was_settled(
        subscription: &ExitSubscription<'_>,
        start: ScanStart,
        deadline: Instant,
    ) -> bool {
        (subscription.epoch() == start.epoch && subscription.spawns() == start.spawns)
            || Instant::now() >= deadline
    }

    /// Waits (blocking this thread) for the survivors to finish, then reports those left.
    pub(crate) fn run_blocking(self) -> Result<(), LeakReport> {
        self.run_blocking_with(ReportExtras::default())
    }

    /// [`run_blocking`](Self::run_blocking), with what a runtime adds to the report.
    pub(crate) fn run_blocking_with(mut self, extras: ReportExtras) -> Result<(), LeakReport> {
        let config = config::get();
        if config.mode == Mode::Off {
            return Ok(());
        }
        let start = Instant::now();
        let deadline = deadline_after(start, self.grace());
        let subscription = exit_signal().subscribe();
        let (survivors, waited) = loop {
            let scan = ScanStart::of(&subscription);
            let survivors = self.tracked_survivors(Scan::Waiting);
            if survivors.is_empty() && self.untracked_settled(deadline) {
                if Self::scan_was_settled(&subscription, scan, deadline) {
                    return Ok(());
                }
                continue;
            }
            if subscription.exited_unseen(&survivors) {
                continue;
            }
            drop(survivors);
            let look = self.next_look(deadline);
            if (!subscription.wait(scan.epoch, look) && look >= deadline)
                || Instant::now() >= deadline
            {
                // The wait is over; what follows is the verdict.
                let waited = start.elapsed();
                break (self.tracked_survivors(Scan::Final), waited);
            }
        };
        drop(subscription);
        self.conclude(survivors, waited, extras)
    }

    /// The async counterpart of [`run_blocking`](Self::run_blocking): waits without blocking the
    /// thread, so that on a single-threaded runtime the survivors can still run and finish.
    /// `sleep` is a timer future for the grace period (the runtime's, or leakcheck's own). `extras` adds what only the
    /// runtime knows, computed at the deadline. `recheck` is polled while waiting: when it is
    /// ready, the survivors and extras are looked at again, for what a runtime counts but cannot
    /// signal the end of (plain tokio tasks on stable tokio).
    pub(crate) async fn run_async<S: std::future::Future<Output = ()>>(
        mut self,
        sleep: S,
        mut extras: impl FnMut(&[Shared<TaskRecord>]) -> ReportExtras,
        mut recheck: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<()>,
    ) -> Result<(), LeakReport> {
        let config = config::get();
        if config.mode == Mode::Off {
            return Ok(());
        }
        let start = Instant::now();
        let deadline = deadline_after(start, self.grace());
        let subscription = exit_signal().subscribe();
        let mut sleep = std::pin::pin!(sleep);
        loop {
            let scan = ScanStart::of(&subscription);
            let survivors = self.tracked_survivors(Scan::Waiting);
            let pending_extras = extras(&survivors);
            if survivors.is_empty()
                && pending_extras.counts_no_leaks()
                && self
                    .untracked
                    .as_mut()
                    .is_none_or(|watch| watch.settle_briefly(deadline, &self.live_stacks))
            {
                if Self::scan_was_settled(&subscription, scan, deadline) {
                    return Ok(());
                }
                continue;
            }
            if subscription.exited_unseen(&survivors) {
                continue;
            }
            drop(survivors);
            let timed_out = std::future::poll_fn(|cx| {
                if subscription.poll_exit(scan.epoch, cx.waker()) || recheck(cx).is_ready() {
                    return std::task::Poll::Ready(false);
                }
                sleep.as_mut().poll(cx).map(|()| true)
            })
            .await;
            if timed_out || Instant::now() >= deadline {
                // The wait is over; what follows is the verdict.
                let waited = start.elapsed();
                let survivors = self.tracked_survivors(Scan::Final);
                let extras = extras(&survivors);
                drop(subscription);
                return self.conclude(survivors, waited, extras);
            }
        }
    }
}

/// `start + grace`, or a deadline too far away to matter when that is beyond what `Instant` can
/// hold (a grace period of `Duration::MAX`, say): never a panic.
fn deadline_after(start: Instant, grace: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    start
        .checked_add(grace)
        .or_else(|| start.checked_add(CENTURY))
        .unwrap_or(start)
}

/// Which scan of the survivors a check is making.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// One of the scans during the grace period.
    Waiting,
    /// The scan at the deadline, whose survivors are reported.
    Final,
}

/// What a runtime adds to a report: counts of tasks it knows and leakcheck does not, and
/// remarks.
#[derive(Default)]
pub(crate) struct ReportExtras {
    pub(crate) unidentified_async: usize,
    pub(crate) notes: Vec<String>,
    /// How long the survivors were waited for before the check began (a runtime's shutdown).
    pub(crate) waited_before: Duration,
}

impl ReportExtras {
    /// Whether the runtime counts no task beyond those leakcheck knows (notes and stacks may
    /// still be there: they only describe).
    fn counts_no_leaks(&self) -> bool {
        self.unidentified_async == 0
    }
}

/// What a look at the survivors starts from: the exit signal's epoch and count of spawns, read
/// before it, to tell afterwards whether it can be trusted.
#[derive(Clone, Copy)]
struct ScanStart {
    epoch: u64,
    spawns: u64,
}

impl ScanStart {
    fn of(subscription: &ExitSubscription<'_>) -> ScanStart {
        ScanStart {
            epoch: subscription.epoch(),
            spawns: subscription.spawns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_beyond_what_instant_holds_is_a_far_deadline_not_a_panic() {
        let start = Instant::now();
        assert!(deadline_after(start, Duration::MAX) > start + Duration::from_secs(3600));
        assert_eq!(
            deadline_after(start, Duration::from_secs(2)),
            start + Duration::from_secs(2)
        );
    }
}
