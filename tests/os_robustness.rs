//! End to end: threads set up the way C libraries set them up (a small alternate signal stack, a
//! kernel name that is not UTF-8) neither crash a report nor hide from it.
//!
//! Linux only: elsewhere leakcheck neither reads `/proc` nor takes live stacks.

#![cfg(target_os = "linux")]

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options, StackOrigin, TaskState};

fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(50))
}

/// The blocking call the leaked threads sit in: a send into a rendezvous channel nobody reads.
#[inline(never)]
fn deliver_result(tx: mpsc::SyncSender<u32>) {
    let _ = tx.send(42);
}

/// An alternate signal stack of `MINSIGSTKSZ` bytes with an inaccessible page below it, so that
/// a handler overflowing it faults at once instead of scribbling over memory. Restores the
/// thread's previous alternate stack when dropped.
struct MinimalAltStack {
    mapping: *mut libc::c_void,
    mapped: usize,
    previous: libc::stack_t,
}

impl MinimalAltStack {
    fn install() -> MinimalAltStack {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        let mapped = 2 * page;
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(mapping, libc::MAP_FAILED, "mmap failed");
        // SAFETY: the first page of the mapping made above becomes the guard.
        assert_eq!(unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) }, 0);
        let stack = libc::stack_t {
            // SAFETY: one page into a mapping of two pages.
            ss_sp: unsafe { mapping.cast::<u8>().add(page) }.cast(),
            ss_flags: 0,
            ss_size: libc::MINSIGSTKSZ,
        };
        // SAFETY: a zeroed stack_t is a valid out-parameter.
        let mut previous: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: the new stack stays mapped until `drop` has put the previous one back.
        let installed = unsafe { libc::sigaltstack(&stack, &mut previous) };
        assert_eq!(
            installed,
            0,
            "sigaltstack: {}",
            std::io::Error::last_os_error()
        );
        MinimalAltStack {
            mapping,
            mapped,
            previous,
        }
    }
}

impl Drop for MinimalAltStack {
    fn drop(&mut self) {
        // SAFETY: puts back what `install` replaced, then unmaps the mapping it made.
        unsafe {
            libc::sigaltstack(&self.previous, std::ptr::null_mut());
            libc::munmap(self.mapping, self.mapped);
        }
    }
}

/// A leaked thread with a `MINSIGSTKSZ` alternate signal stack used to take the whole process
/// down with SIGSEGV when its live stack was requested: the handler ran on that stack.
#[test]
fn a_thread_with_a_minimal_alternate_signal_stack_survives_its_live_stack() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        let _altstack = MinimalAltStack::install();
        ready_tx.send(()).unwrap();
        deliver_result(tx);
    });
    ready_rx.recv().unwrap();

    let report = guard.verify().expect_err("the sender is blocked forever");
    assert_eq!(report.tasks().len(), 1, "{report}");
    let task = &report.tasks()[0];
    assert_eq!(task.state(), TaskState::Blocked, "{report}");
    let stack = task.stack().expect("a live stack");
    assert_eq!(stack.origin(), StackOrigin::Live, "{report}");
    assert!(
        stack.contains_function("os_robustness::deliver_result"),
        "{report}"
    );

    drop(rx);
    worker.join().unwrap();
}
