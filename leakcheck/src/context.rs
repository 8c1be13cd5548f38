//! What is current on this thread: the scope new tasks join, and the tracked task running here.
//!
//! A tracked thread carries its task for its whole life; a tracked future carries it only while
//! it is being polled; a test carries the scope `#[leak_test]` opened for it. These nest as a
//! stack of frames: the innermost frame gives the current scope (a task frame gives its task's
//! scope), and the innermost task frame gives the task that spawns whatever is spawned here.
//! A thread with no frame at all (a libtest test thread using `verify_none()`, `main`) gets an
//! implicit scope of its own the first time one is needed, unless it was created plainly in a
//! scope: then the record its creator made for it ([`inherit`]) is its task beneath every frame,
//! and its scope is its creator's.
//!
//! Entering a task is on the hot path of every poll, so [`in_task`] borrows the record instead
//! of cloning references, and keeps it apart from the stack of frames: a thread-local slot holds
//! the record's pointer for the duration of a closure, which the borrow keeps valid, and the
//! token of the first frame entered inside it, which tells the frames inside the task from those
//! outside. That pointer is the one `unsafe` here. (A closure, not a guard: a guard could be
//! leaked with `mem::forget`, leaving the pointer behind after the borrow.)
//!
//! Guards are `!Send` (a frame belongs to the thread that pushed it), and each removes exactly
//! the frames it pushed, found by a token, even if guards are dropped out of order.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use crate::registry::{self, open_scope, EntryName, Listed, Scope, ScopeLabel, Shared, TaskRecord};
use crate::vocab::TaskKind;

enum Frame {
    Scope(Arc<Scope>),
    OwnedTask(Shared<TaskRecord>),
}

impl Frame {
    fn task(&self) -> Option<&Shared<TaskRecord>> {
        match self {
            Frame::Scope(_) => None,
            Frame::OwnedTask(task) => Some(task),
        }
    }

    fn scope(&self) -> &Arc<Scope> {
        match self {
            Frame::Scope(scope) => scope,
            Frame::OwnedTask(task) => &task.scope,
        }
    }
}

/// The task whose closure [`in_task`] runs on this thread right now, which borrows its record for
/// the closure (or whose poll the runtime hooks entered, `enter_hook_poll`): every poll of a
/// tracked future enters one, so it is two words of a thread local, saved and restored, not a
/// frame on the stack.
#[derive(Clone, Copy)]
struct Borrowed {
    /// `Shared::as_ptr` of the record (or `Listed::as_ptr`, the same block's); null for none.
    task: *const TaskRecord,
    /// The token the next guard got when the task was entered: frames with a token at least this
    /// were entered inside its closure, so they are inside the task. (Tokens grow as frames are
    /// pushed, and frames stay in push order, so those are the top ones.)
    mark: u64,
}

impl Borrowed {
    const NONE: Borrowed = Borrowed {
        task: std::ptr::null(),
        mark: 0,
    };

    fn task(&self) -> Option<&TaskRecord> {
        // SAFETY: a non-null `task` was set on this thread either by the `in_task` (or
        // `in_listed_task`) call that runs now, lower on the stack, which borrows a reference to
        // the record (or its listed handle) for as long as it runs and puts the previous value
        // back before it returns or unwinds (its private guard cannot be leaked); or by
        // `enter_hook_poll`, whose `HookPoll` holds a reference to the record and puts the
        // previous value back before it lets the reference go. Both nest (see
        // `RestoreBorrowed`). The reference is tied to this copy, which lives no longer than the
        // caller's look at the context.
        unsafe { self.task.as_ref() }
    }

    /// Another strong reference to the borrowed task.
    fn share(&self) -> Option<Shared<TaskRecord>> {
        self.task()?;
        // SAFETY: the record is alive (see `task`), and the pointer is `Shared::as_ptr` of a
        // live reference or `Listed::as_ptr` of a live handle, so it has the provenance of the
        // whole block, count included; the reference added here is the one the returned
        // `Shared` owns.
        unsafe { Some(Shared::clone_from_raw(self.task)) }
    }
}

