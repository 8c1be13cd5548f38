//! Every change of a task's state (SPEC §3) happens here, and nowhere else.
//!
//! A [`StateCell`] holds a task's state and since when in one atomic [word](word::StateWord), and
//! for an async task the waker bookkeeping of [`polling`] that tells `scheduled`, `idle` and `lost`
//! apart: 24 bytes, so that a task record fits in two cache lines. What only some tasks need —
//! the details of a `blocked` state (reason, site, stack), an executor's claim — is in
//! [`StateDetails`], which the record keeps out of line and makes when a task first needs it.
//! Callers (the front ends: threads, tracked futures, the annotations, runtime hooks) say what
//! happened; this module decides the state.

mod polling;
mod word;

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::clock::Stamp;
use crate::vocab::{TaskKind, TaskState};
use word::{PackedState, StateWord};

pub(crate) use polling::ExecutorClaim;
#[cfg(all(feature = "tokio", tokio_unstable))] // The runtime hooks'.
pub(crate) use polling::PollStart;

/// Why and where a task is blocked.
#[derive(Clone)]
pub(crate) struct Blocked {
    pub(crate) reason: &'static str,
    pub(crate) site: &'static Location<'static>,
    /// The stack when it blocked, at capture level `backtrace`.
    pub(crate) stack: Option<Arc<backtrace::Backtrace>>,
}

/// A task's kind, when it was spawned, its state and since when, and (async tasks) its wakers.
pub(crate) struct StateCell {
    word: StateWord,
    spawned: Stamp,
    kind: TaskKind,
    /// Async tasks only: the bookkeeping behind `scheduled`, `idle` and `lost` (see [`polling`]).
    /// Set by every wake; cleared when a poll starts.
    woken: AtomicBool,
    /// Set while a poll runs. The state then belongs to the poll (`running`, or `blocked` in a
    /// `blocking` call made inside it): wakers leave it alone, and the end of the poll settles
    /// what they did.
    in_poll: AtomicBool,
    /// Whether a `Tracked` wraps the executor's waker, so that `live_wakers` means something.
    /// Runtime-hook tasks leave it unset.
    observes_wakers: AtomicBool,
    /// Clones of our waker alive outside the task. Zero while pending means nothing can wake it.
    live_wakers: AtomicU32,
    /// When the last poll started (a first poll that ended pending: when it ended), as [`Stamp`]
    /// bits; zero for never.
    last_polled: AtomicU32,
}

