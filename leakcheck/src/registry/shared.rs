//! A counted, shared reference to a value in a [`slab`](super::slab) block: `Arc` for records.
//!
//! Stable Rust's `Arc` allocates from the global allocator only (`Arc::new_in` is unstable), and
//! a record's `malloc` and `free` were what tracking cost most in bursts of spawns. `Shared` is
//! the part of `Arc` the registry uses — a strong count, no weak references — on slab blocks.
//! Its counting follows `Arc`'s: a clone adds with `Relaxed` (a clone is made from a live
//! reference), a drop subtracts with `Release`, and the last drop acquires before the value is
//! dropped, so every use of the value through other references happens before its drop. With no
//! weak references, a drop that reads a count of 1 is the last and need not subtract.
//!
//! Its `unsafe` (the count, and building and dropping the value in the block) is all here.

use std::marker::PhantomData;
use std::mem::{self, offset_of};
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{self, AtomicUsize, Ordering};

use super::slab;

/// What a block holds: the count, then the value.
#[repr(C)]
struct Inner<T> {
    count: AtomicUsize,
    value: T,
}

/// A strong reference to a `T` kept in a slab block: freed, with the value, by the last one.
pub(crate) struct Shared<T> {
    /// From `slab::alloc`, with the provenance of its whole chunk, so that it may reach the count
    /// and, when freed, its page's header.
    inner: NonNull<Inner<T>>,
    marker: PhantomData<Inner<T>>,
}

// SAFETY: as for `Arc<T>`: the value is shared between threads (`Sync`) and dropped by whichever
// thread drops the last reference (`Send`); the count is atomic.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// A block given back to the slab when dropped: one whose value is not built yet (if building it
/// panics), or whose value was just dropped (also if that panics).
struct FreedOnDrop(NonNull<u8>);

impl Drop for FreedOnDrop {
    fn drop(&mut self) {
        // SAFETY: the block came from `slab::alloc`, holds no value any more (or yet), and
        // nothing reaches it again: see the two places that make a `FreedOnDrop`.
        unsafe { slab::free(self.0) };
    }
}

/// Beyond this many references, the count could overflow: as `Arc` does, the process aborts
/// (a program that leaks `isize::MAX` clones is broken, and unwinding might not stop it).
const MAX_COUNT: usize = isize::MAX as usize;

impl<T> Shared<T> {
    /// Compile-time proof that an `Inner<T>` fits in a block's payload.
    const FITS: () = assert!(
        mem::size_of::<Inner<T>>() <= slab::PAYLOAD
            && mem::align_of::<Inner<T>>() <= slab::PAYLOAD_ALIGN,
        "a `Shared` value must fit in a slab block"
    );

    /// A reference to the value `make` builds, in place in a new block.
    #[inline]
    pub(crate) fn new_with(make: impl FnOnce() -> T) -> Shared<T> {
        #[allow(clippy::let_unit_value)] // Evaluating it is the check.
        let () = Self::FITS;
        let block = slab::alloc().cast::<Inner<T>>();
        // Given back if `make` panics.
        let unbuilt = FreedOnDrop(block.cast());
        let value = make();
        mem::forget(unbuilt);
        // SAFETY: the block is ours, large and aligned enough for an `Inner<T>` (`FITS`).
        unsafe {
            block.as_ptr().write(Inner {
                count: AtomicUsize::new(1),
                value,
            })
        };
        Shared {
            inner: block,
            marker: PhantomData,
        }
    }

    /// A reference to `value`, in a new block.
    #[cfg(test)]
    pub(crate) fn new(value: T) -> Shared<T> {
        Shared::new_with(|| value)
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: this reference keeps the block and its value alive.
        unsafe { self.inner.as_ref() }
    }

    /// The value's address, with the provenance of its block (the count included).
    pub(crate) fn as_ptr(this: &Shared<T>) -> *const T {
        // SAFETY: in bounds of the block; no reference is made, so the provenance is kept.
        unsafe { &raw const (*this.inner.as_ptr()).value }
    }

    /// Whether two references reach the same value.
    #[cfg(test)]
    pub(crate) fn ptr_eq(this: &Shared<T>, other: &Shared<T>) -> bool {
        this.inner == other.inner
    }

    /// How many references there are; exact only if no other thread clones or drops one.
    #[cfg(test)]
    pub(crate) fn strong_count(this: &Shared<T>) -> usize {
        this.inner().count.load(Ordering::Relaxed)
    }

    /// The value's address, keeping this reference's count: [`from_raw`](Self::from_raw) gives
    /// it back.
    pub(crate) fn into_raw(this: Shared<T>) -> *const T {
        let pointer = Shared::as_ptr(&this);
        mem::forget(this);
        pointer
    }

