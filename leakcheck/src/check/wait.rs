//! One check: wait for a scope's survivors to finish, then report those that did not.
//!
//! The grace wait never sleep-polls. It reads the exit epoch, looks at the survivors, and sleeps
//! until a tracked task exits or the deadline passes, so it returns the moment the last survivor
//! ends. An async variant does the same without blocking the runtime it runs on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::census::UntrackedWatch;
use super::ignore_file::{self, IgnoreFile};
use super::{ignore, snapshot};
use crate::config::{self, Mode};
use crate::context;
use crate::options::Options;
use crate::os::LiveStackBudget;
use crate::plain_threads;
use crate::registry::{self, exit_signal, ExitSubscription, Scope, TaskRecord};
use crate::report::{LeakReport, LeakedTask, Site, Stack};
use crate::vocab::{TaskId, TaskKind};

/// One check in progress: what it looks at, and what it has seen.
pub(crate) struct Check {
    options: Options,
    scope: Arc<Scope>,
    /// The task running the check and its ancestors: alive by definition, never leaks.
    excluded: Vec<TaskId>,
    untracked: Option<UntrackedWatch>,
    /// Every survivor seen while waiting, to count those that exited: ascending, no repeats,
    /// so that a scan of 100,000 survivors merges into it in one linear pass.
    seen: Vec<TaskId>,
    /// Verdicts of the ignore patterns and the project's rules, per task (see
    /// `tracked_survivors` for when a verdict is decided again).
    ignored: HashMap<TaskId, Verdict>,
    /// The check's one live-stack budget: the `ignore_function` and idle-pool verdicts of the
    /// wait (tracked tasks and untracked threads) and the report's stacks all draw on it.
    live_stacks: LiveStackBudget,
    /// The project's ignore file, if it has one.
    project: Option<&'static IgnoreFile>,
    /// Per rule of the project's file, the tracked tasks of the last scan it hid.
    hidden_by_rule: HashMap<usize, usize>,
    /// Plain threads' verdicts: whether a one-time initialiser started them (then they belong
    /// to the process, and where), per task. Decided once a survivor has had [`SETTLE`] to
    /// finish, since it takes symbolising its creation stack.
    process_global: HashMap<TaskId, Option<Option<Site>>>,
    /// Where the process-global threads alive at the last classifying scan were started.
    global_sites: Vec<String>,
    /// When the check began, to know when [`SETTLE`] is over.
    began: Instant,
    /// Whether the last scan left threads to classify once [`SETTLE`] is over.
    unclassified: bool,
}

/// Whether a survivor counts, and if not, what forgave it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Counts,
    IgnoredByOptions,
    /// Hidden by the project's rule at this index.
    HiddenByRule(usize),
}

