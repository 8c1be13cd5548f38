//! A task's state and since when, packed into one atomic word: async tasks change state on every
//! poll, so reading and writing it must cost one atomic access.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::vocab::TaskState;

const STATE_SHIFT: u32 = 61;
const SINCE_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// The packed `(state, since)` of one task.
pub(crate) struct StateWord(AtomicU64);

impl StateWord {
    pub(crate) fn new(state: TaskState, since: u64) -> StateWord {
        StateWord(AtomicU64::new(pack(state, since)))
    }

    /// The state and the clock reading when it was entered.
    #[inline]
    pub(crate) fn load(&self) -> (TaskState, u64) {
        unpack(self.0.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn set(&self, state: TaskState, since: u64) {
        self.0.store(pack(state, since), Ordering::Release);
    }

    /// Sets `(state, since)` and returns the packed previous value, for [`restore`](Self::restore).
    pub(crate) fn swap(&self, state: TaskState, since: u64) -> PackedState {
        PackedState(self.0.swap(pack(state, since), Ordering::AcqRel))
    }

    /// Moves from `from` to `to`, unless another thread changed the state in between.
    #[inline]
    pub(crate) fn transition(&self, from: TaskState, to: TaskState, now: u64) -> bool {
        let current = self.0.load(Ordering::Acquire);
        unpack(current).0 == from
            && self
                .0
                .compare_exchange(current, pack(to, now), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// A `(state, since)` saved by [`StateWord::swap`].
#[derive(Clone, Copy)]
pub(crate) struct PackedState(u64);

impl PackedState {
    pub(crate) fn unpack(self) -> (TaskState, u64) {
        unpack(self.0)
    }
}

#[inline]
fn pack(state: TaskState, since: u64) -> u64 {
    ((state as u64) << STATE_SHIFT) | (since & SINCE_MASK)
}

#[inline]
fn unpack(word: u64) -> (TaskState, u64) {
    (
        TaskState::ALL[(word >> STATE_SHIFT) as usize],
        word & SINCE_MASK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_state() {
        for state in TaskState::ALL {
            assert_eq!(unpack(pack(state, 123_456_789)), (state, 123_456_789));
        }
    }

    #[test]
    fn a_transition_from_a_stale_state_does_nothing() {
        let word = StateWord::new(TaskState::Idle, 1);
        assert!(!word.transition(TaskState::Running, TaskState::Lost, 2));
        assert_eq!(word.load(), (TaskState::Idle, 1));
        assert!(word.transition(TaskState::Idle, TaskState::Lost, 3));
        assert_eq!(word.load(), (TaskState::Lost, 3));
        let saved = word.swap(TaskState::Blocked, 4);
        assert_eq!(saved.unpack(), (TaskState::Lost, 3));
    }
}
