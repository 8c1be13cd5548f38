//! Async stacks of leaked tokio tasks, from the runtime's task dump.
//!
//! Available with `RUSTFLAGS="--cfg tokio_unstable --cfg tokio_taskdump"` on the targets tokio
//! supports task dumps on (Linux on x86, x86_64, aarch64, s390x), where leakcheck's manifest turns
//! tokio's `taskdump` feature on and its build script sets `cfg(leakcheck_taskdump)`. Elsewhere
//! [`take`] says there is nothing to take.

use std::collections::HashMap;

use ::tokio::runtime::Handle;

use super::runtime_tasks::TestRuntime;
use crate::report::Stack;
use crate::vocab::TaskId;

/// The stacks of the runtime's tasks leakcheck knows, by task, or why there are none.
pub(super) type Dumped = Result<HashMap<TaskId, Stack>, String>;

/// Whether this build can take task dumps.
pub(super) const AVAILABLE: bool = cfg!(leakcheck_taskdump);

/// Takes the runtime's task dump and joins it, by tokio task id, to the tasks the runtime's
/// hooks registered. Must run inside the runtime (a current-thread runtime dumps only from
/// within). `None` when this build cannot take task dumps.
#[cfg(leakcheck_taskdump)]
pub(super) async fn take(handle: &Handle, runtime: &TestRuntime) -> Option<Dumped> {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::report::{resolve_stacks, PendingStack, StackOrigin};

    /// How long the dump may take. tokio's dump does not finish while a worker thread is blocked
    /// (which a leak test may well have done), so it is always bounded.
    const DUMP_TIMEOUT: Duration = Duration::from_secs(1);

    // tokio takes the dump on a thread it creates for it: leakcheck's, not the test's.
    let dump = crate::plain_threads::untracked(handle.dump());
    let Ok(dump) = ::tokio::time::timeout(DUMP_TIMEOUT, dump).await else {
        return Some(Err(format!(
            "the runtime's task dump did not finish within {}s (is a worker thread blocked?): no async stacks",
            DUMP_TIMEOUT.as_secs()
        )));
    };
    let mut ids = Vec::new();
    let mut pending = Vec::new();
    for task in dump.tasks().iter() {
        let Some(record) = runtime.record_of(task.id()) else {
            continue;
        };
        // One backtrace per leaf future the task waits on; the first is the one it waits on
        // first, which is what the report shows.
        let Some(backtrace) = task.trace().resolve_backtraces().into_iter().next() else {
            continue;
        };
        let addresses: Arc<[usize]> = backtrace
            .frames()
            .map(|frame| frame.ip() as usize)
            .collect();
        ids.push(record.id);
        pending.push(Some(PendingStack::Addresses(
            StackOrigin::RuntimeDump,
            addresses,
        )));
    }
    let stacks = ids
        .into_iter()
        .zip(resolve_stacks(&pending))
        .filter_map(|(id, stack)| Some((id, stack?)))
        .collect();
    Some(Ok(stacks))
}

/// This build cannot take task dumps.
#[cfg(not(leakcheck_taskdump))]
pub(super) async fn take(_handle: &Handle, _runtime: &TestRuntime) -> Option<Dumped> {
    None
}
