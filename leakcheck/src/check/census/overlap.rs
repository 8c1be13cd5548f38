//! Notices per-test checks open on several threads at once: then tests do not run one at a time
//! after all, and no such check may blame the threads of another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Registers an open per-test check that lists untracked threads, to notice checks of other
/// threads open at the same time: then tests do not run one at a time after all (a test that
/// simulates a parallel harness, say), and neither check may blame the other's threads.
pub(super) struct OverlapToken {
    id: u64,
    overlapped: Arc<AtomicBool>,
}

struct OpenCheck {
    id: u64,
    thread: std::thread::ThreadId,
    overlapped: Arc<AtomicBool>,
}

static OPEN_CHECKS: Mutex<Vec<OpenCheck>> = Mutex::new(Vec::new());

impl OverlapToken {
    pub(super) fn open() -> OverlapToken {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::current().id();
        let overlapped = Arc::new(AtomicBool::new(false));
        let mut open = OPEN_CHECKS.lock();
        for other in open.iter().filter(|other| other.thread != thread) {
            other.overlapped.store(true, Ordering::Relaxed);
            overlapped.store(true, Ordering::Relaxed);
        }
        open.push(OpenCheck {
            id,
            thread,
            overlapped: Arc::clone(&overlapped),
        });
        OverlapToken { id, overlapped }
    }

    pub(super) fn overlapped(&self) -> bool {
        self.overlapped.load(Ordering::Relaxed)
    }
}

impl Drop for OverlapToken {
    fn drop(&mut self) {
        OPEN_CHECKS.lock().retain(|open| open.id != self.id);
    }
}
