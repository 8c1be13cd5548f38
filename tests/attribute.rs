//! `#[leak_test]` end to end, through the real test harness.
//!
//! A test that leaks must *fail*, with the right report. The leaky tests are fixtures, marked
//! `#[ignore]` so that a normal run skips them; the real tests re-run this very test binary on one
//! fixture (see `common::run_fixture`) and assert on its exit status and output.
//!
//! Spawn sites are found in this file's own source, at the line marked `// site: NAME`, so the
//! assertions do not depend on line numbers.

mod common;

use std::time::Duration;

use common::run_fixture;
use leakcheck::leak_test;
use leakcheck::sync::mpsc;

const FIXTURE: &str = "fixture: run by attribute.rs itself";

/// `tests/attribute.rs:LINE:COLUMN` of the spawn call on the line marked `// site: {marker}`.
///
/// The column is where `leakcheck::` starts on that line, as `#[track_caller]` reports a call.
fn site_of(marker: &str) -> String {
    site_of_call(marker, "leakcheck::")
}

/// `tests/attribute.rs:LINE:COLUMN` of the call starting with `call` on the line marked
/// `// site: {marker}`.
fn site_of_call(marker: &str, call: &str) -> String {
    let (line, text) = common::marked_line(include_str!("attribute.rs"), marker);
    let column = text
        .find(call)
        .unwrap_or_else(|| panic!("line {line} has no `{call}` call"));
    format!("{}:{line}:{}", file!(), column + 1)
}

// ---------------------------------------------------------------------------------------------
// Sync tests

#[leak_test]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_sync_leak() {
    // Two receivers whose sender is never dropped, and one sender nobody receives from.
    for _ in 0..2 {
        let (keep_open, receiver) = mpsc::channel::<u32>();
        leakcheck::thread::spawn(move || receiver.recv()); // site: receivers
        std::mem::forget(keep_open);
    }
    let (sender, nobody_receives) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || sender.send(1)); // site: sender
    std::mem::forget(nobody_receives);
}

#[test]
fn a_leaky_sync_test_fails_with_a_report() {
    let run = run_fixture("fixture_sync_leak", &[]);
    run.assert_failed()
        .assert_contains("fixture_sync_leak")
        .assert_contains("3 unexpected tasks")
        .assert_contains("blocked in `chan send`")
        .assert_contains(&site_of("sender"))
        .assert_contains(&site_of("receivers"))
        // The two receivers share a spawn site and a state: one group of two.
        .assert_contains("2 × thread, blocked in `chan receive`")
        .assert_contains("1 × thread, blocked in `chan send`");
    assert!(
        !run.output.contains("panicked while processing panic"),
        "{}",
        run.output
    );
}

#[leak_test]
fn a_clean_sync_test_passes() {
    let (jobs, queue) = mpsc::channel::<u32>();
    let worker = leakcheck::thread::spawn(move || queue.iter().sum::<u32>());
    for job in 1..=3 {
        jobs.send(job).unwrap();
    }
    drop(jobs);
    assert_eq!(worker.join().unwrap(), 6);
}

#[leak_test]
fn a_named_thread_that_is_joined_passes() {
    let worker = leakcheck::thread::Builder::new()
        .name("joined-worker".into())
        .spawn(|| std::thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(worker.join().unwrap().as_deref(), Some("joined-worker"));
}

/// `?` converts to the function's error type, and `return` leaves the body (the check still runs).
#[leak_test]
fn tests_returning_result_can_use_the_question_mark() -> Result<(), std::num::ParseIntError> {
    let answer: u32 = "42".parse()?;
    assert_eq!(answer, 42);
    if answer == 42 {
        return Ok(());
    }
    unreachable!("`return` leaves the test body")
}

#[leak_test]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_result_error() -> Result<(), std::num::ParseIntError> {
    let _worker = leakcheck::thread::spawn(|| ()).join();
    let _: u32 = "forty-two".parse()?;
    Ok(())
}

#[test]
fn an_error_from_the_question_mark_fails_the_test() {
    run_fixture("fixture_result_error", &[])
        .assert_failed()
        .assert_contains("ParseIntError")
        .assert_contains("InvalidDigit");
}

#[leak_test]
#[should_panic(expected = "the test's own failure")]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_panics_and_leaks() {
    let (keep_open, receiver) = mpsc::channel::<u32>();
    leakcheck::thread::spawn(move || receiver.recv()); // site: panics_and_leaks
    std::mem::forget(keep_open);
    panic!("the test's own failure");
}

