//! Tracked async tasks on a hand-written executor: states, spawn sites, scopes, cancellation,
//! and the non-tokio `async` `#[leak_test]`.
//!
//! The executor here is a few lines: a future is polled by hand, with wakers that a test can keep,
//! wake or drop at will, which is what makes every state of SPEC §3 reachable deterministically.

#[macro_use]
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{block_on, run_fixture};
use leakcheck::task::{track, track_named, Tracked};
use leakcheck::{leak_test, LeakReport, LeakedTask, Options, TaskKind, TaskState};

/// A check of the current scope that gives up quickly.
fn check(grace_ms: u64) -> Result<(), LeakReport> {
    leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(grace_ms))).verify()
}

/// The report's entry for the task `id`.
fn entry(report: &LeakReport, id: leakcheck::TaskId) -> &LeakedTask {
    report
        .tasks()
        .iter()
        .find(|task| task.id() == Some(id))
        .unwrap_or_else(|| panic!("task {id} is not in the report:\n{report}"))
}

/// The state the current scope's check sees for the tracked task `id`.
fn state_of(id: leakcheck::TaskId) -> TaskState {
    let report = check(10).expect_err("the task is alive");
    entry(&report, id).state()
}

/// A waker that counts its wakes, as an executor's would schedule the task.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls a future once, as an executor would.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

/// A one-shot event a future can wait for; the test decides what happens to the waiter's waker.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<GateState>>);

#[derive(Default)]
struct GateState {
    open: bool,
    waker: Option<Waker>,
}

