//! End to end: reports read well for every kind of survivor (SPEC §5).
//!
//! What a person reading CI logs must see, through the text report ([`LeakReport`]'s
//! `Display`), the structured report ([`LeakReport::tasks`]) and the JSON report
//! (`LEAKCHECK_REPORT_DIR`):
//!
//! - survivors that are the same leak form one group, whatever their kind: same spawn site, state
//!   or reason, and name once its digits are normalised (`query-1`, `query-12` → `query-N`);
//! - stacks are trimmed of std's, the runtime's, leakcheck's and libc's frames at both ends and
//!   say how many they hid; a stack with no frame of the user's keeps its dependency's frames;
//!   `LEAKCHECK_BACKTRACE=full` shows everything;
//! - paths are short: the user's relative to the workspace, a dependency's as
//!   `crate-1.2.3/src/...`, the toolchain's as `std/src/...`;
//! - everything that comes from outside (scope labels, thread names) is escaped;
//! - the JSON report is bounded like the text one, and its file name is short whatever the label;
//! - durations say what is known, never `0µs`.
//!
//! Scenarios that need an environment variable, or OS threads leakcheck did not spawn (which a
//! per-test check attributes only when tests run one at a time), run as `#[ignore]`d fixtures in
//! a child process (see `common`); the others run in-process, each in its own scope.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{task, thread, LeakReport, LeakedTask, Options, TaskState};

use common::run_fixture;

fn quick() -> Options {
    Options::new().timeout(Duration::from_millis(100))
}

// --- reading reports ---------------------------------------------------------------------------

/// A group of the text report: its headline (`  3 × thread "query-N", blocked in ...`) and the
/// lines under it.
#[derive(Debug)]
struct Group<'a> {
    count: usize,
    headline: &'a str,
    lines: Vec<&'a str>,
}

impl<'a> Group<'a> {
    /// The lines of its stack, after the `stack (...):` (or `stack of 3 of the 4 tasks (...):`)
    /// line.
    fn stack_lines(&self) -> Vec<&'a str> {
        let Some(start) = self.lines.iter().position(|l| {
            let l = l.trim_start();
            l.starts_with("stack ") && l.ends_with("):")
        }) else {
            return Vec::new();
        };
        self.lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("          "))
            .copied()
            .collect()
    }

    fn text(&self) -> String {
        let mut text = self.headline.to_owned();
        for line in &self.lines {
            text.push('\n');
            text.push_str(line);
        }
        text
    }
}

/// The groups of a text report, in order.
fn groups(text: &str) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for line in text.lines() {
        if let Some(count) = group_count(line) {
            groups.push(Group {
                count,
                headline: line,
                lines: Vec::new(),
            });
        } else if let Some(group) = groups.last_mut() {
            if line.starts_with("      ") {
                group.lines.push(line);
            }
        }
    }
    groups
}

/// `Some(3)` for a headline `  3 × ...`.
fn group_count(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("  ")?;
    let (count, rest) = rest.split_once(' ')?;
    rest.starts_with("× ").then(|| count.parse().ok()).flatten()
}

/// The one group whose text mentions `needle`.
#[track_caller]
fn group_mentioning<'a>(text: &'a str, needle: &str) -> Group<'a> {
    let mut found: Vec<Group<'a>> = groups(text)
        .into_iter()
        .filter(|g| g.text().contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one group mentioning {needle:?}:\n{text}"
    );
    found.remove(0)
}

/// A stack line that counts hidden frames: `… 12 frames of std, tokio hidden`.
fn is_hidden_count(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('…') && line.contains(" frame") && line.ends_with(" hidden")
}

/// The text between `=== {name} ===` and the next `=== END ===` in a fixture's output.
#[track_caller]
fn section<'a>(output: &'a str, name: &str) -> &'a str {
    let start = format!("=== {name} ===\n");
    let at = output
        .find(&start)
        .unwrap_or_else(|| panic!("no section {name} in:\n{output}"))
        + start.len();
    let end = output[at..]
        .find("=== END ===")
        .unwrap_or_else(|| panic!("section {name} does not end:\n{output}"));
    &output[at..at + end]
}

