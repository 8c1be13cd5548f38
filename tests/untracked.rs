//! End to end: OS threads leakcheck did not spawn (plain `std::thread::spawn`, a runtime nobody
//! shut down) are caught when tests run one at a time, and left to the global check, with a
//! note, when they run in parallel.
//!
//! Whether tests run one at a time is a property of the whole process, so every scenario runs
//! as a fixture in a child process with the runner configuration it needs: `--test-threads=1`
//! (one at a time), or `--test-threads=2` without nextest's variables (in parallel). The same
//! holds under `cargo test` and `cargo nextest run`. Linux only: elsewhere untracked threads are
//! not available, and reports say so.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use leakcheck::{Options, StackOrigin, TaskKind};

use common::{Fixture, FixtureRun};

/// Runs the `#[ignore]`d test `name` of this binary with tests in parallel (two test threads,
/// no nextest): per-test checks must leave untracked threads alone.
fn run_fixture_in_parallel_mode(name: &str) -> FixtureRun {
    Fixture::new(name).envs(CENSUS).test_threads(2).run()
}

/// These tests are about the census of threads leakcheck did not see created, so their fixtures
/// run in census mode (tests/plain_threads.rs covers tracking every thread from its creation).
const CENSUS: &[(&str, &str)] = &[("LEAKCHECK_THREADS", "census")];

fn run_fixture(name: &str, env: &[(&str, &str)]) -> FixtureRun {
    Fixture::new(name).envs(CENSUS).envs(env).run()
}

/// Where a plain thread waits forever: it must show in the thread's live stack.
#[inline(never)]
fn park_forever_untracked(rx: std::sync::mpsc::Receiver<()>) {
    let _ = rx.recv();
}

/// Spawns a plain std thread named `name` that waits forever (its sender is leaked).
fn spawn_plain_thread_forever(name: &str) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::mem::forget(tx);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || park_forever_untracked(rx))
        .unwrap();
}

/// Fails with the report after asserting on its structure, so the parent sees the text.
fn fail_with(report: leakcheck::LeakReport) -> ! {
    panic!("REPORT FOLLOWS\n{report}")
}

// --- one test at a time ---------------------------------------------------------------------

#[test]
#[ignore = "fixture: run by a_plain_std_thread_is_caught_when_tests_run_one_at_a_time"]
fn fixture_plain_thread_survivor() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
    spawn_plain_thread_forever("plain-leaker");
    let report = guard.verify().expect_err("the plain thread is alive");
    assert_eq!(report.tasks().len(), 1, "{report}");
    let task = &report.tasks()[0];
    assert_eq!(task.kind(), TaskKind::UntrackedThread);
    assert_eq!(task.id(), None);
    assert_eq!(task.name(), Some("plain-leaker"));
    let os = task.os_thread().expect("the kernel's view of the thread");
    assert!(os.tid() > 0);
    assert_eq!(os.kernel_state(), "S (sleeping)", "{report}");
    let stack = task.stack().expect("a live stack of the untracked thread");
    assert_eq!(stack.origin(), StackOrigin::Live);
    assert!(
        stack.contains_function("untracked::park_forever_untracked"),
        "{report}"
    );
    fail_with(report)
}

#[test]
fn a_plain_std_thread_is_caught_when_tests_run_one_at_a_time() {
    run_fixture("fixture_plain_thread_survivor", &[])
        .assert_failed()
        .assert_contains("REPORT FOLLOWS")
        .assert_contains("leakcheck: 1 unexpected task in test `fixture_plain_thread_survivor`")
        .assert_contains(
            "1 × untracked thread \"plain-leaker\", alive (not spawned through leakcheck)",
        )
        .assert_contains("kernel       S (sleeping)")
        .assert_contains("\"plain-leaker\"")
        .assert_contains("stack (live, from the thread):")
        .assert_contains("untracked::park_forever_untracked");
}

#[cfg(feature = "tokio")]
#[test]
#[ignore = "fixture: run by a_forgotten_tokio_runtime_is_caught_when_tests_run_one_at_a_time"]
fn fixture_forgotten_tokio_runtime() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(async { 1 }).await.unwrap() });
    // The bug: nobody shuts the runtime down.
    std::mem::forget(runtime);
    let report = guard.verify().expect_err("the runtime's workers are alive");
    // tokio names its workers `tokio-rt-worker` (`tokio-runtime-worker` before 1.4x, cut to
    // the kernel's 15 bytes).
    let workers: Vec<_> = report
        .tasks()
        .iter()
        .filter(|t| t.name().is_some_and(|n| n.starts_with("tokio-r")))
        .collect();
    assert_eq!(workers.len(), 2, "{report}");
    assert!(workers
        .iter()
        .all(|t| t.kind() == TaskKind::UntrackedThread));
    assert_eq!(
        report.tasks().len(),
        2,
        "nothing but the workers:\n{report}"
    );
    fail_with(report)
}

#[cfg(feature = "tokio")]
#[test]
fn a_forgotten_tokio_runtime_is_caught_when_tests_run_one_at_a_time() {
    run_fixture("fixture_forgotten_tokio_runtime", &[])
        .assert_failed()
        .assert_contains("REPORT FOLLOWS")
        .assert_contains("leakcheck: 2 unexpected tasks in test `fixture_forgotten_tokio_runtime`")
        .assert_contains("× untracked thread \"tokio-r")
        .assert_contains("\", alive (not spawned through leakcheck)")
        .assert_contains("\"tokio-r");
}

