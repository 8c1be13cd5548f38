//! Threads the code under test creates with nothing but `std::thread` (and crates built on it)
//! are tracked from their creation: every leaking test names its own threads' spawn site and
//! what they wait on, no clean test is blamed, and a lazily started global pool is nobody's leak.
//!
//! The tests run in parallel (libtest's default, `--test-threads=16`, or one process each under
//! `cargo nextest run`). Each checks with `verify()` and asserts on the report, so a leak must be
//! found *and* be the right one; the fixtures at the end show whole failing tests.
//!
//! Linux with glibc only: elsewhere threads are found by census, which `tests/untracked.rs` covers.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{marked_line, run_fixture};
use leakcheck::{LeakReport, LeakedTask, Options, TaskState};

const SOURCE: &str = include_str!("plain_threads.rs");
const FILE: &str = "tests/plain_threads.rs";

/// The code under test: it knows nothing of leakcheck.
mod code_under_test {
    use std::sync::mpsc;
    use std::sync::{Arc, Condvar, Mutex, OnceLock};
    use std::thread;

    /// Sends a result to a receiver that is dropped... too late: the sender waits forever on a
    /// rendezvous channel nobody reads. Returns the receiver, to drop after the check.
    pub fn fire_and_forget() -> mpsc::Receiver<u32> {
        let (tx, rx) = mpsc::sync_channel(0);
        thread::spawn(move || tx.send(42)); // site: fire-and-forget
        rx
    }

    /// A listener whose sender is kept alive by its owner: it waits for a message forever.
    pub fn listener() -> mpsc::Sender<u32> {
        let (tx, rx) = mpsc::channel::<u32>();
        thread::spawn(move || while rx.recv().is_ok() {}); // site: listener
        tx
    }

    /// A worker named like a Rust path, as a test harness names test threads, whose helper
    /// waits for a message forever; the worker itself finishes.
    pub fn path_named_worker() -> mpsc::Sender<u32> {
        let (tx, rx) = mpsc::channel::<u32>();
        thread::Builder::new()
            .name("worker::io".to_owned())
            .spawn(move || thread::spawn(move || while rx.recv().is_ok() {})) // site: path-named-helper
            .unwrap()
            .join()
            .unwrap();
        tx
    }

    /// Three generations of threads, each joining its child; the youngest waits on a lock that
    /// is never released.
    pub fn nested(lock: Arc<Mutex<()>>) {
        thread::spawn(move || eldest(lock)); // site: nested-1
    }

    fn eldest(lock: Arc<Mutex<()>>) {
        thread::spawn(move || middle(lock)).join().unwrap(); // site: nested-2
    }

    fn middle(lock: Arc<Mutex<()>>) {
        thread::spawn(move || drop(lock.lock())).join().unwrap(); // site: nested-3
    }