fn print_section(name: &str, report: &LeakReport) {
    println!("=== {name} ===\n{report}\n=== END ===");
}

/// Frames of std, core, alloc, leakcheck and libc's thread and syscall plumbing: never shown by
/// default.
fn is_plumbing(function: &str) -> bool {
    let path = function.trim_start_matches('<');
    let crate_name = path.split([':', '<', ' ', '>']).next().unwrap_or(path);
    matches!(
        crate_name,
        "std" | "core" | "alloc" | "leakcheck" | "backtrace" | "parking_lot_core"
    ) || [
        "syscall",
        "clone",
        "clone3",
        "start_thread",
        "__GI___clone3",
    ]
    .contains(&function)
        || function.starts_with("__futex")
        || function.starts_with("__rust")
}

#[track_caller]
fn assert_no_raw_outside_text(text: &str) {
    for (index, c) in text.char_indices() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !(bidi || c.is_control() && c != '\n'),
            "raw {c:?} at byte {index} of the report:\n{}",
            text.escape_debug()
        );
    }
}

// --- grouping ------------------------------------------------------------------------------------

/// The blocking call of the named senders below.
#[inline(never)]
fn send_the_answer(tx: mpsc::SyncSender<u32>) {
    let _ = tx.send(42);
}

#[test]
fn named_threads_from_one_site_are_one_group_with_their_digits_normalised() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let workers: Vec<_> = [1, 2, 10]
        .into_iter()
        .map(|i| {
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("query-{i}"))
                .spawn(move || send_the_answer(tx))
                .unwrap()
        })
        .collect();
    let report = guard.verify().expect_err("three senders are blocked");
    let text = report.to_string();
    let all = groups(&text);
    assert_eq!(all.len(), 1, "{text}");
    assert_eq!(all[0].count, 3, "{text}");
    assert!(
        all[0]
            .headline
            .starts_with("  3 × thread \"query-N\", blocked in `chan send`"),
        "{text}"
    );
    for name in ["\"query-1\"", "\"query-2\"", "\"query-10\""] {
        assert!(all[0].text().contains(name), "{name} is listed:\n{text}");
    }
    drop(rx);
    workers.into_iter().for_each(|w| w.join().unwrap());
}

/// Where the plain threads below wait forever: it must show in their stacks.
#[inline(never)]
fn wait_for_a_message_forever(rx: std::sync::mpsc::Receiver<()>) {
    let _ = rx.recv();
}

/// Spawns a plain std thread named `name` that waits forever (its sender is leaked).
fn spawn_plain_waiter(name: &str) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::mem::forget(tx);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || wait_for_a_message_forever(rx))
        .unwrap();
}

#[test]
#[ignore = "fixture: run by plain_threads_are_grouped_by_the_same_name_rule"]
fn fixture_plain_threads_with_numbered_names() {
    let guard = leakcheck::verify_none_with(quick());
    for name in ["pool-7", "pool-12", "pool-301"] {
        spawn_plain_waiter(name);
    }
    let report = guard
        .verify()
        .expect_err("three plain threads wait forever");
    assert_eq!(report.tasks().len(), 3, "{report}");
    print_section("REPORT", &report);
}

#[test]
fn plain_threads_are_grouped_by_the_same_name_rule() {
    for threads in ["all", "census"] {
        let run = run_fixture(
            "fixture_plain_threads_with_numbered_names",
            &[("LEAKCHECK_THREADS", threads)],
        );
        run.assert_passed();
        let text = section(&run.output, "REPORT");
        let all = groups(text);
        assert_eq!(all.len(), 1, "LEAKCHECK_THREADS={threads}:\n{text}");
        assert_eq!(all[0].count, 3, "{text}");
        assert!(all[0].headline.contains("\"pool-N\""), "{text}");
        for name in ["\"pool-7\"", "\"pool-12\"", "\"pool-301\""] {
            assert!(all[0].text().contains(name), "{name} is listed:\n{text}");
        }
    }
}

