//! Platforms without a thread list leakcheck can read: untracked threads and live stacks are
//! reported as not available here.

/// The OS identity of a thread (none is known on this platform).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ThreadHandle {}

impl ThreadHandle {
    pub(crate) fn current() -> ThreadHandle {
        ThreadHandle {}
    }
}

/// The OS threads alive at one moment (none are known on this platform).
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreadBaseline {}

impl ThreadBaseline {
    pub(crate) fn take() -> ThreadBaseline {
        ThreadBaseline {}
    }
}

/// Live stacks are not available on this platform.
pub(crate) fn live_stack(_thread: &ThreadHandle, _timeout: std::time::Duration) -> Result<Vec<usize>, String> {
    Err("live stacks are not available on this platform".to_owned())
}
