//! End to end: a process forked from a test has only the thread that forked, and its checks
//! must not report the parent's threads as its own leaks.
//!
//! This binary holds one test on purpose: `fork()` copies every lock in the state it had, and a
//! test running beside this one could hold one at that moment (its output capture, leakcheck's
//! registry), which the child would then wait on forever.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options};

use common::block_on;

/// The blocking call the leaked threads sit in: a send into a rendezvous channel nobody reads.
#[inline(never)]
fn deliver_result(tx: mpsc::SyncSender<u32>) {
    let _ = tx.send(42);
}

/// Waits until every thread of this process but the calling one sleeps in the kernel: the
/// parent's workers are then blocked in their channel, holding none of leakcheck's locks.
fn wait_until_others_sleep() {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() }.to_string();
    loop {
        let all_asleep = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_str() != Some(me.as_str()))
            .all(|entry| {
                let stat = std::fs::read(entry.path().join("stat")).unwrap_or_default();
                let state = stat
                    .iter()
                    .rposition(|&b| b == b')')
                    .and_then(|close| stat.get(close + 2));
                state == Some(&b'S')
            });
        if all_asleep {
            return;
        }
        std::thread::yield_now();
    }
}

/// An awaited check with a leak of its own, which only the grace period's timer can end.
fn async_check_with_a_leak(scope: &str) -> usize {
    leakcheck::in_scope(scope, || {
        let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(30)));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let leaked = thread::spawn(move || deliver_result(tx));
        let found = match block_on(guard.verify_async()) {
            Ok(()) => 0,
            Err(report) => report.tasks().len(),
        };
        drop(rx);
        leaked.join().unwrap();
        found
    })
}

/// What the child found, as its exit code.
const PASSED: i32 = 0;
const PANICKED: i32 = 1;
const MISSED_ITS_OWN_LEAK: i32 = 2;
/// Plus the number of tasks reported, when that is not exactly the child's own thread.
const WRONG_TASKS: i32 = 10;
/// The awaited check did not report the child's own leak.
const ASYNC_CHECK_MISSED: i32 = 3;

/// In the child: one leaked thread of its own must be the whole report.
fn child_checks(guard: leakcheck::VerifyGuard) -> i32 {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let own_line = line!() + 1;
    let own = thread::spawn(move || deliver_result(tx));
    let code = match guard.verify() {
        Ok(()) => MISSED_ITS_OWN_LEAK,
        Err(report) => {
            let only_own = report.tasks().len() == 1
                && report.tasks()[0]
                    .spawned_at()
                    .is_some_and(|site| site.line() == own_line);
            if only_own {
                PASSED
            } else {
                WRONG_TASKS + i32::try_from(report.tasks().len()).unwrap_or(99).min(99)
            }
        }
    };
    drop(rx);
    own.join().unwrap();
    if code != PASSED {
        return code;
    }
    // The parent's timer thread was not copied: the child's awaited check needs one of its own.
    match async_check_with_a_leak("child-async") {
        1 => PASSED,
        _ => ASYNC_CHECK_MISSED,
    }
}

#[test]
fn a_forked_child_does_not_report_the_parents_threads() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let parents: Vec<_> = (0..2)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || deliver_result(tx))
        })
        .collect();
    drop(tx);
    // The parent's awaited checks start leakcheck's timer thread, which `fork` does not copy.
    assert_eq!(async_check_with_a_leak("parent-async"), 1);
    wait_until_others_sleep();

    // SAFETY: the child runs leakcheck and std only while no other thread of the parent can
    // hold their locks (see `wait_until_others_sleep`), and ends with `_exit`.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // A child whose check hangs is killed by the alarm, and the parent says so.
        // SAFETY: alarm has no preconditions.
        unsafe { libc::alarm(10) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child_checks(guard)))
            .unwrap_or(PANICKED);
        // SAFETY: ends the child without running the parent's exit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    assert!(child > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: waits for the child made above.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(
        libc::WIFEXITED(status),
        "the child died (signal {}: 14 is the alarm of a hung check)",
        libc::WTERMSIG(status)
    );
    match libc::WEXITSTATUS(status) {
        PASSED => {}
        PANICKED => panic!("the child's check panicked"),
        MISSED_ITS_OWN_LEAK => panic!("the child's check missed the child's own leaked thread"),
        ASYNC_CHECK_MISSED => panic!("the child's awaited check missed its own leaked thread"),
        code => panic!(
            "the child's report held {} tasks; only its own thread belongs there",
            code - WRONG_TASKS
        ),
    }

    // The parent's own check still sees its threads until they are released.
    drop(rx);
    parents.into_iter().for_each(|p| p.join().unwrap());
    guard.verify().expect("the parent's threads were released");
}