#[cfg(feature = "tokio")]
#[test]
#[ignore = "fixture: run by a_forgotten_runtimes_workers_are_one_group"]
fn fixture_forgotten_runtime_with_four_workers() {
    let guard = leakcheck::verify_none_with(quick());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(async { 1 }).await.unwrap() });
    // The bug: nobody shuts the runtime down.
    std::mem::forget(runtime);
    let report = guard.verify().expect_err("the runtime's workers are alive");
    let workers: Vec<&LeakedTask> = report
        .tasks()
        .iter()
        .filter(|t| t.name() == Some("tokio-rt-worker"))
        .collect();
    assert_eq!(workers.len(), 4, "{report}");
    print_section("REPORT", &report);
}

#[cfg(feature = "tokio")]
#[test]
fn a_forgotten_runtimes_workers_are_one_group() {
    for threads in ["all", "census"] {
        let run = run_fixture(
            "fixture_forgotten_runtime_with_four_workers",
            &[("LEAKCHECK_THREADS", threads)],
        );
        run.assert_passed();
        let text = section(&run.output, "REPORT");
        let workers = group_mentioning(text, "\"tokio-rt-worker\"");
        assert_eq!(workers.count, 4, "LEAKCHECK_THREADS={threads}:\n{text}");
        if threads == "census" {
            assert!(
                workers
                    .headline
                    .starts_with("  4 × untracked thread \"tokio-rt-worker\", "),
                "{text}"
            );
        }
        // Trimmed and short: not ~40 frames of std and tokio internals per worker.
        let stack = workers.stack_lines();
        assert!(!stack.is_empty() && stack.len() <= 12, "{text}");
        assert!(stack.iter().any(|l| is_hidden_count(l)), "{text}");
        assert!(text.len() <= 8 * 1024, "{} bytes:\n{text}", text.len());
    }
}

// --- trimmed stacks and short paths ------------------------------------------------------------

#[test]
#[ignore = "fixture: run by a_plain_threads_stack_shows_the_users_frames_and_counts_the_rest"]
fn fixture_plain_thread_stack() {
    // Both open before the thread starts: the per-test check and the process-wide one, as the
    // global check of a custom test main would see it.
    let per_test = leakcheck::verify_none_with(quick());
    let process = leakcheck::verify_none_with(quick().process_wide());
    spawn_plain_waiter("stuck-recv");
    let per_test = per_test.verify().expect_err("the thread waits forever");
    let process = process.verify().expect_err("the thread waits forever");
    for report in [&per_test, &process] {
        let task = report
            .tasks()
            .iter()
            .find(|t| t.name() == Some("stuck-recv"))
            .unwrap_or_else(|| panic!("the thread is reported:\n{report}"));
        let stack = task.stack().expect("a live stack");
        let functions: Vec<&str> = stack.frames().iter().map(|f| f.function()).collect();
        if std::env::var("LEAKCHECK_BACKTRACE").as_deref() == Ok("full") {
            assert!(functions.iter().any(|f| is_plumbing(f)), "{report}");
            assert!(
                functions.contains(&"reports::wait_for_a_message_forever"),
                "{report}"
            );
        } else {
            // The innermost frame shown is the user's: where it waits.
            assert_eq!(
                functions.first(),
                Some(&"reports::wait_for_a_message_forever"),
                "{report}"
            );
            assert!(!functions.iter().any(|f| is_plumbing(f)), "{report}");
        }
        if cfg!(debug_assertions) {
            let user = stack
                .frames()
                .iter()
                .find(|f| f.function() == "reports::wait_for_a_message_forever")
                .unwrap();
            assert_eq!(user.file(), Some("tests/reports.rs"), "{report}");
        }
        for frame in stack.frames() {
            let file = frame.file().unwrap_or_default();
            assert!(
                !file.contains("/rustc/")
                    && !file.contains("/.cargo/")
                    && !file.contains("/rustlib/")
                    && !file.starts_with('/'),
                "a long path: {file}\n{report}"
            );
        }
    }
    print_section("PER-TEST", &per_test);
    print_section("PROCESS", &process);
}

