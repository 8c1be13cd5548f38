//! The runtime `#[leak_test(tokio)]` builds for a test, and the check it runs inside it.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::tokio::runtime::{Builder, Handle, LocalOptions, LocalRuntime, Runtime};
use ::tokio::time::Sleep;

use super::dump;
use super::runtime_tasks::TestRuntime;
use crate::check::{test_name, Check, ReportExtras};
use crate::config::{self, Mode};
use crate::context;
use crate::options::Options;
use crate::os::{LiveStackBudget, ThreadHandle};
use crate::plain_threads;
use crate::registry::{open_scope, Scope, ScopeLabel, Shared, TaskRecord};
use crate::report::LeakReport;
use crate::vocab::{TaskId, TaskKind};

/// The runtime flavor of a `#[leak_test(tokio)]` test, as `flavor = "..."` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokioFlavor {
    /// `flavor = "current_thread"`, the default (as for `#[tokio::test]`).
    #[default]
    CurrentThread,
    /// `flavor = "multi_thread"`.
    MultiThread,
    /// `flavor = "local"`: tokio's `LocalRuntime`, where `spawn_local` works.
    Local,
}

/// The runtime a `#[leak_test(tokio)]` test asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokioTestConfig {
    /// The scheduler.
    pub flavor: TokioFlavor,
    /// `worker_threads = N` (multi-thread only); tokio's default (one per core) when `None`.
    pub worker_threads: Option<usize>,
    /// `start_paused`: the runtime's clock starts paused (current-thread only).
    pub start_paused: bool,
}

/// How long a clean test waits at least for its runtime's threads to stop; the grace period, if
/// longer.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a test that leaked waits after its runtime's shutdown for blocking jobs that end once
/// the runtime's tasks are dropped, before its report names those still running: it fails
/// anyway, so not for the grace period.
const LEAKED_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(250);
/// While only unidentified runtime tasks are outstanding, how soon the check looks again, at
/// first and at most (the interval doubles in between).
const RECHECK_FIRST: Duration = Duration::from_millis(1);
const RECHECK_MAX: Duration = Duration::from_millis(16);

/// The body of a `#[leak_test(tokio)]` test: builds the test's runtime, runs the body on it in
/// the test's own scope, then checks the scope inside the runtime, before shutting it down. Then
/// it waits for the shutdown, and a thread of the runtime still running a `spawn_blocking` job
/// when the wait is over is a leak too (see `check_after_shutdown`): a clean test waits for the
/// grace period (a second at least); one that leaked waits a moment, and its one report names
/// its leaked tasks and such jobs.
///
/// A survivor fails the test with the report. If the body panics, the check still runs and the
/// test ends as `outcome::finish_test` says (a `#[should_panic]` test that leaked fails).
///
/// # Panics
///
/// On leaks; with a configuration tokio does not support (`start_paused` on a multi-thread
/// runtime, `worker_threads` on a current-thread one, zero workers); if the runtime cannot be
/// built.
#[track_caller]
pub fn run_tokio_test<F: Future>(
    name: &'static str,
    options: Options,
    config: TokioTestConfig,
    body: F,
) -> F::Output
where
    F::Output: 'static,
{
    let scope = open_scope(ScopeLabel::Test(test_name(name).to_owned()));
    let _context = context::enter(Arc::clone(&scope), None);
    let test_runtime = TestRuntime::new(Arc::clone(&scope));
    let runtime = RuntimeGuard(Some(build(&config, &test_runtime)));
    let handle = runtime.handle().clone();
    let registration = test_runtime.register(&handle);
    let grace = options.timeout.unwrap_or_else(|| config::get().timeout);
    let expects_panic = options.expects_panic;
    let after_shutdown = options.clone();
    // After the runtime is built: its threads are part of the harness, not the test.
    let check = match Check::try_new(options) {
        // Delivered below, with the blocking jobs the shutdown leaves running if it leaked.
        Ok(check) => check.deferring_delivery(),
        Err(error) => return crate::check::unusable_check(error, expects_panic),
    };

    let (output, verdict) = runtime.block_on(async {
        let output = CatchUnwind(body).await;
        let verdict = check_inside(check, grace, &handle, &test_runtime, config.start_paused).await;
        (output, verdict)
    });
    // Its tasks dropped at once (which may end blocking jobs), its threads told to stop.
    let shutdown = Instant::now();
    drop(runtime);
    let verdict = match verdict {
        Ok(()) => check_after_shutdown(&scope, &test_runtime, after_shutdown, grace, shutdown),
        Err(mut report) => {
            let stuck = check_after_leak(&scope, &test_runtime, after_shutdown, shutdown);
            if let Err(stuck) = stuck {
                report.include(stuck);
            }
            crate::check::deliver(report)
        }
    };
    drop(registration);

    crate::check::finish_test(output, verdict, expects_panic)
}

