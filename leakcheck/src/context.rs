//! What is current on this thread: the scope new tasks join, and the tracked task running here.
//!
//! A tracked thread carries its task and inherited scope for its whole life; a tracked future
//! carries them only while it is being polled; a test carries the scope `#[leak_test]` opened for
//! it. A thread that has none of those (a libtest test thread using `verify_none()`, `main`) gets
//! an implicit scope of its own the first time one is needed.

use std::cell::RefCell;
use std::sync::Arc;

use crate::registry::{Scope, ScopeLabel, TaskRecord};

#[derive(Default)]
struct Context {
    /// Scopes entered on this thread, innermost last.
    scopes: Vec<Arc<Scope>>,
    /// The scope of the thread itself, created on first use.
    implicit: Option<Arc<Scope>>,
    /// The tracked task running on this thread right now.
    task: Option<Arc<TaskRecord>>,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// The scope a task spawned here joins, and the task that spawns it.
pub(crate) fn spawn_context() -> (Arc<Scope>, Option<Arc<TaskRecord>>) {
    CONTEXT.with(|cx| {
        let mut cx = cx.borrow_mut();
        let parent = cx.task.clone();
        (current_scope_of(&mut cx), parent)
    })
}

/// The scope a check run here looks at.
pub(crate) fn current_scope() -> Arc<Scope> {
    CONTEXT.with(|cx| current_scope_of(&mut cx.borrow_mut()))
}

/// The tracked task running on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<TaskRecord>> {
    CONTEXT.with(|cx| cx.borrow().task.clone())
}

/// Runs `f` with the tracked task running on this thread, if any, without cloning it.
pub(crate) fn with_current_task<R>(f: impl FnOnce(Option<&Arc<TaskRecord>>) -> R) -> R {
    CONTEXT.with(|cx| f(cx.borrow().task.as_ref()))
}

fn current_scope_of(cx: &mut Context) -> Arc<Scope> {
    if let Some(scope) = cx.scopes.last() {
        return Arc::clone(scope);
    }
    Arc::clone(cx.implicit.get_or_insert_with(|| Scope::open(implicit_label())))
}

/// libtest runs each test on a thread named after the test (`module::test_name`); any other
/// thread is labelled as a thread.
fn implicit_label() -> ScopeLabel {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" && is_rust_path(name) => ScopeLabel::Test(name.to_owned()),
        Some(name) => ScopeLabel::Thread(name.to_owned()),
        None => ScopeLabel::Thread(format!("{:?}", thread.id())),
    }
}

fn is_rust_path(name: &str) -> bool {
    name.split("::").all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && chars.all(|c| c == '_' || c.is_alphanumeric())
    })
}

/// Makes `scope` (and `task`, if given) current on this thread until the guard is dropped.
pub(crate) fn enter(scope: Arc<Scope>, task: Option<Arc<TaskRecord>>) -> ContextGuard {
    CONTEXT.with(|cx| {
        let mut cx = cx.borrow_mut();
        cx.scopes.push(scope);
        let previous_task = match task {
            Some(task) => Some(cx.task.replace(task)),
            None => None,
        };
        ContextGuard { previous_task }
    })
}

/// Restores the context that was current before [`enter`].
#[must_use]
pub(crate) struct ContextGuard {
    /// `Some(previous)` when `enter` replaced the current task.
    previous_task: Option<Option<Arc<TaskRecord>>>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let previous_task = self.previous_task.take();
        // During thread teardown the context may already be gone; there is nothing to restore.
        let _ = CONTEXT.try_with(|cx| {
            let mut cx = cx.borrow_mut();
            let left = cx.scopes.pop();
            let replaced = previous_task.map(|previous| std::mem::replace(&mut cx.task, previous));
            drop(cx);
            // Drop the Arcs outside the borrow: a last reference may run arbitrary drops.
            drop((left, replaced));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_thread_names_are_tests_and_other_names_are_threads() {
        assert!(is_rust_path("context::tests::libtest_thread_names"));
        assert!(is_rust_path("query_all"));
        assert!(!is_rust_path("tokio-runtime-worker"));
        assert!(!is_rust_path("worker 1"));
        assert!(!is_rust_path(""));
    }

    #[test]
    fn entered_scopes_nest_and_unwind() {
        let outer = current_scope();
        let inner = Scope::open(ScopeLabel::Named("inner".into()));
        {
            let _guard = enter(Arc::clone(&inner), None);
            assert_eq!(current_scope().id, inner.id);
        }
        assert_eq!(current_scope().id, outer.id);
    }
}
