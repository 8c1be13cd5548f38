//! The async side of a task's state: what tells `scheduled`, `idle`, `lost` and `blocked` apart.
//!
//! A tracked future ([`Tracked`](crate::task::Tracked)) hands its inner future a waker of its own
//! that forwards to the executor's waker and counts, in [`AsyncState`], how many clones of it are
//! alive. From that count and a "woken" flag, the end of every poll decides the state:
//!
//! | at the end of a `Pending` poll                 | state       |
//! | ---------------------------------------------- | ----------- |
//! | woken since the poll started                   | `scheduled` |
//! | inside [`waiting`](crate::waiting)             | `blocked`   |
//! | a waker clone is alive somewhere               | `idle`      |
//! | no waker clone is alive                        | `lost`      |
//!
//! and the wakers keep it up to date between polls: a wake moves the task to `scheduled`; dropping
//! the last clone of an `idle` (or `blocked`) task moves it to `lost`, stamped with that moment.
//!
//! The end of a poll and the wakers race (a waker may be woken or dropped on another thread while
//! the poll ends). Each side stores its own fact, then issues a `SeqCst` fence, then reads the
//! other side's fact: whichever comes second sees what the first stored, so a wake or a last drop
//! is never lost between the two.
//!
//! Tasks registered by a runtime hook (tokio with `--cfg tokio_unstable`) have an `AsyncState` but
//! no waker of ours: for them a `Pending` poll ends in `idle` (or `blocked`), never in `lost`.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::clock;
use crate::registry::TaskRecord;
use crate::snapshot::Observed;
use crate::state::TaskState;

/// Per-task bookkeeping of an async task. Created zeroed by the registry ([`Default`]): never
/// polled, not blocked, no wakers, wakers not observed.
#[derive(Default)]
pub(crate) struct AsyncState {
    /// Clones of our waker alive outside the task. Zero while pending means nothing can wake it.
    live_wakers: AtomicUsize,
    /// Set by every wake; cleared when a poll starts.
    woken: AtomicBool,
    /// Set while a poll runs. The state then belongs to the poll (`running`, or `blocked` in a
    /// [`blocking`](crate::blocking) call made inside it): wakers leave it alone, and the end of
    /// the poll settles what they did.
    in_poll: AtomicBool,
    /// Whether a [`Tracked`](crate::task::Tracked) wraps the executor's waker, so that the counts
    /// above mean something. Runtime-hook tasks leave it unset.
    observes_wakers: AtomicBool,
    /// When the last poll started, plus one; zero for never.
    last_polled: AtomicU64,
    /// When the task entered a [`waiting`](crate::waiting) that is still pending, plus one; zero
    /// when it is not inside one.
    blocked_since: AtomicU64,
    /// The tokio task this future runs in, when that runtime is one a leakcheck test built
    /// (stable tokio; with `tokio_unstable` the runtime's hooks know its tasks).
    #[cfg(all(feature = "tokio", not(tokio_unstable)))]
    pub(crate) tokio: std::sync::OnceLock<crate::tokio::Claim>,
}

/// `0` stands for "none" in the timestamp fields, so every stored timestamp is shifted by one.
#[inline]
fn encode(timestamp: u64) -> u64 {
    timestamp.saturating_add(1)
}

#[inline]
fn decode(stored: u64) -> Option<u64> {
    stored.checked_sub(1)
}

impl AsyncState {
    /// Declares that this task's wakers are ours, so that their count is meaningful.
    pub(crate) fn observe_wakers(&self) {
        self.observes_wakers.store(true, Ordering::Relaxed);
    }

    pub(crate) fn observes_wakers(&self) -> bool {
        self.observes_wakers.load(Ordering::Relaxed)
    }

    /// When the last poll started, if it was ever polled.
    pub(crate) fn last_polled(&self) -> Option<u64> {
        decode(self.last_polled.load(Ordering::Relaxed))
    }

    pub(crate) fn live_wakers(&self) -> usize {
        self.live_wakers.load(Ordering::Relaxed)
    }

    /// Since when the task is inside a pending [`waiting`](crate::waiting), if it is.
    pub(crate) fn blocked_since(&self) -> Option<u64> {
        decode(self.blocked_since.load(Ordering::Relaxed))
    }

    pub(crate) fn set_blocked_since(&self, since: Option<u64>) {
        self.blocked_since
            .store(since.map_or(0, encode), Ordering::Relaxed);
    }
}

/// A poll of `record` starts at `now`: it is `running`, and earlier wakes are consumed.
#[inline]
pub(crate) fn begin_poll(record: &TaskRecord, state: &AsyncState, now: u64) {
    state.woken.store(false, Ordering::Relaxed);
    state.in_poll.store(true, Ordering::Relaxed);
    state.last_polled.store(encode(now), Ordering::Relaxed);
    record.state.set(TaskState::Running, now);
}

/// A poll of `record` returned `Pending` at `now`: settles the state it waits in.
pub(crate) fn end_pending_poll(record: &TaskRecord, state: &AsyncState, now: u64) {
    let (waiting_state, since) = match state.blocked_since() {
        Some(since) => (TaskState::Blocked, since),
        None => (TaskState::Idle, now),
    };
    record.state.set(waiting_state, since);
    state.in_poll.store(false, Ordering::Relaxed);
    if !state.observes_wakers() {
        return;
    }
    // Pairs with the fences in `note_wake` and `note_waker_dropped`: either they see the poll
    // over, or this sees what they stored.
    fence(Ordering::SeqCst);
    if state.woken.load(Ordering::Relaxed) {
        record
            .state
            .transition(waiting_state, TaskState::Scheduled, now);
    } else if state.live_wakers.load(Ordering::Relaxed) == 0 {
        record.state.transition(waiting_state, TaskState::Lost, now);
    }
}