    /// A named worker waiting for a signal that never comes.
    pub fn named_worker(name: &str) {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || wait_for_signal(&pair)) // site: named
            .unwrap();
    }

    fn wait_for_signal(pair: &(Mutex<bool>, Condvar)) {
        let (lock, signal) = pair;
        let mut ready = lock.lock().unwrap();
        while !*ready {
            ready = signal.wait(ready).unwrap();
        }
    }

    /// Work handed to a `threadpool` pool that blocks forever; the pool itself is dropped.
    pub fn pool_job_that_blocks() -> mpsc::Sender<()> {
        let pool = threadpool::ThreadPool::new(2); // site: pool
        let (tx, rx) = mpsc::channel::<()>();
        pool.execute(move || rx.recv().unwrap_or_default()); // site: pool-job
        tx
    }

    /// Work that finishes, on a pool that is joined.
    pub fn pool_that_is_joined() {
        let pool = threadpool::ThreadPool::new(3);
        for i in 0..6 {
            pool.execute(move || assert_eq!(i * 2 % 2, 0));
        }
        pool.join();
    }

    /// The process-wide pool, started by whichever caller comes first, kept for the process.
    pub fn global_pool() -> &'static threadpool::ThreadPool {
        static POOL: OnceLock<threadpool::ThreadPool> = OnceLock::new();
        POOL.get_or_init(|| threadpool::ThreadPool::new(2)) // site: global-pool
    }

    /// A lazily built global pool only [`job_on_a_global_pool_leaks_a_listener`] uses: the
    /// first user of a global pool is the scope its workers (and so its jobs' threads) join.
    fn listeners_pool() -> &'static threadpool::ThreadPool {
        static POOL: OnceLock<threadpool::ThreadPool> = OnceLock::new();
        POOL.get_or_init(|| threadpool::ThreadPool::new(1))
    }

    /// A job on a global pool that starts a listener whose sender is kept alive by its owner.
    pub fn job_on_a_global_pool_leaks_a_listener() -> mpsc::Sender<u32> {
        let (tx, rx) = mpsc::channel::<u32>();
        let (started_tx, started) = mpsc::channel::<()>();
        listeners_pool().execute(move || {
            thread::spawn(move || while rx.recv().is_ok() {}); // site: global-pool-job
            started_tx.send(()).unwrap();
        });
        started.recv().unwrap();
        tx
    }

    /// A listener started by a test's own `LazyLock` (not a static's): the test's thread.
    pub fn local_lazy_listener() -> mpsc::Sender<u32> {
        let (tx, rx) = mpsc::channel::<u32>();
        let listener =
            std::sync::LazyLock::new(move || thread::spawn(move || while rx.recv().is_ok() {})); // site: local-lazy
        std::sync::LazyLock::force(&listener);
        tx
    }

    /// A process-wide listener whose initialiser recurses 40 frames deep before it spawns.
    pub fn deep_global_listener() -> &'static mpsc::SyncSender<u32> {
        static LISTENER: std::sync::LazyLock<mpsc::SyncSender<u32>> =
            std::sync::LazyLock::new(|| start_listener_below(40));
        &LISTENER
    }

    fn start_listener_below(depth: u32) -> mpsc::SyncSender<u32> {
        if depth > 0 {
            return std::hint::black_box(start_listener_below(depth - 1));
        }
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        thread::spawn(move || while rx.recv().is_ok() {});
        tx
    }

    /// A blocking job on a tokio runtime that is then shut down in the background: the job's
    /// thread stays, stuck.
    pub fn blocking_job_left_behind() -> std::sync::mpsc::Sender<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let _job = runtime.spawn_blocking(move || started_tx.send(()).map(|()| rx.recv())); // site: spawn-blocking
                                                                                            // Shut down once the job runs: a job still queued would be dropped with the runtime.
        started.recv().unwrap();
        runtime.shutdown_background();
        tx
    }

    /// A blocking job that finishes, on a runtime that is dropped.
    pub fn blocking_job_done() -> u32 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answer = runtime.block_on(runtime.spawn_blocking(|| 6 * 7)).unwrap();
        drop(runtime);
        answer
    }
}

fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(200))
}

/// Runs `body`, checks, and returns the report of what it left (`None` if nothing).
///
/// Every survivor here ends up blocked; on a loaded machine one may not have got there by the
/// end of the grace period, so the check is repeated (for up to 10 s) until all have.
fn leaks_of(body: impl FnOnce()) -> Option<LeakReport> {
    let guard = leakcheck::verify_none_with(quick());
    body();
    let mut report = guard.verify().err()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !report
            .tasks()
            .iter()
            .all(|task| task.state() == TaskState::Blocked)
    {
        report = leakcheck::verify_none_with(quick()).verify().err()?;
    }
    Some(report)
}

/// The site that a `// site: marker` line of this file has, as `file:line`.
fn site(marker: &str) -> String {
    format!("{FILE}:{}", marked_line(SOURCE, marker).0)
}

/// Asserts the report names the current test, and returns its tasks spawned at `marker`.
#[track_caller]
fn spawned_at<'a>(report: &'a LeakReport, marker: &str) -> Vec<&'a LeakedTask> {
    let line = marked_line(SOURCE, marker).0;
    let test = std::thread::current().name().unwrap().to_owned();
    assert!(report.checked().contains(&test), "{report}");
    report
        .tasks()
        .iter()
        .filter(|task| {
            task.spawned_at()
                .is_some_and(|site| site.file() == FILE && site.line() == line)
        })
        .collect()
}

