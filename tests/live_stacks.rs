//! End to end: the stack a report shows for a surviving thread is taken live, from the thread
//! itself, when the report is built.
//!
//! Live stacks exist on Linux only; elsewhere reports say they are not available.
//!
//! These tests run in-process under `cargo test` and `cargo nextest run` alike: they leak only
//! tracked threads (for a while) and release them before they end.

#![cfg(target_os = "linux")]

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options, StackOrigin, TaskState};

fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(50))
}

/// The blocking call itself: sends into a rendezvous channel nobody reads.
#[inline(never)]
fn deliver_result(tx: mpsc::SyncSender<u32>) {
    let _ = tx.send(42);
}

/// What the thread runs: one more frame between its entry and the blocking call.
#[inline(never)]
fn compute_and_deliver(tx: mpsc::SyncSender<u32>) {
    let answer = std::hint::black_box(6 * 7);
    if answer == 42 {
        deliver_result(tx);
    }
}

/// The thread's entry: the function the spawned closure calls.
#[inline(never)]
fn worker_main(tx: mpsc::SyncSender<u32>) {
    compute_and_deliver(tx);
    std::hint::black_box(());
}

#[test]
fn a_blocked_senders_live_stack_runs_from_its_entry_to_the_send() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let worker = thread::spawn(move || worker_main(tx));

    let report = guard.verify().expect_err("the sender is blocked forever");
    assert_eq!(report.tasks().len(), 1, "{report}");
    let task = &report.tasks()[0];
    assert_eq!(task.state(), TaskState::Blocked);
    assert_eq!(task.blocked_on(), Some("chan send"));
    let stack = task.stack().expect("a live stack");
    assert_eq!(stack.origin(), StackOrigin::Live, "{report}");

    // Innermost first: the send, the function that called it, the thread's entry, and (unless
    // an optimised build inlined it) the closure spawned in this test function.
    let position = |function: &str| {
        stack
            .frames()
            .iter()
            .position(|f| f.function() == format!("live_stacks::{function}"))
    };
    let found = |function: &str| {
        position(function)
            .unwrap_or_else(|| panic!("`{function}` is not in the live stack:\n{report}"))
    };
    let send = found("deliver_result");
    let caller = found("compute_and_deliver");
    let entry = found("worker_main");
    assert!(
        send < caller && caller < entry,
        "the frames are out of order:\n{report}"
    );
    if cfg!(debug_assertions) {
        // Debug builds keep the closure's frame and the line tables.
        let closure =
            found("a_blocked_senders_live_stack_runs_from_its_entry_to_the_send::{{closure}}");
        assert!(entry < closure, "the frames are out of order:\n{report}");
        assert!(
            stack.frames()[send]
                .file()
                .is_some_and(|f| f.ends_with("tests/live_stacks.rs")),
            "{report}"
        );
    }

    let text = report.to_string();
    assert!(text.contains("stack (live, from the thread):"), "{text}");
    assert!(text.contains("live_stacks::deliver_result"), "{text}");

    drop(rx);
    worker.join().unwrap();
}

/// Blocks every signal on the calling thread, as some libraries' threads do.
fn block_every_signal() {
    // glibc's sigset_t: 1024 bits. SIG_BLOCK is 0 on Linux.
    #[repr(C)]
    struct SigSet([u64; 16]);
    extern "C" {
        fn sigfillset(set: *mut SigSet) -> i32;
        fn pthread_sigmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    }
    let mut all = SigSet([0; 16]);
    // SAFETY: `all` is a valid sigset; the mask changes for this thread only.
    let blocked =
        unsafe { sigfillset(&mut all) == 0 && pthread_sigmask(0, &all, std::ptr::null_mut()) == 0 };
    assert!(blocked, "signals could not be blocked");
}

#[test]
fn a_thread_that_blocks_the_signal_has_no_live_stack_and_the_report_says_why() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        block_every_signal();
        ready_tx.send(()).unwrap();
        deliver_result(tx);
    });
    ready_rx.recv().unwrap();

    let report = guard.verify().expect_err("the sender is blocked forever");
    assert_eq!(report.tasks().len(), 1, "{report}");
    let task = &report.tasks()[0];
    // The capture level is `location`: without a live stack there is no stack at all.
    assert!(task.stack().is_none(), "{report}");
    let text = report.to_string();
    assert!(
        text.contains("stack        not available: the thread blocks signal"),
        "{text}"
    );

    drop(rx);
    worker.join().unwrap();
}

#[test]
fn survivors_blocked_at_one_place_share_one_live_stack() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let workers: Vec<_> = (0..20)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || compute_and_deliver(tx))
        })
        .collect();
    let report = guard.verify().expect_err("twenty senders are blocked");
    assert_eq!(report.tasks().len(), 20);
    let text = report.to_string();
    assert!(
        text.contains("20 × thread, blocked in `chan send`"),
        "{text}"
    );
    assert!(report
        .tasks()
        .iter()
        .all(|t| t.stack().is_some_and(|s| s.origin() == StackOrigin::Live)));
    drop(rx);
    workers.into_iter().for_each(|w| w.join().unwrap());
}
