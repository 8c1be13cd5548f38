//! SPEC §8: plain `std::thread::spawn` + join inside a scope, with every thread tracked from its
//! creation (`LEAKCHECK_THREADS=all`) against the census mode, in one run. Run with
//! `cargo bench --bench plain_threads`.
//!
//! No benchmark framework: the variants alternate round by round (so drift in machine load hits
//! them alike), and each tracked round is divided by the census round next to it. The ratio is
//! reported as the median of those per-round ratios, with the interquartile range as its spread.
//! Two clocks: wall time, and the CPU time of the whole process (both threads of each spawn and
//! join), which other processes competing for the machine disturb far less.

use std::time::Instant;

use leakcheck::__private::set_thread_tracking_for_benchmark as set_mode;

/// Rounds per comparison, and spawn+join pairs per round.
const ROUNDS: usize = 61;
const ITERATIONS: usize = 200;

/// The CPU time this process has used, in nanoseconds.
fn process_cpu_ns() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer, and a clock every Linux has.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 * 1e9 + now.tv_nsec as f64
}

/// Nanoseconds per plain spawn+join in the current mode: (wall, process CPU).
fn spawn_join_round() -> (f64, f64) {
    let (start, cpu) = (Instant::now(), process_cpu_ns());
    for _ in 0..ITERATIONS {
        std::thread::spawn(|| ()).join().unwrap();
    }
    let per = |total: f64| total / ITERATIONS as f64;
    (
        per(start.elapsed().as_nanos() as f64),
        per(process_cpu_ns() - cpu),
    )
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Medians of one clock's samples: census ns, tracked ns, and the per-round ratio's quartiles.
struct Figures {
    census: f64,
    tracked: f64,
    ratio: [f64; 3],
}

impl Figures {
    fn of(mut census: Vec<f64>, mut tracked: Vec<f64>, mut ratios: Vec<f64>) -> Figures {
        for samples in [&mut census, &mut tracked, &mut ratios] {
            samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        Figures {
            census: quantile(&census, 0.5),
            tracked: quantile(&tracked, 0.5),
            ratio: [0.25, 0.5, 0.75].map(|q| quantile(&ratios, q)),
        }
    }
}

/// Runs census and tracked rounds alternately (which goes first alternates too); returns the
/// figures of wall time and of process CPU time.
fn compare(creation_stacks: bool) -> (Figures, Figures) {
    let mut samples: [Vec<f64>; 6] = Default::default();
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
        for (clock, (c, t)) in [(c.0, t.0), (c.1, t.1)].into_iter().enumerate() {
            samples[clock * 3].push(c);
            samples[clock * 3 + 1].push(t);
            samples[clock * 3 + 2].push(t / c);
        }
    }
    set_mode(true, true);
    let [wc, wt, wr, cc, ct, cr] = samples;
    (Figures::of(wc, wt, wr), Figures::of(cc, ct, cr))
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
            let (wall, cpu) = compare(stacks);
            for (clock, figures) in [("wall", wall), ("cpu", cpu)] {
                let Figures {
                    census,
                    tracked,
                    ratio: [low, ratio, high],
                } = figures;
                println!(
                    "{label:<24} {clock:<4} {tracked:>7.0} vs {census:>7.0} ns = {ratio:.3}×  (spread {low:.3}–{high:.3})   target {target}"
                );
            }
        }
    });
}
