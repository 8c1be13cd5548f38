//! The runtime `#[leak_test(tokio)]` builds: plain `tokio::spawn` survivors are caught on both
//! flavors, the check runs inside the runtime before it shuts down, and what the report knows
//! depends on the build:
//!
//! - stable tokio: a count of unidentified tasks, with a note;
//! - `--cfg tokio_unstable`: their spawn sites, scopes and parents, from the runtime's hooks;
//! - `--cfg tokio_unstable --cfg tokio_taskdump` (Linux): their async stacks too.
//!
//! Leaky tests are run in-process through `run_tokio_test` (which panics with the report), and
//! through the attribute as `#[ignore]`d fixtures that the real tests re-run (`common`).

#![cfg(feature = "tokio")]

#[macro_use]
mod common;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::run_fixture;
use leakcheck::__private::{run_tokio_test, TokioFlavor, TokioTestConfig};
use leakcheck::{leak_test, Options};

const FLAVORS: [TokioFlavor; 2] = [TokioFlavor::CurrentThread, TokioFlavor::MultiThread];

fn config(flavor: TokioFlavor) -> TokioTestConfig {
    TokioTestConfig {
        flavor,
        worker_threads: (flavor == TokioFlavor::MultiThread).then_some(2),
        start_paused: false,
    }
}

fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(100))
}

/// Runs a tokio test body the way `#[leak_test(tokio)]` does, and returns the report it failed
/// with.
fn leak_report<F: std::future::Future<Output = ()>>(
    name: &'static str,
    options: Options,
    config: TokioTestConfig,
    body: F,
) -> String {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_tokio_test(name, options, config, body)
    }));
    let payload = outcome.expect_err("the test leaked, so it must fail");
    match payload.downcast::<String>() {
        Ok(report) => *report,
        Err(payload) => panic!("the test failed with something else than a report: {payload:?}"),
    }
}

/// [`leak_report`] of a quick check of `body`, which sends the spawn site of the task it leaks
/// through the sender it is given; and that site.
fn leak_report_with_site<F: std::future::Future<Output = ()>>(
    name: &'static str,
    flavor: TokioFlavor,
    body: impl FnOnce(std::sync::mpsc::Sender<String>) -> F,
) -> (String, String) {
    let (site_tx, site_rx) = std::sync::mpsc::channel();
    let report = leak_report(name, quick(), config(flavor), body(site_tx));
    (report, site_rx.recv().unwrap())
}

#[track_caller]
fn assert_contains(report: &str, needle: &str) {
    assert!(
        report.contains(needle),
        "expected {needle:?} in the report:\n{report}"
    );
}

#[test]
fn plain_tokio_spawn_survivors_are_caught_on_both_flavors() {
    for flavor in FLAVORS {
        let (report, site) =
            leak_report_with_site("tokio_runtime::plain_leak", flavor, |site_tx| async move {
                let (handle, site) = spawned_here!(tokio::spawn(std::future::pending::<()>()));
                site_tx.send(site).unwrap();
                drop(handle);
            });
        assert_contains(&report, "leakcheck: 1 unexpected task in test `plain_leak`");
        if cfg!(tokio_unstable) {
            // Seen through the hooks: pending, with no claim about its wakers.
            assert_contains(&report, "1 × async task, pending for");
            assert_contains(&report, &format!("spawned at   {site}"));
        } else {
            assert_contains(&report, "1 async task of this test's tokio runtime is alive that leakcheck did not see spawn");
            assert_contains(&report, "--cfg tokio_unstable");
            assert_contains(&report, "leakcheck::tokio::spawn");
        }
    }
}

#[test]
fn a_task_spawned_onto_the_test_runtime_from_a_plain_thread_belongs_to_the_test() {
    let report = leak_report(
        "tokio_runtime::foreign",
        quick(),
        config(TokioFlavor::MultiThread),
        async {
            let handle = tokio::runtime::Handle::current();
            std::thread::spawn(move || drop(handle.spawn(std::future::pending::<()>())))
                .join()
                .unwrap();
        },
    );
    assert_contains(&report, "leakcheck: 1 unexpected task in test `foreign`");
    if cfg!(tokio_unstable) {
        assert_contains(&report, "(by test `foreign`");
    }
}

