//! End to end: a failing check's panic points at the test, not into leakcheck. A guard's failure
//! names the line that created the guard; `#[leak_test]`'s names the test's attribute.
//!
//! The panic hook prints `thread '...' panicked at FILE:LINE:COLUMN:` before the message; each
//! case runs a leaky fixture in a child process and reads that line.

mod common;

use std::time::Duration;

use leakcheck::leak_test;
use leakcheck::sync::mpsc;
use leakcheck::Options;

use common::{marked_line, run_fixture, FixtureRun};

/// Leaks one sender that nobody receives from.
fn leak_a_sender() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || tx.send(1));
    std::mem::forget(rx);
}

#[test]
#[ignore = "fixture: run by failure_site.rs itself"]
fn fixture_guard() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50))); // site: guard
    leak_a_sender();
}

#[test]
#[ignore = "fixture: run by failure_site.rs itself"]
fn fixture_default_guard() {
    let _leaks = leakcheck::verify_none(); // site: default guard
    leak_a_sender();
}

#[leak_test(timeout = "50ms")] // site: sync attribute
#[ignore = "fixture: run by failure_site.rs itself"]
fn fixture_attribute() {
    leak_a_sender();
}

#[leak_test(timeout = "50ms")] // site: async attribute
#[ignore = "fixture: run by failure_site.rs itself"]
async fn fixture_async_attribute() {
    leak_a_sender();
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, timeout = "50ms")] // site: tokio attribute
#[ignore = "fixture: run by failure_site.rs itself"]
async fn fixture_tokio_attribute() {
    leak_a_sender();
}

/// Asserts that the fixture failed with the leak report, and that its panic line names
/// `tests/failure_site.rs` at the line marked `marker`.
#[track_caller]
fn assert_points_at(run: &FixtureRun, marker: &str) {
    let (line, _) = marked_line(include_str!("failure_site.rs"), marker);
    run.assert_failed()
        .assert_contains("1 unexpected task")
        .assert_contains(&format!("panicked at tests/failure_site.rs:{line}:"));
    assert!(
        !run.output.contains("panicked at leakcheck/"),
        "the panic points into leakcheck:\n{}",
        run.output
    );
}

#[test]
fn a_guard_failure_points_at_the_line_that_created_the_guard() {
    assert_points_at(&run_fixture("fixture_guard", &[]), "guard");
    assert_points_at(&run_fixture("fixture_default_guard", &[]), "default guard");
}

#[test]
fn an_attribute_failure_points_at_the_test() {
    assert_points_at(&run_fixture("fixture_attribute", &[]), "sync attribute");
    assert_points_at(
        &run_fixture("fixture_async_attribute", &[]),
        "async attribute",
    );
}

#[cfg(feature = "tokio")]
#[test]
fn a_tokio_attribute_failure_points_at_the_test() {
    assert_points_at(
        &run_fixture("fixture_tokio_attribute", &[]),
        "tokio attribute",
    );
}

#[test]
fn a_malformed_setting_also_points_at_the_guard_or_the_test() {
    for (fixture, marker) in [
        ("fixture_guard", "guard"),
        ("fixture_attribute", "sync attribute"),
    ] {
        let run = run_fixture(fixture, &[("LEAKCHECK", "loud")]);
        let (line, _) = marked_line(include_str!("failure_site.rs"), marker);
        run.assert_failed()
            .assert_contains("LEAKCHECK=`loud` is not understood")
            .assert_contains(&format!("panicked at tests/failure_site.rs:{line}:"));
    }
}

#[test]
fn a_guard_failure_still_carries_the_report_as_its_panic_message() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || tx.send(1));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)))
        .expect_err("the guard fails");
    drop(rx);
    let message = panic
        .downcast_ref::<String>()
        .expect("the payload is the report, as a String");
    assert!(
        message.contains("1 unexpected task in test `a_guard_failure_still_carries_the_report_as_its_panic_message`"),
        "{message}"
    );
}