struct Context {
    /// Entered scopes and tasks, innermost last, each with the token of the guard that pushed it
    /// (so in token order).
    frames: Vec<(u64, Frame)>,
    /// The scope of the thread itself, created on first use.
    implicit: Option<Arc<Scope>>,
    /// A plain thread's own record (see [`inherit`]): current beneath every entered frame.
    inherited: Option<Inherited>,
}

/// The record of a thread created without leakcheck's wrappers, in its creator's scope.
///
/// Some threads act as tests of their own, as harnesses (real or simulated) run tests: those get
/// their own implicit scope instead, like any test thread, and what they spawn joins it: a
/// thread on which a check opens outside any frame, and a thread named like a test that was
/// created where no check looks (by the main thread outside any scope, as libtest creates its
/// test threads, or by a harness of one's own). A name never lets a thread created in a checked
/// scope escape it: `worker::io` is as likely a worker's name.
struct Inherited {
    task: Shared<TaskRecord>,
    /// Whether the main thread created this thread outside any scope, as libtest creates the
    /// threads it runs tests on.
    created_by_harness: bool,
    /// Whether the thread is named like a test (`module::test`), as a test harness names the
    /// threads it runs tests on, and was created where that may make it one (see above).
    /// Decided on first use, once std has named the thread.
    named_like_a_test: std::cell::OnceCell<bool>,
    /// Set when a check opened on this thread outside any frame: the thread checks (and spawns
    /// into) a scope of its own from then on.
    checks_itself: std::cell::Cell<bool>,
}

impl Inherited {
    /// The thread's own record, unless the thread acts as a test of its own (see [`Inherited`]).
    fn task(&self) -> Option<&Shared<TaskRecord>> {
        let test_thread = *self.named_like_a_test.get_or_init(|| {
            (self.created_by_harness || !self.task.scope.is_checked())
                && std::thread::current()
                    .name()
                    .is_some_and(|name| name.contains("::") && is_rust_path(name))
        });
        (!test_thread && !self.checks_itself.get()).then_some(&self.task)
    }
}

/// What is current on this thread, found in one pass: what every question about the context
/// reads, so that the answers cannot drift apart.
struct Current<'a> {
    /// `None` for the thread's implicit scope, which may not be made yet.
    scope: Option<&'a Arc<Scope>>,
    task: CurrentTask<'a>,
}

enum CurrentTask<'a> {
    None,
    /// A task frame's, or the thread's inherited record.
    Shared(&'a Shared<TaskRecord>),
    /// The task [`in_task`] runs now.
    Borrowed(&'a Borrowed),
}

impl CurrentTask<'_> {
    fn get(&self) -> Option<&TaskRecord> {
        match self {
            CurrentTask::None => None,
            CurrentTask::Shared(task) => Some(task),
            CurrentTask::Borrowed(borrowed) => borrowed.task(),
        }
    }

    /// Another strong reference to the task.
    #[inline]
    fn share(&self) -> Option<Shared<TaskRecord>> {
        match self {
            CurrentTask::None => None,
            CurrentTask::Shared(task) => Some(Shared::clone(task)),
            CurrentTask::Borrowed(borrowed) => borrowed.share(),
        }
    }

    /// Another strong reference to the task, as the parent of a task spawned now: from this
    /// thread's spares (see `registry::share_parent`).
    #[inline(always)] // Into `spawn_target`, on every spawn.
    fn share_as_parent(&self) -> Option<Shared<TaskRecord>> {
        match self {
            CurrentTask::None => None,
            CurrentTask::Shared(task) => Some(registry::share_parent(task)),
            CurrentTask::Borrowed(borrowed) => {
                borrowed.task()?;
                // SAFETY: as in `Borrowed::share`.
                unsafe { Some(registry::share_parent_from_raw(borrowed.task)) }
            }
        }
    }
}

impl Context {
    const NEW: Context = Context {
        frames: Vec::new(),
        implicit: None,
        inherited: None,
    };

    /// The frames entered inside the borrowed task, or all of them when none is borrowed: the
    /// ones that are more current than it.
    #[inline]
    fn frames_inside(&self, borrowed: Borrowed) -> &[(u64, Frame)] {
        let first = match self.frames.last() {
            Some((top, _)) if *top >= borrowed.mark => self
                .frames
                .partition_point(|(token, _)| *token < borrowed.mark),
            _ => self.frames.len(),
        };
        &self.frames[first..]
    }

