//! End to end: tracked threads left alive by a test are reported with the right content.
//!
//! Each test checks its own scope with `verify()` and asserts on the report; tests that must
//! *fail* (a guard dropped with survivors) run as fixtures in a child process.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use leakcheck::sync::mpsc;
use leakcheck::{thread, LeakReport, Options, TaskKind, TaskState};

use common::{marked_line, run_fixture};

const FILE: &str = "tests/threads.rs";

/// A short grace period: these survivors are blocked for good.
fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(50))
}

/// Checks this test's scope until `expected` survivors have all reached their blocking call, and
/// returns that report. Threads start asynchronously and a loaded CI machine may take a while to
/// run them: a single check with a short grace period could catch one still on its way.
fn report_once_blocked(expected: usize) -> LeakReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = leakcheck::verify_none_with(quick())
            .verify()
            .expect_err("survivors were expected");
        let blocked = report
            .tasks()
            .iter()
            .filter(|t| t.state() == TaskState::Blocked)
            .count();
        if (report.tasks().len() == expected && blocked == expected) || Instant::now() > deadline {
            return report;
        }
    }
}

/// The line marked `// site: {marker}` in this file.
fn line_of(marker: &str) -> u32 {
    marked_line(include_str!("threads.rs"), marker).0
}

fn site(line: u32) -> String {
    format!("{FILE}:{line}:")
}

/// Spawns `count` threads that block sending on a rendezvous channel; dropping the returned
/// receiver releases them.
fn blocked_senders(count: usize) -> (mpsc::Receiver<usize>, u32, u32) {
    let (tx, rx) = mpsc::sync_channel(0);
    let (spawn_line, send_line) = (line_of("sender"), line_of("send"));
    for i in 0..count {
        let tx = tx.clone();
        let sender = move || {
            let _ = tx.send(i); // site: send
        };
        thread::spawn(sender); // site: sender
    }
    (rx, spawn_line, send_line)
}

#[test]
fn blocked_senders_are_reported_with_count_site_and_state() {
    let (rx, spawn_line, send_line) = blocked_senders(3);
    assert_eq!(rx.recv().ok().map(|_| ()), Some(()));

    let report = report_once_blocked(2);
    assert_eq!(report.tasks().len(), 2);
    for task in report.tasks() {
        assert_eq!(task.kind(), TaskKind::Thread);
        assert_eq!(task.state(), TaskState::Blocked);
        assert_eq!(task.blocked_on(), Some("chan send"));
        assert_eq!(task.spawned_at().unwrap().line(), spawn_line);
        assert_eq!(task.blocked_at().unwrap().line(), send_line);
        assert_eq!(
            task.test(),
            Some("blocked_senders_are_reported_with_count_site_and_state")
        );
    }
    let text = report.to_string();
    assert!(
        text.starts_with(
            "leakcheck: 2 unexpected tasks in test `blocked_senders_are_reported_with_count_site_and_state`"
        ),
        "{text}"
    );
    assert!(
        text.contains("2 × thread, blocked in `chan send` for"),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at   {}", site(spawn_line))),
        "{text}"
    );
    assert!(
        text.contains(&format!("blocked at   {}", site(send_line))),
        "{text}"
    );
    drop(rx);
}

#[test]
fn a_blocked_receiver_is_reported() {
    let (tx, rx) = mpsc::channel::<()>();
    let spawn_line = line_of("inbox");
    let receiver = thread::Builder::new()
        .name("inbox".into())
        .spawn(move || rx.recv()) // site: inbox
        .unwrap();
    let report = report_once_blocked(1);
    let [task] = report.tasks() else {
        panic!("one survivor expected:\n{report}")
    };
    assert_eq!(task.name(), Some("inbox"));
    assert_eq!(task.blocked_on(), Some("chan receive"));
    assert_eq!(task.blocked_at().unwrap().line(), spawn_line);
    assert_eq!(task.spawned_at().unwrap().line(), spawn_line);
    assert!(
        report.to_string().contains("blocked in `chan receive`"),
        "{report}"
    );
    drop(tx);
    assert!(receiver.join().unwrap().is_err());
}

