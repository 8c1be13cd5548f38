//! The survivors of a check: which live tasks count as its leaks, and what forgives the others
//! (the check's options, the project's rules, process-wide threads, idle pool threads, records
//! of a parent process after `fork()`).

use std::collections::HashSet;
use std::time::Instant;

use super::ignore;
use super::ignore_file::IgnoreFile;
use super::wait::{Check, Scan, Verdict, SETTLE};
use crate::options::Options;
use crate::os::LiveStackBudget;
use crate::plain_threads;
use crate::registry::{self, Shared, TaskRecord};
use crate::report::LeakedTask;
use crate::vocab::{TaskId, TaskKind};

/// What forgives `task`: the check's options first, then the project's rules.
fn decide(
    options: &Options,
    project: Option<&IgnoreFile>,
    task: &TaskRecord,
    budget: &LiveStackBudget,
) -> Verdict {
    if ignore::is_ignored(options, task, budget) {
        return Verdict::IgnoredByOptions;
    }
    project
        .and_then(|file| {
            file.rules
                .iter()
                .position(|rule| rule.hides(|pattern| ignore::is_ignored(pattern, task, budget)))
        })
        .map_or(Verdict::Counts, Verdict::HiddenByRule)
}

/// Whether `task` is a thread of the process this one was forked from: `fork()` copies the
/// registry, with a record for every thread of the parent, but only the thread that forked. Such
/// records are set aside here, when survivors are looked at, and nowhere else. A `pthread_atfork`
/// child handler that emptied the registry instead would have to take the registry's locks in
/// the child, where a lock held at the fork by a thread that was not copied stays locked forever:
/// the child would hang before its first line. This test takes no lock: the thread's handle was
/// recorded, with the pid of its process, when the thread started. (A thread that had not started
/// yet when its parent forked has no handle, and is the one case it misses.)
fn lost_to_fork(task: &TaskRecord) -> bool {
    task.os_thread()
        .is_some_and(|thread| !thread.in_this_process())
}

/// The ascending union of two ascending lists without repeats.
fn merge_sorted(old: Vec<TaskId>, new: Vec<TaskId>) -> Vec<TaskId> {
    if old.is_empty() {
        return new;
    }
    let mut merged = Vec::with_capacity(old.len().max(new.len()));
    let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let next = match (old.peek(), new.peek()) {
            (Some(a), Some(b)) if a < b => old.next(),
            (Some(a), Some(b)) if a > b => new.next(),
            (Some(_), Some(_)) => {
                new.next();
                old.next()
            }
            (Some(_), None) => old.next(),
            (None, Some(_)) => new.next(),
            (None, None) => break,
        };
        merged.extend(next);
    }
    merged
}

impl Check {
    /// Drops the threads that are not this check's leaks whatever their scope: those a one-time
    /// initialiser started (they belong to the process), plain threads that stand for a tracked
    /// task running on them, and (per test) pool threads waiting for a job.
    /// Before [`SETTLE`] is over (except at the deadline), only notes that some are left.
    pub(super) fn drop_excused(&mut self, tasks: &mut Vec<Shared<TaskRecord>>, scan: Scan) {
        let has_threads = || tasks.iter().any(|t| t.kind() == TaskKind::Thread);
        if scan == Scan::Waiting && self.began.elapsed() < SETTLE {
            self.unclassified = has_threads();
            return;
        }
        self.unclassified = false;
        let verdicts = &mut self.process_global;
        let global_sites = &mut self.global_sites;
        global_sites.clear();
        tasks.retain(|task| {
            // Only a plain thread, or a task below one, can have been started by an initialiser:
            // the others need no verdict, and 100,000 async survivors no map entry each.
            if std::iter::once(&**task)
                .chain(task.ancestors())
                .all(|t| t.created().is_none())
            {
                return true;
            }
            let verdict = verdicts
                .entry(task.id)
                .or_insert_with(|| plain_threads::started_by_initialiser(task));
            if let Some(site) = verdict {
                global_sites.push(
                    site.as_ref()
                        .map_or_else(|| "an unknown site".to_owned(), ToString::to_string),
                );
            }
            verdict.is_none()
        });
        // A plain thread running one of leakcheck's tracked tasks (a tracked `spawn_blocking`
        // job on a pool thread) is reported as that task.
        let running_tracked: HashSet<i32> = tasks
            .iter()
            .filter(|task| task.created().is_none())
            .filter_map(|task| Some(task.os_thread()?.tid()))
            .collect();
        let per_test = !self.options.process_wide;
        let budget = &self.live_stacks;
        tasks.retain(|task| {
            task.created().is_none()
                || !(task
                    .os_thread()
                    .is_some_and(|thread| running_tracked.contains(&thread.tid()))
                    // Idle pool threads are a live runtime's, not this test's; the process-wide
                    // check still sees those of a runtime nobody shut down.
                    || per_test && plain_threads::is_idle_pool_thread(task, budget))
        });
    }

