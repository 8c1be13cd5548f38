//! The public face of a check: the guard that checks when dropped, and named scopes.

use super::wait::Check;
use crate::context;
use crate::options::Options;
use crate::registry::{open_scope, ScopeLabel};
use crate::report::LeakReport;

/// Checks the current scope for leaked tasks when dropped; see [`verify_none`].
///
/// Dropping a guard whose scope has unexpected survivors panics with the report, unless the
/// thread is already panicking: then the report goes to stderr and nothing panics twice.
#[must_use = "the check runs when the guard is dropped: bind it with `let _leaks = ...`"]
pub struct VerifyGuard {
    check: Option<Check>,
}

/// Starts a leak check of the current scope (the current test) with default [`Options`].
///
/// The check runs when the returned guard is dropped, normally at the end of the test. It waits up
/// to the grace period for the scope's tasks to finish, and fails the test with a report of those
/// that did not.
///
/// ```should_panic
/// use leakcheck::sync::mpsc;
///
/// let (tx, _rx) = mpsc::sync_channel::<u32>(0);
/// // Declared after the channel, so dropped (and checked) before the receiver goes away.
/// let _leaks = leakcheck::verify_none();
/// // Nobody ever receives: the sender blocks forever, and the guard panics with the report.
/// leakcheck::thread::spawn(move || tx.send(1));
/// ```
pub fn verify_none() -> VerifyGuard {
    verify_none_with(Options::default())
}

/// Starts a leak check of the current scope with `options`; see [`verify_none`].
///
/// ```
/// use std::time::Duration;
/// use leakcheck::Options;
///
/// let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(200)));
/// let worker = leakcheck::thread::spawn(|| std::thread::sleep(Duration::from_millis(20)));
/// // Not joined, but it finishes within the grace period: the check passes.
/// # drop(worker);
/// ```
pub fn verify_none_with(options: Options) -> VerifyGuard {
    VerifyGuard {
        check: Some(Check::new(options)),
    }
}

impl VerifyGuard {
    /// Checks now and returns the report instead of panicking.
    ///
    /// With `LEAKCHECK=off` this returns `Ok(())` without looking; with `LEAKCHECK=warn` it prints
    /// any report to stderr and returns `Ok(())`.
    pub fn verify(mut self) -> Result<(), LeakReport> {
        match self.check.take() {
            Some(check) => check.run_blocking(),
            None => Ok(()),
        }
    }
}

impl Drop for VerifyGuard {
    fn drop(&mut self) {
        let Some(check) = self.check.take() else {
            return;
        };
        if std::thread::panicking() {
            // Never panic while unwinding (that aborts the process); but never lose the report,
            // nor the reason the check itself could not run.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check.run_blocking())) {
                Ok(Ok(())) => {}
                Ok(Err(report)) => fail_test(report, true),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    eprintln!("leakcheck: the check could not run: {message}");
                }
            }
            return;
        }
        if let Err(report) = check.run_blocking() {
            fail_test(report, false);
        }
    }
}

/// How a failed check ends a test: a panic carrying the report, unless the test is already
/// failing (unwinding, or its body panicked). Then the report goes to stderr instead, so that
/// nothing panics twice and no report is lost.
pub(crate) fn fail_test(report: LeakReport, already_failing: bool) {
    if already_failing {
        eprintln!("{report}");
    } else {
        panic!("{report}");
    }
}

impl std::fmt::Debug for VerifyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyGuard").finish_non_exhaustive()
    }
}

/// Runs `f` in a new scope named `name`: the tasks spawned inside, and their descendants, belong
/// to it, and a [`verify_none`] inside checks only them.
///
/// Tests get a scope of their own without this; it is for harnesses that run several tests on
/// one thread (a custom test main), and for checking one part of a test on its own.
///
/// ```
/// leakcheck::in_scope("warm-up", || {
///     let guard = leakcheck::verify_none();
///     leakcheck::thread::spawn(|| ()).join().unwrap();
///     guard.verify().unwrap();
/// });
/// ```
pub fn in_scope<R>(name: &str, f: impl FnOnce() -> R) -> R {
    let _scope = context::enter(open_scope(ScopeLabel::Named(name.to_owned())), None);
    f()
}