/// Asserts `task` is blocked, by inference from its stack, on `reason`.
#[track_caller]
fn assert_inferred(task: &LeakedTask, reason: &str, report: &LeakReport) {
    assert_eq!(task.state(), TaskState::Blocked, "{report}");
    assert_eq!(task.blocked_on(), Some(reason), "{report}");
    assert!(task.wait_is_inferred(), "{report}");
}

#[test]
fn a_plain_thread_blocked_on_a_rendezvous_is_reported_where_it_was_spawned() {
    let mut receiver = None;
    let report = leaks_of(|| receiver = Some(code_under_test::fire_and_forget()))
        .expect("the sender is left blocked");
    assert_eq!(report.tasks().len(), 1, "{report}");
    let leaked = spawned_at(&report, "fire-and-forget");
    assert_eq!(leaked.len(), 1, "{report}");
    assert_inferred(leaked[0], "chan send", &report);
    assert_eq!(leaked[0].wait_detail(), Some("rendezvous"), "{report}");
    let blocked_at = leaked[0].blocked_at().expect("the user's frame");
    assert_eq!(
        format!("{}:{}", blocked_at.file(), blocked_at.line()),
        site("fire-and-forget"),
        "{report}"
    );
    assert_eq!(
        leaked[0].name(),
        None,
        "unnamed, not the test's name: {report}"
    );
    let text = report.to_string();
    assert!(text.contains(&site("fire-and-forget")), "{text}");
    assert!(
        text.contains("inferred from its stack: rendezvous"),
        "{text}"
    );
    assert!(!text.contains("were not checked here"), "{text}");
    // The JSON report says as much.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let group = &json["groups"][0];
    assert_eq!(group["blocked_on"], "chan send", "{json}");
    assert_eq!(group["wait_inferred"], true, "{json}");
    assert_eq!(group["wait_detail"], "rendezvous", "{json}");
    drop(receiver);
}

#[test]
fn a_plain_listener_waits_in_chan_receive() {
    let mut sender = None;
    let report = leaks_of(|| sender = Some(code_under_test::listener())).expect("a leak");
    let leaked = spawned_at(&report, "listener");
    assert_eq!((leaked.len(), report.tasks().len()), (1, 1), "{report}");
    assert_inferred(leaked[0], "chan receive", &report);
    drop(sender);
}

#[test]
fn a_thread_named_like_a_test_path_keeps_its_children_in_the_test() {
    let mut sender = None;
    let report = leaks_of(|| sender = Some(code_under_test::path_named_worker()))
        .expect("the helper of `worker::io` waits");
    let leaked = spawned_at(&report, "path-named-helper");
    assert_eq!((leaked.len(), report.tasks().len()), (1, 1), "{report}");
    assert_inferred(leaked[0], "chan receive", &report);
    assert_eq!(leaked[0].parents().len(), 1, "{report}");
    drop(sender);
}

#[test]
fn nested_plain_threads_belong_to_the_test_three_generations_down() {
    let lock = Arc::new(Mutex::new(()));
    let held = lock.lock().unwrap();
    let report = leaks_of(|| code_under_test::nested(Arc::clone(&lock))).expect("three leaks");
    assert_eq!(report.tasks().len(), 3, "{report}");
    for (marker, reason, depth) in [
        ("nested-1", "join", 0),
        ("nested-2", "join", 1),
        ("nested-3", "mutex lock", 2),
    ] {
        let leaked = spawned_at(&report, marker);
        assert_eq!(leaked.len(), 1, "{marker}: {report}");
        assert_inferred(leaked[0], reason, &report);
        assert_eq!(leaked[0].parents().len(), depth, "{marker}: {report}");
    }
    drop(held);
}

#[test]
fn a_named_builder_thread_shows_its_name() {
    let report =
        leaks_of(|| code_under_test::named_worker("config-watcher")).expect("the worker waits");
    let leaked = spawned_at(&report, "named");
    assert_eq!((leaked.len(), report.tasks().len()), (1, 1), "{report}");
    assert_eq!(leaked[0].name(), Some("config-watcher"), "{report}");
    assert_inferred(leaked[0], "condvar wait", &report);
}

