//! Linux: the thread list and thread details from `/proc/self/task`, exits observed through
//! thread pidfds, live stacks taken by a real-time signal (see [`live_stack`]), and a barrier on
//! every thread of the process ([`process_barrier`]).

mod c_runtime;
mod elf;
mod exit_wait;
mod live_stack;
mod proc;
pub(crate) mod process_barrier;
#[cfg(leakcheck_interpose)]
pub(crate) mod pthread;

pub(crate) use c_runtime::c_runtime_function;
pub(crate) use exit_wait::{wait_for_any_exit, ExitWait};
pub(crate) use live_stack::live_stack;
pub(crate) use proc::list_threads;

use super::status::ThreadStatus;

/// The OS identity of a thread: its kernel thread id, and a bound on when it started.
///
/// The kernel thread id is what live stacks are requested with (`rt_tgsigqueueinfo(getpid(),
/// tid, ..)`, which works as well for threads leakcheck did not spawn, whose `pthread_t` nobody
/// knows, as for its own). But a tid is reused once its thread is gone, so the handle also holds
/// `started_by`: the thread started at or before that many clock ticks after boot. Any later
/// holder of the tid started after this thread ended, so a `/proc` start time later than
/// `started_by` is another thread. (Both would have to fall in one clock tick, 10 ms, for the
/// check to miss: the kernel hands tids out cyclically, so a tid comes back only after all of
/// `pid_max`, at least 32768, were handed out.)
///
/// After `fork()` the child has only the thread that forked, under a new tid: handles recorded
/// before the fork name threads of the parent, which [`in_this_process`](Self::in_this_process)
/// tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ThreadHandle {
    /// The kernel thread id (as in `/proc/self/task/<tid>`).
    pub(crate) tid: i32,
    /// The thread started at or before this time, in clock ticks after boot (`stat`'s unit).
    started_by: u64,
    /// The process the handle was taken in.
    process: i32,
}

impl ThreadHandle {
    /// The calling thread's handle. Cheap: `gettid` and a vDSO clock read.
    pub(crate) fn current() -> ThreadHandle {
        ThreadHandle {
            tid: current_tid(),
            // Without a clock, no thread can be told apart from a later one: accept any.
            started_by: proc::clock_ticks_since_boot().unwrap_or(u64::MAX),
            process: current_process(),
        }
    }

    /// The handle of thread `tid`, which `/proc` says started `start_ticks` after boot.
    fn listed(tid: i32, start_ticks: u64) -> ThreadHandle {
        ThreadHandle {
            tid,
            started_by: start_ticks,
            process: current_process(),
        }
    }

    /// Whether the handle's thread is (or was) a thread of this process, rather than of the
    /// parent this process was forked from: those threads did not survive the fork.
    pub(crate) fn in_this_process(&self) -> bool {
        self.process == current_process()
    }

    /// The kernel thread id.
    pub(crate) fn tid(&self) -> i32 {
        self.tid
    }

    /// Whether a thread that has this handle's tid and started `start_ticks` after boot (as
    /// `/proc` says) is this handle's thread, rather than a later one that reuses the tid.
    pub(crate) fn started_as(&self, start_ticks: Option<u64>) -> bool {
        // A thread `/proc` gives no start time for cannot be told apart: take it for this one.
        start_ticks.is_none_or(|start| start <= self.started_by)
    }
}

/// The thread `tid` found in the thread list: its handle and what the kernel says about it, from
/// one read of its `stat`, or `None` if it is gone. The handle names this very thread, so a
/// verdict or stack kept by handle is never mistaken for one of a later thread with its tid.
pub(crate) fn listed_thread(tid: i32) -> Option<(ThreadHandle, ThreadStatus)> {
    let (status, start_ticks) = proc::thread_status(tid)?;
    // Without a start time, no later thread with the tid can be told from this one.
    let handle = ThreadHandle::listed(tid, start_ticks.unwrap_or(u64::MAX));
    Some((handle, status))
}

/// What the kernel says about `thread` now, or `None` if it is gone (its tid names no thread,
/// or a later one, or it is a thread of the process this one was forked from).
pub(crate) fn thread_status(thread: &ThreadHandle) -> Option<ThreadStatus> {
    if !thread.in_this_process() {
        return None;
    }
    let (status, start_ticks) = proc::thread_status(thread.tid)?;
    thread.started_as(start_ticks).then_some(status)
}

/// This process's id.
fn current_process() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's start time, as `/proc` says.
    fn own_start_ticks() -> u64 {
        proc::thread_stat(current_tid())
            .and_then(|stat| stat.start_ticks)
            .expect("/proc gives this thread's start time")
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_handle_knows_its_thread_from_a_later_one_with_the_same_tid() {
        let start = own_start_ticks();
        let handle = ThreadHandle::current();
        assert!(handle.started_as(Some(start)));
        assert!(!handle.started_as(Some(handle.started_by + 1)));
        let (listed, status) = listed_thread(current_tid()).expect("this thread is listed");
        assert_eq!(status.state, 'R');
        assert_eq!(listed.started_by, start);
        assert!(listed.started_as(Some(start)));
        assert!(!listed.started_as(Some(start + 1)));
    }

    /// A handle whose thread is gone, while its tid now names a later thread: no signal is sent
    /// and the answer says the thread exited. (The later thread is played by this one.)
    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_status_of_a_handle_is_its_own_threads_only() {
        let me = ThreadHandle::current();
        assert_eq!(thread_status(&me).map(|s| s.state), Some('R'));
        let gone = ThreadHandle {
            started_by: own_start_ticks()
                .checked_sub(1)
                .expect("started after boot"),
            ..me
        };
        assert_eq!(thread_status(&gone), None, "a later thread with the tid");
        let parents = ThreadHandle {
            process: current_process() + 1,
            ..me
        };
        assert_eq!(thread_status(&parents), None, "a thread of another process");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn no_live_stack_is_taken_of_a_later_thread_that_reuses_the_tid() {
        let start = own_start_ticks();
        let gone = ThreadHandle {
            started_by: start.checked_sub(1).expect("started after boot"),
            ..ThreadHandle::current()
        };
        let error = live_stack(&gone, std::time::Duration::from_secs(2)).unwrap_err();
        assert_eq!(error, "the thread has exited");
        // The same thread under its own handle answers.
        assert!(live_stack(&ThreadHandle::current(), std::time::Duration::from_secs(2)).is_ok());
    }

    /// In a forked child, handles taken before the fork are the parent's threads.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn handles_from_before_a_fork_are_of_another_process() {
        let before = ThreadHandle::current();
        assert!(before.in_this_process());
        // SAFETY: the child only makes system calls (getpid, _exit): nothing that could wait
        // on a lock another thread of the parent held at the fork.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let code = if before.in_this_process() { 1 } else { 0 };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        assert!(child > 0, "fork: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status), "{status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child took the handle for its own"
        );
    }
}
