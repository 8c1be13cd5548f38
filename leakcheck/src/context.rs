//! What is current on this thread: the scope new tasks join, and the tracked task running here.
//!
//! A tracked thread carries its task for its whole life; a tracked future carries it only while
//! it is being polled; a test carries the scope `#[leak_test]` opened for it. These nest as a
//! stack of frames: the innermost frame gives the current scope (a task frame gives its task's
//! scope), and the innermost task frame gives the task that spawns whatever is spawned here.
//! A thread with no frame at all (a libtest test thread using `verify_none()`, `main`) gets an
//! implicit scope of its own the first time one is needed.
//!
//! Entering a task is on the hot path of every poll, so [`enter_task`] borrows the record instead
//! of cloning `Arc`s: the frame holds a pointer that its guard's lifetime keeps valid.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::registry::{Scope, ScopeLabel, TaskRecord};

enum Frame {
    Scope(Arc<Scope>),
    OwnedTask(Arc<TaskRecord>),
    /// Valid while the [`TaskGuard`] that pushed it lives, which borrows the record.
    BorrowedTask(NonNull<TaskRecord>),
}

impl Frame {
    fn task(&self) -> Option<&TaskRecord> {
        match self {
            Frame::Scope(_) => None,
            Frame::OwnedTask(task) => Some(task),
            // SAFETY: the guard that pushed this frame borrows the record and pops the frame
            // before the borrow ends; frames are only read on their own thread.
            Frame::BorrowedTask(task) => Some(unsafe { task.as_ref() }),
        }
    }

    fn scope(&self) -> &Arc<Scope> {
        match self {
            Frame::Scope(scope) => scope,
            _ => &self.task().expect("a task frame").scope,
        }
    }
}

#[derive(Default)]
struct Context {
    /// Entered scopes and tasks, innermost last.
    frames: Vec<Frame>,
    /// The scope of the thread itself, created on first use.
    implicit: Option<Arc<Scope>>,
    /// A plain thread's own record (see [`inherit`]): current beneath every entered frame.
    inherited: Option<Inherited>,
}

/// The record of a thread created without leakcheck's wrappers, in its creator's scope.
struct Inherited {
    task: Arc<TaskRecord>,
    /// Whether the thread is named like a test (`module::test`), as a test harness names the
    /// threads it runs tests on: such a thread gets a test scope of its own instead, like any
    /// test thread. Decided on first use, once std has named the thread.
    named_like_a_test: std::cell::OnceCell<bool>,
}

impl Inherited {
    fn task(&self) -> Option<&TaskRecord> {
        let test_thread = *self.named_like_a_test.get_or_init(|| {
            std::thread::current()
                .name()
                .is_some_and(|name| name.contains("::") && is_rust_path(name))
        });
        (!test_thread).then_some(&*self.task)
    }
}

impl Context {
    fn scope(&mut self) -> Arc<Scope> {
        if let Some(frame) = self.frames.last() {
            return Arc::clone(frame.scope());
        }
        if let Some(task) = self.inherited.as_ref().and_then(Inherited::task) {
            return Arc::clone(&task.scope);
        }
        Arc::clone(
            self.implicit
                .get_or_insert_with(|| Scope::open(implicit_label())),
        )
    }

    fn task(&self) -> Option<&TaskRecord> {
        self.frames
            .iter()
            .rev()
            .find_map(Frame::task)
            .or_else(|| self.inherited.as_ref()?.task())
    }
}

