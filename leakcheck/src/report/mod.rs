//! The leak report: what a failing check says, for a person (text) and for tools (JSON).
//!
//! A report is built from owned snapshots ([`LeakedTask`]), never from live records, so it stays
//! true to the moment of the check however the tasks move on afterwards (a tokio runtime's task
//! dump, taken a moment later, only adds async stacks and what they say a pending task waits
//! in). It knows nothing of the registry: plain data (this module), grouping, text, JSON, and
//! stacks.

mod escape;
mod group;
mod json;
mod resolve;
mod stack;
mod text;
mod trim;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::vocab::{TaskId, TaskKind, TaskState};

pub(crate) use group::name_pattern;
pub(crate) use resolve::{resolve_stacks, resolve_stacks_whole, PendingStack};
pub use stack::{Frame, Stack, StackOrigin};
#[cfg(feature = "tokio")]
pub(crate) use text::human;

/// A failed check: the tasks that survived the grace period, and what they were doing.
///
/// Its [`Display`](fmt::Display) is the text report; [`tasks`](Self::tasks) gives the same content
/// for assertions and tools.
///
/// ```
/// use std::time::Duration;
/// use leakcheck::{sync::mpsc, thread, Options, TaskState};
///
/// // The grace period also gives the sender time to reach its `send`.
/// let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(300)));
/// let (tx, rx) = mpsc::sync_channel::<u32>(0);
/// thread::spawn(move || { let _ = tx.send(1); });
/// let report = guard.verify().unwrap_err();
/// assert_eq!(report.tasks().len(), 1);
/// assert_eq!(report.tasks()[0].state(), TaskState::Blocked);
/// assert_eq!(report.tasks()[0].blocked_on(), Some("chan send"));
/// drop(rx); // lets the sender go
/// ```
#[derive(Clone)]
pub struct LeakReport {
    /// What was checked: "test `a::b`", "scope `x`", or "the process".
    pub(crate) checked: String,
    pub(crate) waited: Duration,
    pub(crate) exited_while_waiting: usize,
    pub(crate) tasks: Vec<LeakedTask>,
    /// Things the reader must know that are not tasks: untracked tasks counted by a runtime,
    /// untracked threads left to the global check, platform limits.
    pub(crate) notes: Vec<String>,
    /// Async tasks a runtime counted alive that leakcheck never saw spawn (no site, no stack).
    pub(crate) unidentified_async: usize,
    /// Why the check could not run at all (a malformed setting), if it could not.
    pub(crate) unusable: Option<Box<str>>,
}

impl LeakReport {
    /// The report of a check that could not run, saying why.
    pub(crate) fn unusable(checked: String, error: String) -> LeakReport {
        LeakReport {
            checked,
            waited: Duration::ZERO,
            exited_while_waiting: 0,
            tasks: Vec::new(),
            notes: Vec::new(),
            unidentified_async: 0,
            unusable: Some(error.into_boxed_str()),
        }
    }

    /// Adds what `later` found, a check of another scope for the same test (stuck blocking jobs
    /// after a tokio test's shutdown): its survivors, after ours, its notes that this report does
    /// not have already, and its wait. What was checked and how many tasks exited while waiting
    /// stay this report's.
    #[cfg(feature = "tokio")]
    pub(crate) fn include(&mut self, later: LeakReport) {
        self.waited += later.waited;
        self.tasks.extend(later.tasks);
        self.unidentified_async += later.unidentified_async;
        for note in later.notes {
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
    }

    /// Why the check could not run at all, if it could not: a malformed `LEAKCHECK*` variable
    /// or project ignore file, named with the values it accepts. Such a report has no tasks.
    pub fn check_error(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// Every unexpected survivor, in spawn order.
    pub fn tasks(&self) -> &[LeakedTask] {
        &self.tasks
    }

    /// What the check looked at: "test `pool::tests::query_all`", "scope `name`", "the process".
    pub fn checked(&self) -> &str {
        &self.checked
    }

    /// How long the check waited for the survivors to finish.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Remarks that are not about one task (for example untracked tasks a runtime counted).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The report as JSON, as written to `LEAKCHECK_REPORT_DIR`: the survivors grouped as in the
    /// text report, each group with its count and its first task ids, bounded in size however
    /// many survivors there are (what it leaves out is counted under `omitted`).
    pub fn to_json(&self) -> String {
        json::render(self)
    }

    /// Async tasks that a runtime counted alive but that leakcheck did not see spawn, so knows
    /// nothing more about (see the report's notes for how to get their spawn sites).
    pub fn unidentified_async_tasks(&self) -> usize {
        self.unidentified_async
    }

    /// How many leaks the report holds, identified or not.
    pub fn leak_count(&self) -> usize {
        self.tasks.len() + self.unidentified_async
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::render(self))
    }
}

impl fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `unwrap_err()` and `{:?}` in test failures should show the readable report.
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LeakReport {}

/// A source position: `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Site {
    file: String,
    line: u32,
    column: u32,
}