    /// What is current: the innermost frame inside the borrowed task gives the scope (a task
    /// frame gives its task's), and the innermost task frame inside it the task; failing those,
    /// the borrowed task gives both; then the thread's inherited record; then the thread's
    /// implicit scope, with no task.
    #[inline(always)] // Into `spawn_target`, on every spawn.
    fn current<'a>(&'a self, borrowed: &'a Borrowed) -> Current<'a> {
        let inherited = || self.inherited.as_ref().and_then(Inherited::task);
        let inside = self.frames_inside(*borrowed);
        if let Some((_, innermost)) = inside.last() {
            let task = match inside.iter().rev().find_map(|(_, frame)| frame.task()) {
                Some(task) => CurrentTask::Shared(task),
                // Frames entered before the borrowed task are outside it.
                None if !borrowed.task.is_null() => CurrentTask::Borrowed(borrowed),
                None => inherited().map_or(CurrentTask::None, CurrentTask::Shared),
            };
            return Current {
                scope: Some(innermost.scope()),
                task,
            };
        }
        if let Some(task) = borrowed.task() {
            return Current {
                scope: Some(&task.scope),
                task: CurrentTask::Borrowed(borrowed),
            };
        }
        if let Some(task) = inherited() {
            return Current {
                scope: Some(&task.scope),
                task: CurrentTask::Shared(task),
            };
        }
        Current {
            scope: self.implicit.as_ref(),
            task: CurrentTask::None,
        }
    }

    /// The current scope, made if it is the thread's implicit one and that is not made yet.
    #[inline]
    fn scope_of(&mut self, current_scope: Option<Arc<Scope>>) -> Arc<Scope> {
        current_scope.unwrap_or_else(|| Arc::clone(self.implicit_scope()))
    }

    /// The thread's implicit scope, made on first use.
    fn implicit_scope(&mut self) -> &Arc<Scope> {
        self.implicit
            .get_or_insert_with(|| open_scope(implicit_label()))
    }

    /// The scope a task spawned here joins, and the task that spawns it.
    #[inline(always)] // Into `spawn_context`, on every spawn.
    fn spawn_target(&mut self, borrowed: Borrowed) -> (Arc<Scope>, Option<Shared<TaskRecord>>) {
        let current = self.current(&borrowed);
        let (scope, parent) = (
            current.scope.map(registry::share_scope),
            current.task.share_as_parent(),
        );
        let scope = scope.unwrap_or_else(|| registry::share_scope(self.implicit_scope()));
        (scope, parent)
    }

    fn scope(&mut self, borrowed: Borrowed) -> Arc<Scope> {
        let scope = self.current(&borrowed).scope.map(Arc::clone);
        self.scope_of(scope)
    }

    fn push(&mut self, frames: impl IntoIterator<Item = Frame>) -> u64 {
        let token = NEXT_TOKEN.get();
        NEXT_TOKEN.set(token + 1);
        self.frames
            .extend(frames.into_iter().map(|frame| (token, frame)));
        token
    }

    /// Removes the frames pushed with `token`, which are on top unless guards were dropped out of
    /// order; then they are found where they are, and nobody else's frames are touched.
    /// Returns them, and whether they were on top.
    fn remove(&mut self, token: u64) -> (Removed, bool) {
        // The common case, one frame popped in order (a test's scope, a hook-driven poll): no
        // allocation.
        if let Some((t, _)) = self.frames.last() {
            let below = self.frames.len().checked_sub(2).map(|at| self.frames[at].0);
            if *t == token && below != Some(token) {
                let (_, frame) = self.frames.pop().expect("checked above");
                return (Removed::One(frame), true);
            }
        }
        let on_top = self
            .frames
            .iter()
            .rev()
            .take_while(|(t, _)| *t == token)
            .count();
        let found = self.frames.iter().filter(|(t, _)| *t == token).count();
        if on_top == found {
            let at = self.frames.len() - on_top;
            return (
                Removed::Many(self.frames.drain(at..).map(|(_, frame)| frame).collect()),
                true,
            );
        }
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.frames)
            .into_iter()
            .partition(|(t, _)| *t == token);
        self.frames = others;
        (
            Removed::Many(mine.into_iter().map(|(_, frame)| frame).collect()),
            false,
        )
    }
}