#[test]
#[ignore = "fixture: run by joined_and_finished_plain_threads_pass_at_once"]
fn fixture_joined_and_finishing_plain_threads() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_secs(30)));
    for i in 0..20 {
        std::thread::spawn(move || i * 2).join().unwrap();
    }
    std::thread::scope(|scope| {
        for i in 0..4 {
            scope.spawn(move || i + 1);
        }
    });
    // Not joined: it ends within the grace period, and the check wakes when it exits.
    std::thread::spawn(|| std::thread::sleep(Duration::from_millis(50)));
    let start = Instant::now();
    guard.verify().expect("no thread is left");
    let took = start.elapsed();
    println!("CHECK TOOK {took:?}");
    assert!(took < Duration::from_secs(10), "the check waited {took:?}");
}

#[test]
fn joined_and_finished_plain_threads_pass_at_once() {
    let run = run_fixture("fixture_joined_and_finishing_plain_threads", &[]);
    run.assert_passed().assert_contains("CHECK TOOK");
}

#[test]
#[ignore = "fixture: run by ignore_options_forgive_untracked_threads"]
fn fixture_ignored_untracked_threads() {
    let options = Options::new()
        .timeout(Duration::from_millis(100))
        .ignore_name("metrics-*")
        .ignore_function("untracked::flush_loop_forever");
    let guard = leakcheck::verify_none_with(options);
    spawn_plain_thread_forever("metrics-exporter");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::mem::forget(tx);
    std::thread::Builder::new()
        .name("flusher".into())
        .spawn(move || flush_loop_forever(rx))
        .unwrap();
    spawn_plain_thread_forever("not-ignored");
    let report = guard.verify().expect_err("one thread is not ignored");
    let names: Vec<_> = report.tasks().iter().map(|t| t.name()).collect();
    assert_eq!(names, [Some("not-ignored")], "{report}");
    println!("ONLY THE UNIGNORED THREAD WAS REPORTED");
}

/// Unlike `park_forever_untracked` in its body, so that an optimised build cannot merge the two.
#[inline(never)]
fn flush_loop_forever(rx: std::sync::mpsc::Receiver<()>) {
    let mut flushed = 0u64;
    for () in rx {
        flushed = std::hint::black_box(flushed + 1);
    }
}

#[test]
fn ignore_options_forgive_untracked_threads() {
    run_fixture("fixture_ignored_untracked_threads", &[])
        .assert_passed()
        .assert_contains("ONLY THE UNIGNORED");
}

// --- tests in parallel ----------------------------------------------------------------------

#[test]
#[ignore = "fixture: run by with_tests_in_parallel_untracked_threads_are_left_to_the_global_check"]
fn fixture_plain_thread_with_tests_in_parallel() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
    spawn_plain_thread_forever("plain-leaker");
    // A tracked leak too, so that there is a report to read the note in.
    let (tx, rx) = leakcheck::sync::mpsc::sync_channel::<()>(0);
    leakcheck::thread::spawn(move || tx.send(()));
    let report = guard.verify().expect_err("the tracked thread is reported");
    assert_eq!(
        report.tasks().len(),
        1,
        "only the tracked thread:\n{report}"
    );
    assert_eq!(report.tasks()[0].kind(), TaskKind::Thread);
    assert!(
        report
            .notes()
            .iter()
            .any(|n| n.contains("untracked OS threads")),
        "{report}"
    );
    drop(rx);
    fail_with(report)
}

#[test]
fn with_tests_in_parallel_untracked_threads_are_left_to_the_global_check() {
    let run = run_fixture_in_parallel_mode("fixture_plain_thread_with_tests_in_parallel");
    run.assert_failed()
        .assert_contains("REPORT FOLLOWS")
        .assert_contains("1 × thread, blocked in `chan send`")
        .assert_contains(
            "note: untracked OS threads (not spawned through leakcheck) were not checked here",
        );
    assert!(!run.output.contains("plain-leaker"), "{}", run.output);
}

#[test]
#[ignore = "fixture: run by a_process_wide_check_sees_untracked_threads_even_in_parallel"]
fn fixture_process_wide_in_parallel() {
    let guard = leakcheck::verify_none_with(
        Options::new()
            .timeout(Duration::from_millis(100))
            .process_wide(),
    );
    spawn_plain_thread_forever("plain-leaker");
    let report = guard.verify().expect_err("the plain thread is alive");
    assert!(
        report
            .tasks()
            .iter()
            .any(|t| t.name() == Some("plain-leaker")),
        "{report}"
    );
    assert_eq!(report.checked(), "the process");
    fail_with(report)
}

#[test]
fn a_process_wide_check_sees_untracked_threads_even_in_parallel() {
    run_fixture_in_parallel_mode("fixture_process_wide_in_parallel")
        .assert_failed()
        .assert_contains("REPORT FOLLOWS")
        .assert_contains("unexpected task in the process")
        .assert_contains("\"plain-leaker\"");
}

// --- several checks at once in one test -------------------------------------------------------

#[test]
#[ignore = "fixture: run by checks_open_at_once_on_several_threads_do_not_blame_each_other"]
fn fixture_simultaneous_checks() {
    // A test that runs checks on several threads at once (as a harness would): each one sees
    // the plain threads the others start, and must not blame them.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let checks: Vec<_> = (0..4)
        .map(|i| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let guard =
                    leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
                barrier.wait();
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let helper = std::thread::spawn(move || {
                    let _ = rx.recv();
                });
                barrier.wait();
                let verdict = guard.verify();
                barrier.wait();
                drop(tx);
                helper.join().unwrap();
                verdict.map_err(|report| format!("check {i}: {report}"))
            })
        })
        .collect();
    for check in checks {
        check.join().unwrap().unwrap();
    }
    println!("NO CHECK BLAMED ANOTHER");
}

#[test]
fn checks_open_at_once_on_several_threads_do_not_blame_each_other() {
    run_fixture("fixture_simultaneous_checks", &[])
        .assert_passed()
        .assert_contains("NO CHECK BLAMED ANOTHER");
}
