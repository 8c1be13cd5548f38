//! Tests running in parallel threads of one process never blame each other.
//!
//! The generated tests below run under libtest's default parallelism (and, under
//! `cargo nextest run`, one process each); the last test simulates a wider harness with 32 test
//! threads started at the same instant.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options};

/// Spawns `leaked` threads blocked on a channel and `joined` threads that finish, then checks:
/// exactly the `leaked` ones, all of this scope, must be reported.
fn leak_some(test: &str, leaked: usize, joined: usize) {
    let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(100)));
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    for i in 0..leaked {
        let rx = tx.clone();
        thread::Builder::new()
            .name(format!("{test}-leak-{i}"))
            .spawn(move || rx.send(()))
            .unwrap();
    }
    for i in 0..joined {
        thread::Builder::new()
            .name(format!("{test}-ok-{i}"))
            .spawn(move || i * 2)
            .unwrap()
            .join()
            .unwrap();
    }
    match guard.verify() {
        Ok(()) => assert_eq!(leaked, 0, "{test}: {leaked} leaks went unreported"),
        Err(report) => {
            assert_eq!(
                report.tasks().len(),
                leaked,
                "{test}: wrong survivors:\n{report}"
            );
            for task in report.tasks() {
                assert!(
                    task.name().unwrap().starts_with(&format!("{test}-leak-")),
                    "{test} blamed for:\n{report}"
                );
                assert!(task.scope().unwrap().contains(test), "{report}");
            }
            assert!(report.checked().contains(test), "{report}");
        }
    }
    drop(rx);
}

macro_rules! isolation_tests {
    ($($name:ident: $leaked:expr, $joined:expr;)*) => {
        $(
            #[test]
            fn $name() {
                leak_some(stringify!($name), $leaked, $joined);
            }
        )*
    };
}

isolation_tests! {
    leaky_1: 1, 2;
    leaky_2: 2, 0;
    leaky_3: 3, 5;
    leaky_4: 4, 1;
    leaky_5: 5, 3;
    leaky_6: 6, 0;
    clean_1: 0, 4;
    clean_2: 0, 0;
    clean_3: 0, 8;
    clean_4: 0, 2;
    clean_5: 0, 6;
    clean_6: 0, 1;
}

#[test]
fn thirty_two_simultaneous_tests_each_see_only_their_own_tasks() {
    let start = Arc::new(Barrier::new(32));
    let tests: Vec<_> = (0..32)
        .map(|i| {
            let start = Arc::clone(&start);
            // Named like a libtest test thread, so each gets its own test scope.
            std::thread::Builder::new()
                .name(format!("simulated::test_{i}"))
                .spawn(move || {
                    start.wait();
                    leak_some(&format!("simulated::test_{i}"), i % 4, i % 3);
                })
                .unwrap()
        })
        .collect();
    for test in tests {
        test.join()
            .expect("every simulated test sees exactly its own survivors");
    }
}