    /// Takes back a reference [`into_raw`](Self::into_raw) gave away.
    ///
    /// # Safety
    ///
    /// `pointer` is the address [`into_raw`](Self::into_raw) gave for a reference not taken
    /// back yet (from it, or from [`as_ptr`](Self::as_ptr) of another reference to the same
    /// value), and that reference is taken back once.
    pub(crate) unsafe fn from_raw(pointer: *const T) -> Shared<T> {
        // SAFETY: per the contract, `pointer` is the `value` field of a live `Inner<T>` and has
        // the block's provenance, so the `Inner` starts `offset_of!` bytes before it.
        let inner = unsafe {
            pointer
                .cast::<u8>()
                .sub(offset_of!(Inner<T>, value))
                .cast::<Inner<T>>()
                .cast_mut()
        };
        Shared {
            // SAFETY: derived from a non-null pointer into a block, so not null.
            inner: unsafe { NonNull::new_unchecked(inner) },
            marker: PhantomData,
        }
    }

    /// A new reference to the value at `pointer`, which another reference keeps alive.
    ///
    /// # Safety
    ///
    /// `pointer` came from [`as_ptr`](Self::as_ptr) or [`into_raw`](Self::into_raw), and a
    /// reference keeps the value alive meanwhile.
    pub(crate) unsafe fn clone_from_raw(pointer: *const T) -> Shared<T> {
        // SAFETY: per the contract; the reference rebuilt here is borrowed, not dropped.
        let reference = mem::ManuallyDrop::new(unsafe { Shared::from_raw(pointer) });
        Shared::clone(&reference)
    }

    /// Whether this is the value's only reference. With no weak references nobody else can
    /// make another, so it stays so; and (Acquire) every use of the value through the
    /// references dropped before happens before this returns `true`.
    fn is_unique(&self) -> bool {
        self.inner().count.load(Ordering::Acquire) == 1
    }

    /// The value, if this is its only reference; this reference back otherwise.
    pub(crate) fn try_unwrap(this: Shared<T>) -> Result<T, Shared<T>> {
        if !this.is_unique() {
            return Err(this);
        }
        let this = mem::ManuallyDrop::new(this);
        // SAFETY: the only reference owns the value, which is read out once; the block is freed
        // once, after, and nothing reaches it again (`this` is not dropped).
        unsafe {
            let value = ptr::read(&raw const (*this.inner.as_ptr()).value);
            slab::free(this.inner.cast());
            Ok(value)
        }
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Shared<T> {
        // Relaxed: a new reference is made from a live one, which orders nothing (as in `Arc`).
        if self.inner().count.fetch_add(1, Ordering::Relaxed) > MAX_COUNT {
            std::process::abort();
        }
        Shared {
            inner: self.inner,
            marker: PhantomData,
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for Shared<T> {
    #[inline]
    fn drop(&mut self) {
        // The only reference, most often (a record's one handle): a load costs less than a
        // subtraction.
        if !self.is_unique() {
            if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Pairs with the other references' `Release`: their uses happen before the drop.
            atomic::fence(Ordering::Acquire);
        }
        // Frees the block after the value's drop, also if that panics.
        let _block = FreedOnDrop(self.inner.cast());
        // SAFETY: the last reference owns the value, dropped once, here; the block outlives the
        // drop (`_block` frees it after).
        unsafe { ptr::drop_in_place(&raw mut (*self.inner.as_ptr()).value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_last_reference_drops_the_value_once_on_any_thread() {
        let before = DROPS.load(Ordering::SeqCst);
        let first = Shared::new(Counted(5));
        let clones: Vec<_> = (0..3).map(|_| Shared::clone(&first)).collect();
        assert_eq!(Shared::strong_count(&first), 4);
        let threads: Vec<_> = clones
            .into_iter()
            .map(|clone| std::thread::spawn(move || assert_eq!(clone.0, 5)))
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(Shared::strong_count(&first), 1);
        drop(first);
        assert_eq!(DROPS.load(Ordering::SeqCst), before + 1);
    }

    #[test]
    fn a_raw_reference_round_trips() {
        let value = Shared::new(String::from("raw"));
        let pointer = Shared::as_ptr(&value);
        // SAFETY: from `as_ptr`; `value` keeps it alive.
        let added = unsafe { Shared::clone_from_raw(pointer) };
        assert!(Shared::ptr_eq(&value, &added));
        assert_eq!(Shared::strong_count(&value), 2);
        let raw = Shared::into_raw(added);
        assert_eq!(raw, pointer);
        // SAFETY: from `into_raw`, taken back once.
        drop(unsafe { Shared::from_raw(raw) });
        assert_eq!(Shared::strong_count(&value), 1);
        assert_eq!(*value, "raw");
    }

    #[test]
    fn try_unwrap_takes_the_value_of_the_only_reference() {
        let value = Shared::new(String::from("only"));
        let other = Shared::clone(&value);
        let value = Shared::try_unwrap(value).expect_err("shared");
        drop(other);
        assert_eq!(Shared::try_unwrap(value).ok().as_deref(), Some("only"));
    }

    #[test]
    fn a_value_whose_build_panics_gives_its_block_back() {
        let built = std::panic::catch_unwind(|| Shared::<String>::new_with(|| panic!("unbuilt")));
        assert!(built.is_err());
        // (Miri reports the block's page as leaked otherwise, once this thread ends.)
    }
}
