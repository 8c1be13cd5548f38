//! End to end: a leak fails a `#[should_panic]` `#[leak_test]` too (seen on rayon's `iter_panic`,
//! which passed while leaking). The expected panic is swallowed so that libtest fails the test,
//! with or without `expected = "..."`, and the report says why; without a leak, a
//! `#[should_panic]` test passes as before.

mod common;

use leakcheck::leak_test;
use leakcheck::sync::mpsc;

use common::{marked_line, run_fixture, FixtureRun};

/// Leaks one sender that nobody receives from, then panics as the test expects.
fn leak_then_panic() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || tx.send(1)); // site: leak
    std::mem::forget(rx);
    panic!("boom, as expected");
}

#[leak_test(timeout = "50ms")]
#[should_panic]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_bare_should_panic_leaks() {
    leak_then_panic();
}

#[leak_test(timeout = "50ms")]
#[should_panic(expected = "boom")]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_expected_message_leaks() {
    leak_then_panic();
}

// `#[should_panic]` written before the attribute is seen too.
#[should_panic]
#[leak_test(timeout = "50ms")]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_should_panic_first_leaks() {
    leak_then_panic();
}

#[leak_test(timeout = "50ms")]
#[should_panic(expected = "boom")]
#[ignore = "fixture: run by should_panic.rs itself"]
async fn fixture_async_should_panic_leaks() {
    leak_then_panic();
}

#[cfg(feature = "tokio")]
#[leak_test(tokio, timeout = "50ms")]
#[should_panic(expected = "boom")]
#[ignore = "fixture: run by should_panic.rs itself"]
async fn fixture_tokio_should_panic_leaks() {
    leak_then_panic();
}

#[leak_test(timeout = "50ms")]
#[should_panic(expected = "boom")]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_should_panic_clean() {
    leakcheck::thread::spawn(|| 2 + 2).join().unwrap();
    panic!("boom, as expected");
}

#[leak_test(timeout = "50ms")]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_unexpected_panic_leaks() {
    leak_then_panic();
}

#[leak_test(timeout = "50ms")]
#[should_panic]
#[ignore = "fixture: run by should_panic.rs itself"]
fn fixture_should_panic_leaks_without_panicking() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || tx.send(1));
    std::mem::forget(rx);
}

#[leak_test(timeout = "50ms")]
#[should_panic]
#[ignore = "fixture: run by should_panic.rs itself, with a malformed LEAKCHECK"]
fn fixture_should_panic_under_a_malformed_setting() {
    println!("BODY RAN");
    panic!("boom, as expected");
}

#[track_caller]
fn assert_failed_for_the_leak(run: &FixtureRun, test: &str) {
    let (line, _) = marked_line(include_str!("should_panic.rs"), "leak");
    run.assert_failed()
        .assert_contains(&format!("1 unexpected task in test `{test}`"))
        .assert_contains(&format!("tests/should_panic.rs:{line}:"))
        .assert_contains("panicked as `#[should_panic]` expects, but it also leaked");
}

#[test]
fn a_leak_fails_a_bare_should_panic_test() {
    let test = "fixture_bare_should_panic_leaks";
    assert_failed_for_the_leak(&run_fixture(test, &[]), test);
}

#[test]
fn a_leak_fails_a_should_panic_test_whose_message_matches() {
    let test = "fixture_expected_message_leaks";
    assert_failed_for_the_leak(&run_fixture(test, &[]), test);
}

#[test]
fn should_panic_written_before_the_attribute_counts_too() {
    let test = "fixture_should_panic_first_leaks";
    assert_failed_for_the_leak(&run_fixture(test, &[]), test);
}

#[test]
fn a_leak_fails_an_async_should_panic_test() {
    let test = "fixture_async_should_panic_leaks";
    assert_failed_for_the_leak(&run_fixture(test, &[]), test);
}

#[cfg(feature = "tokio")]
#[test]
fn a_leak_fails_a_tokio_should_panic_test() {
    let test = "fixture_tokio_should_panic_leaks";
    assert_failed_for_the_leak(&run_fixture(test, &[]), test);
}

/// The report's own panic must not pass for the panic the test expects.
#[test]
fn a_should_panic_test_that_leaks_without_panicking_fails() {
    let test = "fixture_should_panic_leaks_without_panicking";
    run_fixture(test, &[])
        .assert_failed()
        .assert_contains(&format!("1 unexpected task in test `{test}`"))
        .assert_contains("it did not panic as `#[should_panic]` expects");
}

/// A check that cannot run must not pass for the panic the test expects either.
#[test]
fn a_should_panic_test_fails_when_its_check_cannot_run() {
    let run = run_fixture(
        "fixture_should_panic_under_a_malformed_setting",
        &[("LEAKCHECK", "loud")],
    );
    run.assert_failed()
        .assert_contains("LEAKCHECK")
        .assert_contains("the check cannot run");
    assert!(!run.output.contains("BODY RAN"), "{}", run.output);
}

#[test]
fn a_should_panic_test_without_leaks_passes() {
    run_fixture("fixture_should_panic_clean", &[]).assert_passed();
}

#[test]
fn a_test_that_panics_unexpectedly_and_leaks_fails_with_its_own_panic_and_the_report() {
    let run = run_fixture("fixture_unexpected_panic_leaks", &[]);
    run.assert_failed()
        .assert_contains("boom, as expected")
        .assert_contains("1 unexpected task in test `fixture_unexpected_panic_leaks`");
    assert!(
        !run.output.contains("#[should_panic]"),
        "not a should_panic test:\n{}",
        run.output
    );
}
