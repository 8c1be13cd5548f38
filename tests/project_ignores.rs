//! End to end: the project's `leakcheck.toml` (SPEC §6) hides the background threads a project
//! keeps on purpose, says so with its reason when it hid something in a failing report, warns
//! about rules that hid nothing, and turns a malformed file into an error naming file and line.
//!
//! The file is read once per process from `CARGO_MANIFEST_DIR`, so each case runs a fixture in a
//! child process whose `CARGO_MANIFEST_DIR` is a temporary package directory holding the file.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options};

use common::{marked_line, run_fixture, FixtureRun};

/// A package directory of its own, with the given `leakcheck.toml`, removed when dropped.
struct Package(PathBuf);

impl Package {
    fn with_ignore_file(tag: &str, text: &str) -> Package {
        let dir = std::env::temp_dir().join(format!(
            "leakcheck-project-ignores-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"fixture\"\n").unwrap();
        std::fs::write(dir.join("leakcheck.toml"), text).unwrap();
        Package(dir)
    }

    fn run(&self, fixture: &str) -> FixtureRun {
        run_fixture(
            fixture,
            &[(
                "CARGO_MANIFEST_DIR",
                self.0.to_str().expect("a UTF-8 temp dir"),
            )],
        )
    }

    fn file(&self) -> String {
        self.0.join("leakcheck.toml").display().to_string()
    }
}

impl Drop for Package {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A thread the process keeps on purpose: it parks until the process ends.
fn start_metrics_exporter() {
    thread::Builder::new()
        .name("metrics-exporter".into())
        .spawn(|| loop {
            std::thread::park();
        })
        .unwrap();
}

#[test]
#[ignore = "fixture: run with a leakcheck.toml by the tests below"]
fn fixture_keeps_a_background_thread() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    start_metrics_exporter();
    println!("BODY DONE");
}

#[test]
#[ignore = "fixture: run with a leakcheck.toml by the tests below"]
fn fixture_keeps_a_background_thread_and_leaks_a_sender() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    start_metrics_exporter();
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    thread::spawn(move || tx.send(1)); // site: leaked sender
    std::mem::forget(rx);
}

#[test]
#[ignore = "fixture: run with a leakcheck.toml by the tests below"]
fn fixture_keeps_a_plain_background_thread() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    // Not spawned through leakcheck: a dependency's thread, say.
    std::thread::Builder::new()
        .name("metrics-exporter".into())
        .spawn(|| loop {
            std::thread::park();
        })
        .unwrap();
    println!("BODY DONE");
}

/// A background loop that a rule names by function.
#[inline(never)]
fn flush_loop() {
    loop {
        std::thread::park();
    }
}

#[test]
#[ignore = "fixture: run with a leakcheck.toml by the tests below"]
fn fixture_keeps_an_unnamed_flush_loop() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(50)));
    thread::spawn(flush_loop);
    println!("BODY DONE");
}

#[test]
#[ignore = "fixture: run with a leakcheck.toml by the tests below"]
fn fixture_clean() {
    let _leaks = leakcheck::verify_none(); // site: clean guard
    thread::spawn(|| 2 + 2).join().unwrap();
    println!("BODY DONE");
}

const EXPORTER_RULE: &str = r#"# Threads this project keeps for the whole process.
[[ignore]]
name = "metrics-exporter"
reason = "exports metrics for the whole process, by design"
"#;

#[test]
fn a_rule_hides_a_named_background_thread() {
    let package = Package::with_ignore_file("hides", EXPORTER_RULE);
    let run = package.run("fixture_keeps_a_background_thread");
    run.assert_passed().assert_contains("BODY DONE");
    assert!(
        !run.output.contains("hid nothing"),
        "a used rule was warned about:\n{}",
        run.output
    );
}

#[test]
fn a_rule_hides_a_thread_leakcheck_did_not_spawn() {
    let package = Package::with_ignore_file("plain", EXPORTER_RULE);
    let run = package.run("fixture_keeps_a_plain_background_thread");
    run.assert_passed().assert_contains("BODY DONE");
    assert!(
        !run.output.contains("hid nothing"),
        "a used rule was warned about:\n{}",
        run.output
    );
    // And without the rule, the fixture (run one test at a time) does report it.
    let without = Package::with_ignore_file("plain-absent", "");
    without
        .run("fixture_keeps_a_plain_background_thread")
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_keeps_a_plain_background_thread`");
}

#[test]
fn without_the_file_the_background_thread_is_a_leak() {
    let package = Package::with_ignore_file("absent", "");
    package
        .run("fixture_keeps_a_background_thread")
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_keeps_a_background_thread`")
        .assert_contains("\"metrics-exporter\"");
}

