//! What a plain thread is doing when a check looks at it: the name it shows, what it waits on,
//! and whether it is a pool thread with nothing to do.

use std::sync::Arc;

use crate::infer;
use crate::infer::pool::PoolThread;
use crate::os;
use crate::registry::TaskRecord;
use crate::report::{resolve_stacks_whole, Frame, PendingStack, StackOrigin};

/// The name a plain thread shows: its kernel name, unless that is still the one it started with,
/// inherited from its creator: an unnamed thread, which must not read as its creator (a test).
pub(crate) fn name_of(record: &TaskRecord) -> Option<String> {
    let creation = record.created()?;
    let status = os::thread_status(record.os_thread()?)?;
    let started_as = creation.start_name.get()?;
    let started_as = started_as.split(|&b| b == 0).next().unwrap_or_default();
    (status.name.as_bytes() != started_as).then_some(status.name)
}

/// Whether the live stack of `thread` shows a tokio runtime's worker loop (see
/// `infer::pool::is_runtime_worker`); `None` if it cannot be taken within `budget`.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Used by the tokio integration.
pub(crate) fn runs_a_runtime_worker(
    thread: &os::ThreadHandle,
    budget: &os::LiveStackBudget,
) -> Option<bool> {
    let frames = live_frames(thread, budget)?;
    Some(infer::pool::is_runtime_worker(&frames))
}

/// Whether `record` is a pool's thread waiting for its next job (looked at live, within the
/// check's `budget`: only for threads a known pool created).
pub(crate) fn is_idle_pool_thread(record: &TaskRecord, budget: &os::LiveStackBudget) -> bool {
    let Some(facts) = super::facts::facts_of(record) else {
        return false;
    };
    let Some(thread) = record.os_thread() else {
        return false;
    };
    if !facts.pool {
        return false;
    }
    live_frames(thread, budget)
        .is_some_and(|frames| infer::pool::pool_thread(&frames) == PoolThread::Idle)
}

/// The live stack of `thread`, symbolised whole for inference, if it can be taken within
/// `budget`.
fn live_frames(thread: &os::ThreadHandle, budget: &os::LiveStackBudget) -> Option<Arc<Vec<Frame>>> {
    let ips = budget.take(thread).ok()?;
    let pending = PendingStack::Addresses(StackOrigin::Live, Arc::from(ips));
    let (_, frames) = resolve_stacks_whole(&[Some(pending)]).pop()??;
    Some(frames)
}