#[test]
fn should_panic_is_kept_and_the_leak_is_still_reported() {
    // The panic is the expected outcome: the test passes, the leak report goes to stderr, and
    // nothing panics twice.
    run_fixture("fixture_panics_and_leaks", &[])
        .assert_passed()
        .assert_contains("fixture_panics_and_leaks - should panic ... ok")
        .assert_contains("1 unexpected task")
        .assert_contains("blocked in `chan receive`")
        .assert_contains(&site_of("panics_and_leaks"));
}

#[test]
fn ignore_is_kept_with_its_reason() {
    // Without `--ignored`, libtest skips the fixture and shows the reason.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let output = std::process::Command::new(exe)
        .args(["fixture_sync_leak", "--exact", "--test-threads=1"])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("test fixture_sync_leak ... ignored, {FIXTURE}")),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// Arguments

#[leak_test]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_slow_thread_default_timeout() {
    let slow = || std::thread::sleep(Duration::from_millis(400));
    leakcheck::thread::spawn(slow); // site: slow
}

#[leak_test(timeout = "10s")]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_slow_thread_long_timeout() {
    leakcheck::thread::spawn(|| std::thread::sleep(Duration::from_millis(400)));
}

#[test]
fn timeout_gives_a_slow_thread_time_to_finish() {
    // `LEAKCHECK_TIMEOUT=100ms` (set by `run_fixture`) is too short for a 400 ms thread...
    run_fixture("fixture_slow_thread_default_timeout", &[])
        .assert_failed()
        .assert_contains("1 unexpected task")
        .assert_contains(&site_of("slow"));
    // ...and `timeout = "10s"` overrides it. The check returns as soon as the thread exits.
    let started = std::time::Instant::now();
    run_fixture("fixture_slow_thread_long_timeout", &[]).assert_passed();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the grace period ends when the last survivor exits, not at the timeout"
    );
}

#[leak_test(ignore_name = "stuck-*")]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_leak_ignored_by_name() {
    let (keep_open, receiver) = mpsc::channel::<u32>();
    leakcheck::thread::Builder::new()
        .name("stuck-1".into())
        .spawn(move || receiver.recv())
        .unwrap();
    std::mem::forget(keep_open);
}

#[leak_test(ignore_spawned_at = "tests/attribute.rs")]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_leak_ignored_by_spawn_site() {
    let (keep_open, receiver) = mpsc::channel::<u32>();
    leakcheck::thread::spawn(move || receiver.recv());
    std::mem::forget(keep_open);
}

#[leak_test(ignore_name = "someone-else-*")]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_leak_not_matching_the_ignore() {
    let (keep_open, receiver) = mpsc::channel::<u32>();
    leakcheck::thread::Builder::new()
        .name("stuck-2".into())
        .spawn(move || receiver.recv())
        .unwrap();
    std::mem::forget(keep_open);
}

#[test]
fn ignore_arguments_forgive_matching_leaks_only() {
    run_fixture("fixture_leak_ignored_by_name", &[]).assert_passed();
    run_fixture("fixture_leak_ignored_by_spawn_site", &[]).assert_passed();
    run_fixture("fixture_leak_not_matching_the_ignore", &[])
        .assert_failed()
        .assert_contains("stuck-2")
        .assert_contains("blocked in `chan receive`");
}

/// Every argument form at once, in a process of its own (`process_wide` looks at every thread).
#[leak_test(
    timeout = "2s",
    ignore_name = "metrics-*",
    ignore_name = "reaper",
    ignore_spawned_at = "src/not_here.rs:1",
    ignore_function = "not_here::flush_loop",
    ignore_current,
    process_wide
)]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_every_argument() -> Result<(), String> {
    let worker = leakcheck::thread::spawn(|| "done".to_owned());
    let done = worker
        .join()
        .map_err(|_| "the worker panicked".to_owned())?;
    assert_eq!(done, "done");
    Ok(())
}

#[test]
fn every_argument_form_compiles_and_runs() {
    run_fixture("fixture_every_argument", &[]).assert_passed();
}

// ---------------------------------------------------------------------------------------------
// Async tests on leakcheck's built-in executor

/// Polls `future` once, with the context of the current task.
async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(
            std::pin::Pin::new(&mut *future),
            cx,
        ))
    })
    .await
}

