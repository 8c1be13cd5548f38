//! Wakes checks that wait for survivors to finish, the moment any tracked task exits.

use std::sync::atomic::{compiler_fence, fence, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::record::TaskRecord;
use super::shared::Shared;
use crate::os::process_barrier;

/// The process's one exit signal.
///
/// A waiter subscribes, reads the epoch, looks at its survivors, and sleeps only if the epoch has
/// not moved since. An exit bumps the epoch and wakes waiters only if someone is subscribed, so
/// while no check waits an exit costs one load of a rarely written word.
///
/// That is enough if an exit the waiter could have missed always sees the subscription. An
/// exit that unlinks its record does so under its shard's lock before it looks, and the waiter
/// reads that shard under the lock after it subscribed. A tracked future's (or a hook-driven
/// task's) exit only marks its record departed, with a store and no lock (see `departures`); a
/// store and a later load of another word can pass each other in the CPU unless a fence stands
/// between them, and a fence costs what the lock did. So the waiter pays instead: after it
/// subscribed, and before it sleeps on survivors it saw alive, it asks
/// [`ExitSubscription::exited_unseen`], which makes every thread of the process run a barrier
/// and looks at those survivors again. Each exit then either is visible to that look, or sees
/// the subscription. Where that barrier is not available, every exit and that look run a fence.
///
/// A waiter also counts on a scan it can trust: shards are read one after the other, so a task
/// that spawns a child into a shard already read, then exits before its own shard is read,
/// would hide the child. Such a spawn sees the subscription (it takes the shard's lock after the
/// waiter let go of it) and counts itself in [`ExitSubscription::spawns`] before that exit, which
/// the waiter sees, so the waiter sees the count move too.
pub(crate) struct ExitSignal {
    epoch: AtomicU64,
    /// Spawns made while someone waits.
    spawns: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<Vec<Waker>>,
    condvar: Condvar,
}

#[inline]
pub(crate) fn exit_signal() -> &'static ExitSignal {
    static SIGNAL: ExitSignal = ExitSignal {
        epoch: AtomicU64::new(0),
        spawns: AtomicU64::new(0),
        waiters: AtomicUsize::new(0),
        lock: Mutex::new(Vec::new()),
        condvar: Condvar::new(),
    };
    &SIGNAL
}

impl ExitSignal {
    /// Called on every tracked exit, once it is visible to a look at its scope.
    #[inline]
    pub(crate) fn notify(&self) {
        if process_barrier::is_registered() {
            // Keeps the compiler from moving the load above the exit; `exited_unseen` orders them
            // for the CPU.
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_waiters();
        }
    }

    /// Called on every spawn of a tracked task, once it is listed in its scope.
    #[inline]
    pub(crate) fn note_spawn(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.spawns.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[cold]
    fn wake_waiters(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.lock.lock());
        self.condvar.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Registers interest in exits until the returned guard is dropped.
    pub(crate) fn subscribe(&self) -> ExitSubscription<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        ExitSubscription {
            signal: self,
            registered: Mutex::new(None),
        }
    }
}

/// A registered waiter of the [`ExitSignal`].
pub(crate) struct ExitSubscription<'a> {
    signal: &'a ExitSignal,
    /// The waker [`poll_exit`](ExitSubscription::poll_exit) last registered, taken back out of
    /// the signal when the subscription ends (an abandoned async check must not leave its task's
    /// waker behind, to be woken by unrelated exits for ever).
    registered: Mutex<Option<Waker>>,
}

impl ExitSubscription<'_> {
    /// Whether one of `tasks`, seen alive, has exited since, maybe without seeing this
    /// subscription: then they are looked at again, instead of waiting for a wake-up that may
    /// not come. First it makes every exit that did not see the subscription visible here (see
    /// [`ExitSignal`]), which costs a system call: ask it once survivors were seen alive, before
    /// sleeping on them.
    pub(crate) fn exited_unseen(&self, tasks: &[Shared<TaskRecord>]) -> bool {
        if tasks.is_empty() {
            return false;
        }
        if !(process_barrier::is_registered() && process_barrier::barrier()) {
            // Exits fence then; so does this side.
            fence(Ordering::SeqCst);
        }
        tasks.iter().any(|task| task.has_exited())
    }

    /// The current epoch: take it *before* looking at the survivors.
    pub(crate) fn epoch(&self) -> u64 {
        self.signal.epoch.load(Ordering::SeqCst)
    }

    /// How many spawns were made while someone waited: take it *before* looking at the
    /// survivors, and trust an empty look only if it has not moved since (see [`ExitSignal`]).
    pub(crate) fn spawns(&self) -> u64 {
        self.signal.spawns.load(Ordering::SeqCst)
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
    pub(crate) fn poll_exit(&self, epoch: u64, waker: &Waker) -> bool {
        let mut wakers = self.signal.lock.lock();
        if self.epoch() != epoch {
            return true;
        }
        let mut registered = self.registered.lock();
        if let Some(previous) = registered.as_ref() {
            if !previous.will_wake(waker) {
                wakers.retain(|w| !w.will_wake(previous));
            }
        }
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        *registered = Some(waker.clone());
        false
    }
}

impl Drop for ExitSubscription<'_> {
    fn drop(&mut self) {
        if let Some(registered) = self.registered.get_mut().take() {
            self.signal
                .lock
                .lock()
                .retain(|w| !w.will_wake(&registered));
        }
        self.signal.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize};
    use std::task::{RawWaker, RawWakerVTable};

    use super::*;

    /// A waker that does nothing, told apart by `id`, with one `static` vtable so that
    /// `will_wake` is exact under Miri too.
    fn noop_waker(id: &'static u8) -> Waker {
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        unsafe fn clone(data: *const ()) -> RawWaker {
            RawWaker::new(data, &VTABLE)
        }
        unsafe fn noop(_: *const ()) {}
        // SAFETY: the vtable's functions do nothing with the pointer, which is to a static.
        unsafe { Waker::from_raw(RawWaker::new((id as *const u8).cast(), &VTABLE)) }
    }

    fn signal() -> ExitSignal {
        ExitSignal {
            epoch: AtomicU64::new(0),
            spawns: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(Vec::new()),
            condvar: Condvar::new(),
        }
    }

    #[test]
    fn an_abandoned_async_wait_takes_its_waker_back() {
        let signal = signal();
        static FIRST: u8 = 1;
        static SECOND: u8 = 2;
        let (first, second) = (noop_waker(&FIRST), noop_waker(&SECOND));
        let subscription = signal.subscribe();
        let epoch = subscription.epoch();
        assert!(!subscription.poll_exit(epoch, &first));
        assert!(!subscription.poll_exit(epoch, &first));
        assert_eq!(signal.lock.lock().len(), 1, "registered once");
        // Polled by another task now: the first one's waker is not kept as well.
        assert!(!subscription.poll_exit(epoch, &second));
        assert_eq!(signal.lock.lock().len(), 1);
        drop(subscription);
        assert!(
            signal.lock.lock().is_empty(),
            "dropped mid-wait, nothing left behind"
        );
        assert_eq!(signal.waiters.load(Ordering::SeqCst), 0);
    }
}