    /// The notes on threads that belong to the process, for a process-wide report: listed, not
    /// failed.
    pub(super) fn process_global_notes(&self) -> Vec<String> {
        let mut sites = self.global_sites.clone();
        sites.sort();
        let mut notes = Vec::new();
        let mut rest = sites.as_slice();
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|s| *s == first).count();
            notes.push(format!(
                "{same} process-global {} (not a leak): started by a one-time initialiser at {first}",
                if same == 1 { "thread" } else { "threads" }
            ));
            rest = &rest[same..];
        }
        notes
    }

    /// The tracked tasks that count as leaks if they are still alive at the deadline.
    ///
    /// Verdicts of ignore patterns are remembered per task while waiting. A "not ignored" that
    /// was decided from a stack can change as the task runs (it may not have reached the ignored
    /// function yet), so the final scan decides those again.
    pub(crate) fn tracked_survivors(&mut self, scan: Scan) -> Vec<Shared<TaskRecord>> {
        let mut tasks = if self.options.process_wide {
            registry::all_scopes()
                .iter()
                .flat_map(|scope| scope.live_tasks())
                .collect()
        } else {
            // Always through the shard locks, never a lock-free look at the shards' lengths: the
            // exit signal's arguments rest on those locks, which spawns and unlinks take (see
            // `ExitSignal`).
            self.scope.live_tasks()
        };
        let below = self.options.ignore_below;
        tasks.retain(|task| {
            !task.has_exited()
                && !self.excluded.contains(&task.id)
                && below.is_none_or(|below| task.id >= below)
                && !lost_to_fork(task)
        });
        let options = &self.options;
        let project = self.project;
        let hidden_by_rule = &mut self.hidden_by_rule;
        hidden_by_rule.clear();
        // Nothing to forgive: no verdict to look up or remember per task.
        if !options.ignores.is_empty() || project.is_some_and(|file| !file.rules.is_empty()) {
            let ignored = &mut self.ignored;
            let budget = &self.live_stacks;
            let redecide = scan == Scan::Final
                && (options.ignores_by_stack()
                    || project.is_some_and(|file| file.rules.iter().any(|r| r.looks_at_stacks())));
            tasks.retain(|task| {
                // A plain thread's name is set by the thread itself once it runs: decide again.
                let again = redecide || scan == Scan::Final && task.created().is_some();
                let verdict = match ignored.get(&task.id) {
                    Some(&verdict) if verdict != Verdict::Counts || !again => verdict,
                    _ => {
                        let verdict = decide(options, project, task, budget);
                        if let (Verdict::HiddenByRule(rule), Some(file)) = (verdict, project) {
                            file.rules[rule].record_hits(1);
                        }
                        ignored.insert(task.id, verdict);
                        verdict
                    }
                };
                if let Verdict::HiddenByRule(rule) = verdict {
                    *hidden_by_rule.entry(rule).or_default() += 1;
                }
                verdict == Verdict::Counts
            });
        }
        self.drop_excused(&mut tasks, scan);
        let mut ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        self.seen = merge_sorted(std::mem::take(&mut self.seen), ids);
        tasks
    }

    /// The report's notes on what the project's rules hid at the deadline, by rule.
    pub(super) fn hidden_notes(&self) -> Vec<String> {
        let Some(file) = self.project else {
            return Vec::new();
        };
        let mut counts = self.hidden_by_rule.clone();
        if let Some(untracked) = &self.untracked {
            for (rule, count) in untracked.hidden_by_rule() {
                *counts.entry(rule).or_default() += count;
            }
        }
        let mut counts: Vec<(usize, usize)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        counts.sort_unstable();
        counts
            .into_iter()
            .map(|(rule, count)| file.hidden_note(rule, count))
            .collect()
    }

    pub(super) fn untracked_survivors(&mut self) -> Vec<LeakedTask> {
        let live_stacks = &self.live_stacks;
        self.untracked
            .as_mut()
            .map(|watch| watch.survivors(live_stacks))
            .unwrap_or_default()
    }

    /// Whether no untracked thread is left, after waiting for them up to `deadline` (they do not
    /// announce their exit like tracked tasks; see `census` for how the wait wakes).
    pub(super) fn untracked_settled(&mut self, deadline: Instant) -> bool {
        let live_stacks = &self.live_stacks;
        self.untracked
            .as_mut()
            .is_none_or(|watch| watch.settle(deadline, live_stacks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_survivors_merge_without_repeats() {
        let ids = |v: &[u64]| v.iter().map(|&i| TaskId(i)).collect::<Vec<_>>();
        assert_eq!(
            merge_sorted(ids(&[1, 3, 5]), ids(&[2, 3, 6])),
            ids(&[1, 2, 3, 5, 6])
        );
        assert_eq!(merge_sorted(ids(&[]), ids(&[4])), ids(&[4]));
        assert_eq!(merge_sorted(ids(&[4]), ids(&[])), ids(&[4]));
    }
}
