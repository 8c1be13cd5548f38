//! The `blocking` annotation, and the mark that `sync` and `thread::sleep` put on blocking calls:
//! the current tracked task is `blocked` in a named reason, at the call site, while it lasts.

use std::panic::Location;

use crate::clock;
use crate::context;
use crate::registry::{Shared, TaskRecord};
use crate::state::{Blocked, SavedState};

/// Marks the current tracked task as blocked until dropped. Outside a tracked task it does nothing.
pub(crate) struct BlockedMark {
    task: Option<(Shared<TaskRecord>, SavedState)>,
}

impl BlockedMark {
    pub(crate) fn enter(reason: &'static str, site: &'static Location<'static>) -> BlockedMark {
        let task = context::current_task().map(|task| {
            let blocked = Blocked {
                reason,
                site,
                stack: task.blocking_stack(),
            };
            let saved = task.block(blocked, clock::now());
            (task, saved)
        });
        BlockedMark { task }
    }
}

impl Drop for BlockedMark {
    fn drop(&mut self) {
        if let Some((task, saved)) = self.task.take() {
            task.unblock(saved, clock::now());
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
    use std::sync::Arc;

    use super::*;
    use crate::registry::{open_scope, ScopeLabel};
    use crate::vocab::{TaskKind, TaskState};

    #[test]
    fn a_blocking_call_marks_the_current_task_and_restores_it() {
        let scope = open_scope(ScopeLabel::Named("blocking".into()));
        let task = {
            let _in_scope = context::enter(Arc::clone(&scope), None);
            context::register(TaskKind::Thread, None, Location::caller(), || "test")
        };
        context::in_task(&task, || {
            let site = blocking("db", || {
                assert_eq!(task.state.observe().state, TaskState::Blocked);
                task.blocked().unwrap().site
            });
            assert_eq!(site.file(), file!());
            assert_eq!(task.state.observe().state, TaskState::Running);
            assert!(task.blocked().is_none());
        });
        task.exit();
    }

    #[test]
    fn outside_a_task_blocking_just_calls() {
        assert_eq!(blocking("nothing", || 42), 42);
    }
}
