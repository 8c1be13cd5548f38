//! OS threads of the harness leakcheck drives itself (the runtime `#[leak_test(tokio)]` builds):
//! never reported as untracked.

use parking_lot::Mutex;

use crate::os;

/// Threads that belong to a test harness or runtime leakcheck drives itself (for example the
/// runtime `#[leak_test(tokio)]` builds), never reported as untracked.
pub(super) static HARNESS_THREADS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Registers the calling thread as part of the harness until [`harness_thread_stopped`]: call it
/// from a runtime's thread-start hook. Returns the thread's own record, ended (see
/// [`disown_current_thread`](crate::plain_threads::disown_current_thread)).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Used by the tokio integration.
pub(crate) fn harness_thread_started() -> Option<crate::plain_threads::Disowned> {
    // Created in a test's scope, it is the harness's all the same.
    let disowned = crate::plain_threads::disown_current_thread();
    HARNESS_THREADS.lock().push(os::current_tid());
    disowned
}

/// Unregisters the calling thread; call it from a runtime's thread-stop hook.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Used by the tokio integration.
pub(crate) fn harness_thread_stopped() {
    let tid = os::current_tid();
    let mut threads = HARNESS_THREADS.lock();
    if let Some(at) = threads.iter().position(|&t| t == tid) {
        threads.swap_remove(at);
    }
}