impl Gate {
    async fn wait(self) {
        std::future::poll_fn(|cx| {
            let mut state = self.0.lock().unwrap();
            if state.open {
                return Poll::Ready(());
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Wakes the waiter without opening: a spurious wake.
    fn wake(&self) {
        let waker = self.0.lock().unwrap().waker.take();
        waker.expect("somebody waits").wake();
    }

    fn open(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.open = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The bug behind `lost`: forgets the waiter without waking it.
    fn forget_waiter(&self) {
        let waker = self.0.lock().unwrap().waker.take();
        drop(waker.expect("somebody waits"));
    }
}

#[test]
fn states_follow_polls_wakes_and_dropped_wakers() {
    let gate = Gate::default();
    let (task, site) = spawned_here!(track(gate.clone().wait()));
    let id = task.id();
    let mut task = Box::pin(task);
    let executor = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&executor));

    // Spawned, never polled: it waits for its first poll.
    let report = check(10).unwrap_err();
    let leaked = entry(&report, id);
    assert_eq!(leaked.state(), TaskState::Scheduled);
    assert_eq!(leaked.kind(), TaskKind::Async);
    assert_eq!(leaked.last_polled_ago(), None);
    assert_eq!(leaked.spawned_at().unwrap().to_string(), site);
    assert_eq!(
        leaked.test(),
        Some("states_follow_polls_wakes_and_dropped_wakers")
    );
    assert!(
        report.to_string().contains("last polled  never"),
        "{report}"
    );

    // Pending, its waker kept by the gate: idle.
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    let report = check(10).unwrap_err();
    assert_eq!(entry(&report, id).state(), TaskState::Idle);
    assert!(entry(&report, id).last_polled_ago().is_some());

    // Woken: scheduled, and the executor's waker was woken through the wrapper.
    gate.wake();
    assert_eq!(executor.0.load(Ordering::SeqCst), 1);
    assert_eq!(state_of(id), TaskState::Scheduled);

    // Polled again and pending: idle again.
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    assert_eq!(state_of(id), TaskState::Idle);

    // Every waker dropped: lost, and the report says so.
    gate.forget_waiter();
    let report = check(10).unwrap_err();
    assert_eq!(entry(&report, id).state(), TaskState::Lost);
    let text = report.to_string();
    assert!(
        text.contains("LOST") && text.contains("nothing can ever wake it again"),
        "{text}"
    );
    assert!(text.contains(&format!("spawned at   {site}")), "{text}");

    // Dropped (cancelled): not a leak.
    drop(task);
    check(1000).expect("a cancelled task has ended");
}

#[test]
fn a_task_is_running_while_inside_poll() {
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let task = track(std::future::poll_fn(move |_| {
        inside_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Poll::Ready(())
    }));
    let id = task.id();
    std::thread::scope(|scope| {
        scope.spawn(move || block_on(task));
        inside_rx.recv().unwrap();
        assert_eq!(state_of(id), TaskState::Running);
        release_tx.send(()).unwrap();
    });
    check(1000).expect("the task completed");
}

#[test]
fn waiting_marks_the_task_blocked_with_reason_site_and_since() {
    let gate = Gate::default();
    let waiter = gate.clone();
    let (site_tx, site_rx) = std::sync::mpsc::channel();
    let task = track(async move {
        let (wait, site) = spawned_here!(leakcheck::waiting("chan receive", waiter.wait()));
        site_tx.send(site).unwrap();
        wait.await;
        "done"
    });
    let id = task.id();
    let mut task = Box::pin(task);
    let waker = Waker::from(Arc::new(CountingWaker::default()));

    assert!(poll_once(task.as_mut(), &waker).is_pending());
    let site = site_rx.recv().unwrap();
    let report = check(10).unwrap_err();
    let leaked = entry(&report, id);
    assert_eq!(leaked.state(), TaskState::Blocked);
    assert_eq!(leaked.blocked_on(), Some("chan receive"));
    assert_eq!(leaked.blocked_at().unwrap().to_string(), site);
    assert!(
        report.to_string().contains("blocked in `chan receive`"),
        "{report}"
    );
    let first_blocked_for = leaked.in_state_for();

    // A spurious wake: scheduled; polled again, still inside `waiting`: blocked since the start.
    gate.wake();
    assert_eq!(state_of(id), TaskState::Scheduled);
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    let report = check(10).unwrap_err();
    assert_eq!(entry(&report, id).state(), TaskState::Blocked);
    assert!(
        entry(&report, id).in_state_for() > first_blocked_for,
        "blocked since the first pending poll"
    );

    // Done waiting: the task completes and has ended.
    gate.open();
    assert_eq!(poll_once(task.as_mut(), &waker), Poll::Ready("done"));
    check(1000).expect("the task completed");
}

#[test]
fn a_blocked_task_whose_wakers_are_all_dropped_is_lost() {
    let gate = Gate::default();
    let waiter = gate.clone();
    let mut task = Box::pin(track(leakcheck::waiting("response", waiter.wait())));
    let id = task.id();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    assert_eq!(state_of(id), TaskState::Blocked);
    gate.forget_waiter();
    assert_eq!(state_of(id), TaskState::Lost);
}

#[test]
fn a_self_waking_task_is_scheduled_not_lost() {
    // `yield_now` wakes its own waker by reference and keeps no clone.
    let mut yielded = false;
    let mut task = Box::pin(track(std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })));
    let id = task.id();
    let executor = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&executor));
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    assert_eq!(
        executor.0.load(Ordering::SeqCst),
        1,
        "the executor was asked to poll again"
    );
    assert_eq!(state_of(id), TaskState::Scheduled);
    assert!(poll_once(task.as_mut(), &waker).is_ready());
}

#[test]
fn wakers_are_reused_across_polls_while_one_is_held() {
    // A leaf future that keeps its waker and re-clones only if `will_wake` says it changed, as
    // tokio's do: the wrapper must stay the same across polls, or it would re-clone every time.
    let clones = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&clones);
    let mut kept: Option<Waker> = None;
    let mut polls = 0;
    let mut task = Box::pin(track(std::future::poll_fn(move |cx| {
        polls += 1;
        if !kept.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            kept = Some(cx.waker().clone());
            counter.fetch_add(1, Ordering::SeqCst);
        }
        if polls == 4 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })));
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    for _ in 0..3 {
        assert!(poll_once(task.as_mut(), &waker).is_pending());
    }
    assert!(poll_once(task.as_mut(), &waker).is_ready());
    assert_eq!(clones.load(Ordering::SeqCst), 1);
}