/// One of the task's wakers was woken.
pub(crate) fn note_wake(record: &TaskRecord, state: &AsyncState) {
    state.woken.store(true, Ordering::Relaxed);
    // Pairs with the fence in `end_pending_poll`.
    fence(Ordering::SeqCst);
    if state.in_poll.load(Ordering::Relaxed) {
        return; // The end of the poll sees `woken`.
    }
    let (current, _) = record.state.load();
    if matches!(
        current,
        TaskState::Idle | TaskState::Blocked | TaskState::Lost
    ) {
        record
            .state
            .transition(current, TaskState::Scheduled, clock::now());
    }
}

/// A clone of the task's waker was made.
#[inline]
pub(crate) fn note_waker_cloned(state: &AsyncState) {
    state.live_wakers.fetch_add(1, Ordering::Relaxed);
}

/// A clone of the task's waker was dropped (or consumed by `wake`).
pub(crate) fn note_waker_dropped(record: &TaskRecord, state: &AsyncState) {
    if state.live_wakers.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    // The last one: if the task is pending, nothing can wake it any more.
    // Pairs with the fence in `end_pending_poll`.
    fence(Ordering::SeqCst);
    if state.in_poll.load(Ordering::Relaxed) {
        return; // The end of the poll sees the count.
    }
    let (current, _) = record.state.load();
    if matches!(current, TaskState::Idle | TaskState::Blocked)
        && record
            .state
            .transition(current, TaskState::Lost, clock::now())
        // A poll may have run between our last drop and the transition, and left a new waker
        // behind: then the task is waiting in `current` again, not lost.
        && state.live_wakers.load(Ordering::SeqCst) > 0
    {
        record
            .state
            .transition(TaskState::Lost, current, clock::now());
    }
}

/// The state a report shows for `record`, and since when.
///
/// For a future whose wakers are observed, an `idle` state with no live waker reads `lost`: the
/// transitions above make that the state already, and this keeps a report right even if one was
/// overtaken.
pub(crate) fn observe(record: &TaskRecord) -> Observed {
    let Some(async_state) = &record.async_state else {
        return crate::snapshot::observe_plain(record);
    };
    let (mut state, since) = record.state.load();
    if state == TaskState::Idle && async_state.observes_wakers() && async_state.live_wakers() == 0 {
        state = TaskState::Lost;
    }
    Observed {
        state,
        since,
        last_polled: async_state.last_polled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TaskKind;
    use std::panic::Location;

    fn record() -> std::sync::Arc<TaskRecord> {
        let record = TaskRecord::register(TaskKind::Async, None, Location::caller(), "test");
        record.async_state.as_ref().unwrap().observe_wakers();
        record
    }

    fn state_of(record: &TaskRecord) -> TaskState {
        observe(record).state
    }

    #[test]
    fn a_pending_poll_settles_by_wakers_and_wakes() {
        let record = record();
        let state = record.async_state.as_ref().unwrap();
        assert_eq!(state_of(&record), TaskState::Scheduled, "not polled yet");

        begin_poll(&record, state, clock::now());
        assert_eq!(state_of(&record), TaskState::Running);
        note_waker_cloned(state);
        end_pending_poll(&record, state, clock::now());
        assert_eq!(state_of(&record), TaskState::Idle);

        note_wake(&record, state);
        assert_eq!(state_of(&record), TaskState::Scheduled);

        begin_poll(&record, state, clock::now());
        end_pending_poll(&record, state, clock::now());
        assert_eq!(
            state_of(&record),
            TaskState::Idle,
            "the clone is still alive"
        );
        note_waker_dropped(&record, state);
        assert_eq!(state_of(&record), TaskState::Lost);
        record.exit();
    }

    #[test]
    fn a_wake_during_the_poll_ends_it_scheduled() {
        let record = record();
        let state = record.async_state.as_ref().unwrap();
        begin_poll(&record, state, clock::now());
        note_wake(&record, state);
        assert_eq!(
            state_of(&record),
            TaskState::Running,
            "a wake does not interrupt a poll"
        );
        end_pending_poll(&record, state, clock::now());
        assert_eq!(state_of(&record), TaskState::Scheduled);
        record.exit();
    }

    #[test]
    fn pending_without_any_waker_is_lost_at_once() {
        let record = record();
        let state = record.async_state.as_ref().unwrap();
        begin_poll(&record, state, clock::now());
        end_pending_poll(&record, state, clock::now());
        assert_eq!(state_of(&record), TaskState::Lost);
        record.exit();
    }

    #[test]
    fn hook_tasks_are_idle_not_lost() {
        let record = TaskRecord::register(TaskKind::Async, None, Location::caller(), "test");
        let state = record.async_state.as_ref().unwrap();
        begin_poll(&record, state, clock::now());
        end_pending_poll(&record, state, clock::now());
        assert_eq!(state_of(&record), TaskState::Idle);
        record.exit();
    }

    #[test]
    fn timestamps_round_trip_and_zero_means_none() {
        assert_eq!(decode(encode(0)), Some(0));
        assert_eq!(decode(encode(42)), Some(42));
        assert_eq!(decode(0), None);
    }
}
