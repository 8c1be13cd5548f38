//! The `#[leak_test]` attribute of [leakcheck](https://docs.rs/leakcheck).
//!
//! Use it through `leakcheck::leak_test`: the code it generates calls into the `leakcheck` crate,
//! which must be a dependency (usually a dev-dependency) of the crate that holds the tests.
//!
//! The crate is organised as:
//!
//! * `args`: the table of the attribute's arguments, and their parsing and validation;
//! * `duration`, `pattern`: the grammars of the `timeout` and `ignore_*` values;
//! * `item`: the function the attribute goes on, and the checks of how it is written;
//! * `expand`: the code generated for it, which is the contract with the `leakcheck` runtime;
//! * `errors`, `suggest`: mistakes reported together, and "did you mean" suggestions.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod args;
mod duration;
mod errors;
mod expand;
mod item;
mod pattern;
mod suggest;

/// Runs a test and fails it if it leaves threads or async tasks behind.
///
/// `#[leak_test]` goes on a test function **in place of** `#[test]` (it adds `#[test]` itself).
/// After the test body returns, it waits for the tasks the test spawned to finish, up to a grace
/// period, and fails the test with a report of the survivors: where each was spawned, what it is
/// blocked on and since when.
///
/// ```ignore
/// use leakcheck::leak_test;
/// use leakcheck::sync::mpsc;
///
/// #[leak_test]
/// fn workers_exit_when_the_queue_closes() {
///     let (jobs, queue) = mpsc::channel::<u32>();
///     let worker = leakcheck::thread::spawn(move || for job in queue { let _ = job; });
///     jobs.send(1).unwrap();
///     drop(jobs); // forget this, and the test fails: the worker is blocked in `chan receive`
///     worker.join().unwrap();
/// }
/// ```
///
/// The function:
///
/// * can be `fn` or `async fn`. An `async fn` runs on leakcheck's own executor, or on a tokio
///   runtime with the `tokio` argument;
/// * may return anything a test may return, such as `Result<(), E>`, and use `?`;
/// * keeps its other attributes: `#[should_panic]`, `#[ignore]`, doc comments, `#[cfg(...)]`,
///   lint attributes. A test that panics also reports its leaks, on stderr, without panicking
///   twice, so `#[should_panic]` works as usual;
/// * takes no parameters and has no generics, as any test function.
///
/// The body becomes a closure (or an `async` block): `return` in it leaves the body, after which
/// the leak check runs.
///
/// # Arguments
///
/// The arguments mirror `leakcheck::Options`, and are checked at compile time.
///
/// | argument | effect |
/// | --- | --- |
/// | `timeout = "500ms"` | the grace period (`Options::timeout`); default: `LEAKCHECK_TIMEOUT`, or 1 s |
/// | `ignore_name = "metrics-*"` | ignore tasks by name, exact or a `*` glob (`Options::ignore_name`) |
/// | `ignore_spawned_at = "src/pool.rs:42"` | ignore tasks by spawn site: a file, `file:line`, `file:line:col`, or the path of the function that spawned (`Options::ignore_spawned_at`) |
/// | `ignore_function = "my_crate::telemetry::flush_loop"` | ignore tasks with this function anywhere on their stack (`Options::ignore_function`) |
/// | `ignore_current` | ignore the tasks and threads that were alive when the test started (`Options::ignore_current`) |
/// | `process_wide` | check every task of the process, not only the test's own (`Options::process_wide`) |
/// | `tokio` | run an `async fn` test on a tokio runtime that leakcheck builds and hooks |
/// | `flavor = "current_thread"`, `"multi_thread"` or `"local"` | with `tokio`: the runtime flavor; default `current_thread`; `local` is tokio's `LocalRuntime` (tokio 1.51 or later), where `tokio::task::spawn_local` works |
/// | `worker_threads = 4` | with `tokio` and `flavor = "multi_thread"`: the number of worker threads (at least 1) |
/// | `start_paused = true` | with `tokio` and the `current_thread` or `local` flavor: start with the clock paused |
/// | `crate = my_support::leakcheck` | the path of the `leakcheck` crate, for a crate that re-exports it (also `crate = "..."`); every generated path goes through it |
///
/// The `ignore_*` arguments can be repeated; the others can be given once. Durations are a
/// number and a unit: `ns`, `us`, `ms`, `s` or `m` (`"250ms"`, `"2s"`, `"1.5s"`).
///
/// ```ignore
/// use leakcheck::leak_test;
///
/// // A connection pool that keeps one reaper thread for the life of the process.
/// #[leak_test(timeout = "2s", ignore_name = "pool-reaper", ignore_spawned_at = "src/metrics.rs")]
/// fn queries_return_their_connections() -> Result<(), Box<dyn std::error::Error>> {
///     let pool = my_crate::Pool::connect("memory://")?;
///     pool.query("select 1")?;
///     Ok(())
/// }
///
/// // Another test's leftovers are not this test's fault.
/// #[leak_test(ignore_current, process_wide)]
/// fn nothing_at_all_is_left_running() {
///     my_crate::shutdown();
/// }
/// ```
///
/// # Async tests
///
/// Without arguments, an `async fn` runs on leakcheck's built-in executor, which suits code that
/// spawns through `leakcheck::task::track` on any executor:
///
/// ```ignore
/// #[leakcheck::leak_test]
/// async fn the_flush_task_ends_with_the_logger() {
///     let logger = my_crate::Logger::start();
///     logger.log("hello").await;
///     logger.close().await;
/// }
/// ```
///
/// With `tokio` (which needs leakcheck's `tokio` feature), it replaces `#[tokio::test]`: leakcheck
/// builds the test's runtime itself, so plain `tokio::spawn` calls of the code under test are
/// tracked too, and checks the tasks before the runtime shuts down (shutting down drops them,
/// which would hide the leak):
///
/// ```ignore
/// #[leakcheck::leak_test(tokio, flavor = "multi_thread", worker_threads = 2)]
/// async fn every_connection_task_ends() {
///     let server = my_crate::Server::bind("127.0.0.1:0").await.unwrap();
///     server.shutdown().await;
/// }
///
/// #[leakcheck::leak_test(tokio, start_paused = true)]
/// async fn the_retry_loop_gives_up() {
///     my_crate::retry_forever_with_backoff().await;
/// }
/// ```
///
/// # Compile errors
///
/// Misuse is a compile error that points at the offending token: an unknown argument (with the
/// list of accepted ones), a value of the wrong kind, a malformed duration (with the parser's
/// message) or spawn-site pattern (`"src/x.rs:abc"`, which would match nothing), an argument given
/// twice, `flavor`, `worker_threads` or `start_paused` without `tokio` (or with the wrong flavor),
/// `tokio` on a function that is not `async`, a `const`, `unsafe` or `extern "C"` function,
/// parameters or generics on the function, and an attribute on something else than a function. A `#[test]` on
/// the function is an error (`#[leak_test]` adds it), and so is `#[tokio::test]`, in either order:
/// its runtime would drop the test's leaked tasks at shutdown, before they are checked; write
/// `#[leak_test(tokio)]` instead.
#[proc_macro_attribute]
pub fn leak_test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::leak_test(args.into(), item.into()).into()
}
