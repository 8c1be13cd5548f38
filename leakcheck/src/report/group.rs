//! Grouping of survivors that are the same leak, largest group first.
//!
//! Survivors are the same leak when they share their kind, spawn site, scope, parents' sites,
//! state (with its blocking reason and site) and name pattern ([`name_pattern`]). Their stacks are
//! not part of it: the workers of one runtime wait in different places (one polls the I/O driver,
//! the others park), and are still one leak; a group shows the stack most of its tasks share.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use crate::vocab::{TaskKind, TaskState};

use super::{LeakedTask, ParentTask, Site, Stack};

/// What makes two survivors "the same leak".
#[derive(PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    kind: TaskKind,
    spawned_at: Option<&'a Site>,
    user_site: Option<&'a Site>,
    scope: Option<&'a str>,
    state: TaskState,
    blocked_on: Option<&'a str>,
    blocked_at: Option<&'a Site>,
    wait_detail: Option<&'a str>,
    runs: Option<&'a str>,
    parents: Vec<&'a Site>,
    name: Option<Cow<'a, str>>,
}

/// Survivors that share a key, in the order they were given (spawn order).
pub(crate) struct Group<'a> {
    pub(crate) tasks: Vec<&'a LeakedTask>,
    /// The name the group's tasks share: digits they all have in common stay as they are, the
    /// others read `N` (`r2d2-worker-N` for `r2d2-worker-0` and `r2d2-worker-1`).
    pub(crate) name: Option<Cow<'a, str>>,
}

impl<'a> Group<'a> {
    /// The first task of the group, whose shared fields stand for all.
    pub(crate) fn representative(&self) -> &'a LeakedTask {
        self.tasks[0]
    }

    /// The shortest and longest time the tasks have been in their state.
    pub(crate) fn in_state_for(&self) -> (Duration, Duration) {
        min_max(self.tasks.iter().map(|t| t.in_state_for))
    }

    /// The shortest and longest time since the tasks were last polled, if any was.
    pub(crate) fn last_polled_ago(&self) -> Option<(Duration, Duration)> {
        let polled = self.tasks.iter().filter_map(|t| t.last_polled_ago);
        polled.clone().next()?;
        Some(min_max(polled))
    }

    pub(crate) fn parents(&self) -> &'a [ParentTask] {
        &self.representative().parents
    }

    /// The stack most tasks of the group share, and how many share it.
    pub(crate) fn common_stack(&self) -> Option<(&'a Stack, usize)> {
        let first = self.representative().stack.as_ref();
        // The common case, checked without hashing: every task has the first task's stack.
        if self.tasks.iter().all(|t| t.stack.as_ref() == first) {
            return first.map(|stack| (stack, self.tasks.len()));
        }
        let mut counts: Vec<(&'a Stack, usize)> = Vec::new();
        let mut index: HashMap<&'a Stack, usize> = HashMap::new();
        for stack in self.tasks.iter().filter_map(|t| t.stack.as_ref()) {
            let slot = *index.entry(stack).or_insert_with(|| {
                counts.push((stack, 0));
                counts.len() - 1
            });
            counts[slot].1 += 1;
        }
        // Ties go to the stack seen first.
        counts.into_iter().rev().max_by_key(|(_, count)| *count)
    }
}

fn min_max(durations: impl Iterator<Item = Duration> + Clone) -> (Duration, Duration) {
    let min = durations.clone().min().unwrap_or_default();
    (min, durations.max().unwrap_or_default())
}

