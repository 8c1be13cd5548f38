//! End to end: the global check of a custom test main (`harness = false`, SPEC §2, third way).
//!
//! This target is its own driver. Run as a test (by `cargo test` or `cargo nextest run`, which
//! lists and runs its trials through libtest-mimic), each trial starts this same executable
//! again with `LEAKCHECK_TEST_MAIN_SCENARIO` set; that child is a custom test main under test: it
//! runs a few trials of its own with libtest-mimic inside [`leakcheck::verify_test_main_with`],
//! each checked in its own scope, and the driver asserts on its exit code and on what it
//! printed. The driver itself runs inside `verify_test_main` too.

use std::process::{Command, ExitCode};
use std::time::Duration;

use leakcheck::{MainOptions, Options};
use libtest_mimic::{Arguments, Failed, Trial};

/// Selects the scenario a child runs.
const SCENARIO: &str = "LEAKCHECK_TEST_MAIN_SCENARIO";

fn main() -> ExitCode {
    match std::env::var(SCENARIO) {
        Ok(scenario) => run_scenario(&scenario),
        Err(_) => {
            let args = Arguments::from_args();
            leakcheck::verify_test_main(|| libtest_mimic::run(&args, driver_trials()).exit_code())
        }
    }
}

// --- the custom test mains under test ---------------------------------------------------------

/// A trial checked in its own scope, as a custom test main should run each of its tests.
fn checked_trial(name: &'static str, body: fn()) -> Trial {
    Trial::test(name, move || {
        leakcheck::in_scope(name, || {
            let leaks =
                leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
            body();
            leaks
                .verify()
                .map_err(|report| Failed::from(report.to_string()))
        })
    })
}

fn joins_its_worker() {
    let worker = leakcheck::thread::spawn(|| 6 * 7);
    assert_eq!(worker.join().unwrap(), 42);
    std::thread::spawn(|| ()).join().unwrap();
}

fn leaks_a_blocked_sender() {
    let (tx, rx) = leakcheck::sync::mpsc::sync_channel::<u32>(0);
    leakcheck::thread::Builder::new()
        .name("stuck-sender".into())
        .spawn(move || tx.send(1))
        .unwrap();
    std::mem::forget(rx);
}

/// Where the plain thread waits forever: it must show in its live stack.
#[inline(never)]
fn wait_forever_untracked(rx: std::sync::mpsc::Receiver<()>) {
    let _ = rx.recv();
}

fn leaks_a_plain_thread() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::mem::forget(tx);
    std::thread::Builder::new()
        .name("plain-leaker".into())
        .spawn(move || wait_forever_untracked(rx))
        .unwrap();
}

#[cfg(feature = "tokio")]
fn forgets_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(async { 1 }).await.unwrap() });
    std::mem::forget(runtime);
}

fn fails_on_purpose() {
    panic!("this trial fails on purpose");
}

/// Runs the custom test main of `scenario` and returns its exit code.
fn run_scenario(scenario: &str) -> ExitCode {
    let mut args = Arguments {
        test_threads: Some(2),
        ..Arguments::default()
    };
    let mut options = MainOptions::new().check(Options::new().timeout(Duration::from_millis(200)));
    let trials = match scenario {
        "leaky" => {
            options = options.check_after_failure(true);
            vec![
                checked_trial("joins_its_worker", joins_its_worker),
                checked_trial("leaks_a_blocked_sender", leaks_a_blocked_sender),
                checked_trial("leaks_a_plain_thread", leaks_a_plain_thread),
            ]
        }
        "clean" => vec![
            checked_trial("joins_its_worker", joins_its_worker),
            checked_trial("joins_its_worker_too", joins_its_worker),
        ],
        "untracked_only" => vec![
            checked_trial("joins_its_worker", joins_its_worker),
            checked_trial("leaks_a_plain_thread", leaks_a_plain_thread),
        ],
        #[cfg(feature = "tokio")]
        "tokio" => vec![checked_trial(
            "forgets_a_tokio_runtime",
            forgets_a_tokio_runtime,
        )],
        "tracked_only" => vec![
            checked_trial("joins_its_worker", joins_its_worker),
            checked_trial("leaks_a_blocked_sender", leaks_a_blocked_sender),
        ],
        "one_at_a_time" => {
            args.test_threads = Some(1);
            options = options.one_test_at_a_time(true);
            vec![
                checked_trial("joins_its_worker", joins_its_worker),
                checked_trial("leaks_a_plain_thread", leaks_a_plain_thread),
            ]
        }
        "failed_run" => vec![
            checked_trial("fails_on_purpose", fails_on_purpose),
            checked_trial("leaks_a_plain_thread", leaks_a_plain_thread),
        ],
        other => panic!("unknown scenario {other:?}"),
    };
    leakcheck::verify_test_main_with(options, || libtest_mimic::run(&args, trials).exit_code())
}

