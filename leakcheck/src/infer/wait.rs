//! What a thread is blocked on, read from its live stack; and what an async task waits on, read
//! from the stack a tokio task dump took of it.
//!
//! The rule: take the innermost run of library frames (from the interrupted instruction, or the
//! leaf future, out to the first frame of the user's code), and in it the *outermost* frame that
//! names a blocking operation. Outermost, because blocking operations are built on each other:
//! crossbeam's `recv` parks the thread, std's `Barrier::wait` waits on a condition variable,
//! tokio's `Mutex::lock` waits on its semaphore, and the operation the user called is the one to
//! name. The user's frame just outside the run is where the thread (or task) blocked.
//!
//! The names are the ones leakcheck's instrumented primitives and annotations use (`chan send`,
//! `chan receive`, `mutex lock`, ...), so inferred and annotated reasons group alike. A send on a
//! bounded channel says more: `buffer full` for a channel with capacity, `rendezvous` for a
//! zero-capacity one.
//!
//! The prefixes were taken from real stacks of each operation (std 1.95, crossbeam-channel 0.5,
//! parking_lot 0.12 and 0.13, tokio 1.54's task dumps and blocking calls) in debug builds; older
//! std paths (`std::sync::mutex::`, `std::thread::park`) are listed too.

use super::{is_library_frame, normalise};
use crate::report::{Frame, LeakedTask, Site};
use crate::vocab::TaskState;

/// A wait reason inferred from a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InferredWait {
    /// The operation, in the words annotations use: `chan send`, `mutex lock`, ...
    pub(crate) reason: &'static str,
    /// What more the stack says: `buffer full` or `rendezvous` for a blocked send.
    pub(crate) detail: Option<&'static str>,
    /// The index of the user's frame that called the blocking operation, if any.
    pub(crate) blocked_at: Option<usize>,
}

/// A blocking operation: the function-name prefixes that identify it.
struct Operation {
    reason: &'static str,
    prefixes: &'static [&'static str],
}

/// The operations a thread blocks in, each with every prefix known to name it. Only calls that
/// block the thread are listed: a live stack caught in the middle of a poll is running.
const THREAD_OPERATIONS: &[Operation] = &[
    Operation {
        reason: "chan send",
        prefixes: &[
            "std::sync::mpmc::array::Channel::send",
            "std::sync::mpmc::zero::Channel::send",
            "std::sync::mpmc::list::Channel::send",
            "std::sync::mpmc::Sender::send",
            "std::sync::mpsc::Sender::send",
            "std::sync::mpsc::SyncSender::send",
            "crossbeam_channel::channel::Sender::send",
            "crossbeam_channel::flavors::array::Channel::send",
            "crossbeam_channel::flavors::zero::Channel::send",
            "crossbeam_channel::flavors::list::Channel::send",
            "tokio::sync::mpsc::bounded::Sender::blocking_send",
        ],
    },
    Operation {
        reason: "chan receive",
        prefixes: &[
            "std::sync::mpmc::array::Channel::recv",
            "std::sync::mpmc::zero::Channel::recv",
            "std::sync::mpmc::list::Channel::recv",
            "std::sync::mpmc::Receiver::recv",
            "std::sync::mpsc::Receiver::recv",
            "std::sync::mpsc::Iter::next",
            "std::sync::mpsc::IntoIter::next",
            "crossbeam_channel::channel::Receiver::recv",
            "crossbeam_channel::channel::Iter::next",
            "crossbeam_channel::channel::IntoIter::next",
            "crossbeam_channel::flavors::array::Channel::recv",
            "crossbeam_channel::flavors::zero::Channel::recv",
            "crossbeam_channel::flavors::list::Channel::recv",
            // `blocking_recv` and `blocking_recv_many`.
            "tokio::sync::mpsc::bounded::Receiver::blocking_recv",
            "tokio::sync::mpsc::unbounded::UnboundedReceiver::blocking_recv",
            "tokio::sync::oneshot::Receiver::blocking_recv",
            "tokio::sync::broadcast::Receiver::blocking_recv",
        ],
    },
    Operation {
        reason: "chan select",
        prefixes: &["crossbeam_channel::select"],
    },
    Operation {
        reason: "mutex lock",
        prefixes: &[
            "std::sys::sync::mutex::",
            "std::sync::poison::mutex::Mutex::lock",
            "std::sync::nonpoison::mutex::Mutex::lock",
            "std::sync::mutex::Mutex::lock",
            "parking_lot::raw_mutex::RawMutex::lock_slow",
            "parking_lot::raw_fair_mutex::RawFairMutex::lock_slow",
            "lock_api::mutex::Mutex::lock",
            "lock_api::remutex::ReentrantMutex::lock",
            // `blocking_lock` and `blocking_lock_owned`.
            "tokio::sync::mutex::Mutex::blocking_lock",
        ],
    },
    Operation {
        reason: "condvar wait",
        prefixes: &[
            "std::sys::sync::condvar::",
            "std::sync::poison::condvar::Condvar::wait",
            "std::sync::nonpoison::condvar::Condvar::wait",
            "std::sync::condvar::Condvar::wait",
            "parking_lot::condvar::Condvar::wait",
            // parking_lot 0.13 moved `Condvar` into lock_api.
            "parking_lot::raw_condvar::RawCondvar::wait",
            "lock_api::condvar::Condvar::wait",
        ],
    },
    Operation {
        reason: "rwlock read",
        prefixes: &[
            "std::sys::sync::rwlock::futex::RwLock::read",
            "std::sync::poison::rwlock::RwLock::read",
            "std::sync::nonpoison::rwlock::RwLock::read",
            "std::sync::rwlock::RwLock::read",
            "parking_lot::raw_rwlock::RawRwLock::lock_shared",
            "lock_api::rwlock::RwLock::read",
            "tokio::sync::rwlock::RwLock::blocking_read",
        ],
    },
    Operation {
        reason: "rwlock write",
        prefixes: &[
            "std::sys::sync::rwlock::futex::RwLock::write",
            "std::sync::poison::rwlock::RwLock::write",
            "std::sync::nonpoison::rwlock::RwLock::write",
            "std::sync::rwlock::RwLock::write",
            "parking_lot::raw_rwlock::RawRwLock::lock_exclusive",
            "lock_api::rwlock::RwLock::write",
            "tokio::sync::rwlock::RwLock::blocking_write",
        ],
    },
    Operation {
        // A lock std or parking_lot takes for an rwlock whose mode the frame does not say.
        reason: "rwlock",
        prefixes: &["std::sys::sync::rwlock::", "parking_lot::raw_rwlock::"],
    },
    Operation {
        reason: "join",
        prefixes: &[
            "std::thread::join_handle::JoinHandle::join",
            "std::thread::JoinHandle::join",
            "std::thread::scoped::ScopedJoinHandle::join",
            "std::thread::lifecycle::JoinInner::join",
            "std::sys::thread::unix::Thread::join",
            "std::sys::pal::unix::thread::Thread::join",
            "std::thread::scoped::scope",
        ],
    },
    Operation {
        reason: "park",
        prefixes: &[
            "std::thread::functions::park",
            "std::thread::park",
            "std::thread::Thread::park",
            "std::thread::thread::Thread::park",
            // A tokio worker with no task to run, on a condition variable or in the I/O driver
            // alike: one reason, so a runtime's workers read (and group) as one.
            "tokio::runtime::scheduler::multi_thread::worker::Context::park",
            "tokio::runtime::scheduler::current_thread::Context::park",
        ],
    },
    Operation {
        reason: "sleep",
        prefixes: &[
            "std::thread::functions::sleep",
            "std::thread::sleep",
            "std::sys::thread::unix::sleep",
            "std::sys::pal::unix::thread::Thread::sleep",
        ],
    },
    Operation {
        reason: "barrier wait",
        prefixes: &["std::sync::barrier::Barrier::wait"],
    },
];

