//! The lock of one shard list: a spin lock whose release is a plain store.
//!
//! Every spawn of a tracked task takes one shard lock, for a few pointer writes; so do the exit of
//! a task with no `Listed` handle (a thread's) and each run of a thread's batch of exits. A
//! general-purpose mutex costs two atomic read-modify-writes for that (one to take it, one to
//! release it and learn whether anyone sleeps on it): with `parking_lot`'s, a tracked tokio spawn
//! measured 20 ns slower. This lock releases with a store, because nobody sleeps on it: a waiter
//! spins a little, then yields its CPU until the holder is done. That is right only for short
//! holds, which these are: a spawn or an exit holds it for a few pointer writes, a batch for a few
//! per record; a check that lists a shard holds it for longest (one pass over the shard), and
//! spawns in that scope yield meanwhile. The tokio hooks' maps of known tasks use it too, for one
//! map operation at a time: an insert that grows a map holds it for a rehash, which is rare
//! (amortised) but long, and workers that look a task up meanwhile yield. (A waiter that never
//! sleeps is wrong under real-time scheduling: a `SCHED_FIFO` waiter on the holder's CPU would
//! yield to nobody. Test processes do not run so.)
//!
//! Its `unsafe` (the `UnsafeCell` behind the guard) is all here.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// How many times a waiter checks the lock, with a spin hint between checks, before it yields.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A value that one thread at a time may use; see the module documentation.
pub(crate) struct ShardLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and `locked` lets one guard exist at a
// time, which makes the lock a `Mutex` in all but its waiting: it shares `T: Send` values.
unsafe impl<T: Send> Sync for ShardLock<T> {}

impl<T> ShardLock<T> {
    pub(crate) const fn new(value: T) -> ShardLock<T> {
        ShardLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock and takes it until the guard is dropped.
    #[inline]
    pub(crate) fn lock(&self) -> ShardGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        ShardGuard {
            lock: self,
            _value: PhantomData,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            // Read-only while held, so that waiters do not take the cache line from the holder.
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The value, through the exclusive borrow of the lock itself: no locking needed.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// The lock, held: the value is the holder's until the guard is dropped.
pub(crate) struct ShardGuard<'a, T> {
    lock: &'a ShardLock<T>,
    /// Makes the guard `Send` and `Sync` as `&mut T` is: sharing the guard shares `&T`.
    _value: PhantomData<&'a mut T>,
}

impl<T> Deref for ShardGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (it took `locked` from false to true, and only its
        // drop sets it back), so no other reference to the value exists meanwhile.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for ShardGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the guard's only borrow.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: what the holder wrote happens before the next holder's `Acquire` takes it.
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn one_holder_at_a_time_sees_every_write_of_the_others() {
        let lock = Arc::new(ShardLock::new((0_u64, 0_u64)));
        let rounds = if cfg!(miri) { 50 } else { 20_000 };
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        let mut pair = lock.lock();
                        // Two writes a racing holder would tear apart.
                        pair.0 += 1;
                        std::hint::spin_loop();
                        pair.1 += 1;
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        let mut lock = Arc::into_inner(lock).unwrap();
        assert_eq!(*lock.get_mut(), (3 * rounds, 3 * rounds));
    }

    #[test]
    fn a_waiter_gets_the_lock_once_a_long_holder_lets_go() {
        let lock = Arc::new(ShardLock::new(Vec::new()));
        let mut held = lock.lock();
        let waiter = {
            let lock = Arc::clone(&lock);
            // Spins, then yields, until the holder below is done.
            std::thread::spawn(move || lock.lock().push("waiter"))
        };
        std::thread::sleep(std::time::Duration::from_millis(if cfg!(miri) {
            1
        } else {
            20
        }));
        held.push("holder");
        drop(held);
        waiter.join().unwrap();
        assert_eq!(*lock.lock(), ["holder", "waiter"]);
    }
}