#[test]
fn completed_cancelled_and_never_polled_then_dropped_tasks_are_not_leaks() {
    assert_eq!(block_on(track(async { 7 })), 7);

    let gate = Gate::default();
    let mut cancelled = Box::pin(track(gate.clone().wait()));
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    assert!(poll_once(cancelled.as_mut(), &waker).is_pending());
    drop(cancelled);

    drop(track_named("never-polled", async {}));

    let start = Instant::now();
    check(5000).expect("every task ended");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a clean check does not wait"
    );
}

#[test]
fn a_task_that_finishes_during_the_grace_period_passes() {
    let gate = Gate::default();
    let task = track(gate.clone().wait());
    let runner = std::thread::spawn(move || block_on(task));
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        gate.open();
    });
    let start = Instant::now();
    check(5000).expect("the task finished within the grace period");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the check returned when the task ended"
    );
    runner.join().unwrap();
    opener.join().unwrap();
}

#[test]
fn tasks_made_inside_a_task_inherit_its_scope_and_have_it_as_parent() {
    let (outer, outer_site) = spawned_here!(track(async {
        // Spawned during the outer task's poll, on another thread than the test's.
        let inner = track_named("inner", std::future::pending::<()>());
        let id = inner.id();
        std::mem::forget(inner);
        id
    }));
    let outer_id = outer.id();
    // A thread that is not a test: its own scope would be a thread's, yet the inner task joins
    // the test's scope through the outer task.
    let inner_id = std::thread::Builder::new()
        .name("executor".into())
        .spawn(move || block_on(outer))
        .unwrap()
        .join()
        .unwrap();

    let report = check(10).unwrap_err();
    assert_eq!(report.tasks().len(), 1, "{report}");
    let inner = entry(&report, inner_id);
    assert_eq!(inner.name(), Some("inner"));
    assert_eq!(
        inner.test(),
        Some("tasks_made_inside_a_task_inherit_its_scope_and_have_it_as_parent")
    );
    let parent = &inner.parents()[0];
    assert_eq!(parent.id(), outer_id);
    assert_eq!(parent.spawned_at().to_string(), outer_site);
    assert!(parent.exited());
    assert!(
        report
            .to_string()
            .contains(&format!("spawned by   {outer_id}")),
        "{report}"
    );
}

#[test]
fn parallel_tests_do_not_blame_each_other() {
    // Two threads named like tests get a test scope each, as libtest's threads do.
    let both_leaked = Arc::new(Barrier::new(2));
    let run = |name: &'static str| {
        let both_leaked = Arc::clone(&both_leaked);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let leak = track_named(name, std::future::pending::<()>());
                both_leaked.wait();
                let report = check(20).unwrap_err();
                assert_eq!(report.tasks().len(), 1, "{report}");
                assert_eq!(report.tasks()[0].id(), Some(leak.id()));
                assert_eq!(report.tasks()[0].test(), Some(name));
                drop(leak);
                check(1000).expect("the leak was cancelled");
            })
            .unwrap()
    };
    let left = run("parallel::left");
    let right = run("parallel::right");
    left.join().unwrap();
    right.join().unwrap();
}

#[test]
fn waiting_on_a_tracked_thread_marks_the_thread_blocked() {
    let gate = Gate::default();
    let waiter = gate.clone();
    let (site_tx, site_rx) = std::sync::mpsc::channel();
    let thread = leakcheck::thread::spawn(move || {
        let (wait, site) = spawned_here!(leakcheck::waiting("response", waiter.wait()));
        site_tx.send(site).unwrap();
        block_on(wait);
    });
    let site = site_rx.recv().unwrap();
    // The thread is blocked once its first poll returned pending.
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = check(10).unwrap_err();
        if report.tasks()[0].state() == TaskState::Blocked || Instant::now() > deadline {
            break report;
        }
    };
    let leaked = &report.tasks()[0];
    assert_eq!(leaked.kind(), TaskKind::Thread);
    assert_eq!(leaked.state(), TaskState::Blocked, "{report}");
    assert_eq!(leaked.blocked_on(), Some("response"));
    assert_eq!(leaked.blocked_at().unwrap().to_string(), site);
    gate.open();
    thread.join().unwrap();
    check(1000).expect("the thread ended");
}

