//! How long the first report of a process takes to build, in the build the tests run in.
//!
//! The first report with stacks symbolises them, which loads the program's debug info; in a
//! debug build (how `cargo test` builds) that dominates, and under `cargo nextest` (a process per
//! test) every failing test pays it. This leaks one thread blocked on a channel, as a test would,
//! and times the check from its deadline to the rendered report. Run it with
//! `cargo run --example first_report` (debug, as tests are built); SPEC §8 aims at ≤ 0.3 s.

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use leakcheck::Options;

fn main() {
    let grace = Duration::from_millis(10);
    let guard = leakcheck::verify_none_with(Options::new().timeout(grace));
    let (requests, pending) = channel::<String>();
    let worker = std::thread::spawn(move || pending.recv().ok());
    // Let it reach its wait: a live stack is taken from there.
    std::thread::sleep(Duration::from_millis(50));

    let start = Instant::now();
    let report = guard.verify().expect_err("the worker is still waiting");
    let text = report.to_string();
    let elapsed = start.elapsed();
    assert!(text.contains("chan receive"), "{text}");

    drop(requests);
    worker
        .join()
        .expect("the worker ends once the sender is gone");
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "first report of the process ({build} build): {:.0} ms after a {} ms grace period \
         ({} bytes)   target ≤ 300 ms (debug)",
        elapsed.saturating_sub(grace).as_secs_f64() * 1e3,
        grace.as_millis(),
        text.len(),
    );
}
