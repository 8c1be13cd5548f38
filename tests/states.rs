//! Task states stay true when blocking annotations nest or race with wakers.

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc as std_mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use leakcheck::{LeakReport, Options, TaskState};

fn check() -> Result<(), LeakReport> {
    leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50))).verify()
}

/// Polls `future` with a waker that does nothing until it is ready (the futures here are ready
/// after a poll or two).
fn poll_until_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Pending on its first poll (waking itself), ready on the second.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

#[test]
fn a_blocking_call_inside_a_poll_stays_blocked_when_the_last_waker_is_dropped() {
    let (inside_tx, inside_rx) = std_mpsc::channel::<()>();
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let task = leakcheck::task::track(std::future::poll_fn(move |cx| {
        let clone = cx.waker().clone();
        leakcheck::blocking("db query", || {
            // The last clone of the waker goes away on another thread while this poll is
            // inside a blocking call.
            std::thread::spawn(move || drop(clone)).join().unwrap();
            inside_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        Poll::Ready(())
    }));
    let poller = std::thread::spawn(move || poll_until_ready(task));
    inside_rx.recv().unwrap();

    let report = check().unwrap_err();
    // The poller thread is the test's too (every thread is tracked from its creation).
    let tasks: Vec<_> = report
        .tasks()
        .iter()
        .filter(|task| task.kind() == leakcheck::TaskKind::Async)
        .collect();
    let [task] = tasks[..] else {
        panic!("{report}")
    };
    assert_eq!(task.state(), TaskState::Blocked, "{report}");
    assert_eq!(task.blocked_on(), Some("db query"), "{report}");

    release_tx.send(()).unwrap();
    poller.join().unwrap();
    check().expect("the task completed");
}

#[test]
fn nested_waiting_on_a_thread_leaves_no_stale_blocked_state() {
    let (done_tx, done_rx) = std_mpsc::channel::<()>();
    let (stop_tx, stop_rx) = std_mpsc::channel::<()>();
    let worker = leakcheck::thread::spawn(move || {
        poll_until_ready(leakcheck::waiting("outer", async {
            leakcheck::waiting("inner", yield_once()).await;
            yield_once().await;
        }));
        done_tx.send(()).unwrap();
        // Carries on working: it is running, blocked in nothing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while stop_rx.try_recv().is_err() && Instant::now() < deadline {
            std::thread::yield_now();
        }
    });
    done_rx.recv().unwrap();

    let report = check().unwrap_err();
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(task.state(), TaskState::Running, "{report}");
    assert_eq!(task.blocked_on(), None, "{report}");

    stop_tx.send(()).unwrap();
    worker.join().unwrap();
}

#[test]
fn an_outer_blocking_call_keeps_its_start_time_across_an_inner_one() {
    let (inner_done_tx, inner_done_rx) = std_mpsc::channel::<()>();
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let worker = leakcheck::thread::spawn(move || {
        leakcheck::blocking("transaction", || {
            std::thread::sleep(Duration::from_millis(150));
            leakcheck::blocking("statement", || ());
            inner_done_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
    });
    inner_done_rx.recv().unwrap();
    let report = check().unwrap_err();
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(task.blocked_on(), Some("transaction"), "{report}");
    // Blocked in the transaction since before the 150 ms sleep, not since the statement ended.
    assert!(
        task.in_state_for() >= Duration::from_millis(140),
        "{report}"
    );
    release_tx.send(()).unwrap();
    worker.join().unwrap();
}
