//! Every change of a task's state (SPEC §3) happens here, and nowhere else.
//!
//! A [`StateCell`] holds a task's state and since when in one atomic [word](word::StateWord), the
//! details of a `blocked` state (reason, site, stack) beside it under a lock that only blocking
//! calls and reports touch, and for an async task the waker bookkeeping of [`polling`] that tells
//! `scheduled`, `idle` and `lost` apart. Callers (the front ends: threads, tracked futures, the
//! annotations, runtime hooks) say what happened; this module decides the state.

mod polling;
mod word;

use std::panic::Location;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::vocab::{TaskKind, TaskState};
use word::{PackedState, StateWord};

pub(crate) use polling::AsyncState;
#[cfg(all(feature = "tokio", not(tokio_unstable)))]
pub(crate) use polling::ExecutorClaim;

/// Why and where a task is blocked.
#[derive(Clone)]
pub(crate) struct Blocked {
    pub(crate) reason: &'static str,
    pub(crate) site: &'static Location<'static>,
    /// The stack when it blocked, at capture level `backtrace`.
    pub(crate) stack: Option<Arc<backtrace::Backtrace>>,
}

/// A task's state, since when, the details of a `blocked` state, and (async tasks) its wakers.
pub(crate) struct StateCell {
    word: StateWord,
    blocked: Mutex<Option<Blocked>>,
    /// Async tasks only: the bookkeeping behind `scheduled`, `idle` and `lost`.
    polling: Option<AsyncState>,
}

/// What a task is doing right now, as a report shows it.
pub(crate) struct Observed {
    pub(crate) state: TaskState,
    /// When it entered `state`, on [`clock`](crate::clock).
    pub(crate) since: u64,
    /// When its last poll started, for a polled async task.
    pub(crate) last_polled: Option<u64>,
}

impl StateCell {
    /// The state of a task of `kind` spawned at `now`: a thread runs from the start; a future
    /// waits for its first poll.
    pub(crate) fn new(kind: TaskKind, now: u64) -> StateCell {
        let (initial, polling) = match kind {
            TaskKind::Async => (TaskState::Scheduled, Some(AsyncState::default())),
            _ => (TaskState::Running, None),
        };
        StateCell {
            word: StateWord::new(initial, now),
            blocked: Mutex::new(None),
            polling,
        }
    }

    /// The state and the clock reading when it was entered.
    #[inline]
    pub(crate) fn load(&self) -> (TaskState, u64) {
        self.word.load()
    }

    /// The waker bookkeeping of an async task; `None` for a thread.
    #[inline]
    pub(crate) fn polling(&self) -> Option<&AsyncState> {
        self.polling.as_ref()
    }

    /// The details of the current `blocked` state, if any.
    pub(crate) fn blocked(&self) -> Option<Blocked> {
        self.blocked.lock().clone()
    }

    /// Enters `blocked` at `now`, returning what to restore when the blocking call returns.
    pub(crate) fn block(&self, blocked: Blocked, now: u64) -> SavedState {
        let details = self.blocked.lock().replace(blocked);
        let word = self.word.swap(TaskState::Blocked, now);
        SavedState { word, details }
    }

    /// Leaves `blocked` at `now`, back to what [`block`](Self::block) saved.
    pub(crate) fn unblock(&self, saved: SavedState, now: u64) {
        *self.blocked.lock() = saved.details;
        let (state, since) = saved.word.unpack();
        // Back in an outer blocking call (`blocking("db", || rx.recv())`), the task has been
        // blocked in it all along; any other state starts now.
        let since = if state == TaskState::Blocked {
            since
        } else {
            now
        };
        self.word.set(state, since);
    }

    /// Sets the state outright (an async task that marks itself `blocked` stays `running` until
    /// its poll ends).
    pub(crate) fn set(&self, state: TaskState, since: u64) {
        self.word.set(state, since);
    }

    /// A poll of this async task starts at `now`: it is `running`, and earlier wakes are consumed.
    #[inline]
    pub(crate) fn begin_poll(&self, now: u64) {
        if let Some(polling) = &self.polling {
            polling::begin_poll(&self.word, polling, now);
        }
    }

    /// A poll of this async task returned `Pending` at `now`: settles the state it waits in.
    pub(crate) fn end_pending_poll(&self, now: u64) {
        if let Some(polling) = &self.polling {
            polling::end_pending_poll(&self.word, polling, now);
        }
    }

    /// One of the task's wakers was woken.
    pub(crate) fn note_wake(&self) {
        if let Some(polling) = &self.polling {
            polling::note_wake(&self.word, polling);
        }
    }

    /// A clone of the task's waker was made.
    #[inline]
    pub(crate) fn note_waker_cloned(&self) {
        if let Some(polling) = &self.polling {
            polling::note_waker_cloned(polling);
        }
    }

    /// A clone of the task's waker was dropped (or consumed by `wake`).
    pub(crate) fn note_waker_dropped(&self) {
        if let Some(polling) = &self.polling {
            polling::note_waker_dropped(&self.word, polling);
        }
    }

