//! Whether tests run one at a time in this process, as the test runner or a test main says: only
//! then may a per-test check blame its test for new OS threads.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

/// Whether a test main declared how its trials run: unknown, one at a time, in parallel.
const UNDECLARED: u8 = 0;
const SERIAL: u8 = 1;
const PARALLEL: u8 = 2;
static DECLARED: AtomicU8 = AtomicU8::new(UNDECLARED);
/// Whether `verify_test_main` is running the tests (for the wording of notes).
pub(super) static IN_TEST_MAIN: AtomicBool = AtomicBool::new(false);

/// Whether tests run one at a time in this process, so that a per-test check may report
/// untracked threads. Read on every check: two atomic loads once the environment was read.
pub(crate) fn one_test_at_a_time() -> bool {
    match DECLARED.load(Ordering::Relaxed) {
        SERIAL => true,
        PARALLEL => false,
        _ => {
            static DETECTED: OnceLock<bool> = OnceLock::new();
            *DETECTED.get_or_init(|| {
                detect_one_at_a_time(std::env::args().skip(1), |name| std::env::var(name).ok())
            })
        }
    }
}

/// Reads the runner's configuration: nextest's process-per-test mode, then libtest's
/// `--test-threads` argument, which takes precedence over `RUST_TEST_THREADS`.
fn detect_one_at_a_time(
    args: impl Iterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> bool {
    if let Some(mode) = env("NEXTEST_EXECUTION_MODE") {
        return mode == "process-per-test";
    }
    // nextest before `NEXTEST_EXECUTION_MODE` existed always ran a process per test.
    if env("NEXTEST").as_deref() == Some("1") {
        return true;
    }
    let mut args = args.peekable();
    let mut threads_arg = None;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if let Some(value) = arg.strip_prefix("--test-threads=") {
            threads_arg = Some(value.to_owned());
        } else if arg == "--test-threads" {
            threads_arg = args.next();
        }
    }
    let threads = threads_arg.or_else(|| env("RUST_TEST_THREADS"));
    threads.is_some_and(|t| t.trim().parse::<usize>() == Ok(1))
}

/// Marks the process as running a test main until dropped; see [`enter_test_main`].
pub(crate) struct TestMainGuard {
    previous_declared: u8,
    previous_in_main: bool,
}

/// Called by `verify_test_main` around the tests it runs: `one_at_a_time` is what its options
/// declare (`None`: detect it as usual).
pub(crate) fn enter_test_main(one_at_a_time: Option<bool>) -> TestMainGuard {
    let declared = match one_at_a_time {
        Some(true) => SERIAL,
        Some(false) => PARALLEL,
        None => UNDECLARED,
    };
    TestMainGuard {
        previous_declared: DECLARED.swap(declared, Ordering::Relaxed),
        previous_in_main: IN_TEST_MAIN.swap(true, Ordering::Relaxed),
    }
}

impl Drop for TestMainGuard {
    fn drop(&mut self) {
        DECLARED.store(self.previous_declared, Ordering::Relaxed);
        IN_TEST_MAIN.store(self.previous_in_main, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn detect(args: &[&str], env: &[(&str, &str)]) -> bool {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        detect_one_at_a_time(args.iter().map(|a| a.to_string()), |name| {
            env.get(name).cloned()
        })
    }

    #[test]
    fn one_test_at_a_time_is_read_from_the_runner() {
        assert!(!detect(&[], &[]));
        assert!(detect(
            &[],
            &[
                ("NEXTEST", "1"),
                ("NEXTEST_EXECUTION_MODE", "process-per-test")
            ]
        ));
        assert!(!detect(
            &[],
            &[
                ("NEXTEST", "1"),
                ("NEXTEST_EXECUTION_MODE", "some-future-mode")
            ]
        ));
        assert!(detect(&[], &[("NEXTEST", "1")]));
        assert!(detect(&["--test-threads=1"], &[]));
        assert!(detect(&["--test-threads", "1", "--nocapture"], &[]));
        assert!(!detect(&["--test-threads=4"], &[]));
        assert!(detect(&[], &[("RUST_TEST_THREADS", "1")]));
        assert!(!detect(
            &["--test-threads=2"],
            &[("RUST_TEST_THREADS", "1")]
        ));
        assert!(!detect(&["--", "--test-threads=1"], &[]));
    }
}
