//! Find the threads and async tasks a test left behind, and say where they were spawned and what
//! they are stuck on.
//!
//! Concurrent code leaks tasks: a sender blocked forever on a channel nobody reads, a worker loop
//! nobody stops, a task per connection that outlives its connection. In tests nobody notices,
//! because the process exits. leakcheck records every thread the test process creates (on Linux
//! with glibc, with no code change) and every task spawned through it in a *registry*, with its
//! spawn site and its state, and fails the test that left one alive:
//!
//! ```text
//! leakcheck: 2 unexpected tasks in test `pool::tests::query_all` (waited 1.0s)
//!
//!   2 × thread "query-N", blocked in `chan send` for 1.0s
//!       spawned at   tests/pool.rs:18:9   (by test `pool::tests::query_all`, 1.0s ago)
//!       blocked at   tests/pool.rs:19:26
//!       tasks        #64 "query-1", #65 "query-2"
//! ```
//!
//! # Three ways to use it
//!
//! **1. `#[leak_test]`** in place of `#[test]`, on sync or async tests. It gives the test a scope of
//! its own and checks it when the body returns. `#[leak_test(tokio)]` replaces `#[tokio::test]` and
//! builds the runtime itself, so even plain `tokio::spawn` tasks of the code under test are caught.
//!
//! ```
//! # mod hidden {
//! #[leakcheck::leak_test(timeout = "500ms")]
//! fn workers_are_joined() {
//!     let worker = leakcheck::thread::spawn(|| 2 + 2);
//!     assert_eq!(worker.join().unwrap(), 4);
//! }
//! # }
//! ```
//!
//! **2. A guard** in the test body, checked when dropped:
//!
//! ```
//! let _leaks = leakcheck::verify_none();
//! let worker = leakcheck::thread::spawn(|| 2 + 2);
//! assert_eq!(worker.join().unwrap(), 4);
//! ```
//!
//! [`VerifyGuard::verify`] checks at once and returns the [`LeakReport`] instead of panicking, for
//! assertions on the report itself. A failing guard's panic points at the line that created it.
//!
//! In an `async` test, await the check: `guard.verify_async().await`. Dropping a guard (or
//! `verify()`) blocks the thread for the grace period, so on a current-thread runtime the tasks it
//! waits for cannot run meanwhile and are reported even if they were about to end.
//! `verify_async` lets the executor run them, on any executor (tokio or not).
//! `#[leak_test(tokio)]` already checks this way.
//!
//! A leak fails a `#[should_panic]` test too: with `#[leak_test]`, the expected panic is then
//! swallowed so that libtest fails the test, and the report on stderr says why. (A guard cannot
//! do this: in a `#[should_panic]` test its report goes to stderr only. Use `#[leak_test]` there.)
//!
//! **3. A global check** in a custom test main (`harness = false`): every test's leftovers, and
//! threads leakcheck did not spawn, process-wide, after all tests ran. See `verify_test_main`.
//!
//! # What is tracked
//!
//! Every thread the process creates, with no code change: plain `std::thread::spawn`, a pool
//! crate's threads, C code's (Linux with glibc, feature `track-all-threads`, on by default; set
//! `LEAKCHECK_THREADS=census` to turn it off at run time). Such a thread's spawn site is read from
//! its creator's stack, and what it waits on from its live stack (`chan receive`, `condvar
//! wait`, … marked *inferred*). Threads a one-time initialiser starts belong to the process, and
//! idle pool threads are not leaks. Elsewhere, threads leakcheck did not spawn are found by a
//! census of the operating system's thread list.
//!
//! Tasks spawned through [`thread::spawn`], [`thread::Builder`], [`task::track`] (any executor)
//! and, with the `tokio` feature, `tokio::spawn`. A task belongs to the *scope* that was current
//! where it was spawned (its test), and its children inherit that scope however deep, so tests
//! running in parallel in one process never blame each other.
//!
//! A tracked task is `running`, `scheduled`, `idle`, `lost` (pending with every waker dropped:
//! nothing can ever wake it) or `blocked`: [`sync::mpsc`] marks blocked channel operations, and
//! [`blocking`] / [`waiting`] mark any call you name.
//!
//! # Settings
//!
//! | variable | values | meaning |
//! | --- | --- | --- |
//! | `LEAKCHECK` | `fail` (default), `warn`, `off` | what a check does on leaks |
//! | `LEAKCHECK_TIMEOUT` | a duration: `500ms`, `2s` | the default grace period (1 s) |
//! | `LEAKCHECK_BACKTRACE` | `0`, `1`, `full` | `1`: record a backtrace per spawn and per blocking call; `full`: that, and show every frame of every stack in reports |
//! | `LEAKCHECK_REPORT_DIR` | a directory | write a JSON report per failing check |
//! | `LEAKCHECK_THREADS` | `all` (default where supported), `census` | track every thread from its creation, or only leakcheck's own |
//!
//! A malformed value fails every check with an error naming the variable and its accepted values.
//!
//! # Threads and tasks a project keeps on purpose: `leakcheck.toml`
//!
//! A metrics exporter, a global pool: declare them once, next to the package's `Cargo.toml` (or
//! in any directory above it, up to the workspace root; the nearest file wins), instead of in
//! every test:
//!
//! ```toml
//! [[ignore]]
//! name = "metrics-exporter"        # one or more of: name, spawned_at, function
//! reason = "exports metrics for the whole process, by design"
//! ```
//!
//! The patterns are those of [`Options::ignore_name`], [`Options::ignore_spawned_at`] and
//! [`Options::ignore_function`]; a rule hides a task that matches **all** the patterns it gives,
//! and `reason` is required. The file is read once per process. A failing report lists, in its
//! notes, what each rule hid and why; a rule that hid nothing in the tests a process ran is
//! warned about on stderr when the process exits (not under nextest, where each test is a process
//! of its own); a malformed file fails every check with an error naming the file, the line and
//! what was expected.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The crate's layers, bottom-up; a module imports only from layers below its own (and its own
// submodules). ../ARCHITECTURE.md has the map, one line per module, and where `unsafe` lives.
//
// 0. leaves ......... vocab, clock, duration, config, patterns, symbols
// 1. the OS ......... os
// 2. reports ........ report, infer (what a stack says)
// 3. records ........ state, then registry (a record holds its state)
// 4. this thread .... context
// 5. front ends ..... blocking, waiting, then plain_threads, thread, task, sync; options
// 6. checks ......... check, then test_main
// 7. integrations ... tokio
mod clock;
mod config;
mod duration;
mod patterns;
mod symbols;
mod vocab;

