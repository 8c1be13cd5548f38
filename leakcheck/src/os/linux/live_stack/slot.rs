//! The memory a request and the signal handler share: one static slot, prepared before any
//! signal is sent, and the cookie that marks a delivery as a request.

use std::sync::atomic::{AtomicU32, AtomicUsize};

/// Frames kept per stack; deeper stacks keep their innermost frames.
pub(super) const MAX_FRAMES: usize = 256;

// The slot's word: generation << 2 | phase.
pub(super) const IDLE: u32 = 0;
pub(super) const ARMED: u32 = 1;
pub(super) const WRITING: u32 = 2;
pub(super) const DONE: u32 = 3;
pub(super) const PHASE_MASK: u32 = 0b11;
pub(super) const GENERATION_MASK: u32 = u32::MAX >> 2;

pub(super) fn pack(generation: u32, phase: u32) -> u32 {
    (generation << 2) | phase
}

/// [`Slot::refusal`]: the handler walked the stack.
pub(super) const ANSWERED: u32 = 0;
/// [`Slot::refusal`]: the thread runs a signal handler on an alternate stack too small to walk on.
pub(super) const REFUSED_SMALL_ALTERNATE_STACK: u32 = 1;

/// Memory prepared before any signal is sent: the handler writes nowhere else.
pub(super) struct Slot {
    pub(super) word: AtomicU32,
    pub(super) len: AtomicUsize,
    /// Why the handler wrote no stack ([`ANSWERED`] when it wrote one).
    pub(super) refusal: AtomicU32,
    pub(super) frames: [AtomicUsize; MAX_FRAMES],
}

pub(super) static SLOT: Slot = Slot {
    word: AtomicU32::new(IDLE),
    len: AtomicUsize::new(0),
    refusal: AtomicU32::new(ANSWERED),
    frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
};

/// `si_value` of leakcheck's requests: a tag in the upper half (on 64-bit targets) and the
/// generation in the lower.
pub(super) const COOKIE_TAG: usize = if usize::BITS >= 64 { 0x6c6b_6368 } else { 0 };

pub(super) fn cookie(generation: u32) -> usize {
    (COOKIE_TAG << (usize::BITS / 2)) | generation as usize
}

pub(super) fn generation_of(cookie: usize) -> Option<u32> {
    let tag = if usize::BITS >= 64 {
        cookie >> (usize::BITS / 2)
    } else {
        0
    };
    let generation = u32::try_from(cookie & (u32::MAX as usize)).ok()?;
    (tag == COOKIE_TAG && generation <= GENERATION_MASK).then_some(generation)
}
