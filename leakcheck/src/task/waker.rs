//! The waker a tracked future hands its inner future: it forwards to the executor's waker and
//! tells the task's state every clone, wake and drop, so that `idle` and `lost` can be told apart.
//!
//! The wrapper waker is created only when the inner future clones the waker, and reused across
//! polls while a clone of it is alive and the executor's waker is the same, so a leaf future that
//! keeps its waker (most do) does not re-clone it on every poll. A future that completes in its
//! first poll never allocates one.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::registry::{Listed, Shared, TaskRecord};

/// Polls `future`, the inner future of `record`'s tracked future, with a waker of ours:
/// `reusable`, the wrapper waker of an earlier poll (see [`Reusable::fitting`]), or one lent for
/// this poll. Returns the wrapper made in this poll, if the inner future cloned the lent waker:
/// the caller keeps it for the next polls ([`Reusable::keep`]).
#[inline]
pub(super) fn poll_tracking_wakers<F: Future>(
    record: &Listed<TaskRecord>,
    reusable: Option<Arc<WakerShared>>,
    cx: &Context<'_>,
    future: Pin<&mut F>,
) -> (Poll<F::Output>, Option<Arc<WakerShared>>) {
    match reusable {
        Some(shared) => {
            // A borrowed waker: clones made from it count; it is never dropped itself.
            let raw = RawWaker::new(Arc::as_ptr(&shared).cast(), &SHARED_VTABLE);
            // SAFETY: the vtable's contract holds for `Arc<WakerShared>` pointers, and
            // `shared` keeps the pointee alive for the whole poll.
            let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
            (future.poll(&mut Context::from_waker(&waker)), None)
        }
        None => {
            let mut frame = PollFrame {
                record,
                inner: cx.waker(),
                created: AtomicPtr::new(ptr::null_mut()),
            };
            let raw = RawWaker::new((&frame as *const PollFrame<'_>).cast(), &FRAME_VTABLE);
            // SAFETY: the frame outlives the poll, and the waker cannot escape it: it is
            // only lent through the `Context`; a clone is an owned `WakerShared` waker.
            let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
            let result = future.poll(&mut Context::from_waker(&waker));
            (result, frame.take_created())
        }
    }
}

/// The wrapper waker a tracked future handed out in an earlier poll, reused while a clone of it
/// is alive. Weak, so that the task does not keep its own executor waker (and with it, in many
/// executors, itself) alive. Kept in the record's owner word, which only this type writes (the
/// record checks it is clear when dropped): null, or a pointer from `Weak::into_raw` that the
/// word owns.
pub(super) struct Reusable<'a>(&'a AtomicPtr<()>);

impl<'a> Reusable<'a> {
    /// The slot of `record`, reached through its one handle, held by `&mut`: nobody else uses
    /// the slot meanwhile (hence `Relaxed`: the slot moves between threads with the handle).
    #[inline]
    pub(super) fn of(record: &'a mut Listed<TaskRecord>) -> Reusable<'a> {
        Reusable(TaskRecord::owner_word(record))
    }

    /// The kept wrapper, if it is still alive and forwards to the executor's waker of `cx`.
    #[inline]
    pub(super) fn fitting(&self, cx: &Context<'_>) -> Option<Arc<WakerShared>> {
        let raw = self.0.load(Ordering::Relaxed);
        if raw.is_null() {
            return None;
        }
        // SAFETY: a non-null word came from `Weak::into_raw` (`keep`) and the word still owns
        // that reference; it is borrowed here, not taken: `ManuallyDrop` keeps it from being
        // released.
        let weak = ManuallyDrop::new(unsafe { weak_from_raw(raw) });
        weak.upgrade()
            .filter(|shared| shared.inner.will_wake(cx.waker()))
    }

    /// Keeps `shared` for the next polls, in place of what was kept.
    #[inline]
    pub(super) fn keep(&self, shared: &Arc<WakerShared>) {
        self.replace(Weak::into_raw(Arc::downgrade(shared)).cast_mut().cast());
    }

    /// Forgets what was kept, as the task ends.
    #[inline]
    pub(super) fn clear(&self) {
        self.replace(ptr::null_mut());
    }

    /// Puts `new` in the slot and gives back the reference of what it held. A load and a store,
    /// not a swap: the holder of the record's handle is the slot's only user.
    #[inline]
    fn replace(&self, new: *mut ()) {
        let old = self.0.load(Ordering::Relaxed);
        if old.is_null() && new.is_null() {
            return;
        }
        self.0.store(new, Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: a non-null word came from `Weak::into_raw` (`keep`) and owned that
            // reference; now out of the slot, it is released once, here.
            drop(unsafe { weak_from_raw(old) });
        }
    }
}

/// # Safety
/// `raw` came from `Weak::<WakerShared>::into_raw`, and the caller may use the reference it owns.
unsafe fn weak_from_raw(raw: *mut ()) -> Weak<WakerShared> {
    // SAFETY: per this function's contract.
    unsafe { Weak::from_raw(raw.cast_const().cast::<WakerShared>()) }
}

/// The wrapper waker of a tracked task: wakes the executor's waker and keeps the task's state.
pub(super) struct WakerShared {
    record: Shared<TaskRecord>,
    /// The executor's waker this wrapper forwards to.
    inner: Waker,
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
        let shared: &WakerShared = &*shared;
        shared.record.state.note_waker_cloned();
    }
    RawWaker::new(data, &SHARED_VTABLE)
}

/// # Safety
/// `data` is an owned `Arc<WakerShared>` reference (the waker being consumed).
unsafe fn shared_wake(data: *const ()) {
    // SAFETY: per this function's contract, the reference is ours to release.
    let shared = unsafe { Arc::from_raw(data.cast::<WakerShared>()) };
    shared.record.state.note_wake();
    match Arc::try_unwrap(shared) {
        // The last clone (as a waker that a channel wakes once usually is): it hands its own
        // reference to the executor's waker on, which saves the executor a count up and down.
        Ok(WakerShared { record, inner }) => {
            inner.wake();
            record.state.note_waker_dropped();
        }
        Err(shared) => {
            shared.inner.wake_by_ref();
            shared.record.state.note_waker_dropped();
        }
    }
}

/// # Safety
/// `data` is a pointer obtained from an `Arc<WakerShared>` that is alive for this call.
unsafe fn shared_wake_by_ref(data: *const ()) {
    // SAFETY: per this function's contract.
    let shared = unsafe { &*data.cast::<WakerShared>() };
    shared.record.state.note_wake();
    shared.inner.wake_by_ref();
}

/// # Safety
/// `data` is an owned `Arc<WakerShared>` reference (the waker being dropped).
unsafe fn shared_drop(data: *const ()) {
    // SAFETY: per this function's contract, the reference is ours to release.
    let shared = unsafe { Arc::from_raw(data.cast::<WakerShared>()) };
    shared.record.state.note_waker_dropped();
}

/// What the waker lent to a poll points to when no wrapper waker is alive: a wrapper is made
/// only if the inner future clones the waker.
struct PollFrame<'a> {
    record: &'a Listed<TaskRecord>,
    inner: &'a Waker,
    /// The wrapper made by a clone during this poll, shared by all clones of the poll: null, or
    /// a reference from `Arc::into_raw` that the frame owns. Set by a compare-and-swap, not a
    /// `OnceLock`, whose `Once` took a fifth of what a tracked task's wait for a message cost:
    /// a waker lent to a poll may be cloned on another thread meanwhile (by a scoped thread),
    /// so a clone that loses the race gives its wrapper back.
    created: AtomicPtr<WakerShared>,
}