#[test]
fn tracked_survivors_are_reported_once_with_their_site() {
    for flavor in FLAVORS {
        let (report, site) = leak_report_with_site(
            "tokio_runtime::tracked_leak",
            flavor,
            |site_tx| async move {
                let (handle, site) =
                    spawned_here!(leakcheck::tokio::spawn(std::future::pending::<()>()));
                site_tx.send(site).unwrap();
                drop(handle);
            },
        );
        assert_contains(
            &report,
            "leakcheck: 1 unexpected task in test `tracked_leak`",
        );
        assert_contains(&report, &format!("spawned at   {site}"));
        assert!(
            !report.contains("did not see"),
            "the tracked task is not also unidentified:\n{report}"
        );
    }
}

#[test]
fn a_tracked_future_spawned_with_plain_tokio_spawn_is_known_to_the_runtime() {
    let report = leak_report(
        "tokio_runtime::track_then_spawn",
        quick(),
        config(TokioFlavor::CurrentThread),
        async {
            drop(tokio::spawn(leakcheck::task::track(
                std::future::pending::<()>(),
            )));
            tokio::task::yield_now().await;
        },
    );
    if cfg!(tokio_unstable) {
        // Seen as the tracked future and as the runtime's task (documented).
        assert_contains(&report, "2 unexpected tasks");
    } else {
        // Its first poll claimed the runtime task it runs in: not counted twice.
        assert_contains(&report, "1 unexpected task");
        assert!(!report.contains("did not see"), "{report}");
    }
}

#[test]
fn a_tracked_future_inside_a_tracked_spawn_is_not_counted_twice() {
    for flavor in FLAVORS {
        let (report, site) = leak_report_with_site(
            "tokio_runtime::nested_tracked",
            flavor,
            |site_tx| async move {
                let (handle, site) = spawned_here!(leakcheck::tokio::spawn(async {
                    // Claims nothing of its own: it runs in the spawned task, known already.
                    leakcheck::task::track(std::future::pending::<()>()).await;
                }));
                site_tx.send(site).unwrap();
                drop(handle);
                // And one task nobody told leakcheck about, which must not be counted as known.
                drop(tokio::spawn(std::future::pending::<()>()));
                tokio::task::yield_now().await;
            },
        );
        assert_contains(
            &report,
            "leakcheck: 3 unexpected tasks in test `nested_tracked`",
        );
        assert_contains(&report, &format!("spawned at   {site}"));
        if !cfg!(tokio_unstable) {
            // Exactly the plain one: the tracked spawn's task is known once, not twice (which
            // would hide the plain one) and not zero times.
            assert_contains(&report, "1 async task of this test's tokio runtime is alive that leakcheck did not see spawn");
        }
    }
}

#[test]
fn a_tracked_spawn_in_a_scope_opened_inside_the_test_is_known_to_the_runtime() {
    for flavor in FLAVORS {
        let report = leak_report(
            "tokio_runtime::inner_scope_spawn",
            quick(),
            config(flavor),
            async {
                // Registered in the inner scope, not the test's: it cannot be counted in the
                // test's scope, so its first poll claims its runtime task instead.
                let inner = leakcheck::in_scope("inner", || {
                    leakcheck::tokio::spawn(std::future::pending::<()>())
                });
                drop(inner);
                drop(tokio::spawn(std::future::pending::<()>()));
                tokio::task::yield_now().await;
            },
        );
        if !cfg!(tokio_unstable) {
            // Exactly the plain task: the inner one is known (neither missed nor counted twice).
            assert_contains(&report, "1 async task of this test's tokio runtime is alive that leakcheck did not see spawn");
        }
    }
}

