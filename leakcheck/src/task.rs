//! Tracked async tasks, on any executor.
//!
//! [`track`] registers a future as a task the moment it is called, with the call site as its
//! spawn site, in the current scope and as a child of the current task, exactly as
//! [`thread::spawn`](crate::thread::spawn) does for a thread. Hand the result to any executor:
//!
//! ```
//! # fn spawn_anywhere<F: std::future::Future>(_: F) {}
//! use leakcheck::task::track;
//!
//! spawn_anywhere(track(async { /* the task's work */ }));
//! ```
//!
//! (With tokio, [`leakcheck::tokio::spawn`](crate::tokio) does both at once.)
//!
//! While it lives, the task's state follows SPEC §3: `running` inside `poll`, `scheduled` once
//! woken, `idle` while pending with a waker alive somewhere, `lost` once pending with every waker
//! dropped — nothing can ever wake it again — and `blocked` inside [`waiting`]. A report shows the
//! state, since when, and when the task was last polled. The task ends when its future completes
//! or is dropped (cancelled, aborted, its runtime shut down).
//!
//! ## How the states are known
//!
//! A [`Tracked`] future polls its inner future with a waker of its own that forwards to the
//! executor's waker and counts its live clones (see `async_state.rs`). The wrapper waker is created
//! only when the inner future clones the waker, and reused across polls while a clone of it is
//! alive and the executor's waker is the same, so a leaf future that keeps its waker (most do)
//! does not re-clone it on every poll. A future that completes in its first poll never allocates
//! one.
//!
//! `lost` is certain when the tracked future is the root of its task, which is what
//! `spawn(track(future))` makes it. A tracked future nested inside another future can be polled
//! again by its parent without a wake (a `select!` whose other branch was woken), so for it `lost`
//! means "nothing that it registered can wake it".

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};

use crate::async_state::{self, AsyncState};
use crate::clock;
use crate::context;
use crate::options::Options;
use crate::registry::{TaskId, TaskKind, TaskRecord};
use crate::state::{blocked_stack, Blocked, SavedState, TaskState};

/// Registers `future` as a tracked async task, spawned here, and returns it wrapped in a
/// [`Tracked`] future for any executor to run.
///
/// The task belongs to the current scope (test) and is a child of the current task. It ends when
/// the returned future completes or is dropped.
///
/// ```
/// use std::time::Duration;
/// use leakcheck::{task::track, Options, TaskState};
///
/// let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(10)));
/// // Never handed to an executor: it waits for its first poll forever.
/// let forgotten = track(async { 42 });
/// let report = guard.verify().unwrap_err();
/// assert_eq!(report.tasks()[0].id(), Some(forgotten.id()));
/// assert_eq!(report.tasks()[0].state(), TaskState::Scheduled);
/// assert_eq!(report.tasks()[0].last_polled_ago(), None);
/// ```
#[track_caller]
pub fn track<F: Future>(future: F) -> Tracked<F> {
    Tracked::register(None, Location::caller(), future)
}

/// Like [`track`], with a name for the task, shown in reports and matched by
/// [`Options::ignore_name`](crate::Options::ignore_name).
///
/// ```
/// use leakcheck::task::track_named;
///
/// let task = track_named("metrics-flush", async {});
/// # drop(task);
/// ```
#[track_caller]
pub fn track_named<F: Future>(name: impl Into<String>, future: F) -> Tracked<F> {
    let name = name.into().into_boxed_str();
    Tracked::register(Some(name), Location::caller(), future)
}

/// A future registered as a tracked task; see [`track`].
///
/// It is `Send` when `F` is, and `Unpin` when `F` is. Polling it after it completed panics, as
/// for an `async` block.
#[must_use = "a tracked future does nothing unless polled; dropping it ends the task"]
pub struct Tracked<F> {
    record: Arc<TaskRecord>,
    /// The wrapper waker handed out in an earlier poll: reused while a clone of it is alive.
    /// Weak, so that the task does not keep its own executor waker (and with it, in many
    /// executors, itself) alive.
    waker: Weak<WakerShared>,
    completed: bool,
    /// Structurally pinned: never moved out of a pinned `Tracked`, never exposed unpinned.
    future: F,
}