/// Groups `tasks`, largest group first, then in order of first spawn.
pub(crate) fn group(tasks: &[LeakedTask]) -> Vec<Group<'_>> {
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for task in tasks {
        let name = task.name.as_deref().map(name_pattern);
        let key = GroupKey {
            kind: task.kind,
            spawned_at: task.spawned_at.as_ref(),
            user_site: task.user_site.as_ref(),
            scope: task.scope.as_deref(),
            state: task.state,
            blocked_on: task.blocked_on.as_deref(),
            blocked_at: task.blocked_at.as_ref(),
            wait_detail: task.wait_detail.as_deref(),
            runs: task.runs.as_deref(),
            parents: task.parents.iter().map(|p| &p.spawned_at).collect(),
            name: name.clone(),
        };
        let next = groups.len();
        let slot = *index.entry(key).or_insert(next);
        if slot == next {
            groups.push(Group {
                tasks: Vec::new(),
                name: task.name.as_deref().map(Cow::Borrowed),
            });
        }
        let group = &mut groups[slot];
        if let (Some(shared), Some(name)) = (&mut group.name, task.name.as_deref()) {
            if shared != name {
                *shared = Cow::Owned(shared_name(shared, name));
            }
        }
        group.tasks.push(task);
    }
    // Stable: equal-sized groups keep the order of their first task.
    groups.sort_by_key(|g| std::cmp::Reverse(g.tasks.len()));
    groups
}

/// The one rule by which names are alike, for grouping reports and for sharing live stacks among
/// look-alike threads: every run of digits reads `N`, so `worker-3`, `worker-12` and `worker-301`
/// are all `worker-N`.
pub(crate) fn name_pattern(name: &str) -> Cow<'_, str> {
    if !name.bytes().any(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    Cow::Owned(out)
}

/// What two names of one pattern ([`name_pattern`]) have in common: each run of digits where
/// they differ reads `N`.
fn shared_name(shared: &str, name: &str) -> String {
    let (mut a, mut b) = (digit_runs(shared), digit_runs(name));
    let mut out = String::with_capacity(shared.len());
    while let (Some(x), Some(y)) = (a.next(), b.next()) {
        let digits = |run: &str| run.starts_with(|c: char| c.is_ascii_digit() || c == 'N');
        if digits(x) && digits(y) && x != y {
            out.push('N');
        } else {
            out.push_str(x);
        }
    }
    out
}

/// `name` cut into alternating runs of ASCII digits and of anything else; a run already
/// normalised to `N` by [`shared_name`] counts as digits. Only within a group, where the other
/// runs are equal, can a literal `N` not be told from a normalised one, and then it reads the
/// same either way.
fn digit_runs(name: &str) -> impl Iterator<Item = &str> {
    let is_digit = |c: char| c.is_ascii_digit();
    let mut rest = name;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let end = if is_digit(first) {
            rest.find(|c: char| !is_digit(c)).unwrap_or(rest.len())
        } else if first == 'N' {
            1
        } else {
            rest.find(|c: char| is_digit(c) || c == 'N')
                .unwrap_or(rest.len())
        };
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shows_the_digits_its_names_share() {
        let fold = |names: &[&str]| {
            names[1..].iter().fold(names[0].to_owned(), |shared, name| {
                shared_name(&shared, name)
            })
        };
        assert_eq!(
            fold(&["r2d2-worker-0", "r2d2-worker-1", "r2d2-worker-2"]),
            "r2d2-worker-N"
        );
        assert_eq!(fold(&["pool-7", "pool-12", "pool-301"]), "pool-N");
        assert_eq!(fold(&["w1-of-16", "w2-of-16"]), "wN-of-16");
        assert_eq!(fold(&["Node-1", "Node-2"]), "Node-N");
        assert_eq!(fold(&["same-3", "same-3"]), "same-3");
    }

    #[test]
    fn runs_of_digits_read_n() {
        assert_eq!(name_pattern("worker-3"), "worker-N");
        assert_eq!(name_pattern("worker-301"), "worker-N");
        assert_eq!(name_pattern("w1-of-16"), "wN-of-N");
        assert_eq!(name_pattern("tokio-rt-worker"), "tokio-rt-worker");
        assert_eq!(name_pattern("٣"), "٣", "only ASCII digits");
        assert_eq!(
            name_pattern("pool-1-thread-20"),
            name_pattern("pool-2-thread-3")
        );
        assert_ne!(name_pattern("worker-1"), name_pattern("worker-"));
    }
}
