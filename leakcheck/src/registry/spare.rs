//! Allocations for records: each written in place, and reused once its record has ended.
//!
//! A tracked spawn that allocated a fresh record and freed it again at exit paid the allocator
//! twice per task, and glibc's `free` merged the freed chunk back, often into a consolidation of
//! its fast bins (a tenth of a tracked one-by-one spawn on current-thread tokio). A [`Spare`] is
//! the allocation of an `Arc` whose value has been dropped: the registry keeps a few per thread
//! and builds the next record straight into one.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;

/// The allocation of an `Arc<T>` that holds no value: the only reference to it (no other strong
/// or weak one exists), so it may be written through.
pub(crate) struct Spare<T>(Arc<MaybeUninit<T>>);

impl<T> Spare<T> {
    /// A fresh allocation.
    pub(crate) fn new() -> Spare<T> {
        Spare(Arc::new_uninit())
    }

    /// Drops the value of `arc` and keeps its allocation, if `arc` is its only reference; gives
    /// it back otherwise (dropping it then is dropping one reference of several).
    pub(crate) fn reclaim(mut arc: Arc<T>) -> Result<Spare<T>, Arc<T>> {
        // A plain load first: a reference that is visibly shared (a hook's, while the poll that
        // ended its task runs) is given back without `get_mut`'s compare-and-swap.
        if Arc::strong_count(&arc) != 1 || Arc::get_mut(&mut arc).is_none() {
            return Err(arc);
        }
        let value = Arc::into_raw(arc).cast_mut();
        // SAFETY: `arc` was the only reference (`get_mut` said so, and nothing can make another
        // from the reference we hold), so the value may be dropped in place through the pointer
        // `into_raw` gave, which carries the allocation's provenance. The reference is taken
        // back first as an `Arc<MaybeUninit<T>>` (same layout, which `from_raw` allows), so that
        // the allocation is freed, without a second drop of the value, even if its drop panics.
        unsafe {
            let spare = Arc::from_raw(value.cast::<MaybeUninit<T>>().cast_const());
            ptr::drop_in_place(value);
            Ok(Spare(spare))
        }
    }

    /// Writes what `make` returns into the allocation, and gives it back as an `Arc<T>`.
    ///
    /// `make` is called with the allocation already made, so that the value (a few cache lines)
    /// may be built in place rather than on the stack and then copied (what the compiler does
    /// once `make` is inlined: `TaskRecord::new` is `inline(always)` for this).
    #[inline]
    pub(crate) fn fill(self, make: impl FnOnce() -> T) -> Arc<T> {
        let slot = Arc::into_raw(self.0).cast_mut();
        // SAFETY: a spare's reference is the only one to its allocation, so it may be written
        // through the pointer `into_raw` gave (it has the allocation's provenance); once written,
        // the reference `from_raw` takes back owns an initialised `T`, whose layout is that of
        // `MaybeUninit<T>`. If `make` panics, the allocation is leaked, which is safe.
        unsafe {
            (*slot).write(make());
            Arc::from_raw(slot.cast::<T>().cast_const())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_is_filled_reclaimed_and_filled_again_in_the_same_allocation() {
        let first = Spare::new().fill(|| String::from("first"));
        let address = Arc::as_ptr(&first);
        let shared = Arc::clone(&first);
        let first = Spare::reclaim(first)
            .err()
            .expect("not reclaimed while another reference is alive");
        drop(shared);
        let Ok(spare) = Spare::reclaim(first) else {
            panic!("the only reference is reclaimed");
        };
        let second = spare.fill(|| String::from("second"));
        assert_eq!(*second, "second");
        assert_eq!(Arc::as_ptr(&second), address, "the allocation was reused");
        assert_eq!(Arc::strong_count(&second), 1);
        assert_eq!(Arc::weak_count(&second), 0);
    }

    #[test]
    fn a_weak_reference_keeps_the_allocation_from_being_reused() {
        let value = Spare::new().fill(|| 7_u64);
        let weak = Arc::downgrade(&value);
        let value = Spare::reclaim(value)
            .err()
            .expect("not reclaimed while a weak reference is alive");
        drop(weak);
        assert!(Spare::reclaim(value).is_ok());
    }

    #[test]
    fn a_value_whose_drop_panics_still_frees_its_allocation() {
        struct Panics;
        impl Drop for Panics {
            fn drop(&mut self) {
                panic!("dropping");
            }
        }
        let value = Spare::new().fill(|| Panics);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(Spare::reclaim(value));
        }));
        assert!(unwound.is_err(), "the panic reaches the caller");
        // Miri reports the allocation if it leaked.
    }

    #[test]
    fn an_unfilled_spare_is_freed() {
        drop(Spare::<[u8; 64]>::new());
    }
}
