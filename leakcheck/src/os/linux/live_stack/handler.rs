//! The signal handler, and everything it touches. Nothing here allocates or locks.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::slot::{
    generation, is_request, pack, ARMED, DONE, PHASE_MASK, REFUSED_SMALL_ALTERNATE_STACK, SLOT,
    WRITING,
};

/// The disposition the signal had before leakcheck's handler, for deliveries that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the handler, once per process.
pub(super) fn install(signal: libc::c_int) -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            if !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
                return Err(format!(
                    "signal {signal} is outside this system's real-time range"
                ));
            }
            // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            if unsafe { libc::sigaction(signal, std::ptr::null(), &mut previous) } != 0 {
                return Err(format!(
                    "signal {signal}'s handler cannot be read: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let _ = PREVIOUS.set(previous);
            warm_up();
            // SAFETY: as above; `handler` has the SA_SIGINFO signature and touches only
            // async-signal-safe state (see the module documentation).
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = handler_address();
            // No SA_ONSTACK: a thread's alternate signal stack is sized for *its* handlers (often
            // MINSIGSTKSZ, for a stack-overflow message), not for a stack walk.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
                return Err(format!(
                    "the live-stack handler for signal {signal} cannot be installed: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(())
        })
        .clone()
}

/// Everything the handler calls, called once outside it: binds lazily bound symbols (the
/// unwinder's own calls into glibc included) and runs libgcc's one-time initialisation.
fn warm_up() {
    let mut depth = 0usize;
    // SAFETY: a plain stack walk of the current thread, outside any signal handler.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            depth += usize::from(!frame.ip().is_null());
            true
        })
    };
    std::hint::black_box(depth);
    futex_wake(&SLOT.word);
    // SAFETY: reads this thread's errno.
    std::hint::black_box(unsafe { *libc::__errno_location() });
}

pub(super) fn is_installed(signal: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } == 0;
    read && current.sa_sigaction == handler_address()
}

/// The handler as `sigaction` stores it.
fn handler_address() -> libc::sighandler_t {
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = handler;
    handler as *const () as libc::sighandler_t
}

