//! A custom test main (`harness = false`) with libtest-mimic: each trial is checked in its own
//! scope, and the whole process is checked once every trial ran.
//!
//! Run it with `cargo run --example custom_test_main`: both trials pass and nothing is left. Add
//! `-- --include-ignored` to run the third trial, which forgets a worker thread spawned with plain
//! `std::thread::spawn`: with trials running in parallel, its own check cannot pin that thread on
//! it (the report would say so), but the global check after the run finds it and turns the
//! successful run into a failure, with the thread's name, kernel state and live stack on stderr.
//! Add `--test-threads=1` as well and the trial's own check reports it.
//!
//! In a real project this file is `tests/<name>.rs`, with in `Cargo.toml`:
//!
//! ```toml
//! [[test]]
//! name = "<name>"
//! harness = false
//! ```

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use leakcheck::{MainOptions, Options};
use libtest_mimic::{Arguments, Failed, Trial};

/// Runs `body` as a trial in a scope of its own, checked when it returns: a leak fails this trial
/// only, with its name in the report.
fn checked(name: &'static str, body: fn()) -> Trial {
    Trial::test(name, move || {
        leakcheck::in_scope(name, || {
            let leaks =
                leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(250)));
            body();
            leaks
                .verify()
                .map_err(|report| Failed::from(report.to_string()))
        })
    })
}

/// A worker pool that is shut down properly.
fn pool_shuts_down() {
    let (jobs, queue) = leakcheck::sync::mpsc::channel::<u32>();
    let worker = leakcheck::thread::Builder::new()
        .name("pool-worker".into())
        .spawn(move || queue.iter().sum::<u32>())
        .unwrap();
    (1..=10).for_each(|job| jobs.send(job).unwrap());
    drop(jobs);
    assert_eq!(worker.join().unwrap(), 55);
}

/// Scoped threads are always joined.
fn scoped_threads_are_joined() {
    let total: u32 = std::thread::scope(|scope| {
        let halves = [
            scope.spawn(|| (1..=50).sum::<u32>()),
            scope.spawn(|| (51..=100).sum::<u32>()),
        ];
        halves.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 5050);
}

/// A "flusher" started with plain `std::thread::spawn` that nobody stops.
fn flusher_is_forgotten() {
    let (_keep_open, ticks) = mpsc::channel::<()>();
    std::mem::forget(_keep_open);
    std::thread::Builder::new()
        .name("log-flusher".into())
        .spawn(move || {
            for _tick in ticks {
                // flush
            }
        })
        .unwrap();
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trials = vec![
        checked("pool_shuts_down", pool_shuts_down),
        checked("scoped_threads_are_joined", scoped_threads_are_joined),
        checked("flusher_is_forgotten", flusher_is_forgotten).with_ignored_flag(true),
    ];
    // Report leaks after a failed run too: a leak is often why a test failed.
    let options = MainOptions::new().check_after_failure(true);
    leakcheck::verify_test_main_with(options, || libtest_mimic::run(&args, trials).exit_code())
}
