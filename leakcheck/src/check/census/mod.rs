//! The census of OS threads leakcheck did not spawn: found by comparing the process's thread list with a
//! baseline taken when the check was created.
//!
//! # Attribution
//!
//! A new OS thread says nothing about who made it. When tests run in parallel threads of one
//! process (libtest's default), a thread that appears while one test runs may belong to any
//! test running at the same time, so a per-test check cannot honestly blame its own test. Such a
//! check therefore does not look at untracked threads at all (not even a `/proc` read: a clean
//! check stays a few atomic loads), and its report says that untracked threads are left to the
//! global check. When tests run one at a time, the per-test check lists them:
//!
//! - under `cargo nextest run` (`NEXTEST_EXECUTION_MODE=process-per-test`: one test per process);
//! - with `--test-threads=1` or `RUST_TEST_THREADS=1`;
//! - inside [`verify_test_main`](crate::verify_test_main) when its options say the trials run one
//!   at a time ([`MainOptions::one_test_at_a_time`](crate::MainOptions::one_test_at_a_time)).
//!
//! A check with [`Options::process_wide`](crate::Options::process_wide) always lists them, and so
//! does the global check of `verify_test_main`. A per-test check that finds another per-test check
//! open on another thread during its life (a test that runs checks on several threads, as a
//! harness would, while the runner says one test at a time) cannot attribute new threads either:
//! it leaves them to the global check too, and its report says so.
//!
//! Never reported: threads alive when the check was created (the baseline, which holds the test
//! harness's own threads and the test's thread), threads alive when
//! [`Options::ignore_current`](crate::Options::ignore_current) was called, the checking thread,
//! tracked threads (they are reported as tracked tasks, with more detail), threads registered as
//! belonging to the harness, threads whose name matches `ignore_name`, and threads with an
//! `ignore_function` pattern in their live stack.
//!
//! # Waiting for them
//!
//! Untracked threads do not announce their exit. On Linux 6.9 and later the grace wait sleeps in
//! `ppoll` on their thread pidfds and wakes the moment one exits (a thread that was joined just
//! before the check typically vanishes microseconds later). On older kernels it falls back to
//! looking again after yielding once, whenever a tracked task exits, and at the deadline: a
//! check with an untracked survivor then waits its whole grace period, as it would for a leak.
//! Threads that are already zombies are treated as gone.

mod harness;
mod overlap;
mod runner;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ignore_file::{IgnoreFile, ProjectRule};
use crate::options::{Ignore, Options};
use crate::os::{self, ExitWait, LiveStackBudget, ThreadBaseline, ThreadHandle, ThreadStatus};
use crate::patterns::{function_matches, kernel_name_matches};
use crate::registry;
use crate::report::{
    name_pattern, resolve_stacks, LeakedTask, OsThread, PendingStack, StackOrigin,
};
use crate::symbols::{Address, SymbolCache};
use crate::vocab::{TaskKind, TaskState};
use harness::HARNESS_THREADS;
use overlap::OverlapToken;
use runner::{one_test_at_a_time, outside_tests, IN_TEST_MAIN};

pub(crate) use harness::{harness_thread_started, harness_thread_stopped};
pub(crate) use runner::enter_test_main;

/// Live stacks one report takes of untracked threads; beyond, threads that look alike (same name
/// pattern, kernel state and wait) share one.
const LIVE_STACKS: usize = 64;
/// How long an async check blocks its thread waiting for untracked threads to exit, per wake: a
/// runtime thread must not be held longer, and the common case (a thread that was just joined and
/// is finishing its exit) takes microseconds.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Async checks run on tokio only, so far.
const ASYNC_SETTLE: Duration = Duration::from_millis(2);

/// How long building a report waits for new threads that are exiting right then.
const FINAL_SETTLE: Duration = Duration::from_millis(5);