#[test]
fn finished_and_aborted_tracked_spawns_leave_nothing_counted() {
    for flavor in FLAVORS {
        let report = leak_report(
            "tokio_runtime::finished_tracked",
            quick(),
            config(flavor),
            async {
                let answers: Vec<_> = (0..100)
                    .map(|i| leakcheck::tokio::spawn(async move { i * 2 }))
                    .collect();
                for (i, answer) in answers.into_iter().enumerate() {
                    assert_eq!(answer.await.unwrap(), i * 2);
                }
                let aborted = leakcheck::tokio::spawn(std::future::pending::<()>());
                aborted.abort();
                assert!(aborted.await.unwrap_err().is_cancelled());
                // What is left: one plain task, which the runtime's count must still show (a
                // tracked spawn counted after it ended would hide it).
                drop(tokio::spawn(std::future::pending::<()>()));
            },
        );
        assert_contains(
            &report,
            "leakcheck: 1 unexpected task in test `finished_tracked`",
        );
        if !cfg!(tokio_unstable) {
            assert_contains(&report, "1 async task of this test's tokio runtime is alive that leakcheck did not see spawn");
        }
    }
}

#[test]
fn tasks_that_finish_during_the_grace_period_pass_on_a_current_thread_runtime() {
    for flavor in FLAVORS {
        let start = Instant::now();
        run_tokio_test(
            "tokio_runtime::finish_in_grace",
            Options::new().timeout(Duration::from_secs(10)),
            config(flavor),
            async {
                // Both still run after the body returns: on a current-thread runtime only while
                // the check waits without blocking it.
                tokio::spawn(tokio::time::sleep(Duration::from_millis(50)));
                leakcheck::tokio::spawn(tokio::time::sleep(Duration::from_millis(50)));
            },
        );
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(5),
            "the check returned soon after the tasks ended: {elapsed:?}"
        );
    }
}

#[test]
fn aborted_plain_and_tracked_tasks_are_not_leaks() {
    for flavor in FLAVORS {
        run_tokio_test("tokio_runtime::aborted", quick(), config(flavor), async {
            let plain = tokio::spawn(std::future::pending::<()>());
            let tracked = leakcheck::tokio::spawn(std::future::pending::<()>());
            tokio::task::yield_now().await;
            plain.abort();
            tracked.abort();
            assert!(plain.await.unwrap_err().is_cancelled());
            assert!(tracked.await.unwrap_err().is_cancelled());
        });
    }
}

#[test]
fn parallel_tests_do_not_blame_each_other() {
    // A leaky and a clean test run at the same time, each with its runtime and scope.
    let both_running = Arc::new(Barrier::new(2));
    let leaky = std::thread::spawn({
        let both_running = Arc::clone(&both_running);
        move || {
            leak_report(
                "tokio_runtime::leaky",
                quick(),
                config(TokioFlavor::MultiThread),
                async move {
                    tokio::spawn(std::future::pending::<()>());
                    leakcheck::tokio::spawn(std::future::pending::<()>());
                    both_running.wait();
                },
            )
        }
    });
    run_tokio_test(
        "tokio_runtime::clean",
        quick(),
        config(TokioFlavor::MultiThread),
        async move {
            let done = tokio::spawn(async { 1 });
            both_running.wait();
            assert_eq!(done.await.unwrap(), 1);
        },
    );
    let report = leaky.join().unwrap();
    assert_contains(&report, "2 unexpected tasks in test `leaky`");
    assert!(!report.contains("`clean`"), "{report}");
}

#[test]
fn a_panicking_body_still_panics_with_its_own_message() {
    let outcome = std::panic::catch_unwind(|| {
        run_tokio_test(
            "tokio_runtime::panics",
            quick(),
            config(TokioFlavor::CurrentThread),
            async {
                tokio::spawn(std::future::pending::<()>());
                panic!("the body's own failure");
            },
        )
    });
    let payload = outcome.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the body's own failure")
    );
}

#[test]
fn the_body_output_is_returned() {
    let output: Result<u32, String> = run_tokio_test(
        "tokio_runtime::output",
        quick(),
        config(TokioFlavor::MultiThread),
        async { Ok(7) },
    );
    assert_eq!(output, Ok(7));
}

#[test]
fn start_paused_lets_timers_of_survivors_fire_in_the_grace_period() {
    let start = Instant::now();
    run_tokio_test(
        "tokio_runtime::paused",
        Options::new().timeout(Duration::from_secs(60)),
        TokioTestConfig {
            flavor: TokioFlavor::CurrentThread,
            worker_threads: None,
            start_paused: true,
        },
        async {
            tokio::spawn(tokio::time::sleep(Duration::from_secs(30)));
        },
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "paused time auto-advances"
    );
}