/// The part of a task's state that only some tasks need, kept out of line.
#[derive(Default)]
pub(crate) struct StateDetails {
    /// The details of the current `blocked` state, if any.
    blocked: Mutex<Option<Blocked>>,
    /// Async tasks: when the task entered a `waiting` that is still pending, plus one; zero when
    /// it is not inside one.
    blocked_since: AtomicU64,
    /// The executor task this future runs in, claimed by an executor integration.
    executor_claim: OnceLock<Box<dyn ExecutorClaim>>,
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
        let initial = match kind {
            TaskKind::Async => TaskState::Scheduled,
            _ => TaskState::Running,
        };
        StateCell {
            word: StateWord::new(initial, now),
            spawned: Stamp::of(now),
            kind,
            woken: AtomicBool::new(false),
            in_poll: AtomicBool::new(false),
            observes_wakers: AtomicBool::new(false),
            live_wakers: AtomicU32::new(0),
            last_polled: AtomicU32::new(0),
        }
    }

    pub(crate) fn kind(&self) -> TaskKind {
        self.kind
    }

    /// When the task was spawned (to about a millisecond), given a later reading `now`.
    pub(crate) fn spawned_at(&self, now: u64) -> u64 {
        self.spawned.expand(now)
    }

    /// The state and the clock reading when it was entered.
    #[inline]
    pub(crate) fn load(&self) -> (TaskState, u64) {
        self.word.load()
    }

    /// Enters `blocked` at `now`, returning what to restore when the blocking call returns.
    pub(crate) fn block(&self, details: &StateDetails, blocked: Blocked, now: u64) -> SavedState {
        let saved_details = details.blocked.lock().replace(blocked);
        let word = self.word.swap(TaskState::Blocked, now);
        SavedState {
            word,
            details: saved_details,
        }
    }

    /// Leaves `blocked` at `now`, back to what [`block`](Self::block) saved.
    pub(crate) fn unblock(&self, details: &StateDetails, saved: SavedState, now: u64) {
        *details.blocked.lock() = saved.details;
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

    /// The state a report shows, and since when.
    ///
    /// For a future whose wakers are observed, an `idle` state with no live waker reads `lost`:
    /// the transitions make that the state already, and this keeps a report right even if one
    /// was overtaken. `now` is the reading the caller measures ages from (one per report, not
    /// one per task).
    pub(crate) fn observe_at(&self, now: u64) -> Observed {
        let (mut state, since) = self.word.load();
        if self.kind != TaskKind::Async {
            return Observed {
                state,
                since,
                last_polled: None,
            };
        }
        if state == TaskState::Idle && self.observes_wakers() && self.live_wakers() == 0 {
            state = TaskState::Lost;
        }
        Observed {
            state,
            since,
            last_polled: self.last_polled(now),
        }
    }

    /// [`observe_at`](Self::observe_at) now.
    #[cfg(test)]
    pub(crate) fn observe(&self) -> Observed {
        self.observe_at(crate::clock::now())
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
        let (cell, details) = (
            StateCell::new(TaskKind::Thread, 10),
            StateDetails::default(),
        );
        let outer = cell.block(&details, blocked("db"), 20);
        let inner = cell.block(&details, blocked("chan receive"), 30);
        assert_eq!(details.blocked().unwrap().reason, "chan receive");
        cell.unblock(&details, inner, 40);
        assert_eq!(
            cell.load(),
            (TaskState::Blocked, 20),
            "blocked in `db` since 20"
        );
        assert_eq!(details.blocked().unwrap().reason, "db");
        cell.unblock(&details, outer, 50);
        assert_eq!(cell.load(), (TaskState::Running, 50));
        assert!(details.blocked().is_none());
    }

    /// An async task whose wakers are observed, as `task::track` makes it.
    fn tracked_future() -> StateCell {
        let cell = StateCell::new(TaskKind::Async, 0);
        cell.observe_wakers();
        cell
    }

    #[test]
    fn a_pending_poll_settles_by_wakers_and_wakes() {
        let cell = tracked_future();
        assert_eq!(cell.observe().state, TaskState::Scheduled, "not polled yet");

        cell.begin_poll(1);
        assert_eq!(cell.observe().state, TaskState::Running);
        cell.note_waker_cloned();
        cell.end_pending_poll(None, 2);
        assert_eq!(cell.observe().state, TaskState::Idle);

        cell.note_wake();
        assert_eq!(cell.observe().state, TaskState::Scheduled);

        let third_poll = crate::clock::now();
        cell.begin_poll(third_poll);
        cell.end_pending_poll(None, third_poll);
        assert_eq!(
            cell.observe().state,
            TaskState::Idle,
            "the clone is still alive"
        );
        let last_polled = cell.observe().last_polled.expect("polled");
        assert!(
            last_polled <= third_poll && third_poll - last_polled < 1 << 20,
            "kept to the unit of a stamp"
        );
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
        cell.end_pending_poll(None, 2);
        assert_eq!(cell.observe().state, TaskState::Scheduled);
    }

    #[test]
    fn pending_without_any_waker_is_lost_at_once() {
        let cell = tracked_future();
        cell.begin_poll(1);
        cell.end_pending_poll(None, 2);
        assert_eq!(cell.observe().state, TaskState::Lost);
    }

    #[test]
    fn hook_tasks_are_idle_not_lost() {
        // A runtime hook's task: leakcheck does not see its wakers.
        let cell = StateCell::new(TaskKind::Async, 0);
        cell.begin_poll(1);
        cell.end_pending_poll(None, 2);
        assert_eq!(cell.observe().state, TaskState::Idle);
    }

    #[test]
    fn the_last_waker_dropped_on_another_thread_makes_it_lost() {
        let cell = std::sync::Arc::new(tracked_future());
        cell.begin_poll(1);
        cell.note_waker_cloned();
        cell.end_pending_poll(None, 2);
        let dropper = std::sync::Arc::clone(&cell);
        std::thread::spawn(move || dropper.note_waker_dropped())
            .join()
            .unwrap();
        assert_eq!(cell.observe().state, TaskState::Lost);
    }

    struct CountedClaim(std::sync::atomic::AtomicUsize);

    impl ExecutorClaim for &'static CountedClaim {
        fn release(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn an_executor_claims_once_and_is_released() {
        static CLAIM: CountedClaim = CountedClaim(std::sync::atomic::AtomicUsize::new(0));
        let details = StateDetails::default();
        assert!(!details.is_claimed());
        assert!(details.claim(Box::new(&CLAIM)).is_ok());
        assert!(details.claim(Box::new(&CLAIM)).is_err(), "claimed already");
        details.release_claim();
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
        assert!(!future.was_polled());
        assert_eq!(
            std::mem::size_of::<StateCell>(),
            24,
            "a record's state fits beside its links in two cache lines"
        );
    }
}
