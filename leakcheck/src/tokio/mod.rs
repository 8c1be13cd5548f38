//! tokio integration (cargo feature `tokio`): tracked `spawn` and `spawn_blocking`, and the runtime
//! that `#[leak_test(tokio)]` builds for a test.
//!
//! # Tracked spawns
//!
//! [`spawn`] is `tokio::spawn(task::track(future))`: the task is recorded with its spawn site,
//! scope and parent, and its state (`running`, `scheduled`, `idle`, `lost`, `blocked`) is known at
//! every moment, on any tokio runtime. [`spawn_blocking`] records the closure as a task of kind
//! *thread* (it is one: a synchronous closure on a thread of tokio's blocking pool), `blocked in
//! "blocking-pool queue"` until a thread picks it up, then `running` with a live stack, like a
//! [`leakcheck::thread`](crate::thread).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let guard = leakcheck::verify_none();
//! let answer = leakcheck::tokio::spawn(async { 6 * 7 });
//! assert_eq!(answer.await.unwrap(), 42);
//! let sum = leakcheck::tokio::spawn_blocking(|| (1..=10).sum::<u32>());
//! assert_eq!(sum.await.unwrap(), 55);
//! guard.verify().expect("both tasks ended");
//! # }
//! ```
//!
//! # `#[leak_test(tokio)]`: catching plain `tokio::spawn`
//!
//! Code under test rarely spawns through leakcheck. `#[leak_test(tokio)]` (with `flavor =
//! "current_thread" | "multi_thread"`, `worker_threads = N`, `start_paused = true`) replaces
//! `#[tokio::test]` and builds the test's runtime itself, so it sees every task the test spawns,
//! however it spawns them:
//!
//! ```
//! use std::time::Duration;
//!
//! #[leakcheck::leak_test(tokio, flavor = "multi_thread", timeout = "200ms")]
//! async fn ticks_until_stopped() {
//!     let ticker = tokio::spawn(async {
//!         loop {
//!             tokio::time::sleep(Duration::from_millis(10)).await;
//!         }
//!     });
//!     // Forgot `ticker.abort()`: the test fails, and the report says where the ticker was spawned
//!     // (with `--cfg tokio_unstable`; on stable tokio, that one task was left alive).
//! #   drop(ticker);
//! }
//! ```
//!
//! It checks **inside** the runtime, after the test body and **before** the runtime shuts down —
//! shutting a runtime down silently drops its pending tasks, which is exactly what hides these
//! leaks under `#[tokio::test]`. The grace wait is asynchronous, so on a current-thread runtime
//! the survivors still run, and a task that finishes during the grace period is not a leak.
//!
//! What it knows about a plain `tokio::spawn` task depends on how tokio is built:
//!
//! - **stable tokio**: the runtime's count of alive tasks
//!   ([`RuntimeMetrics::num_alive_tasks`](::tokio::runtime::RuntimeMetrics::num_alive_tasks)),
//!   less the tasks leakcheck tracks, is reported as a number of *unidentified* async tasks, with a
//!   note on how to learn more. A plain task's exit is not signalled on stable tokio, so while only
//!   those are outstanding the check looks at the count again after 1, 2, 4, … 16 ms.
//! - **`RUSTFLAGS="--cfg tokio_unstable"`**: the runtime's task hooks register every task as a
//!   tracked async task, with its spawn site (`TaskMeta::spawned_at`), in the scope and as a child
//!   of the task that spawned it, so parallel tests never blame each other; poll hooks make nested
//!   spawns inherit. Such a task shows `running`, `idle` or `blocked` (through
//!   [`waiting`](crate::waiting)): leakcheck does not see its waker, so a pending task reads
//!   `idle` even when nothing holds its waker; `scheduled` and `lost` need [`spawn`].
//! - **`RUSTFLAGS="--cfg tokio_unstable --cfg tokio_taskdump"`** (Linux on x86, x86_64, aarch64,
//!   s390x): leakcheck also enables tokio's `taskdump` feature, and a failing check takes the
//!   runtime's task dump (under a timeout) and shows each survivor's async stack, joined by tokio
//!   task id. The dump is taken once the report is built, so its own polls of the tasks never
//!   show in their states. A pending task whose stack ends in a tokio call reads `blocked` in it
//!   (`chan receive`, `mutex lock`, `interval tick`, ... "inferred from its async stack"), at the
//!   line of its own code that awaits it. A task waiting on several futures (`select!`,
//!   `join!`) has a stack for each that tokio traces, and reads `blocked` only if they all name
//!   the same call; a `timeout`'s timer counts only when the future it times out is not traced.
//!   A task with no stack says why: tokio does not trace a task being polled, and its trace
//!   stops short of some of its own futures (`accept`, `UdpSocket::recv`, `readable()`,
//!   `JoinSet`), which are then not seen at all.
//!
//! `start_paused` needs tokio's `test-util` feature, which leakcheck's `tokio-test-util` feature
//! enables. With it, the grace period passes on tokio's paused clock, which advances by itself
//! when the runtime is idle: a survivor waiting on a timer gets to run, and the check does not
//! wait in real time for nothing. A report then notes how far the paused clock advanced.
//!
//! `#[leak_test]` stacked on `#[tokio::test]` is a compile error that says to write
//! `#[leak_test(tokio)]` instead: under `#[tokio::test]` the runtime is built and shut down
//! inside the test function, and a check can only run after that shutdown has dropped the leaked
//! tasks, so it would see nothing.
//!
//! # Limitations
//!
//! - Under `tokio_unstable`, `tokio::spawn(track(future))` (rather than [`spawn`]) is seen twice
//!   in a leakcheck runtime: as the tracked future and as the runtime's task.
//! - A plain `tokio::task::spawn_blocking` job (or tokio's own, for files, stdin and name
//!   lookups) is not counted by tokio's alive-task metric, so the check inside the runtime does
//!   not wait for it. After a clean check, the test drops the runtime's tasks and waits for its
//!   threads (for the grace period, and at least a second): a job still running then fails the
//!   test, reported as the blocking-pool thread that runs it, with where it waits and its live
//!   stack. This needs threads tracked from their creation (Linux with glibc, and not
//!   `LEAKCHECK_THREADS=census`). A test whose check found leaks waits only 250 ms (it fails
//!   anyway), and its one report names the jobs still running then with the leaks (one that
//!   would have ended later in the grace period too). Under `LEAKCHECK=warn` the same report is
//!   printed, and the test passes.

