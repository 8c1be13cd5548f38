//! The async side of a task's state: what tells `scheduled`, `idle`, `lost` and `blocked` apart.
//!
//! A tracked future (`task::Tracked`) hands its inner future a waker of its own
//! that forwards to the executor's waker and counts, in [`AsyncState`], how many clones of it are
//! alive. From that count and a "woken" flag, the end of every poll decides the state:
//!
//! | at the end of a `Pending` poll                 | state       |
//! | ---------------------------------------------- | ----------- |
//! | woken since the poll started                   | `scheduled` |
//! | inside `waiting`                               | `blocked`   |
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
use std::sync::OnceLock;

use super::word::StateWord;
use crate::clock;
use crate::vocab::TaskState;

/// What an executor integration keeps in a task it claimed (tokio's stable-runtime bookkeeping,
/// for one), given back when the tracked future ends. The core defines the slot; the
/// integration fills it, so the core knows no executor.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))] // Only stable tokio claims tasks.
pub(crate) trait ExecutorClaim: Send + Sync {
    /// The tracked future ended: the executor forgets the claim.
    fn release(&self);
}

/// Per-task bookkeeping of an async task. Created zeroed by the registry ([`Default`]): never
/// polled, not blocked, no wakers, wakers not observed.
#[derive(Default)]
pub(crate) struct AsyncState {
    /// Clones of our waker alive outside the task. Zero while pending means nothing can wake it.
    live_wakers: AtomicUsize,
    /// Set by every wake; cleared when a poll starts.
    woken: AtomicBool,
    /// Set while a poll runs. The state then belongs to the poll (`running`, or `blocked` in a
    /// `blocking` call made inside it): wakers leave it alone, and the end of
    /// the poll settles what they did.
    in_poll: AtomicBool,
    /// Whether a `Tracked` wraps the executor's waker, so that the counts
    /// above mean something. Runtime-hook tasks leave it unset.
    observes_wakers: AtomicBool,
    /// When the last poll started, plus one; zero for never.
    last_polled: AtomicU64,
    /// When the task entered a `waiting` that is still pending, plus one; zero
    /// when it is not inside one.
    blocked_since: AtomicU64,
    /// The executor task this future runs in, claimed by an executor integration.
    executor_claim: OnceLock<Box<dyn ExecutorClaim>>,
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

    /// Since when the task is inside a pending `waiting`, if it is.
    pub(crate) fn blocked_since(&self) -> Option<u64> {
        decode(self.blocked_since.load(Ordering::Relaxed))
    }

    pub(crate) fn set_blocked_since(&self, since: Option<u64>) {
        self.blocked_since
            .store(since.map_or(0, encode), Ordering::Relaxed);
    }

    /// Records that an executor claimed the task; gives `claim` back if one already did.
    #[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
    pub(crate) fn claim(
        &self,
        claim: Box<dyn ExecutorClaim>,
    ) -> Result<(), Box<dyn ExecutorClaim>> {
        self.executor_claim.set(claim)
    }

    /// Whether an executor claimed the task.
    #[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
    pub(crate) fn is_claimed(&self) -> bool {
        self.executor_claim.get().is_some()
    }

    /// The tracked future ended: releases the executor's claim, if any.
    pub(crate) fn release_claim(&self) {
        if let Some(claim) = self.executor_claim.get() {
            claim.release();
        }
    }
}

/// A poll starts at `now`: it is `running`, and earlier wakes are consumed.
#[inline]
pub(super) fn begin_poll(word: &StateWord, state: &AsyncState, now: u64) {
    state.woken.store(false, Ordering::Relaxed);
    state.in_poll.store(true, Ordering::Relaxed);
    state.last_polled.store(encode(now), Ordering::Relaxed);
    word.set(TaskState::Running, now);
}

/// A poll returned `Pending` at `now`: settles the state it waits in.
pub(super) fn end_pending_poll(word: &StateWord, state: &AsyncState, now: u64) {
    let (waiting_state, since) = match state.blocked_since() {
        Some(since) => (TaskState::Blocked, since),
        None => (TaskState::Idle, now),
    };
    word.set(waiting_state, since);
    state.in_poll.store(false, Ordering::Relaxed);
    if !state.observes_wakers() {
        return;
    }
    // Pairs with the fences in `note_wake` and `note_waker_dropped`: either they see the poll
    // over, or this sees what they stored.
    fence(Ordering::SeqCst);
    if state.woken.load(Ordering::Relaxed) {
        word.transition(waiting_state, TaskState::Scheduled, now);
    } else if state.live_wakers.load(Ordering::Relaxed) == 0 {
        word.transition(waiting_state, TaskState::Lost, now);
    }
}

/// One of the task's wakers was woken.
pub(super) fn note_wake(word: &StateWord, state: &AsyncState) {
    state.woken.store(true, Ordering::Relaxed);
    // Pairs with the fence in `end_pending_poll`.
    fence(Ordering::SeqCst);
    if state.in_poll.load(Ordering::Relaxed) {
        return; // The end of the poll sees `woken`.
    }
    let (current, _) = word.load();
    if matches!(
        current,
        TaskState::Idle | TaskState::Blocked | TaskState::Lost
    ) {
        word.transition(current, TaskState::Scheduled, clock::now());
    }
}

/// A clone of the task's waker was made.
#[inline]
pub(super) fn note_waker_cloned(state: &AsyncState) {
    state.live_wakers.fetch_add(1, Ordering::Relaxed);
}

/// A clone of the task's waker was dropped (or consumed by `wake`).
pub(super) fn note_waker_dropped(word: &StateWord, state: &AsyncState) {
    if state.live_wakers.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    // The last one: if the task is pending, nothing can wake it any more.
    // Pairs with the fence in `end_pending_poll`.
    fence(Ordering::SeqCst);
    if state.in_poll.load(Ordering::Relaxed) {
        return; // The end of the poll sees the count.
    }
    let (current, _) = word.load();
    if matches!(current, TaskState::Idle | TaskState::Blocked)
        && word.transition(current, TaskState::Lost, clock::now())
        // A poll may have run between our last drop and the transition, and left a new waker
        // behind: then the task is waiting in `current` again, not lost.
        && state.live_wakers.load(Ordering::SeqCst) > 0
    {
        word.transition(TaskState::Lost, current, clock::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_zero_means_none() {
        assert_eq!(decode(encode(0)), Some(0));
        assert_eq!(decode(encode(42)), Some(42));
        assert_eq!(decode(0), None);
    }
}
