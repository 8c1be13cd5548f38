//! Live stacks: the current stack of another thread of this process, taken by the thread itself.
//!
//! # How
//!
//! The requester prepares a slot (a fixed array of instruction pointers and one atomic word), then
//! sends the thread a real-time signal with `rt_tgsigqueueinfo`. The handler, running on the
//! interrupted thread, walks its own stack into the slot, publishes it with a release store and a
//! `FUTEX_WAKE`, and returns; the thread carries on with whatever it was doing. The requester waits
//! on the word with `FUTEX_WAIT` and a timeout, and copies the addresses out. Symbolisation
//! happens later, outside the handler (`report/stack.rs`).
//!
//! # The signal
//!
//! `SIGRTMAX - 7` (57 with glibc, whose range is 34..=64). The ends of the real-time range are
//! where other tools go: glibc keeps the two below `SIGRTMIN` for itself, libraries and
//! `timer_create` users conventionally start at `SIGRTMIN`, and debuggers and sanitizers tend to
//! take the top. The handler is installed once, on the first request, with
//! `SA_SIGINFO | SA_RESTART` and deliberately without `SA_ONSTACK`: a thread's alternate signal
//! stack is sized for its own handlers (C libraries use `MINSIGSTKSZ`, 2 KiB), and a walk there
//! would overflow it and kill the process. The handler runs on the stack the thread was on; if
//! that is itself a small alternate stack (the thread sits in a handler of its own), the handler
//! answers "unavailable" without walking. If the signal already had a handler, that handler keeps
//! working: leakcheck's requests carry `SI_QUEUE`, this process's pid, and the address of the
//! slot in `si_value` (pointer-sized on every target), and every other
//! delivery of the signal is passed on to the previous handler (one whose disposition was the
//! default, terminate, or ignore, is ignored). If some library later replaces leakcheck's handler,
//! requests fail with a message saying so instead of sending a signal nobody answers.
//!
//! # What the handler does, and why it is safe there
//!
//! Nothing that allocates or locks: atomics on static memory, the unwinder, and the `futex`
//! system call. The stack is walked with [`backtrace::trace_unsynchronized`], which on Linux is
//! libgcc's `_Unwind_Backtrace`. Whether that is async-signal-safe depends on how libgcc finds
//! unwind tables: since GCC 12 with glibc 2.35 it calls `_dl_find_object`, which glibc documents
//! as lock-free and async-signal-safe (it was built for this); older combinations fall back to
//! `dl_iterate_phdr`, which takes the loader lock, so a thread interrupted inside `dlopen` would
//! deadlock in its own handler, holding whatever locks it held. So before the first request,
//! [`unwinder`] checks the C library's version and whether the object holding the unwinder
//! imports `_dl_find_object`; if not, every request answers "unavailable" with the reason and no
//! signal is ever sent. libgcc also registers frames with a lock
//! (`__register_frame_info`), which only JIT compilers and static binaries without
//! `.eh_frame_hdr` use; in GCC 12 that path is skipped while nothing is registered. The first
//! request walks a stack outside any handler, so lazy symbol binding and libgcc's one-time
//! initialisation never happen inside one.
//!
//! The walk starts in the handler, crosses the kernel's signal frame (libgcc unwinds through the
//! `__restore_rt` trampoline), and continues into the interrupted code. The handler keeps only
//! the frames from the interrupted instruction on: it finds that frame by the program counter
//! saved in the `ucontext` (x86-64 and AArch64; elsewhere the handler's frames stay and the
//! report's trimming hides them).
//!
//! # Safety of the protocol
//!
//! One request is in flight at a time: requesters take a lock; the handler never does. The slot's
//! word holds a generation and a phase (idle, armed, writing, done), and the slot names the thread
//! the armed request is for. The handler starts writing only by moving the armed generation to
//! writing, and only on the thread the slot names: a signal that arrives late — after its
//! requester gave up — finds the slot idle, or armed for another thread, and writes nothing (or,
//! armed again for the same thread, answers that request with a stack just as current). A
//! requester that gives up while a handler is writing leaves the slot to it: the next request
//! waits for that handler to finish before it arms the slot, so there is never more than one
//! writer, and the memory written is always this static slot, never reused memory.