/// On the paused clock, a timer beyond the grace period is a survivor, and the report says that
/// the grace period ran on that clock: its headline's wait, in real time, is next to nothing.
#[test]
fn start_paused_reports_a_timer_beyond_the_grace_period_and_the_clock_it_waited_on() {
    let (report, site) = {
        let (site_tx, site_rx) = std::sync::mpsc::channel();
        let report = leak_report(
            "tokio_runtime::paused_leak",
            Options::new().timeout(Duration::from_secs(2)),
            TokioTestConfig {
                flavor: TokioFlavor::CurrentThread,
                worker_threads: None,
                start_paused: true,
            },
            async move {
                let (_, site) = spawned_here!(leakcheck::tokio::spawn(tokio::time::sleep(
                    Duration::from_secs(3600)
                )));
                site_tx.send(site).unwrap();
            },
        );
        (report, site_rx.recv().unwrap())
    };
    assert_contains(&report, "1 unexpected task in test `paused_leak`");
    assert_contains(&report, &site);
    assert_contains(
        &report,
        "note: start_paused: the grace period ran on the runtime's clock, paused at the start, which\n        advanced 2.0s",
    );
}

#[test]
#[should_panic(expected = "`start_paused` needs `flavor = \"current_thread\"`")]
fn start_paused_on_a_multi_thread_runtime_is_refused_clearly() {
    run_tokio_test(
        "tokio_runtime::paused_multi",
        quick(),
        TokioTestConfig {
            flavor: TokioFlavor::MultiThread,
            worker_threads: None,
            start_paused: true,
        },
        async {},
    );
}

#[test]
fn a_blocked_spawn_blocking_closure_is_reported_and_does_not_hang_the_test() {
    let (_keep, rx) = leakcheck::sync::mpsc::channel::<()>();
    let report = leak_report(
        "tokio_runtime::blocking",
        quick(),
        config(TokioFlavor::CurrentThread),
        async move {
            leakcheck::tokio::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(3)));
        },
    );
    assert_contains(&report, "1 × thread, blocked in `chan receive`");
}

/// `job`, made to say when it starts, and a future that returns once it has: a job still
/// queued when the runtime shuts down is dropped, not run, so a test that leaves one running
/// waits for it to start.
fn announced<R>(
    job: impl FnOnce() -> R + Send + 'static,
) -> (
    impl FnOnce() -> R + Send + 'static,
    impl std::future::Future<Output = ()>,
) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let announced = move || {
        started_tx.send(()).unwrap();
        job()
    };
    let running = async move {
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
    };
    (announced, running)
}

