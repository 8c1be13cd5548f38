//! Linux: the thread list and thread details from `/proc/self/task`, exits observed through
//! thread pidfds, and live stacks taken by a real-time signal (see [`live_stack`]).

mod exit_wait;
mod live_stack;
mod proc;
#[cfg(leakcheck_interpose)]
pub(crate) mod pthread;

pub(crate) use exit_wait::{wait_for_any_exit, ExitWait};
pub(crate) use live_stack::live_stack;
pub(crate) use proc::{list_threads, thread_status};

/// The OS identity of a thread, recorded by the thread itself.
///
/// The kernel thread id is all leakcheck needs: live stacks are requested with
/// `rt_tgsigqueueinfo(getpid(), tid, ..)`, which works as well for threads leakcheck did not
/// spawn (whose `pthread_t` nobody knows) as for its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ThreadHandle {
    /// The kernel thread id (as in `/proc/self/task/<tid>`).
    pub(crate) tid: i32,
}

impl ThreadHandle {
    /// The calling thread's handle.
    pub(crate) fn current() -> ThreadHandle {
        ThreadHandle { tid: current_tid() }
    }

    /// The handle of the thread with kernel id `tid`, found in the thread list.
    pub(crate) fn from_tid(tid: i32) -> ThreadHandle {
        ThreadHandle { tid }
    }

    /// The kernel thread id.
    pub(crate) fn tid(&self) -> i32 {
        self.tid
    }
}

/// The calling thread's kernel id.
pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// The OS threads alive at one moment, to tell new threads from old ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreadBaseline {
    /// Sorted kernel thread ids.
    pub(crate) tids: Vec<i32>,
}

impl ThreadBaseline {
    /// The threads of this process now. Empty if `/proc` cannot be read.
    pub(crate) fn take() -> ThreadBaseline {
        ThreadBaseline::try_take().unwrap_or_default()
    }

    /// The threads of this process now, or why they cannot be listed.
    pub(crate) fn try_take() -> Result<ThreadBaseline, String> {
        list_threads()
            .map(|tids| ThreadBaseline { tids })
            .map_err(|error| format!("/proc/self/task cannot be read ({error}); is /proc mounted?"))
    }

    /// Whether the thread `tid` was alive when the baseline was taken.
    pub(crate) fn contains(&self, tid: i32) -> bool {
        self.tids.binary_search(&tid).is_ok()
    }
}