#[leak_test]
async fn a_clean_async_test_passes() {
    let value = leakcheck::task::track(async { 6 * 7 }).await;
    assert_eq!(value, 42);
    // A task that is pending once, then completes.
    let (sender, receiver) = mpsc::channel::<u32>();
    let mut task = Box::pin(leakcheck::task::track(async move {
        std::future::poll_fn(|cx| match receiver.try_recv() {
            Ok(value) => std::task::Poll::Ready(value),
            Err(_) => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }));
    assert!(poll_once(&mut task).await.is_pending());
    sender.send(7).unwrap();
    assert_eq!(task.await, 7);
}

#[leak_test]
async fn async_tests_can_return_results() -> Result<(), std::num::ParseIntError> {
    let answer: u32 = async { "42".parse() }.await?;
    assert_eq!(answer, 42);
    Ok(())
}

#[leak_test]
#[ignore = "fixture: run by attribute.rs itself"]
async fn fixture_async_leak() {
    // A tracked task polled once and then forgotten: it never completes.
    let never = std::future::pending::<()>();
    let mut task = Box::pin(leakcheck::task::track(never)); // site: async_leak
    assert!(poll_once(&mut task).await.is_pending());
    std::mem::forget(task);
}

#[test]
fn a_leaky_async_test_fails_with_a_report() {
    let run = run_fixture("fixture_async_leak", &[]);
    run.assert_failed()
        .assert_contains("fixture_async_leak")
        .assert_contains("1 unexpected task")
        .assert_contains("1 × async task")
        .assert_contains(&site_of("async_leak"));
    // `pending()` dropped the waker it was polled with: nothing can wake the task again.
    assert!(run.output.to_lowercase().contains("lost"), "{}", run.output);
}

// ---------------------------------------------------------------------------------------------
// Tokio (the reports of tokio tests are covered by the tokio end-to-end tests; these exercise the
// expansion of each flavor)

#[cfg(feature = "tokio")]
#[leak_test(tokio)]
async fn a_clean_tokio_current_thread_test_passes() {
    let task = tokio::spawn(async { 6 * 7 });
    assert_eq!(task.await.unwrap(), 42);
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, flavor = "current_thread", start_paused = true)]
async fn a_clean_tokio_test_with_a_paused_clock_passes() {
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(started.elapsed() >= Duration::from_secs(3600));
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_tokio_multi_thread_test_passes() -> Result<(), tokio::task::JoinError> {
    let tasks: Vec<_> = (0..4u32)
        .map(|n| tokio::spawn(async move { n * 2 }))
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await?;
    }
    assert_eq!(sum, 12);
    Ok(())
}

/// `flavor = "local"`: tokio's `LocalRuntime`, where `!Send` tasks can be spawned.
#[cfg(feature = "tokio")]
#[leak_test(tokio, flavor = "local")]
async fn a_clean_tokio_local_test_passes() {
    // `Rc` is not `Send`: only a local runtime can run this task.
    let shared = std::rc::Rc::new(std::cell::Cell::new(0));
    let task = tokio::task::spawn_local({
        let shared = std::rc::Rc::clone(&shared);
        async move { shared.set(42) }
    });
    task.await.unwrap();
    assert_eq!(shared.get(), 42);
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, flavor = "local", start_paused = true)]
async fn a_clean_tokio_local_test_with_a_paused_clock_passes() {
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(started.elapsed() >= Duration::from_secs(3600));
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, flavor = "local")]
#[ignore = "fixture: run by attribute.rs itself"]
async fn fixture_tokio_local_leak() {
    leakcheck::tokio::spawn(std::future::pending::<()>()); // site: local_leak
}

#[cfg(feature = "tokio")]
#[test]
fn a_leak_under_the_local_flavor_fails_with_its_spawn_site() {
    run_fixture("fixture_tokio_local_leak", &[])
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_tokio_local_leak`")
        .assert_contains(&site_of("local_leak"));
}

/// Plain `spawn_local` calls are seen through tokio's task hooks, which need `tokio_unstable`.
#[cfg(all(feature = "tokio", tokio_unstable))]
#[leak_test(tokio, flavor = "local")]
#[ignore = "fixture: run by attribute.rs itself"]
async fn fixture_tokio_local_plain_spawn_local_leak() {
    let not_send = std::rc::Rc::new(());
    let never = async move {
        std::future::pending::<()>().await;
        drop(not_send);
    };
    tokio::task::spawn_local(never); // site: spawn_local_leak
}

#[cfg(all(feature = "tokio", tokio_unstable))]
#[test]
fn a_plain_spawn_local_leak_under_the_local_flavor_fails_with_its_spawn_site() {
    run_fixture("fixture_tokio_local_plain_spawn_local_leak", &[])
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_tokio_local_plain_spawn_local_leak`")
        .assert_contains(&site_of_call(
            "spawn_local_leak",
            "tokio::task::spawn_local",
        ));
}

// ---------------------------------------------------------------------------------------------
// `crate = path`: a crate that re-exports leakcheck, used without naming `leakcheck`

/// What a test-support crate that re-exports leakcheck gives its users.
mod support {
    pub use leakcheck as checks;
}

#[support::checks::leak_test(crate = support::checks)]
#[ignore = "fixture: run by attribute.rs itself"]
fn fixture_leak_through_a_reexport() {
    let (keep_open, receiver) = support::checks::sync::mpsc::channel::<u32>();
    support::checks::thread::spawn(move || receiver.recv()); // site: reexport_leak
    std::mem::forget(keep_open);
}