/// The signal handler. Async-signal-safe: atomics, the unwinder, `futex`; it preserves `errno`.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is thread-local and always valid to read and write.
    let errno = unsafe { *libc::__errno_location() };
    if !answer(info, context) {
        chain(signal, info, context);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Answers the request the signal carries, if it is one of leakcheck's. Returns whether it was.
fn answer(info: *mut libc::siginfo_t, context: *mut c_void) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; `si_pid` and
    // `si_value` are read as the queued-signal member, which `is_request` only accepts together
    // with SI_QUEUE (for other codes the values read are meaningless but harmless integers).
    // getpid is async-signal-safe.
    let ours = unsafe {
        is_request(
            (*info).si_code,
            (*info).si_pid(),
            (*info).si_value().sival_ptr as usize,
            libc::getpid(),
        )
    };
    if !ours {
        return false;
    }
    let word = SLOT.word.load(Ordering::Acquire);
    if word & PHASE_MASK != ARMED {
        // A request that was given up on: write nothing.
        return true;
    }
    // A late delivery of an earlier request, to a thread this one is not for: write nothing.
    // If the CAS below succeeds the word never left this generation's ARMED phase, so the target
    // read here is this generation's (the requester changes it only after that phase ends).
    // SAFETY: gettid has no preconditions and is a plain system call.
    if SLOT.target.load(Ordering::Relaxed) != unsafe { libc::gettid() } {
        return true;
    }
    let generation = generation(word);
    if SLOT
        .word
        .compare_exchange(
            word,
            pack(generation, WRITING),
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_err()
    {
        // Given up on in the meantime: write nothing.
        return true;
    }
    if on_small_alternate_stack() {
        SLOT.len.store(0, Ordering::Relaxed);
        SLOT.refusal
            .store(REFUSED_SMALL_ALTERNATE_STACK, Ordering::Relaxed);
    } else {
        record(interrupted_pc(context));
    }
    SLOT.word.store(pack(generation, DONE), Ordering::Release);
    futex_wake(&SLOT.word);
    true
}

/// Room the handler wants below its own frame before it walks the stack: the walk took under
/// 3 KiB on x86-64 when measured (glibc 2.36, GCC 12); the rest is margin for other targets.
const ROOM_TO_WALK: usize = 16 * 1024;

/// Whether the handler runs on an alternate signal stack with less than [`ROOM_TO_WALK`] left.
///
/// The handler is installed without `SA_ONSTACK`, so it runs on the stack the thread was on: the
/// thread's own stack, unless the thread was itself running a signal handler on its alternate
/// stack (say, a crash handler that blocks). Then the walk would go on that stack, which may be
/// a few KiB; this asks the kernel where the alternate stack is, and refuses if the walk would not
/// fit. An alternate stack installed with `SS_AUTODISARM` reads as disabled while its handler
/// runs, so this cannot see it; that is the one case left to the thread's own guard page.
fn on_small_alternate_stack() -> bool {
    // SAFETY: a zeroed stack_t is a valid out-parameter.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigaltstack with no new stack only reports the current one; it is a plain system
    // call (async-signal-safe), and the kernel's stack_t is the C library's.
    let read = unsafe {
        libc::syscall(
            libc::SYS_sigaltstack,
            std::ptr::null::<libc::stack_t>(),
            &mut current as *mut libc::stack_t,
        )
    };
    if read != 0 {
        // Cannot tell: do not walk.
        return true;
    }
    if current.ss_flags & libc::SS_ONSTACK == 0 {
        return false;
    }
    // The stack grows down from `ss_sp + ss_size` towards `ss_sp`; a local marks where we are.
    let here = std::ptr::addr_of!(current) as usize;
    here.saturating_sub(current.ss_sp as usize) < ROOM_TO_WALK
}

/// Walks this thread's stack into the slot, from the frame that was interrupted outward.
fn record(interrupted: Option<usize>) {
    let mut len = 0;
    let mut start = None;
    // SAFETY: walks the current thread's stack; see the module documentation for why this is
    // sound inside a signal handler. The callback only stores into static atomics.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            if start.is_none() && Some(ip) == interrupted {
                start = Some(len);
            }
            // A deeper stack keeps its innermost MAX_FRAMES frames.
            match SLOT.frames.get(len) {
                Some(slot) => {
                    slot.store(ip, Ordering::Relaxed);
                    len += 1;
                    true
                }
                None => false,
            }
        })
    };
    // Leave out the handler's frames and the signal trampoline.
    let start = start.unwrap_or(0);
    for index in start..len {
        let ip = SLOT.frames[index].load(Ordering::Relaxed);
        SLOT.frames[index - start].store(ip, Ordering::Relaxed);
    }
    SLOT.len.store(len - start, Ordering::Relaxed);
}

/// The program counter the signal interrupted, from the handler's `ucontext`.
#[allow(unused_variables)]
fn interrupted_pc(context: *mut c_void) -> Option<usize> {
    if context.is_null() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let context = context.cast::<libc::ucontext_t>();
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
        let pc = unsafe { (*context).uc_mcontext.gregs[libc::REG_RIP as usize] };
        #[allow(clippy::unnecessary_cast)]
        return Some(pc as usize);
    }
    #[cfg(target_arch = "aarch64")]
    {
        let context = context.cast::<libc::ucontext_t>();
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
        let pc = unsafe { (*context).uc_mcontext.pc };
        return Some(pc as usize);
    }
    #[allow(unreachable_code)]
    None
}

/// Passes a delivery that is not leakcheck's to the handler the signal had before.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        return;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this signature.
        let previous: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(action) };
        previous(signal, info, context);
    } else {
        // SAFETY: the previous handler was installed without SA_SIGINFO: a plain handler.
        let previous: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        previous(signal);
    }
}

/// Wakes the requester sleeping on `word`. Async-signal-safe (a system call).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}