#[test]
fn a_plain_threads_stack_shows_the_users_frames_and_counts_the_rest() {
    let run = run_fixture("fixture_plain_thread_stack", &[]);
    run.assert_passed();
    let per_test = section(&run.output, "PER-TEST");
    let process = section(&run.output, "PROCESS");
    let stack = group_mentioning(per_test, "\"stuck-recv\"").stack_lines();
    assert!(
        stack
            .iter()
            .any(|l| l.contains("reports::wait_for_a_message_forever   tests/reports.rs:")),
        "{per_test}"
    );
    let hidden: Vec<&&str> = stack.iter().filter(|l| is_hidden_count(l)).collect();
    assert!(!hidden.is_empty(), "{per_test}");
    assert!(hidden.iter().any(|l| l.contains("std")), "{per_test}");
    assert!(stack.len() <= 8, "a short stack:\n{per_test}");
    // The per-test check and the process-wide (global) check trim by the same rule.
    assert_eq!(
        stack,
        group_mentioning(process, "\"stuck-recv\"").stack_lines(),
        "per test:\n{per_test}\nprocess-wide:\n{process}"
    );
}

#[test]
fn leakcheck_backtrace_full_shows_every_frame_with_short_paths() {
    let run = run_fixture(
        "fixture_plain_thread_stack",
        &[("LEAKCHECK_BACKTRACE", "full")],
    );
    run.assert_passed();
    let per_test = section(&run.output, "PER-TEST");
    let stack = group_mentioning(per_test, "\"stuck-recv\"").stack_lines();
    assert!(!stack.iter().any(|l| is_hidden_count(l)), "{per_test}");
    assert!(
        stack.iter().any(|l| l.contains("std::sync::mpsc")),
        "{per_test}"
    );
    // The toolchain's sources, as `std/src/...`.
    assert!(
        stack.iter().any(|l| l.contains("   std/src/")),
        "{per_test}"
    );
    assert!(!per_test.contains("/rustc/"), "{per_test}");
}

#[test]
fn a_malformed_leakcheck_backtrace_names_full_among_the_accepted_values() {
    run_fixture(
        "fixture_plain_thread_stack",
        &[("LEAKCHECK_BACKTRACE", "everything")],
    )
    .assert_failed()
    .assert_contains("LEAKCHECK_BACKTRACE=`everything` is not understood")
    .assert_contains("`full`");
}

#[test]
#[ignore = "fixture: run by a_dependencys_thread_keeps_the_dependencys_frames"]
fn fixture_idle_threadpool() {
    let guard = leakcheck::verify_none_with(quick());
    let pool = threadpool::Builder::new()
        .num_threads(1)
        .thread_name("pool-worker".into())
        .build();
    pool.execute(|| ());
    pool.join();
    // The bug: the pool is forgotten, so its workers wait for jobs forever.
    std::mem::forget(pool);
    let report = guard.verify().expect_err("the pool's workers are alive");
    for task in report.tasks() {
        let stack = task.stack().expect("a live stack");
        let first = stack.frames().first().expect("frames are kept");
        // No frame of the user's: the innermost frames of the crate that owns the thread.
        assert!(first.function().starts_with("threadpool::"), "{report}");
        if cfg!(debug_assertions) {
            let file = first.file().unwrap_or_default();
            assert!(
                file.starts_with("threadpool-1.8.1/src/"),
                "{file}\n{report}"
            );
        }
    }
    print_section("REPORT", &report);
}

#[test]
fn a_dependencys_thread_keeps_the_dependencys_frames() {
    let run = run_fixture("fixture_idle_threadpool", &[]);
    run.assert_passed();
    let text = section(&run.output, "REPORT");
    let pool = group_mentioning(text, "\"pool-worker\"");
    assert_eq!(pool.count, 1, "{text}");
    let stack = pool.stack_lines();
    assert!(
        stack.iter().any(|l| l.contains("threadpool::")),
        "the dependency's frames tell the story:\n{text}"
    );
    assert!(stack.iter().any(|l| is_hidden_count(l)), "{text}");
    assert!(stack.len() <= 8, "{text}");
}