impl PollFrame<'_> {
    /// The wrapper made during the poll, if any, taken out of the frame.
    fn take_created(&mut self) -> Option<Arc<WakerShared>> {
        let raw = std::mem::replace(self.created.get_mut(), ptr::null_mut());
        // SAFETY: a non-null word came from `Arc::into_raw` in `frame_clone` and owned that
        // reference; now out of the frame, it is taken back once, here.
        (!raw.is_null()).then(|| unsafe { Arc::from_raw(raw) })
    }
}

impl Drop for PollFrame<'_> {
    /// A poll that unwinds leaves the wrapper it made here.
    fn drop(&mut self) {
        drop(self.take_created());
    }
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
    let mut shared = frame.created.load(Ordering::Acquire);
    if shared.is_null() {
        let new = Arc::into_raw(Arc::new(WakerShared {
            record: frame.record.share(),
            inner: frame.inner.clone(),
        }))
        .cast_mut();
        shared = match frame.created.compare_exchange(
            ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => new,
            Err(made_meanwhile) => {
                // SAFETY: `new` came from `Arc::into_raw` just now and was never shared.
                drop(unsafe { Arc::from_raw(new) });
                made_meanwhile
            }
        };
    }
    // SAFETY: `shared` is alive: the frame holds a reference to it until the poll ends.
    unsafe { shared_clone(shared.cast_const().cast()) }
}

/// A lent waker is never owned, so it is never consumed by `wake`: both entries wake by reference.
///
/// # Safety
/// `data` points to a `PollFrame` alive for this call.
unsafe fn frame_wake_by_ref(data: *const ()) {
    // SAFETY: per this function's contract.
    let frame = unsafe { &*data.cast::<PollFrame<'_>>() };
    frame.record.state.note_wake();
    frame.inner.wake_by_ref();
}

/// A lent waker owns nothing.
unsafe fn frame_drop(_data: *const ()) {}