#[test]
fn a_forgotten_loop_is_reported_as_running() {
    let guard = leakcheck::verify_none_with(quick());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawn_line = line_of("loop");
    let flag = Arc::clone(&stop);
    let spin = move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::yield_now();
        }
    };
    let worker = thread::spawn(spin); // site: loop
    let report = guard.verify().unwrap_err();
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(task.state(), TaskState::Running);
    assert_eq!(task.spawned_at().unwrap().line(), spawn_line);
    assert!(
        task.runs()
            .unwrap()
            .contains("a_forgotten_loop_is_reported_as_running"),
        "{report}"
    );
    assert!(
        report.to_string().contains("1 × thread, running for"),
        "{report}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
}

#[test]
fn a_grandchild_of_an_exited_thread_is_attributed_to_the_test() {
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    let parent_line = line_of("parent");
    let spawn_child_and_exit = move || {
        let child = thread::spawn(move || {
            thread::spawn(move || {
                let _ = tx.send(());
            })
        });
        child.join().unwrap()
    };
    let parent = thread::Builder::new()
        .name("parent".into())
        .spawn(spawn_child_and_exit); // site: parent
    let grandchild = parent.unwrap().join().unwrap();
    assert!(!grandchild.is_finished());

    let report = report_once_blocked(1);
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(
        task.test(),
        Some("a_grandchild_of_an_exited_thread_is_attributed_to_the_test")
    );
    assert_eq!(task.blocked_on(), Some("chan send"));
    let parents = task.parents();
    assert_eq!(parents.len(), 2, "{report}");
    assert!(parents.iter().all(|p| p.exited()), "{report}");
    assert_eq!(parents[1].name(), Some("parent"));
    assert_eq!(parents[1].spawned_at().line(), parent_line);
    let text = report.to_string();
    assert!(text.contains("spawned by"), "{text}");
    assert!(
        text.contains(&format!(
            "\"parent\" (thread, spawned at {}",
            site(parent_line)
        )),
        "{text}"
    );
    drop(rx);
}

#[test]
fn a_thread_finishing_within_the_grace_period_passes_and_the_check_returns_at_once() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_secs(30)));
    let (go, wait) = mpsc::channel::<()>();
    thread::spawn(move || {
        let _ = wait.recv();
        std::thread::sleep(Duration::from_millis(20));
    });
    let started = Instant::now();
    go.send(()).unwrap();
    guard
        .verify()
        .expect("the thread ended within the grace period");
    // Woken by the exit, not by the 30 s deadline (the latency itself is measured in benches/).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_panicking_thread_has_ended_and_is_no_leak() {
    let guard = leakcheck::verify_none_with(quick());
    let handle = thread::spawn(|| panic!("this thread fails on purpose"));
    assert!(handle.join().is_err());
    guard.verify().expect("a panicked thread is gone");
}

#[test]
fn joined_and_scoped_threads_are_no_leak() {
    let guard = leakcheck::verify_none_with(quick());
    let total: u32 = (0..8)
        .map(|i| thread::spawn(move || i))
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(total, 28);
    std::thread::scope(|scope| {
        thread::Builder::new().spawn_scoped(scope, || ()).unwrap();
    });
    guard.verify().unwrap();
}

/// Spawns one blocked thread named `name` and returns the check's verdict with `options`.
fn one_blocked_thread(
    name: &str,
    options: Options,
) -> (Result<(), LeakReport>, mpsc::SyncSender<()>, u32) {
    let guard = leakcheck::verify_none_with(options);
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    let line = line_of("one-blocked");
    thread::Builder::new()
        .name(name.into())
        .spawn(move || rx.recv()) // site: one-blocked
        .unwrap();
    (guard.verify(), tx, line)
}

#[test]
fn ignore_name_forgives_matching_names_only() {
    let (verdict, _release, _) =
        one_blocked_thread("metrics-flusher", quick().ignore_name("metrics-*"));
    verdict.unwrap();
    let (verdict, _release, _) = one_blocked_thread("worker", quick().ignore_name("metrics-*"));
    assert_eq!(verdict.unwrap_err().tasks().len(), 1);
}

