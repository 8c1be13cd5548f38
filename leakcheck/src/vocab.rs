//! The plain words every layer shares: which task, what kind, what state.
//!
//! A leaf: it imports nothing from the crate, so that the registry (which records tasks) and the
//! report (which describes them) can both speak of tasks without knowing each other.

/// The identity of a tracked task, unique for the life of the process.
///
/// Ids grow monotonically, which is what makes [`Options::ignore_current`](crate::Options::ignore_current)
/// free: a task alive before the options were built has a smaller id than any task spawned after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The number behind the id, as shown in reports (`#17`).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What kind of unit of execution a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// An OS thread spawned through [`leakcheck::thread`](crate::thread).
    Thread,
    /// A future registered through [`task::track`](crate::task::track) or a runtime hook.
    Async,
    /// An OS thread leakcheck did not spawn, found in the operating system's thread list.
    UntrackedThread,
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskKind::Thread => "thread",
            TaskKind::Async => "async task",
            TaskKind::UntrackedThread => "untracked thread",
        })
    }
}

/// What a tracked task is doing (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// A thread, or an async task inside `poll`.
    Running,
    /// An async task that was woken and waits to be polled.
    Scheduled,
    /// An async task that returned `Pending` and whose waker is alive somewhere.
    Idle,
    /// An async task that returned `Pending` and whose every waker has been dropped: nothing can
    /// ever wake it again.
    Lost,
    /// Blocked for a known reason, see [`LeakedTask::blocked_on`](crate::LeakedTask::blocked_on).
    Blocked,
}

impl TaskState {
    /// Every state, in declaration order (the order of their discriminants).
    pub(crate) const ALL: [TaskState; 5] = [
        TaskState::Running,
        TaskState::Scheduled,
        TaskState::Idle,
        TaskState::Lost,
        TaskState::Blocked,
    ];

    /// The lower-case name used in reports: `running`, `scheduled`, `idle`, `lost`, `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Idle => "idle",
            TaskState::Lost => "lost",
            TaskState::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
