//! What a check's `Options` forgive, decided per tracked task.

use std::sync::Arc;

use crate::options::{Ignore, Options, SitePattern};
use crate::os::LiveStackBudget;
use crate::patterns::{function_matches, glob_matches, kernel_name_matches};
use crate::plain_threads;
use crate::registry::TaskRecord;
use crate::report::{resolve_stacks, PendingStack, Stack, StackOrigin};

/// Whether `options` forgive `task`.
pub(crate) fn is_ignored(
    options: &Options,
    task: &TaskRecord,
    live_stacks: &LiveStackBudget,
) -> bool {
    options.ignores.iter().any(|ignore| match ignore {
        Ignore::Name(pattern) => match task.created() {
            // A plain thread's name is the kernel's, as it shows in reports.
            Some(_) => {
                plain_threads::name_of(task).is_some_and(|name| kernel_name_matches(pattern, &name))
            }
            None => task.name().is_some_and(|name| glob_matches(pattern, name)),
        },
        Ignore::SpawnedAt(pattern @ SitePattern::Source { .. }) => {
            plain_threads::spawn_site_of(task)
                .is_some_and(|site| pattern.matches_site(site.file(), site.line(), site.column()))
        }
        Ignore::SpawnedAt(SitePattern::Function(function)) => {
            function_matches(function, task.entry())
                || spawner_frame(task).is_some_and(|frame| function_matches(function, &frame))
                || plain_threads::spawning_functions_of(task)
                    .iter()
                    .any(|frame| function_matches(function, frame))
        }
        Ignore::Function(function) => {
            function_matches(function, task.entry())
                || stacks_of(task, live_stacks)
                    .iter()
                    .any(|stack| stack.contains_function(function))
        }
    })
}

/// The first user frame of the spawn backtrace: the function that called `spawn`.
fn spawner_frame(task: &TaskRecord) -> Option<String> {
    let backtrace = Arc::clone(task.spawn_backtrace()?);
    let pending = PendingStack::Backtrace(StackOrigin::AtSpawn, backtrace);
    let stack = resolve_stacks(&[Some(pending)]).pop()??;
    stack.frames.first().map(|f| f.function.clone())
}

/// Every stack known for a task, resolved: at spawn, when blocked, and live (within the budget).
fn stacks_of(task: &TaskRecord, live_stacks: &LiveStackBudget) -> Vec<Stack> {
    let mut pending = Vec::new();
    if let Some(backtrace) = task.spawn_backtrace() {
        pending.push(Some(PendingStack::Backtrace(
            StackOrigin::AtSpawn,
            Arc::clone(backtrace),
        )));
    }
    if let Some(stack) = task.blocked().and_then(|b| b.stack) {
        pending.push(Some(PendingStack::Backtrace(
            StackOrigin::WhenBlocked,
            stack,
        )));
    }
    if let Some(thread) = task.os_thread() {
        if let Ok(ips) = live_stacks.take(thread) {
            pending.push(Some(PendingStack::Addresses(StackOrigin::Live, ips.into())));
        }
    }
    resolve_stacks(&pending).into_iter().flatten().collect()
}
