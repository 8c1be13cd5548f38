//! Runs a fixture test of the current test binary in a child process.
//!
//! A test that leaks must *fail*; to assert that, and what it printed, the end-to-end tests re-run
//! their own binary with libtest's arguments to select one `#[ignore]`d fixture test. This works
//! the same under `cargo test` and `cargo nextest run`.

#![allow(dead_code)]

use std::process::Command;

/// What a fixture test run printed, and whether it passed.
pub struct FixtureRun {
    pub success: bool,
    /// stdout and stderr together: libtest prints a failed test's panic message to stdout under
    /// `--nocapture` and to stderr otherwise.
    pub output: String,
}

impl FixtureRun {
    /// Panics with the whole output unless it contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.output.contains(needle),
            "expected {needle:?} in the fixture's output:\n{}",
            self.output
        );
        self
    }

    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            !self.success,
            "the fixture was expected to fail:\n{}",
            self.output
        );
        self
    }

    #[track_caller]
    pub fn assert_passed(&self) -> &Self {
        assert!(
            self.success,
            "the fixture was expected to pass:\n{}",
            self.output
        );
        self
    }
}

/// Runs the `#[ignore]`d test `name` of this test binary, with extra environment variables.
pub fn run_fixture(name: &str, env: &[(&str, &str)]) -> FixtureRun {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut command = Command::new(exe);
    command.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    // A fixture's leaks are meant to be reported quickly, and never swallowed by the parent's mode.
    command
        .env("LEAKCHECK_TIMEOUT", "100ms")
        .env_remove("LEAKCHECK")
        .env_remove("LEAKCHECK_REPORT_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the fixture runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("running 1 test"),
        "the fixture `{name}` was not found in this binary:\n{text}"
    );
    FixtureRun {
        success: output.status.success(),
        output: text,
    }
}

/// The line (from 1) of `source` that ends with the comment `// site: {marker}`, and its text.
///
/// Tests name spawn sites by marker instead of by `line!()` arithmetic, so reformatting the test
/// file never breaks its expectations.
pub fn marked_line<'a>(source: &'a str, marker: &str) -> (u32, &'a str) {
    let needle = format!("// site: {marker}");
    let mut found = source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with(&needle));
    let (index, line) = found
        .next()
        .unwrap_or_else(|| panic!("no line ends with `{needle}`"));
    assert!(found.next().is_none(), "two lines end with `{needle}`");
    (index as u32 + 1, line)
}
