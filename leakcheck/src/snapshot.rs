//! Turning live task records into the owned entries of a report, and deciding what is ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::options::{function_matches, glob_matches, Ignore, Options, SitePattern};
use crate::os::LiveStackBudget;
use crate::plain_threads;
use crate::registry::{TaskId, TaskRecord};
use crate::report::{
    resolve_stacks, resolve_stacks_whole, LeakedTask, ParentTask, PendingStack, Site, Stack,
    StackOrigin,
};
use crate::state::TaskState;

/// How many ancestors a report shows per survivor.
const PARENTS_SHOWN: usize = 8;
/// How many live stacks one report takes: one per distinct spawn site and blocking point.
const LIVE_STACKS: usize = 64;
/// What a task is doing right now: its state, since when, and when it was last polled.
pub(crate) struct Observed {
    pub(crate) state: TaskState,
    pub(crate) since: u64,
    pub(crate) last_polled: Option<u64>,
}

/// Whether `options` forgive `task`.
pub(crate) fn is_ignored(options: &Options, task: &TaskRecord) -> bool {
    options.ignores.iter().any(|ignore| match ignore {
        Ignore::Name(pattern) => match task.created {
            Some(_) => {
                plain_threads::name_of(task).is_some_and(|name| glob_matches(pattern, &name))
            }
            None => task
                .name
                .as_deref()
                .is_some_and(|name| glob_matches(pattern, name)),
        },
        Ignore::SpawnedAt(pattern @ SitePattern::Source { .. }) => {
            plain_threads::spawn_site_of(task)
                .is_some_and(|site| pattern.matches_site(site.file(), site.line(), site.column()))
        }
        Ignore::SpawnedAt(SitePattern::Function(function)) => {
            function_matches(function, task.entry)
                || spawner_frame(task).is_some_and(|frame| function_matches(function, &frame))
        }
        Ignore::Function(function) => {
            function_matches(function, task.entry)
                || stacks_of(task)
                    .iter()
                    .any(|stack| stack.contains_function(function))
        }
    })
}

/// The first user frame of the spawn backtrace: the function that called `spawn`.
fn spawner_frame(task: &TaskRecord) -> Option<String> {
    let backtrace = Arc::clone(task.spawn_backtrace.as_ref()?);
    let pending = PendingStack::Backtrace(StackOrigin::AtSpawn, backtrace);
    let stack = resolve_stacks(&[Some(pending)]).pop()??;
    stack.frames.first().map(|f| f.function.clone())
}

/// Every stack known for a task, resolved: at spawn, when blocked, and live.
fn stacks_of(task: &TaskRecord) -> Vec<Stack> {
    let mut pending = Vec::new();
    if let Some(backtrace) = &task.spawn_backtrace {
        pending.push(Some(PendingStack::Backtrace(
            StackOrigin::AtSpawn,
            Arc::clone(backtrace),
        )));
    }
    if let Some(stack) = task.state.blocked().and_then(|b| b.stack) {
        pending.push(Some(PendingStack::Backtrace(
            StackOrigin::WhenBlocked,
            stack,
        )));
    }
    if let Some(thread) = task.os_thread.get() {
        if let Ok(ips) = crate::os::live_stack(thread, crate::os::LIVE_STACK_TIMEOUT) {
            pending.push(Some(PendingStack::Addresses(StackOrigin::Live, ips.into())));
        }
    }
    resolve_stacks(&pending).into_iter().flatten().collect()
}

/// Survivors sharing a spawn site and a blocking point share one live stack.
type LiveStackKey = (SpawnKey, Option<Site>);

/// What identifies where a task was spawned, for sharing live stacks: the `#[track_caller]`
/// site, or for a plain thread (whose wait is read from its own stack) the thread itself.
#[derive(PartialEq, Eq, Hash)]
enum SpawnKey {
    Location(&'static std::panic::Location<'static>),
    Thread(TaskId),
}

/// Snapshots the survivors for a report. `dumped` holds stacks a runtime's task dump gave.
pub(crate) fn leaked_tasks(
    records: &[Arc<TaskRecord>],
    mut dumped: HashMap<TaskId, Stack>,
    live_stacks: &LiveStackBudget,
) -> Vec<LeakedTask> {
    let now = clock::now();
    let mut tasks = Vec::with_capacity(records.len());
    let mut pending = Vec::with_capacity(records.len());
    // One live stack per distinct (spawn site, blocking point), shared by the tasks there.
    let mut live: HashMap<LiveStackKey, Result<Arc<[usize]>, String>> = HashMap::new();
    for record in records {
        let observed = crate::async_state::observe(record);
        let blocked = (observed.state == TaskState::Blocked)
            .then(|| record.state.blocked())
            .flatten();
        let blocked_at = blocked.as_ref().map(|b| Site::from_location(b.site));
        let mut stack_unavailable = None;
        let stack = if let Some(stack) = dumped.remove(&record.id) {
            Some(PendingStack::Resolved(stack))
        } else {
            let live_stack = record.os_thread.get().and_then(|thread| {
                let spawn = match record.created {
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
            live_stack
                .or_else(|| {
                    let stack = blocked.as_ref()?.stack.clone()?;
                    Some(PendingStack::Backtrace(StackOrigin::WhenBlocked, stack))
                })
                .or_else(|| {
                    let backtrace = Arc::clone(record.spawn_backtrace.as_ref()?);
                    Some(PendingStack::Backtrace(StackOrigin::AtSpawn, backtrace))
                })
        };
        if stack.is_some() {
            stack_unavailable = None;
        }
        pending.push(stack);
        let (name, runs) = match record.created {
            Some(_) => (plain_threads::name_of(record), None),
            None => (
                record.name.as_deref().map(str::to_owned),
                Some(entry_name(record.entry)),
            ),
        };
        tasks.push(LeakedTask {
            id: Some(record.id),
            kind: record.kind,
            name,
            spawned_at: plain_threads::spawn_site_of(record),
            user_site: plain_threads::user_site_of(record),
            age: Duration::from_nanos(now.saturating_sub(record.spawned_at)),
            scope: Some(record.scope.label.to_string()),
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
        if record.created.is_some()
            && task.state == TaskState::Running
            && stack.origin == StackOrigin::Live
        {
            if let Some(wait) = plain_threads::inferred_wait(&frames) {
                task.state = TaskState::Blocked;
                task.blocked_on = Some(wait.reason.to_owned());
                task.blocked_at = wait.blocked_at;
                task.wait_inferred = true;
                task.wait_detail = wait.detail.map(str::to_owned);
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
            kind: parent.kind,
            name: parent.name.as_deref().map(str::to_owned),
            spawned_at: plain_threads::spawn_site_of(parent)
                .unwrap_or_else(|| Site::new("(unknown)", 0, 0)),
            exited: parent.has_exited(),
        })
        .collect()
}

/// The default observation for tasks whose state needs no interpretation (threads).
pub(crate) fn observe_plain(record: &TaskRecord) -> Observed {
    let (state, since) = record.state.load();
    Observed {
        state,
        since,
        last_polled: None,
    }
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