/// Watches for OS threads that appear while a check's scope runs.
pub(crate) struct UntrackedWatch {
    kind: WatchKind,
    /// Only filled when watching: a check that does not look at untracked threads copies nothing.
    ignore_names: Vec<String>,
    ignore_functions: Vec<String>,
    ignore_threads: Option<ThreadBaseline>,
    /// The project's rules that can hide an untracked thread (those without `spawned_at`: an
    /// untracked thread has no spawn site), with their index in the file.
    project_rules: Vec<(usize, &'static ProjectRule)>,
    /// Per thread, the index of the project rule that hides it, or `None` if none does; decided
    /// like the `ignore_function` verdicts (see `hide_by_project_rules`).
    rule_verdicts: HashMap<ThreadHandle, Option<usize>>,
    /// Per rule, the threads of the last look it hid.
    hidden_now: HashMap<usize, usize>,
    /// Verdicts of the `ignore_function` patterns, per thread: `true` if its live stack matched.
    /// Kept by handle (tid and start time), so a later thread that reuses a tid is judged anew.
    verdicts: HashMap<ThreadHandle, bool>,
    /// Without thread pidfds: whether the one extra look after yielding was had.
    yielded: bool,
}

enum WatchKind {
    /// Threads not in `baseline` are candidates. `overlap` is set when a check on another thread
    /// was open at the same time (`None` for process-wide checks, which want everything).
    Watching {
        baseline: ThreadBaseline,
        overlap: Option<OverlapToken>,
    },
    /// Tests run in parallel: untracked threads are not attributable to this check.
    LeftToGlobal,
    /// Not in a test (a plain program, a doctest): the program's other threads may start threads
    /// at any time, so new ones are not attributable to this check either.
    OutsideTests,
    /// The platform cannot list threads.
    Unavailable(String),
}

impl UntrackedWatch {
    /// Takes the baseline a later check compares against, if this check looks at untracked threads.
    pub(crate) fn start(options: &Options, project: Option<&'static IgnoreFile>) -> UntrackedWatch {
        let kind = if !(options.process_wide || one_test_at_a_time()) {
            if outside_tests() {
                WatchKind::OutsideTests
            } else {
                WatchKind::LeftToGlobal
            }
        } else {
            match ThreadBaseline::try_take() {
                Ok(baseline) => {
                    let overlap = (!options.process_wide).then(OverlapToken::open);
                    WatchKind::Watching { baseline, overlap }
                }
                Err(why) => WatchKind::Unavailable(why),
            }
        };
        let mut watch = UntrackedWatch {
            kind,
            ignore_names: Vec::new(),
            ignore_functions: Vec::new(),
            ignore_threads: None,
            project_rules: Vec::new(),
            rule_verdicts: HashMap::new(),
            hidden_now: HashMap::new(),
            verdicts: HashMap::new(),
            yielded: false,
        };
        if matches!(watch.kind, WatchKind::Watching { .. }) {
            for ignore in &options.ignores {
                match ignore {
                    Ignore::Name(pattern) => watch.ignore_names.push(pattern.clone()),
                    Ignore::Function(pattern) => watch.ignore_functions.push(pattern.clone()),
                    Ignore::SpawnedAt(_) => {}
                }
            }
            watch.ignore_threads = options.ignore_threads.clone();
            if let Some(file) = project {
                watch.project_rules = file
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| rule.spawned_at.is_none())
                    .collect();
            }
        }
        watch
    }

    /// Waits until the untracked threads that appeared have exited, or until `deadline`.
    /// Returns whether none is left. Blocks the calling thread (see the module documentation for
    /// how it waits). `live_stacks` is the check's budget, for `ignore_function` verdicts.
    pub(crate) fn settle(&mut self, deadline: Instant, live_stacks: &LiveStackBudget) -> bool {
        loop {
            let alive = self.alive(Look::Waiting, live_stacks);
            if alive.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let tids: Vec<i32> = alive.iter().map(|(thread, _)| thread.tid()).collect();
            match os::wait_for_any_exit(&tids, deadline) {
                ExitWait::Exited => continue,
                ExitWait::TimedOut => return false,
                ExitWait::Unsupported if !self.yielded => {
                    self.yielded = true;
                    std::thread::yield_now();
                }
                ExitWait::Unsupported => return false,
            }
        }
    }