/// A plain `tokio::task::spawn_blocking` job that never returns is no tokio task (the runtime
/// does not count it alive) and nothing awaits it, yet it holds a thread forever: once the
/// runtime's shutdown gave up on it, the test fails with the thread, where it waits, and where
/// the job was handed to the pool.
#[test]
fn a_plain_spawn_blocking_job_still_running_after_the_shutdown_is_reported() {
    for flavor in [FLAVORS[0], FLAVORS[1], TokioFlavor::Local] {
        // The job ends once the report is in (`_keep` is dropped at the end of the pass).
        let (_keep, rx) = std::sync::mpsc::channel::<()>();
        let (site_tx, site_rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        let report = leak_report(
            "tokio_runtime::plain_blocking",
            quick(),
            config(flavor),
            async move {
                let ((job, running), site) = spawned_here!(announced(move || {
                    rx.recv_timeout(Duration::from_secs(4))
                }));
                site_tx.send(site).unwrap();
                drop(tokio::task::spawn_blocking(job));
                running.await;
            },
        );
        let site: String = site_rx.recv().unwrap();
        assert_contains(
            &report,
            "leakcheck: 1 unexpected task in test `plain_blocking`",
        );
        assert_contains(
            &report,
            "blocked in `chan receive` (inferred from its stack)",
        );
        // The job's line the thread is stuck at, and a line of this test that made the pool
        // start the thread: any `spawn_blocking` here, or the runtime's creation (a thread runs
        // whichever job is queued when it is free).
        assert_contains(&report, "called from  tests/tokio_runtime.rs:");
        let job_line = site.rsplit(':').nth(1).unwrap().parse::<u32>().unwrap() + 1;
        assert_contains(
            &report,
            &format!("blocked at   tests/tokio_runtime.rs:{job_line}"),
        );
        assert_contains(&report, "(by test `plain_blocking`, ");
        assert_contains(&report, "(waited 1.");
        assert_contains(&report, "still running when its shutdown stopped waiting");
        assert_contains(
            &report,
            "in blocking jobs that have not returned (`spawn_blocking`",
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the shutdown waits a second for the job, not for the job to end (in 4 s)"
        );
    }
}

/// A test that leaked names, in the same report, the plain blocking job its runtime's shutdown
/// left running: one run shows every leak. It waits for the job only a moment (the clean test's
/// second is for jobs that may still end), and a survivor that outlives the shutdown (a tracked
/// thread) is reported once.
#[test]
fn a_leaking_test_also_reports_the_blocking_job_its_shutdown_left_running() {
    for flavor in [FLAVORS[0], FLAVORS[1], TokioFlavor::Local] {
        // The job and the thread end once the report is in (the senders are dropped at the end
        // of the pass).
        let (_keep_job, job_rx) = std::sync::mpsc::channel::<()>();
        let (_keep_thread, thread_rx) = std::sync::mpsc::channel::<()>();
        let (sites_tx, sites_rx) = std::sync::mpsc::channel();
        let report = leak_report(
            "tokio_runtime::leak_and_job",
            quick(),
            config(flavor),
            async move {
                let (task, task_site) =
                    spawned_here!(leakcheck::tokio::spawn(std::future::pending::<()>()));
                drop(task);
                let (thread, thread_site) = spawned_here!(leakcheck::thread::spawn(move || {
                    thread_rx.recv_timeout(Duration::from_secs(4))
                }));
                drop(thread);
                let ((job, running), job_site) = spawned_here!(announced(move || {
                    job_rx.recv_timeout(Duration::from_secs(4))
                }));
                sites_tx.send([task_site, thread_site, job_site]).unwrap();
                drop(tokio::task::spawn_blocking(job));
                running.await;
            },
        );
        let [task_site, thread_site, job_site]: [String; 3] = sites_rx.recv().unwrap();
        assert_contains(
            &report,
            "leakcheck: 3 unexpected tasks in test `leak_and_job` (waited ",
        );
        for site in [&task_site, &thread_site] {
            let line = format!("spawned at   {site}");
            assert_eq!(
                report.matches(&line).count(),
                1,
                "{flavor:?}: {site} is reported once\n{report}"
            );
        }
        assert_contains(
            &report,
            "blocked in `chan receive` (inferred from its stack)",
        );
        let job_line = job_site.rsplit(':').nth(1).unwrap().parse::<u32>().unwrap() + 1;
        assert_contains(
            &report,
            &format!("blocked at   tests/tokio_runtime.rs:{job_line}"),
        );
        assert_contains(&report, "still running when its shutdown stopped waiting");
        // The grace period (100 ms), then 250 ms after the shutdown: under a second, which the
        // headline shows in milliseconds.
        let waited = report.split("(waited ").nth(1).unwrap();
        let digits = waited.trim_start_matches(|c: char| c.is_ascii_digit());
        assert!(
            digits.starts_with("ms"),
            "{flavor:?}: a leaking test waits a moment for the job, not a second\n{report}"
        );
    }
}

/// A plain `spawn_blocking` job that is still running when the test body returns, but ends while
/// the runtime shuts down, is no leak: the shutdown waits for it for the grace period (here
/// longer than the second it waits at least).
#[test]
fn a_plain_spawn_blocking_job_that_ends_within_the_grace_period_passes() {
    run_tokio_test(
        "tokio_runtime::slow_blocking",
        Options::new().timeout(Duration::from_secs(3)),
        config(TokioFlavor::MultiThread),
        async move {
            let (job, running) = announced(|| std::thread::sleep(Duration::from_millis(1300)));
            drop(tokio::task::spawn_blocking(job));
            running.await;
        },
    );
}

/// A blocking job that ends once a task is dropped is no leak: the shutdown drops the runtime's
/// tasks before it waits for the blocking pool, on every flavor (tokio's own `shutdown_timeout`
/// drops a current-thread runtime's tasks only after that wait).
#[test]
fn a_blocking_job_that_ends_when_the_shutdown_drops_a_task_passes() {
    for flavor in [FLAVORS[0], FLAVORS[1], TokioFlavor::Local] {
        let started_at = Instant::now();
        run_tokio_test(
            "tokio_runtime::job_of_a_dropped_task",
            quick().ignore_spawned_at("tests/tokio_runtime.rs"),
            config(flavor),
            async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
                // Forgiven, and holding the sender until the runtime drops it.
                drop(leakcheck::tokio::spawn(async move {
                    let _tx = tx;
                    std::future::pending::<()>().await
                }));
                let (job, running) = announced(move || while rx.blocking_recv().is_some() {});
                drop(tokio::task::spawn_blocking(job));
                running.await;
            },
        );
        assert!(
            started_at.elapsed() < Duration::from_secs(1),
            "{flavor:?}: the job ended with the task, not at the end of the wait"
        );
    }
}

