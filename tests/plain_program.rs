//! A plain program's check (not a test: `harness = false`, checks on the main thread) is not
//! told about parallel test threads that do not exist; a process-wide check there looks at the
//! OS threads leakcheck did not spawn.

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{Options, TaskKind};

fn grace() -> Options {
    Options::new().timeout(Duration::from_millis(100))
}

fn main() {
    // Enough of libtest's command line for test runners: one test, named after the program.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            println!("plain_program: test");
        }
        return;
    }
    // A tracked leak: reported, with no note about parallel tests.
    let guard = leakcheck::verify_none_with(grace());
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    leakcheck::thread::spawn(move || tx.send(1));
    let report = guard.verify().expect_err("the sender is left blocked");
    drop(rx);
    assert_eq!(report.tasks().len(), 1, "{report}");
    let text = report.to_string();
    assert!(
        !text.contains("parallel"),
        "a plain program was told about parallel tests:\n{text}"
    );

    // A thread leakcheck did not spawn is seen by a process-wide check.
    let guard = leakcheck::verify_none_with(grace().process_wide());
    let (tx, rx) = std::sync::mpsc::sync_channel::<u32>(0);
    std::thread::Builder::new()
        .name("plain-worker".into())
        .spawn(move || tx.send(1))
        .unwrap();
    let report = guard
        .verify()
        .expect_err("the plain thread is left blocked");
    drop(rx);
    assert!(
        report
            .tasks()
            .iter()
            .any(|task| task.name() == Some("plain-worker") && task.kind() != TaskKind::Async),
        "the plain thread is not reported:\n{report}"
    );
    assert!(
        !report.to_string().contains("parallel"),
        "a plain program was told about parallel tests:\n{report}"
    );
    println!("plain program: ok");
}
