//! The requester's side: arm the slot, send the signal, wait for the answer, copy it out.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::slot::{
    cookie, pack, ANSWERED, ARMED, DONE, GENERATION_MASK, IDLE, MAX_FRAMES, PHASE_MASK,
    REFUSED_SMALL_ALTERNATE_STACK, SLOT, WRITING,
};

/// Held by requesters only (never by the handler): one request at a time. Holds the last
/// generation used.
static REQUESTS: Mutex<u32> = Mutex::new(0);

/// Sends the request to thread `tid` and waits for the answer. No checks beforehand: a thread
/// that cannot answer makes this time out.
pub(super) fn request(
    tid: i32,
    signal: libc::c_int,
    timeout: Duration,
) -> Result<Vec<usize>, String> {
    // Bounded: in a forked child, the lock may be held by a thread that was not copied.
    let Some(mut last_generation) = REQUESTS.try_lock_for(timeout) else {
        return Err(format!(
            "another live-stack request held the way for {timeout:?} (in a forked child: a \
             request of the parent's, which never ends here)"
        ));
    };
    let mut deadline = Instant::now() + timeout;
    // A handler an earlier request gave up on may still be writing: it finishes first.
    loop {
        let word = SLOT.word.load(Ordering::Acquire);
        if word & PHASE_MASK != WRITING {
            break;
        }
        if Instant::now() >= deadline {
            return Err("an earlier live-stack request is still being answered".to_owned());
        }
        futex_wait(&SLOT.word, word, deadline);
    }
    let generation = match (*last_generation + 1) & GENERATION_MASK {
        0 => 1,
        next => next,
    };
    *last_generation = generation;
    SLOT.len.store(0, Ordering::Relaxed);
    SLOT.refusal.store(ANSWERED, Ordering::Relaxed);
    SLOT.target.store(tid, Ordering::Relaxed);
    SLOT.word.store(pack(generation, ARMED), Ordering::Release);

    if let Err(errno) = send(tid, signal) {
        let _ = SLOT.word.compare_exchange(
            pack(generation, ARMED),
            pack(generation, IDLE),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        return Err(match errno {
            libc::ESRCH => "the thread has exited".to_owned(),
            libc::EAGAIN => {
                "the signal could not be queued (too many signals pending, RLIMIT_SIGPENDING)"
                    .to_owned()
            }
            errno => format!(
                "the signal could not be sent: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        });
    }

    let mut extended = false;
    loop {
        let word = SLOT.word.load(Ordering::Acquire);
        if word == pack(generation, DONE) {
            let refusal = SLOT.refusal.load(Ordering::Relaxed);
            let len = SLOT.len.load(Ordering::Relaxed).min(MAX_FRAMES);
            let frames = SLOT.frames[..len]
                .iter()
                .map(|ip| ip.load(Ordering::Relaxed))
                .collect();
            SLOT.word.store(pack(generation, IDLE), Ordering::Release);
            return match refusal {
                REFUSED_SMALL_ALTERNATE_STACK => Err(
                    "the thread is running a signal handler on an alternate signal stack too \
                     small to walk its stack on"
                        .to_owned(),
                ),
                _ => Ok(frames),
            };
        }
        if Instant::now() >= deadline {
            if word == pack(generation, ARMED)
                && SLOT
                    .word
                    .compare_exchange(
                        word,
                        pack(generation, IDLE),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                return Err(format!(
                    "the thread did not answer signal {signal} within {timeout:?} (it may be in an \
                     uninterruptible sleep, or block the signal)"
                ));
            }
            // The handler is writing (that takes microseconds): give it as long again.
            if !extended {
                extended = true;
                deadline = Instant::now() + timeout;
                continue;
            }
            return Err("the thread started answering but did not finish in time".to_owned());
        }
        futex_wait(&SLOT.word, word, deadline);
    }
}

/// The fields of `siginfo_t` that a queued signal carries (`_sifields._rt`): aligned like the
/// kernel's union, so `pid` lands at offset 16 on 64-bit targets and 12 on 32-bit ones.
#[repr(C)]
#[derive(Clone, Copy)]
struct RtFields {
    pid: libc::pid_t,
    uid: libc::uid_t,
    value: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct QueuedInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    rt: RtFields,
}

/// A `siginfo_t` of the kernel's size (128 bytes) for `rt_tgsigqueueinfo`.
#[repr(C)]
union SigInfo {
    raw: [u64; 16],
    queued: QueuedInfo,
}

/// `rt_tgsigqueueinfo(getpid(), tid, signal, {SI_QUEUE, cookie()})`, or the errno.
fn send(tid: i32, signal: libc::c_int) -> Result<(), i32> {
    let mut info = SigInfo { raw: [0; 16] };
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    info.queued = QueuedInfo {
        signo: signal,
        errno: 0,
        code: libc::SI_QUEUE,
        rt: RtFields {
            pid,
            uid,
            value: cookie(),
        },
    };
    // SAFETY: `info` is a valid, fully initialised 128-byte siginfo; the kernel reads it only.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid,
            tid,
            signal,
            &info as *const SigInfo,
        )
    };
    if sent == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    }
}

/// Sleeps while `word` holds `expected`, until woken or `deadline`.
pub(super) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: left.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &timeout as *const libc::timespec,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::super::{handler, signal};
    use super::*;

    /// A request's signal that reaches another thread than the one the slot is armed for (a late
    /// delivery of an earlier request) writes nothing.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_request_delivered_to_another_thread_writes_nothing() {
        handler::install(signal()).unwrap();
        let _requests = REQUESTS.lock();
        let generation = GENERATION_MASK; // Never used by real requests before wrapping.
        SLOT.target.store(i32::MAX, Ordering::Relaxed);
        SLOT.word.store(pack(generation, ARMED), Ordering::Release);
        // SAFETY: gettid has no preconditions. A signal sent to the calling thread is delivered
        // before the system call returns.
        let sent = send(unsafe { libc::gettid() }, signal());
        let word = SLOT.word.load(Ordering::Acquire);
        SLOT.word.store(pack(generation, IDLE), Ordering::Release);
        assert_eq!(sent, Ok(()));
        assert_eq!(word, pack(generation, ARMED), "the handler wrote an answer");
    }

    /// A request waits for another one (or, in a forked child, for one of the parent's that
    /// will never end) no longer than its own timeout.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_request_waits_for_the_way_no_longer_than_its_timeout() {
        handler::install(signal()).unwrap();
        let held = REQUESTS.lock();
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(request(me, signal(), Duration::from_millis(20)));
        });
        // Generous: only a request that waits for the lock without bound misses it.
        let answer = rx.recv_timeout(Duration::from_secs(30));
        drop(held);
        waiter.join().unwrap();
        let error = answer.expect("the request gave up").unwrap_err();
        assert!(
            error.starts_with("another live-stack request held the way"),
            "{error}"
        );
    }
}
