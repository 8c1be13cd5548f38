//! The OS threads of a leakcheck test runtime, so that the ones still running after its shutdown
//! can be reported.
//!
//! A test runtime's threads are the harness's while it runs: its workers are the runtime itself,
//! and its blocking pool sits idle between jobs. But a plain `tokio::task::spawn_blocking` job is
//! neither a tokio task the runtime counts nor anything leakcheck sees spawn, and tokio cannot
//! stop it: if it never returns, its thread outlives the runtime's shutdown, stuck. So each
//! thread keeps the record it was created with (ended while it is the harness's), and a thread
//! still alive once the shutdown gave up waiting is listed again in the test's scope, where the
//! test's check reports it like any plain thread: where it waits, its live stack, and the user's
//! line that made the pool create it.

use parking_lot::Mutex;

use crate::check::{harness_thread_started, harness_thread_stopped};
use crate::os;
use crate::plain_threads::Disowned;
use crate::registry::ExitOnDrop;

/// The threads of one runtime that have started and not stopped yet.
#[derive(Default)]
pub(crate) struct RuntimeThreads {
    alive: Mutex<Vec<RuntimeThread>>,
}

struct RuntimeThread {
    tid: i32,
    /// Its record from its creation, if it was tracked from there.
    disowned: Option<Disowned>,
    /// Its record listed again after the shutdown; ends when the thread stops.
    relisted: Option<ExitOnDrop>,
}

impl RuntimeThreads {
    /// From the runtime's thread-start hook: the calling thread is the harness's from now on.
    pub(crate) fn started(&self) {
        let disowned = harness_thread_started();
        self.alive.lock().push(RuntimeThread {
            tid: os::current_tid(),
            disowned,
            relisted: None,
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
        // Outside the lock: ending a record wakes the checks waiting for it.
        drop(stopped);
        harness_thread_stopped();
    }

    /// Lists the threads still alive in the scope they were created in (see the module
    /// documentation); returns how many were listed.
    pub(crate) fn relist_alive(&self) -> usize {
        let mut alive = self.alive.lock();
        let mut listed = 0;
        for thread in alive.iter_mut().filter(|thread| thread.relisted.is_none()) {
            thread.relisted = thread.disowned.as_ref().and_then(Disowned::relist);
            listed += usize::from(thread.relisted.is_some());
        }
        listed
    }
}
