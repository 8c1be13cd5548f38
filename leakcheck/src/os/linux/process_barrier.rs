//! A memory barrier on every running thread of the process, at the request of one of them
//! (`membarrier(2)`, private expedited): it lets a path that runs often order a store before a
//! later load with no fence of its own, by making the rare path that depends on that order pay
//! for it.
//!
//! Without it, such a store and load need a full fence, which waits for the thread's pending
//! stores, as a locked instruction does. With it, the frequent side needs only to keep the
//! compiler from reordering the two, and the rare side calls [`barrier`] between its own store
//! and load: every other thread then either has its store visible, or loads after the rare
//! side's store. The kernel interrupts the CPUs that run this process's threads to do so
//! (Linux 4.14 and later).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED`.
const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
/// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether the process registered for [`barrier`] as it was loaded.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers before `main`, while the process most likely has one thread: registering with
/// other threads running waits for all of them (12 to 16 ms measured here, against 2 µs alone).
/// Not under Miri, which does not know the system call.
#[cfg(not(miri))]
#[used]
#[link_section = ".init_array"]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

#[cfg(not(miri))]
extern "C" fn register_at_load() {
    if membarrier(REGISTER_PRIVATE_EXPEDITED).is_ok() {
        REGISTERED.store(true, Ordering::Release);
    }
}

/// Whether [`barrier`] works in this process: false on kernels older than 4.14, where a
/// sandbox forbids the call, and under Miri. Its users then need fences on both sides.
#[inline]
pub(crate) fn is_registered() -> bool {
    REGISTERED.load(Ordering::Acquire)
}

/// A full memory barrier on every thread of the process that is running now; see the module
/// documentation. Only where [`is_registered`]: a child of `fork` that the kernel did not
/// register is registered again first. Should that fail too, the process is no longer counted
/// as registered, so that its users fence from then on, and `false` says that this barrier did
/// not happen.
pub(crate) fn barrier() -> bool {
    let done = membarrier(PRIVATE_EXPEDITED).or_else(|_| {
        membarrier(REGISTER_PRIVATE_EXPEDITED).and_then(|()| membarrier(PRIVATE_EXPEDITED))
    });
    if done.is_err() {
        REGISTERED.store(false, Ordering::Release);
    }
    done.is_ok()
}

fn membarrier(command: libc::c_int) -> io::Result<()> {
    // SAFETY: `membarrier(cmd, flags, cpu_id)` reads no memory of ours and has no effect on it
    // but ordering; any command the kernel does not know fails with `EINVAL`.
    let result = unsafe { libc::syscall(libc::SYS_membarrier, command, 0, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri does not know the system call")]
    fn the_process_registered_as_it_was_loaded_and_gets_its_barrier() {
        // Where the kernel offers the call at all, the registration at load took it.
        let offered = membarrier(REGISTER_PRIVATE_EXPEDITED).is_ok();
        assert_eq!(is_registered(), offered);
        if offered {
            assert!(barrier());
        }
    }
}