fn build(config: &TokioTestConfig, test_runtime: &Arc<TestRuntime>) -> TestRt {
    let mut builder = match config.flavor {
        TokioFlavor::CurrentThread | TokioFlavor::Local => {
            assert!(
                config.worker_threads.is_none(),
                "leakcheck: `worker_threads` needs `flavor = \"multi_thread\"`: a current-thread runtime runs everything on the test's thread"
            );
            Builder::new_current_thread()
        }
        TokioFlavor::MultiThread => {
            assert!(
                !config.start_paused,
                "leakcheck: `start_paused` needs `flavor = \"current_thread\"` or `\"local\"`: tokio pauses the clock of a single-threaded runtime only"
            );
            let mut builder = Builder::new_multi_thread();
            if let Some(threads) = config.worker_threads {
                assert!(
                    threads > 0,
                    "leakcheck: `worker_threads` must be at least 1"
                );
                builder.worker_threads(threads);
            }
            builder
        }
    };
    builder.enable_all();
    #[cfg(feature = "tokio-test-util")]
    builder.start_paused(config.start_paused);
    // `#[leak_test]` refuses `start_paused = true` at compile time without the feature.
    #[cfg(not(feature = "tokio-test-util"))]
    assert!(
        !config.start_paused,
        "leakcheck: `start_paused` needs leakcheck's `tokio-test-util` feature"
    );
    test_runtime.install(&mut builder);
    let runtime = match config.flavor {
        TokioFlavor::Local => builder
            .build_local(LocalOptions::default())
            .map(TestRt::Local),
        TokioFlavor::CurrentThread | TokioFlavor::MultiThread => {
            builder.build().map(TestRt::Shared)
        }
    };
    runtime.unwrap_or_else(|error| {
        panic!("leakcheck: could not build the test's tokio runtime: {error}")
    })
}

/// The runtime of one test: a `Runtime`, or a `LocalRuntime` for `flavor = "local"`.
enum TestRt {
    Shared(Runtime),
    Local(LocalRuntime),
}

impl TestRt {
    fn handle(&self) -> &Handle {
        match self {
            TestRt::Shared(runtime) => runtime.handle(),
            TestRt::Local(runtime) => runtime.handle(),
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            TestRt::Shared(runtime) => runtime.block_on(future),
            TestRt::Local(runtime) => runtime.block_on(future),
        }
    }

    fn shutdown_background(self) {
        match self {
            TestRt::Shared(runtime) => runtime.shutdown_background(),
            TestRt::Local(runtime) => runtime.shutdown_background(),
        }
    }
}