/// A stuck tracked `spawn_blocking` closure that the options forgive stays forgiven after the
/// shutdown: its thread is not reported in its place.
#[test]
fn a_forgiven_tracked_spawn_blocking_closure_is_not_reported_after_the_shutdown() {
    let (_keep, rx) = std::sync::mpsc::channel::<()>();
    run_tokio_test(
        "tokio_runtime::forgiven_blocking",
        quick().ignore_spawned_at("tests/tokio_runtime.rs"),
        config(TokioFlavor::CurrentThread),
        async move {
            let (job, running) = announced(move || rx.recv_timeout(Duration::from_secs(4)));
            drop(leakcheck::tokio::spawn_blocking(job));
            running.await;
        },
    );
}

/// A forgiven task that blocks a worker inside its poll keeps the worker alive past the
/// shutdown: the worker is the runtime's, not a blocking job, and is not reported either.
#[test]
fn a_worker_blocked_by_a_forgiven_task_is_not_reported_after_the_shutdown() {
    let (_keep, rx) = std::sync::mpsc::channel::<()>();
    run_tokio_test(
        "tokio_runtime::forgiven_worker",
        quick().ignore_spawned_at("tests/tokio_runtime.rs"),
        config(TokioFlavor::MultiThread),
        async move {
            let (started_tx, started) = tokio::sync::oneshot::channel();
            drop(leakcheck::tokio::spawn(async move {
                started_tx.send(()).unwrap();
                let _ = rx.recv_timeout(Duration::from_secs(4));
            }));
            started.await.unwrap();
        },
    );
}

/// With `--cfg tokio_unstable`, the runtime's hooks register plain tasks in the spawner's scope,
/// as children of the spawning task, and make them current while polled.
#[cfg(tokio_unstable)]
#[test]
fn with_hooks_plain_tasks_have_parents_and_blocking_reasons() {
    let (sites_tx, sites_rx) = std::sync::mpsc::channel();
    let report = leak_report(
        "tokio_runtime::nested",
        quick(),
        config(TokioFlavor::MultiThread),
        async move {
            let (outer, outer_site) = spawned_here!(tokio::spawn(async move {
                let (tx, _rx) = tokio::sync::mpsc::channel::<u32>(1);
                tx.send(1).await.unwrap();
                let (inner, inner_site) = spawned_here!(tokio::spawn(async move {
                    let (send, site) = spawned_here!(leakcheck::waiting("chan send", tx.send(2)));
                    sites_tx.send(site).unwrap();
                    let _ = send.await;
                }));
                (inner, inner_site, _rx)
            }));
            let (_inner, inner_site, rx) = outer.await.unwrap();
            std::mem::forget(rx);
            let _ = (outer_site, inner_site);
        },
    );
    let blocked_at = sites_rx.recv().unwrap();
    assert_contains(&report, "1 × async task, blocked in `chan send`");
    assert_contains(&report, &format!("blocked at   {blocked_at}"));
    assert_contains(&report, "spawned by   #");
    assert_contains(&report, "exited)");
}