    /// The state a report shows, and since when.
    ///
    /// For a future whose wakers are observed, an `idle` state with no live waker reads `lost`:
    /// the transitions make that the state already, and this keeps a report right even if one
    /// was overtaken.
    pub(crate) fn observe(&self) -> Observed {
        let (mut state, since) = self.word.load();
        let Some(polling) = &self.polling else {
            return Observed {
                state,
                since,
                last_polled: None,
            };
        };
        if state == TaskState::Idle && polling.observes_wakers() && polling.live_wakers() == 0 {
            state = TaskState::Lost;
        }
        Observed {
            state,
            since,
            last_polled: polling.last_polled(),
        }
    }
}

/// The state a blocking call interrupted.
pub(crate) struct SavedState {
    word: PackedState,
    details: Option<Blocked>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(reason: &'static str) -> Blocked {
        Blocked {
            reason,
            site: Location::caller(),
            stack: None,
        }
    }

    #[test]
    fn nested_blocking_restores_the_outer_reason_and_its_start() {
        let cell = StateCell::new(TaskKind::Thread, 10);
        let outer = cell.block(blocked("db"), 20);
        let inner = cell.block(blocked("chan receive"), 30);
        assert_eq!(cell.blocked().unwrap().reason, "chan receive");
        cell.unblock(inner, 40);
        assert_eq!(
            cell.load(),
            (TaskState::Blocked, 20),
            "blocked in `db` since 20"
        );
        assert_eq!(cell.blocked().unwrap().reason, "db");
        cell.unblock(outer, 50);
        assert_eq!(cell.load(), (TaskState::Running, 50));
        assert!(cell.blocked().is_none());
    }

    /// An async task whose wakers are observed, as `task::track` makes it.
    fn tracked_future() -> StateCell {
        let cell = StateCell::new(TaskKind::Async, 0);
        cell.polling().unwrap().observe_wakers();
        cell
    }

    #[test]
    fn a_pending_poll_settles_by_wakers_and_wakes() {
        let cell = tracked_future();
        assert_eq!(cell.observe().state, TaskState::Scheduled, "not polled yet");

        cell.begin_poll(1);
        assert_eq!(cell.observe().state, TaskState::Running);
        cell.note_waker_cloned();
        cell.end_pending_poll(2);
        assert_eq!(cell.observe().state, TaskState::Idle);

        cell.note_wake();
        assert_eq!(cell.observe().state, TaskState::Scheduled);

        cell.begin_poll(3);
        cell.end_pending_poll(4);
        assert_eq!(
            cell.observe().state,
            TaskState::Idle,
            "the clone is still alive"
        );
        assert_eq!(cell.observe().last_polled, Some(3));
        cell.note_waker_dropped();
        assert_eq!(cell.observe().state, TaskState::Lost);
    }

    #[test]
    fn a_wake_during_the_poll_ends_it_scheduled() {
        let cell = tracked_future();
        cell.begin_poll(1);
        cell.note_wake();
        assert_eq!(
            cell.observe().state,
            TaskState::Running,
            "a wake does not interrupt a poll"
        );
        cell.end_pending_poll(2);
        assert_eq!(cell.observe().state, TaskState::Scheduled);
    }

    #[test]
    fn pending_without_any_waker_is_lost_at_once() {
        let cell = tracked_future();
        cell.begin_poll(1);
        cell.end_pending_poll(2);
        assert_eq!(cell.observe().state, TaskState::Lost);
    }

    #[test]
    fn hook_tasks_are_idle_not_lost() {
        // A runtime hook's task: leakcheck does not see its wakers.
        let cell = StateCell::new(TaskKind::Async, 0);
        cell.begin_poll(1);
        cell.end_pending_poll(2);
        assert_eq!(cell.observe().state, TaskState::Idle);
    }

    #[test]
    fn the_last_waker_dropped_on_another_thread_makes_it_lost() {
        let cell = std::sync::Arc::new(tracked_future());
        cell.begin_poll(1);
        cell.note_waker_cloned();
        cell.end_pending_poll(2);
        let dropper = std::sync::Arc::clone(&cell);
        std::thread::spawn(move || dropper.note_waker_dropped())
            .join()
            .unwrap();
        assert_eq!(cell.observe().state, TaskState::Lost);
    }

    use super::polling::ExecutorClaim;

    struct CountedClaim(std::sync::atomic::AtomicUsize);

    impl ExecutorClaim for &'static CountedClaim {
        fn release(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn an_executor_claims_once_and_is_released() {
        static CLAIM: CountedClaim = CountedClaim(std::sync::atomic::AtomicUsize::new(0));
        let cell = tracked_future();
        let polling = cell.polling().unwrap();
        assert!(!polling.is_claimed());
        assert!(polling.claim(Box::new(&CLAIM)).is_ok());
        assert!(polling.claim(Box::new(&CLAIM)).is_err(), "claimed already");
        polling.release_claim();
        assert_eq!(CLAIM.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn threads_run_from_the_start_and_futures_wait_for_a_poll() {
        assert_eq!(
            StateCell::new(TaskKind::Thread, 1).observe().state,
            TaskState::Running
        );
        let future = StateCell::new(TaskKind::Async, 1);
        assert_eq!(future.observe().state, TaskState::Scheduled);
        assert_eq!(future.observe().last_polled, None);
    }
}