/// How long a plain thread that is about to exit (joined, in its thread-local teardown) gets
/// before a check spends time reading its stacks to classify it.
const SETTLE: Duration = Duration::from_millis(5);

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
        })
    }

    /// Drops the threads that are not this check's leaks whatever their scope: those a one-time
    /// initialiser started (they belong to the process), plain threads that stand for a tracked
    /// task running on them, and (per test) pool threads waiting for a job.
    /// Before [`SETTLE`] is over (except at the deadline), only notes that some are left.
    fn drop_excused(&mut self, tasks: &mut Vec<Arc<TaskRecord>>, scan: Scan) {
        let has_threads = || tasks.iter().any(|t| t.kind == TaskKind::Thread);
        if scan == Scan::Waiting && self.began.elapsed() < SETTLE {
            self.unclassified = has_threads();
            return;
        }
        self.unclassified = false;
        let verdicts = &mut self.process_global;
        let global_sites = &mut self.global_sites;
        global_sites.clear();
        tasks.retain(|task| {
            // Only a plain thread, or a task below one, can have been started by an initialiser:
            // the others need no verdict, and 100,000 async survivors no map entry each.
            if std::iter::once(&**task)
                .chain(task.ancestors())
                .all(|t| t.created.is_none())
            {
                return true;
            }
            let verdict = verdicts
                .entry(task.id)
                .or_insert_with(|| plain_threads::started_by_initialiser(task));
            if let Some(site) = verdict {
                global_sites.push(
                    site.as_ref()
                        .map_or_else(|| "an unknown site".to_owned(), ToString::to_string),
                );
            }
            verdict.is_none()
        });
        // A plain thread running one of leakcheck's tracked tasks (a tracked `spawn_blocking`
        // job on a pool thread) is reported as that task.
        let running_tracked: HashSet<i32> = tasks
            .iter()
            .filter(|task| task.created.is_none())
            .filter_map(|task| Some(task.os_thread.get()?.tid()))
            .collect();
        let per_test = !self.options.process_wide;
        let budget = &self.live_stacks;
        tasks.retain(|task| {
            task.created.is_none()
                || !(task
                    .os_thread
                    .get()
                    .is_some_and(|thread| running_tracked.contains(&thread.tid()))
                    // Idle pool threads are a live runtime's, not this test's; the process-wide
                    // check still sees those of a runtime nobody shut down.
                    || per_test && plain_threads::is_idle_pool_thread(task, budget))
        });
    }

    /// The notes on threads that belong to the process, for a process-wide report: listed, not
    /// failed.
    fn process_global_notes(&self) -> Vec<String> {
        let mut sites = self.global_sites.clone();
        sites.sort();
        let mut notes = Vec::new();
        let mut rest = sites.as_slice();
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|s| *s == first).count();
            notes.push(format!(
                "{same} process-global {} (not a leak): started by a one-time initialiser at {first}",
                if same == 1 { "thread" } else { "threads" }
            ));
            rest = &rest[same..];
        }
        notes
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

    /// Whether an empty scan that started at `epoch` can be trusted. Shards are read one after
    /// the other, so a task that spawned a child into an already-read shard and then exited
    /// before its own shard was read would hide the child; that exit moved the epoch, so such a
    /// scan is repeated (until the deadline, after which an empty scan is taken as it is).
    fn scan_was_settled(
        subscription: &ExitSubscription<'_>,
        epoch: u64,
        deadline: Instant,
    ) -> bool {
        subscription.epoch() == epoch || Instant::now() >= deadline
    }

    /// The tracked tasks that count as leaks if they are still alive at the deadline.
    ///
    /// Verdicts of ignore patterns are remembered per task while waiting. A "not ignored" that
    /// was decided from a stack can change as the task runs (it may not have reached the ignored
    /// function yet), so the final scan decides those again.
    pub(crate) fn tracked_survivors(&mut self, scan: Scan) -> Vec<Arc<TaskRecord>> {
        let mut tasks = if self.options.process_wide {
            registry::all_scopes()
                .iter()
                .flat_map(|scope| scope.live_tasks())
                .collect()
        } else {
            // Always through the shard locks, never a lock-free look at the shards' lengths: the
            // exit signal's no-lost-wake-up argument rests on those locks (see `ExitSignal`).
            self.scope.live_tasks()
        };
        let below = self.options.ignore_below;
        tasks.retain(|task| {
            !task.has_exited()
                && !self.excluded.contains(&task.id)
                && below.is_none_or(|below| task.id >= below)
                && !lost_to_fork(task)
        });
        let options = &self.options;
        let project = self.project;
        let hidden_by_rule = &mut self.hidden_by_rule;
        hidden_by_rule.clear();
        // Nothing to forgive: no verdict to look up or remember per task.
        if !options.ignores.is_empty() || project.is_some_and(|file| !file.rules.is_empty()) {
            let ignored = &mut self.ignored;
            let budget = &self.live_stacks;
            let redecide = scan == Scan::Final
                && (options.ignores_by_stack()
                    || project.is_some_and(|file| file.rules.iter().any(|r| r.looks_at_stacks())));
            tasks.retain(|task| {
                // A plain thread's name is set by the thread itself once it runs: decide again.
                let again = redecide || scan == Scan::Final && task.created.is_some();
                let verdict = match ignored.get(&task.id) {
                    Some(&verdict) if verdict != Verdict::Counts || !again => verdict,
                    _ => {
                        let verdict = decide(options, project, task, budget);
                        if let (Verdict::HiddenByRule(rule), Some(file)) = (verdict, project) {
                            file.rules[rule].record_hits(1);
                        }
                        ignored.insert(task.id, verdict);
                        verdict
                    }
                };
                if let Verdict::HiddenByRule(rule) = verdict {
                    *hidden_by_rule.entry(rule).or_default() += 1;
                }
                verdict == Verdict::Counts
            });
        }
        self.drop_excused(&mut tasks, scan);
        let mut ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        self.seen = merge_sorted(std::mem::take(&mut self.seen), ids);
        tasks
    }

    /// The report's notes on what the project's rules hid at the deadline, by rule.
    fn hidden_notes(&self) -> Vec<String> {
        let Some(file) = self.project else {
            return Vec::new();
        };
        let mut counts = self.hidden_by_rule.clone();
        if let Some(untracked) = &self.untracked {
            for (rule, count) in untracked.hidden_by_rule() {
                *counts.entry(rule).or_default() += count;
            }
        }
        let mut counts: Vec<(usize, usize)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        counts.sort_unstable();
        counts
            .into_iter()
            .map(|(rule, count)| file.hidden_note(rule, count))
            .collect()
    }

    fn untracked_survivors(&mut self) -> Vec<LeakedTask> {
        let live_stacks = &self.live_stacks;
        self.untracked
            .as_mut()
            .map(|watch| watch.survivors(live_stacks))
            .unwrap_or_default()
    }

    /// Whether no untracked thread is left, after waiting for them up to `deadline` (they do not
    /// announce their exit like tracked tasks; see `census` for how the wait wakes).
    fn untracked_settled(&mut self, deadline: Instant) -> bool {
        let live_stacks = &self.live_stacks;
        self.untracked
            .as_mut()
            .is_none_or(|watch| watch.settle(deadline, live_stacks))
    }

    /// Waits (blocking this thread) for the survivors to finish, then reports those left.
    pub(crate) fn run_blocking(mut self) -> Result<(), LeakReport> {
        let config = config::get();
        if config.mode == Mode::Off {
            return Ok(());
        }
        let start = Instant::now();
        let deadline = deadline_after(start, self.grace());
        let subscription = exit_signal().subscribe();
        let (survivors, waited) = loop {
            let epoch = subscription.epoch();
            let survivors = self.tracked_survivors(Scan::Waiting);
            if survivors.is_empty() && self.untracked_settled(deadline) {
                if Self::scan_was_settled(&subscription, epoch, deadline) {
                    return Ok(());
                }
                continue;
            }
            drop(survivors);
            let look = self.next_look(deadline);
            if (!subscription.wait(epoch, look) && look >= deadline) || Instant::now() >= deadline {
                // The wait is over; what follows is the verdict.
                let waited = start.elapsed();
                break (self.tracked_survivors(Scan::Final), waited);
            }
        };
        drop(subscription);
        self.conclude(survivors, waited, ReportExtras::default())
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
        mut extras: impl FnMut(&[Arc<TaskRecord>]) -> ReportExtras,
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
            let epoch = subscription.epoch();
            let survivors = self.tracked_survivors(Scan::Waiting);
            let pending_extras = extras(&survivors);
            if survivors.is_empty()
                && pending_extras.counts_no_leaks()
                && self
                    .untracked
                    .as_mut()
                    .is_none_or(|watch| watch.settle_briefly(deadline, &self.live_stacks))
            {
                if Self::scan_was_settled(&subscription, epoch, deadline) {
                    return Ok(());
                }
                continue;
            }
            drop(survivors);
            let timed_out = std::future::poll_fn(|cx| {
                if subscription.poll_exit(epoch, cx.waker()) || recheck(cx).is_ready() {
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

    /// Builds the report of what is left, and applies the `LEAKCHECK` mode to it.
    fn conclude(
        mut self,
        survivors: Vec<Arc<TaskRecord>>,
        waited: Duration,
        extras: ReportExtras,
    ) -> Result<(), LeakReport> {
        // The verdict is the deadline's: a survivor that ends while its report is being built
        // (symbolising stacks takes a while) was still alive when its time was up.
        let mut tasks = snapshot::leaked_tasks(&survivors, extras.stacks, &self.live_stacks);
        tasks.extend(self.untracked_survivors());
        let mut notes = extras.notes;
        notes.extend(self.hidden_notes());
        if let Some(untracked) = &self.untracked {
            notes.extend(untracked.notes());
        }
        if self.options.process_wide {
            notes.extend(self.process_global_notes());
        }
        notes.extend(plain_threads::notes_on(&survivors));
        notes.push(plain_threads::tracking().describe());
        let mut left: Vec<TaskId> = survivors.iter().map(|t| t.id).collect();
        left.sort_unstable();
        self.seen.retain(|id| left.binary_search(id).is_err());
        let report = LeakReport {
            checked: if self.options.process_wide {
                "the process".to_owned()
            } else {
                self.scope.label.to_string()
            },
            waited,
            exited_while_waiting: self.seen.len(),
            tasks,
            notes,
            unidentified_async: extras.unidentified_async,
            unusable: None,
        };
        if report.leak_count() == 0 {
            return Ok(());
        }
        deliver(report)
    }
}

/// What forgives `task`: the check's options first, then the project's rules.
fn decide(
    options: &Options,
    project: Option<&IgnoreFile>,
    task: &TaskRecord,
    budget: &LiveStackBudget,
) -> Verdict {
    if ignore::is_ignored(options, task, budget) {
        return Verdict::IgnoredByOptions;
    }
    project
        .and_then(|file| {
            file.rules
                .iter()
                .position(|rule| rule.hides(|pattern| ignore::is_ignored(pattern, task, budget)))
        })
        .map_or(Verdict::Counts, Verdict::HiddenByRule)
}

/// Whether `task` is a thread of the process this one was forked from: `fork()` copies the
/// registry, with a record for every thread of the parent, but only the thread that forked. Such
/// records are set aside here, when survivors are looked at, and nowhere else. A `pthread_atfork`
/// child handler that emptied the registry instead would have to take the registry's locks in
/// the child, where a lock held at the fork by a thread that was not copied stays locked forever:
/// the child would hang before its first line. This test takes no lock: the thread's handle was
/// recorded, with the pid of its process, when the thread started. (A thread that had not started
/// yet when its parent forked has no handle, and is the one case it misses.)
fn lost_to_fork(task: &TaskRecord) -> bool {
    task.os_thread
        .get()
        .is_some_and(|thread| !thread.in_this_process())
}

/// The ascending union of two ascending lists without repeats.
fn merge_sorted(old: Vec<TaskId>, new: Vec<TaskId>) -> Vec<TaskId> {
    if old.is_empty() {
        return new;
    }
    let mut merged = Vec::with_capacity(old.len().max(new.len()));
    let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let next = match (old.peek(), new.peek()) {
            (Some(a), Some(b)) if a < b => old.next(),
            (Some(a), Some(b)) if a > b => new.next(),
            (Some(_), Some(_)) => {
                new.next();
                old.next()
            }
            (Some(_), None) => old.next(),
            (None, Some(_)) => new.next(),
            (None, None) => break,
        };
        merged.extend(next);
    }
    merged
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

/// Writes the JSON file if asked to, and turns the report into the check's result per `LEAKCHECK`.
fn deliver(report: LeakReport) -> Result<(), LeakReport> {
    let config = config::get();
    if let Some(dir) = &config.report_dir {
        if let Err(error) = report.write_json_to(dir) {
            eprintln!(
                "leakcheck: could not write the JSON report to LEAKCHECK_REPORT_DIR={}: {error}",
                dir.display()
            );
        }
    }
    match config.mode {
        Mode::Fail => Err(report),
        Mode::Warn => {
            eprintln!("{report}\n(LEAKCHECK=warn: not failing)");
            Ok(())
        }
        Mode::Off => Ok(()),
    }
}

/// Which scan of the survivors a check is making.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// One of the scans during the grace period.
    Waiting,
    /// The scan at the deadline, whose survivors are reported.
    Final,
}

/// What a runtime adds to a report: stacks from its task dump, counts of tasks it knows and
/// leakcheck does not, and remarks.
#[derive(Default)]
pub(crate) struct ReportExtras {
    pub(crate) stacks: HashMap<TaskId, Stack>,
    pub(crate) unidentified_async: usize,
    pub(crate) notes: Vec<String>,
}

impl ReportExtras {
    /// Whether the runtime counts no task beyond those leakcheck knows (notes and stacks may
    /// still be there: they only describe).
    fn counts_no_leaks(&self) -> bool {
        self.unidentified_async == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_survivors_merge_without_repeats() {
        let ids = |v: &[u64]| v.iter().map(|&i| TaskId(i)).collect::<Vec<_>>();
        assert_eq!(
            merge_sorted(ids(&[1, 3, 5]), ids(&[2, 3, 6])),
            ids(&[1, 2, 3, 5, 6])
        );
        assert_eq!(merge_sorted(ids(&[]), ids(&[4])), ids(&[4]));
        assert_eq!(merge_sorted(ids(&[4]), ids(&[])), ids(&[4]));
    }

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