impl<F: Future> Tracked<F> {
    pub(crate) fn register(
        name: Option<Box<str>>,
        site: &'static Location<'static>,
        future: F,
    ) -> Tracked<F> {
        let record = TaskRecord::register(TaskKind::Async, name, site, std::any::type_name::<F>());
        async_state_of(&record).observe_wakers();
        Tracked {
            record,
            waker: Weak::new(),
            completed: false,
            future,
        }
    }
}

impl<F> Tracked<F> {
    /// The id of the task, as reports show it ([`LeakedTask::id`](crate::LeakedTask::id)).
    pub fn id(&self) -> TaskId {
        self.record.id
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn record(&self) -> &Arc<TaskRecord> {
        &self.record
    }

    /// Ends the task: it leaves its scope, and a runtime that counted it forgets it.
    fn finish(&mut self) {
        self.completed = true;
        self.record.exit();
        #[cfg(feature = "tokio")]
        crate::tokio::release(&self.record);
    }
}

fn async_state_of(record: &TaskRecord) -> &AsyncState {
    record
        .async_state
        .as_ref()
        .expect("an async task record has an async state")
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned and no other field is: it is only ever reached
        // through the `Pin` made here, never moved (the `Drop` impl does not touch it), and
        // `Tracked` implements `Unpin` only through the auto trait, that is when `F: Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(!this.completed, "`Tracked` polled after completion");
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let record = &this.record;
        let state = async_state_of(record);

        let now = clock::now();
        #[cfg(feature = "tokio")]
        let first_poll = state.last_polled().is_none();
        async_state::begin_poll(record, state, now);
        #[cfg(feature = "tokio")]
        if first_poll {
            crate::tokio::claim_current_task(record);
        }
        let context = context::enter_task(record);

        let reusable = this
            .waker
            .upgrade()
            .filter(|shared| shared.inner.will_wake(cx.waker()));
        let result = match reusable {
            Some(shared) => {
                // A borrowed waker: clones made from it count; it is never dropped itself.
                let raw = RawWaker::new(Arc::as_ptr(&shared).cast(), &SHARED_VTABLE);
                // SAFETY: the vtable's contract holds for `Arc<WakerShared>` pointers, and
                // `shared` keeps the pointee alive for the whole poll.
                let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
                future.poll(&mut Context::from_waker(&waker))
            }
            None => {
                let frame = PollFrame {
                    record,
                    inner: cx.waker(),
                    created: OnceLock::new(),
                };
                let raw = RawWaker::new((&frame as *const PollFrame<'_>).cast(), &FRAME_VTABLE);
                // SAFETY: the frame outlives the poll, and the waker cannot escape it: it is
                // only lent through the `Context`; a clone is an owned `WakerShared` waker.
                let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
                let result = future.poll(&mut Context::from_waker(&waker));
                if let Some(shared) = frame.created.into_inner() {
                    this.waker = Arc::downgrade(&shared);
                }
                result
            }
        };
        drop(context);

        match result {
            Poll::Ready(output) => {
                this.finish();
                Poll::Ready(output)
            }
            Poll::Pending => {
                async_state::end_pending_poll(&this.record, async_state_of(&this.record), now);
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        if !self.completed {
            // Cancelled: dropped by its executor, aborted, or its runtime shut down.
            self.finish();
        }
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("id", &self.record.id)
            .field("spawned_at", &self.record.spawn_site)
            .field("name", &self.record.name)
            .finish_non_exhaustive()
    }
}

/// The wrapper waker of a tracked task: wakes the executor's waker and keeps the task's state.
struct WakerShared {
    record: Arc<TaskRecord>,
    /// The executor's waker this wrapper forwards to.
    inner: Waker,
}

impl WakerShared {
    fn state(&self) -> &AsyncState {
        async_state_of(&self.record)
    }
}

/// Owned wrapper wakers: the data pointer is an `Arc<WakerShared>` reference held by the waker.
static SHARED_VTABLE: RawWakerVTable =
    RawWakerVTable::new(shared_clone, shared_wake, shared_wake_by_ref, shared_drop);

/// # Safety
/// `data` is a pointer obtained from an `Arc<WakerShared>` that is alive for this call.
unsafe fn shared_clone(data: *const ()) -> RawWaker {
    let shared = data.cast::<WakerShared>();
    // SAFETY: per this function's contract; the new reference is owned by the returned waker.
    unsafe {
        Arc::increment_strong_count(shared);
        async_state::note_waker_cloned((*shared).state());
    }
    RawWaker::new(data, &SHARED_VTABLE)
}

/// # Safety
/// `data` is an owned `Arc<WakerShared>` reference (the waker being consumed).
unsafe fn shared_wake(data: *const ()) {
    // SAFETY: per this function's contract, the reference is ours to release.
    let shared = unsafe { Arc::from_raw(data.cast::<WakerShared>()) };
    async_state::note_wake(&shared.record, shared.state());
    shared.inner.wake_by_ref();
    async_state::note_waker_dropped(&shared.record, shared.state());
}

/// # Safety
/// `data` is a pointer obtained from an `Arc<WakerShared>` that is alive for this call.
unsafe fn shared_wake_by_ref(data: *const ()) {
    // SAFETY: per this function's contract.
    let shared = unsafe { &*data.cast::<WakerShared>() };
    async_state::note_wake(&shared.record, shared.state());
    shared.inner.wake_by_ref();
}

/// # Safety
/// `data` is an owned `Arc<WakerShared>` reference (the waker being dropped).
unsafe fn shared_drop(data: *const ()) {
    // SAFETY: per this function's contract, the reference is ours to release.
    let shared = unsafe { Arc::from_raw(data.cast::<WakerShared>()) };
    async_state::note_waker_dropped(&shared.record, shared.state());
}

/// What the waker lent to a poll points to when no wrapper waker is alive: a wrapper is made
/// only if the inner future clones the waker.
struct PollFrame<'a> {
    record: &'a Arc<TaskRecord>,
    inner: &'a Waker,
    /// The wrapper made by a clone during this poll (shared by all clones of the poll).
    created: OnceLock<Arc<WakerShared>>,
}

/// Lent wakers of a poll: the data pointer is a `PollFrame` on the polling stack.
static FRAME_VTABLE: RawWakerVTable = RawWakerVTable::new(
    frame_clone,
    frame_wake_by_ref,
    frame_wake_by_ref,
    frame_drop,
);

/// # Safety
/// `data` points to a `PollFrame` alive for this call.
unsafe fn frame_clone(data: *const ()) -> RawWaker {
    // SAFETY: per this function's contract.
    let frame = unsafe { &*data.cast::<PollFrame<'_>>() };
    let shared = frame.created.get_or_init(|| {
        Arc::new(WakerShared {
            record: Arc::clone(frame.record),
            inner: frame.inner.clone(),
        })
    });
    // SAFETY: `shared` is alive (held by the frame) for this call.
    unsafe { shared_clone(Arc::as_ptr(shared).cast()) }
}

/// A lent waker is never owned, so it is never consumed by `wake`: both entries wake by reference.
///
/// # Safety
/// `data` points to a `PollFrame` alive for this call.
unsafe fn frame_wake_by_ref(data: *const ()) {
    // SAFETY: per this function's contract.
    let frame = unsafe { &*data.cast::<PollFrame<'_>>() };
    async_state::note_wake(frame.record, async_state_of(frame.record));
    frame.inner.wake_by_ref();
}

/// A lent waker owns nothing.
unsafe fn frame_drop(_data: *const ()) {}

/// Marks an `.await` as blocking, so that a report shows the task `blocked` in `reason` at this
/// call site, and since when, instead of merely `idle`.
///
/// Use it around an await that can wait indefinitely on something the task cannot see: a channel
/// send or receive, a lock, a response.
///
/// ```
/// use std::future::Future;
///
/// async fn call(response: impl Future<Output = u32>) -> u32 {
///     // A report shows a task stuck here as `blocked in "response"` at this line.
///     leakcheck::waiting("response", response).await
/// }
/// ```
///
/// It marks the tracked task whose poll it is in (a [`Tracked`] future, a task spawned with
/// [`leakcheck::tokio::spawn`](crate::tokio), or one a leakcheck test runtime saw spawn) from the
/// first time the future returns `Pending` until it completes or is dropped. Nested, the
/// innermost `waiting` is the one reported. Driven on a tracked thread (by a `block_on`), it marks
/// the thread as blocked. Anywhere else it is the future itself.
#[track_caller]
pub fn waiting<F: Future>(reason: &'static str, future: F) -> Waiting<F> {
    Waiting {
        future,
        reason,
        site: Location::caller(),
        mark: None,
    }
}

/// The future returned by [`waiting`].
#[must_use = "futures do nothing unless awaited"]
pub struct Waiting<F> {
    /// Structurally pinned, as in [`Tracked`].
    future: F,
    reason: &'static str,
    site: &'static Location<'static>,
    mark: Option<Mark>,
}

/// The task a [`Waiting`] marked as blocked, and what to restore.
struct Mark {
    task: Arc<TaskRecord>,
    saved: SavedState,
}

impl<F> Waiting<F> {
    /// Marks the current task as blocked here, unless an inner `waiting` already did.
    fn enter(&mut self) {
        let Some(task) = context::current_task() else {
            return;
        };
        let blocked = Blocked {
            reason: self.reason,
            site: self.site,
            stack: blocked_stack(&task),
        };
        match &task.async_state {
            Some(state) => {
                if state.blocked_since().is_some() {
                    return;
                }
                let poll_started = state.last_polled();
                let saved = task.state.block(blocked);
                state.set_blocked_since(Some(clock::now()));
                // Still inside the poll: `running` until it ends, then `blocked`.
                task.state
                    .set(TaskState::Running, poll_started.unwrap_or_else(clock::now));
                self.mark = Some(Mark { task, saved });
            }
            None => {
                // A thread driving the future: blocked for as long as the future is pending.
                // Already blocked by an inner `waiting` (or a `blocking` call): the innermost
                // reason stands, as for async tasks.
                if task.state.load().0 == TaskState::Blocked {
                    return;
                }
                let saved = task.state.block(blocked);
                self.mark = Some(Mark { task, saved });
            }
        }
    }

    /// Undoes [`enter`](Self::enter).
    fn leave(&mut self) {
        let Some(Mark { task, saved }) = self.mark.take() else {
            return;
        };
        let Some(state) = &task.async_state else {
            task.state.unblock(saved);
            return;
        };
        state.set_blocked_since(None);
        task.state.unblock(saved);
        let in_its_poll =
            context::with_current_task(|current| current.is_some_and(|c| std::ptr::eq(c, &*task)));
        if !in_its_poll {
            // Dropped between polls: the task is still pending (or ending), not running.
            async_state::end_pending_poll(&task, state, clock::now());
        }
    }
}

impl<F: Future> Future for Waiting<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned, as in `Tracked::poll`; the other fields are
        // not pinned and `Drop` does not move `future`.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match future.poll(cx) {
            Poll::Ready(output) => {
                this.leave();
                Poll::Ready(output)
            }
            Poll::Pending => {
                if this.mark.is_none() {
                    this.enter();
                }
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for Waiting<F> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl<F> fmt::Debug for Waiting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("reason", &self.reason)
            .field("site", &self.site)
            .field("blocking", &self.mark.is_some())
            .finish_non_exhaustive()
    }
}

/// Drives `future` to completion on this thread, parking it while the future is pending.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark {
        thread: std::thread::Thread,
        woken: AtomicBool,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }

    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Parking can end spuriously, and other code may unpark this thread: wait for a wake.
        while !unpark.woken.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}

/// The body of an `async` `#[leak_test]` without a runtime: runs it on a minimal executor in the
/// test's own scope, then checks the scope, like [`run_test`](crate::__private::run_test).
///
/// Tasks the body hands to other executors (thread pools, a runtime it builds) are tracked as
/// usual; the check waits for them on this thread once the body is done.
#[doc(hidden)]
#[track_caller]
pub fn run_async_test<F: Future>(name: &'static str, options: Options, body: F) -> F::Output
where
    F::Output: 'static,
{
    crate::check::run_test(name, options, move || block_on(body))
}