// --- the driver -------------------------------------------------------------------------------

/// What a child printed, and how it exited.
struct Child {
    code: Option<i32>,
    output: String,
}

impl Child {
    fn expect_code(&self, code: i32) -> Result<&Self, Failed> {
        if self.code == Some(code) {
            Ok(self)
        } else {
            Err(format!(
                "expected exit code {code}, got {:?}; output:\n{}",
                self.code, self.output
            )
            .into())
        }
    }

    fn expect(&self, needle: &str) -> Result<&Self, Failed> {
        if self.output.contains(needle) {
            Ok(self)
        } else {
            Err(format!("expected {needle:?} in the output:\n{}", self.output).into())
        }
    }

    /// libtest-mimic's line for trial `name`: `test name   ... ok` (padded to align).
    fn expect_outcome(&self, name: &str, outcome: &str) -> Result<&Self, Failed> {
        let found = self.output.lines().any(|line| {
            line.strip_prefix("test ")
                .and_then(|rest| rest.strip_prefix(name))
                .and_then(|rest| rest.trim_start().strip_prefix("..."))
                .is_some_and(|rest| rest.trim() == outcome)
        });
        if found {
            Ok(self)
        } else {
            Err(format!(
                "expected trial `{name}` to be {outcome}; output:\n{}",
                self.output
            )
            .into())
        }
    }

    fn expect_no(&self, needle: &str) -> Result<&Self, Failed> {
        if self.output.contains(needle) {
            Err(format!("did not expect {needle:?} in the output:\n{}", self.output).into())
        } else {
            Ok(self)
        }
    }
}

/// Runs this executable as the custom test main of `scenario`, with tests in parallel unless
/// the scenario says otherwise (no nextest or libtest variables leak in from the driver).
fn child(scenario: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut command = Command::new(exe);
    command
        .env(SCENARIO, scenario)
        .env("LEAKCHECK_TIMEOUT", "200ms")
        .env_remove("LEAKCHECK")
        .env_remove("LEAKCHECK_REPORT_DIR")
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .env_remove("RUST_TEST_THREADS")
        // These scenarios are about the census of threads leakcheck did not see created
        // (tests/plain_threads.rs covers tracking every thread from its creation).
        .env("LEAKCHECK_THREADS", "census");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the child test main runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Child {
        code: output.status.code(),
        output: text,
    }
}