/// The tokio futures a pending task's async stack (from a task dump) ends in, each with every
/// prefix known to name it. Such a stack runs from the leaf future tokio traced out to the task's
/// own future, so a poll path here is a wait.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))] // Read from task dumps only.
const TASK_OPERATIONS: &[Operation] = &[
    Operation {
        // Before `chan send`: a sender waiting for its receivers to go, not to send.
        reason: "chan closed",
        prefixes: &[
            "tokio::sync::mpsc::bounded::Sender::closed",
            "tokio::sync::mpsc::unbounded::UnboundedSender::closed",
            "tokio::sync::mpsc::chan::Tx::closed",
            "tokio::sync::oneshot::Sender::closed",
            "tokio::sync::oneshot::Sender::poll_closed",
            "tokio::sync::broadcast::Sender::closed",
            "tokio::sync::watch::Sender::closed",
        ],
    },
    Operation {
        // `send`, `reserve`, `reserve_many`, `send_timeout`...
        reason: "chan send",
        prefixes: &["tokio::sync::mpsc::bounded::Sender::"],
    },
    Operation {
        reason: "chan receive",
        prefixes: &[
            "tokio::sync::mpsc::bounded::Receiver::",
            "tokio::sync::mpsc::unbounded::UnboundedReceiver::",
            "tokio::sync::mpsc::chan::Rx::recv",
            "tokio::sync::oneshot::Receiver::",
            "tokio::sync::oneshot::Inner::poll_recv",
            "tokio::sync::broadcast::Receiver::",
            "tokio::sync::broadcast::Recv::",
        ],
    },
    Operation {
        reason: "watch change",
        prefixes: &[
            "tokio::sync::watch::Receiver::changed",
            "tokio::sync::watch::Receiver::wait_for",
            "tokio::sync::watch::changed_impl",
        ],
    },
    Operation {
        // `lock`, `lock_owned`, and the `acquire` inside them.
        reason: "mutex lock",
        prefixes: &["tokio::sync::mutex::Mutex::"],
    },
    Operation {
        // `read`, `read_owned`.
        reason: "rwlock read",
        prefixes: &["tokio::sync::rwlock::RwLock::read"],
    },
    Operation {
        reason: "rwlock write",
        prefixes: &["tokio::sync::rwlock::RwLock::write"],
    },
    Operation {
        // Another task is initialising the cell: only with the cell's semaphore just inside (see
        // `infer_in`), since the task initialising it runs its initialiser in the same frame.
        reason: ONCE_INIT,
        prefixes: &["tokio::sync::once_cell::OnceCell::get_or"],
    },
    Operation {
        reason: "barrier wait",
        prefixes: &["tokio::sync::barrier::Barrier::wait"],
    },
    Operation {
        reason: "semaphore acquire",
        prefixes: &[
            "tokio::sync::semaphore::Semaphore::acquire",
            "tokio::sync::batch_semaphore::Acquire::",
        ],
    },
    Operation {
        reason: "notify",
        prefixes: &[
            "tokio::sync::notify::Notified::",
            "tokio::sync::notify::OwnedNotified::",
            "tokio::sync::notify::NotifiedProject::",
        ],
    },
    Operation {
        reason: "join",
        prefixes: &["tokio::runtime::task::join::JoinHandle::poll"],
    },
    Operation {
        // A `timeout`'s own timer (see `infer_task_wait_site`).
        reason: TIMEOUT,
        prefixes: &["tokio::time::timeout::poll_delay"],
    },
    Operation {
        reason: "sleep",
        prefixes: &["tokio::time::sleep::Sleep::"],
    },
    Operation {
        reason: "interval tick",
        prefixes: &[
            "tokio::time::interval::Interval::tick",
            "tokio::time::interval::Interval::poll_tick",
        ],
    },
    Operation {
        reason: "I/O read",
        prefixes: &[
            "tokio::runtime::io::registration::Registration::poll_read_ready",
            "tokio::runtime::io::registration::Registration::poll_read_io",
        ],
    },
    Operation {
        reason: "I/O write",
        prefixes: &[
            "tokio::runtime::io::registration::Registration::poll_write_ready",
            "tokio::runtime::io::registration::Registration::poll_write_io",
        ],
    },
    Operation {
        // A registration's readiness of a kind the frame does not say.
        reason: "I/O",
        prefixes: &["tokio::runtime::io::registration::"],
    },
];