#[test]
fn a_pool_crates_stuck_job_is_reported_with_the_users_line() {
    let mut sender = None;
    let report = leaks_of(|| sender = Some(code_under_test::pool_job_that_blocks()))
        .expect("the job's thread is stuck");
    // The pool was dropped: its idle thread left; the one running the job cannot.
    assert_eq!(report.tasks().len(), 1, "{report}");
    let task = &report.tasks()[0];
    let spawned = task.spawned_at().expect("a site");
    assert!(
        spawned.file().starts_with("threadpool-") && spawned.file().ends_with("src/lib.rs"),
        "the pool crate's spawning line: {report}"
    );
    let user = task.user_site().expect("the user's line");
    assert_eq!(format!("{}:{}", user.file(), user.line()), site("pool"));
    assert_inferred(task, "chan receive", &report);
    let blocked_at = task.blocked_at().expect("the job's frame");
    assert_eq!(blocked_at.line(), marked_line(SOURCE, "pool-job").0);
    drop(sender);
}

#[test]
fn ignore_patterns_apply_to_plain_threads() {
    let mut receivers = Vec::new();
    for options in [
        quick().ignore_spawned_at(&site("fire-and-forget")),
        quick().ignore_spawned_at("code_under_test::fire_and_forget"),
    ] {
        let guard = leakcheck::verify_none_with(options);
        receivers.push(code_under_test::fire_and_forget());
        if let Err(report) = guard.verify() {
            panic!("the sender is forgiven by its site:\n{report}");
        }
    }
    // The senders end once their receivers are gone.
    drop(receivers);
    let guard = leakcheck::verify_none_with(quick().ignore_name("config-watcher"));
    code_under_test::named_worker("config-watcher");
    if let Err(report) = guard.verify() {
        panic!("the worker is forgiven by its name:\n{report}");
    }
}

#[test]
fn clean_tests_are_not_blamed() {
    let report = leaks_of(|| {
        std::thread::spawn(|| std::thread::spawn(|| 1).join().unwrap())
            .join()
            .unwrap();
        std::thread::scope(|scope| {
            for i in 0..4 {
                scope.spawn(move || i * 2);
            }
        });
        code_under_test::pool_that_is_joined();
    });
    assert!(report.is_none(), "{}", report.unwrap());
}

#[test]
fn the_global_pools_first_user_passes_and_so_does_the_next() {
    for _ in 0..2 {
        let report = leaks_of(|| {
            let pool = code_under_test::global_pool();
            let (tx, rx) = std::sync::mpsc::channel();
            pool.execute(move || tx.send(7).unwrap());
            assert_eq!(rx.recv().unwrap(), 7);
        });
        assert!(report.is_none(), "{}", report.unwrap());
    }
}

#[test]
fn a_thread_started_by_a_job_on_a_global_pool_is_not_the_pools() {
    let mut sender = None;
    let report =
        leaks_of(|| sender = Some(code_under_test::job_on_a_global_pool_leaks_a_listener()))
            .expect("the job's listener waits");
    let leaked = spawned_at(&report, "global-pool-job");
    assert_eq!((leaked.len(), report.tasks().len()), (1, 1), "{report}");
    assert_inferred(leaked[0], "chan receive", &report);
    drop(sender);
}

#[test]
fn a_thread_started_by_a_tests_own_lazy_lock_is_the_tests() {
    let mut sender = None;
    let report = leaks_of(|| sender = Some(code_under_test::local_lazy_listener()))
        .expect("the listener waits");
    let leaked = spawned_at(&report, "local-lazy");
    assert_eq!((leaked.len(), report.tasks().len()), (1, 1), "{report}");
    assert_inferred(leaked[0], "chan receive", &report);
    drop(sender);
}

#[test]
fn a_deep_initialisers_thread_is_the_processs() {
    let report = leaks_of(|| {
        code_under_test::deep_global_listener();
    });
    assert!(report.is_none(), "{}", report.unwrap());
}

