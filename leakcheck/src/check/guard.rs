//! The public face of a check: the guard that checks when dropped, and named scopes.

use std::panic::Location;

use std::future::Future;

use super::outcome;
use super::timer;
use super::wait::SETTLE;
use super::wait::{Check, ReportExtras};
use crate::context;
use crate::options::Options;
use crate::registry::{open_scope, ScopeLabel};
use crate::report::LeakReport;

/// Checks the current scope for leaked tasks when dropped; see [`verify_none`].
///
/// Dropping a guard whose scope has unexpected survivors panics with the report, unless the
/// thread is already panicking: then the report goes to stderr and nothing panics twice. The
/// panic's location is the line that created the guard, in the test.
///
/// Dropping blocks the thread for up to the grace period. In an `async` test, await
/// [`verify_async`](Self::verify_async) instead, so that the executor can run the survivors
/// meanwhile.
#[must_use = "the check runs when the guard is dropped: bind it with `let _leaks = ...`"]
pub struct VerifyGuard {
    /// The check to run, or why it cannot run; taken when it runs.
    check: Option<Result<Check, LeakReport>>,
    /// Where the guard was created: a failure in `Drop` points there, at the test.
    created_at: &'static Location<'static>,
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
#[track_caller]
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
#[track_caller]
pub fn verify_none_with(options: Options) -> VerifyGuard {
    let check = Check::try_new(options)
        .map_err(|error| LeakReport::unusable(context::current_scope().label.to_string(), error));
    VerifyGuard {
        check: Some(check),
        created_at: Location::caller(),
    }
}

impl VerifyGuard {
    /// Checks now and returns the report instead of panicking.
    ///
    /// With `LEAKCHECK=off` this returns `Ok(())` without looking; with `LEAKCHECK=warn` it prints
    /// any report to stderr and returns `Ok(())`. A check that cannot run (a malformed
    /// `LEAKCHECK*` variable or `leakcheck.toml`) returns a report that says why
    /// ([`LeakReport::check_error`]); it never panics.
    pub fn verify(mut self) -> Result<(), LeakReport> {
        match self.check.take() {
            Some(Ok(check)) => check.run_blocking(),
            Some(Err(unusable)) => Err(unusable),
            None => Ok(()),
        }
    }

    /// Checks now, awaiting the survivors' exits instead of blocking the thread, and returns the
    /// report instead of panicking.
    ///
    /// Use it in async tests: while it waits, the executor keeps running the test's other tasks,
    /// so a survivor that needs this very thread to finish (every task of a current-thread
    /// runtime) can still end within the grace period. Dropping a guard, or [`verify`](Self::verify),
    /// blocks the thread for the grace period: on a current-thread runtime the survivors cannot run
    /// meanwhile. It works on any executor: the grace period is timed by leakcheck itself, not by a
    /// runtime. `#[leak_test(tokio)]` checks this way inside the test's runtime without being asked.
    ///
    /// A runtime with worker threads that the test itself builds (`#[tokio::test(flavor =
    /// "multi_thread")]` builds one on the test's thread) is created in the test's scope: while it
    /// runs, its parked workers are survivors of the check. Use `#[leak_test(tokio)]`, which
    /// builds its runtime outside the test's scope, or
    /// [`Options::ignore_name`]`("tokio-rt-worker")`.
    ///
    /// Dropping the future before it completes abandons the check.
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// # rt.block_on(async {
    /// let guard = leakcheck::verify_none();
    /// leakcheck::tokio::spawn(async {
    ///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    /// });
    /// // The task needs this thread to finish: awaiting lets it.
    /// guard.verify_async().await.unwrap();
    /// # });
    /// # }
    /// ```
    pub async fn verify_async(mut self) -> Result<(), LeakReport> {
        let check = match self.check.take() {
            Some(Ok(check)) => check,
            Some(Err(unusable)) => return Err(unusable),
            None => return Ok(()),
        };
        let grace = check.grace();
        // One more look once plain threads have had their settle time, as the blocking wait
        // takes (idle pool threads and a one-time initialiser's threads are excused only then);
        // after that only exits and the deadline wake the wait.
        let mut settled = Some(Box::pin(timer::sleep(SETTLE)));
        let recheck = move |cx: &mut std::task::Context<'_>| {
            let ready = settled
                .as_mut()
                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
            if ready {
                settled = None;
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        };
        check
            .run_async(timer::sleep(grace), |_| ReportExtras::default(), recheck)
            .await
    }
}

impl Drop for VerifyGuard {
    fn drop(&mut self) {
        let check = match self.check.take() {
            Some(Ok(check)) => check,
            Some(Err(unusable)) => return outcome::fail_guard(unusable, self.created_at),
            None => return,
        };
        if std::thread::panicking() {
            // Never panic while unwinding (that aborts the process); but never lose the report,
            // nor the reason the check itself could not run.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check.run_blocking())) {
                Ok(Ok(())) => {}
                Ok(Err(report)) => outcome::fail_guard(report, self.created_at),
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
            outcome::fail_guard(report, self.created_at);
        }
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
