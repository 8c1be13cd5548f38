//! The `pthread_create` interposer: every thread the process creates passes through here, so
//! that threads need no wrapper to be tracked (see `plain_threads.rs` for what is done with them).
//!
//! # How
//!
//! leakcheck defines the C symbol `pthread_create`. A test binary links it statically, so std's
//! `Thread::new` (and every dependency, and C code linked in) calls this definition instead of
//! glibc's; rustc keeps every `#[no_mangle]` symbol of a linked crate, so nothing else is needed.
//! The real function is found with `dlsym(RTLD_NEXT, "pthread_create")` (glibc's, or a
//! preloaded interposer's that comes before it), once, before `main` (a constructor in
//! `.init_array`), or on the first call if some other constructor creates a thread first.
//!
//! The wrapper asks the installed hook for a hand-over (the creator's context, already recorded),
//! and starts the thread in [`trampoline`], which gives the hand-over to the new thread before the
//! thread's own start routine runs. If the real call fails, the hand-over is dropped in the
//! creator instead. Only the build script decides whether this module exists
//! (`cfg(leakcheck_interpose)`: Linux, glibc, dynamic linking, no sanitizer, not Miri).
//!
//! # Pitfalls this avoids
//!
//! - Recursion: the hook allocates, and an allocator may create threads. A thread-local flag,
//!   reset on every return path by a guard, makes a nested call go straight to glibc.
//! - Unwinding: no panic may cross the C boundary, so the hook and the hand-over run inside
//!   `catch_unwind`. A thread that leaves with `pthread_exit` unwinds through [`trampoline`] with
//!   glibc's forced unwind; nothing of ours is live in that frame then (no destructor runs there),
//!   and the start routine is called as a non-unwinding `extern "C"` function, so the frame needs
//!   no landing pad.
//! - `fork`: a child's thread creation would take locks another thread of the parent may have
//!   held at the fork; threads a forked child creates are not handed anything.
//! - Threads that start before the hook is installed, or while it is off, are simply not handed
//!   anything: the census still sees them.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// What the front end hands a thread being created. It is given to the new thread before the
/// thread's own code runs ([`ThreadStart::start`]), or dropped in the creator if the thread could
/// not be created.
pub(crate) trait ThreadStart: Send {
    /// Runs first thing in the new thread.
    fn start(self: Box<Self>);
}

/// Called in the creating thread for every `pthread_create`; `None` leaves the thread alone.
pub(crate) type CreateHook = fn() -> Option<Box<dyn ThreadStart>>;

/// The start routine of a thread, as `pthread_create` takes it.
type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;

/// glibc's `pthread_create`.
type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

static HOOK: OnceLock<CreateHook> = OnceLock::new();

/// The address of glibc's `pthread_create`; 0 until resolved.
static REAL: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread is inside the wrapper: a nested `pthread_create` goes straight to
    /// glibc. Const-initialised and without a destructor, so reading it never allocates.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Set in the child of a `fork`: from then on threads are created without the hook.
///
/// The hook takes locks (the registry's, a `OnceLock`'s) that another thread of the parent may
/// have held at the moment of the fork; in the child that thread does not exist, and the lock
/// would never be released. Threads created in a child are left to the census.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Runs in the child right after `fork`: only an atomic store, which is async-signal-safe.
extern "C" fn mark_forked_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Routes every thread creation of the process through `hook` from now on. The first hook
/// installed stays.
pub(crate) fn install(hook: CreateHook) {
    if HOOK.set(hook).is_ok() {
        // SAFETY: registers a child handler with no preconditions of its own; the handler only
        // stores to an atomic. Failing (ENOMEM) leaves forked children tracked, as before.
        unsafe { libc::pthread_atfork(None, None, Some(mark_forked_child)) };
    }
    let _ = real_pthread_create();
}

/// Whether the real `pthread_create` was found, so that the interposer works.
pub(crate) fn is_active() -> bool {
    real_pthread_create().is_some()
}

/// Resolves the real function before `main`, so the first thread creation does not pay for it.
#[used]
#[link_section = ".init_array"]
static RESOLVE_AT_LOAD: extern "C" fn() = resolve_at_load;

extern "C" fn resolve_at_load() {
    let _ = real_pthread_create();
}

fn real_pthread_create() -> Option<PthreadCreate> {
    let mut address = REAL.load(Ordering::Acquire);
    if address == 0 {
        // SAFETY: `dlsym` with `RTLD_NEXT` and a NUL-terminated name has no other precondition.
        // It finds the next definition in the lookup order after this object's: glibc's, or
        // whatever comes before it (an `LD_PRELOAD`ed library, valgrind's, another interposer),
        // which passes the call on in turn.
        address = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        if address == 0 || address == pthread_create as *const () as usize {
            return None;
        }
        REAL.store(address, Ordering::Release);
    }
    // SAFETY: `address` is the next definition of `pthread_create` (see above). Whichever it
    // is, it has the POSIX signature, which `PthreadCreate` spells; calling it through that
    // type is what every caller of `pthread_create` does.
    Some(unsafe { std::mem::transmute::<usize, PthreadCreate>(address) })
}