/// With hooks, a plain task's first poll is stamped when it ends pending, not at its spawn:
/// a task that waited in the run queue is pending since its poll, and polled then.
#[cfg(tokio_unstable)]
#[test]
fn with_hooks_a_first_poll_that_ends_pending_is_stamped_when_it_ends() {
    run_tokio_test(
        "tokio_runtime::first_poll_stamp",
        quick(),
        config(TokioFlavor::CurrentThread),
        async {
            let guard =
                leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(10)));
            let task = tokio::spawn(std::future::pending::<()>());
            // The only runtime thread is busy here: the task waits in the queue meanwhile.
            std::thread::sleep(Duration::from_millis(60));
            tokio::task::yield_now().await;
            let report = guard.verify_async().await.unwrap_err();
            let leaked = &report.tasks()[0];
            assert!(leaked.age() >= Duration::from_millis(60), "{report}");
            // Stamps are kept to about a millisecond, on a clock of a few milliseconds' tick.
            assert!(
                leaked.in_state_for() + Duration::from_millis(40) <= leaked.age(),
                "pending since its spawn:\n{report}"
            );
            task.abort();
            let _ = task.await;
        },
    );
}

/// With task dumps, a plain task's report carries its async stack from the runtime.
#[cfg(all(tokio_unstable, tokio_taskdump, target_os = "linux"))]
#[test]
fn with_task_dumps_survivors_have_async_stacks() {
    async fn wait_for_the_answer(rx: tokio::sync::oneshot::Receiver<u32>) {
        let _ = rx.await;
    }
    for flavor in FLAVORS {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let report = leak_report(
            "tokio_runtime::dumped",
            quick(),
            config(flavor),
            async move {
                tokio::spawn(wait_for_the_answer(rx));
                tokio::task::yield_now().await;
            },
        );
        drop(tx);
        assert_contains(&report, "stack (from the runtime's task dump)");
        assert_contains(&report, "wait_for_the_answer");
    }
}

/// tokio's dump polls every task to trace it, then wakes it to be polled again for real, on a
/// worker. The report shows each survivor as it was when the grace period ended, not in the
/// middle of that poll: here the survivor's polls after its first take 200 ms, and it is
/// reported blocked where it waits, with its async stack.
#[cfg(all(tokio_unstable, tokio_taskdump, target_os = "linux"))]
#[test]
fn with_task_dumps_the_polls_the_dump_causes_do_not_change_the_reported_state() {
    /// Polls `inner`, lingering in every poll but the first.
    struct SlowRepolls<F> {
        inner: std::pin::Pin<Box<F>>,
        polls: u32,
    }
    impl<F: std::future::Future> std::future::Future for SlowRepolls<F> {
        type Output = F::Output;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<F::Output> {
            self.polls += 1;
            if self.polls > 1 {
                std::thread::sleep(Duration::from_millis(200));
            }
            self.inner.as_mut().poll(cx)
        }
    }
    let (site_tx, site_rx) = std::sync::mpsc::channel();
    let report = leak_report(
        "tokio_runtime::repolled",
        quick(),
        config(TokioFlavor::MultiThread),
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
            tx.send(1).await.unwrap();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let (send, site) = spawned_here!(leakcheck::waiting("chan send", tx.send(2)));
                site_tx.send(site).unwrap();
                started_tx.send(()).unwrap();
                let slow = SlowRepolls {
                    inner: Box::pin(send),
                    polls: 0,
                };
                let _ = slow.await;
            });
            started_rx.await.unwrap();
            std::mem::forget(rx);
        },
    );
    let blocked_at = site_rx.recv().unwrap();
    assert_contains(&report, "1 unexpected task");
    assert_contains(&report, "1 × async task, blocked in `chan send`");
    assert_contains(&report, &format!("blocked at   {blocked_at}"));
    assert_contains(&report, "stack (from the runtime's task dump)");
}

