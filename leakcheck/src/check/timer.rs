//! A deadline future that needs no runtime: [`VerifyGuard::verify_async`] must end its grace
//! period on any executor, including ones without timers (a hand-written `block_on`).
//!
//! One thread per process, started by the first sleep, keeps the pending deadlines and wakes each
//! sleep's waker when its time comes; it waits on a condition variable until the earliest one, so
//! it costs nothing while no check waits. It is registered as part of the harness, so that checks
//! never count it as a leaked thread.
//!
//! [`VerifyGuard::verify_async`]: crate::VerifyGuard::verify_async

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A future that is ready once `deadline` has passed; `None` never is.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Sleep {
    deadline: Option<Instant>,
    /// Identifies this sleep's entry in the timer while one is registered.
    entry: Option<u64>,
}

/// Sleeps for `duration` from now; a duration too long to represent never ends.
pub(crate) fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Instant::now().checked_add(duration),
        entry: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if Instant::now() >= deadline {
            if let Some(entry) = self.entry.take() {
                timer().cancel(entry);
            }
            return Poll::Ready(());
        }
        let entry = *self
            .entry
            .get_or_insert_with(|| NEXT_ENTRY.fetch_add(1, Ordering::Relaxed));
        timer().register(entry, deadline, cx.waker());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            timer().cancel(entry);
        }
    }
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0);

/// The process's timer: pending deadlines, and the thread that wakes them.
struct Timer {
    pending: Mutex<Vec<Pending>>,
    changed: Condvar,
}

struct Pending {
    entry: u64,
    deadline: Instant,
    waker: Waker,
}

/// The timer of this process, started on first use. A forked child gets a timer of its own: the
/// parent's timer thread was not copied, and its lock may have been held by a thread that was not
/// either. No lock guards the start, for the same reason: the process that starts the timer
/// claims the start with its pid, and others of the same process wait for it.
fn timer() -> &'static Timer {
    static TIMER: AtomicPtr<Timer> = AtomicPtr::new(std::ptr::null_mut());
    /// The process whose timer `TIMER` is.
    static READY_FOR: AtomicU32 = AtomicU32::new(0);
    /// The process that is starting a timer.
    static STARTING_FOR: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        if READY_FOR.load(Ordering::Acquire) == pid {
            // SAFETY: `TIMER` is set, to a leaked and so `'static` timer, before `READY_FOR`
            // names this process (release above, acquire here), and never freed.
            return unsafe { &*TIMER.load(Ordering::Acquire) };
        }
        let starting = STARTING_FOR.load(Ordering::Acquire);
        if starting != pid
            && STARTING_FOR
                .compare_exchange(starting, pid, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            /// Gives the start up if starting panics, so that others do not wait for ever.
            struct GiveUpOnUnwind;
            impl Drop for GiveUpOnUnwind {
                fn drop(&mut self) {
                    STARTING_FOR.store(0, Ordering::Release);
                }
            }
            let give_up = GiveUpOnUnwind;
            let timer = start_timer();
            std::mem::forget(give_up);
            TIMER.store((timer as *const Timer).cast_mut(), Ordering::Release);
            READY_FOR.store(pid, Ordering::Release);
            return timer;
        }
        std::thread::yield_now();
    }
}

/// A new timer and its thread.
fn start_timer() -> &'static Timer {
    let timer: &'static Timer = Box::leak(Box::new(Timer {
        pending: Mutex::new(Vec::new()),
        changed: Condvar::new(),
    }));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("leakcheck-timer".to_owned())
        .spawn(move || {
            // It never ends: its record is not kept.
            drop(super::census::harness_thread_started());
            let _ = started_tx.send(());
            timer.run();
        })
        .expect("leakcheck: cannot start its timer thread");
    // Registered as harness before any check can see it in the thread list.
    let _ = started_rx.recv();
    timer
}

impl Timer {
    fn register(&self, entry: u64, deadline: Instant, waker: &Waker) {
        let mut pending = self.pending.lock();
        match pending.iter_mut().find(|p| p.entry == entry) {
            Some(existing) => {
                if !existing.waker.will_wake(waker) {
                    existing.waker = waker.clone();
                }
            }
            None => {
                pending.push(Pending {
                    entry,
                    deadline,
                    waker: waker.clone(),
                });
                self.changed.notify_one();
            }
        }
    }

    fn cancel(&self, entry: u64) {
        self.pending.lock().retain(|p| p.entry != entry);
    }

    /// Wakes each sleep when its deadline passes; waits for the earliest one, or for a new one.
    fn run(&self) -> ! {
        let mut pending = self.pending.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            pending.retain(|p| {
                let is_due = p.deadline <= now;
                if is_due {
                    due.push(p.waker.clone());
                }
                !is_due
            });
            if !due.is_empty() {
                // Wakers may run arbitrary code: never under the lock.
                parking_lot::MutexGuard::unlocked(&mut pending, || {
                    due.into_iter().for_each(Waker::wake)
                });
                continue;
            }
            match pending.iter().map(|p| p.deadline).min() {
                Some(earliest) => {
                    self.changed.wait_until(&mut pending, earliest);
                }
                None => self.changed.wait(&mut pending),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::task::Wake;

    /// Drives `future` on this thread with a waker that unparks it: no runtime, no timer of its own.
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread, AtomicBool);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.1.store(true, Ordering::Release);
                self.0.unpark();
            }
        }
        let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&unpark));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            while !unpark.1.swap(false, Ordering::Acquire) {
                std::thread::park();
            }
        }
    }

    #[test]
    fn a_sleep_ends_after_its_deadline_when_woken_by_the_timer() {
        let start = Instant::now();
        block_on(sleep(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_dropped_sleep_leaves_nothing_behind() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut pending = Box::pin(sleep(Duration::from_secs(3600)));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        let entry = pending.entry.expect("registered");
        drop(pending);
        assert!(timer().pending.lock().iter().all(|p| p.entry != entry));
    }

    #[test]
    fn a_deadline_too_far_to_represent_never_ends() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut never = Box::pin(sleep(Duration::MAX));
        assert!(never.as_mut().poll(&mut cx).is_pending());
        assert!(never.entry.is_none(), "nothing to wake, nothing registered");
    }
}