/// Clears [`INSIDE`] when the wrapper returns, whichever way it returns.
struct Inside;

impl Inside {
    /// Marks this thread as inside the wrapper, or `None` if it already is.
    fn enter() -> Option<Inside> {
        INSIDE.with(|inside| (!inside.replace(true)).then_some(Inside))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|inside| inside.set(false));
    }
}

/// What [`trampoline`] needs: the thread's own start routine and argument, and the hand-over.
struct Start {
    routine: StartRoutine,
    arg: *mut c_void,
    hand_over: Box<dyn ThreadStart>,
}

/// leakcheck's definition of `pthread_create`: records the thread being created through the
/// installed hook, then creates it with glibc's.
///
/// # Safety
///
/// The contract of POSIX `pthread_create`.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    routine: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let Some(real) = real_pthread_create() else {
        const MESSAGE: &[u8] =
            b"leakcheck: glibc's pthread_create was not found with dlsym(RTLD_NEXT); turn off leakcheck's `track-all-threads` feature\n";
        // SAFETY: writing a static buffer to stderr; nothing here allocates.
        unsafe { libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len()) };
        return libc::ENOSYS;
    };
    // A successful call leaves `errno` as it found it, whatever the hook's work did to it.
    let errno = SavedErrno::save();
    // The whole hook runs inside: a thread its allocations create goes straight to glibc.
    let hook = HOOK.get().filter(|_| !FORKED.load(Ordering::Relaxed));
    let hand_over = match (hook, Inside::enter()) {
        (Some(hook), Some(_inside)) => catch_unwind(*hook).ok().flatten(),
        _ => None,
    };
    let Some(hand_over) = hand_over else {
        // SAFETY: the caller's arguments, passed on unchanged.
        let result = unsafe { real(thread, attr, routine, arg) };
        if result == 0 {
            errno.restore();
        }
        return result;
    };
    let start = Box::into_raw(Box::new(Start {
        routine,
        arg,
        hand_over,
    }));
    let _inside = Inside::enter();
    // SAFETY: the caller's arguments, except that the thread starts in `trampoline` with `start`,
    // which it owns from then on.
    let result = unsafe { real(thread, attr, trampoline, start.cast()) };
    if result != 0 {
        // SAFETY: the thread was not created, so `start` was not handed to anyone: it is still
        // ours, from `Box::into_raw` above.
        drop(unsafe { Box::from_raw(start) });
    } else {
        errno.restore();
    }
    result
}

/// The calling thread's `errno`, saved.
struct SavedErrno(c_int);

impl SavedErrno {
    fn save() -> SavedErrno {
        // SAFETY: `__errno_location` returns the calling thread's `errno`, valid and aligned
        // for the thread's whole life.
        SavedErrno(unsafe { *libc::__errno_location() })
    }

    fn restore(self) {
        // SAFETY: as in `save`; only this thread writes its own `errno`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// The start routine of every thread created with a hand-over.
extern "C" fn trampoline(start: *mut c_void) -> *mut c_void {
    // The box is moved out of and freed within this block, so that no drop is pending in this
    // frame when `routine` runs.
    let Start {
        routine,
        arg,
        hand_over,
    } = {
        // SAFETY: `pthread_create` above passes a pointer from `Box::into_raw` to exactly one
        // thread, this one, which takes it back once.
        *unsafe { Box::from_raw(start.cast::<Start>()) }
    };
    let _ = catch_unwind(AssertUnwindSafe(move || hand_over.start()));
    // `pthread_exit` or a cancellation inside `routine` force-unwinds this frame. That is sound
    // because nothing with a destructor is alive across the call: the box is freed and the
    // hand-over consumed above, and `routine` and `arg` are plain values (RFC 2945).
    routine(arg)
}

/// The return addresses of the calling thread's stack, innermost first, written to `frames`;
/// returns how many. Cheap enough for every thread creation: nothing is symbolised.
pub(crate) fn own_stack(frames: &mut [usize]) -> usize {
    let mut count = 0;
    // SAFETY: on Linux the walk is libgcc's `_Unwind_Backtrace`, which is safe to run on several
    // threads at once; the lock `backtrace::trace` would add only matters on Windows.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let Some(slot) = frames.get_mut(count) else {
                return false;
            };
            *slot = frame.ip() as usize;
            count += 1;
            true
        });
    }
    count
}

/// The calling thread's kernel name (`comm`), at most 15 bytes, NUL-padded.
pub(crate) fn own_kernel_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) to the buffer given.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}