/// With task dumps, a pending task's leaf future says what it waits on, and its own frame where:
/// plain tasks and tracked ones, on both flavors. A task whose trace reaches none of the points
/// tokio traces (socket I/O) says why it has no stack.
#[cfg(all(tokio_unstable, tokio_taskdump, target_os = "linux"))]
#[test]
fn with_task_dumps_a_pending_task_is_blocked_where_its_async_stack_waits() {
    const SOURCE: &str = include_str!("tokio_runtime.rs");
    let line = |marker| common::marked_line(SOURCE, marker).0;
    for flavor in FLAVORS {
        let (sites_tx, sites_rx) = std::sync::mpsc::channel();
        let report = leak_report(
            "tokio_runtime::inferred",
            quick(),
            config(flavor),
            async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                std::mem::forget(Arc::clone(&lock).lock_owned().await);
                let (_, receiving) = spawned_here!(tokio::spawn(async move {
                    let _ = rx.recv().await; // site: receiving
                }));
                let (_, locking) = spawned_here!(tokio::spawn(async move {
                    let _ = lock.lock().await; // site: locking
                }));
                let (_, ticking) = spawned_here!(leakcheck::tokio::spawn(async move {
                    let mut every = tokio::time::interval(Duration::from_secs(3600));
                    every.tick().await;
                    every.tick().await; // site: ticking
                }));
                // tokio's trace stops short of its socket I/O.
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let (_, accepting) = spawned_here!(tokio::spawn(async move {
                    let _ = listener.accept().await;
                }));
                tokio::task::yield_now().await;
                std::mem::forget(tx);
                sites_tx
                    .send([receiving, locking, ticking, accepting])
                    .unwrap();
            },
        );
        let [receiving, locking, ticking, accepting] = sites_rx.recv().unwrap();
        assert_contains(&report, "4 unexpected tasks");
        for (reason, site, marker) in [
            ("chan receive", receiving, "receiving"),
            ("mutex lock", locking, "locking"),
            ("interval tick", ticking, "ticking"),
        ] {
            let group = format!(
                "1 × async task, blocked in `{reason}` (inferred from its async stack), pending for"
            );
            let at = report
                .find(&group)
                .unwrap_or_else(|| panic!("{flavor:?}: no {group:?} in\n{report}"));
            let section = &report[at..];
            let section = &section[..section[1..]
                .find("\n  1 × ")
                .map_or(section.len(), |end| end + 1)];
            assert_contains(section, &format!("spawned at   {site}"));
            assert_contains(
                section,
                &format!("blocked at   tests/tokio_runtime.rs:{}", line(marker)),
            );
            assert_contains(section, "stack (from the runtime's task dump)");
        }
        let at = report
            .find(&format!("spawned at   {accepting}"))
            .unwrap_or_else(|| panic!("{flavor:?}: no accepting task in\n{report}"));
        assert_contains(
            &report[at..],
            "stack        not available: the runtime's task dump traced nothing",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Through the attribute.

#[leak_test(tokio)]
async fn attribute_current_thread_clean_test_passes() {
    let answer = tokio::spawn(async { 42 });
    assert_eq!(answer.await.unwrap(), 42);
}

#[leak_test(tokio, flavor = "multi_thread", worker_threads = 2)]
async fn attribute_multi_thread_clean_test_passes() {
    let tasks: Vec<_> = (0..8).map(|i| tokio::spawn(async move { i * 2 })).collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    assert_eq!(sum, 56);
}

#[leak_test(tokio, start_paused = true)]
async fn attribute_start_paused_runs_on_paused_time() {
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(start.elapsed() >= Duration::from_secs(3600));
}

#[leak_test(tokio, timeout = "100ms")]
#[ignore = "fixture: run by tokio_runtime.rs itself"]
async fn fixture_attribute_current_thread_leak() {
    tokio::spawn(std::future::pending::<()>());
}

#[leak_test(tokio, flavor = "multi_thread", timeout = "100ms")]
#[ignore = "fixture: run by tokio_runtime.rs itself"]
async fn fixture_attribute_multi_thread_leak() {
    tokio::spawn(std::future::pending::<()>());
}

#[test]
fn the_attribute_catches_plain_tokio_spawn_on_both_flavors() {
    for fixture in [
        "fixture_attribute_current_thread_leak",
        "fixture_attribute_multi_thread_leak",
    ] {
        let run = run_fixture(fixture, &[]);
        run.assert_failed()
            .assert_contains(&format!("leakcheck: 1 unexpected task in test `{fixture}`"));
        if cfg!(tokio_unstable) {
            run.assert_contains("spawned at   tests/tokio_runtime.rs:");
        } else {
            run.assert_contains("that leakcheck did not see spawn");
        }
    }
}