    /// [`settle`](Self::settle) for a check that runs on an async runtime: it blocks for
    /// [`ASYNC_SETTLE`] at most, and otherwise relies on the caller to look again on the next
    /// tracked exit and at the deadline.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn settle_briefly(
        &mut self,
        deadline: Instant,
        live_stacks: &LiveStackBudget,
    ) -> bool {
        self.settle(deadline.min(Instant::now() + ASYNC_SETTLE), live_stacks)
    }

    /// Untracked threads alive now that were not in the baseline, with what the kernel says
    /// about them and their live stacks, taken within the check's budget `live_stacks`.
    pub(crate) fn survivors(&mut self, live_stacks: &LiveStackBudget) -> Vec<LeakedTask> {
        // A tracked thread that ended its task at the deadline may still be finishing its exit:
        // it is no longer in the registry, and not gone from the thread list yet. Give such
        // threads a moment, so they are not mistaken for untracked survivors.
        self.settle(Instant::now() + FINAL_SETTLE, live_stacks);
        let alive = self.alive(Look::Final, live_stacks);
        if alive.is_empty() {
            return Vec::new();
        }
        // One live stack per thread, up to the budget; then one per look-alike group.
        let mut by_look: HashMap<(String, char, Option<String>), usize> = HashMap::new();
        let mut taken: Vec<Result<Vec<usize>, String>> = Vec::with_capacity(alive.len());
        let mut source: Vec<usize> = Vec::with_capacity(alive.len());
        for (thread, status) in &alive {
            let look = (
                name_pattern(&status.name).into_owned(),
                status.state,
                status.wchan.clone(),
            );
            if taken.len() < LIVE_STACKS {
                by_look.entry(look).or_insert(taken.len());
                source.push(taken.len());
                taken.push(live_stacks.take(thread));
            } else {
                source.push(by_look.get(&look).copied().unwrap_or(usize::MAX));
            }
        }
        let pending: Vec<Option<PendingStack>> = taken
            .iter()
            .map(|stack| {
                let ips = stack.as_ref().ok()?;
                Some(PendingStack::Addresses(
                    StackOrigin::Live,
                    ips.as_slice().into(),
                ))
            })
            .collect();
        let stacks = resolve_stacks(&pending);
        alive
            .into_iter()
            .zip(source)
            .map(|((thread, status), source)| {
                let (stack, stack_unavailable) = match taken.get(source) {
                    Some(Ok(_)) => (stacks[source].clone(), None),
                    Some(Err(why)) => (None, Some(why.clone())),
                    None => (
                        None,
                        Some(format!(
                            "at most {LIVE_STACKS} live stacks are taken per report"
                        )),
                    ),
                };
                LeakedTask {
                    id: None,
                    kind: TaskKind::UntrackedThread,
                    name: Some(status.name.clone()),
                    spawned_at: None,
                    user_site: None,
                    age: status.age.unwrap_or_default(),
                    scope: None,
                    runs: None,
                    state: TaskState::Running,
                    in_state_for: status.age.unwrap_or_default(),
                    blocked_on: None,
                    blocked_at: None,
                    wait_inferred: false,
                    wait_detail: None,
                    last_polled_ago: None,
                    wakers_observed: false,
                    parents: Vec::new(),
                    stack,
                    stack_unavailable,
                    os_thread: Some(OsThread {
                        tid: i64::from(thread.tid()),
                        kernel_state: status.state_text(),
                        waiting_in: status.wchan.clone(),
                    }),
                }
            })
            .collect()
    }

    /// What the report must say about untracked threads.
    pub(crate) fn notes(&self) -> Vec<String> {
        // Tracked from their creation, threads need no census to be attributed: what is left to
        // the census (glibc's own helpers) is not worth a note on every report.
        let tracking_all =
            crate::plain_threads::tracking() == crate::plain_threads::Tracking::FromCreation;
        match &self.kind {
            WatchKind::Watching { .. } | WatchKind::LeftToGlobal | WatchKind::OutsideTests
                if tracking_all =>
            {
                Vec::new()
            }
            WatchKind::Watching { overlap: Some(overlap), .. } if overlap.overlapped() => vec![
                "untracked OS threads (not spawned through leakcheck) were not checked here: another \
                 check ran at the same time on another thread of this process, so a new thread cannot \
                 be pinned on this one; a process-wide check (Options::process_wide(), or \
                 verify_test_main's global check) looks at them"
                    .to_owned(),
            ],
            WatchKind::Watching { .. } => Vec::new(),
            WatchKind::LeftToGlobal if IN_TEST_MAIN.load(Ordering::Relaxed) => vec![
                "untracked OS threads (not spawned through leakcheck) were not checked here: tests run \
                 in parallel in this process, so a new thread cannot be pinned on one test; the global \
                 check of verify_test_main looks at them after the run"
                    .to_owned(),
            ],
            WatchKind::LeftToGlobal => vec![
                "untracked OS threads (not spawned through leakcheck) were not checked here: tests may \
                 run in parallel in this process, so a new thread cannot be pinned on one test (they are \
                 checked per test under `cargo nextest run` or `--test-threads=1`, by a check with \
                 Options::process_wide(), and by leakcheck::verify_test_main after the run)"
                    .to_owned(),
            ],
            WatchKind::OutsideTests => vec![
                "untracked OS threads (not spawned through leakcheck) were not checked here: outside \
                 a test, a new thread cannot be pinned on this check; a process-wide check \
                 (Options::process_wide()) looks at them"
                    .to_owned(),
            ],
            WatchKind::Unavailable(why) => vec![format!("untracked OS threads were not checked: {why}")],
        }
    }

    /// The new untracked threads that are alive and not ignored, in thread-id order.
    fn alive(
        &mut self,
        look: Look,
        live_stacks: &LiveStackBudget,
    ) -> Vec<(ThreadHandle, ThreadStatus)> {
        self.hidden_now.clear();
        let WatchKind::Watching { baseline, overlap } = &self.kind else {
            return Vec::new();
        };
        if overlap.as_ref().is_some_and(OverlapToken::overlapped) {
            return Vec::new();
        }
        let Ok(tids) = os::list_threads() else {
            return Vec::new();
        };
        let me = os::current_tid();
        let ignored = self.ignore_threads.as_ref();
        let mut new: Vec<i32> = tids
            .into_iter()
            .filter(|&tid| {
                tid != me && !baseline.contains(tid) && !ignored.is_some_and(|b| b.contains(tid))
            })
            .collect();
        if new.is_empty() {
            return Vec::new();
        }
        {
            let harness = HARNESS_THREADS.lock();
            new.retain(|tid| !harness.contains(tid));
        }
        if new.is_empty() {
            return Vec::new();
        }
        let tracked = tracked_tids();
        let mut alive: Vec<(ThreadHandle, ThreadStatus)> = new
            .into_iter()
            .filter(|tid| !tracked.contains(tid))
            .filter_map(os::listed_thread)
            .filter(|(_, status)| !status.has_exited())
            .filter(|(_, status)| {
                !self
                    .ignore_names
                    .iter()
                    .any(|pattern| kernel_name_matches(pattern, &status.name))
            })
            .collect();
        if !self.project_rules.is_empty() {
            self.hide_by_project_rules(&mut alive, look, live_stacks);
        }
        if !self.ignore_functions.is_empty() {
            // Each thread's stack is asked for once while the check waits, not on every look: a
            // live stack interrupts the thread, and the budget is the report's too. A thread that
            // did not match may just not have got there yet (a thread that was just spawned is
            // still in its start routine), so the final look asks those once more. A stack that
            // could not be had decides nothing and is asked for again.
            let patterns = &self.ignore_functions;
            let verdicts = &mut self.verdicts;
            alive.retain(|(thread, _)| {
                let known = verdicts.get(thread).copied();
                let ignored = match known {
                    Some(true) => true,
                    Some(false) if look == Look::Waiting => false,
                    _ => match stack_matches(thread, patterns, live_stacks) {
                        Some(matched) => {
                            verdicts.insert(*thread, matched);
                            matched
                        }
                        None => false,
                    },
                };
                !ignored
            });
        }
        alive
    }
}