/// Makes `task`, the record of this thread made by its creator, current on this thread for the
/// thread's whole life, beneath whatever is entered later: what the thread spawns joins its
/// creator's scope, as a child of `task`.
pub(crate) fn inherit(task: Arc<TaskRecord>) {
    let _ = CONTEXT.try_with(|cx| {
        cx.borrow_mut().inherited = Some(Inherited {
            task,
            named_like_a_test: std::cell::OnceCell::new(),
        });
    });
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// Another strong reference to a record we can see is alive.
fn share(task: &TaskRecord) -> Arc<TaskRecord> {
    let task: *const TaskRecord = task;
    // SAFETY: every record is allocated in an `Arc` (see `TaskRecord::register_in`), and a
    // record reachable from a frame is alive; the new reference is owned by the returned `Arc`.
    unsafe {
        Arc::increment_strong_count(task);
        Arc::from_raw(task)
    }
}

/// The scope a task spawned here joins, and the task that spawns it.
pub(crate) fn spawn_context() -> (Arc<Scope>, Option<Arc<TaskRecord>>) {
    CONTEXT
        .try_with(|cx| {
            let mut cx = cx.borrow_mut();
            let parent = cx.task().map(share);
            (cx.scope(), parent)
        })
        .unwrap_or_else(|_| (teardown_scope(), None))
}

/// The scope a check run here looks at.
pub(crate) fn current_scope() -> Arc<Scope> {
    CONTEXT
        .try_with(|cx| cx.borrow_mut().scope())
        .unwrap_or_else(|_| teardown_scope())
}

/// The tracked task running on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<TaskRecord>> {
    CONTEXT
        .try_with(|cx| cx.borrow().task().map(share))
        .ok()
        .flatten()
}

/// Runs `f` with the tracked task running on this thread, if any, without cloning it.
pub(crate) fn with_current_task<R>(f: impl FnOnce(Option<&TaskRecord>) -> R) -> R {
    let mut f = Some(f);
    let result = CONTEXT.try_with(|cx| (f.take().expect("called once"))(cx.borrow().task()));
    result.unwrap_or_else(|_| (f.take().expect("not called while the context is gone"))(None))
}

/// The scope of code that runs in this thread's thread-local destructors, after its context is
/// gone: a scope of its own, so that nothing done there can fail or be blamed on a test.
fn teardown_scope() -> Arc<Scope> {
    let thread = std::thread::current();
    let name = thread
        .name()
        .map_or_else(|| format!("{:?}", thread.id()), str::to_owned);
    Scope::open(ScopeLabel::Thread(format!(
        "{name} (thread-local teardown)"
    )))
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

/// Makes `scope` (and `task`, if given, which then runs in `scope`) current on this thread until
/// the guard is dropped.
///
/// During thread-local teardown, when the context is gone, nothing becomes current.
pub(crate) fn enter(scope: Arc<Scope>, task: Option<Arc<TaskRecord>>) -> ContextGuard {
    let pushed = CONTEXT.try_with(|cx| {
        let mut cx = cx.borrow_mut();
        cx.frames.push(Frame::Scope(scope));
        match task {
            Some(task) => {
                cx.frames.push(Frame::OwnedTask(task));
                2
            }
            None => 1,
        }
    });
    ContextGuard {
        pushed: pushed.unwrap_or(0),
    }
}

/// Makes `task` (and its scope) current on this thread while the guard lives.
#[inline]
pub(crate) fn enter_task(task: &Arc<TaskRecord>) -> TaskGuard<'_> {
    let frame = Frame::BorrowedTask(NonNull::from(&**task));
    let pushed = CONTEXT
        .try_with(|cx| cx.borrow_mut().frames.push(frame))
        .is_ok();
    TaskGuard {
        pushed,
        _task: PhantomData,
    }
}

/// Restores the context that was current before [`enter`].
#[must_use]
pub(crate) struct ContextGuard {
    pushed: usize,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        pop(self.pushed);
    }
}

/// Restores the context that was current before [`enter_task`]; borrows the task meanwhile.
#[must_use]
pub(crate) struct TaskGuard<'a> {
    pushed: bool,
    _task: PhantomData<&'a TaskRecord>,
}

impl Drop for TaskGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        pop(usize::from(self.pushed));
    }
}

fn pop(count: usize) {
    // Guards are scoped and crate-private, so frames are popped in the order they were pushed.
    for _ in 0..count {
        // During thread teardown the context may already be gone; there is nothing to restore.
        let frame = CONTEXT
            .try_with(|cx| cx.borrow_mut().frames.pop())
            .ok()
            .flatten();
        // Dropped outside the borrow: a last reference may run arbitrary drops.
        drop(frame);
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
