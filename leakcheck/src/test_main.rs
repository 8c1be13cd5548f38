//! The global check of a custom test main (SPEC §2, third way): run the tests, then check the
//! whole process.

use std::process::ExitCode;

use crate::check::{enter_test_main, Check};
use crate::config;
use crate::options::Options;

/// How [`verify_test_main_with`] checks the process after the tests ran.
///
/// ```
/// use std::time::Duration;
/// use leakcheck::{MainOptions, Options};
///
/// let options = MainOptions::new()
///     .check(Options::new().timeout(Duration::from_millis(500)).ignore_name("metrics-*"))
///     .check_after_failure(true);
/// # drop(options);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct MainOptions {
    check: Options,
    check_after_failure: bool,
    one_test_at_a_time: Option<bool>,
}

impl MainOptions {
    /// The defaults: the global check uses [`Options::new()`] (made process-wide), runs only
    /// after a successful run, and whether the trials run one at a time is read from the
    /// command line (`--test-threads=1`) and the environment (`RUST_TEST_THREADS`, nextest).
    pub fn new() -> Self {
        Self::default()
    }

    /// The options of the global check: its grace period and what it ignores. It is always
    /// process-wide, whether `options` say so or not.
    pub fn check(mut self, options: Options) -> Self {
        self.check = options;
        self
    }

    /// Checks the process after a failed run too. The exit code stays the tests' own; the report
    /// is printed all the same, since the leak may be what made a test fail.
    pub fn check_after_failure(mut self, yes: bool) -> Self {
        self.check_after_failure = yes;
        self
    }

    /// Declares whether the trials run one at a time (`true`) or in parallel threads (`false`),
    /// when the harness is told so in code rather than with `--test-threads=1`.
    ///
    /// When they run one at a time, each trial's own check also reports the OS threads
    /// leakcheck did not spawn; in parallel, a new OS thread cannot be pinned on one trial, so
    /// the trials' checks leave such threads to the global check (and their reports say so).
    pub fn one_test_at_a_time(mut self, yes: bool) -> Self {
        self.one_test_at_a_time = Some(yes);
        self
    }
}

/// Runs the tests, then checks the whole process for leftovers: the third way to use leakcheck,
/// in a test target with `harness = false`.
///
/// `run_tests` runs the tests with any harness (for example
/// [libtest-mimic](https://docs.rs/libtest-mimic)) and returns its exit code. If they passed,
/// every tracked task of every scope and every OS thread that was not alive before
/// `verify_test_main` was called must have ended within the grace period; if any survives, the
/// report goes to stderr and the exit code becomes a failure. The check honours `LEAKCHECK`
/// (`warn` prints the report and keeps the exit code, `off` skips the check) and the other
/// variables of SPEC §6; a malformed one stops the run before any test runs.
///
/// Give each trial its own scope with [`in_scope`](crate::in_scope) and check it with
/// [`verify_none`](crate::verify_none), so that a trial that leaks fails by itself, with its
/// name on the report. With [libtest-mimic](https://docs.rs/libtest-mimic) (the whole program is
/// `examples/custom_test_main.rs`):
///
/// ```ignore
/// // tests/integration.rs, with `[[test]] name = "integration", harness = false`
/// use std::process::ExitCode;
/// use libtest_mimic::{Arguments, Trial};
///
/// fn main() -> ExitCode {
///     let args = Arguments::from_args();
///     let trials = vec![Trial::test("joins_its_worker", || {
///         leakcheck::in_scope("joins_its_worker", || {
///             let leaks = leakcheck::verify_none();
///             leakcheck::thread::spawn(|| ()).join().unwrap();
///             leaks.verify().map_err(|report| report.to_string().into())
///         })
///     })];
///     leakcheck::verify_test_main(|| libtest_mimic::run(&args, trials).exit_code())
/// }
/// ```
///
/// Any harness will do; a hand-rolled one:
///
/// ```
/// use std::process::ExitCode;
///
/// fn joins_its_worker() {
///     assert_eq!(leakcheck::thread::spawn(|| 2 + 2).join().unwrap(), 4);
/// }
///
/// fn main() -> ExitCode {
///     let tests: [(&str, fn()); 1] = [("joins_its_worker", joins_its_worker)];
///     leakcheck::verify_test_main(|| {
///         let mut failed = 0;
///         for (name, test) in tests {
///             let passed = leakcheck::in_scope(name, || {
///                 let leaks = leakcheck::verify_none();
///                 test();
///                 leaks.verify()
///             });
///             if let Err(report) = passed {
///                 eprintln!("{name} FAILED:\n{report}");
///                 failed += 1;
///             }
///         }
///         if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
///     })
/// }
/// ```
pub fn verify_test_main(run_tests: impl FnOnce() -> ExitCode) -> ExitCode {
    verify_test_main_with(MainOptions::new(), run_tests)
}

/// [`verify_test_main`] with options: the global check's [`Options`], a check after a failed
/// run, and how the trials run.
///
/// ```
/// use std::process::ExitCode;
/// use leakcheck::MainOptions;
///
/// let options = MainOptions::new().check_after_failure(true).one_test_at_a_time(true);
/// let code = leakcheck::verify_test_main_with(options, || {
///     // The harness runs its trials one at a time here.
///     ExitCode::SUCCESS
/// });
/// assert_eq!(code, ExitCode::SUCCESS);
/// ```
pub fn verify_test_main_with(
    options: MainOptions,
    run_tests: impl FnOnce() -> ExitCode,
) -> ExitCode {
    config::get().ensure_valid();
    let _main = enter_test_main(options.one_test_at_a_time);
    // Created before the tests run: the OS threads alive now are not theirs.
    let check = Check::new(options.check.process_wide());
    let code = run_tests();
    let passed = code == ExitCode::SUCCESS;
    if !passed && !options.check_after_failure {
        return code;
    }
    match check.run_blocking() {
        Ok(()) => code,
        Err(report) => {
            eprintln!("\n{report}");
            if passed {
                eprintln!("leakcheck: the tests passed, but they left the tasks above alive");
                ExitCode::FAILURE
            } else {
                code
            }
        }
    }
}