mod dump;
mod runtime_tasks;
mod runtime_threads;
pub(crate) mod test_runtime;

use std::future::Future;
use std::panic::Location;

use ::tokio::task::JoinHandle;

use crate::clock;
use crate::context;
use crate::os::ThreadHandle;
use crate::registry::ExitOnDrop;
use crate::state::Blocked;
use crate::task::Tracked;
use crate::vocab::TaskKind;

/// Spawns a tracked task on the current tokio runtime: [`tokio::spawn`] of
/// [`task::track(future)`](crate::task::track).
///
/// # Panics
///
/// Panics outside a tokio runtime, like `tokio::spawn`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = leakcheck::tokio::spawn(async { "done" });
/// assert_eq!(handle.await.unwrap(), "done");
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_tracked(Tracked::register(None, Location::caller(), future))
}

/// Like [`spawn`], with a name for the task, shown in reports and matched by
/// [`Options::ignore_name`](crate::Options::ignore_name).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let flusher = leakcheck::tokio::spawn_named("metrics-flush", async {});
/// flusher.await.unwrap();
/// # }
/// ```
#[track_caller]
pub fn spawn_named<F>(name: impl Into<String>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let name = Some(name.into().into_boxed_str());
    spawn_tracked(Tracked::register(name, Location::caller(), future))
}

#[track_caller]
fn spawn_tracked<F>(tracked: Tracked<F>) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // `tokio::spawn` is `#[track_caller]` too: its spawn location is our caller's.
    #[cfg(tokio_unstable)]
    {
        // The runtime's spawn hook takes the record over instead of making one of its own.
        let record = runtime_tasks::wants_spawn_record().then(|| tracked.share_record());
        let _handoff = record.map(runtime_tasks::hand_off);
        ::tokio::spawn(tracked)
    }
    #[cfg(not(tokio_unstable))]
    {
        // On a test runtime, the task is counted as known there (its runtime counts every task
        // alive), unless spawned in a scope opened inside the test: then its first poll claims it.
        if runtime_tasks::wants_spawn_record() {
            return match runtime_tasks::ClaimedRoot::new(tracked) {
                Ok(root) => ::tokio::spawn(root),
                Err(tracked) => ::tokio::spawn(tracked),
            };
        }
        ::tokio::spawn(tracked)
    }
}

/// The reason a [`spawn_blocking`] closure is `blocked` until a pool thread picks it up.
const QUEUED: &str = "blocking-pool queue";

/// Runs a closure on tokio's blocking pool as a tracked task of kind thread, like
/// [`tokio::task::spawn_blocking`].
///
/// Until a pool thread picks it up, the task is `blocked in "blocking-pool queue"` at the call
/// site; then it is `running`, with a live stack in reports, and the blocking annotations
/// ([`blocking`](crate::blocking), [`leakcheck::sync`](crate::sync)) work inside it. It ends
/// when the closure returns or panics, or when the runtime shuts down before running it.
///
/// # Panics
///
/// Panics outside a tokio runtime, like tokio's.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hash = leakcheck::tokio::spawn_blocking(|| "expensive".len());
/// assert_eq!(hash.await.unwrap(), 9);
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let site = Location::caller();
    let record = context::register(TaskKind::Thread, None, site, std::any::type_name::<F>);
    let queued = record.block(
        Blocked {
            reason: QUEUED,
            site,
            stack: None,
        },
        clock::now(),
    );
    // Ends the task however the closure goes: run, panicking, or dropped unrun at shutdown.
    let exit = ExitOnDrop(record);
    ::tokio::task::spawn_blocking(move || {
        let record = &exit.0;
        record.unblock(queued, clock::now());
        record.set_os_thread(ThreadHandle::current());
        let output = context::in_task(record, f);
        drop(exit);
        output
    })
}
