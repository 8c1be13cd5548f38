//! Pool threads with nothing to do: a runtime's spare threads are not a test's leak while idle.
//!
//! tokio's blocking pool keeps a thread alive for 10 s after its last job, waiting for the next
//! one in `tokio::runtime::blocking::pool::Inner::run`; a rayon worker waits for work in
//! `WorkerThread::wait_until`. Such a thread is only worth reporting (per test) while its live
//! stack shows it running a job. A tokio runtime's workers are not spare threads but the runtime
//! itself (they run as one long job of its blocking pool): a forgotten runtime shows through them.

use super::normalise;
use crate::report::Frame;

/// What a live stack says about a pool thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolThread {
    /// Not a known pool's thread, or a pool thread running a job: judge it like any thread.
    Busy,
    /// A pool thread waiting for its next job.
    Idle,
}

const TOKIO_POOL_LOOP: &str = "tokio::runtime::blocking::pool::Inner::run";
const TOKIO_JOB: &str = "tokio::runtime::blocking::pool::Task::run";
const RAYON_WAIT: &str = "rayon_core::registry::WorkerThread::wait_until";
const RAYON_MAIN_LOOP: &str = "rayon_core::registry::main_loop";
/// Frames a rayon worker runs a job in.
const RAYON_JOB: &[&str] = &["rayon_core::job::", "rayon_core::scope::"];

/// Frames of a multi-thread tokio runtime's worker loop.
const TOKIO_WORKER: &str = "tokio::runtime::scheduler::multi_thread::worker::";

/// Whether the thread whose live stack is `frames` runs a multi-thread tokio runtime's worker
/// loop (polling tasks, or blocking for one of them in `block_in_place`), rather than a job of
/// the blocking pool.
pub(crate) fn is_runtime_worker(frames: &[Frame]) -> bool {
    frames
        .iter()
        .any(|frame| normalise(frame.function()).starts_with(TOKIO_WORKER))
}

/// Classifies the thread whose live stack is `frames` (innermost first).
pub(crate) fn pool_thread(frames: &[Frame]) -> PoolThread {
    let names: Vec<String> = frames.iter().map(|f| normalise(f.function())).collect();
    let has = |prefix: &str| names.iter().any(|name| name.starts_with(prefix));
    if has(TOKIO_POOL_LOOP) {
        // A worker of the runtime runs as one long job of the blocking pool: it is the runtime
        // itself, alive as long as the runtime is, so a forgotten runtime shows.
        return if has(TOKIO_JOB) {
            PoolThread::Busy
        } else {
            PoolThread::Idle
        };
    }
    if has(RAYON_MAIN_LOOP) {
        // Idle when the innermost rayon frame is its wait loop, with no job inside it.
        let wait = names.iter().position(|name| name.starts_with(RAYON_WAIT));
        let job = names
            .iter()
            .position(|name| RAYON_JOB.iter().any(|prefix| name.starts_with(prefix)));
        return match (wait, job) {
            (Some(wait), Some(job)) if job < wait => PoolThread::Busy,
            (Some(_), _) => PoolThread::Idle,
            (None, _) => PoolThread::Busy,
        };
    }
    PoolThread::Busy
}

#[cfg(test)]
mod tests {
    use super::super::tests::{c_frame, dep_frame, frame, std_frame};
    use super::*;

    fn blocking_pool_tail() -> Vec<Frame> {
        vec![
            dep_frame("tokio::runtime::blocking::pool::LockedImpl::run_worker::h5b8d0ff362b8e052"),
            dep_frame("tokio::runtime::blocking::pool::Inner::run::hf6380334802bbe70"),
            dep_frame("tokio::runtime::blocking::pool::Spawner::spawn_thread::{{closure}}::h892a3d9759319a2b"),
            std_frame("std::thread::lifecycle::spawn_unchecked::{{closure}}::h0ea4d3e32f93b388"),
            c_frame("start_thread"),
        ]
    }

