//! The machine-readable report, and its files in `LEAKCHECK_REPORT_DIR`.
//!
//! Bounded like the text report: survivors are grouped as the text groups them, each group with
//! its count and its first task ids, and groups are written largest first until [`BUDGET`] bytes
//! are spent; the rest are counted under `omitted`. A hundred thousand survivors give a few
//! hundred KiB at most, not one object each.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::vocab::{TaskId, TaskKind, TaskState};

use super::group::{group, Group};
use super::{LeakReport, OsThread, ParentTask, Site, Stack};

/// The most bytes of groups one JSON report holds.
const BUDGET: usize = 256 * 1024;
/// Task ids, OS thread ids and names listed per group.
const LISTED: usize = 16;

pub(super) fn seconds<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

pub(super) fn optional_seconds<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => seconds(duration, serializer),
        None => serializer.serialize_none(),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    checked: &'a str,
    #[serde(serialize_with = "seconds")]
    waited: Duration,
    exited_while_waiting: usize,
    /// Every leak, identified or not.
    leak_count: usize,
    /// Async tasks a runtime counted alive that leakcheck never saw spawn.
    unidentified_async: usize,
    notes: &'a [String],
    groups: Vec<JsonGroup<'a>>,
    omitted: Omitted,
}

/// What the budget left out.
#[derive(Serialize)]
struct Omitted {
    groups: usize,
    tasks: usize,
}

/// A range of durations, in seconds.
#[derive(Serialize)]
struct Range {
    #[serde(serialize_with = "seconds")]
    min: Duration,
    #[serde(serialize_with = "seconds")]
    max: Duration,
}

impl From<(Duration, Duration)> for Range {
    fn from((min, max): (Duration, Duration)) -> Range {
        Range { min, max }
    }
}

/// One group: what its tasks share, how many they are, and the first of them.
#[derive(Serialize)]
struct JsonGroup<'a> {
    count: usize,
    kind: TaskKind,
    /// The name every task has once its digits read `N`.
    name: Option<&'a str>,
    spawned_at: Option<&'a Site>,
    scope: Option<&'a str>,
    runs: Option<&'a str>,
    state: TaskState,
    /// For an `idle` async task (or one whose wait a task dump's stack told): whether leakcheck
    /// saw its wakers, so that a held waker is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    wakers_observed: Option<bool>,
    blocked_on: Option<&'a str>,
    blocked_at: Option<&'a Site>,
    /// For a `blocked` task: whether its reason was read from a stack (a thread's live stack, a
    /// task dump's async stack) rather than recorded by an instrumented call or annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_inferred: Option<bool>,
    /// What more an inferred wait's stack says: `buffer full`, `rendezvous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_detail: Option<&'a str>,
    in_state_for: Range,
    last_polled_ago: Option<Range>,
    #[serde(serialize_with = "seconds")]
    oldest: Duration,
    parents: &'a [ParentTask],
    stack: Option<&'a Stack>,
    /// How many of the group's tasks have that stack.
    stack_shared_by: usize,
    stack_unavailable: Option<&'a str>,
    /// The first tasks' ids (tracked tasks), in spawn order.
    task_ids: Vec<TaskId>,
    /// The first tasks' names.
    names: Vec<&'a str>,
    /// What the kernel says about the first tasks' OS threads.
    os_threads: Vec<&'a OsThread>,
}

fn json_group<'a>(group: &'a Group<'a>) -> JsonGroup<'a> {
    let task = group.representative();
    let (stack, stack_shared_by) = match group.common_stack() {
        Some((stack, shared_by)) => (Some(stack), shared_by),
        None => (None, 0),
    };
    JsonGroup {
        count: group.tasks.len(),
        kind: task.kind,
        name: group.name.as_deref(),
        spawned_at: task.spawned_at.as_ref(),
        scope: task.scope.as_deref(),
        runs: task.runs.as_deref(),
        state: task.state,
        // Also for a wait inferred from a dump's stack: that task was `idle`.
        wakers_observed: (task.kind == TaskKind::Async
            && (task.state == TaskState::Idle || task.wait_inferred))
            .then_some(task.wakers_observed),
        blocked_on: task.blocked_on.as_deref(),
        blocked_at: task.blocked_at.as_ref(),
        wait_inferred: (task.state == TaskState::Blocked).then_some(task.wait_inferred),
        wait_detail: task.wait_detail.as_deref(),
        in_state_for: group.in_state_for().into(),
        last_polled_ago: group.last_polled_ago().map(Range::from),
        oldest: group.tasks.iter().map(|t| t.age).max().unwrap_or_default(),
        parents: group.parents(),
        stack,
        stack_shared_by,
        stack_unavailable: if stack.is_none() {
            task.stack_unavailable.as_deref()
        } else {
            None
        },
        task_ids: group
            .tasks
            .iter()
            .filter_map(|t| t.id)
            .take(LISTED)
            .collect(),
        names: group
            .tasks
            .iter()
            .filter_map(|t| t.name.as_deref())
            .take(LISTED)
            .collect(),
        os_threads: group
            .tasks
            .iter()
            .filter_map(|t| t.os_thread.as_ref())
            .take(LISTED)
            .collect(),
    }
}