impl Site {
    pub(crate) fn new(file: &str, line: u32, column: u32) -> Site {
        Site {
            // A dependency's `#[track_caller]` site is an absolute path into cargo's caches.
            file: crate::symbols::short_path(file).into_owned(),
            line,
            column,
        }
    }

    pub(crate) fn from_location(location: &std::panic::Location<'_>) -> Site {
        Site::new(location.file(), location.line(), location.column())
    }

    /// The source file, as the compiler named it (`tests/pool.rs`, `src/lib.rs`); a dependency's
    /// as `name-version/src/…`.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, from 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1; 0 for a site read from a stack whose debug info does not say.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Column 0: debug info (of a stack frame) did not say.
        match self.column {
            0 => write!(f, "{}:{}", self.file, self.line),
            column => write!(f, "{}:{}:{column}", self.file, self.line),
        }
    }
}

/// The tracked task that spawned a survivor (or an ancestor of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ParentTask {
    pub(crate) id: TaskId,
    pub(crate) kind: TaskKind,
    pub(crate) name: Option<String>,
    pub(crate) spawned_at: Site,
    pub(crate) exited: bool,
}

impl ParentTask {
    /// The parent's id.
    pub fn id(&self) -> TaskId {
        self.id
    }
    /// Thread or async task.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }
    /// The parent's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Where the parent was spawned.
    pub fn spawned_at(&self) -> &Site {
        &self.spawned_at
    }
    /// Whether the parent had already ended when the report was built.
    pub fn exited(&self) -> bool {
        self.exited
    }
}

/// What the kernel says about an OS thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct OsThread {
    pub(crate) tid: i64,
    /// The kernel's one-letter state with its meaning, such as `S (sleeping)`.
    pub(crate) kernel_state: String,
    /// What the kernel says the thread waits in (`wchan`), such as `futex_wait_queue`.
    pub(crate) waiting_in: Option<String>,
}

impl OsThread {
    /// The kernel's thread id.
    pub fn tid(&self) -> i64 {
        self.tid
    }
    /// The kernel's scheduling state, such as `S (sleeping)`.
    pub fn kernel_state(&self) -> &str {
        &self.kernel_state
    }
    /// The kernel function the thread sleeps in, when the kernel says.
    pub fn waiting_in(&self) -> Option<&str> {
        self.waiting_in.as_deref()
    }
}