#[test]
fn ignore_spawned_at_forgives_a_file_a_line_or_a_function() {
    let line = one_blocked_thread("x", quick()).2;
    for pattern in [
        FILE.to_owned(),
        format!("{FILE}:{line}"),
        "threads::one_blocked_thread".to_owned(),
    ] {
        let (verdict, _release, _) = one_blocked_thread("x", quick().ignore_spawned_at(&pattern));
        assert!(verdict.is_ok(), "{pattern} should match: {verdict:?}");
    }
    for pattern in [
        format!("{FILE}:{}", line + 1),
        "src/other.rs".to_owned(),
        "threads::unrelated".into(),
    ] {
        let (verdict, _release, _) = one_blocked_thread("x", quick().ignore_spawned_at(&pattern));
        assert!(verdict.is_err(), "{pattern} should not match");
    }
}

#[test]
fn ignore_function_forgives_tasks_running_that_function() {
    let (verdict, _release, _) =
        one_blocked_thread("x", quick().ignore_function("one_blocked_thread"));
    verdict.unwrap();
    let (verdict, _release, _) =
        one_blocked_thread("x", quick().ignore_function("some_other_function"));
    assert!(verdict.is_err());
}

#[test]
fn ignore_current_forgives_tasks_alive_before_the_options() {
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    thread::spawn(move || rx.recv());
    let guard = leakcheck::verify_none_with(quick().ignore_current());
    guard.verify().expect("the earlier thread is ignored");
    let guard = leakcheck::verify_none_with(quick());
    assert_eq!(
        guard.verify().unwrap_err().tasks().len(),
        1,
        "without ignore_current it is reported"
    );
    drop(tx);
}

#[test]
fn a_thousand_survivors_make_one_grouped_bounded_report() {
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    let line = line_of("thousand");
    let barrier = Arc::new(Barrier::new(1001));
    for _ in 0..1000 {
        let (barrier, tx) = (Arc::clone(&barrier), tx.clone());
        let send_after_all_started = move || {
            barrier.wait();
            let _ = tx.send(());
        };
        let small = thread::Builder::new().stack_size(64 * 1024);
        small.spawn(send_after_all_started).unwrap(); // site: thousand
    }
    barrier.wait();
    let report = report_once_blocked(1000);
    assert_eq!(report.tasks().len(), 1000);
    let text = report.to_string();
    assert!(text.len() <= 64 * 1024, "{} bytes", text.len());
    assert!(
        text.contains("1000 × thread, blocked in `chan send`"),
        "{text}"
    );
    assert!(text.contains(&site(line)), "{text}");
    assert!(text.contains("… and 992 more"), "{text}");
    drop(rx);
}

#[test]
fn sleep_shows_as_blocked_in_sleep() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let line = line_of("sleep");
    let flag = Arc::clone(&stop);
    let sleeper = thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20)); // site: sleep
        }
    });
    let report = report_once_blocked(1);
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(task.blocked_on(), Some("sleep"));
    assert_eq!(task.blocked_at().unwrap().line(), line);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sleeper.join().unwrap();
}

#[test]
fn blocking_names_a_users_own_blocking_call() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let line = line_of("socket-read");
    let waiter = thread::spawn(move || leakcheck::blocking("socket read", || rx.recv())); // site: socket-read
    let report = report_once_blocked(1);
    let [task] = report.tasks() else {
        panic!("{report}")
    };
    assert_eq!(task.blocked_on(), Some("socket read"));
    assert_eq!(task.blocked_at().unwrap().line(), line);
    drop(tx);
    assert!(waiter.join().unwrap().is_err());
}

#[test]
fn the_json_report_carries_the_same_content() {
    let (rx, spawn_line, _) = blocked_senders(2);
    let report = report_once_blocked(2);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        json["checked"],
        "test `the_json_report_carries_the_same_content`"
    );
    // Grouped as the text report groups them.
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["task_ids"].as_array().unwrap().len(), 2);
    assert_eq!(groups[0]["state"], "blocked");
    assert_eq!(groups[0]["blocked_on"], "chan send");
    // Recorded by the instrumented channel, not read from a stack.
    assert_eq!(groups[0]["wait_inferred"], false);
    assert_eq!(groups[0]["spawned_at"]["line"], spawn_line);
    assert_eq!(groups[0]["spawned_at"]["file"], FILE);
    drop(rx);
}

// Fixtures: tests that must fail, run in a child process by the tests below.