#[test]
fn a_test_through_a_reexport_reports_its_leak() {
    run_fixture("fixture_leak_through_a_reexport", &[])
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_leak_through_a_reexport`")
        .assert_contains("1 × thread, blocked in `chan receive`")
        .assert_contains(&site_of_call("reexport_leak", "support::checks::"));
}

#[support::checks::leak_test(crate = "self::support::checks", timeout = "1s")]
async fn a_clean_async_test_through_a_reexport_passes() {
    assert_eq!(support::checks::task::track(async { 6 * 7 }).await, 42);
}

#[cfg(feature = "tokio")]
#[support::checks::leak_test(crate = crate::support::checks, tokio, flavor = "multi_thread")]
async fn a_clean_tokio_test_through_a_reexport_passes() {
    assert_eq!(
        support::checks::tokio::spawn(async { 6 * 7 })
            .await
            .unwrap(),
        42
    );
}

// ---------------------------------------------------------------------------------------------
// The generated code raises no warning, whatever the body's shape: a body that ends in
// `panic!`, returns early, uses `?` or never returns compiles as cleanly as under `#[test]`
// (`#[tokio::test]` bodies ending in `panic!` once gave `unreachable expression`). Any warning
// in this module fails the build of this test.

#[deny(warnings)]
mod warning_free {
    use leakcheck::leak_test;
    use std::num::ParseIntError;

    fn parse(text: &str) -> Result<u32, ParseIntError> {
        text.parse()
    }

    #[leak_test]
    #[should_panic(expected = "boom")]
    fn sync_ends_in_panic() {
        panic!("boom")
    }

    #[leak_test]
    #[ignore = "compiled for its warnings: a `Result` test cannot be `should_panic`"]
    fn sync_result_ends_in_panic() -> Result<(), ParseIntError> {
        parse("1")?;
        panic!("boom");
    }

    #[leak_test]
    fn sync_question_mark_and_early_return() -> Result<(), ParseIntError> {
        if parse("7")? == 7 {
            return Ok(());
        }
        unreachable!("7 is 7")
    }

    #[leak_test]
    fn sync_early_return() {
        if parse("1").is_ok() {
            return;
        }
        panic!("1 parses");
    }

    #[leak_test]
    #[ignore = "compiled for its warnings: the body never returns"]
    fn sync_loops_forever() {
        loop {
            std::thread::park();
        }
    }

    #[leak_test]
    #[should_panic(expected = "boom")]
    async fn async_ends_in_panic() {
        panic!("boom")
    }

    #[leak_test]
    #[ignore = "compiled for its warnings: a `Result` test cannot be `should_panic`"]
    async fn async_result_ends_in_panic() -> Result<(), ParseIntError> {
        parse("1")?;
        panic!("boom");
    }

    #[leak_test]
    async fn async_question_mark_and_early_return() -> Result<(), ParseIntError> {
        if async { parse("7") }.await? == 7 {
            return Ok(());
        }
        unreachable!("7 is 7")
    }

    #[leak_test]
    async fn async_early_return() {
        if parse("1").is_ok() {
            return;
        }
        panic!("1 parses");
    }

    #[leak_test]
    #[ignore = "compiled for its warnings: the body never returns"]
    async fn async_loops_forever() {
        loop {
            std::future::pending::<()>().await;
        }
    }

    #[cfg(feature = "tokio")]
    #[leak_test(tokio)]
    #[should_panic(expected = "boom")]
    async fn tokio_ends_in_panic() {
        tokio::task::yield_now().await;
        panic!("boom")
    }

    #[cfg(feature = "tokio")]
    #[leak_test(tokio, flavor = "multi_thread")]
    #[ignore = "compiled for its warnings: a `Result` test cannot be `should_panic`"]
    async fn tokio_result_ends_in_panic() -> Result<(), ParseIntError> {
        parse("1")?;
        panic!("boom");
    }

    #[cfg(feature = "tokio")]
    #[leak_test(tokio, flavor = "local")]
    async fn tokio_question_mark_and_early_return() -> Result<(), ParseIntError> {
        if async { parse("7") }.await? == 7 {
            return Ok(());
        }
        unreachable!("7 is 7")
    }

    #[cfg(feature = "tokio")]
    #[leak_test(tokio)]
    async fn tokio_early_return() {
        if parse("1").is_ok() {
            return;
        }
        panic!("1 parses");
    }

    #[cfg(feature = "tokio")]
    #[leak_test(tokio)]
    #[ignore = "compiled for its warnings: the body never returns"]
    async fn tokio_loops_forever() {
        loop {
            tokio::task::yield_now().await;
        }
    }
}