/// Waits for the survivors without blocking the runtime, then reports them with what the runtime
/// knows: how many of its tasks leakcheck does not know, and (with task dumps) async stacks.
///
/// The stacks are added to a report already built: tokio's dump polls every task to trace it,
/// then wakes it to be polled again, and a report built after the dump could catch a survivor
/// in that poll, `running` instead of where it waits.
async fn check_inside(
    check: Check,
    grace: Duration,
    handle: &Handle,
    runtime: &TestRuntime,
    paused: bool,
) -> Result<(), LeakReport> {
    let on_the_runtime_clock = ::tokio::time::Instant::now();
    // Whether the last look found unidentified runtime tasks, whose exit nothing signals.
    let counting = Cell::new(false);
    let grace_over = Cell::new(false);

    let sleep = async {
        ::tokio::time::sleep(grace).await;
        grace_over.set(true);
    };

    let extras = |survivors: &[Shared<TaskRecord>]| {
        let unidentified = runtime.unidentified(handle);
        counting.set(unidentified > 0);
        let mut extras = ReportExtras {
            unidentified_async: unidentified,
            ..ReportExtras::default()
        };
        if unidentified > 0 {
            extras.notes.push(unidentified_note(unidentified));
        }
        if grace_over.get()
            && cfg!(tokio_unstable)
            && !dump::AVAILABLE
            && survivors.iter().any(|task| task.kind() == TaskKind::Async)
        {
            extras.notes.push(
                "for the async stacks of these tasks, add `--cfg tokio_taskdump` to `--cfg tokio_unstable` (Linux)"
                    .to_owned(),
            );
        }
        extras
    };

    let mut timer: Option<Pin<Box<Sleep>>> = None;
    let mut interval = RECHECK_FIRST;
    let recheck = |cx: &mut Context<'_>| {
        if !counting.get() {
            timer = None;
            interval = RECHECK_FIRST;
            return Poll::Pending;
        }
        let sleep = timer.get_or_insert_with(|| Box::pin(::tokio::time::sleep(interval)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        timer = None;
        interval = (interval * 2).min(RECHECK_MAX);
        Poll::Ready(())
    };

    let Err(mut report) = check.run_async(sleep, extras, recheck).await else {
        return Ok(());
    };
    if paused {
        // The headline's wait is real time; the grace period ran on the paused clock.
        report.notes.push(format!(
            "start_paused: the grace period ran on the runtime's clock, paused at the start, which \
             advanced {} while the check waited; a survivor waiting on a timer set further ahead is \
             reported",
            crate::report::human(on_the_runtime_clock.elapsed()),
        ));
    }
    // The survivors still run (the runtime is not shut down yet): take their stacks now.
    let async_survivors: HashSet<TaskId> = report
        .tasks()
        .iter()
        .filter(|task| task.kind() == TaskKind::Async)
        .filter_map(|task| task.id())
        .collect();
    if !async_survivors.is_empty() {
        match dump::take(handle, runtime, &async_survivors).await {
            Some(Ok(dumped)) => dump::attach(&mut report, dumped),
            Some(Err(why)) => report.notes.push(why),
            None => {}
        }
    }
    Err(report)
}

/// After a clean check and the runtime's shutdown, which began at `shutdown`: waits for the
/// runtime's threads (the grace period, at least [`SHUTDOWN_TIMEOUT`]), then checks those still
/// running a blocking job nothing tracks (see `runtime_threads`) in the test's scope, like plain
/// threads. Not those running a task of the test (tracked `leakcheck::tokio::spawn_blocking`
/// closures), nor workers (a task keeps them): the check judged those. A thread whose stack
/// cannot be read is listed: better one too many.
fn check_after_shutdown(
    scope: &Arc<Scope>,
    runtime: &TestRuntime,
    options: Options,
    grace: Duration,
    shutdown: Instant,
) -> Result<(), LeakReport> {
    let off = config::get().mode == Mode::Off;
    let timeout = if off {
        SHUTDOWN_TIMEOUT
    } else {
        grace.max(SHUTDOWN_TIMEOUT)
    };
    let tracked = wait_for_jobs(scope, runtime, shutdown + timeout);
    if off {
        return Ok(());
    }
    let jobs = stuck_jobs(runtime, &tracked, |runs_a_worker| {
        runs_a_worker != Some(true)
    });
    check_jobs(
        runtime,
        &jobs,
        Arc::clone(scope),
        options,
        shutdown,
        Delivery::Now,
    )
}

/// After a check that found leaks and the runtime's shutdown: like [`check_after_shutdown`],
/// but the test fails anyway, so it waits only [`LEAKED_SHUTDOWN_TIMEOUT`], lists only threads
/// whose stacks show they run no worker (better one too few), and hands the report back
/// undelivered, for the leaks' report to include. The threads are listed in a scope of their
/// own, under the test's name, so that the leaks' report's survivors are not reported twice.
fn check_after_leak(
    scope: &Arc<Scope>,
    runtime: &TestRuntime,
    options: Options,
    shutdown: Instant,
) -> Result<(), LeakReport> {
    let tracked = wait_for_jobs(scope, runtime, shutdown + LEAKED_SHUTDOWN_TIMEOUT);
    let jobs = stuck_jobs(runtime, &tracked, |runs_a_worker| {
        runs_a_worker == Some(false)
    });
    if jobs.is_empty() {
        return Ok(());
    }
    let jobs_scope = open_scope(scope.label.clone());
    check_jobs(
        runtime,
        &jobs,
        jobs_scope,
        options,
        shutdown,
        Delivery::Deferred,
    )
}

/// Whether a report of stuck jobs is delivered at once, or handed back to be included.
enum Delivery {
    Now,
    Deferred,
}

/// Lists the stuck `jobs` again in `scope` and checks them there, at once: the wait for the
/// shutdown, which began at `shutdown`, was their grace period.
fn check_jobs(
    runtime: &TestRuntime,
    jobs: &[ThreadHandle],
    scope: Arc<Scope>,
    options: Options,
    shutdown: Instant,
    delivery: Delivery,
) -> Result<(), LeakReport> {
    if runtime.threads().relist(jobs, &scope) == 0 {
        return Ok(());
    }
    // The check looks at the scope current when it is made.
    let _in_scope = context::enter(scope, None);
    let check = Check::new(options.timeout(Duration::ZERO));
    let check = match delivery {
        Delivery::Now => check,
        Delivery::Deferred => check.deferring_delivery(),
    };
    check.run_blocking_with(jobs_extras(shutdown))
}

/// Waits until `deadline` for the runtime's threads to stop, but for those that run tasks of
/// the test's `scope` (the check judged those), whose thread ids it returns.
fn wait_for_jobs(scope: &Scope, runtime: &TestRuntime, deadline: Instant) -> HashSet<i32> {
    let tracked: HashSet<i32> = scope
        .live_tasks()
        .iter()
        .filter_map(|task| Some(task.os_thread()?.tid()))
        .collect();
    runtime
        .threads()
        .wait_for_stops(deadline, |tid| tracked.contains(&tid));
    tracked
}

/// The runtime's threads still running but for the `tracked` ones, that `listed` accepts given
/// whether their live stack shows a worker's loop (`None`: it cannot be read).
fn stuck_jobs(
    runtime: &TestRuntime,
    tracked: &HashSet<i32>,
    listed: impl Fn(Option<bool>) -> bool,
) -> Vec<ThreadHandle> {
    let budget = LiveStackBudget::new();
    runtime
        .threads()
        .still_running()
        .into_iter()
        .filter(|thread| {
            !tracked.contains(&thread.tid())
                && listed(plain_threads::runs_a_runtime_worker(thread, &budget))
        })
        .collect()
}

/// What the report of stuck blocking jobs says besides the threads: what they are, and that the
/// shutdown was their grace period.
fn jobs_extras(shutdown: Instant) -> ReportExtras {
    let note = "threads of this test's tokio runtime were still running when its shutdown \
                stopped waiting, in blocking jobs that have not returned (`spawn_blocking`, or \
                tokio's own blocking I/O): tokio counts such jobs as no task, and cannot stop \
                them. A pool thread runs one job after another: where it was spawned is where \
                the pool started it; the job is the code its stack shows. To accept one, \
                `ignore_function` a function in its stack"
        .to_owned();
    ReportExtras {
        notes: vec![note],
        waited_before: shutdown.elapsed(),
        ..ReportExtras::default()
    }
}

fn unidentified_note(count: usize) -> String {
    let (tasks, are) = if count == 1 {
        ("task", "is")
    } else {
        ("tasks", "are")
    };
    if cfg!(tokio_unstable) {
        format!(
            "{count} async {tasks} of this test's tokio runtime {are} alive that its spawn hook did not see: \
             leakcheck knows neither where they were spawned nor what they wait on"
        )
    } else {
        format!(
            "{count} async {tasks} of this test's tokio runtime {are} alive that leakcheck did not see spawn \
             (plain `tokio::spawn`), so it knows neither where they were spawned nor what they wait on. \
             For their spawn sites and states, build the tests with `RUSTFLAGS=\"--cfg tokio_unstable\"` \
             (add `--cfg tokio_taskdump` for their async stacks), or spawn them with `leakcheck::tokio::spawn`"
        )
    }
}

/// The test's runtime, shut down in the background when dropped: its tasks are dropped, and its
/// threads told to stop, with nothing waited for. A leaked blocking task would hang a plain drop
/// forever; a clean test waits for the threads on its own (`RuntimeThreads::wait_for_stops`).
/// (tokio's `shutdown_timeout` would wait first, and drop a current-thread runtime's tasks only
/// then: a blocking job that ends when a task is dropped would be waited for in vain.)
struct RuntimeGuard(Option<TestRt>);

impl std::ops::Deref for RuntimeGuard {
    type Target = TestRt;

    fn deref(&self) -> &TestRt {
        self.0
            .as_ref()
            .expect("the runtime is alive until shut down")
    }
}

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Catches a panic of the test body, so that the check still runs before the panic goes on.
struct CatchUnwind<F>(F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the only field is structurally pinned: never moved, never exposed unpinned.
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.0) };
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
