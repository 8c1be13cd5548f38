//! SPEC §8: plain `std::thread::spawn` + join inside a scope, with every thread tracked from its
//! creation (`LEAKCHECK_THREADS=all`) against the census mode, in one run. Run with
//! `cargo bench --bench plain_threads`.
//!
//! No benchmark framework: the variants alternate round by round (so drift in machine load hits
//! them alike), and each tracked round is divided by the census round next to it. The ratio is
//! reported as the median of those per-round ratios, with the interquartile range as its spread.

use std::time::Instant;

use leakcheck::__private::set_thread_tracking_for_benchmark as set_mode;

/// Rounds per comparison, and spawn+join pairs per round.
const ROUNDS: usize = 61;
const ITERATIONS: usize = 200;

/// Nanoseconds per plain spawn+join, in the current mode.
fn spawn_join_round() -> f64 {
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        std::thread::spawn(|| ()).join().unwrap();
    }
    start.elapsed().as_nanos() as f64 / ITERATIONS as f64
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs census and tracked rounds alternately (which goes first alternates too); returns the
/// median ns of each and the quartiles of the per-round ratio.
fn compare(creation_stacks: bool) -> (f64, f64, [f64; 3]) {
    let (mut census, mut tracked, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let run = |track: bool| {
            set_mode(track, creation_stacks);
            spawn_join_round()
        };
        let (c, t) = if round % 2 == 0 {
            let c = run(false);
            (c, run(true))
        } else {
            let t = run(true);
            (run(false), t)
        };
        census.push(c);
        tracked.push(t);
        ratios.push(t / c);
    }
    set_mode(true, true);
    for samples in [&mut census, &mut tracked, &mut ratios] {
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    (
        quantile(&census, 0.5),
        quantile(&tracked, 0.5),
        [
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.75),
        ],
    )
}

fn main() {
    // `cargo test --benches` runs this with `--test`-like flags; nothing to check there.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!("plain std::thread::spawn + join inside a scope: tracked from creation vs census");
    println!("(medians of {ROUNDS} alternating rounds of {ITERATIONS}; spread = interquartile range of the per-round ratios)\n");
    leakcheck::in_scope("plain_threads bench", || {
        // Warm up: the first creations resolve symbols and grow the allocator's arenas.
        compare(true);
        for (label, stacks, target) in [
            ("without creation stacks", false, "≤ 1.03×"),
            ("with creation stacks", true, "≤ 1.10× (aim)"),
        ] {
            let (census, tracked, [low, ratio, high]) = compare(stacks);
            println!(
                "{label:<26} {tracked:>7.0} vs {census:>7.0} ns = {ratio:.3}×  (spread {low:.3}–{high:.3})   target {target}"
            );
        }
    });
}