/// One unexpected survivor of a check.
#[derive(Clone, Debug, Serialize)]
pub struct LeakedTask {
    pub(crate) id: Option<TaskId>,
    pub(crate) kind: TaskKind,
    pub(crate) name: Option<String>,
    pub(crate) spawned_at: Option<Site>,
    /// For a thread a dependency created (a pool, a runtime) without leakcheck's wrappers: the
    /// user's code that led to its creation.
    pub(crate) user_site: Option<Site>,
    /// How long ago it was spawned (for an untracked thread: first seen).
    #[serde(serialize_with = "json::seconds")]
    pub(crate) age: Duration,
    /// The scope (test) the task belongs to, as "test `name`".
    pub(crate) scope: Option<String>,
    /// The type name of the closure or future it runs.
    pub(crate) runs: Option<String>,
    pub(crate) state: TaskState,
    #[serde(serialize_with = "json::seconds")]
    pub(crate) in_state_for: Duration,
    pub(crate) blocked_on: Option<String>,
    pub(crate) blocked_at: Option<Site>,
    /// Whether `blocked_on` was read from a stack (a thread's live stack, a task dump's async
    /// stack) rather than recorded.
    pub(crate) wait_inferred: bool,
    /// What more the stack says about the wait (`buffer full`, `rendezvous`).
    pub(crate) wait_detail: Option<String>,
    #[serde(serialize_with = "json::optional_seconds")]
    pub(crate) last_polled_ago: Option<Duration>,
    /// For an async task, whether leakcheck sees its wakers (a tracked future) and so knows that
    /// an `idle` task's waker is held somewhere; a task seen through a runtime's hooks is only
    /// known to be pending.
    #[serde(skip)]
    pub(crate) wakers_observed: bool,
    pub(crate) parents: Vec<ParentTask>,
    pub(crate) stack: Option<Stack>,
    /// Why there is no stack, when one was looked for and could not be had.
    pub(crate) stack_unavailable: Option<String>,
    pub(crate) os_thread: Option<OsThread>,
}

impl LeakedTask {
    /// The tracked task's id; `None` for an untracked thread.
    pub fn id(&self) -> Option<TaskId> {
        self.id
    }
    /// Thread, async task, or untracked thread.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }
    /// The task's name (a thread's name, or the name given to an async task).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Where it was spawned (`file:line:column`); `None` for an untracked thread.
    pub fn spawned_at(&self) -> Option<&Site> {
        self.spawned_at.as_ref()
    }
    /// For a thread created without leakcheck's wrappers by a dependency (a pool crate, a
    /// runtime), whose spawn site is therefore in that dependency: the first frame of the user's
    /// own code on the way there.
    pub fn user_site(&self) -> Option<&Site> {
        self.user_site.as_ref()
    }
    /// How long ago it was spawned.
    pub fn age(&self) -> Duration {
        self.age
    }
    /// The scope it belongs to, such as "test `pool::tests::query_all`".
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
    /// The name of the test it belongs to, if its scope is a test.
    pub fn test(&self) -> Option<&str> {
        let scope = self.scope.as_deref()?;
        scope.strip_prefix("test `")?.strip_suffix('`')
    }
    /// The type of the closure or future it runs, which names the function that spawned it.
    pub fn runs(&self) -> Option<&str> {
        self.runs.as_deref()
    }
    /// Its state when the report was built.
    pub fn state(&self) -> TaskState {
        self.state
    }
    /// How long it had been in that state.
    pub fn in_state_for(&self) -> Duration {
        self.in_state_for
    }
    /// What it is blocked on (`chan send`, `chan receive`, `sleep`, a reason given to
    /// [`blocking`](crate::blocking)), when blocked.
    pub fn blocked_on(&self) -> Option<&str> {
        self.blocked_on.as_deref()
    }
    /// Where it blocked, when blocked.
    pub fn blocked_at(&self) -> Option<&Site> {
        self.blocked_at.as_ref()
    }
    /// Whether [`blocked_on`](Self::blocked_on) was inferred from a stack rather than recorded by
    /// an instrumented call: a thread's live stack (a thread no annotation describes), or the
    /// async stack a tokio task dump took of a pending task.
    pub fn wait_is_inferred(&self) -> bool {
        self.wait_inferred
    }
    /// What more the stack says about an inferred wait: `buffer full` (a send on a bounded
    /// channel whose buffer is full) or `rendezvous` (a send on a zero-capacity channel).
    pub fn wait_detail(&self) -> Option<&str> {
        self.wait_detail.as_deref()
    }
    /// For an async task, how long ago it was last polled (`None` if never).
    pub fn last_polled_ago(&self) -> Option<Duration> {
        self.last_polled_ago
    }
    /// The chain of tracked tasks that spawned it, nearest first.
    pub fn parents(&self) -> &[ParentTask] {
        &self.parents
    }
    /// Its stack, if one could be had, labelled with how it was obtained.
    pub fn stack(&self) -> Option<&Stack> {
        self.stack.as_ref()
    }
    /// What the kernel says about it, for a thread on a platform that says.
    pub fn os_thread(&self) -> Option<&OsThread> {
        self.os_thread.as_ref()
    }
}
