//! Platforms without a thread list leakcheck can read: untracked threads and live stacks are
//! reported as not available here, and nothing else changes.

use std::time::{Duration, Instant};

use super::status::ThreadStatus;

/// Why untracked threads and live stacks are missing on this platform.
const NOT_HERE: &str =
    "not available on this platform (leakcheck reads them from /proc and signals on Linux)";

/// The OS identity of a thread (none is known on this platform).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ThreadHandle {}

impl ThreadHandle {
    pub(crate) fn current() -> ThreadHandle {
        ThreadHandle {}
    }

    pub(crate) fn tid(&self) -> i32 {
        0
    }

    pub(crate) fn in_this_process(&self) -> bool {
        true
    }
}

/// No kernel thread ids are known here.
pub(crate) fn current_tid() -> i32 {
    0
}

/// The OS threads alive at one moment (none are known on this platform).
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreadBaseline {}

impl ThreadBaseline {
    pub(crate) fn take() -> ThreadBaseline {
        ThreadBaseline {}
    }

    pub(crate) fn try_take() -> Result<ThreadBaseline, String> {
        Err(format!("untracked OS threads are {NOT_HERE}"))
    }

    pub(crate) fn contains(&self, _tid: i32) -> bool {
        false
    }
}

/// There is no thread list to read.
pub(crate) fn list_threads() -> std::io::Result<Vec<i32>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        NOT_HERE,
    ))
}

/// There is no thread list to find a thread in.
pub(crate) fn listed_thread(_tid: i32) -> Option<(ThreadHandle, ThreadStatus)> {
    None
}

/// What the kernel says about a thread: nothing, here.
pub(crate) fn thread_status(_thread: &ThreadHandle) -> Option<ThreadStatus> {
    None
}

/// How a wait for thread exits ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitWait {
    /// Never produced here; the variants mirror the Linux ones.
    #[allow(dead_code)]
    Exited,
    #[allow(dead_code)]
    TimedOut,
    Unsupported,
}

pub(crate) fn wait_for_any_exit(_tids: &[i32], _deadline: Instant) -> ExitWait {
    ExitWait::Unsupported
}

/// Live stacks are not available on this platform.
pub(crate) fn live_stack(_thread: &ThreadHandle, _timeout: Duration) -> Result<Vec<usize>, String> {
    Err(format!("live stacks are {NOT_HERE}"))
}

/// Elsewhere every address is symbolised through debug info.
pub(crate) fn c_runtime_function(_ip: usize) -> Option<String> {
    None
}

/// No process-wide barrier here: its users use fences instead.
pub(crate) mod process_barrier {
    pub(crate) fn is_registered() -> bool {
        false
    }

    pub(crate) fn barrier() -> bool {
        false
    }
}
