//! `leakcheck::tokio::{spawn, spawn_named, spawn_blocking}` on runtimes the test builds itself,
//! checked with `verify_none()`: tracked tasks on any tokio runtime.

#![cfg(feature = "tokio")]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use leakcheck::{LeakReport, LeakedTask, Options, TaskKind, TaskState};
use tokio::runtime::{Builder, Runtime};

#[macro_use]
mod common;

fn check(grace_ms: u64) -> Result<(), LeakReport> {
    // The runtimes these tests build stay alive across their checks, and (every thread being
    // tracked from its creation) their threads are the tests' own: not what these tests look at.
    let options = Options::new()
        .timeout(Duration::from_millis(grace_ms))
        .ignore_name("tokio-rt-worker");
    leakcheck::verify_none_with(options).verify()
}

fn only(report: &LeakReport) -> &LeakedTask {
    assert_eq!(report.tasks().len(), 1, "{report}");
    &report.tasks()[0]
}

/// `leakcheck::tokio::spawn` from outside the runtime, in its context.
#[track_caller]
fn spawn_on<F>(runtime: &Runtime, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _context = runtime.enter();
    leakcheck::tokio::spawn(future)
}

fn runtimes() -> [Runtime; 2] {
    [
        Builder::new_current_thread().enable_all().build().unwrap(),
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ]
}

/// Looks until `condition` holds of the current scope's report (tasks on other threads take a
/// moment to reach a state), and returns that report.
fn report_when(condition: impl Fn(&LeakReport) -> bool) -> LeakReport {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = check(5).expect_err("the tasks are alive");
        if condition(&report) || Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn spawned_tasks_that_end_are_not_leaks_on_either_flavor() {
    for runtime in runtimes() {
        runtime.block_on(async {
            let answer = leakcheck::tokio::spawn(async { 6 * 7 });
            assert_eq!(answer.await.unwrap(), 42);
            let named =
                leakcheck::tokio::spawn_named("named", async { tokio::task::yield_now().await });
            named.await.unwrap();
            let sum = leakcheck::tokio::spawn_blocking(|| (1..=10).sum::<u32>());
            assert_eq!(sum.await.unwrap(), 55);
        });
        check(1000).expect("every task ended");
    }
}

#[test]
fn a_leaked_task_is_reported_with_its_site_name_and_state() {
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (handle, site) = runtime.block_on(async {
        spawned_here!(leakcheck::tokio::spawn_named("waiter", async move {
            let _ = rx.await;
        }))
    });
    let report = report_when(|report| report.tasks()[0].state() == TaskState::Idle);
    let leaked = only(&report);
    assert_eq!(leaked.kind(), TaskKind::Async);
    assert_eq!(leaked.name(), Some("waiter"));
    assert_eq!(leaked.state(), TaskState::Idle, "{report}");
    assert_eq!(leaked.spawned_at().unwrap().to_string(), site);
    assert_eq!(
        leaked.test(),
        Some("a_leaked_task_is_reported_with_its_site_name_and_state")
    );
    assert!(leaked.last_polled_ago().is_some());
    drop(tx);
    runtime.block_on(handle).unwrap();
    check(1000).expect("the task ended");
}

#[test]
fn aborted_tasks_and_tasks_of_a_runtime_shut_down_are_not_leaks() {
    for runtime in runtimes() {
        runtime.block_on(async {
            let aborted = leakcheck::tokio::spawn(std::future::pending::<()>());
            tokio::task::yield_now().await;
            aborted.abort();
            assert!(aborted.await.unwrap_err().is_cancelled());
        });
        // Left pending, then dropped with its runtime.
        let left = spawn_on(&runtime, std::future::pending::<()>());
        runtime.block_on(tokio::task::yield_now());
        drop(left);
        drop(runtime);
        check(1000).expect("aborted and shut-down tasks have ended");
    }
}

/// A future that hands its waker to a registry that loses it: the lost-wakeup bug.
struct LosesItsWaker {
    registry: Arc<Mutex<Vec<Waker>>>,
}

impl Future for LosesItsWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.registry.lock().unwrap().push(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn a_task_whose_wakers_are_all_dropped_is_lost() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    let registry = Arc::new(Mutex::new(Vec::new()));
    let future = LosesItsWaker {
        registry: Arc::clone(&registry),
    };
    let handle = spawn_on(&runtime, future);
    runtime.block_on(tokio::task::yield_now());
    assert_eq!(only(&check(5).unwrap_err()).state(), TaskState::Idle);
    registry.lock().unwrap().clear();
    let report = check(5).unwrap_err();
    assert_eq!(only(&report).state(), TaskState::Lost);
    assert!(report.to_string().contains("LOST"), "{report}");
    handle.abort();
    runtime.block_on(async { tokio::task::yield_now().await });
}

#[test]
fn a_send_on_a_full_channel_inside_waiting_is_blocked() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (site_tx, site_rx) = std::sync::mpsc::channel();
    runtime.block_on(tx.send(1)).unwrap();
    let handle = spawn_on(&runtime, async move {
        let (send, site) = spawned_here!(leakcheck::waiting("chan send", tx.send(2)));
        site_tx.send(site).unwrap();
        send.await.unwrap();
    });
    runtime.block_on(tokio::task::yield_now());
    let site = site_rx.recv().unwrap();
    let report = check(5).unwrap_err();
    let leaked = only(&report);
    assert_eq!(leaked.state(), TaskState::Blocked, "{report}");
    assert_eq!(leaked.blocked_on(), Some("chan send"));
    assert_eq!(leaked.blocked_at().unwrap().to_string(), site);
    runtime.block_on(async {
        assert_eq!(rx.recv().await, Some(1));
        handle.await.unwrap();
    });
    check(1000).expect("the send went through");
}