//! # What a thread sees
//!
//! A signal interrupts a blocking system call. `SA_RESTART` restarts most of them (`read`,
//! `write`, `futex` waits, `accept`); those the kernel never restarts (`epoll_wait`, `poll`,
//! `nanosleep`, calls with socket timeouts) return `EINTR`, which std, mio and tokio retry.
//! Live stacks are taken only while a report is built, that is, of threads that already leaked.
//! A thread that blocks the signal (`pthread_sigmask`) is not sent one: its `SigBlk` mask is read
//! from `/proc` first and the report says why there is no stack. (A thread that answered lately
//! is watched for a moment first: the kernel blocks a signal while its handler runs, so a thread
//! that has just answered shows it blocked until the handler has returned.) A thread that cannot
//! run the handler in time (uninterruptible sleep, stopped, starved) makes the request time out;
//! the signal stays queued and is ignored when it is finally delivered.

mod handler;
mod request;
mod slot;
mod unwinder;

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::proc::{blocks_signal, thread_stat};
use super::ThreadHandle;
use crate::os::status::state_meaning;

/// How far below `SIGRTMAX` the live-stack signal is.
const BELOW_SIGRTMAX: libc::c_int = 7;

/// How long a thread that answered lately and shows the signal blocked is watched before it is
/// refused: the kernel blocks a signal while its handler runs, so a thread that has just
/// answered a request (a check takes a thread's stack for a verdict, then again for the report)
/// shows it blocked until its handler has returned, which a starved thread may take
/// milliseconds to do.
const MASKED_BY_HANDLER: Duration = Duration::from_millis(50);

/// How long ago a thread may have answered to be watched.
const LATELY: Duration = Duration::from_secs(1);

/// The threads that answered a request, and when; those older than [`LATELY`] are dropped as
/// new ones come. Only requesters touch it, never the handler.
static ANSWERED: Mutex<Vec<(libc::pid_t, Instant)>> = Mutex::new(Vec::new());

fn note_answered(tid: libc::pid_t) {
    let now = Instant::now();
    let mut answered = ANSWERED.lock();
    answered.retain(|&(other, at)| other != tid && now.duration_since(at) < LATELY);
    answered.push((tid, now));
}

fn answered_lately(tid: libc::pid_t) -> bool {
    let now = Instant::now();
    ANSWERED
        .lock()
        .iter()
        .any(|&(other, at)| other == tid && now.duration_since(at) < LATELY)
}

