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
//! (With tokio, `leakcheck::tokio::spawn` does both at once.)
//!
//! While it lives, the task's state follows SPEC §3: `running` inside `poll`, `scheduled` once
//! woken, `idle` while pending with a waker alive somewhere, `lost` once pending with every waker
//! dropped — nothing can ever wake it again — and `blocked` inside [`waiting`](crate::waiting). A report shows the
//! state, since when, and when the task was last polled. The task ends when its future completes
//! or is dropped (cancelled, aborted, its runtime shut down).
//!
//! ## How the states are known
//!
//! A [`Tracked`] future polls its inner future with a waker of its own that forwards to the
//! executor's waker and counts its live clones (see `state/polling.rs`). The wrapper waker is created
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
use std::panic::Location;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use crate::context;
use crate::registry::{Listed, TaskRecord};
use crate::vocab::{TaskId, TaskKind};

mod block_on;
mod waker;

use waker::Reusable;

pub use crate::waiting::Waiting;
pub(crate) use block_on::block_on;

/// What an executor integration learns of tracked futures, so that it can count them as its own
/// tasks (tokio's stable runtime, which has no task hooks). Installed once; the core calls it
/// without knowing the executor.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))] // Only stable tokio installs them.
pub(crate) trait ExecutorHooks: Sync {
    /// The first poll of a tracked future: the executor may claim the task it runs in, in the
    /// record's executor-claim slot (released when the future ends).
    fn first_poll(&self, record: &TaskRecord);
}

static EXECUTOR_HOOKS: OnceLock<&'static dyn ExecutorHooks> = OnceLock::new();

/// Installs the hooks of an executor integration; a second installation is ignored.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
pub(crate) fn install_executor_hooks(hooks: &'static dyn ExecutorHooks) {
    let _ = EXECUTOR_HOOKS.set(hooks);
}

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
/// for an `async` block. It is one word larger than `F`. Once completed, it keeps the task's
/// record (a hundred bytes, and with it the test's scope) until it is dropped, as executors do
/// with a completed future; the thread that drops it frees the record with the next few dozen
/// it drops, or as it ends.
#[must_use = "a tracked future does nothing unless polled; dropping it ends the task"]
pub struct Tracked<F> {
    /// Structurally pinned: never moved out of a pinned `Tracked`, never exposed unpinned.
    future: F,
    /// The task's record: listed in its scope while the task lives, kept after it ends (for its
    /// id), and handed to the thread's batch of departed records with the future. One word, which
    /// is all a tracked future adds to the future it wraps (the record keeps the reusable waker
    /// too): an executor that allocates tasks in size classes (tokio's are 128 bytes) keeps a small
    /// future in its class.
    record: Listed<TaskRecord>,
}

impl<F: Future> Tracked<F> {
    pub(crate) fn register(
        name: Option<Box<str>>,
        site: &'static Location<'static>,
        future: F,
    ) -> Tracked<F> {
        let record =
            context::register_listed(TaskKind::Async, name, site, std::any::type_name::<F>);
        record.state.observe_wakers();
        Tracked { future, record }
    }
}

impl<F> Tracked<F> {
    /// The id of the task, as reports show it ([`LeakedTask::id`](crate::LeakedTask::id)).
    pub fn id(&self) -> TaskId {
        self.record.id
    }

    /// The scope the task was registered in.
    #[cfg(all(feature = "tokio", not(tokio_unstable)))]
    pub(crate) fn scope(&self) -> &crate::registry::Scope {
        &self.record.scope
    }

    /// Ends the task now, as dropping it would, so that what its owner does next comes after
    /// the exit and the wake of checks waiting for it. The drop then ends nothing twice.
    #[cfg(all(feature = "tokio", not(tokio_unstable)))]
    pub(crate) fn end(self: Pin<&mut Self>) {
        Self::finish(self.project().1);
    }

    /// A reference of its own to the task's record.
    #[cfg(all(feature = "tokio", tokio_unstable))]
    pub(crate) fn share_record(&self) -> crate::registry::Shared<TaskRecord> {
        self.record.share()
    }

    /// The wrapped future, pinned, and the record beside it: the one place a pinned `Tracked`
    /// is opened up.
    fn project(self: Pin<&mut Self>) -> (Pin<&mut F>, &mut Listed<TaskRecord>) {
        // SAFETY: `future` is structurally pinned and no other field is: it is only ever reached
        // through the `Pin` made here, never moved (the `Drop` impl does not touch it), and
        // `Tracked` implements `Unpin` only through the auto trait, that is when `F: Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        (future, &mut this.record)
    }