/// The report as pretty-printed JSON, bounded by [`BUDGET`].
pub(super) fn render(report: &LeakReport) -> String {
    let groups = group(&report.tasks);
    let mut shown = Vec::new();
    let mut spent = 0;
    let mut omitted = Omitted {
        groups: 0,
        tasks: 0,
    };
    for group in &groups {
        if spent < BUDGET {
            let json = json_group(group);
            // Measured as written: pretty, one level of indentation deeper.
            let text = serde_json::to_string_pretty(&json).expect("a group always serialises");
            let cost = text.len() + 4 * text.lines().count();
            if spent + cost <= BUDGET || shown.is_empty() {
                spent += cost;
                shown.push(json);
                continue;
            }
            spent = BUDGET;
        }
        omitted.groups += 1;
        omitted.tasks += group.tasks.len();
    }
    let json = JsonReport {
        checked: &report.checked,
        waited: report.waited,
        exited_while_waiting: report.exited_while_waiting,
        leak_count: report.leak_count(),
        unidentified_async: report.unidentified_async,
        notes: &report.notes,
        groups: shown,
        omitted,
    };
    serde_json::to_string_pretty(&json).expect("a report always serialises")
}

/// The longest slug of a label a report file name holds: with its prefix, hash and counters the
/// name stays far below the 255 bytes file systems allow.
const SLUG_LIMIT: usize = 64;

/// A file name part made of `label`: its letters, digits, `_` and `-`, cut to [`SLUG_LIMIT`], with
/// a short hash of the whole label when it was cut, so that long labels stay apart.
fn slug(label: &str) -> String {
    let mut slug = String::with_capacity(label.len().min(SLUG_LIMIT));
    for c in label.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && (slug.is_empty() || slug.ends_with('_'))) {
            slug.push(c);
        }
    }
    let slug = slug.trim_end_matches('_');
    if slug.len() <= SLUG_LIMIT {
        return slug.to_owned();
    }
    let mut hasher = DefaultHasher::new();
    label.hash(&mut hasher);
    format!(
        "{}-{:08x}",
        slug[..SLUG_LIMIT].trim_end_matches('_'),
        hasher.finish() as u32
    )
}

impl LeakReport {
    /// Writes the report as JSON into `dir`, in a file named after what was checked, and
    /// returns its path. The name is unique within the process, so parallel failing tests and
    /// several checks in one test never overwrite each other.
    pub(crate) fn write_json_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(dir)?;
        let name = format!(
            "leakcheck-{}-{}-{}.json",
            slug(&self.checked),
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        std::fs::write(&path, self.to_json())?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LeakedTask;

    /// A report of one async task, blocked in `chan receive`, whose wakers leakcheck saw.
    fn blocked_async_task(wait_inferred: bool) -> LeakReport {
        let task = LeakedTask {
            id: None,
            kind: TaskKind::Async,
            name: None,
            spawned_at: Some(Site::new("src/lib.rs", 3, 5)),
            user_site: None,
            age: Duration::from_secs(1),
            scope: Some("test `t`".to_owned()),
            runs: None,
            state: TaskState::Blocked,
            in_state_for: Duration::from_secs(1),
            blocked_on: Some("chan receive".to_owned()),
            blocked_at: Some(Site::new("src/lib.rs", 4, 0)),
            wait_inferred,
            wait_detail: None,
            last_polled_ago: Some(Duration::from_secs(1)),
            wakers_observed: true,
            parents: Vec::new(),
            stack: None,
            stack_unavailable: None,
            os_thread: None,
        };
        LeakReport {
            checked: "test `t`".to_owned(),
            waited: Duration::from_secs(1),
            exited_while_waiting: 0,
            tasks: vec![task],
            notes: Vec::new(),
            unidentified_async: 0,
            unusable: None,
        }
    }

    #[test]
    fn a_wait_read_from_a_stack_says_so_and_keeps_what_is_known_of_the_wakers() {
        let json: serde_json::Value =
            serde_json::from_str(&blocked_async_task(true).to_json()).unwrap();
        let group = &json["groups"][0];
        assert_eq!(group["state"], "blocked", "{json}");
        assert_eq!(group["wait_inferred"], true, "{json}");
        assert_eq!(group["wakers_observed"], true, "{json}");

        // An annotated wait says where it waits itself: nothing about wakers.
        let json: serde_json::Value =
            serde_json::from_str(&blocked_async_task(false).to_json()).unwrap();
        let group = &json["groups"][0];
        assert_eq!(group["wait_inferred"], false, "{json}");
        assert!(group.get("wakers_observed").is_none(), "{json}");
    }

    #[test]
    fn short_labels_read_as_they_are() {
        assert_eq!(
            slug("test `pool::tests::query_all`"),
            "test_pool_tests_query_all"
        );
        assert_eq!(slug("scope `a\nb`"), "scope_a_b");
    }

    #[test]
    fn long_labels_are_cut_and_kept_apart_by_a_hash() {
        let long = "x".repeat(300);
        let (a, b) = (slug(&format!("{long}1")), slug(&format!("{long}2")));
        assert!(a.len() <= SLUG_LIMIT + 9, "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with("xxxx"));
    }
}