/// The reason of a `timeout`'s own timer, which a task waits on beside the future it times out.
const TIMEOUT: &str = "timeout";
/// A `timeout`'s poll, through which both its timer and its future are polled.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))] // Read from task dumps only.
const TIMEOUT_POLL: &str = "tokio::time::timeout::Timeout::poll";
/// The reason of a task waiting for another to initialise a `OnceCell`.
const ONCE_INIT: &str = "once init";
/// What must be just inside a `OnceCell` frame for [`ONCE_INIT`].
const ONCE_INIT_INSIDE: &str = "tokio::sync::semaphore::Semaphore::acquire";

/// Frames that say how a blocked send waits.
const SEND_DETAILS: &[(&str, &str)] = &[
    ("std::sync::mpmc::array::", "buffer full"),
    ("crossbeam_channel::flavors::array::", "buffer full"),
    ("std::sync::mpmc::zero::", "rendezvous"),
    ("crossbeam_channel::flavors::zero::", "rendezvous"),
    ("tokio::sync::mpsc::bounded::", "buffer full"),
];

/// What the thread whose live stack is `frames` (innermost first) is blocked on, if the stack
/// names a blocking call in its innermost run of library frames.
pub(crate) fn infer_wait(frames: &[Frame]) -> Option<InferredWait> {
    infer_in(frames, THREAD_OPERATIONS)
}

/// What a pending task whose async stack is `frames` (the leaf future first) waits in, if the
/// stack names a tokio future in its innermost run of library frames.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))] // Read from task dumps only.
pub(crate) fn infer_task_wait(frames: &[Frame]) -> Option<InferredWait> {
    infer_in(frames, TASK_OPERATIONS)
}

fn infer_in(frames: &[Frame], operations: &[Operation]) -> Option<InferredWait> {
    let run_end = frames
        .iter()
        .position(|frame| !is_library_frame(frame))
        .unwrap_or(frames.len());
    let names: Vec<String> = frames[..run_end]
        .iter()
        .map(|frame| normalise(frame.function()))
        .collect();
    let reason = (0..names.len()).rev().find_map(|at| {
        let reason = operation_of(&names[at], operations)?;
        let waits_for_another = |inside: &String| matches_prefix(inside, ONCE_INIT_INSIDE);
        if reason == ONCE_INIT
            && !at
                .checked_sub(1)
                .is_some_and(|i| waits_for_another(&names[i]))
        {
            return None; // The initialiser itself, waiting in what it runs.
        }
        Some(reason)
    })?;
    let detail = if reason == "chan send" {
        names.iter().find_map(|name| {
            SEND_DETAILS
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix))
                .map(|(_, detail)| *detail)
        })
    } else {
        None
    };
    Some(InferredWait {
        reason,
        detail,
        blocked_at: (run_end < frames.len()).then_some(run_end),
    })
}

/// A wait reason inferred from a stack, with the user's call it blocked in as a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SiteWait {
    pub(crate) reason: &'static str,
    pub(crate) detail: Option<&'static str>,
    pub(crate) blocked_at: Option<Site>,
}

impl SiteWait {
    /// Makes `task` read as blocked in this wait, inferred from its stack.
    pub(crate) fn mark(self, task: &mut LeakedTask) {
        task.state = TaskState::Blocked;
        task.blocked_on = Some(self.reason.to_owned());
        task.blocked_at = self.blocked_at;
        task.wait_inferred = true;
        task.wait_detail = self.detail.map(str::to_owned);
    }

    fn of(wait: InferredWait, frames: &[Frame]) -> SiteWait {
        let blocked_at = wait.blocked_at.and_then(|at| {
            let frame = &frames[at];
            Some(Site::new(frame.file()?, frame.line()?, 0))
        });
        SiteWait {
            reason: wait.reason,
            detail: wait.detail,
            blocked_at,
        }
    }
}

/// [`infer_wait`], with the user's frame it points at as a site.
pub(crate) fn infer_wait_site(frames: &[Frame]) -> Option<SiteWait> {
    Some(SiteWait::of(infer_wait(frames)?, frames))
}