fn driver_trials() -> Vec<Trial> {
    let mut trials = vec![
        Trial::test("a_clean_run_exits_zero_and_prints_no_report", || {
            child("clean", &[])
                .expect_code(0)?
                .expect("2 passed")?
                .expect_no("leakcheck:")?;
            Ok(())
        }),
        Trial::test(
            "a_leaky_trial_fails_by_itself_and_the_global_check_sees_it_too",
            || {
                child("tracked_only", &[])
                    .expect_code(101)?
                    .expect_outcome("joins_its_worker", "ok")?
                    .expect_outcome("leaks_a_blocked_sender", "FAILED")?
                    // The trial's own check: the tracked sender, by name and scope.
                    .expect("leakcheck: 1 unexpected task in scope `leaks_a_blocked_sender`")?
                    .expect("\"stuck-sender\"")?
                    // Not asked to check the process after a failed run.
                    .expect_no("in the process")?;
                Ok(())
            },
        ),
        Trial::test(
            "after_a_failed_run_the_global_check_runs_only_when_asked",
            || {
                child("failed_run", &[])
                    .expect_code(101)?
                    .expect("this trial fails on purpose")?
                    .expect_no("in the process")?;
                Ok(())
            },
        ),
        Trial::test("a_malformed_variable_stops_the_run_before_any_test", || {
            child("clean", &[("LEAKCHECK_TIMEOUT", "soon")])
                .expect_code(101)?
                .expect("LEAKCHECK_TIMEOUT")?
                .expect_no("running 2 tests")?;
            Ok(())
        }),
    ];
    // Untracked threads and live stacks: Linux.
    if cfg!(target_os = "linux") {
        trials.extend(linux_trials());
    }
    #[cfg(feature = "tokio")]
    if cfg!(target_os = "linux") {
        trials.push(Trial::test(
            "a_forgotten_tokio_runtime_is_caught_by_the_global_check",
            || {
                child("tokio", &[])
                    .expect_code(1)?
                    .expect("leakcheck: 2 unexpected tasks in the process")?
                    .expect("untracked thread")?
                    .expect("\"tokio-r")?;
                Ok(())
            },
        ));
    }
    trials
}

fn linux_trials() -> Vec<Trial> {
    vec![
        Trial::test(
            "with_check_after_failure_the_global_check_reports_every_survivor",
            || {
                child("leaky", &[])
                    .expect_code(101)?
                    .expect_outcome("joins_its_worker", "ok")?
                    .expect_outcome("leaks_a_blocked_sender", "FAILED")?
                    .expect("leakcheck: 1 unexpected task in scope `leaks_a_blocked_sender`")?
                    // Trials run in parallel: the plain thread's trial cannot be blamed for it...
                    .expect_outcome("leaks_a_plain_thread", "ok")?
                    // ...and the global check reports both survivors.
                    .expect("leakcheck: 2 unexpected tasks in the process")?
                    .expect("1 × thread \"stuck-sender\", blocked in `chan send`")?
                    .expect("(by scope `leaks_a_blocked_sender`")?
                    .expect("1 × untracked thread \"plain-leaker\", alive (not spawned through leakcheck)")?
                    .expect("\"plain-leaker\"")?
                    .expect("test_main::wait_forever_untracked")?;
                Ok(())
            },
        ),
        Trial::test(
            "a_leak_only_the_global_check_sees_turns_a_passing_run_into_a_failure",
            || {
                child("untracked_only", &[])
                    .expect_code(1)?
                    .expect("test result: ok. 2 passed")?
                    .expect("leakcheck: 1 unexpected task in the process")?
                    .expect("\"plain-leaker\"")?
                    .expect("kernel       S (sleeping)")?
                    .expect("stack (live, from the thread):")?
                    .expect("leakcheck: the tests passed, but they left the tasks above alive")?;
                Ok(())
            },
        ),
        Trial::test(
            "when_trials_run_one_at_a_time_each_trial_reports_its_plain_threads",
            || {
                child("one_at_a_time", &[])
                    .expect_code(101)?
                    .expect_outcome("leaks_a_plain_thread", "FAILED")?
                    .expect("leakcheck: 1 unexpected task in scope `leaks_a_plain_thread`")?
                    .expect("\"plain-leaker\"")?
                    .expect_outcome("joins_its_worker", "ok")?
                    // Not asked to check after a failed run.
                    .expect_no("in the process")?;
                Ok(())
            },
        ),
        Trial::test(
            "leakcheck_warn_prints_the_global_report_and_keeps_the_exit_code",
            || {
                child("untracked_only", &[("LEAKCHECK", "warn")])
                    .expect_code(0)?
                    .expect("leakcheck: 1 unexpected task in the process")?
                    .expect("(LEAKCHECK=warn: not failing)")?;
                Ok(())
            },
        ),
        Trial::test("leakcheck_off_skips_the_global_check", || {
            child("untracked_only", &[("LEAKCHECK", "off")])
                .expect_code(0)?
                .expect_no("leakcheck:")?;
            Ok(())
        }),
    ]
}
