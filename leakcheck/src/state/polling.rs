//! The async side of a task's state: what tells `scheduled`, `idle`, `lost` and `blocked` apart.
//!
//! A tracked future (`task::Tracked`) hands its inner future a waker of its own
//! that forwards to the executor's waker and counts, in the [`StateCell`], how many clones of it are
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
//! Tasks registered by a runtime hook (tokio with `--cfg tokio_unstable`) have this bookkeeping but
//! no waker of ours: for them a `Pending` poll ends in `idle` (or `blocked`), never in `lost`.

use std::sync::atomic::{fence, Ordering};

use super::{StateCell, StateDetails};
use crate::clock::{self, Stamp};
use crate::vocab::{TaskKind, TaskState};

/// What an executor integration keeps in a task it claimed (tokio's stable-runtime bookkeeping,
/// for one), given back when the tracked future ends. The core defines the slot; the
/// integration fills it, so the core knows no executor.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))] // Only stable tokio claims tasks.
pub(crate) trait ExecutorClaim: Send + Sync {
    /// The tracked future ended: the executor forgets the claim.
    fn release(&self);
}

/// How a poll started: see [`StateCell::start_poll`].
#[derive(Clone, Copy)]
pub(crate) struct PollStart {
    now: u64,
    /// Whether it is the task's first poll.
    pub(crate) first: bool,
}

/// `0` stands for "none" in `blocked_since`, so every stored timestamp is shifted by one.
#[inline]
fn encode(timestamp: u64) -> u64 {
    timestamp.saturating_add(1)
}

#[inline]
fn decode(stored: u64) -> Option<u64> {
    stored.checked_sub(1)
}

impl StateDetails {
    /// The details of the current `blocked` state, if any.
    pub(crate) fn blocked(&self) -> Option<super::Blocked> {
        self.blocked.lock().clone()
    }

    /// Since when the async task is inside a pending `waiting`, if it is.
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

impl StateCell {
    /// Declares that this async task's wakers are ours, so that their count is meaningful.
    #[inline]
    pub(crate) fn observe_wakers(&self) {
        self.observes_wakers.store(true, Ordering::Relaxed);
    }

    pub(crate) fn observes_wakers(&self) -> bool {
        self.observes_wakers.load(Ordering::Relaxed)
    }

    /// Whether this async task was ever polled.
    #[inline]
    pub(crate) fn was_polled(&self) -> bool {
        self.last_polled.load(Ordering::Relaxed) != 0
    }

    /// When the last poll started (to about a millisecond), if it was ever polled, given a later
    /// reading `now`.
    pub(crate) fn last_polled(&self, now: u64) -> Option<u64> {
        Stamp::from_nonzero_bits(self.last_polled.load(Ordering::Relaxed))
            .map(|stamp| stamp.expand(now))
    }

    pub(crate) fn live_wakers(&self) -> u32 {
        self.live_wakers.load(Ordering::Relaxed)
    }

    /// A poll of this async task starts at `now`: it is `running`, and earlier wakes are consumed.
    #[inline]
    pub(crate) fn begin_poll(&self, now: u64) {
        if self.kind != TaskKind::Async {
            return;
        }
        self.woken.store(false, Ordering::Relaxed);
        self.in_poll.store(true, Ordering::Relaxed);
        self.last_polled
            .store(Stamp::of(now).to_nonzero_bits(), Ordering::Relaxed);
        self.word.set(TaskState::Running, now);
    }

    /// A poll of this async task starts: [`begin_poll`](Self::begin_poll), at a reading taken
    /// here for any poll but the first. A first poll is stamped with the spawn's reading, still in
    /// the state word (a task is `scheduled` since its spawn until then), and reads the clock only
    /// if it ends pending ([`pending_at`](Self::pending_at)): most tasks end in their first poll,
    /// and a clock read is a fifth of what tracking costs them. (While a first poll runs, a
    /// report counts it `running` since the spawn.)
    #[inline]
    pub(crate) fn start_poll(&self) -> PollStart {
        let first = !self.was_polled();
        let now = if first { self.load().1 } else { clock::now() };
        self.begin_poll(now);
        PollStart { now, first }
    }

    /// The reading a poll that [`start_poll`](Self::start_poll) began ends pending at: a first
    /// poll's is read now, and stamps the poll as its last.
    #[inline]
    pub(crate) fn pending_at(&self, start: PollStart) -> u64 {
        if !start.first {
            return start.now;
        }
        let now = clock::now();
        self.last_polled
            .store(Stamp::of(now).to_nonzero_bits(), Ordering::Relaxed);
        now
    }

    /// A poll of this async task returned `Pending` at `now`: settles the state it waits in.
    /// `details` are the task's, if it has any (a task inside `waiting` has).
    pub(crate) fn end_pending_poll(&self, details: Option<&StateDetails>, now: u64) {
        if self.kind != TaskKind::Async {
            return;
        }
        let (waiting_state, since) = match details.and_then(StateDetails::blocked_since) {
            Some(since) => (TaskState::Blocked, since),
            None => (TaskState::Idle, now),
        };
        self.word.set(waiting_state, since);
        self.in_poll.store(false, Ordering::Relaxed);
        if !self.observes_wakers() {
            return;
        }
        // Pairs with the fences in `note_wake` and `note_waker_dropped`: either they see the poll
        // over, or this sees what they stored.
        fence(Ordering::SeqCst);
        if self.woken.load(Ordering::Relaxed) {
            self.word
                .transition(waiting_state, TaskState::Scheduled, now);
        } else if self.live_wakers.load(Ordering::Relaxed) == 0 {
            self.word.transition(waiting_state, TaskState::Lost, now);
        }
    }

    /// One of the async task's wakers was woken.
    pub(crate) fn note_wake(&self) {
        debug_assert_eq!(
            self.kind,
            TaskKind::Async,
            "only async tasks have our wakers"
        );
        self.woken.store(true, Ordering::Relaxed);
        // Pairs with the fence in `end_pending_poll`.
        fence(Ordering::SeqCst);
        if self.in_poll.load(Ordering::Relaxed) {
            return; // The end of the poll sees `woken`.
        }
        let (current, _) = self.word.load();
        if matches!(
            current,
            TaskState::Idle | TaskState::Blocked | TaskState::Lost
        ) {
            self.word
                .transition(current, TaskState::Scheduled, clock::now());
        }
    }

    /// A clone of the async task's waker was made.
    #[inline]
    pub(crate) fn note_waker_cloned(&self) {
        debug_assert_eq!(
            self.kind,
            TaskKind::Async,
            "only async tasks have our wakers"
        );
        self.live_wakers.fetch_add(1, Ordering::Relaxed);
    }

    /// A clone of the async task's waker was dropped (or consumed by `wake`).
    pub(crate) fn note_waker_dropped(&self) {
        debug_assert_eq!(
            self.kind,
            TaskKind::Async,
            "only async tasks have our wakers"
        );
        if self.live_wakers.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last one: if the task is pending, nothing can wake it any more.
        // Pairs with the fence in `end_pending_poll`.
        fence(Ordering::SeqCst);
        if self.in_poll.load(Ordering::Relaxed) {
            return; // The end of the poll sees the count.
        }
        let (current, _) = self.word.load();
        if matches!(current, TaskState::Idle | TaskState::Blocked)
            && self.word.transition(current, TaskState::Lost, clock::now())
            // A poll may have run between our last drop and the transition, and left a new
            // waker behind: then the task is waiting in `current` again, not lost.
            && self.live_wakers.load(Ordering::SeqCst) > 0
        {
            self.word.transition(TaskState::Lost, current, clock::now());
        }
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
