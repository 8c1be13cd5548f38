//! Threads that belong to the process, not to a test: those started by a one-time initialiser.
//!
//! A lazily started process-wide pool (`static POOL: LazyLock<ThreadPool>`, a `OnceLock`,
//! `once_cell::sync::Lazy`, `lazy_static!`, rayon's global pool) starts its threads in whichever
//! test touches it first, and keeps them for the life of the process, by design. The creation
//! stack of such a thread passes through the initialiser, which shows as a frame of the `Once`
//! machinery: std's non-generic `Once::call` is never inlined away, and neither are once_cell's
//! `initialize_or_wait` and parking_lot's `call_once_slow`.
//!
//! Only an initialiser of a `static` makes a thread the process's: a test's own `LazyLock` is
//! dropped with the test, and what it started is the test's. Frame names show the difference
//! for a lazy value with a closure: the closure of `static POOL: LazyLock<_> = LazyLock::new(||
//! ..)` is named after the static (`app::POOL::{{closure}}`, also inside a function), a local
//! one after its function (`app::tests::t::{{closure}}`), and lazy_static's initialiser is
//! `<app::POOL as Deref>::deref::__static_ref_initialize`. A `OnceLock`/`OnceCell::get_or_init`
//! or `Once::call_once` closure is named after the function that calls it, wherever the cell
//! lives, so there a static cannot be told from a local: such an initialiser is taken for a
//! static's (the usual case, and blaming a process-wide pool on its first user fails a clean
//! test), and a test-local `OnceLock` that starts a thread is missed. A dependency's own
//! initialiser (rayon's global registry) is taken for a static's too.

use super::{is_library_frame, normalise};
use crate::report::Frame;

/// Function-name prefixes of the one-time initialisers' machinery.
const INITIALISERS: &[&str] = &[
    "std::sys::sync::once::",
    "std::sync::once::Once::call_once",
    "std::sync::once_lock::OnceLock::initialize",
    "std::sync::once_lock::OnceLock::get_or_init",
    "std::sync::once_lock::OnceLock::get_or_try_init",
    "std::sync::lazy_lock::LazyLock::force",
    "std::sync::poison::once::Once::call_once",
    "once_cell::imp::",
    "once_cell::sync::",
    "once_cell::race::",
    "lazy_static::lazy::Lazy::get",
    "parking_lot::once::Once::call_once",
];

/// Where a one-time initialiser started a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StartedByInitialiser {
    /// The index of the frame that best says which initialiser: the user's code that runs
    /// inside it (the `LazyLock`'s closure), or else the user's code that first touched it (the
    /// caller of `rayon::join`); `None` if the stack shows no user frame at all.
    pub(crate) site: Option<usize>,
}

/// Whether the creation stack `frames` (innermost first) passes through a one-time initialiser.
pub(crate) fn started_by_initialiser(frames: &[Frame]) -> Option<StartedByInitialiser> {
    let initialiser = frames.iter().position(|frame| {
        let name = normalise(frame.function());
        INITIALISERS.iter().any(|prefix| name.starts_with(prefix))
    })?;
    let is_user = |frame: &Frame| !is_library_frame(frame) && !is_initialiser(frame);
    let inside = frames[..initialiser].iter().position(is_user);
    if let Some(closure) = inside.map(|at| &frames[at]) {
        let lazy = frames[initialiser..].iter().any(is_lazy_value);
        if lazy && closure.function().contains("{{closure}}") && !names_a_static(closure) {
            // A local lazy value: the test's own.
            return None;
        }
    }
    let outside = || {
        frames[initialiser..]
            .iter()
            .position(is_user)
            .map(|at| at + initialiser)
    };
    Some(StartedByInitialiser {
        site: inside.or_else(outside),
    })
}

/// Lazy values, whose initialiser is a closure given where the value is declared.
const LAZY_VALUES: &[&str] = &[
    "std::sync::lazy_lock::LazyLock::force",
    "std::cell::lazy::LazyCell::force",
    "once_cell::sync::Lazy::force",
    "once_cell::unsync::Lazy::force",
];

fn is_lazy_value(frame: &Frame) -> bool {
    let name = normalise(frame.function());
    LAZY_VALUES.iter().any(|prefix| name.starts_with(prefix))
}