#[test]
fn a_blocking_job_left_on_a_tokio_runtime_is_reported() {
    let mut sender = None;
    let report = leaks_of(|| sender = Some(code_under_test::blocking_job_left_behind()))
        .expect("the job's thread is stuck");
    let stuck: Vec<_> = report
        .tasks()
        .iter()
        .filter(|task| task.blocked_on() == Some("chan receive"))
        .collect();
    assert_eq!(stuck.len(), 1, "{report}");
    assert!(stuck[0].wait_is_inferred(), "{report}");
    // tokio may run the job on a thread it created for an earlier job (here, `build()`'s
    // worker), so the user's line is one of this function's; where it blocks is the job's.
    let user = stuck[0].user_site().expect("the user's line");
    assert_eq!(user.file(), FILE, "{report}");
    let blocked_at = stuck[0].blocked_at().expect("the job's frame");
    assert_eq!(
        format!("{}:{}", blocked_at.file(), blocked_at.line()),
        site("spawn-blocking"),
        "{report}"
    );
    drop(sender);
}

#[test]
fn a_finished_blocking_job_on_a_dropped_runtime_is_clean() {
    let report = leaks_of(|| assert_eq!(code_under_test::blocking_job_done(), 42));
    assert!(report.is_none(), "{}", report.unwrap());
}

#[test]
fn leakcheck_threads_are_counted_once() {
    // leakcheck's own channel, so that its thread shows blocked (the wrapper's threads keep
    // what their calls record; nothing is inferred for them).
    let (tx, rx) = leakcheck::sync::mpsc::sync_channel::<()>(0);
    let report = leaks_of(|| {
        leakcheck::thread::spawn(move || tx.send(()));
    })
    .expect("a leak");
    assert_eq!(report.tasks().len(), 1, "{report}");
    // The wrapper's own record, with its exact `#[track_caller]` site and closure type.
    assert!(report.tasks()[0].runs().is_some(), "{report}");
    drop(rx);
}

#[test]
fn a_thread_leaving_by_pthread_exit_is_gone() {
    extern "C" fn leave(_: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: nothing of this thread's Rust frames has a destructor to skip.
        unsafe { libc::pthread_exit(std::ptr::null_mut()) }
    }
    let report = leaks_of(|| {
        let mut thread: libc::pthread_t = 0;
        // SAFETY: a valid out pointer, default attributes and a start routine that exits.
        let created = unsafe {
            libc::pthread_create(&mut thread, std::ptr::null(), leave, std::ptr::null_mut())
        };
        assert_eq!(created, 0);
        // SAFETY: a joinable thread created above, joined once.
        assert_eq!(
            unsafe { libc::pthread_join(thread, std::ptr::null_mut()) },
            0
        );
    });
    assert!(report.is_none(), "{}", report.unwrap());
}

/// Twelve tests at once, each leaking its own number of named plain threads (some none).
fn leak_plainly(test: &str, leaked: usize, joined: usize) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
    let report = leaks_of(|| {
        for i in 0..leaked {
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("{}-leak-{i}", &test[..3]))
                .spawn(move || tx.send(()))
                .unwrap();
        }
        for i in 0..joined {
            std::thread::spawn(move || i + 1).join().unwrap();
        }
    });
    match report {
        None => assert_eq!(leaked, 0, "{test}: leaks went unreported"),
        Some(report) => {
            assert_eq!(report.tasks().len(), leaked, "{test}:\n{report}");
            for task in report.tasks() {
                assert!(task.name().unwrap().starts_with(&test[..3]), "{report}");
                assert_eq!(task.test(), Some(test), "{report}");
                assert_eq!(task.blocked_on(), Some("chan send"), "{report}");
            }
        }
    }
    drop(rx);
}

macro_rules! concurrent_tests {
    ($($name:ident: $leaked:expr, $joined:expr;)*) => {
        $(
            #[test]
            fn $name() {
                leak_plainly(stringify!($name), $leaked, $joined);
            }
        )*
    };
}

