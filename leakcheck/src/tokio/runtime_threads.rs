//! The OS threads of a leakcheck test runtime, so that the ones still running a blocking job after
//! its shutdown can be reported.
//!
//! A test runtime's threads are the harness's while it runs: its workers are the runtime itself,
//! and its blocking pool sits idle between jobs. But a plain `tokio::task::spawn_blocking` job
//! (or one of tokio's own, for file or stdin I/O) is neither a task the runtime counts nor
//! anything leakcheck sees spawn, and tokio cannot stop it: if it never returns, its thread
//! outlives the runtime's shutdown, stuck. So each thread keeps the record it was created with
//! (ended while it is the harness's), and a thread still running a job once the shutdown gave
//! up waiting is listed again under the test's name (in the test's scope, or after a leak in a
//! scope of its own), where a check reports it like any plain thread: where it waits, its live
//! stack, and the user's line that made the pool start it.
//!
//! Not listed again (the caller decides, with [`RuntimeThreads::still_running`]): the runtime's
//! workers, which only a task blocking inside its poll keeps alive, a task the test's check
//! already judged; and a thread that runs a tracked `leakcheck::tokio::spawn_blocking` closure,
//! which has a record of its own, judged the same way. A thread's creation says nothing of which
//! it is: the pool's threads take whichever job is queued first, workers included.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::check::{harness_thread_started, harness_thread_stopped};
use crate::os;
use crate::plain_threads::Disowned;
use crate::registry::{ExitOnDrop, Scope};

/// The threads of one runtime that have started and not stopped yet.
#[derive(Default)]
pub(crate) struct RuntimeThreads {
    alive: Mutex<Vec<RuntimeThread>>,
    /// Notified whenever a thread stops.
    one_stopped: Condvar,
}

struct RuntimeThread {
    tid: i32,
    record: ThreadRecord,
}

/// The record of a runtime thread, if it was tracked from its creation.
enum ThreadRecord {
    Untracked,
    /// Ended when the thread became the harness's.
    Disowned(Disowned),
    /// Listed again after the runtime's shutdown; held for its drop, which ends it when the
    /// thread stops.
    Relisted {
        _ends_on_drop: ExitOnDrop,
    },
}

impl RuntimeThreads {
    /// From the runtime's thread-start hook: the calling thread is the harness's from now on.
    pub(crate) fn started(&self) {
        let record =
            harness_thread_started().map_or(ThreadRecord::Untracked, ThreadRecord::Disowned);
        self.alive.lock().push(RuntimeThread {
            tid: os::current_tid(),
            record,
        });
    }

    /// From the runtime's thread-stop hook: the calling thread ends (its relisted record too).
    pub(crate) fn stopped(&self) {
        let tid = os::current_tid();
        let stopped = {
            let mut alive = self.alive.lock();
            let at = alive.iter().position(|thread| thread.tid == tid);
            at.map(|at| alive.swap_remove(at))
        };
        self.one_stopped.notify_all();
        // Outside the lock: ending a record wakes the checks waiting for it.
        drop(stopped);
        harness_thread_stopped();
    }

    /// Waits until every thread alive is one `may_stay` accepts (by tid), or until `deadline`.
    pub(crate) fn wait_for_stops(&self, deadline: Instant, may_stay: impl Fn(i32) -> bool) {
        let mut alive = self.alive.lock();
        while !alive.iter().all(|thread| may_stay(thread.tid)) {
            if self
                .one_stopped
                .wait_until(&mut alive, deadline)
                .timed_out()
            {
                return;
            }
        }
    }

    /// The threads alive now that can be listed again.
    pub(crate) fn still_running(&self) -> Vec<os::ThreadHandle> {
        let alive = self.alive.lock();
        alive
            .iter()
            .filter_map(|thread| match &thread.record {
                ThreadRecord::Disowned(disowned) => disowned.thread(),
                _ => None,
            })
            .collect()
    }

    /// Lists the threads `threads` that are still alive in `scope`, one under the test's name
    /// (see the module documentation); returns how many were listed.
    pub(crate) fn relist(&self, threads: &[os::ThreadHandle], scope: &Arc<Scope>) -> usize {
        let mut alive = self.alive.lock();
        let mut listed = 0;
        let chosen = |thread: &&mut RuntimeThread| threads.iter().any(|t| t.tid() == thread.tid);
        for thread in alive.iter_mut().filter(chosen) {
            let ThreadRecord::Disowned(disowned) = &thread.record else {
                continue;
            };
            if let Some(relisted) = disowned.relist(scope) {
                thread.record = ThreadRecord::Relisted {
                    _ends_on_drop: relisted,
                };
                listed += 1;
            }
        }
        listed
    }
}