/// Whether `frame`'s function is inside a static's initialiser: a path segment is a static's
/// name (`POOL`, by Rust's naming convention for statics), or lazy_static's initialiser.
fn names_a_static(frame: &Frame) -> bool {
    normalise(frame.function()).split("::").any(|segment| {
        segment == "__static_ref_initialize"
            || segment.len() >= 2
                && segment.bytes().any(|b| b.is_ascii_uppercase())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn is_initialiser(frame: &Frame) -> bool {
    let name = normalise(frame.function());
    INITIALISERS.iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dep_frame, frame, std_frame};
    use super::*;

    fn spawn_frames() -> Vec<Frame> {
        vec![
            frame("pthread_create", "leakcheck/src/os/linux/pthread.rs"),
            std_frame("<std[e2]::sys::thread::unix::Thread>::new"),
            std_frame("std::thread::builder::Builder::spawn::hbe342f236205a78e"),
            dep_frame("threadpool::spawn_in_pool::hdce83ea53c1670ef"),
            dep_frame("threadpool::ThreadPool::new::hb1f1241d62d0cfea"),
        ]
    }

    #[test]
    fn a_lazy_lock_points_at_its_initialiser() {
        let mut frames = spawn_frames();
        frames.extend([
            frame("app::POOL::{{closure}}::h151727e2c0ac95be", "src/pool.rs"),
            std_frame("core::ops::function::FnOnce::call_once::h1638e31bc331e896"),
            std_frame("std::sync::lazy_lock::LazyLock<T,F>::force::{{closure}}::hfc3aeb3d68feb22a"),
            std_frame("std::sync::once::Once::call_once_force::{{closure}}::hcc2e7078f709f5fc"),
            std_frame("<std[e2]::sys::sync::once::futex::Once>::call"),
            std_frame("std::sync::lazy_lock::LazyLock<T,F>::force::hb8dcd772af40a156"),
            frame("app::tests::first_user::h0c3d056ae937c1a4", "src/lib.rs"),
        ]);
        let found = started_by_initialiser(&frames).unwrap();
        assert_eq!(
            frames[found.site.unwrap()].function(),
            "app::POOL::{{closure}}::h151727e2c0ac95be"
        );
    }

    /// A `LazyLock` whose closure `closure` spawns a thread, forced by a test.
    fn lazy_lock_frames(closure: &str) -> Vec<Frame> {
        let mut frames = spawn_frames();
        frames.extend([
            frame(closure, "src/pool.rs"),
            std_frame("core::ops::function::FnOnce::call_once::h1638e31bc331e896"),
            std_frame("std::sync::lazy_lock::LazyLock<T,F>::force::{{closure}}::hfc3aeb3d68feb22a"),
            std_frame("<std[e2]::sys::sync::once::futex::Once>::call"),
            std_frame("std::sync::lazy_lock::LazyLock<T,F>::force::hb8dcd772af40a156"),
            frame("app::tests::first_user::h0c3d056ae937c1a4", "src/lib.rs"),
        ]);
        frames
    }

    #[test]
    fn a_static_lazy_lock_in_a_function_is_the_processs() {
        let frames = lazy_lock_frames("app::tests::t::POOL::{{closure}}::h151727e2c0ac95be");
        assert_eq!(started_by_initialiser(&frames).unwrap().site, Some(5));
    }

    #[test]
    fn a_local_lazy_lock_is_the_tests_own() {
        let frames = lazy_lock_frames("app::tests::t::{{closure}}::h151727e2c0ac95be");
        assert_eq!(started_by_initialiser(&frames), None);
    }

    #[test]
    fn a_lazy_static_is_the_processs() {
        let mut frames = spawn_frames();
        frames.extend([
            frame(
                "<app::POOL as core::ops::deref::Deref>::deref::__static_ref_initialize::h1",
                "src/pool.rs",
            ),
            std_frame("std::sync::once::Once::call_once::{{closure}}::hcc2e7078f709f5fc"),
            std_frame("<std[e2]::sys::sync::once::futex::Once>::call"),
            dep_frame("lazy_static::lazy::Lazy<T>::get::h7ad6dfd519ef3c2f"),
        ]);
        assert!(started_by_initialiser(&frames).is_some());
    }

    #[test]
    fn rayons_global_pool_points_at_the_first_user() {
        let frames = vec![
            std_frame("std::thread::builder::Builder::spawn::ha71316b852b4fe55"),
            dep_frame("rayon_core::registry::Registry::new::h3c5df9c1bd9a7c49"),
            dep_frame("rayon_core::registry::set_global_registry::{{closure}}::ha49cdf3a53f0555b"),
            std_frame("std::sync::once::Once::call_once::{{closure}}::he37f5f91fe9e0e60"),
            std_frame("<std[e2]::sys::sync::once::futex::Once>::call"),
            std_frame("std::sync::once::Once::call_once::hf7c46af7423d5d16"),
            dep_frame("rayon_core::registry::global_registry::ha84158102d563e2c"),
            dep_frame("rayon_core::join::join::hf8ce51ba221a3a34"),
            frame("app::sum::h0c3d056ae937c1a4", "src/lib.rs"),
        ];
        let found = started_by_initialiser(&frames).unwrap();
        assert_eq!(found.site, Some(8));
    }

    #[test]
    fn once_cell_lazy_static_and_plain_spawns() {
        let mut once_cell = spawn_frames();
        once_cell.push(dep_frame(
            "once_cell::imp::initialize_or_wait::hb984530b39647e64",
        ));
        assert!(started_by_initialiser(&once_cell).is_some());

        let mut lazy_static = spawn_frames();
        lazy_static.push(dep_frame(
            "lazy_static::lazy::Lazy<T>::get::h7ad6dfd519ef3c2f",
        ));
        assert!(started_by_initialiser(&lazy_static).is_some());

        let mut plain = spawn_frames();
        plain.push(frame("app::start::h0c3d056ae937c1a4", "src/lib.rs"));
        assert_eq!(started_by_initialiser(&plain), None);
    }
}