/// Frames taken off the stack, to be dropped once the context is no longer borrowed.
enum Removed {
    One(Frame),
    Many(Vec<Frame>),
}

/// Makes `task`, the record of this thread made by its creator, current on this thread for the
/// thread's whole life, beneath whatever is entered later: what the thread spawns joins its
/// creator's scope, as a child of `task`.
#[cfg(leakcheck_interpose)]
pub(crate) fn inherit(task: Shared<TaskRecord>) {
    let _ = CONTEXT.try_with(|cx| {
        let created_by_harness = task.parent.is_none() && is_main_threads_scope(&task.scope.label);
        cx.borrow_mut().inherited = Some(Inherited {
            task,
            created_by_harness,
            named_like_a_test: std::cell::OnceCell::new(),
            checks_itself: std::cell::Cell::new(false),
        });
    });
}

/// Whether `label` is that of the main thread's implicit scope.
pub(crate) fn is_main_threads_scope(label: &ScopeLabel) -> bool {
    matches!(label, ScopeLabel::Thread(name) if name == "main")
}

thread_local! {
    static CONTEXT: RefCell<Context> = const { RefCell::new(Context::NEW) };
    /// The task [`in_task`] runs now; kept apart from [`CONTEXT`] so that entering it touches
    /// neither the `RefCell` nor the frames.
    static BORROWED: Cell<Borrowed> = const { Cell::new(Borrowed::NONE) };
    /// The token of the next guard.
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// The scope a task spawned here joins, and the task that spawns it.
#[inline]
pub(crate) fn spawn_context() -> (Arc<Scope>, Option<Shared<TaskRecord>>) {
    let target = CONTEXT
        .try_with(|cx| cx.borrow_mut().spawn_target(BORROWED.get()))
        .unwrap_or_else(|_| (teardown_scope(), None));
    // Outside the borrow: the spares given back may be the last references to records.
    registry::settle_spares();
    target
}

/// Like [`spawn_context`], for the thread-creation hook, which may run in the middle of this
/// module's own code (an allocator that creates a thread while the context is borrowed):
/// `None` then, and the new thread is left untracked.
#[cfg_attr(not(leakcheck_interpose), allow(dead_code))]
pub(crate) fn try_spawn_context() -> Option<(Arc<Scope>, Option<Shared<TaskRecord>>)> {
    let target = CONTEXT
        .try_with(|cx| Some(cx.try_borrow_mut().ok()?.spawn_target(BORROWED.get())))
        .unwrap_or_else(|_| Some((teardown_scope(), None)));
    // Outside the borrow, as in `spawn_context`.
    registry::settle_spares();
    target
}

/// Registers a new task spawned here: in the current scope, as a child of the current task.
#[inline]
pub(crate) fn register(
    kind: TaskKind,
    name: Option<Box<str>>,
    spawn_site: &'static Location<'static>,
    entry: EntryName,
) -> Shared<TaskRecord> {
    let (scope, parent) = spawn_context();
    TaskRecord::register_in(scope, parent, kind, name, spawn_site, entry)
}

/// Like [`register`], for a task with one owner (a tracked future): see
/// [`TaskRecord::register_listed_in`].
#[inline]
pub(crate) fn register_listed(
    kind: TaskKind,
    name: Option<Box<str>>,
    spawn_site: &'static Location<'static>,
    entry: EntryName,
) -> Listed<TaskRecord> {
    let (scope, parent) = spawn_context();
    TaskRecord::register_listed_in(scope, parent, kind, name, spawn_site, entry)
}

/// The scope a check run here looks at. A check opened outside any frame on a thread created in
/// another scope makes that thread a test of its own (see [`Inherited`]).
pub(crate) fn current_scope() -> Arc<Scope> {
    CONTEXT
        .try_with(|cx| {
            let borrowed = BORROWED.get();
            let mut cx = cx.borrow_mut();
            if cx.frames.is_empty() && borrowed.task.is_null() {
                if let Some(inherited) = &cx.inherited {
                    inherited.checks_itself.set(true);
                }
            }
            cx.scope(borrowed)
        })
        .unwrap_or_else(|_| teardown_scope())
}

/// The tracked task running on this thread, if any.
pub(crate) fn current_task() -> Option<Shared<TaskRecord>> {
    CONTEXT
        .try_with(|cx| cx.borrow().current(&BORROWED.get()).task.share())
        .ok()
        .flatten()
}

/// Runs `f` with the tracked task running on this thread, if any, without cloning it.
pub(crate) fn with_current_task<R>(f: impl FnOnce(Option<&TaskRecord>) -> R) -> R {
    let mut f = Some(f);
    let result = CONTEXT.try_with(|cx| {
        let borrowed = BORROWED.get();
        (f.take().expect("called once"))(cx.borrow().current(&borrowed).task.get())
    });
    result.unwrap_or_else(|_| (f.take().expect("not called while the context is gone"))(None))
}

/// The scope of code that runs in this thread's thread-local destructors, after its context is
/// gone: a scope of its own, so that nothing done there can fail or be blamed on a test.
fn teardown_scope() -> Arc<Scope> {
    let thread = std::thread::current();
    let name = thread
        .name()
        .map_or_else(|| format!("{:?}", thread.id()), str::to_owned);
    open_scope(ScopeLabel::Thread(format!(
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
pub(crate) fn enter(scope: Arc<Scope>, task: Option<Shared<TaskRecord>>) -> ContextGuard {
    let frames = std::iter::once(Frame::Scope(scope)).chain(task.map(Frame::OwnedTask));
    ContextGuard {
        token: CONTEXT.try_with(|cx| cx.borrow_mut().push(frames)).ok(),
        _not_send: PhantomData,
    }
}

/// Makes `task` current on this thread for one poll that runtime hooks see begin and end, as
/// [`in_task`] does for a poll it runs: the task is the borrowed one, held by the returned value
/// until [`HookPoll::leave`]. Hooks run around a poll, not as a closure, so this relies on the
/// runtime calling them strictly nested on each thread (each poll's end hook before the end hook
/// of any poll it runs inside), as tokio does, and on the caller keeping them in a stack.
#[cfg(all(feature = "tokio", tokio_unstable))]
pub(crate) fn enter_hook_poll(task: Shared<TaskRecord>) -> HookPoll {
    let entered = Borrowed {
        task: Shared::as_ptr(&task),
        mark: NEXT_TOKEN.get(),
    };
    HookPoll {
        previous: BORROWED.replace(entered),
        task: Some(task),
        _not_send: PhantomData,
    }
}

/// A task a runtime hook made current: see [`enter_hook_poll`]. Not `Send`: it restores this
/// thread's context.
#[cfg(all(feature = "tokio", tokio_unstable))]
#[must_use]
pub(crate) struct HookPoll {
    previous: Borrowed,
    /// Keeps the task the borrowed slot points to alive until the slot is restored.
    task: Option<Shared<TaskRecord>>,
    _not_send: PhantomData<*const ()>,
}

#[cfg(all(feature = "tokio", tokio_unstable))]
impl HookPoll {
    /// Ends the poll: puts back what was current before, and hands back the task.
    pub(crate) fn leave(mut self) -> Shared<TaskRecord> {
        self.restore();
        self.task.take().expect("left once")
    }

    fn restore(&mut self) {
        if let Some(task) = &self.task {
            debug_assert!(
                std::ptr::eq(BORROWED.get().task, Shared::as_ptr(task)) || std::thread::panicking(),
                "hook polls on one thread ended out of order"
            );
            // Restored before the task can be released, so the slot never points to a freed one.
            BORROWED.set(self.previous);
        }
    }
}

#[cfg(all(feature = "tokio", tokio_unstable))]
impl Drop for HookPoll {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Runs `f` with `task` (and its scope) current on this thread.
#[inline]
pub(crate) fn in_task<R>(task: &Shared<TaskRecord>, f: impl FnOnce() -> R) -> R {
    in_borrowed_task(Shared::as_ptr(task), f)
}

/// [`in_task`] for a task reached through its listed handle.
#[inline]
pub(crate) fn in_listed_task<R>(task: &Listed<TaskRecord>, f: impl FnOnce() -> R) -> R {
    in_borrowed_task(task.as_ptr(), f)
}

/// Runs `f` with the record at `task` current; the caller's borrow keeps it alive meanwhile.
#[inline]
fn in_borrowed_task<R>(task: *const TaskRecord, f: impl FnOnce() -> R) -> R {
    let entered = Borrowed {
        task,
        mark: NEXT_TOKEN.get(),
    };
    let _restore = RestoreBorrowed {
        previous: BORROWED.replace(entered),
        entered: task,
        _not_send: PhantomData,
    };
    f()
}

/// Restores the context that was current before [`enter`]. Not `Send`: its frames are this
/// thread's.
#[must_use]
pub(crate) struct ContextGuard {
    token: Option<u64>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        pop(self.token);
    }
}

/// Puts back the task that was borrowed before [`in_task`]. Not `Send`: it restores this
/// thread's context. Private to [`in_task`], so it is never leaked, and dropped as the closure
/// returns or unwinds.
///
/// That makes the borrowed slot correct as long as closures on a thread return in the reverse of
/// the order they were entered, which a call stack guarantees. (Stackful coroutines that
/// suspend inside `in_task` and resume in another order would break it, as they break every
/// scoped thread local; debug builds check for it.)
struct RestoreBorrowed {
    previous: Borrowed,
    /// What this guard's `in_task` set: still the borrowed task when it ends.
    entered: *const TaskRecord,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RestoreBorrowed {
    #[inline]
    fn drop(&mut self) {
        debug_assert!(
            std::ptr::eq(BORROWED.get().task, self.entered) || std::thread::panicking(),
            "`in_task` closures on one thread ended out of order"
        );
        BORROWED.set(self.previous);
    }
}

fn pop(token: Option<u64>) {
    let Some(token) = token else {
        return;
    };
    // During thread teardown the context may already be gone; there is nothing to restore.
    let Ok((frames, in_order)) = CONTEXT.try_with(|cx| cx.borrow_mut().remove(token)) else {
        return;
    };
    // Dropped outside the borrow: a last reference may run arbitrary drops.
    match frames {
        Removed::One(frame) => drop(frame),
        Removed::Many(frames) => drop(frames),
    }
    debug_assert!(
        in_order || std::thread::panicking(),
        "a context guard was dropped out of order"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_hook_leaves_a_thread_alone_while_the_context_is_borrowed() {
        assert!(try_spawn_context().is_some());
        CONTEXT.with(|cx| {
            let _borrowed = cx.borrow_mut();
            assert!(try_spawn_context().is_none());
        });
    }

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
        let inner = open_scope(ScopeLabel::Named("inner".into()));
        {
            let _guard = enter(Arc::clone(&inner), None);
            assert_eq!(current_scope().id, inner.id);
        }
        assert_eq!(current_scope().id, outer.id);
    }

    #[test]
    fn a_borrowed_task_is_current_and_shared_with_what_it_spawns() {
        let scope = open_scope(ScopeLabel::Named("borrowed".into()));
        let task = {
            let _scope = enter(Arc::clone(&scope), None);
            register(TaskKind::Thread, None, Location::caller(), || "outer")
        };
        let child = in_task(&task, || {
            assert_eq!(current_task().map(|t| t.id), Some(task.id));
            assert_eq!(current_scope().id, scope.id, "a task frame gives its scope");
            with_current_task(|t| assert_eq!(t.map(|t| t.id), Some(task.id)));
            register(TaskKind::Thread, None, Location::caller(), || "child")
        });
        assert!(current_task().is_none());
        assert_eq!(child.parent.as_ref().map(|p| p.id), Some(task.id));
        assert_eq!(
            Shared::strong_count(&task),
            3,
            "ours, the list's, the child's parent link"
        );
        child.exit();
        drop(child);
        task.exit();
        assert_eq!(
            Shared::strong_count(&task),
            2,
            "ours, and the child's parent link, kept spare for the next child"
        );
        registry::give_back_spares();
        assert_eq!(Shared::strong_count(&task), 1);
    }

    #[test]
    fn frames_entered_inside_a_borrowed_task_are_current_over_it_and_earlier_ones_are_not() {
        let named = |name: &str| open_scope(ScopeLabel::Named(name.into()));
        let (outside, tasks, inside) = (named("outside"), named("tasks"), named("inside"));
        let spawn = |name| {
            let _scope = enter(Arc::clone(&tasks), None);
            register(TaskKind::Thread, None, Location::caller(), name)
        };
        let (task, nested) = (spawn(|| "task"), spawn(|| "nested"));
        let _outside = enter(Arc::clone(&outside), None);
        // What a spawn here joins, and as whose child.
        let spawn_here = || {
            let child = register(TaskKind::Thread, None, Location::caller(), || "child");
            child.exit();
            (child.scope.id, child.parent.as_ref().map(|p| p.id))
        };
        in_task(&task, || {
            assert_eq!(
                current_scope().id,
                tasks.id,
                "the task's, not the earlier frame's"
            );
            assert_eq!(spawn_here(), (tasks.id, Some(task.id)));
            {
                let _inside = enter(Arc::clone(&inside), None);
                assert_eq!(current_scope().id, inside.id, "entered inside the task");
                assert_eq!(current_task().map(|t| t.id), Some(task.id));
                assert_eq!(
                    spawn_here(),
                    (inside.id, Some(task.id)),
                    "a scope frame, no task"
                );
                in_task(&nested, || {
                    assert_eq!(current_task().map(|t| t.id), Some(nested.id));
                    assert_eq!(current_scope().id, tasks.id);
                });
                assert_eq!(current_scope().id, inside.id);
                assert_eq!(current_task().map(|t| t.id), Some(task.id));
            }
            assert_eq!(current_scope().id, tasks.id);
        });
        assert_eq!(current_scope().id, outside.id);
        assert!(current_task().is_none());
        task.exit();
        nested.exit();
    }

    /// Frames belong to the thread that pushed them: a guard that could move to another thread
    /// would remove its frames from the wrong stack.
    #[test]
    fn guards_are_not_send() {
        trait MaybeSend {
            const SEND: bool = false;
        }
        impl<T: ?Sized> MaybeSend for T {}
        struct Probe<T: ?Sized>(std::marker::PhantomData<T>);
        #[allow(dead_code)]
        impl<T: ?Sized + Send> Probe<T> {
            const SEND: bool = true;
        }
        // Checked at compile time: a guard that became `Send` fails the build of the tests.
        const {
            assert!(Probe::<Arc<Scope>>::SEND, "the probe tells a Send type");
            assert!(!Probe::<ContextGuard>::SEND);
            assert!(!Probe::<RestoreBorrowed>::SEND);
        }
    }

    #[test]
    fn a_task_frame_is_removed_when_its_closure_unwinds() {
        let scope = open_scope(ScopeLabel::Named("unwinding".into()));
        let task = {
            let _scope = enter(Arc::clone(&scope), None);
            register(TaskKind::Thread, None, Location::caller(), || "unwinds")
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_task(&task, || panic!("the task's body panics"))
        }));
        assert!(result.is_err());
        assert!(
            current_task().is_none(),
            "the borrowed frame left with the unwind"
        );
        task.exit();
    }

    #[test]
    fn guards_dropped_out_of_order_remove_only_their_own_frames() {
        let first = open_scope(ScopeLabel::Named("first".into()));
        let second = open_scope(ScopeLabel::Named("second".into()));
        let outer = enter(Arc::clone(&first), None);
        let inner = enter(Arc::clone(&second), None);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(outer)));
        // Debug builds say so; either way the outer frame is the one removed.
        assert_eq!(result.is_err(), cfg!(debug_assertions));
        assert_eq!(current_scope().id, second.id);
        drop(inner);
        assert_ne!(current_scope().id, second.id);
        assert_ne!(current_scope().id, first.id);
    }
}