/// What a pending task waits in, from all the async stacks a task dump took of it (one per leaf
/// future tokio traced), and which of them to show: the first that names that call, or the first
/// that is no `timeout`'s own timer.
///
/// A task that waits on several futures at once (`select!`, `join!`) waits in one call only if
/// every stack names that call at the same site: waiting in any of several calls is waiting in
/// none of them. A `timeout`'s own timer is set aside when the future it times out has a stack
/// of its own, through the same `timeout`; without one, the timer is what the task is seen to
/// wait on (`timeout`). Futures tokio does not trace leave no stack, so they are not seen:
/// `select!` between a receive and an `accept` reads `chan receive`.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))] // Read from task dumps only.
pub(crate) fn infer_task_wait_site(stacks: &[&[Frame]]) -> (usize, Option<SiteWait>) {
    let waits: Vec<Option<SiteWait>> = stacks
        .iter()
        .map(|frames| Some(SiteWait::of(infer_task_wait(frames)?, frames)))
        .collect();
    let is_timer = |at: usize| waits[at].as_ref().is_some_and(|w| w.reason == TIMEOUT);
    // A timer beside its future: another stack, no timer, goes out through the same `timeout`.
    let beside_its_future = |at: usize| {
        let Some(outward) = outward_of_timeout(stacks[at]) else {
            return false;
        };
        (0..stacks.len())
            .any(|other| !is_timer(other) && outward_of_timeout(stacks[other]) == Some(outward))
    };
    let counted: Vec<usize> = (0..stacks.len())
        .filter(|&at| !(is_timer(at) && beside_its_future(at)))
        .collect();
    let shown_anyway = (0..stacks.len()).find(|&at| !is_timer(at)).unwrap_or(0);
    let Some(first) = counted.first().and_then(|&at| waits[at].as_ref()) else {
        return (shown_anyway, None);
    };
    if counted.iter().all(|&at| waits[at].as_ref() == Some(first)) {
        (counted[0], Some(first.clone()))
    } else {
        (shown_anyway, None)
    }
}

/// The frames outward of the innermost `timeout` poll in `frames`, if any: the same for the
/// stacks of a `timeout`'s timer and of the future it times out.
fn outward_of_timeout(frames: &[Frame]) -> Option<&[Frame]> {
    let at = frames
        .iter()
        .position(|frame| matches_prefix(&normalise(frame.function()), TIMEOUT_POLL))?;
    Some(&frames[at + 1..])
}

fn operation_of(name: &str, operations: &[Operation]) -> Option<&'static str> {
    operations
        .iter()
        .find(|op| {
            op.prefixes
                .iter()
                .any(|prefix| matches_prefix(name, prefix))
        })
        .map(|op| op.reason)
}

