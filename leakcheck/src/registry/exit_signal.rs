//! Wakes checks that wait for survivors to finish, the moment any tracked task exits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// The process's one exit signal.
///
/// A waiter subscribes, reads the epoch, looks at its survivors, and sleeps only if the epoch has
/// not moved since. An exit bumps the epoch and wakes waiters only if someone is subscribed, so
/// while no check waits an exit costs one load of a rarely written word. That is enough: a
/// waiter subscribes before it reads a shard, and an exit unlinks itself under that shard's lock
/// before it looks, so an exit the waiter could have missed always sees the subscription.
pub(crate) struct ExitSignal {
    epoch: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<Vec<Waker>>,
    condvar: Condvar,
}

pub(crate) fn exit_signal() -> &'static ExitSignal {
    static SIGNAL: ExitSignal = ExitSignal {
        epoch: AtomicU64::new(0),
        waiters: AtomicUsize::new(0),
        lock: Mutex::new(Vec::new()),
        condvar: Condvar::new(),
    };
    &SIGNAL
}

impl ExitSignal {
    /// Called on every tracked exit.
    pub(crate) fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            let wakers = std::mem::take(&mut *self.lock.lock());
            self.condvar.notify_all();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Registers interest in exits until the returned guard is dropped.
    pub(crate) fn subscribe(&self) -> ExitSubscription<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        ExitSubscription { signal: self }
    }
}

/// A registered waiter of the [`ExitSignal`].
pub(crate) struct ExitSubscription<'a> {
    signal: &'a ExitSignal,
}

impl ExitSubscription<'_> {
    /// The current epoch: take it *before* looking at the survivors.
    pub(crate) fn epoch(&self) -> u64 {
        self.signal.epoch.load(Ordering::SeqCst)
    }

    /// Blocks until a task exits after `epoch` was read, or until `deadline`.
    /// Returns `false` when the deadline passed.
    pub(crate) fn wait(&self, epoch: u64, deadline: Instant) -> bool {
        let mut wakers = self.signal.lock.lock();
        while self.epoch() == epoch {
            if self
                .signal
                .condvar
                .wait_until(&mut wakers, deadline)
                .timed_out()
            {
                return self.epoch() != epoch;
            }
        }
        true
    }

    /// Async counterpart of [`wait`](Self::wait): returns `true` (ready) if a task exited after
    /// `epoch`, otherwise registers `waker` to be woken by the next exit and returns `false`.
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_exit(&self, epoch: u64, waker: &Waker) -> bool {
        let mut wakers = self.signal.lock.lock();
        if self.epoch() != epoch {
            return true;
        }
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        false
    }
}

impl Drop for ExitSubscription<'_> {
    fn drop(&mut self) {
        self.signal.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}
