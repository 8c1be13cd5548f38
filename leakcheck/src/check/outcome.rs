//! How a failed check ends a test: where the failure points, and what happens when the test's
//! body panicked too.
//!
//! A failure must point at the test, not into leakcheck: `#[leak_test]`'s entry points are
//! `#[track_caller]` and panic in their own body, so the panic hook reports the test's attribute;
//! a guard's check runs in `Drop`, where no caller is known, so it reports the site where the
//! guard was created (recorded by `#[track_caller]` on `verify_none`), in the hook's own format,
//! and unwinds with the report as the payload.
//!
//! A leak in a `#[should_panic]` test fails it (goleak's answer: a leak is a failure whatever
//! else the test expects). The body's expected panic is swallowed and the test returns normally,
//! which is the one outcome libtest counts as a failure for every `#[should_panic]`, with or
//! without `expected = "..."`; the report says why on stderr.

use std::any::Any;
use std::panic::Location;

use crate::report::LeakReport;

/// Ends the test whose guard, created at `created_at`, found leaks: a panic (an unwind) carrying
/// the report, unless the thread is already panicking: then the report goes to stderr, so that
/// nothing panics twice and no report is lost.
pub(crate) fn fail_guard(report: LeakReport, created_at: &'static Location<'static>) {
    if std::thread::panicking() {
        eprintln!("{report}");
        return;
    }
    let message = report.to_string();
    // What the default panic hook would print, with the guard's site as the panic's location.
    let thread = std::thread::current();
    eprintln!(
        "\nthread '{}' panicked at {created_at}:\n{message}",
        thread.name().unwrap_or("<unnamed>")
    );
    std::panic::resume_unwind(Box::new(message));
}

/// The result of a `#[leak_test]` function, from its body's `output` and the check's `verdict`.
///
/// `#[track_caller]`: a leak panics here, and the panic hook names the test's attribute (the
/// caller of the `__private` entry point) as its location.
#[track_caller]
pub(crate) fn finish_test<R: 'static>(
    output: std::thread::Result<R>,
    verdict: Result<(), LeakReport>,
    expects_panic: bool,
) -> R {
    match (output, verdict) {
        (Ok(output), Ok(())) => output,
        (Ok(output), Err(report)) if expects_panic => {
            // Panicking with the report would pass for the panic the test expects: the leak and
            // the missing panic would both be lost. Returning fails the test as not panicking.
            eprintln!(
                "{report}\nleakcheck: the test leaked, and it did not panic as `#[should_panic]` \
                 expects: libtest reports that it did not panic."
            );
            output
        }
        (Ok(_), Err(report)) => panic!("{report}"),
        (Err(panic), Ok(())) => std::panic::resume_unwind(panic),
        (Err(panic), Err(report)) if expects_panic => match unit() {
            Some(unit) => {
                eprintln!(
                    "{report}\nleakcheck: the test panicked as `#[should_panic]` expects, but it \
                     also leaked: it fails. leakcheck swallowed the expected panic, so libtest \
                     reports that the test did not panic."
                );
                unit
            }
            // libtest allows `#[should_panic]` only on tests that return `()`.
            None => std::panic::resume_unwind(panic),
        },
        (Err(panic), Err(report)) => {
            // The test fails already: the report goes with the body's own panic.
            eprintln!("{report}");
            std::panic::resume_unwind(panic)
        }
    }
}

/// What a `#[leak_test]` does when its check cannot run (a malformed setting, named in `error`):
/// it fails. A `#[should_panic]` test must not take that failure for its expected panic, so its
/// body is not run and it returns: libtest then reports that it did not panic.
#[track_caller]
pub(crate) fn unusable_check<R: 'static>(error: String, expects_panic: bool) -> R {
    if expects_panic {
        if let Some(unit) = unit() {
            eprintln!(
                "leakcheck: {error}\nleakcheck: the check cannot run, so this `#[should_panic]` \
                 test fails without running its body: libtest reports that it did not panic."
            );
            return unit;
        }
    }
    panic!("leakcheck: {error}")
}

/// `()` as an `R`, when `R` is `()`.
fn unit<R: 'static>() -> Option<R> {
    let unit: Box<dyn Any> = Box::new(());
    unit.downcast::<R>().ok().map(|unit| *unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_only_given_as_unit() {
        assert_eq!(unit::<()>(), Some(()));
        assert_eq!(unit::<Result<(), String>>(), None);
    }
}
