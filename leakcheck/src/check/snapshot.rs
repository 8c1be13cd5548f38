//! Turning live task records into the owned entries of a report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::infer;
use crate::os::LiveStackBudget;
use crate::plain_threads;
use crate::registry::{Shared, TaskRecord};
use crate::report::{
    resolve_stacks_whole, LeakedTask, ParentTask, PendingStack, Site, StackOrigin,
};
use crate::vocab::{TaskId, TaskState};

/// How many ancestors a report shows per survivor.
const PARENTS_SHOWN: usize = 8;
/// How many live stacks one report takes: one per distinct spawn site and blocking point.
const LIVE_STACKS: usize = 64;

/// Survivors sharing a spawn site and a blocking point share one live stack.
type LiveStackKey = (SpawnKey, Option<Site>);

/// What identifies where a task was spawned, for sharing live stacks: the `#[track_caller]`
/// site, or for a plain thread (whose wait is read from its own stack) the thread itself.
#[derive(PartialEq, Eq, Hash)]
enum SpawnKey {
    Location(&'static std::panic::Location<'static>),
    Thread(TaskId),
}

/// Snapshots the survivors for a report.
pub(crate) fn leaked_tasks(
    records: &[Shared<TaskRecord>],
    live_stacks: &LiveStackBudget,
) -> Vec<LeakedTask> {
    let now = clock::now();
    let mut tasks = Vec::with_capacity(records.len());
    let mut pending = Vec::with_capacity(records.len());
    // One live stack per distinct (spawn site, blocking point), shared by the tasks there.
    let mut live: HashMap<LiveStackKey, Result<Arc<[usize]>, String>> = HashMap::new();
    // Survivors mostly share a few scopes and entry types: name each once, not 100,000 times.
    let mut scope_labels: HashMap<u64, String> = HashMap::new();
    let mut entry_names: HashMap<*const u8, String> = HashMap::new();
    for record in records {
        let observed = record.state.observe_at(now);
        let blocked = (observed.state == TaskState::Blocked)
            .then(|| record.blocked())
            .flatten();
        let blocked_at = blocked.as_ref().map(|b| Site::from_location(b.site));
        let mut stack_unavailable = None;
        let live_stack = record.os_thread().and_then(|thread| {
            let spawn = match record.created() {
                Some(_) => SpawnKey::Thread(record.id),
                None => SpawnKey::Location(record.spawn_site),
            };
            let key = (spawn, blocked_at.clone());
            if !live.contains_key(&key) && live.len() >= LIVE_STACKS {
                return None;
            }
            let taken = live
                .entry(key)
                .or_insert_with(|| live_stacks.take(thread).map(Arc::from));
            match taken {
                Ok(ips) => Some(PendingStack::Addresses(StackOrigin::Live, Arc::clone(ips))),
                Err(why) => {
                    stack_unavailable = Some(why.clone());
                    None
                }
            }
        });
        let stack = live_stack
            .or_else(|| {
                let stack = blocked.as_ref()?.stack.clone()?;
                Some(PendingStack::Backtrace(StackOrigin::WhenBlocked, stack))
            })
            .or_else(|| {
                let backtrace = Arc::clone(record.spawn_backtrace()?);
                Some(PendingStack::Backtrace(StackOrigin::AtSpawn, backtrace))
            });
        if stack.is_some() {
            stack_unavailable = None;
        }
        pending.push(stack);
        let (name, runs) = match record.created() {
            Some(_) => (plain_threads::name_of(record), None),
            None => (
                record.name().map(str::to_owned),
                Some(
                    entry_names
                        .entry(record.entry().as_ptr())
                        .or_insert_with(|| entry_name(record.entry()))
                        .clone(),
                ),
            ),
        };
        tasks.push(LeakedTask {
            id: Some(record.id),
            kind: record.kind(),
            name,
            spawned_at: plain_threads::spawn_site_of(record),
            user_site: plain_threads::user_site_of(record),
            age: Duration::from_nanos(now.saturating_sub(record.spawned_at(now))),
            scope: Some(
                scope_labels
                    .entry(record.scope.id)
                    .or_insert_with(|| record.scope.label.to_string())
                    .clone(),
            ),
            runs,
            state: observed.state,
            in_state_for: Duration::from_nanos(now.saturating_sub(observed.since)),
            blocked_on: blocked.as_ref().map(|b| b.reason.to_owned()),
            blocked_at,
            wait_inferred: false,
            wait_detail: None,
            last_polled_ago: observed
                .last_polled
                .map(|at| Duration::from_nanos(now.saturating_sub(at))),
            wakers_observed: record.state.observes_wakers(),
            parents: parents_of(record),
            stack: None,
            stack_unavailable,
            os_thread: None,
        });
    }
    for ((task, record), resolved) in tasks
        .iter_mut()
        .zip(records)
        .zip(resolve_stacks_whole(&pending))
    {
        let Some((stack, frames)) = resolved else {
            continue;
        };
        // A plain thread says what it waits on in its live stack (leakcheck's own threads keep
        // what their instrumented calls and annotations recorded).
        if record.created().is_some()
            && task.state == TaskState::Running
            && stack.origin == StackOrigin::Live
        {
            if let Some(wait) = infer::wait::infer_wait_site(&frames) {
                wait.mark(task);
            }
        }
        task.stack = Some(stack);
    }
    tasks
}

/// A closure's type name as a reader wants it: `#[leak_test]` wraps test bodies in a closure of
/// their own, so `t::{{closure}}::{{closure}}` reads `t::{{closure}}`.
fn entry_name(type_name: &str) -> String {
    const CLOSURE: &str = "::{{closure}}";
    let mut name = type_name.to_owned();
    while let Some(at) = name.find(&CLOSURE.repeat(2)) {
        name.replace_range(at..at + CLOSURE.len(), "");
    }
    name
}

fn parents_of(record: &TaskRecord) -> Vec<ParentTask> {
    record
        .ancestors()
        .take(PARENTS_SHOWN)
        .map(|parent| ParentTask {
            id: parent.id,
            kind: parent.kind(),
            name: parent.name().map(str::to_owned),
            spawned_at: plain_threads::spawn_site_of(parent)
                .unwrap_or_else(|| Site::new("(unknown)", 0, 0)),
            exited: parent.has_exited(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_closures_read_as_one() {
        assert_eq!(
            entry_name("t::a::{{closure}}::{{closure}}::{{closure}}"),
            "t::a::{{closure}}"
        );
        assert_eq!(entry_name("t::a::{{closure}}"), "t::a::{{closure}}");
        assert_eq!(entry_name("t::a::{async_block#0}"), "t::a::{async_block#0}");
    }
}