#[test]
fn waiting_outside_a_tracked_task_is_just_the_future() {
    assert_eq!(block_on(leakcheck::waiting("nothing", async { 3 })), 3);
    check(1000).expect("nothing was tracked");
}

#[test]
fn tracked_is_send_when_its_future_is() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Sync>(_: &T) {}
    let task = track(async {});
    assert_send(&task);
    assert_sync(&task);
    assert_send(&leakcheck::waiting("x", async {}));
    let debug = format!("{task:?}");
    assert!(
        debug.starts_with("Tracked {") && debug.contains(&format!("id: {:?}", task.id())),
        "{debug}"
    );
}

#[test]
#[should_panic(expected = "`Tracked` polled after completion")]
fn polling_after_completion_panics() {
    let mut task = Box::pin(track(async {}));
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    assert!(poll_once(task.as_mut(), &waker).is_ready());
    let _ = poll_once(task.as_mut(), &waker);
}

// ---------------------------------------------------------------------------------------------
// The `async` `#[leak_test]` without a runtime (`run_async_test`).

#[leak_test]
async fn an_async_test_whose_tasks_end_passes() {
    let gate = Gate::default();
    let runner = std::thread::spawn({
        let task = track(gate.clone().wait());
        move || block_on(task)
    });
    gate.open();
    runner.join().unwrap();
}

#[leak_test]
async fn an_async_test_can_return_a_result() -> Result<(), String> {
    let value = track(async { Ok::<u32, String>(2) }).await?;
    assert_eq!(value, 2);
    Ok(())
}

#[leak_test(timeout = "50ms")]
#[ignore = "fixture: run by async_tasks.rs itself"]
async fn fixture_async_test_leaks_an_idle_task() {
    let gate = Gate::default();
    let mut task = Box::pin(track_named("waiter", gate.clone().wait()));
    // Polled once by an executor that then forgets it; the gate keeps its waker and never opens.
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    assert!(poll_once(task.as_mut(), &waker).is_pending());
    std::mem::forget(task);
    std::mem::forget(gate);
}

#[test]
fn an_async_test_that_leaks_fails_with_the_report() {
    let run = run_fixture("fixture_async_test_leaks_an_idle_task", &[]);
    run.assert_failed()
        .assert_contains(
            "leakcheck: 1 unexpected task in test `fixture_async_test_leaks_an_idle_task`",
        )
        .assert_contains("1 × async task \"waiter\", idle for")
        .assert_contains("tasks        #")
        .assert_contains("\"waiter\"")
        .assert_contains("spawned at   tests/async_tasks.rs:");
}

#[test]
#[ignore = "fixture: run by async_tasks.rs itself"]
fn fixture_run_async_test_directly() {
    leakcheck::__private::run_async_test(
        concat!(module_path!(), "::fixture_run_async_test_directly"),
        Options::new().timeout(Duration::from_millis(50)),
        async {
            std::mem::forget(track(std::future::pending::<()>()));
        },
    );
}

#[test]
fn run_async_test_checks_the_test_scope() {
    run_fixture("fixture_run_async_test_directly", &[])
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_run_async_test_directly`")
        .assert_contains("1 × async task, scheduled for")
        .assert_contains("last polled  never");
}

/// `Tracked` is usable through the trait objects executors store.
#[test]
fn tracked_futures_box_as_dyn_future() {
    let boxed: Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(track(async { 1 }));
    assert_eq!(block_on(boxed), 1);
    let _: fn(Tracked<std::future::Ready<()>>) = drop;
}