concurrent_tests! {
    t01_plain: 1, 2;
    t02_plain: 2, 0;
    t03_plain: 0, 3;
    t04_plain: 4, 1;
    t05_plain: 0, 0;
    t06_plain: 3, 5;
    t07_plain: 1, 0;
    t08_plain: 0, 4;
    t09_plain: 5, 2;
    t10_plain: 2, 2;
    t11_plain: 0, 1;
    t12_plain: 6, 0;
}

#[test]
fn twelve_simultaneous_simulated_tests_each_get_their_own_threads() {
    let start = Arc::new(Barrier::new(12));
    let tests: Vec<_> = (0..12)
        .map(|i| {
            let start = Arc::clone(&start);
            // Named like a libtest test thread, so each gets its own test scope.
            std::thread::Builder::new()
                .name(format!("sim::t{i:02}_sim"))
                .spawn(move || {
                    start.wait();
                    leak_plainly(&format!("sim::t{i:02}_sim"), i % 4, i % 3);
                })
                .unwrap()
        })
        .collect();
    for test in tests {
        test.join().expect("each sees exactly its own threads");
    }
}

// Whole tests, run in a child process: a leaking `#[leak_test]` fails, naming its own thread.

#[leakcheck::leak_test]
#[ignore = "fixture: run by the test below"]
fn fixture_plain_leak() {
    std::mem::forget(code_under_test::fire_and_forget());
}

#[test]
fn a_leaking_test_fails_with_its_own_threads_site_and_reason() {
    run_fixture("fixture_plain_leak", &[])
        .assert_failed()
        .assert_contains("1 unexpected task in test `fixture_plain_leak`")
        .assert_contains(&format!("spawned at   {}", site("fire-and-forget")))
        .assert_contains("blocked in `chan send` (inferred from its stack: rendezvous)");
}

#[test]
fn with_census_the_same_leak_is_left_to_the_census() {
    run_fixture("fixture_plain_leak", &[("LEAKCHECK_THREADS", "census")])
        .assert_failed()
        .assert_contains("untracked thread")
        .assert_contains("LEAKCHECK_THREADS=census");
}

#[leakcheck::leak_test]
#[ignore = "fixture: run by the test below"]
fn fixture_global_pool_then_process_wide() {
    code_under_test::global_pool().execute(|| ());
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
    std::thread::spawn(move || tx.send(()));
    let report = leakcheck::verify_none_with(quick().process_wide())
        .verify()
        .expect_err("the plain leak fails the process-wide check");
    println!("{report}");
    drop(rx);
}

#[test]
fn a_process_wide_check_lists_the_global_pool_without_failing_on_it() {
    let run = run_fixture("fixture_global_pool_then_process_wide", &[]);
    run.assert_contains("1 unexpected task in the process")
        .assert_contains("note: 2 process-global threads (not a leak): started by a one-time")
        .assert_contains(&site("global-pool"));
}

#[leakcheck::leak_test]
#[ignore = "fixture: run by the test below"]
fn fixture_thread_in_a_forked_child() {
    // SAFETY: this process runs one test at a time; the child only creates a thread, checks and
    // leaves with `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let guard = leakcheck::verify_none_with(quick());
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
        std::thread::spawn(move || tx.send(()));
        // Left to the census, the thread may still be found by it (as untracked), but never
        // recorded from its creation.
        let tracked = guard
            .verify()
            .is_err_and(|report| !report.to_string().contains("untracked thread"));
        drop(rx);
        // SAFETY: leaves the child at once, running nothing of the parent's.
        unsafe { libc::_exit(if tracked { 3 } else { 0 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child created above, into a local.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(
        libc::WIFEXITED(status),
        "the child ended with status {status}"
    );
    println!(
        "forked child's thread tracked: {}",
        libc::WEXITSTATUS(status) == 3
    );
}

#[test]
fn threads_a_forked_child_creates_are_left_to_the_census() {
    run_fixture("fixture_thread_in_a_forked_child", &[])
        .assert_passed()
        .assert_contains("forked child's thread tracked: false");
}

#[test]
fn a_malformed_threads_setting_is_named() {
    run_fixture("fixture_plain_leak", &[("LEAKCHECK_THREADS", "everything")])
        .assert_failed()
        .assert_contains("LEAKCHECK_THREADS=`everything`")
        .assert_contains("`census`");
}
