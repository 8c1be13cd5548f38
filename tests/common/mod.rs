//! Runs a fixture test of the current test binary in a child process.
//!
//! A test that leaks must *fail*; to assert that, and what it printed, the end-to-end tests re-run
//! their own binary with libtest's arguments to select one `#[ignore]`d fixture test. This works
//! the same under `cargo test` and `cargo nextest run`.

#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

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

/// Runs the `#[ignore]`d test `name` of this test binary, with extra environment variables, one
/// test at a time.
pub fn run_fixture(name: &str, env: &[(&str, &str)]) -> FixtureRun {
    Fixture::new(name).envs(env).run()
}

/// A fixture run to configure: environment, and how many test threads the child's harness uses.
pub struct Fixture<'a> {
    name: &'a str,
    env: Vec<(&'a str, &'a str)>,
    test_threads: usize,
}

impl<'a> Fixture<'a> {
    pub fn new(name: &'a str) -> Self {
        Fixture {
            name,
            env: Vec::new(),
            test_threads: 1,
        }
    }

    pub fn envs(mut self, env: &[(&'a str, &'a str)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// Runs the child with `--test-threads=N`: with more than one, per-test checks consider
    /// tests parallel.
    pub fn test_threads(mut self, threads: usize) -> Self {
        self.test_threads = threads;
        self
    }

    pub fn run(self) -> FixtureRun {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let mut command = Command::new(exe);
        let threads = format!("--test-threads={}", self.test_threads);
        command.args([
            self.name,
            "--exact",
            "--ignored",
            "--nocapture",
            threads.as_str(),
        ]);
        // A fixture's leaks are reported quickly, never swallowed by the parent's mode, and the
        // child runs tests exactly as `--test-threads` says, whatever runner started the parent.
        command.env("LEAKCHECK_TIMEOUT", "100ms");
        for inherited in [
            "LEAKCHECK",
            "LEAKCHECK_REPORT_DIR",
            "NEXTEST",
            "NEXTEST_EXECUTION_MODE",
            "NEXTEST_RUN_ID",
            "RUST_TEST_THREADS",
        ] {
            command.env_remove(inherited);
        }
        command.envs(self.env.iter().copied());
        let output = command.output().expect("the fixture runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            text.contains("running 1 test"),
            "the fixture `{}` was not found in this binary:\n{text}",
            self.name
        );
        FixtureRun {
            success: output.status.success(),
            output: text,
        }
    }
}

/// Evaluates a call and returns it with its site, `file:line:column`, as `#[track_caller]`
/// reports it: the column where the call starts, right after `spawned_here!(`.
#[allow(unused_macros)]
macro_rules! spawned_here {
    ($call:expr) => {{
        let site = format!(
            "{}:{}:{}",
            file!(),
            line!(),
            column!() + "spawned_here!(".len() as u32
        );
        ($call, site)
    }};
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

/// The smallest executor: polls one future on this thread and parks between wakes. No timer,
/// no runtime, nothing from tokio or `futures`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark {
        thread: std::thread::Thread,
        woken: AtomicBool,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !unpark.woken.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}