#[test]
fn spawn_blocking_is_a_tracked_thread_queued_then_running() {
    // One blocking thread: the second closure waits in the queue behind the first.
    let runtime = Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (release_tx, release_rx) = leakcheck::sync::mpsc::channel::<()>();
    let (first, first_site) = runtime.block_on(async {
        spawned_here!(leakcheck::tokio::spawn_blocking(move || release_rx
            .recv()
            .unwrap()))
    });
    let (second, second_site) =
        runtime.block_on(async { spawned_here!(leakcheck::tokio::spawn_blocking(|| 2)) });

    let report = report_when(|report| {
        report
            .tasks()
            .iter()
            .any(|task| task.blocked_on() == Some("chan receive"))
    });
    assert_eq!(report.tasks().len(), 2, "{report}");
    let running = report
        .tasks()
        .iter()
        .find(|t| t.spawned_at().unwrap().to_string() == first_site)
        .unwrap();
    assert_eq!(running.kind(), TaskKind::Thread);
    assert_eq!(running.state(), TaskState::Blocked);
    assert_eq!(running.blocked_on(), Some("chan receive"), "{report}");
    let queued = report
        .tasks()
        .iter()
        .find(|t| t.spawned_at().unwrap().to_string() == second_site)
        .unwrap();
    assert_eq!(queued.state(), TaskState::Blocked);
    assert_eq!(queued.blocked_on(), Some("blocking-pool queue"), "{report}");
    assert_eq!(queued.blocked_at().unwrap().to_string(), second_site);

    release_tx.send(()).unwrap();
    runtime.block_on(async {
        first.await.unwrap();
        assert_eq!(second.await.unwrap(), 2);
    });
    check(1000).expect("both closures ran");
}

#[test]
fn spawn_blocking_closures_dropped_unrun_at_shutdown_have_ended() {
    let runtime = Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    runtime.block_on(async {
        leakcheck::tokio::spawn_blocking(move || release_rx.recv_timeout(Duration::from_secs(5)));
        leakcheck::tokio::spawn_blocking(|| ());
    });
    // The second closure never gets a thread: the runtime drops it at shutdown.
    runtime.shutdown_background();
    release_tx.send(()).unwrap();
    check(5000).expect("the running closure returned and the queued one was dropped");
}

#[test]
fn tasks_spawned_by_a_tracked_task_are_its_children_in_the_same_scope() {
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (outer, outer_site) = runtime.block_on(async {
        spawned_here!(leakcheck::tokio::spawn(async {
            // Spawned on a worker thread, during the outer task's poll.
            leakcheck::tokio::spawn(std::future::pending::<()>()).abort_handle()
        }))
    });
    let inner = runtime.block_on(outer).unwrap();
    let report = report_when(|report| report.tasks()[0].state() == TaskState::Lost);
    let leaked = only(&report);
    // `pending()` keeps no waker: once polled, nothing can ever wake it.
    assert_eq!(leaked.state(), TaskState::Lost);
    assert_eq!(
        leaked.test(),
        Some("tasks_spawned_by_a_tracked_task_are_its_children_in_the_same_scope")
    );
    assert_eq!(leaked.parents()[0].spawned_at().to_string(), outer_site);
    assert!(leaked.parents()[0].exited());
    inner.abort();
    drop(runtime);
    check(1000).expect("the inner task was aborted");
}
