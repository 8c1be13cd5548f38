//! End to end: `VerifyGuard::verify_async` waits for survivors without blocking its thread, on a
//! current-thread tokio runtime and on an executor that has no timer at all.

#[macro_use]
mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{task, thread, Options, TaskKind, TaskState};

use common::block_on;

fn grace(ms: u64) -> Options {
    Options::new().timeout(Duration::from_millis(ms))
}

/// Polls `a` and `b` in turn until both are done: two tasks of one single-threaded executor.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    std::future::poll_fn(move |cx| {
        if a_out.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                a_out = Some(out);
            }
        }
        if b_out.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                b_out = Some(out);
            }
        }
        if a_out.is_some() && b_out.is_some() {
            Poll::Ready((a_out.take().unwrap(), b_out.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A future that is pending `times` times, asking to be polled again each time.
async fn yield_times(times: usize) {
    let mut left = times;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(feature = "tokio")]
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[cfg(feature = "tokio")]
#[test]
fn on_a_current_thread_runtime_a_survivor_that_needs_the_runtime_ends_within_the_grace() {
    current_thread_runtime().block_on(async {
        let guard = leakcheck::verify_none_with(grace(10_000));
        // It can only finish if this thread runs the runtime while the check waits.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        leakcheck::tokio::spawn(async move {
            let _ = rx.await;
        });
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(());
        });
        guard
            .verify_async()
            .await
            .expect("the survivor ended while the check awaited");
    });
}

#[cfg(feature = "tokio")]
#[test]
fn on_a_current_thread_runtime_a_real_leak_is_reported() {
    let runtime = current_thread_runtime();
    let (report, site) = runtime.block_on(async {
        let guard = leakcheck::verify_none_with(grace(100));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (_task, site) = spawned_here!(leakcheck::tokio::spawn(async move {
            let _ = rx.await;
        }));
        let report = guard.verify_async().await.unwrap_err();
        drop(tx);
        (report, site)
    });
    assert_eq!(report.tasks().len(), 1, "{report}");
    let leaked = &report.tasks()[0];
    assert_eq!(leaked.kind(), TaskKind::Async);
    assert_eq!(leaked.state(), TaskState::Idle);
    assert_eq!(leaked.spawned_at().unwrap().to_string(), site);
    assert_eq!(
        leaked.test(),
        Some("on_a_current_thread_runtime_a_real_leak_is_reported")
    );
    let text = report.to_string();
    assert!(
        text.contains(
            "1 unexpected task in test `on_a_current_thread_runtime_a_real_leak_is_reported`"
        ),
        "{text}"
    );
}

#[test]
fn on_an_executor_without_a_timer_a_survivor_on_the_same_thread_ends_within_the_grace() {
    let guard = leakcheck::verify_none_with(grace(10_000));
    // A tracked task of this very executor: it only ends if the check lets the thread run it.
    let survivor = task::track(yield_times(50));
    let ((), verdict) = block_on(join(survivor, guard.verify_async()));
    verdict.expect("the survivor ended while the check awaited");
}

#[test]
fn on_an_executor_without_a_timer_the_grace_period_ends_and_a_leak_is_reported() {
    let guard = leakcheck::verify_none_with(grace(100));
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let (_sender, site) = spawned_here!(thread::spawn(move || tx.send(7)));
    // Nothing wakes this executor but leakcheck's own timer.
    let report = block_on(guard.verify_async()).unwrap_err();
    drop(rx);
    assert_eq!(report.tasks().len(), 1, "{report}");
    let leaked = &report.tasks()[0];
    assert_eq!(leaked.kind(), TaskKind::Thread);
    assert_eq!(leaked.state(), TaskState::Blocked);
    assert_eq!(leaked.blocked_on(), Some("chan send"));
    assert_eq!(leaked.spawned_at().unwrap().to_string(), site);
    assert_eq!(
        leaked.test(),
        Some("on_an_executor_without_a_timer_the_grace_period_ends_and_a_leak_is_reported")
    );
}

#[test]
fn a_clean_scope_passes_at_once() {
    let guard = leakcheck::verify_none();
    thread::spawn(|| 2 + 2).join().unwrap();
    block_on(guard.verify_async()).unwrap();
}
