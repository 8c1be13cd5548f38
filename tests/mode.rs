//! End to end: `LEAKCHECK=fail|warn|off` decides what every check does with its leaks (SPEC §6),
//! and a malformed value is a clear error. The variable is read once per process, so each case
//! runs a fixture in a child process with the variable set.

mod common;

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options};

use common::run_fixture;

#[test]
#[ignore = "fixture: run with LEAKCHECK set by the tests below"]
fn fixture_leaks_one_sender() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    thread::spawn(move || tx.send(1));
    std::mem::forget(rx);
    println!("BODY DONE");
}

#[test]
#[ignore = "fixture: run with LEAKCHECK set by the tests below"]
fn fixture_clean() {
    let _leaks = leakcheck::verify_none();
    thread::spawn(|| 2 + 2).join().unwrap();
    println!("BODY DONE");
}

#[test]
fn by_default_a_leak_fails_the_test() {
    run_fixture("fixture_leaks_one_sender", &[])
        .assert_failed()
        .assert_contains("BODY DONE")
        .assert_contains("leakcheck: 1 unexpected task in test `fixture_leaks_one_sender`")
        .assert_contains("1 × thread, blocked in `chan send`");
}

#[test]
fn fail_fails_the_test_with_the_report() {
    run_fixture("fixture_leaks_one_sender", &[("LEAKCHECK", "fail")])
        .assert_failed()
        .assert_contains("leakcheck: 1 unexpected task in test `fixture_leaks_one_sender`");
}

#[test]
fn warn_prints_the_report_and_passes() {
    run_fixture("fixture_leaks_one_sender", &[("LEAKCHECK", "warn")])
        .assert_passed()
        .assert_contains("leakcheck: 1 unexpected task in test `fixture_leaks_one_sender`")
        .assert_contains("(LEAKCHECK=warn: not failing)");
}

#[test]
fn off_checks_nothing_and_passes() {
    let run = run_fixture("fixture_leaks_one_sender", &[("LEAKCHECK", "off")]);
    run.assert_passed().assert_contains("BODY DONE");
    assert!(
        !run.output.contains("leakcheck:"),
        "LEAKCHECK=off printed something:\n{}",
        run.output
    );
}

#[test]
fn surrounding_whitespace_is_forgiven() {
    run_fixture("fixture_leaks_one_sender", &[("LEAKCHECK", " warn ")])
        .assert_passed()
        .assert_contains("(LEAKCHECK=warn: not failing)");
}

#[test]
fn a_malformed_value_is_an_error_naming_the_variable_and_the_accepted_values() {
    // Even a clean test fails: a typo must not silently fall back to a default.
    run_fixture("fixture_clean", &[("LEAKCHECK", "loud")])
        .assert_failed()
        .assert_contains("LEAKCHECK=`loud` is not understood")
        .assert_contains("accepted values: `fail` (the default), `warn`, `off`");
}

#[test]
fn clean_tests_pass_in_every_mode() {
    for mode in ["fail", "warn", "off"] {
        let run = run_fixture("fixture_clean", &[("LEAKCHECK", mode)]);
        run.assert_passed();
        assert!(
            !run.output.contains("leakcheck:"),
            "LEAKCHECK={mode}:\n{}",
            run.output
        );
    }
}

#[test]
fn a_timeout_beyond_584_years_is_an_error_naming_the_variable_not_a_panic_in_std() {
    // It used to parse, then overflow `start + grace` in the check with std's message.
    run_fixture(
        "fixture_clean",
        &[("LEAKCHECK_TIMEOUT", "9300000000000000000s")],
    )
    .assert_failed()
    .assert_contains("LEAKCHECK_TIMEOUT: `9300000000000000000s` is out of range")
    .assert_contains("under 584 years")
    .assert_contains("expected a number followed by a unit");
}

#[test]
#[ignore = "fixture: run with a malformed LEAKCHECK_TIMEOUT by the test below"]
fn fixture_verify_says_why_it_cannot_run() {
    let guard = leakcheck::verify_none();
    thread::spawn(|| 2 + 2).join().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.verify()));
    let report = outcome
        .expect("verify() never panics")
        .expect_err("a check that cannot run is no pass");
    assert!(report.tasks().is_empty());
    println!("CHECK ERROR: {:?}", report.check_error());
    println!("REPORT: {report}");
}

#[test]
fn verify_returns_a_malformed_variables_error_instead_of_panicking() {
    run_fixture(
        "fixture_verify_says_why_it_cannot_run",
        &[("LEAKCHECK_TIMEOUT", "9300000000000000000s")],
    )
    .assert_passed()
    .assert_contains("CHECK ERROR: Some(\"malformed environment:")
    .assert_contains("LEAKCHECK_TIMEOUT: `9300000000000000000s` is out of range")
    .assert_contains("REPORT: leakcheck: the check of test `fixture_verify_says_why_it_cannot_run` could not run");
}

#[test]
fn a_grace_period_too_long_for_the_clock_is_no_panic() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::MAX));
    thread::spawn(|| 2 + 2).join().unwrap();
    guard.verify().expect("nothing leaked, and no overflow");
}