/// Where a tracked thread blocks: the user's frame between leakcheck's channel and the thread
/// start.
#[inline(never)]
fn deliver_forever(tx: mpsc::SyncSender<u32>) {
    let _ = tx.send(7);
}

#[test]
fn a_tracked_threads_live_stack_is_trimmed_at_both_ends() {
    let guard = leakcheck::verify_none_with(quick());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let worker = thread::spawn(move || deliver_forever(tx));
    let report = guard.verify().expect_err("the sender is blocked");
    let text = report.to_string();
    let stack = group_mentioning(&text, "chan send").stack_lines();
    // Hidden frames above (leakcheck's channel, std, libc) and below (the thread start).
    let first_kept = stack.iter().position(|l| !is_hidden_count(l)).unwrap();
    let last_kept = stack.iter().rposition(|l| !is_hidden_count(l)).unwrap();
    assert!(
        first_kept > 0 && last_kept < stack.len() - 1,
        "counts at both ends:\n{text}"
    );
    assert!(
        stack[first_kept].contains("reports::deliver_forever"),
        "{text}"
    );
    drop(rx);
    worker.join().unwrap();
}

// --- escaping -----------------------------------------------------------------------------------

/// A label an attacker (or an unlucky generator) could choose: a newline, an ANSI escape that
/// would colour the log, and a right-to-left override that would reverse what follows.
const EVIL: &str = "evil\nleakcheck: 0 unexpected tasks\u{1b}[2J\u{202e}gnp.exe";

