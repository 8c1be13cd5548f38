//! What a thread is blocked on, read from its live stack.
//!
//! The rule: take the innermost run of library frames (from the interrupted instruction out to
//! the first frame of the user's code), and in it the *outermost* frame that names a blocking
//! operation. Outermost, because blocking operations are built on each other: crossbeam's
//! `recv` parks the thread, std's `Barrier::wait` waits on a condition variable, and the
//! operation the user called is the one to name. The user's frame just outside the run is where
//! the thread blocked.
//!
//! The names are the ones leakcheck's instrumented primitives and annotations use (`chan send`,
//! `chan receive`, `mutex lock`, ...), so inferred and annotated reasons group alike. A send on a
//! bounded channel says more: `buffer full` for a channel with capacity, `rendezvous` for a
//! zero-capacity one.
//!
//! The prefixes were taken from real stacks of each operation (std 1.95, crossbeam-channel 0.5,
//! parking_lot 0.12 and 0.13) in debug builds; older std paths (`std::sync::mutex::`,
//! `std::thread::park`) are listed too.

use super::{is_library_frame, normalise};
use crate::report::Frame;

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

/// Every operation recognised, each with every prefix known to name it.
const OPERATIONS: &[Operation] = &[
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

/// Frames that say how a blocked send waits.
const SEND_DETAILS: &[(&str, &str)] = &[
    ("std::sync::mpmc::array::", "buffer full"),
    ("crossbeam_channel::flavors::array::", "buffer full"),
    ("std::sync::mpmc::zero::", "rendezvous"),
    ("crossbeam_channel::flavors::zero::", "rendezvous"),
];

/// What the thread whose live stack is `frames` (innermost first) is blocked on, if the stack
/// names a blocking operation in its innermost run of library frames.
pub(crate) fn infer_wait(frames: &[Frame]) -> Option<InferredWait> {
    let run_end = frames
        .iter()
        .position(|frame| !is_library_frame(frame))
        .unwrap_or(frames.len());
    let names: Vec<String> = frames[..run_end]
        .iter()
        .map(|frame| normalise(frame.function()))
        .collect();
    let reason = names.iter().rev().find_map(|name| operation_of(name))?;
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

fn operation_of(name: &str) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .find(|op| {
            op.prefixes
                .iter()
                .any(|prefix| matches_prefix(name, prefix))
        })
        .map(|op| op.reason)
}

/// `prefix` is a whole-segment prefix of `name`: `...::send` matches `...::send` and
/// `...::send::{{closure}}`, not `...::send_timeout`... unless the prefix ends with `::`.
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