    /// Ends the task, once: it leaves its scope, and an executor that claimed it forgets it.
    fn finish(listed: &mut Listed<TaskRecord>) {
        // Both before the exit wakes waiting checks, so that neither is skipped if one of their
        // wakers panics.
        Reusable::of(listed).clear();
        TaskRecord::exit_in_place(listed, |record| {
            if let Some(details) = record.state_details_if_any() {
                details.release_claim();
            }
        });
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (future, listed) = self.project();
        assert!(listed.is_listed(), "`Tracked` polled after completion");
        let reusable = Reusable::of(listed).fitting(cx);
        let record = &*listed;

        let start = record.state.start_poll();
        if start.first {
            if let Some(hooks) = EXECUTOR_HOOKS.get() {
                hooks.first_poll(record);
            }
        }
        let (result, made) = context::in_listed_task(record, || {
            waker::poll_tracking_wakers(record, reusable, cx, future)
        });
        if let (Poll::Pending, Some(made)) = (&result, made) {
            Reusable::of(listed).keep(&made);
        }

        match result {
            Poll::Ready(output) => {
                Self::finish(listed);
                Poll::Ready(output)
            }
            Poll::Pending => {
                listed.end_pending_poll(listed.state.pending_at(start));
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        // Unless it completed: cancelled, dropped by its executor, aborted, or its runtime
        // shut down.
        Self::finish(&mut self.record);
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("id", &self.record.id)
            .field("spawned_at", &self.record.spawn_site)
            .field("name", &self.record.name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;
    use crate::registry::{open_scope, Scope, ScopeLabel};
    use crate::vocab::TaskState;

    /// An executor's waker that counts its wakes.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending until `done`, keeping a clone of its waker in `slot`, as a leaf future does.
    struct Parked {
        slot: Arc<Mutex<Option<Waker>>>,
        done: Arc<AtomicBool>,
    }

    impl Future for Parked {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.done.load(Ordering::SeqCst) {
                return Poll::Ready(7);
            }
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn state_of(scope: &Scope) -> TaskState {
        scope.live_tasks()[0].state.observe().state
    }

    #[test]
    fn a_tracked_future_follows_its_wakers_and_ends_with_its_future() {
        let scope = open_scope(ScopeLabel::Named("track".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let parked = Parked {
            slot: Arc::clone(&slot),
            done: Arc::clone(&done),
        };
        let mut tracked = pin!(track(parked));
        assert_eq!(scope.live_tasks().len(), 1);
        assert_eq!(state_of(&scope), TaskState::Scheduled, "never polled");

        let executor = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&executor));
        let mut cx = Context::from_waker(&waker);
        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            state_of(&scope),
            TaskState::Idle,
            "a clone of the waker is kept"
        );

        slot.lock().unwrap().take().unwrap().wake();
        assert_eq!(
            executor.0.load(Ordering::SeqCst),
            1,
            "forwarded to the executor"
        );
        assert_eq!(state_of(&scope), TaskState::Scheduled);

        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        assert_eq!(state_of(&scope), TaskState::Idle);
        drop(slot.lock().unwrap().take());
        assert_eq!(state_of(&scope), TaskState::Lost, "nothing can wake it");

        done.store(true, Ordering::SeqCst);
        let id = tracked.id();
        assert_eq!(tracked.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(scope.live_tasks().len(), 0);
        assert_eq!(tracked.id(), id, "known after the task ended");
        let polled_again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = tracked.as_mut().poll(&mut cx);
        }));
        assert!(polled_again.is_err(), "a completed future is not polled");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_tracked_future_is_one_word_larger_than_its_future() {
        // So that a small future stays in its executor's size class (tokio's task cells are
        // 128 bytes, which fit futures up to 24 bytes).
        let value = 3_u64;
        let future = async move { value };
        assert_eq!(std::mem::size_of_val(&future), 16);
        assert_eq!(std::mem::size_of_val(&track(future)), 16 + 8);
    }

    #[test]
    fn a_first_poll_that_ends_pending_is_stamped_when_it_ends_not_at_the_spawn() {
        let scope = open_scope(ScopeLabel::Named("first poll".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let mut tracked = pin!(track(Parked { slot, done }));
        let spawned = scope.live_tasks()[0].spawned_at(crate::clock::now());
        std::thread::sleep(std::time::Duration::from_millis(30));
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        assert!(tracked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let observed = scope.live_tasks()[0].state.observe();
        let polled = observed.last_polled.expect("polled");
        // Stamps are kept to about a millisecond, on a clock of a few milliseconds' resolution.
        assert!(polled >= spawned + 20_000_000, "stamped at the spawn");
        assert_eq!(observed.state, TaskState::Idle);
        assert!(
            observed.since >= spawned + 20_000_000,
            "idle since the spawn"
        );
    }

    /// An executor's waker over a static counter, whose vtable is one `static`: its `will_wake`
    /// is reliable under Miri too (a vtable built from a `const` may have several addresses
    /// there), so the reuse path of the wrapper waker is really taken.
    fn static_counting_waker(counter: &'static AtomicUsize) -> Waker {
        use std::task::{RawWaker, RawWakerVTable};
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
        unsafe fn clone(data: *const ()) -> RawWaker {
            RawWaker::new(data, &VTABLE)
        }
        unsafe fn wake(data: *const ()) {
            // SAFETY: `data` is the `&'static AtomicUsize` the waker was made from.
            unsafe { &*data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
        }
        unsafe fn drop(_: *const ()) {}
        let raw = RawWaker::new((counter as *const AtomicUsize).cast(), &VTABLE);
        // SAFETY: the vtable's functions uphold `RawWaker`'s contract for a pointer to a static
        // counter: they only read it, and cloning or dropping owns nothing.
        unsafe { Waker::from_raw(raw) }
    }

    #[test]
    fn a_waker_kept_across_polls_is_reused_and_counted() {
        static WAKES: AtomicUsize = AtomicUsize::new(0);
        let scope = open_scope(ScopeLabel::Named("reuse".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let mut tracked = pin!(track(Parked {
            slot: Arc::clone(&slot),
            done: Arc::clone(&done),
        }));
        let waker = static_counting_waker(&WAKES);
        let mut cx = Context::from_waker(&waker);
        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        let first = slot.lock().unwrap().clone().unwrap();
        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        let second = slot.lock().unwrap().clone().unwrap();
        assert!(first.will_wake(&second), "the wrapper waker was reused");
        drop((first, second));
        second_wake_from_another_thread(&slot);
        assert_eq!(WAKES.load(Ordering::SeqCst), 1);
        assert_eq!(state_of(&scope), TaskState::Scheduled);
    }

    fn second_wake_from_another_thread(slot: &Arc<Mutex<Option<Waker>>>) {
        let waker = slot.lock().unwrap().take().unwrap();
        std::thread::spawn(move || waker.wake()).join().unwrap();
    }

    #[test]
    fn clones_made_on_two_threads_in_one_poll_share_one_wrapper() {
        /// Clones its waker on this thread and, at the same time, on a scoped thread.
        struct ClonesTwice(Arc<Mutex<Vec<Waker>>>);
        impl Future for ClonesTwice {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                let waker = cx.waker();
                std::thread::scope(|threads| {
                    threads.spawn(|| self.0.lock().unwrap().push(waker.clone()));
                    self.0.lock().unwrap().push(waker.clone());
                });
                Poll::Pending
            }
        }
        let scope = open_scope(ScopeLabel::Named("two clones".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let clones = Arc::new(Mutex::new(Vec::new()));
        let mut tracked = Box::pin(track(ClonesTwice(Arc::clone(&clones))));
        let executor = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&executor));
        assert!(tracked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let mut clones = std::mem::take(&mut *clones.lock().unwrap());
        assert_eq!(clones.len(), 2);
        assert!(clones[0].will_wake(&clones[1]), "one wrapper for the poll");
        drop(clones.pop());
        assert_eq!(state_of(&scope), TaskState::Idle, "one clone is alive");
        drop(clones.pop());
        assert_eq!(state_of(&scope), TaskState::Lost, "both were counted");
        assert_eq!(
            Arc::strong_count(&executor),
            2,
            "the wrapper let go of the executor's waker"
        );
        drop(tracked);
    }

    #[test]
    fn the_last_clone_wakes_the_executor_by_value_and_the_others_by_reference() {
        let scope = open_scope(ScopeLabel::Named("wake paths".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let parked = Parked {
            slot: Arc::clone(&slot),
            done: Arc::clone(&done),
        };
        let mut tracked = Box::pin(track(parked));
        let executor = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&executor));
        assert!(tracked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let kept = slot.lock().unwrap().take().unwrap();
        let other = kept.clone();
        other.wake(); // `kept` is alive: woken by reference.
        assert_eq!(executor.0.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&executor), 3, "the wrapper's reference");
        kept.wake(); // The last clone: its reference goes to the executor's waker.
        assert_eq!(executor.0.load(Ordering::SeqCst), 2);
        assert_eq!(Arc::strong_count(&executor), 2, "consumed by the wake");
        assert_eq!(state_of(&scope), TaskState::Scheduled);
        done.store(true, Ordering::SeqCst);
        assert_eq!(
            tracked.as_mut().poll(&mut Context::from_waker(&waker)),
            Poll::Ready(7)
        );
    }

    #[test]
    fn a_poll_that_clones_its_waker_and_panics_leaves_no_wrapper_behind() {
        struct ClonesThenPanics(Arc<Mutex<Option<Waker>>>);
        impl Future for ClonesThenPanics {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                *self.0.lock().unwrap() = Some(cx.waker().clone());
                panic!("after the clone");
            }
        }
        let scope = open_scope(ScopeLabel::Named("clone then panic".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let slot = Arc::new(Mutex::new(None));
        let mut tracked = Box::pin(track(ClonesThenPanics(Arc::clone(&slot))));
        let executor = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&executor));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = tracked.as_mut().poll(&mut Context::from_waker(&waker));
        }));
        assert!(panicked.is_err());
        // The clone made before the panic still wakes the task; the wrapper dies with it.
        slot.lock().unwrap().take().unwrap().wake();
        assert_eq!(executor.0.load(Ordering::SeqCst), 1);
        drop(tracked);
        assert_eq!(
            Arc::strong_count(&executor),
            2,
            "the wrapper let go of the executor's waker"
        );
    }

    #[test]
    fn a_poll_that_panics_leaves_the_task_whole_until_it_is_dropped() {
        /// Keeps a clone of its waker, then panics when polled again.
        struct PanicsOnSecondPoll(Option<Waker>);
        impl Future for PanicsOnSecondPoll {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.0.is_some() {
                    panic!("second poll");
                }
                self.0 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
        let scope = open_scope(ScopeLabel::Named("panics".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let mut tracked = Box::pin(track(PanicsOnSecondPoll(None)));
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&waker);
        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = tracked.as_mut().poll(&mut cx);
        }));
        assert!(panicked.is_err());
        assert_eq!(
            scope.live_tasks().len(),
            1,
            "still alive: its owner may drop it later"
        );
        assert_eq!(
            crate::context::current_task().map(|t| t.id),
            None,
            "left the task"
        );
        drop(tracked); // Miri reports the record or the kept waker if either leaked.
        assert_eq!(scope.live_tasks().len(), 0);
    }

    #[test]
    fn a_tracked_future_dropped_unfinished_ends_its_task() {
        let scope = open_scope(ScopeLabel::Named("dropped".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let tracked = track_named("never-polled", async { 1 });
        assert_eq!(scope.live_tasks()[0].name(), Some("never-polled"));
        drop(tracked);
        assert_eq!(scope.live_tasks().len(), 0);
    }

    #[test]
    fn waiting_marks_the_polling_task_blocked_until_it_ends() {
        let scope = open_scope(ScopeLabel::Named("waiting".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let parked = Parked {
            slot: Arc::clone(&slot),
            done: Arc::clone(&done),
        };
        let mut tracked = pin!(track(crate::waiting("response", parked)));
        let executor = Arc::new(CountingWaker::default());
        let waker = Waker::from(executor);
        let mut cx = Context::from_waker(&waker);
        assert!(tracked.as_mut().poll(&mut cx).is_pending());
        let task = &scope.live_tasks()[0];
        assert_eq!(task.state.observe().state, TaskState::Blocked);
        assert_eq!(task.blocked().unwrap().reason, "response");
        done.store(true, Ordering::SeqCst);
        slot.lock().unwrap().take().unwrap().wake();
        assert_eq!(tracked.as_mut().poll(&mut cx), Poll::Ready(7));
        assert!(task.blocked().is_none());
        assert_eq!(scope.live_tasks().len(), 0);
    }

    #[test]
    fn block_on_drives_a_future_woken_from_another_thread() {
        let (slot, done) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let parked = Parked {
            slot: Arc::clone(&slot),
            done: Arc::clone(&done),
        };
        let waker_thread = std::thread::spawn(move || loop {
            if let Some(waker) = slot.lock().unwrap().take() {
                done.store(true, Ordering::SeqCst);
                waker.wake();
                return;
            }
            std::thread::yield_now();
        });
        assert_eq!(block_on(track(parked)), 7);
        waker_thread.join().unwrap();
    }
}
