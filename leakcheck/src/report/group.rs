//! Grouping of survivors that share spawn site, state and stack, largest group first.

use std::collections::HashMap;
use std::time::Duration;

use crate::vocab::{TaskKind, TaskState};

use super::{LeakedTask, OsThread, ParentTask, Site, Stack};

/// What makes two survivors "the same leak".
#[derive(PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    kind: TaskKind,
    spawned_at: Option<&'a Site>,
    scope: Option<&'a str>,
    state: TaskState,
    blocked_on: Option<&'a str>,
    blocked_at: Option<&'a Site>,
    runs: Option<&'a str>,
    parents: Vec<&'a Site>,
    stack: Option<&'a Stack>,
    /// Untracked threads have no site: their kernel state and name stand in for it.
    kernel: Option<(&'a str, Option<&'a str>)>,
    untracked_name: Option<String>,
}

/// Survivors that share a key.
pub(crate) struct Group<'a> {
    pub(crate) tasks: Vec<&'a LeakedTask>,
}

impl<'a> Group<'a> {
    /// The first task of the group, whose shared fields stand for all.
    pub(crate) fn representative(&self) -> &'a LeakedTask {
        self.tasks[0]
    }

    pub(crate) fn shortest_and_longest(&self) -> (Duration, Duration) {
        let durations = self.tasks.iter().map(|t| t.in_state_for);
        let min = durations.clone().min().unwrap_or_default();
        (min, durations.max().unwrap_or_default())
    }

    pub(crate) fn parents(&self) -> &'a [ParentTask] {
        &self.representative().parents
    }

    pub(crate) fn os_thread(&self) -> Option<&'a OsThread> {
        self.representative().os_thread.as_ref()
    }
}

/// Groups `tasks`, largest group first, then in order of first spawn.
pub(crate) fn group(tasks: &[LeakedTask]) -> Vec<Group<'_>> {
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for task in tasks {
        let key = GroupKey {
            kind: task.kind,
            spawned_at: task.spawned_at.as_ref(),
            scope: task.scope.as_deref(),
            state: task.state,
            blocked_on: task.blocked_on.as_deref(),
            blocked_at: task.blocked_at.as_ref(),
            runs: task.runs.as_deref(),
            parents: task.parents.iter().map(|p| &p.spawned_at).collect(),
            stack: task.stack.as_ref(),
            kernel: task
                .os_thread
                .as_ref()
                .filter(|_| task.kind == TaskKind::UntrackedThread)
                .map(|os| (os.kernel_state.as_str(), os.waiting_in.as_deref())),
            untracked_name: (task.kind == TaskKind::UntrackedThread)
                .then(|| task.name.as_deref().map(name_pattern))
                .flatten(),
        };
        let next = groups.len();
        let slot = *index.entry(key).or_insert(next);
        if slot == next {
            groups.push(Group { tasks: Vec::new() });
        }
        groups[slot].tasks.push(task);
    }
    // Stable: equal-sized groups keep the order of their first task.
    groups.sort_by_key(|g| std::cmp::Reverse(g.tasks.len()));
    groups
}

/// What threads named alike share: every run of digits becomes one `#`, so `worker-12` and
/// `worker-3` (and `pool-1-thread-20`, `pool-2-thread-3`) are the same kind of thread. The one rule
/// for grouping reports and for sharing live stacks among look-alike threads.
pub(crate) fn name_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_alike_but_for_their_numbers_share_a_pattern() {
        assert_eq!(name_pattern("worker-12"), "worker-#");
        assert_eq!(name_pattern("worker-3"), name_pattern("worker-12"));
        assert_eq!(
            name_pattern("pool-1-thread-20"),
            name_pattern("pool-2-thread-3")
        );
        assert_eq!(name_pattern("tokio-runtime-w"), "tokio-runtime-w");
        assert_ne!(name_pattern("worker-1"), name_pattern("worker-"));
    }
}