#[test]
#[ignore = "fixture: run by guard_dropped_with_survivors_fails_the_test"]
fn fixture_guard_dropped_with_survivors() {
    let _leaks = leakcheck::verify_none();
    let (rx, _, _) = blocked_senders(2);
    std::mem::forget(rx);
}

#[test]
fn guard_dropped_with_survivors_fails_the_test() {
    let run = run_fixture("fixture_guard_dropped_with_survivors", &[]);
    run.assert_failed()
        .assert_contains(
            "leakcheck: 2 unexpected tasks in test `fixture_guard_dropped_with_survivors`",
        )
        .assert_contains("2 × thread, blocked in `chan send`")
        .assert_contains(&format!("spawned at   {FILE}:"));
}

#[test]
#[ignore = "fixture: run by a_guard_dropped_during_a_panic_does_not_panic_twice"]
fn fixture_guard_dropped_during_a_panic() {
    let _leaks = leakcheck::verify_none();
    let (rx, _, _) = blocked_senders(1);
    std::mem::forget(rx);
    panic!("the test's own failure");
}

#[test]
fn a_guard_dropped_during_a_panic_does_not_panic_twice() {
    let run = run_fixture("fixture_guard_dropped_during_a_panic", &[]);
    run.assert_failed()
        .assert_contains("the test's own failure")
        .assert_contains(
            "leakcheck: 1 unexpected task in test `fixture_guard_dropped_during_a_panic`",
        )
        .assert_contains("test result: FAILED. 0 passed; 1 failed");
    assert!(
        !run.output.contains("panicked while processing panic"),
        "{}",
        run.output
    );
}

#[test]
fn failing_checks_write_json_reports_to_the_report_dir() {
    let dir = std::env::temp_dir().join(format!("leakcheck-json-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = run_fixture(
        "fixture_guard_dropped_with_survivors",
        &[("LEAKCHECK_REPORT_DIR", dir.to_str().unwrap())],
    );
    run.assert_failed();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [file] = files.as_slice() else {
        panic!("one report expected: {files:?}")
    };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        json["checked"],
        "test `fixture_guard_dropped_with_survivors`"
    );
    assert_eq!(json["leak_count"], 2);
    assert_eq!(json["groups"][0]["count"], 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_environment_variable_is_a_clear_error() {
    let run = run_fixture(
        "fixture_guard_dropped_with_survivors",
        &[("LEAKCHECK_TIMEOUT", "soon")],
    );
    run.assert_failed()
        .assert_contains("LEAKCHECK_TIMEOUT")
        .assert_contains("expected a number followed by a unit");
}

thread_local! {
    static SPAWNS_WHEN_DROPPED: SpawnsWhenDropped = const { SpawnsWhenDropped };
}

/// Uses leakcheck from a thread-local destructor, after leakcheck's own context is gone.
struct SpawnsWhenDropped;

impl Drop for SpawnsWhenDropped {
    fn drop(&mut self) {
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        thread::spawn(move || tx.send(7)).join().unwrap().unwrap();
        leakcheck::blocking("teardown", || assert_eq!(rx.recv(), Ok(7)));
    }
}

#[test]
fn leakcheck_works_in_thread_local_destructors() {
    let worker = std::thread::spawn(|| {
        // Thread-locals are destroyed in reverse order of first use: touching ours first means
        // leakcheck's context is already gone when our destructor uses leakcheck.
        SPAWNS_WHEN_DROPPED.with(|_| ());
        leakcheck::thread::spawn(|| ()).join().unwrap();
    });
    worker
        .join()
        .expect("no abort, no panic in thread-local teardown");
}

/// Where the thread of the test below ends up waiting, a while after it started.
#[inline(never)]
fn wait_in_the_ignored_function(rx: mpsc::Receiver<()>) {
    let _ = rx.recv();
}

#[test]
#[cfg(target_os = "linux")] // the function is found in the thread's live stack
fn ignore_function_sees_a_function_reached_after_the_check_began() {
    let (tx, rx) = mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        wait_in_the_ignored_function(rx);
    });
    let options = Options::new()
        .timeout(Duration::from_millis(300))
        .ignore_function("threads::wait_in_the_ignored_function");
    leakcheck::verify_none_with(options)
        .verify()
        .expect("by the deadline the thread waits in the ignored function");
    drop(tx);
    worker.join().unwrap();
}
