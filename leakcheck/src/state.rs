//! Task states (SPEC §3) and the blocking annotations that set them.
//!
//! A task's state and the moment it entered it are packed into one atomic word, because async
//! tasks change state on every poll. The details of a `blocked` state (reason, site, stack) live
//! beside it under a lock that only blocking calls and reports touch.

use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock;
use crate::config::CaptureLevel;
use crate::context;
use crate::registry::{TaskKind, TaskRecord};

/// What a tracked task is doing (SPEC §3).
///
/// More states may be told apart in future versions: match with a `_` arm.
///
/// ```compile_fail,E0004
/// // Without a `_` arm, this does not compile outside leakcheck.
/// fn every(value: leakcheck::TaskState) {
///     match value {
///         leakcheck::TaskState::Running | leakcheck::TaskState::Scheduled | leakcheck::TaskState::Idle | leakcheck::TaskState::Lost | leakcheck::TaskState::Blocked => {}
///     }
/// }
/// ```
#[non_exhaustive]
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
    const ALL: [TaskState; 5] = [
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

/// Why and where a task is blocked.
#[derive(Clone)]
pub(crate) struct Blocked {
    pub(crate) reason: &'static str,
    pub(crate) site: &'static Location<'static>,
    /// The stack when it blocked, at capture level `backtrace`.
    pub(crate) stack: Option<Arc<backtrace::Backtrace>>,
}

const STATE_SHIFT: u32 = 61;
const SINCE_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// A task's state and since when, in one atomic word, plus the details of a `blocked` state.
pub(crate) struct StateCell {
    word: AtomicU64,
    blocked: Mutex<Option<Blocked>>,
}

impl StateCell {
    pub(crate) fn new(kind: TaskKind, now: u64) -> StateCell {
        // A thread runs from the start; a future waits for its first poll.
        let initial = match kind {
            TaskKind::Async => TaskState::Scheduled,
            _ => TaskState::Running,
        };
        StateCell {
            word: AtomicU64::new(pack(initial, now)),
            blocked: Mutex::new(None),
        }
    }

    /// The state and the clock reading when it was entered.
    #[inline]
    pub(crate) fn load(&self) -> (TaskState, u64) {
        unpack(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn set(&self, state: TaskState, now: u64) {
        self.word.store(pack(state, now), Ordering::Release);
    }

    /// Moves from `from` to `to`, unless another thread changed the state in between.
    #[inline]
    pub(crate) fn transition(&self, from: TaskState, to: TaskState, now: u64) -> bool {
        let current = self.word.load(Ordering::Acquire);
        unpack(current).0 == from
            && self
                .word
                .compare_exchange(current, pack(to, now), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The details of the current `blocked` state, if any.
    pub(crate) fn blocked(&self) -> Option<Blocked> {
        self.blocked.lock().clone()
    }

    /// Enters `blocked`, returning what to restore when the blocking call returns.
    pub(crate) fn block(&self, blocked: Blocked) -> SavedState {
        let previous_details = self.blocked.lock().replace(blocked);
        let previous_word = self
            .word
            .swap(pack(TaskState::Blocked, clock::now()), Ordering::AcqRel);
        SavedState {
            word: previous_word,
            details: previous_details,
        }
    }

    /// Leaves `blocked`, back to what [`block`](Self::block) saved.
    pub(crate) fn unblock(&self, saved: SavedState) {
        *self.blocked.lock() = saved.details;
        let (state, since) = unpack(saved.word);
        // Back in an outer blocking call (`blocking("db", || rx.recv())`), the task has been
        // blocked in it all along; any other state starts now.
        let since = if state == TaskState::Blocked {
            since
        } else {
            clock::now()
        };
        self.set(state, since);
    }
}

/// The state a blocking call interrupted.
pub(crate) struct SavedState {
    word: u64,
    details: Option<Blocked>,
}

#[inline]
fn pack(state: TaskState, since: u64) -> u64 {
    ((state as u64) << STATE_SHIFT) | (since & SINCE_MASK)
}

#[inline]
fn unpack(word: u64) -> (TaskState, u64) {
    (
        TaskState::ALL[(word >> STATE_SHIFT) as usize],
        word & SINCE_MASK,
    )
}

/// The stack to keep for `task` as it blocks, at its scope's capture level.
pub(crate) fn blocked_stack(task: &TaskRecord) -> Option<Arc<backtrace::Backtrace>> {
    match task.scope.capture_level() {
        CaptureLevel::Location => None,
        CaptureLevel::Backtrace => Some(Arc::new(backtrace::Backtrace::new_unresolved())),
    }
}

/// Marks the current tracked task as blocked until dropped. Outside a tracked task it does nothing.
pub(crate) struct BlockedMark {
    task: Option<(Arc<TaskRecord>, SavedState)>,
}

impl BlockedMark {
    pub(crate) fn enter(reason: &'static str, site: &'static Location<'static>) -> BlockedMark {
        let task = context::current_task().map(|task| {
            let saved = task.state.block(Blocked {
                reason,
                site,
                stack: blocked_stack(&task),
            });
            (task, saved)
        });
        BlockedMark { task }
    }
}

impl Drop for BlockedMark {
    fn drop(&mut self) {
        if let Some((task, saved)) = self.task.take() {
            task.state.unblock(saved);
        }
    }
}

/// Marks a blocking call, so that a report shows the task blocked in `reason` at this call site,
/// and since when, instead of merely `running`.
///
/// Use it around any call that can wait indefinitely and that leakcheck does not instrument
/// itself: a socket read, a condition variable, a foreign library's wait.
///
/// ```
/// let line = leakcheck::blocking("stdin read", || {
///     let mut line = String::new();
///     std::io::stdin().read_line(&mut line).map(|_| line)
/// });
/// # let _ = line;
/// ```
///
/// Outside a tracked task it simply calls `f`.
#[track_caller]
pub fn blocking<R>(reason: &'static str, f: impl FnOnce() -> R) -> R {
    let _mark = BlockedMark::enter(reason, Location::caller());
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_state() {
        for state in TaskState::ALL {
            assert_eq!(unpack(pack(state, 123_456_789)), (state, 123_456_789));
        }
    }
}
