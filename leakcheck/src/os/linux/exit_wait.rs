//! Waiting for threads leakcheck did not spawn to exit, without polling.
//!
//! Tracked tasks announce their exit to waiting checks; other threads do not. Since Linux 6.9 a
//! *thread* pidfd (`pidfd_open(tid, PIDFD_THREAD)`) becomes readable the moment that thread has
//! exited, so a check can sleep in `ppoll` on the pidfds of the untracked threads it waits for
//! and wake as soon as one ends. On older kernels `pidfd_open` rejects the flag with `EINVAL`;
//! [`wait_for_any_exit`] then says [`ExitWait::Unsupported`] and the caller falls back to looking
//! again when a tracked task exits and once at the deadline.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// At most this many threads are watched at once; any exit among them wakes the waiter, which
/// then looks at the thread list again.
const WATCHED: usize = 256;

/// How a wait for thread exits ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitWait {
    /// At least one of the threads has exited (or was already gone).
    Exited,
    /// The deadline passed and every thread is still alive.
    TimedOut,
    /// The kernel cannot say when a thread exits (no thread pidfds before Linux 6.9).
    Unsupported,
}

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;
static THREAD_PIDFDS: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Sleeps until one of the threads `tids` exits, or until `deadline`.
pub(crate) fn wait_for_any_exit(tids: &[i32], deadline: Instant) -> ExitWait {
    if THREAD_PIDFDS.load(Ordering::Relaxed) == UNSUPPORTED {
        return ExitWait::Unsupported;
    }
    let mut fds = Vec::with_capacity(tids.len().min(WATCHED));
    for &tid in tids.iter().take(WATCHED) {
        match pidfd_open_thread(tid) {
            Ok(fd) => fds.push(fd),
            Err(libc::ESRCH) => return ExitWait::Exited,
            Err(libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                THREAD_PIDFDS.store(UNSUPPORTED, Ordering::Relaxed);
                return ExitWait::Unsupported;
            }
            // Out of file descriptors, say: wait on the threads already opened.
            Err(_) => break,
        }
    }
    if fds.is_empty() {
        return ExitWait::Unsupported;
    }
    THREAD_PIDFDS.store(SUPPORTED, Ordering::Relaxed);
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(fd),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = libc::timespec {
            tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `polled` is a valid array of pollfds for its length; `timeout` is valid.
        let ready = unsafe {
            libc::ppoll(
                polled.as_mut_ptr(),
                polled.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        match ready {
            n if n > 0 => return ExitWait::Exited,
            0 => return ExitWait::TimedOut,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return ExitWait::Unsupported,
        }
    }
}

/// `pidfd_open(tid, PIDFD_THREAD)`, or the errno.
fn pidfd_open_thread(tid: i32) -> Result<OwnedFd, i32> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::PIDFD_THREAD) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL));
    }
    // SAFETY: the kernel just gave us this descriptor, and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spawn_reporting_tid(
        body: impl FnOnce() + Send + 'static,
    ) -> (i32, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            tx.send(super::super::current_tid()).unwrap();
            body();
        });
        (rx.recv().unwrap(), handle)
    }

    #[test]
    #[cfg_attr(miri, ignore)] // Thread pidfds and ppoll.
    fn wakes_when_a_thread_exits_and_times_out_otherwise() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (tid, handle) = spawn_reporting_tid(move || {
            let _ = wait.recv();
        });
        let start = Instant::now();
        let outcome = wait_for_any_exit(&[tid], start + Duration::from_millis(30));
        if outcome == ExitWait::Unsupported {
            eprintln!("thread pidfds are not supported by this kernel; the fallback is used");
            drop(release);
            handle.join().unwrap();
            return;
        }
        assert_eq!(outcome, ExitWait::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));

        let waiter = std::thread::spawn(move || {
            let start = Instant::now();
            (
                wait_for_any_exit(&[tid], start + Duration::from_secs(10)),
                start.elapsed(),
            )
        });
        drop(release);
        let (outcome, took) = waiter.join().unwrap();
        assert_eq!(outcome, ExitWait::Exited);
        assert!(took < Duration::from_secs(5), "woke after {took:?}");
        handle.join().unwrap();
    }
}
