//! A box set at most once, in one word: what a record keeps out of line.
//!
//! `OnceLock<Box<T>>` is two words (its `Once` beside the pointer), and a record is sized to the
//! byte (see `record.rs`): the word this saves holds a tracked future's reusable waker, which
//! keeps the future itself one word larger than what it wraps instead of two. Two threads that
//! set an empty box at once both build a value; one wins, the other's is dropped, so nobody ever
//! waits. Values here are cheap to build, and contention is rare (a report reading a record
//! while its task first blocks).
//!
//! Its `unsafe` (turning the pointer back into a `Box` or a reference) is all here.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A `Box<T>` that is empty until set once, then never changes until dropped.
pub(crate) struct OnceBox<T> {
    /// Null, or from `Box::into_raw`: owned by this box, never changed once set.
    value: AtomicPtr<T>,
}

impl<T> OnceBox<T> {
    pub(crate) const fn new() -> OnceBox<T> {
        OnceBox {
            value: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A box set already.
    pub(crate) fn from_box(value: Box<T>) -> OnceBox<T> {
        OnceBox {
            value: AtomicPtr::new(Box::into_raw(value)),
        }
    }

    /// The value, if set.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire: the value was written before the pointer was published (`Release` below).
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw`, is owned by this box and never
        // changed or freed until the box is dropped, which `&self` excludes.
        unsafe { value.as_ref() }
    }

    /// The value, set to what `make` builds if it was empty. If another thread sets it
    /// meanwhile, its value is kept and ours is dropped.
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> Box<T>) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let ours = Box::into_raw(make());
        match self.value.compare_exchange(
            ptr::null_mut(),
            ours,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `ours` came from `Box::into_raw` and is now owned by this box, which keeps
            // it unchanged while `&self` lives.
            Ok(_) => unsafe { &*ours },
            Err(theirs) => {
                // SAFETY: `ours` was never published, so it is still ours alone to free;
                // `theirs`, as in `get`.
                unsafe {
                    drop(Box::from_raw(ours));
                    &*theirs
                }
            }
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        let value = *self.value.get_mut();
        if !value.is_null() {
            // SAFETY: a non-null pointer came from `Box::into_raw` and is owned by this box,
            // which is being dropped: nobody else can reach it.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}

// SAFETY: the box owns a `T`, so sending it sends the `T`.
unsafe impl<T: Send> Send for OnceBox<T> {}
// SAFETY: through `&OnceBox`, threads get `&T` (hence `T: Sync`) and may set a `T` built on their
// own thread, which the thread that drops the box drops (hence `T: Send`), as with
// `OnceLock<Box<T>>`.
unsafe impl<T: Send + Sync> Sync for OnceBox<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Barrier};

    #[test]
    fn set_once_then_kept() {
        let once = OnceBox::new();
        assert!(once.get().is_none());
        assert_eq!(*once.get_or_init(|| Box::new(1)), 1);
        assert_eq!(*once.get_or_init(|| Box::new(2)), 1, "set once");
        assert_eq!(once.get(), Some(&1));
        let set = OnceBox::from_box(Box::new(String::from("set")));
        assert_eq!(set.get().map(String::as_str), Some("set"));
    }

    #[test]
    fn racing_setters_keep_one_value_and_drop_the_others() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        // Every setter builds its value before any sets one: all four find the box empty (the
        // first to set waits for the others at the barrier), so three lose the race.
        let all_built = Barrier::new(4);
        let once = OnceBox::new();
        let winners: Vec<_> = std::thread::scope(|s| {
            let setters: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let value = once.get_or_init(|| {
                            all_built.wait();
                            Box::new(Counted(Arc::clone(&drops)))
                        });
                        ptr::from_ref(value) as usize
                    })
                })
                .collect();
            setters.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(
            winners.windows(2).all(|w| w[0] == w[1]),
            "one value seen by all"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "the losers' values dropped"
        );
        drop(once);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4,
            "and the winner's with the box"
        );
    }
}