/// `prefix` is a whole-segment prefix of `name`, or names a function whose name continues with
/// `_`: `...::send` matches `...::send`, `...::send::{{closure}}` and `...::send_timeout`, not
/// `...::sender`. A prefix that ends with `::` matches whatever follows.
fn matches_prefix(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        prefix.ends_with("::") || rest.is_empty() || rest.starts_with("::") || rest.starts_with('_')
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{c_frame, dep_frame, frame, std_frame};
    use super::*;

    fn user(function: &str) -> Frame {
        frame(function, "tests/plain.rs")
    }

    /// The tail every std thread has: the closure, std's start machinery, glibc.
    fn thread_tail() -> Vec<Frame> {
        vec![
            user("plain::leaks::{{closure}}::h6a84c6acd04bfccf"),
            std_frame("std::thread::lifecycle::spawn_unchecked::{{closure}}::{{closure}}::h9e353a227bdae12f"),
            std_frame("<std[e28293b1aa0f68bd]::sys::thread::unix::Thread>::new::thread_start"),
            c_frame("start_thread"),
            c_frame("clone3"),
        ]
    }

    fn stack(inner: &[Frame]) -> Vec<Frame> {
        let mut frames = inner.to_vec();
        frames.extend(thread_tail());
        frames
    }

    fn futex_park() -> Vec<Frame> {
        vec![
            c_frame("syscall"),
            std_frame("std[e28293b1aa0f68bd]::sys::pal::unix::futex::futex_wait"),
            std_frame("<std[e28293b1aa0f68bd]::sys::sync::thread_parking::futex::Parker>::park"),
            std_frame("<std[e28293b1aa0f68bd]::thread::thread::Thread>::park"),
        ]
    }

    fn with_park(rest: &[Frame]) -> Vec<Frame> {
        let mut frames = futex_park();
        frames.extend_from_slice(rest);
        stack(&frames)
    }

    #[test]
    fn a_full_bounded_channel_is_a_send_with_a_full_buffer() {
        let frames = with_park(&[
            std_frame("std::sync::mpmc::context::Context::wait_until::hf4c567adddb68b05"),
            std_frame("std::sync::mpmc::array::Channel<T>::send::{{closure}}::h19d0e2d74f37cb00"),
            std_frame("std::thread::local::LocalKey<T>::try_with::h24221ae597be583e"),
            std_frame("std::sync::mpmc::array::Channel<T>::send::hbc8ee5bcfb90935f"),
            std_frame("std::sync::mpmc::Sender<T>::send::h6c01bc4eb8fc2718"),
            std_frame("std::sync::mpsc::SyncSender<T>::send::he4ed3e40e94de392"),
        ]);
        let wait = infer_wait(&frames).unwrap();
        assert_eq!(wait.reason, "chan send");
        assert_eq!(wait.detail, Some("buffer full"));
        assert_eq!(
            frames[wait.blocked_at.unwrap()].function(),
            "plain::leaks::{{closure}}::h6a84c6acd04bfccf"
        );
    }

    #[test]
    fn a_zero_capacity_channel_is_a_rendezvous() {
        let frames = with_park(&[
            std_frame("std::sync::mpmc::context::Context::wait_until::hf4c567adddb68b05"),
            std_frame("std::sync::mpmc::zero::Channel<T>::send::h8be86628eccfb0f7"),
            std_frame("std::sync::mpmc::Sender<T>::send::h6c01bc4eb8fc2718"),
            std_frame("std::sync::mpsc::SyncSender<T>::send::he4ed3e40e94de392"),
        ]);
        let wait = infer_wait(&frames).unwrap();
        assert_eq!(
            (wait.reason, wait.detail),
            ("chan send", Some("rendezvous"))
        );
    }

    #[test]
    fn crossbeam_receive_wins_over_the_park_inside_it() {
        let mut inner = futex_park();
        inner.push(std_frame("std[e28293b1aa0f68bd]::thread::functions::park"));
        inner.extend([
            dep_frame("crossbeam_channel::context::Context::wait_until::he32e9e815c88a543"),
            dep_frame("crossbeam_channel::flavors::list::Channel<T>::recv::ha532985ca68e6b1a"),
            dep_frame("crossbeam_channel::channel::Receiver<T>::recv::h2b0b0e79cf9b4d4b"),
        ]);
        let frames = stack(&inner);
        let wait = infer_wait(&frames).unwrap();
        assert_eq!((wait.reason, wait.detail), ("chan receive", None));
    }

    #[test]
    fn locks_condvars_and_barriers() {
        let mutex = stack(&[
            c_frame("syscall"),
            std_frame("<std[e28293b1aa0f68bd]::sys::sync::mutex::futex::Mutex>::lock_contended"),
            std_frame("std::sys::sync::mutex::futex::Mutex::lock::h828a0bcd2b26eedd"),
            std_frame("std::sync::poison::mutex::Mutex<T>::lock::h483e06ca5810a60c"),
        ]);
        assert_eq!(infer_wait(&mutex).unwrap().reason, "mutex lock");

        let barrier = stack(&[
            c_frame("syscall"),
            std_frame("<std[e2]::sys::sync::condvar::futex::Condvar>::wait"),
            std_frame("<std[e2]::sync::nonpoison::condvar::Condvar>::wait::<std[e2]::sync::barrier::BarrierState>"),
            std_frame("<std[e2]::sync::barrier::Barrier>::wait"),
        ]);
        assert_eq!(infer_wait(&barrier).unwrap().reason, "barrier wait");

        let parking_lot = stack(&[
            c_frame("syscall"),
            dep_frame("parking_lot_core::parking_lot::park::h0c8a20167856e1a1"),
            dep_frame("parking_lot::raw_mutex::RawMutex::lock_slow::h8be66231f998d46b"),
            dep_frame("<parking_lot::raw_mutex::RawMutex as lock_api::mutex::RawMutex>::lock::h1f686fa8a718a902"),
            dep_frame("lock_api::mutex::Mutex<R,T>::lock::h17915f483808d73d"),
        ]);
        assert_eq!(infer_wait(&parking_lot).unwrap().reason, "mutex lock");

        let lock_api_condvar = stack(&[
            c_frame("syscall"),
            dep_frame("parking_lot_core::parking_lot::park::h1"),
            dep_frame("parking_lot::raw_condvar::RawCondvar::wait_until_internal::h1"),
            dep_frame("<parking_lot::raw_condvar::RawCondvar as lock_api::condvar::RawCondvarTimed>::wait_until::h1"),
            dep_frame("lock_api::condvar::Condvar<C>::wait_until::h1"),
        ]);
        assert_eq!(
            infer_wait(&lock_api_condvar).unwrap().reason,
            "condvar wait"
        );

        let read = stack(&[
            c_frame("syscall"),
            std_frame("<std[e2]::sys::sync::rwlock::futex::RwLock>::read_contended"),
            std_frame("std::sys::sync::rwlock::futex::RwLock::read::hee7b6c79df612fae"),
            std_frame("std::sync::poison::rwlock::RwLock<T>::read::h7a2f127aec1bd9f4"),
        ]);
        assert_eq!(infer_wait(&read).unwrap().reason, "rwlock read");
    }

    #[test]
    fn join_park_and_sleep() {
        let join = stack(&[
            c_frame("__futex_abstimed_wait_common64"),
            c_frame("__pthread_clockjoin_ex"),
            std_frame("<std[e2]::sys::thread::unix::Thread>::join"),
            std_frame("std::thread::lifecycle::JoinInner<T>::join::h4ee3a7922ceb0b14"),
            std_frame("std::thread::join_handle::JoinHandle<T>::join::ha421b58fbd1c1673"),
        ]);
        assert_eq!(infer_wait(&join).unwrap().reason, "join");

        let mut park = futex_park();
        park.push(std_frame("std[e2]::thread::functions::park"));
        assert_eq!(infer_wait(&stack(&park)).unwrap().reason, "park");

        let sleep = stack(&[
            c_frame("__GI___clock_nanosleep"),
            std_frame("std[e2]::sys::thread::unix::sleep::nanosleep"),
            std_frame("std[e2]::sys::thread::unix::sleep"),
            std_frame("std[e2]::thread::functions::sleep"),
        ]);
        assert_eq!(infer_wait(&sleep).unwrap().reason, "sleep");
    }

    #[test]
    fn a_tokio_workers_park_is_one_reason_wherever_it_waits() {
        let tail = [
            dep_frame(
                "tokio::runtime::scheduler::multi_thread::worker::Context::park_internal::h1",
            ),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::Context::park::h1"),
            dep_frame("tokio::runtime::scheduler::multi_thread::worker::Context::run::h1"),
            dep_frame("tokio::runtime::blocking::pool::Inner::run::h1"),
            c_frame("start_thread"),
        ];
        let mut on_condvar = vec![
            c_frame("syscall"),
            dep_frame("parking_lot::condvar::Condvar::wait::h1"),
            dep_frame("tokio::runtime::scheduler::multi_thread::park::Inner::park_condvar::h1"),
        ];
        on_condvar.extend(tail.iter().cloned());
        let mut in_driver = vec![
            c_frame("epoll_wait"),
            dep_frame("mio::poll::Poll::poll::h1"),
            dep_frame("tokio::runtime::io::driver::Driver::park::h1"),
        ];
        in_driver.extend(tail.iter().cloned());
        for frames in [on_condvar, in_driver] {
            assert_eq!(infer_wait(&frames).unwrap().reason, "park");
        }
    }

    /// An async stack from a tokio task dump: `leaf` (tokio's frames, the leaf future first),
    /// then the task's own async fn, where tokio's traces end.
    fn dumped(leaf: &[&str]) -> Vec<Frame> {
        let mut frames: Vec<Frame> = leaf.iter().map(|name| dep_frame(name)).collect();
        frames.push(user(
            "plain::leaks::{{closure}}::{{closure}}::h8f0ec1bd4a6d4bf1",
        ));
        frames
    }

    const SLEEP: &[&str] = &[
        "tokio::time::sleep::Sleep::poll_elapsed::hb1ebd88832e8685f",
        "<tokio::time::sleep::Sleep as core::future::future::Future>::poll::h541cd83e573a8765",
    ];
    const RECV: &[&str] = &[
        "tokio::sync::mpsc::chan::Rx<T,S>::recv::hbab2e7c36ba89cba",
        "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::{{closure}}::h750d0d4e47086be0",
        "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::hb188f46926714307",
    ];
    const NOTIFIED: &[&str] = &[
        "tokio::sync::notify::NotifiedProject::poll_notified::he324215c524387d0",
        "tokio::sync::notify::Notified::poll_notified::hfad2c0ee5123b1af",
        "<tokio::sync::notify::Notified as core::future::future::Future>::poll::h61ae4c0f7de25c85",
    ];
    const ACQUIRE: &str =
        "<tokio::sync::batch_semaphore::Acquire as core::future::future::Future>::poll::h3c66620100aa07a9";
    const TIMEOUT_DELAY: &[&str] = &[
        "tokio::time::timeout::poll_delay::{{closure}}::h2bb04df713d6b154",
        "tokio::time::timeout::poll_delay::h5318482e3e284639",
        "<tokio::time::timeout::Timeout<T> as core::future::future::Future>::poll::h3237ca5be176692a",
    ];

    /// Each case: the reason and detail expected, and the stack's tokio frames, leaf first.
    type Case = (&'static str, Option<&'static str>, Vec<&'static str>);

    /// The stacks of tasks pending in each call, from real task dumps (tokio 1.54).
    fn task_cases() -> Vec<Case> {
        let with = |a: &[&'static str], b: &[&'static str]| [a, b].concat();
        vec![
            ("sleep", None, SLEEP.to_vec()),
            (
                "interval tick",
                None,
                with(
                    SLEEP,
                    &[
                        "tokio::time::interval::Interval::poll_tick::h0edc431e3c3af610",
                        "tokio::time::interval::Interval::tick::{{closure}}::{{closure}}::h9d6c1766fb476249",
                        "tokio::time::interval::Interval::tick::{{closure}}::h4e0b06ed13edd37c",
                    ],
                ),
            ),
            // A `timeout` around a future tokio does not trace.
            ("timeout", None, with(SLEEP, TIMEOUT_DELAY)),
            ("chan receive", None, RECV.to_vec()),
            (
                "chan receive",
                None,
                vec![
                    "tokio::sync::mpsc::chan::Rx<T,S>::recv::h344b55c2d2ca4c11",
                    "tokio::sync::mpsc::unbounded::UnboundedReceiver<T>::poll_recv::h5c9351f33eadb2a1",
                    "tokio::sync::mpsc::unbounded::UnboundedReceiver<T>::recv::{{closure}}::{{closure}}::h9abb923c73363d63",
                    "tokio::sync::mpsc::unbounded::UnboundedReceiver<T>::recv::{{closure}}::h4a50f7c0dc77d7e0",
                ],
            ),
            (
                "chan receive",
                None,
                vec![
                    "tokio::sync::oneshot::Inner<T>::poll_recv::h3c73a301ef6920fe",
                    "<tokio::sync::oneshot::Receiver<T> as core::future::future::Future>::poll::h5180e897572147b4",
                ],
            ),
            (
                "chan receive",
                None,
                vec![
                    "<tokio::sync::broadcast::Recv<T> as core::future::future::Future>::poll::hec3128e01009be31",
                    "tokio::sync::broadcast::Receiver<T>::recv::{{closure}}::hb5e5cebec7a77e58",
                ],
            ),
            (
                "chan send",
                Some("buffer full"),
                vec![
                    ACQUIRE,
                    "tokio::sync::mpsc::bounded::Sender<T>::reserve_inner::{{closure}}::h92646d72dd20404d",
                    "tokio::sync::mpsc::bounded::Sender<T>::reserve::{{closure}}::ha17787f395f64e66",
                    "tokio::sync::mpsc::bounded::Sender<T>::send::{{closure}}::hcda22f9090cfe3b9",
                ],
            ),
            // A sender waiting for its receivers to go, on each kind of channel.
            (
                "chan closed",
                None,
                with(
                    NOTIFIED,
                    &[
                        "tokio::sync::mpsc::chan::Tx<T,S>::closed::{{closure}}::h1",
                        "tokio::sync::mpsc::bounded::Sender<T>::closed::{{closure}}::h1",
                    ],
                ),
            ),
            (
                "chan closed",
                None,
                with(
                    NOTIFIED,
                    &[
                        "tokio::sync::mpsc::chan::Tx<T,S>::closed::{{closure}}::h1",
                        "tokio::sync::mpsc::unbounded::UnboundedSender<T>::closed::{{closure}}::h1",
                    ],
                ),
            ),
            (
                "chan closed",
                None,
                vec![
                    "tokio::sync::oneshot::Sender<T>::poll_closed::h1",
                    "tokio::sync::oneshot::Sender<T>::closed::{{closure}}::{{closure}}::h1",
                    "tokio::sync::oneshot::Sender<T>::closed::{{closure}}::h1",
                ],
            ),
            (
                "chan closed",
                None,
                with(
                    NOTIFIED,
                    &["tokio::sync::broadcast::Sender<T>::closed::{{closure}}::h1"],
                ),
            ),
            (
                "chan closed",
                None,
                with(
                    NOTIFIED,
                    &[
                        "tokio::sync::watch::Sender<T>::closed::{{closure}}::{{closure}}::h1",
                        "tokio::sync::watch::Sender<T>::closed::{{closure}}::h1",
                    ],
                ),
            ),
            (
                "watch change",
                None,
                with(
                    NOTIFIED,
                    &[
                        "tokio::sync::watch::changed_impl::{{closure}}::h5a89676a4c61ade4",
                        "tokio::sync::watch::Receiver<T>::changed::{{closure}}::h513295a46a96f511",
                    ],
                ),
            ),
            (
                // The lock, not the semaphore inside it.
                "mutex lock",
                None,
                vec![
                    ACQUIRE,
                    "tokio::sync::mutex::Mutex<T>::acquire::{{closure}}::h3e5972af6ea46b80",
                    "tokio::sync::mutex::Mutex<T>::lock::{{closure}}::{{closure}}::h8e65ca7e8c5a9f8c",
                    "tokio::sync::mutex::Mutex<T>::lock::{{closure}}::h67b8a1b34a80b6d8",
                ],
            ),
            (
                "rwlock read",
                None,
                vec![
                    ACQUIRE,
                    "tokio::sync::rwlock::RwLock<T>::read::{{closure}}::{{closure}}::h57be13e0b1a35a49",
                    "tokio::sync::rwlock::RwLock<T>::read::{{closure}}::h749f77255cb4b5cc",
                ],
            ),
            (
                "rwlock write",
                None,
                vec![
                    ACQUIRE,
                    "tokio::sync::rwlock::RwLock<T>::write::{{closure}}::{{closure}}::hebf8d5ff360e779e",
                    "tokio::sync::rwlock::RwLock<T>::write::{{closure}}::hb55ce865f529fbcd",
                ],
            ),
            (
                "semaphore acquire",
                None,
                vec![
                    ACQUIRE,
                    "tokio::sync::semaphore::Semaphore::acquire::{{closure}}::ha955a02d7480c6d1",
                ],
            ),
            (
                // Another task is initialising the cell.
                "once init",
                None,
                vec![
                    ACQUIRE,
                    "tokio::sync::semaphore::Semaphore::acquire::{{closure}}::h1",
                    "tokio::sync::once_cell::OnceCell<T>::get_or_init::{{closure}}::h1",
                ],
            ),
            (
                // The barrier, not the watch channel inside it.
                "barrier wait",
                None,
                with(
                    NOTIFIED,
                    &[
                        "tokio::sync::watch::changed_impl::{{closure}}::he7f8a2a48ec24e76",
                        "tokio::sync::watch::Receiver<T>::changed::{{closure}}::h44f563ac7f4dd955",
                        "tokio::sync::barrier::Barrier::wait_internal::{{closure}}::hc6ca3163d0d9a588",
                        "tokio::sync::barrier::Barrier::wait::{{closure}}::hee1d9bece9daef2d",
                    ],
                ),
            ),
            ("notify", None, NOTIFIED.to_vec()),
            (
                "notify",
                None,
                vec![
                    "tokio::sync::notify::NotifiedProject::poll_notified::h1",
                    "tokio::sync::notify::OwnedNotified::poll_notified::h1",
                    "<tokio::sync::notify::OwnedNotified as core::future::future::Future>::poll::h1",
                ],
            ),
            (
                "join",
                None,
                vec!["<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll::hc9b1dbbcb1962863"],
            ),
            (
                "I/O read",
                None,
                vec![
                    "tokio::runtime::io::registration::Registration::poll_ready::h694320dc1880cea6",
                    "tokio::runtime::io::registration::Registration::poll_read_ready::he33a0700969b5474",
                    "tokio::io::poll_evented::PollEvented<E>::poll_read::h17cd797016054b46",
                    "tokio::net::tcp::stream::TcpStream::poll_read_priv::h03f9025890da2c38",
                    "<tokio::io::util::read::Read<R> as core::future::future::Future>::poll::h208d3c722e2715ec",
                ],
            ),
            (
                "I/O write",
                None,
                vec![
                    "tokio::runtime::io::registration::Registration::poll_ready::h1",
                    "tokio::runtime::io::registration::Registration::poll_write_ready::h1",
                    "tokio::io::poll_evented::PollEvented<E>::poll_write::h1",
                    "tokio::net::tcp::stream::TcpStream::poll_write_priv::h1",
                    "<tokio::io::util::write_all::WriteAll<W> as core::future::future::Future>::poll::h1",
                ],
            ),
        ]
    }

    #[test]
    fn a_tokio_task_waits_in_the_call_its_async_fn_made() {
        for (reason, detail, leaf) in task_cases() {
            let frames = dumped(&leaf);
            let wait =
                infer_task_wait(&frames).unwrap_or_else(|| panic!("nothing inferred: {leaf:?}"));
            assert_eq!((wait.reason, wait.detail), (reason, detail), "{leaf:?}");
            assert_eq!(
                wait.blocked_at,
                Some(leaf.len()),
                "the task's own frame: {leaf:?}"
            );
            let (shown, sited) = infer_task_wait_site(&[&frames]);
            assert_eq!(shown, 0);
            assert_eq!(
                sited.unwrap().blocked_at.unwrap().to_string(),
                "tests/plain.rs:1",
                "{leaf:?}"
            );
            // Caught on a thread's live stack, the same frames are a poll, not a wait.
            assert_eq!(infer_wait(&frames), None, "{leaf:?}");
        }
    }

    #[test]
    fn a_thread_blocks_in_tokios_blocking_calls_only() {
        for (reason, function) in [
            (
                "chan receive",
                "tokio::sync::mpsc::bounded::Receiver<T>::blocking_recv::h1",
            ),
            (
                "chan receive",
                "tokio::sync::oneshot::Receiver<T>::blocking_recv::h1",
            ),
            (
                "chan send",
                "tokio::sync::mpsc::bounded::Sender<T>::blocking_send::h1",
            ),
            (
                "mutex lock",
                "tokio::sync::mutex::Mutex<T>::blocking_lock::h1",
            ),
            (
                "rwlock write",
                "tokio::sync::rwlock::RwLock<T>::blocking_write::h1",
            ),
        ] {
            let frames = stack(&[
                c_frame("syscall"),
                dep_frame("tokio::runtime::park::Inner::park::h1"),
                dep_frame("tokio::runtime::park::CachedParkThread::block_on::h1"),
                dep_frame(function),
            ]);
            assert_eq!(infer_wait(&frames).unwrap().reason, reason, "{function}");
        }
        // A thread that drives a runtime of its own, caught in a `try_lock`: running.
        let frames = stack(&[
            dep_frame("tokio::sync::batch_semaphore::Semaphore::try_acquire::h1"),
            dep_frame("tokio::sync::mutex::Mutex<T>::try_lock::h1"),
        ]);
        assert_eq!(infer_wait(&frames), None);
    }

    #[test]
    fn a_task_waiting_on_several_futures_waits_in_one_call_only_if_they_all_say_so() {
        const TIMEOUT_POLL_FRAME: &str =
            "<tokio::time::timeout::Timeout<T> as core::future::future::Future>::poll::h3237ca5be176692a";
        let recv = dumped(RECV);
        let sleep = dumped(SLEEP);
        let timer = dumped(&[SLEEP, TIMEOUT_DELAY].concat());
        let timed_recv = dumped(&[RECV, &[TIMEOUT_POLL_FRAME]].concat());
        let reason = |stacks: &[&[Frame]]| {
            let (shown, wait) = infer_task_wait_site(stacks);
            (shown, wait.map(|wait| wait.reason))
        };
        // `timeout(d, rx.recv())`: the receive, whichever stack comes first.
        assert_eq!(reason(&[&timed_recv, &timer]), (0, Some("chan receive")));
        assert_eq!(reason(&[&timer, &timed_recv]), (1, Some("chan receive")));
        // `timeout(d, listener.accept())`: tokio traces only the timer.
        assert_eq!(reason(&[&timer]), (0, Some("timeout")));
        // `select!` between a receive and a `timeout` of an untraced future: in neither.
        assert_eq!(reason(&[&recv, &timer]), (0, None));
        assert_eq!(reason(&[&timer, &recv]), (1, None));
        // `select!` between a receive and a sleep: in neither, in whatever order it polled.
        assert_eq!(reason(&[&recv, &sleep]), (0, None));
        assert_eq!(reason(&[&sleep, &recv]), (0, None));
        // `join!` of two receives at the same place: that receive.
        assert_eq!(reason(&[&recv, &recv]), (0, Some("chan receive")));
        // A stack that names no call leaves the task as it was.
        let unknown = dumped(&["some_crate::Future::poll::h1"]);
        assert_eq!(reason(&[&unknown, &recv]), (0, None));
        assert_eq!(reason(&[]), (0, None));
    }

    #[test]
    fn the_task_initialising_a_once_cell_waits_in_its_initialiser() {
        // `cell.get_or_init(|| tokio::time::sleep(d))`: the initialiser's future is tokio's, so
        // no frame of the task's own code comes between it and the cell.
        let frames = dumped(
            &[
                SLEEP,
                &["tokio::sync::once_cell::OnceCell<T>::get_or_init::{{closure}}::h1"],
            ]
            .concat(),
        );
        assert_eq!(infer_task_wait(&frames).unwrap().reason, "sleep");
    }

    #[test]
    fn only_the_innermost_run_counts() {
        // Running user code, which itself was called from inside a `recv` loop's handler: the
        // user's frame is innermost, so nothing is inferred.
        let frames = stack(&[
            user("plain::busy::h0123456789abcdef"),
            std_frame("std::sync::mpsc::Receiver<T>::recv::ha31bc48eb497e196"),
        ]);
        assert_eq!(infer_wait(&frames), None);
        // A wait whose run reaches the thread's start has no user frame to point at.
        let frames = [
            std_frame("std[e2]::thread::functions::park"),
            c_frame("start_thread"),
        ];
        let wait = infer_wait(&frames).unwrap();
        assert_eq!((wait.reason, wait.blocked_at), ("park", None));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches_prefix(
            "std::thread::functions::park_timeout",
            "std::thread::functions::park"
        ));
        assert!(!matches_prefix(
            "std::thread::functions::parked",
            "std::thread::functions::park"
        ));
    }
}
