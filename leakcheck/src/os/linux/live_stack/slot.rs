//! The memory a request and the signal handler share: one static slot, prepared before any
//! signal is sent, and the cookie that marks a delivery as a request.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize};

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

/// The generation a word holds.
pub(super) fn generation(word: u32) -> u32 {
    word >> 2
}

/// [`Slot::refusal`]: the handler walked the stack.
pub(super) const ANSWERED: u32 = 0;
/// [`Slot::refusal`]: the thread runs a signal handler on an alternate stack too small to walk on.
pub(super) const REFUSED_SMALL_ALTERNATE_STACK: u32 = 1;

/// Memory prepared before any signal is sent: the handler writes nowhere else.
pub(super) struct Slot {
    pub(super) word: AtomicU32,
    pub(super) len: AtomicUsize,
    /// The kernel id of the thread the armed request is for: a delivery of the request's signal
    /// to any other thread (a late one, sent by an earlier request) writes nothing.
    pub(super) target: AtomicI32,
    /// Why the handler wrote no stack ([`ANSWERED`] when it wrote one).
    pub(super) refusal: AtomicU32,
    pub(super) frames: [AtomicUsize; MAX_FRAMES],
}

pub(super) static SLOT: Slot = Slot {
    word: AtomicU32::new(IDLE),
    len: AtomicUsize::new(0),
    target: AtomicI32::new(0),
    refusal: AtomicU32::new(ANSWERED),
    frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
};

/// The `si_value` of leakcheck's requests: the address of [`SLOT`]. It is pointer-sized on every
/// target, and no other sender of the signal can name leakcheck's private static by accident
/// (a small integer, a heap pointer, a generation count on a 32-bit target); nor can a delivery
/// from another process, which [`is_request`] also checks.
pub(super) fn cookie() -> usize {
    std::ptr::addr_of!(SLOT) as usize
}

/// Whether a delivery with this `si_code`, sender pid and `si_value` is one of leakcheck's
/// requests, sent from process `own_pid`.
pub(super) fn is_request(code: i32, sender: i32, value: usize, own_pid: i32) -> bool {
    code == libc::SI_QUEUE && sender == own_pid && value == cookie()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_slots_address_from_this_process_is_a_request() {
        let me = 4242;
        assert!(is_request(libc::SI_QUEUE, me, cookie(), me));
        // What `sigqueue` users send: small integers and pointers of their own. A 32-bit target
        // once took any value up to 2^30 for a request generation.
        for value in [0, 1, 7, 1 << 20, (1 << 30) - 1, usize::MAX, cookie() + 8] {
            assert!(!is_request(libc::SI_QUEUE, me, value, me), "{value:#x}");
        }
        assert!(
            !is_request(libc::SI_QUEUE, me + 1, cookie(), me),
            "another process"
        );
        assert!(!is_request(libc::SI_TKILL, me, cookie(), me), "not queued");
        assert!(!is_request(libc::SI_USER, me, cookie(), me), "not queued");
    }
}
