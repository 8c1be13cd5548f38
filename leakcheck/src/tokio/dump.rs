//! Async stacks of leaked tokio tasks, from the runtime's task dump.
//!
//! Available with `RUSTFLAGS="--cfg tokio_unstable --cfg tokio_taskdump"` on the targets tokio
//! supports task dumps on (Linux on x86, x86_64, aarch64, s390x), where leakcheck's manifest turns
//! tokio's `taskdump` feature on and its build script sets `cfg(leakcheck_taskdump)`. Elsewhere
//! [`take`] says there is nothing to take.

use std::collections::{HashMap, HashSet};

use ::tokio::runtime::Handle;

use super::runtime_tasks::TestRuntime;
use crate::infer::wait::SiteWait;
use crate::report::{LeakReport, Stack};
use crate::vocab::{TaskId, TaskKind, TaskState};

/// What the runtime's task dump says of one of a report's async survivors.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
pub(super) enum Dumped {
    /// One of its async stacks (one per leaf future tokio traced; see
    /// `infer::wait::infer_task_wait_site` for which), and the call they all say it waits in.
    Stack(Stack, Option<SiteWait>),
    /// Why it has none.
    Unavailable(&'static str),
}

/// The dump's word on a report's async survivors, by task, or why there is none.
pub(super) type Dump = Result<HashMap<TaskId, Dumped>, String>;

/// Whether this build can take task dumps.
pub(super) const AVAILABLE: bool = cfg!(leakcheck_taskdump);

/// Why a survivor the runtime knows has no stack: tokio's dump does not trace a task being
/// polled, nor one just woken into a worker's own slot.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
const NOT_TRACED: &str = "the runtime's task dump skipped it: it was being polled, or had just been woken, when the dump was taken";
/// Why a survivor the runtime knows has no stack: polled for the trace, its future reached none
/// of the points tokio traces.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
const NO_LEAF: &str = "the runtime's task dump traced nothing: polled for the trace, its future reached none of the points tokio traces (`accept`, `UdpSocket::recv`, `readable()`, `JoinSet` and `FuturesUnordered` reach none; nor do `pending()` or other crates' futures)";
/// Why a survivor has no stack: its trace could not be symbolised.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
const UNRESOLVED: &str = "the runtime's task dump traced it, but its stack could not be symbolised";

/// Takes the runtime's task dump and joins it, by tokio task id, to `survivors`, tasks the
/// runtime's hooks registered. Must run inside the runtime (a current-thread runtime dumps only
/// from within). `None` when this build cannot take task dumps.
#[cfg(leakcheck_taskdump)]
pub(super) async fn take(
    handle: &Handle,
    runtime: &TestRuntime,
    survivors: &HashSet<TaskId>,
) -> Option<Dump> {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::infer::wait::infer_task_wait_site;
    use crate::report::{resolve_stacks_whole, PendingStack, StackOrigin};

    /// How long the dump may take. tokio's dump does not finish while a worker thread is blocked
    /// (which a leak test may well have done), so it is always bounded.
    const DUMP_TIMEOUT: Duration = Duration::from_secs(1);

    // On a multi-thread runtime, tokio takes the dump on a thread it creates for it:
    // leakcheck's, not the test's.
    let dump = crate::plain_threads::untracked(handle.dump());
    let Ok(dump) = ::tokio::time::timeout(DUMP_TIMEOUT, dump).await else {
        return Some(Err(format!(
            "the runtime's task dump did not finish within {}s (is a worker thread blocked?): no async stacks",
            DUMP_TIMEOUT.as_secs()
        )));
    };
    // Every survivor of this runtime is untraced, until the dump shows it.
    let mut dumped: HashMap<TaskId, Dumped> = runtime
        .record_ids()
        .into_iter()
        .filter(|id| survivors.contains(id))
        .map(|id| (id, Dumped::Unavailable(NOT_TRACED)))
        .collect();
    // Each traced survivor's stacks (one per leaf future it waits on), resolved together.
    let mut traced = Vec::new();
    let mut pending = Vec::new();
    for task in dump.tasks().iter() {
        let Some(id) = runtime
            .record_of(task.id())
            .map(|record| record.id)
            .filter(|id| survivors.contains(id))
        else {
            continue;
        };
        let backtraces = task.trace().resolve_backtraces();
        if backtraces.is_empty() {
            dumped.insert(id, Dumped::Unavailable(NO_LEAF));
            continue;
        }
        traced.push((id, backtraces.len()));
        pending.extend(backtraces.iter().map(|backtrace| {
            let addresses: Arc<[usize]> = backtrace
                .frames()
                .map(|frame| frame.ip() as usize)
                .collect();
            Some(PendingStack::Addresses(StackOrigin::RuntimeDump, addresses))
        }));
    }
    let mut resolved = resolve_stacks_whole(&pending).into_iter();
    for (id, count) in traced {
        // Every stack of the task, or none: one missing could change what they agree on.
        let Some(stacks) = resolved.by_ref().take(count).collect::<Option<Vec<_>>>() else {
            dumped.insert(id, Dumped::Unavailable(UNRESOLVED));
            continue;
        };
        let frames: Vec<&[_]> = stacks.iter().map(|(_, frames)| frames.as_slice()).collect();
        let (shown, wait) = infer_task_wait_site(&frames);
        if let Some((stack, _)) = stacks.into_iter().nth(shown) {
            dumped.insert(id, Dumped::Stack(stack, wait));
        }
    }
    Some(Ok(dumped))
}

/// This build cannot take task dumps.
#[cfg(not(leakcheck_taskdump))]
pub(super) async fn take(
    _handle: &Handle,
    _runtime: &TestRuntime,
    _survivors: &HashSet<TaskId>,
) -> Option<Dump> {
    None
}

/// Gives the survivors of `report` what the dump says of them: their async stacks, in place of
/// what the report had, and for a task merely pending, what its stack says it waits on.
pub(super) fn attach(report: &mut LeakReport, mut dumped: HashMap<TaskId, Dumped>) {
    for task in &mut report.tasks {
        match task.id.and_then(|id| dumped.remove(&id)) {
            Some(Dumped::Stack(stack, wait)) => {
                task.stack = Some(stack);
                task.stack_unavailable = None;
                // `blocked` in an annotation, `lost`, `scheduled` or `running` say more, or
                // are more certain, than a stack's leaf.
                if let (TaskKind::Async, TaskState::Idle, Some(wait)) =
                    (task.kind, task.state, wait)
                {
                    wait.mark(task);
                }
            }
            Some(Dumped::Unavailable(why)) if task.stack.is_none() => {
                task.stack_unavailable = Some(why.to_owned());
            }
            Some(Dumped::Unavailable(_)) | None => {}
        }
    }
}