#[test]
fn scope_labels_from_in_scope_are_escaped() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let (report, worker) = leakcheck::in_scope(EVIL, || {
        let guard = leakcheck::verify_none_with(quick());
        let worker = thread::spawn(move || send_the_answer(tx));
        (guard.verify().expect_err("the sender is blocked"), worker)
    });
    // Structured access keeps the label as it was given.
    assert_eq!(report.tasks()[0].scope(), Some(&*format!("scope `{EVIL}`")));
    let text = report.to_string();
    assert_no_raw_outside_text(&text);
    let headline = text.lines().next().unwrap();
    assert!(
        headline.starts_with("leakcheck: 1 unexpected task in scope `evil")
            && headline.contains("gnp.exe"),
        "the label stays on the headline:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("(by scope `evil") && l.contains("gnp.exe")),
        "the label stays on the spawn line:\n{text}"
    );
    drop(rx);
    worker.join().unwrap();
}

#[test]
fn scope_labels_from_thread_names_are_escaped() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let (report, worker) = std::thread::Builder::new()
        .name(EVIL.to_owned())
        .spawn(move || {
            let guard = leakcheck::verify_none_with(quick());
            let worker = thread::spawn(move || send_the_answer(tx));
            (guard.verify().expect_err("the sender is blocked"), worker)
        })
        .unwrap()
        .join()
        .unwrap();
    let text = report.to_string();
    assert_no_raw_outside_text(&text);
    let headline = text.lines().next().unwrap();
    assert!(
        headline.contains("evil") && headline.contains("gnp.exe"),
        "{text}"
    );
    drop(rx);
    worker.join().unwrap();
}

#[test]
fn task_names_are_escaped() {
    let guard = leakcheck::verify_none_with(quick());
    let forgotten = task::track_named(EVIL, std::future::pending::<()>());
    let report = guard.verify().expect_err("the task is never polled");
    assert_eq!(report.tasks()[0].name(), Some(EVIL));
    assert_no_raw_outside_text(&report.to_string());
    drop(forgotten);
}

// --- the JSON report ---------------------------------------------------------------------------

/// The most a JSON report may weigh, whatever the number of survivors.
const JSON_BUDGET: usize = 512 * 1024;

fn parse(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: not JSON:\n{json}"))
}

#[test]
fn the_json_report_of_100k_survivors_is_grouped_and_bounded() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(10)));
    let forgotten: Vec<_> = (0..100_000)
        .map(|_| task::track(std::future::pending::<()>()))
        .collect();
    let report = guard.verify().expect_err("100k tasks are never polled");
    assert_eq!(report.tasks().len(), 100_000);
    let text = report.to_string();
    assert!(text.len() <= 64 * 1024, "{} bytes of text", text.len());
    let json = report.to_json();
    assert!(json.len() <= JSON_BUDGET, "{} bytes of JSON", json.len());
    let value = parse(&json);
    assert_eq!(value["leak_count"], 100_000);
    let groups = value["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "one spawn site, one state");
    let group = &groups[0];
    assert_eq!(group["count"], 100_000);
    assert_eq!(group["state"], "scheduled");
    assert_eq!(group["kind"], "async");
    assert!(group["spawned_at"]["file"]
        .as_str()
        .is_some_and(|f| f.ends_with("tests/reports.rs")));
    // The first ids of the group, in spawn order, as the text report lists them.
    let ids = group["task_ids"].as_array().expect("task ids");
    assert!(!ids.is_empty() && ids.len() <= 100, "{} ids", ids.len());
    for (id, task) in ids.iter().zip(report.tasks()) {
        assert_eq!(
            id.as_u64(),
            Some(task.id().unwrap().as_u64()),
            "{}",
            group["task_ids"]
        );
    }
    drop(forgotten);
}

/// `aaa`, `aab`, … : names without digits, so that every task is a group of its own.
fn letters(mut n: usize) -> String {
    let mut name = String::new();
    for _ in 0..4 {
        name.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    name
}

#[test]
fn the_json_report_of_100k_distinct_survivors_is_bounded_and_counts_what_it_leaves_out() {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(10)));
    let forgotten: Vec<_> = (0..100_000)
        .map(|i| task::track_named(format!("conn-{}", letters(i)), std::future::pending::<()>()))
        .collect();
    let report = guard.verify().expect_err("100k tasks are never polled");
    let text = report.to_string();
    assert!(text.len() <= 64 * 1024, "{} bytes of text", text.len());
    let json = report.to_json();
    assert!(json.len() <= JSON_BUDGET, "{} bytes of JSON", json.len());
    let value = parse(&json);
    let groups = value["groups"].as_array().expect("groups");
    assert!(!groups.is_empty() && groups.len() < 100_000);
    let listed: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    let omitted = &value["omitted"];
    assert_eq!(
        omitted["groups"].as_u64().unwrap() + groups.len() as u64,
        100_000
    );
    assert_eq!(listed + omitted["tasks"].as_u64().unwrap(), 100_000);
    drop(forgotten);
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct ReportDir(PathBuf);

impl ReportDir {
    fn new(purpose: &str) -> ReportDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "leakcheck-reports-{purpose}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ReportDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary directory")
    }

    /// The files written, by name.
    fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                (name, std::fs::read_to_string(entry.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "fixture: run by the_report_file_of_100k_survivors_is_bounded"]
fn fixture_100k_survivors() {
    let _leaks = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(10)));
    let forgotten: Vec<_> = (0..100_000)
        .map(|_| task::track(std::future::pending::<()>()))
        .collect();
    std::mem::forget(forgotten);
}

#[test]
fn the_report_file_of_100k_survivors_is_bounded() {
    let dir = ReportDir::new("100k");
    let run = run_fixture(
        "fixture_100k_survivors",
        &[("LEAKCHECK_REPORT_DIR", dir.path())],
    );
    run.assert_failed()
        .assert_contains("leakcheck: 100000 unexpected tasks in test `fixture_100k_survivors`");
    let files = dir.files();
    assert_eq!(files.len(), 1, "{files:?}");
    let (_, json) = &files[0];
    assert!(json.len() <= JSON_BUDGET, "{} bytes", json.len());
    let value = parse(json);
    assert_eq!(value["checked"], "test `fixture_100k_survivors`");
    assert_eq!(value["groups"][0]["count"], 100_000);
}

/// Labels longer than a file name may be, that differ only at their end.
fn long_label(end: char) -> String {
    format!("{}{end}", "a_scope_with_a_generated_name_".repeat(12))
}

#[test]
#[ignore = "fixture: run by a_long_label_gives_a_short_unique_report_file_name"]
fn fixture_long_labels() {
    for end in ['1', '2'] {
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let (report, worker) = leakcheck::in_scope(&long_label(end), || {
            let guard = leakcheck::verify_none_with(quick());
            let worker = thread::spawn(move || send_the_answer(tx));
            (guard.verify().expect_err("the sender is blocked"), worker)
        });
        println!("{report}");
        drop(rx);
        worker.join().unwrap();
    }
}

#[test]
fn a_long_label_gives_a_short_unique_report_file_name() {
    let dir = ReportDir::new("long-labels");
    let run = run_fixture(
        "fixture_long_labels",
        &[("LEAKCHECK_REPORT_DIR", dir.path())],
    );
    run.assert_passed();
    assert!(!run.output.contains("File name too long"), "{}", run.output);
    let files = dir.files();
    assert_eq!(files.len(), 2, "both reports are written: {files:?}");
    let mut checked = HashSet::new();
    for (name, json) in &files {
        assert!(name.len() <= 128, "a short name: {name}");
        assert!(
            name.starts_with("leakcheck-") && name.ends_with(".json"),
            "{name}"
        );
        assert!(Path::new(name).extension().is_some());
        checked.insert(parse(json)["checked"].as_str().unwrap().to_owned());
    }
    let expected: HashSet<String> = ['1', '2']
        .into_iter()
        .map(|end| format!("scope `{}`", long_label(end)))
        .collect();
    assert_eq!(checked, expected);
}

// --- durations say what is known --------------------------------------------------------------

/// Whether `text` says `0µs` anywhere (as a word: `waited 120µs` is a precise measurement).
fn has_zero_duration(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|word| word == "0µs")
}

/// Polled once, then pending with its waker kept alive elsewhere: `idle`.
struct PendingOnce {
    waker: std::sync::Arc<std::sync::Mutex<Option<std::task::Waker>>>,
}

impl Future for PendingOnce {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

#[test]
fn just_polled_tasks_do_not_read_as_zero_durations() {
    // No grace at all: the check looks right after the poll, within one tick of the clock.
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::ZERO));
    let kept = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut tracked = Box::pin(task::track(PendingOnce {
        waker: std::sync::Arc::clone(&kept),
    }));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(tracked.as_mut().poll(&mut cx).is_pending());
    let report = guard.verify().expect_err("the task is pending");
    assert_eq!(report.tasks()[0].state(), TaskState::Idle, "{report}");
    let text = report.to_string();
    assert!(text.contains("idle"), "{text}");
    assert!(text.contains("last polled"), "{text}");
    assert!(
        !has_zero_duration(&text),
        "a duration below the clock's resolution is not zero:\n{text}"
    );
    drop(tracked);
}

/// With tokio's unstable hooks, plain `tokio::spawn` tasks are seen without a waker of
/// leakcheck's: whether one is held is not known, and the report must not claim it.
#[cfg(all(feature = "tokio", tokio_unstable))]
#[test]
fn tasks_seen_through_tokios_hooks_claim_only_what_is_known() {
    use leakcheck::__private::{run_tokio_test, TokioFlavor, TokioTestConfig};
    for flavor in [TokioFlavor::CurrentThread, TokioFlavor::MultiThread] {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_tokio_test(
                "reports::hooks",
                quick(),
                TokioTestConfig {
                    flavor,
                    worker_threads: Some(2).filter(|_| flavor == TokioFlavor::MultiThread),
                    start_paused: false,
                },
                async {
                    for _ in 0..3 {
                        tokio::spawn(std::future::pending::<()>());
                    }
                    tokio::task::yield_now().await;
                },
            )
        }));
        let payload = outcome.expect_err("the test leaked");
        let text = payload.downcast::<String>().expect("a report");
        assert!(text.contains("3 × async task"), "{text}");
        assert!(!has_zero_duration(&text), "{text}");
        assert!(!text.contains("a waker is held"), "not known:\n{text}");
    }
}