mod os;

mod infer;
mod report;

mod registry;
mod state;

mod context;

mod blocking;
mod options;
mod plain_threads;
pub mod sync;
pub mod task;
pub mod thread;
mod waiting;

mod check;
mod test_main;

/// The build script, compiled into the library's unit tests (a build script has none of its own).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[cfg(feature = "tokio")]
pub mod tokio;

pub use blocking::blocking;
pub use check::{in_scope, verify_none, verify_none_with, VerifyGuard};
pub use leakcheck_macros::leak_test;
pub use options::Options;
pub use report::{Frame, LeakReport, LeakedTask, OsThread, ParentTask, Site, Stack, StackOrigin};
pub use test_main::{verify_test_main, verify_test_main_with, MainOptions};
pub use vocab::{TaskId, TaskKind, TaskState};
pub use waiting::waiting;

/// Support for the code `#[leak_test]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(not(feature = "tokio"))]
    pub use self::without_tokio::{run_tokio_test, TokioFlavor, TokioTestConfig};
    pub use crate::check::{run_async_test, run_test};
    /// The reference grammar of durations, which the macro crate's copy is tested against.
    pub use crate::duration::parse_duration;
    pub use crate::plain_threads::set_for_benchmark as set_thread_tracking_for_benchmark;

    /// `#[leak_test]` on a `#[should_panic]` test: a leak fails it even though its body panicked.
    pub fn expect_panic(mut options: crate::Options) -> crate::Options {
        options.expects_panic = true;
        options
    }
    #[cfg(feature = "tokio")]
    pub use crate::tokio::test_runtime::{run_tokio_test, TokioFlavor, TokioTestConfig};

    /// Stand-ins so that `#[leak_test(tokio)]` without the `tokio` feature fails with the one
    /// error `__private_require_tokio!` gives, not with a cascade about missing items.
    #[cfg(not(feature = "tokio"))]
    mod without_tokio {
        pub enum TokioFlavor {
            CurrentThread,
            MultiThread,
            Local,
        }

        pub struct TokioTestConfig {
            pub flavor: TokioFlavor,
            pub worker_threads: Option<usize>,
            pub start_paused: bool,
        }

        pub fn run_tokio_test<F: core::future::Future>(
            _name: &'static str,
            _options: crate::Options,
            _config: TokioTestConfig,
            _body: F,
        ) -> F::Output {
            unreachable!("`__private_require_tokio!` stops the build first")
        }
    }
}

/// Expands to nothing when the `tokio` feature is on; `#[leak_test(tokio)]` calls it.
#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio {
    () => {};
}

/// A clear compile error for `#[leak_test(tokio)]` without the `tokio` feature.
#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio {
    () => {
        ::core::compile_error!(
            "#[leak_test(tokio)] needs leakcheck's `tokio` feature: leakcheck = { version = \"0.1\", features = [\"tokio\"] }"
        );
    };
}

/// Expands to nothing when the `tokio-test-util` feature is on; `start_paused = true` calls it.
#[cfg(feature = "tokio-test-util")]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio_test_util {
    () => {};
}

/// A clear compile error for `#[leak_test(tokio, start_paused = true)]` without the
/// `tokio-test-util` feature.
#[cfg(not(feature = "tokio-test-util"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio_test_util {
    () => {
        ::core::compile_error!(
            "`start_paused = true` needs leakcheck's `tokio-test-util` feature (it turns on tokio's `test-util`): leakcheck = { version = \"0.1\", features = [\"tokio-test-util\"] }"
        );
    };
}
