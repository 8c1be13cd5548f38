//! OS threads leakcheck did not spawn: found by comparing the process's thread list with a
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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::options::{function_matches, glob_matches, Ignore, Options};
use crate::os::{self, ExitWait, LiveStackBudget, ThreadBaseline, ThreadHandle, ThreadStatus};
use crate::registry::{self, TaskKind};
use crate::report::{resolve_stacks, LeakedTask, OsThread, PendingStack, StackOrigin};
use crate::state::TaskState;

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
    /// Threads whose live stack matched an `ignore_function` pattern.
    forgiven: HashSet<i32>,
    /// Without thread pidfds: whether the one extra look after yielding was had.
    yielded: bool,
    /// Bounds the time the report spends on live stacks.
    live_stacks: LiveStackBudget,
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
    /// The platform cannot list threads.
    Unavailable(String),
}

impl UntrackedWatch {
    /// Takes the baseline a later check compares against, if this check looks at untracked threads.
    pub(crate) fn start(options: &Options) -> UntrackedWatch {
        let kind = if !(options.process_wide || one_test_at_a_time()) {
            WatchKind::LeftToGlobal
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
            forgiven: HashSet::new(),
            yielded: false,
            live_stacks: LiveStackBudget::new(),
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
        }
        watch
    }

    /// Waits until the untracked threads that appeared have exited, or until `deadline`.
    /// Returns whether none is left. Blocks the calling thread (see the module documentation for
    /// how it waits).
    pub(crate) fn settle(&mut self, deadline: Instant) -> bool {
        loop {
            let alive = self.alive();
            if alive.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let tids: Vec<i32> = alive.iter().map(|(tid, _)| *tid).collect();
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
    pub(crate) fn settle_briefly(&mut self, deadline: Instant) -> bool {
        self.settle(deadline.min(Instant::now() + ASYNC_SETTLE))
    }

    /// Untracked threads alive now that were not in the baseline, with what the kernel says
    /// about them and their live stacks.
    pub(crate) fn survivors(&mut self) -> Vec<LeakedTask> {
        // A tracked thread that ended its task at the deadline may still be finishing its exit:
        // it is no longer in the registry, and not gone from the thread list yet. Give such
        // threads a moment, so they are not mistaken for untracked survivors.
        self.settle(Instant::now() + FINAL_SETTLE);
        let alive = self.alive();
        if alive.is_empty() {
            return Vec::new();
        }
        // One live stack per thread, up to the budget; then one per look-alike group.
        let mut by_look: HashMap<(String, char, Option<String>), usize> = HashMap::new();
        let mut taken: Vec<Result<Vec<usize>, String>> = Vec::with_capacity(alive.len());
        let mut source: Vec<usize> = Vec::with_capacity(alive.len());
        for (tid, status) in &alive {
            let look = (
                name_without_numbers(&status.name),
                status.state,
                status.wchan.clone(),
            );
            if taken.len() < LIVE_STACKS {
                by_look.entry(look).or_insert(taken.len());
                source.push(taken.len());
                taken.push(self.live_stacks.take(&ThreadHandle::from_tid(*tid)));
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
            .map(|((tid, status), source)| {
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
                    parents: Vec::new(),
                    stack,
                    stack_unavailable,
                    os_thread: Some(OsThread {
                        tid: i64::from(tid),
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
            WatchKind::Watching { .. } | WatchKind::LeftToGlobal if tracking_all => Vec::new(),
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
            WatchKind::Unavailable(why) => vec![format!("untracked OS threads were not checked: {why}")],
        }
    }

    /// The new untracked threads that are alive and not ignored, in thread-id order.
    fn alive(&mut self) -> Vec<(i32, ThreadStatus)> {
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
        let mut alive: Vec<(i32, ThreadStatus)> = new
            .into_iter()
            .filter(|tid| !tracked.contains(tid))
            .filter_map(|tid| Some((tid, os::thread_status(tid)?)))
            .filter(|(_, status)| !status.has_exited())
            .filter(|(_, status)| {
                !self
                    .ignore_names
                    .iter()
                    .any(|pattern| glob_matches(pattern, &status.name))
            })
            .collect();
        if !self.ignore_functions.is_empty() {
            // A thread is forgiven for good once its stack matched. One that did not match may
            // just not have got there yet (a thread that was just spawned is still in its start
            // routine), so it is looked at again each time.
            let patterns = &self.ignore_functions;
            let forgiven = &mut self.forgiven;
            alive.retain(|(tid, _)| {
                if forgiven.contains(tid) {
                    return false;
                }
                let matches = stack_matches(*tid, patterns);
                if matches {
                    forgiven.insert(*tid);
                }
                !matches
            });
        }
        alive
    }
}

/// Whether the live stack of thread `tid` has a frame in one of `patterns`. Every frame counts,
/// those a report would trim included: a library's thread is recognised by its library's
/// functions (`tokio::runtime::blocking::pool`).
fn stack_matches(tid: i32, patterns: &[String]) -> bool {
    let Ok(ips) = os::live_stack(&ThreadHandle::from_tid(tid), os::LIVE_STACK_TIMEOUT) else {
        return false;
    };
    let mut matched = false;
    for (index, ip) in ips.into_iter().enumerate() {
        // Return addresses point after the call; the innermost frame is where the thread stopped.
        let lookup = if index == 0 { ip } else { ip.saturating_sub(1) };
        backtrace::resolve(lookup as *mut std::ffi::c_void, |symbol| {
            if let Some(name) = symbol.name() {
                let name = format!("{name:#}");
                matched |= patterns
                    .iter()
                    .any(|pattern| function_matches(pattern, &name));
            }
        });
        if matched {
            return true;
        }
    }
    false
}

/// The kernel ids of every live tracked thread, in every scope.
fn tracked_tids() -> HashSet<i32> {
    registry::all_scopes()
        .iter()
        .flat_map(|scope| scope.live_tasks())
        .filter_map(|task| task.os_thread.get().map(|thread| thread.tid()))
        .collect()
}

/// Registers an open per-test check that lists untracked threads, to notice checks of other
/// threads open at the same time: then tests do not run one at a time after all (a test that
/// simulates a parallel harness, say), and neither check may blame the other's threads.
struct OverlapToken {
    id: u64,
    overlapped: Arc<AtomicBool>,
}

struct OpenCheck {
    id: u64,
    thread: std::thread::ThreadId,
    overlapped: Arc<AtomicBool>,
}

static OPEN_CHECKS: Mutex<Vec<OpenCheck>> = Mutex::new(Vec::new());

impl OverlapToken {
    fn open() -> OverlapToken {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::current().id();
        let overlapped = Arc::new(AtomicBool::new(false));
        let mut open = OPEN_CHECKS.lock();
        for other in open.iter().filter(|other| other.thread != thread) {
            other.overlapped.store(true, Ordering::Relaxed);
            overlapped.store(true, Ordering::Relaxed);
        }
        open.push(OpenCheck {
            id,
            thread,
            overlapped: Arc::clone(&overlapped),
        });
        OverlapToken { id, overlapped }
    }

    fn overlapped(&self) -> bool {
        self.overlapped.load(Ordering::Relaxed)
    }
}

impl Drop for OverlapToken {
    fn drop(&mut self) {
        OPEN_CHECKS.lock().retain(|open| open.id != self.id);
    }
}

/// `worker-12` and `worker-3` look alike: runs of digits become one `#`.
fn name_without_numbers(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Threads that belong to a test harness or runtime leakcheck drives itself (for example the
/// runtime `#[leak_test(tokio)]` builds), never reported as untracked.
static HARNESS_THREADS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Registers the calling thread as part of the harness until [`harness_thread_stopped`]: call it
/// from a runtime's thread-start hook.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Used by the tokio integration.
pub(crate) fn harness_thread_started() {
    crate::plain_threads::disown_current_thread();
    HARNESS_THREADS.lock().push(os::current_tid());
}

/// Unregisters the calling thread; call it from a runtime's thread-stop hook.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Used by the tokio integration.
pub(crate) fn harness_thread_stopped() {
    let tid = os::current_tid();
    let mut threads = HARNESS_THREADS.lock();
    if let Some(at) = threads.iter().position(|&t| t == tid) {
        threads.swap_remove(at);
    }
}

/// Whether a test main declared how its trials run: unknown, one at a time, in parallel.
const UNDECLARED: u8 = 0;
const SERIAL: u8 = 1;
const PARALLEL: u8 = 2;
static DECLARED: AtomicU8 = AtomicU8::new(UNDECLARED);
/// Whether `verify_test_main` is running the tests (for the wording of notes).
static IN_TEST_MAIN: AtomicBool = AtomicBool::new(false);

/// Whether tests run one at a time in this process, so that a per-test check may report
/// untracked threads. Read on every check: two atomic loads once the environment was read.
pub(crate) fn one_test_at_a_time() -> bool {
    match DECLARED.load(Ordering::Relaxed) {
        SERIAL => true,
        PARALLEL => false,
        _ => {
            static DETECTED: OnceLock<bool> = OnceLock::new();
            *DETECTED.get_or_init(|| {
                detect_one_at_a_time(std::env::args().skip(1), |name| std::env::var(name).ok())
            })
        }
    }
}

/// Reads the runner's configuration: nextest's process-per-test mode, then libtest's
/// `--test-threads` argument, which takes precedence over `RUST_TEST_THREADS`.
fn detect_one_at_a_time(
    args: impl Iterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> bool {
    if let Some(mode) = env("NEXTEST_EXECUTION_MODE") {
        return mode == "process-per-test";
    }
    // nextest before `NEXTEST_EXECUTION_MODE` existed always ran a process per test.
    if env("NEXTEST").as_deref() == Some("1") {
        return true;
    }
    let mut args = args.peekable();
    let mut threads_arg = None;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if let Some(value) = arg.strip_prefix("--test-threads=") {
            threads_arg = Some(value.to_owned());
        } else if arg == "--test-threads" {
            threads_arg = args.next();
        }
    }
    let threads = threads_arg.or_else(|| env("RUST_TEST_THREADS"));
    threads.is_some_and(|t| t.trim().parse::<usize>() == Ok(1))
}

/// Marks the process as running a test main until dropped; see [`enter_test_main`].
pub(crate) struct TestMainGuard {
    previous_declared: u8,
    previous_in_main: bool,
}

/// Called by `verify_test_main` around the tests it runs: `one_at_a_time` is what its options
/// declare (`None`: detect it as usual).
pub(crate) fn enter_test_main(one_at_a_time: Option<bool>) -> TestMainGuard {
    let declared = match one_at_a_time {
        Some(true) => SERIAL,
        Some(false) => PARALLEL,
        None => UNDECLARED,
    };
    TestMainGuard {
        previous_declared: DECLARED.swap(declared, Ordering::Relaxed),
        previous_in_main: IN_TEST_MAIN.swap(true, Ordering::Relaxed),
    }
}

impl Drop for TestMainGuard {
    fn drop(&mut self) {
        DECLARED.store(self.previous_declared, Ordering::Relaxed);
        IN_TEST_MAIN.store(self.previous_in_main, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(args: &[&str], env: &[(&str, &str)]) -> bool {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        detect_one_at_a_time(args.iter().map(|a| a.to_string()), |name| {
            env.get(name).cloned()
        })
    }

    #[test]
    fn one_test_at_a_time_is_read_from_the_runner() {
        assert!(!detect(&[], &[]));
        assert!(detect(
            &[],
            &[
                ("NEXTEST", "1"),
                ("NEXTEST_EXECUTION_MODE", "process-per-test")
            ]
        ));
        assert!(!detect(
            &[],
            &[
                ("NEXTEST", "1"),
                ("NEXTEST_EXECUTION_MODE", "some-future-mode")
            ]
        ));
        assert!(detect(&[], &[("NEXTEST", "1")]));
        assert!(detect(&["--test-threads=1"], &[]));
        assert!(detect(&["--test-threads", "1", "--nocapture"], &[]));
        assert!(!detect(&["--test-threads=4"], &[]));
        assert!(detect(&[], &[("RUST_TEST_THREADS", "1")]));
        assert!(!detect(
            &["--test-threads=2"],
            &[("RUST_TEST_THREADS", "1")]
        ));
        assert!(!detect(&["--", "--test-threads=1"], &[]));
    }

    #[test]
    fn look_alike_names() {
        assert_eq!(name_without_numbers("tokio-runtime-w"), "tokio-runtime-w");
        assert_eq!(name_without_numbers("worker-12"), "worker-#");
        assert_eq!(
            name_without_numbers("worker-12"),
            name_without_numbers("worker-3")
        );
    }
}