#[test]
fn a_failing_report_says_which_rule_hid_what_and_why() {
    let package = Package::with_ignore_file("notes", EXPORTER_RULE);
    let (line, _) = marked_line(include_str!("project_ignores.rs"), "leaked sender");
    let run = package.run("fixture_keeps_a_background_thread_and_leaks_a_sender");
    run.assert_failed()
        .assert_contains(
            "1 unexpected task in test `fixture_keeps_a_background_thread_and_leaks_a_sender`",
        )
        .assert_contains(&format!("tests/project_ignores.rs:{line}:"));
    // Notes are wrapped: read them with runs of whitespace as one space.
    let notes = run.output.split_whitespace().collect::<Vec<_>>().join(" ");
    let expected = format!(
        "note: 1 task hidden by the project's ignore file, rule name = \"metrics-exporter\" at {}:2: \
         exports metrics for the whole process, by design",
        package.file()
    );
    assert!(
        notes.contains(&expected),
        "expected {expected:?} in:\n{}",
        run.output
    );
    assert!(
        !run.output.contains("#1 \"metrics-exporter\"")
            && !run.output.contains("× thread \"metrics-exporter\""),
        "the hidden thread is listed as a leak:\n{}",
        run.output
    );
}

#[test]
fn every_pattern_of_a_rule_must_match() {
    let package = Package::with_ignore_file(
        "conjunction",
        r#"[[ignore]]
name = "metrics-exporter"
spawned_at = "src/somewhere_else.rs"
reason = "only the exporter spawned over there"
"#,
    );
    package
        .run("fixture_keeps_a_background_thread")
        .assert_failed()
        .assert_contains("\"metrics-exporter\"");
}

#[test]
fn a_spawn_site_rule_hides_what_was_spawned_there() {
    let package = Package::with_ignore_file(
        "site",
        r#"[[ignore]]
spawned_at = "tests/project_ignores.rs"
reason = "everything this file spawns is kept on purpose"
"#,
    );
    package
        .run("fixture_keeps_a_background_thread")
        .assert_passed();
}

#[test]
fn a_function_rule_hides_a_thread_running_that_function() {
    let package = Package::with_ignore_file(
        "function",
        r#"[[ignore]]
function = "project_ignores::flush_loop"
reason = "flushes for the whole process"
"#,
    );
    let run = package.run("fixture_keeps_an_unnamed_flush_loop");
    run.assert_passed().assert_contains("BODY DONE");
    assert!(!run.output.contains("hid nothing"), "{}", run.output);
    Package::with_ignore_file("function-absent", "")
        .run("fixture_keeps_an_unnamed_flush_loop")
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_keeps_an_unnamed_flush_loop`");
}

#[test]
fn a_rule_that_hid_nothing_is_warned_about() {
    let package = Package::with_ignore_file(
        "unused",
        &format!(
            "{EXPORTER_RULE}\n[[ignore]]\nname = \"retired-poller-*\"\nreason = \"the old poller\"\n"
        ),
    );
    let run = package.run("fixture_keeps_a_background_thread");
    run.assert_passed()
        .assert_contains(&format!("{}:6", package.file()))
        .assert_contains("name = \"retired-poller-*\"")
        .assert_contains("hid nothing");
    assert_eq!(
        run.output.matches("hid nothing").count(),
        1,
        "only the unused rule is warned about:\n{}",
        run.output
    );
}

#[test]
fn a_malformed_file_fails_every_check_naming_file_line_and_what_was_expected() {
    let package = Package::with_ignore_file(
        "malformed",
        "[[ignore]]\nname = \"metrics-exporter\"\nreasn = \"typo\"\n",
    );
    let run = package.run("fixture_clean");
    run.assert_failed()
        .assert_contains(&format!("{}:3: unknown key `reasn`", package.file()))
        .assert_contains("expected `name`, `spawned_at`, `function`, `reason`");
    // The failure points at the check's guard, not into leakcheck.
    let (line, _) = marked_line(include_str!("project_ignores.rs"), "clean guard");
    run.assert_contains(&format!("panicked at tests/project_ignores.rs:{line}:"));
}

#[test]
fn a_rule_without_a_reason_is_refused() {
    let package =
        Package::with_ignore_file("no-reason", "[[ignore]]\nname = \"metrics-exporter\"\n");
    package
        .run("fixture_clean")
        .assert_failed()
        .assert_contains(&format!("{}:1: ", package.file()))
        .assert_contains("no `reason`");
}