    #[test]
    fn a_runtime_worker_is_told_from_a_blocking_job() {
        // User code stuck in `recv`, run by `runner`, on a blocking-pool thread.
        let stuck_under = |runner: &[Frame]| {
            let mut frames = vec![
                std_frame("std[e2]::sync::mpsc::Receiver<T>::recv"),
                frame("app::tests::stuck::{{closure}}::h1", "src/lib.rs"),
            ];
            frames.extend_from_slice(runner);
            frames.push(dep_frame("tokio::runtime::blocking::pool::Task::run::h4"));
            frames.extend(blocking_pool_tail());
            frames
        };
        let worker = stuck_under(&[
            dep_frame("tokio::runtime::task::core::Core<T,S>::poll::h1"),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::Context::run_task::h2"),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::run::h3"),
        ]);
        assert!(is_runtime_worker(&worker));
        let job = stuck_under(&[dep_frame(
            "tokio::runtime::blocking::task::BlockingTask<T>::poll::h5",
        )]);
        assert!(!is_runtime_worker(&job));
    }

    #[test]
    fn tokio_blocking_threads_idle_and_busy_and_workers_never_idle() {
        let mut idle = vec![
            c_frame("syscall"),
            dep_frame("parking_lot::condvar::Condvar::wait_for::hf4baeaa06c4aa14d"),
            dep_frame("tokio::loom::std::parking_lot::Condvar::wait_timeout::hd7adb09559749b3b"),
        ];
        idle.extend(blocking_pool_tail());
        assert_eq!(pool_thread(&idle), PoolThread::Idle);

        let mut busy = vec![
            std_frame("std[e2]::thread::functions::sleep"),
            frame("app::tests::blocking::{{closure}}::h1", "src/lib.rs"),
            dep_frame("tokio::runtime::task::UnownedTask<S>::run::h8ee4ca209bb0fcda"),
            dep_frame("tokio::runtime::blocking::pool::Task::run::he72b41ac3a00d794"),
        ];
        busy.extend(blocking_pool_tail());
        assert_eq!(pool_thread(&busy), PoolThread::Busy);

        let mut parked_worker = vec![
            dep_frame(
                "tokio::runtime::scheduler::multi_thread::worker::Context::park::hf4b2b1c32e9b4423",
            ),
            dep_frame(
                "tokio::runtime::scheduler::multi_thread::worker::Context::run::hbdcc8077e1ca3a43",
            ),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::run::h7680f2dcc9e5ee33"),
            dep_frame("tokio::runtime::blocking::pool::Task::run::he72b41ac3a00d794"),
        ];
        parked_worker.extend(blocking_pool_tail());
        assert_eq!(pool_thread(&parked_worker), PoolThread::Busy);

        let mut running_worker = vec![
            frame("app::stuck_task::{{closure}}::h1", "src/lib.rs"),
            dep_frame("tokio::runtime::task::raw::poll::ha68190f95c5682b8"),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::Context::run_task::h1"),
            dep_frame(
                "tokio::runtime::scheduler::multi_thread::worker::Context::run::hbdcc8077e1ca3a43",
            ),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::run::h7680f2dcc9e5ee33"),
            dep_frame("tokio::runtime::blocking::pool::Task::run::he72b41ac3a00d794"),
        ];
        running_worker.extend(blocking_pool_tail());
        assert_eq!(pool_thread(&running_worker), PoolThread::Busy);
    }

    #[test]
    fn rayon_workers_idle_and_busy() {
        let tail = [
            dep_frame("rayon_core::registry::WorkerThread::wait_until::h1800029ec6d37a16"),
            dep_frame(
                "rayon_core::registry::WorkerThread::wait_until_out_of_work::h230ea3793fe44b77",
            ),
            dep_frame("rayon_core::registry::main_loop::h96f5ded43a6456f3"),
            dep_frame("rayon_core::registry::ThreadBuilder::run::h223fd9feca2cb9cd"),
            c_frame("start_thread"),
        ];
        let mut idle = vec![
            std_frame("std::sync::poison::condvar::Condvar::wait::h850021eb48a9a04a"),
            dep_frame("rayon_core::sleep::Sleep::sleep::h61c344afe4ceabcb"),
            dep_frame("rayon_core::registry::WorkerThread::wait_until_cold::h90938333f499c5e5"),
        ];
        idle.extend(tail.iter().cloned());
        assert_eq!(pool_thread(&idle), PoolThread::Idle);

        let mut busy = vec![
            std_frame("std[e2]::thread::functions::sleep"),
            frame("app::work::{{closure}}::h1", "src/lib.rs"),
            dep_frame("<rayon_core::job::StackJob<L,F,R> as rayon_core::job::Job>::execute::h1"),
            dep_frame("rayon_core::registry::WorkerThread::wait_until_cold::h90938333f499c5e5"),
        ];
        busy.extend(tail.iter().cloned());
        assert_eq!(pool_thread(&busy), PoolThread::Busy);

        let plain = [
            frame("app::work::h1", "src/lib.rs"),
            c_frame("start_thread"),
        ];
        assert_eq!(pool_thread(&plain), PoolThread::Busy);
    }
}
