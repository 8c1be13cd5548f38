//! Stress: 200 tests run at the same time in one process (a libtest-mimic harness with 200 test
//! threads inside `verify_test_main`), each in its own scope. Most spawn and join tracked and
//! plain threads in a loop and must pass their check; the others leave a sender blocked, so that
//! their check takes live stacks (signals, unwinding in handlers) while threads all around start
//! and exit, and must report exactly that sender, with its live stack. Nothing may deadlock or
//! crash, no check may report another test's threads, and the global check after the run must
//! find the process clean. Bounded: a few seconds on two cores.

#![cfg(target_os = "linux")]

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leakcheck::sync::mpsc;
use leakcheck::{MainOptions, Options, StackOrigin};
use libtest_mimic::{Arguments, Failed, Trial};

const TESTS: usize = 200;
/// Live stacks taken through the send, and requests the sender did not answer in time.
static LIVE_STACKS_TAKEN: AtomicUsize = AtomicUsize::new(0);
static LIVE_STACKS_TIMED_OUT: AtomicUsize = AtomicUsize::new(0);
/// Rounds of spawn-and-join per test, unless the time budget runs out first.
const ROUNDS: usize = 40;
/// A budget for the spawning, so that a slow machine still ends in bounded time.
const SPAWN_BUDGET: Duration = Duration::from_secs(4);

#[inline(never)]
fn stress_deliver(tx: mpsc::SyncSender<usize>, value: usize) {
    let _ = tx.send(value);
}

/// Spawns and joins threads in a loop: nothing may be reported.
fn spawns_and_joins(index: usize, started: Instant) -> Result<(), Failed> {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_secs(5)));
    for round in 0..ROUNDS {
        if started.elapsed() > SPAWN_BUDGET {
            break;
        }
        let tracked: Vec<_> = (0..3)
            .map(|k| leakcheck::thread::spawn(move || index * round + k))
            .collect();
        let plain = std::thread::spawn(move || index + round);
        let (tx, rx) = mpsc::sync_channel::<usize>(0);
        let sender = leakcheck::thread::spawn(move || stress_deliver(tx, round));
        assert_eq!(rx.recv().unwrap(), round);
        sender.join().unwrap();
        tracked.into_iter().for_each(|t| {
            t.join().unwrap();
        });
        plain.join().unwrap();
    }
    guard
        .verify()
        .map_err(|report| Failed::from(format!("test {index} was blamed for:\n{report}")))
}

/// Leaves a sender blocked, again and again: each check must report it, and only it, with a
/// live stack through the send.
fn leaves_a_sender_blocked(index: usize, started: Instant) -> Result<(), Failed> {
    for round in 0..ROUNDS / 4 {
        if round > 0 && started.elapsed() > SPAWN_BUDGET {
            break;
        }
        let (tx, rx) = mpsc::sync_channel::<usize>(0);
        let sender = leakcheck::thread::Builder::new()
            .name(format!("stress-sender-{index}"))
            .spawn(move || stress_deliver(tx, index))
            .unwrap();
        let expected = format!("stress-sender-{index}");
        // On two loaded cores the sender may take a while to reach the send: check until it has.
        let report = loop {
            let check =
                leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(20)));
            let report = match check.verify() {
                Ok(()) => return Err("the blocked sender was not reported".into()),
                Err(report) => report,
            };
            if report.tasks().len() != 1 || report.tasks()[0].name() != Some(expected.as_str()) {
                return Err(format!("test {index} expected only {expected}:\n{report}").into());
            }
            if report.tasks()[0].blocked_on() == Some("chan send") {
                break report;
            }
        };
        match report.tasks()[0].stack() {
            Some(stack)
                if stack.origin() == StackOrigin::Live
                    && stack.contains_function("stress::stress_deliver") =>
            {
                LIVE_STACKS_TAKEN.fetch_add(1, Ordering::Relaxed);
            }
            // With hundreds of runnable threads on two cores, the sender may not get the CPU
            // within the live-stack timeout, or the requests of the other tests ahead of this
            // one (they take turns) may use it up: the report must then say so.
            None if [
                "stack        not available: the thread did not answer",
                "stack        not available: another live-stack request held the way",
            ]
            .iter()
            .any(|why| report.to_string().contains(why)) =>
            {
                LIVE_STACKS_TIMED_OUT.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                return Err(
                    format!("test {index}: no live stack through the send:\n{report}").into(),
                )
            }
        }
        assert_eq!(rx.recv().unwrap(), index);
        sender.join().unwrap();
    }
    // Released and joined: a last check of the same scope is clean.
    leakcheck::verify_none_with(Options::new().timeout(Duration::from_secs(5)))
        .verify()
        .map_err(|report| Failed::from(format!("test {index} after release:\n{report}")))
}

#[test]
fn two_hundred_tests_at_once_spawn_join_and_take_live_stacks() {
    let started = Instant::now();
    let trials: Vec<Trial> = (0..TESTS)
        .map(|index| {
            let name = format!("stress_{index:03}");
            let scope = name.clone();
            Trial::test(name, move || {
                leakcheck::in_scope(&scope, || {
                    if index % 4 == 0 {
                        leaves_a_sender_blocked(index, started)
                    } else {
                        spawns_and_joins(index, started)
                    }
                })
            })
        })
        .collect();
    let args = Arguments {
        test_threads: Some(TESTS),
        quiet: true,
        ..Arguments::default()
    };
    // The trials really run in parallel, whatever the runner of this test says about its own
    // tests: their checks leave untracked threads to the global check.
    let options = MainOptions::new()
        .one_test_at_a_time(false)
        .check(Options::new().timeout(Duration::from_secs(5)));
    let code =
        leakcheck::verify_test_main_with(options, || libtest_mimic::run(&args, trials).exit_code());
    let took = started.elapsed();
    let taken = LIVE_STACKS_TAKEN.load(Ordering::Relaxed);
    let timed_out = LIVE_STACKS_TIMED_OUT.load(Ordering::Relaxed);
    eprintln!(
        "{TESTS} tests at once took {took:?}; {taken} live stacks taken, {timed_out} not answered in time"
    );
    assert!(taken > 0, "no live stack was taken");
    assert_eq!(
        code,
        ExitCode::SUCCESS,
        "a trial failed or the global check found leftovers (see above)"
    );
    assert!(
        took < Duration::from_secs(60),
        "the stress run took {took:?}"
    );
}