impl UntrackedWatch {
    /// Removes the threads a project rule hides from `alive`, counting them per rule. A rule
    /// hides a thread whose name matches its `name` and whose live stack has its `function`
    /// (whichever it gives). As for `ignore_function`, a thread's stack is asked for once while
    /// the check waits, and once more at the final look if no rule hid it then; a stack that
    /// could not be had decides nothing.
    fn hide_by_project_rules(
        &mut self,
        alive: &mut Vec<(ThreadHandle, ThreadStatus)>,
        look: Look,
        live_stacks: &LiveStackBudget,
    ) {
        let rules = &self.project_rules;
        let verdicts = &mut self.rule_verdicts;
        let hidden_now = &mut self.hidden_now;
        alive.retain(|(thread, status)| {
            let hidden_by = match verdicts.get(thread).copied() {
                Some(Some(index)) => Some(index),
                Some(None) if look == Look::Waiting => None,
                _ => {
                    let mut undecided = false;
                    let found = rules.iter().find(|(_, rule)| {
                        let named = rule
                            .name
                            .as_deref()
                            .is_none_or(|pattern| kernel_name_matches(pattern, &status.name));
                        named
                            && rule.function.as_deref().is_none_or(|pattern| {
                                let patterns = [pattern.to_owned()];
                                stack_matches(thread, &patterns, live_stacks).unwrap_or_else(|| {
                                    undecided = true;
                                    false
                                })
                            })
                    });
                    let hidden_by = found.map(|(index, rule)| {
                        rule.record_hits(1);
                        *index
                    });
                    if hidden_by.is_some() || !undecided {
                        verdicts.insert(*thread, hidden_by);
                    }
                    hidden_by
                }
            };
            match hidden_by {
                Some(rule) => {
                    *hidden_now.entry(rule).or_default() += 1;
                    false
                }
                None => true,
            }
        });
    }