/// Whether thread `tid` blocks `signal`, and, if it answered a request lately, still does after
/// [`MASKED_BY_HANDLER`] (or `timeout`, if shorter). A thread that never answered is not
/// watched: one that blocks the signal for good is refused at once.
fn blocks_signal_now(tid: libc::pid_t, signal: libc::c_int, timeout: Duration) -> bool {
    if blocks_signal(tid, signal) != Some(true) {
        return false;
    }
    if !answered_lately(tid) {
        return true;
    }
    let deadline = Instant::now() + MASKED_BY_HANDLER.min(timeout);
    while blocks_signal(tid, signal) == Some(true) {
        if Instant::now() >= deadline {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The signal leakcheck takes live stacks with: `SIGRTMAX - 7`.
pub(crate) fn signal() -> libc::c_int {
    libc::SIGRTMAX() - BELOW_SIGRTMAX
}

/// The current stack of `thread`, as instruction pointers, innermost first, starting at the
/// instruction the thread was interrupted at.
pub(crate) fn live_stack(thread: &ThreadHandle, timeout: Duration) -> Result<Vec<usize>, String> {
    // First: in a forked child, nothing below (one-time setups included) may wait for the parent.
    if !thread.in_this_process() {
        return Err(LOST_TO_FORK.to_owned());
    }
    unwinder::walk_is_signal_safe()?;
    let signal = signal();
    handler::install(signal)?;
    if !handler::is_installed(signal) {
        return Err(format!(
            "signal {signal} (SIGRTMAX-{BELOW_SIGRTMAX}), which leakcheck takes live stacks with, was given \
             another handler by someone else"
        ));
    }
    let tid = thread.tid;
    let Some(stat) = thread_stat(tid) else {
        return Err(EXITED.to_owned());
    };
    if !thread.started_as(stat.start_ticks) {
        return Err(EXITED.to_owned());
    }
    match stat.state {
        'Z' | 'X' | 'x' => return Err("the thread is exiting".to_owned()),
        'T' | 't' => {
            return Err(format!(
                "the thread is stopped ({} ({})) and cannot run a signal handler",
                stat.state,
                state_meaning(stat.state)
            ))
        }
        _ => {}
    }
    if blocks_signal_now(tid, signal, timeout) {
        return Err(format!(
            "the thread blocks signal {signal} (SIGRTMAX-{BELOW_SIGRTMAX}), which leakcheck takes live stacks with"
        ));
    }
    let stack = request::request(tid, signal, timeout)?;
    // The answer came from the thread that had `tid` when the signal arrived. If the tid still
    // names the same thread now, that was it: a thread keeps its tid for life.
    let now = thread_stat(tid).map(|stat| stat.start_ticks);
    if !now.is_some_and(|start_ticks| thread.started_as(start_ticks)) {
        return Err(EXITED_WHILE_ANSWERING.to_owned());
    }
    note_answered(tid);
    Ok(stack)
}

/// Why a thread recorded before this process was forked has no live stack.
const LOST_TO_FORK: &str =
    "the thread belongs to the process this one was forked from (only the forking thread is copied)";

/// Why a thread has no live stack when its tid is gone, or names a later thread.
const EXITED: &str = "the thread has exited";

/// Why an answer was discarded: the tid named another thread, or none, right after it came.
const EXITED_WHILE_ANSWERING: &str = "the thread exited while its stack was taken";

#[cfg(test)]
mod tests {
    use super::handler::install;
    use super::request::request;
    use super::*;
    use crate::report::{resolve_stacks, PendingStack, StackOrigin};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    /// Spawns a thread that reports its tid and then runs `body`.
    fn spawn_with_tid(
        body: impl FnOnce() + Send + 'static,
    ) -> (ThreadHandle, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            tx.send(ThreadHandle::current()).unwrap();
            body();
        });
        (rx.recv().unwrap(), handle)
    }

    fn functions(ips: Vec<usize>) -> Vec<String> {
        let stack = resolve_stacks(&[Some(PendingStack::Addresses(StackOrigin::Live, ips.into()))])
            .pop()
            .flatten()
            .unwrap();
        stack
            .frames()
            .iter()
            .map(|f| f.function().to_owned())
            .collect()
    }

    #[inline(never)]
    fn wait_here_for_a_while(rx: mpsc::Receiver<()>) {
        let _ = rx.recv();
    }

    #[test]
    fn takes_the_stack_of_a_blocked_thread() {
        let (release, wait) = mpsc::channel();
        let (thread, handle) = spawn_with_tid(move || wait_here_for_a_while(wait));
        // The thread may not have reached the call yet: ask until it has.
        let found = (0..1000).find_map(|_| {
            let names = functions(live_stack(&thread, Duration::from_secs(2)).unwrap());
            names
                .iter()
                .any(|f| f.contains("wait_here_for_a_while"))
                .then_some(names)
        });
        let names = found.expect("the blocked function shows in the live stack");
        // The handler's frames are gone: the stack starts in the interrupted code.
        assert!(
            !names
                .iter()
                .any(|f| f.contains("live_stack::record") || f.contains("live_stack::handler")),
            "{names:?}"
        );
        release.send(()).unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn a_thread_that_blocks_the_signal_is_refused_at_once_or_times_out_cleanly() {
        let (release, wait) = mpsc::channel::<()>();
        let (thread, handle) = spawn_with_tid(move || {
            // SAFETY: blocks every signal on this thread only.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
            }
            let _ = wait.recv();
        });
        // Wait until the mask is in place, as the kernel reports it.
        while blocks_signal(thread.tid, signal()) != Some(true) {
            std::thread::yield_now();
        }
        let error = live_stack(&thread, Duration::from_secs(5)).unwrap_err();
        assert!(error.contains("blocks signal"), "{error}");

        // Without the check beforehand the request times out, and the late delivery that
        // follows when the mask is lifted writes nothing.
        install(signal()).unwrap();
        let start = Instant::now();
        let error = request(thread.tid, signal(), Duration::from_millis(50)).unwrap_err();
        assert!(error.contains("did not answer"), "{error}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        release.send(()).unwrap();
        handle.join().unwrap();

        // The slot still works, and holds a fresh answer.
        let (release, wait) = mpsc::channel();
        let (thread, handle) = spawn_with_tid(move || wait_here_for_a_while(wait));
        assert!(live_stack(&thread, Duration::from_secs(2)).is_ok());
        release.send(()).unwrap();
        handle.join().unwrap();
    }

    /// As a thread that has just answered shows the signal blocked until its handler returned.
    #[test]
    fn a_thread_that_answered_and_blocks_the_signal_for_a_moment_answers_again() {
        let (go, blocks) = mpsc::channel::<()>();
        let (blocked_tx, blocked) = mpsc::channel();
        let (unblock, unblocks) = mpsc::channel::<()>();
        let (release, wait) = mpsc::channel::<()>();
        let (thread, handle) = spawn_with_tid(move || {
            blocks.recv().unwrap();
            // SAFETY: blocks, then unblocks, every signal on this thread only.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                blocked_tx.send(()).unwrap();
                unblocks.recv().unwrap();
                std::thread::sleep(Duration::from_millis(10));
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
            }
            let _ = wait.recv();
        });
        assert!(live_stack(&thread, Duration::from_secs(2)).is_ok());
        go.send(()).unwrap();
        blocked.recv().unwrap();
        while blocks_signal(thread.tid, signal()) != Some(true) {
            std::thread::yield_now();
        }
        // Unblocked 10 ms from now: a request refused at once would see it blocked.
        unblock.send(()).unwrap();
        let stack = live_stack(&thread, Duration::from_secs(2));
        assert!(stack.is_ok(), "{stack:?}");
        release.send(()).unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn an_exited_thread_is_reported_as_gone() {
        let (thread, handle) = spawn_with_tid(|| ());
        handle.join().unwrap();
        // The tid may be reused by a thread of another test, which may answer or not (one that
        // is starting has every signal blocked): only a tid nobody holds must say "exited".
        if let Err(error) = live_stack(&thread, Duration::from_secs(2)) {
            let reused = std::path::Path::new(&format!("/proc/self/task/{}", thread.tid)).exists();
            assert!(error.contains("exit") || reused, "{error}");
        }
    }

    #[test]
    fn the_current_thread_can_take_its_own_stack() {
        let names =
            functions(live_stack(&ThreadHandle::current(), Duration::from_secs(2)).unwrap());
        assert!(
            names
                .iter()
                .any(|f| f.contains("the_current_thread_can_take_its_own_stack")),
            "{names:?}"
        );
    }

    #[test]
    fn foreign_deliveries_of_the_signal_reach_the_previous_handler_or_are_ignored() {
        install(signal()).unwrap();
        // A plain `tgkill` (SI_TKILL, no cookie) is not a request: it is passed on, and since the
        // previous disposition was the default (terminate), it is ignored; the process lives.
        // SAFETY: signals the current thread with a signal whose handler is installed.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), signal()) };
    }

    /// Runs `signal_it` on a thread waiting with an alternate signal stack of its own, painted
    /// beforehand; returns how many bytes of that stack were used.
    fn alternate_stack_use(signal_it: impl FnOnce(ThreadHandle)) -> usize {
        const SIZE: usize = 64 * 1024;
        const PAINT: u8 = 0xA5;
        let (release, wait) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (used_tx, used_rx) = mpsc::channel::<usize>();
        let (thread, handle) = spawn_with_tid(move || {
            let mut stack = vec![PAINT; SIZE];
            // SAFETY: a zeroed stack_t is a valid out-parameter.
            let mut previous: libc::stack_t = unsafe { std::mem::zeroed() };
            let ours = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: SIZE,
            };
            // SAFETY: `stack` outlives its use: the previous alternate stack is restored below.
            unsafe { libc::sigaltstack(&ours, &mut previous) };
            ready_tx.send(()).unwrap();
            wait_here_for_a_while(wait);
            // SAFETY: restores what std installed.
            unsafe { libc::sigaltstack(&previous, std::ptr::null_mut()) };
            let untouched = stack.iter().take_while(|&&b| b == PAINT).count();
            used_tx.send(SIZE - untouched).unwrap();
        });
        ready_rx.recv().unwrap();
        signal_it(thread);
        release.send(()).unwrap();
        let used = used_rx.recv().unwrap();
        handle.join().unwrap();
        used
    }

    /// A thread's alternate signal stack is sized for its own handlers (std makes one of 8 KiB
    /// for its stack-overflow message; C libraries often `MINSIGSTKSZ`): the live-stack handler
    /// stays off it and runs on the stack the thread was on.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_handler_stays_off_the_threads_alternate_stack() {
        let used = alternate_stack_use(|thread| {
            live_stack(&thread, Duration::from_secs(2)).unwrap();
        });
        assert_eq!(used, 0, "the handler used the alternate signal stack");
    }

    /// Released by [`a_handler_running_on_a_small_alternate_stack_is_not_walked_on`].
    static HOLDING: AtomicU32 = AtomicU32::new(0);
    /// Set by the holding handler as it starts: from then on the thread is on its alternate stack.
    static ENTERED: AtomicBool = AtomicBool::new(false);

    /// A signal handler that waits (on the alternate stack) until `HOLDING` is cleared, as a crash
    /// handler might wait for a debugger.
    extern "C" fn hold_on_the_alternate_stack(_: libc::c_int) {
        ENTERED.store(true, Ordering::Release);
        while HOLDING.load(Ordering::Acquire) == 1 {
            // SAFETY: FUTEX_WAIT on a valid, aligned static word; no timeout.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    HOLDING.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    1u32,
                    std::ptr::null::<libc::timespec>(),
                )
            };
        }
        HOLDING.store(0, Ordering::Release);
    }

    /// The live-stack handler runs where the thread is; when the thread is itself in a signal
    /// handler on a small alternate stack, the walk would not fit there and is refused.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_handler_running_on_a_small_alternate_stack_is_not_walked_on() {
        // Room for two signal frames (the holding handler's and the live-stack handler's), and
        // 8 KiB more: less than the handler wants for a walk.
        // SAFETY: getauxval has no preconditions.
        let frame =
            (unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize).max(libc::MINSIGSTKSZ);
        let size = 2 * frame + 8 * 1024;
        let hold = libc::SIGRTMIN() + 3;
        // SAFETY: a zeroed sigaction is valid; the handler only touches a static atomic and
        // the futex system call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = hold_on_the_alternate_stack as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(libc::sigaction(hold, &action, std::ptr::null_mut()), 0);
        }
        HOLDING.store(1, Ordering::Release);
        let (thread, handle) = spawn_with_tid(move || {
            let mut stack = vec![0u8; size];
            // SAFETY: a zeroed stack_t is a valid out-parameter.
            let mut previous: libc::stack_t = unsafe { std::mem::zeroed() };
            let ours = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: size,
            };
            // SAFETY: `stack` outlives its use: the previous alternate stack is restored below,
            // after the holding handler has returned.
            unsafe {
                assert_eq!(libc::sigaltstack(&ours, &mut previous), 0);
                libc::raise(hold);
                libc::sigaltstack(&previous, std::ptr::null_mut());
            }
            drop(stack);
        });
        while !ENTERED.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let answer = live_stack(&thread, Duration::from_secs(2))
            .map(functions)
            .expect_err("no walk on the small alternate stack");
        assert_eq!(
            answer,
            "the thread is running a signal handler on an alternate signal stack too small to \
             walk its stack on"
        );
        HOLDING.store(2, Ordering::Release);
        // SAFETY: FUTEX_WAKE on a valid, aligned static word.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                HOLDING.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            )
        };
        handle.join().unwrap();
    }

    /// Many threads start and end while their stacks are taken: every answer is a stack or a
    /// clean refusal; nothing deadlocks or crashes.
    #[test]
    fn stacks_of_threads_that_come_and_go() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tids_tx, tids_rx) = mpsc::channel::<ThreadHandle>();
        let spawners: Vec<_> = (0..2)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                let tids_tx = tids_tx.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let tids_tx = tids_tx.clone();
                        std::thread::spawn(move || {
                            let _ = tids_tx.send(ThreadHandle::current());
                            std::hint::black_box((0..1000).sum::<u64>());
                        })
                        .join()
                        .unwrap();
                    }
                })
            })
            .collect();
        drop(tids_tx);
        let deadline = Instant::now() + Duration::from_millis(700);
        let (mut answered, mut refused) = (0, 0);
        while Instant::now() < deadline {
            let Ok(thread) = tids_rx.recv_timeout(Duration::from_secs(1)) else {
                break;
            };
            match live_stack(&thread, Duration::from_millis(200)) {
                Ok(_) => answered += 1,
                Err(error) => {
                    // glibc blocks every signal while a thread starts and while it exits.
                    assert!(
                        error.contains("exit")
                            || error.contains("blocks signal")
                            || error.contains("did not answer"),
                        "{error}"
                    );
                    refused += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        spawners.into_iter().for_each(|s| s.join().unwrap());
        eprintln!("{answered} live stacks taken, {refused} threads gone first");
        assert!(answered + refused > 0);
    }
}