    /// Per project rule (by index), how many threads it hid in the last look.
    pub(crate) fn hidden_by_rule(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.hidden_now.iter().map(|(&rule, &count)| (rule, count))
    }
}

/// Which look at the thread list a census makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    /// One of the looks during the grace period.
    Waiting,
    /// The look at the deadline, whose survivors are reported.
    Final,
}

/// Whether the live stack of `thread` has a frame in one of `patterns`, or `None` if the stack
/// could not be had (the budget is spent, the thread did not answer). Every frame counts, those a
/// report would trim included: a library's thread is recognised by its library's functions
/// (`tokio::runtime::blocking::pool`).
fn stack_matches(
    thread: &ThreadHandle,
    patterns: &[String],
    live_stacks: &LiveStackBudget,
) -> Option<bool> {
    let ips = live_stacks.take(thread).ok()?;
    let mut symbols = SymbolCache::new();
    Some(ips.into_iter().enumerate().any(|(index, ip)| {
        // The innermost frame is where the thread stopped; the others are return addresses.
        let address = if index == 0 {
            Address::Interrupted(ip)
        } else {
            Address::Return(ip)
        };
        symbols.symbols(address).iter().any(|symbol| {
            patterns
                .iter()
                .any(|pattern| function_matches(pattern, &symbol.function))
        })
    }))
}

/// The kernel ids of every live tracked thread, in every scope.
fn tracked_tids() -> HashSet<i32> {
    registry::all_scopes()
        .iter()
        .flat_map(|scope| scope.live_tasks())
        .filter_map(|task| task.os_thread().copied())
        // A thread of the process this one was forked from is not here, whatever its tid.
        .filter(ThreadHandle::in_this_process)
        .map(|thread| thread.tid())
        .collect()
}
