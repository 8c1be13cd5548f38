//! SPEC §8: `leakcheck::tokio::spawn` (and `tokio::spawn(task::track(..))`) of a trivial future,
//! to completion, against plain `tokio::spawn`, on both runtime flavors. Target: ≤ 1.25×.
//!
//! Each sample spawns a batch of trivial tasks from inside a task of the runtime (the common hot
//! path: tasks spawning tasks, through the worker's local queue) and awaits every handle. The
//! three variants are measured in interleaved rounds, in rotating order, so that drift of the
//! machine (frequency, other processes) hits all of them alike; the table shows the median time
//! per task of each, and its ratio to plain `tokio::spawn` in the same run.
//!
//! Run it with `cargo bench --bench async_spawn` (`-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// Tasks per sample.
const BATCH: usize = 2_000;
/// Samples per variant and flavor (after warm-up).
const ROUNDS: usize = 101;
const WARM_UP_ROUNDS: usize = 10;

#[derive(Clone, Copy)]
enum Variant {
    Plain,
    LeakcheckSpawn,
    TrackThenSpawn,
}

impl Variant {
    const ALL: [Variant; 3] = [
        Variant::Plain,
        Variant::LeakcheckSpawn,
        Variant::TrackThenSpawn,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "tokio::spawn",
            Variant::LeakcheckSpawn => "leakcheck::tokio::spawn",
            Variant::TrackThenSpawn => "tokio::spawn(track(..))",
        }
    }

    fn spawn(self, value: usize) -> JoinHandle<usize> {
        let future = async move { black_box(value) };
        match self {
            Variant::Plain => tokio::spawn(future),
            Variant::LeakcheckSpawn => leakcheck::tokio::spawn(future),
            Variant::TrackThenSpawn => tokio::spawn(leakcheck::task::track(future)),
        }
    }
}

/// How the tasks of a sample are spawned and awaited.
#[derive(Clone, Copy)]
enum Pattern {
    /// All spawned, then all awaited: `batch` tasks alive at once.
    Batch,
    /// Each awaited before the next is spawned: one task alive at a time.
    OneByOne,
}

impl Pattern {
    fn label(self) -> &'static str {
        match self {
            Pattern::Batch => "batch",
            Pattern::OneByOne => "one by one",
        }
    }
}

/// Spawns `batch` tasks of `variant` from a task of `runtime`, awaits them, and returns the time
/// per task.
fn sample(runtime: &Runtime, pattern: Pattern, variant: Variant, batch: usize) -> Duration {
    runtime.block_on(async move {
        tokio::spawn(async move {
            let mut sum = 0;
            let start = Instant::now();
            match pattern {
                Pattern::Batch => {
                    let mut handles = Vec::with_capacity(batch);
                    for value in 0..batch {
                        handles.push(variant.spawn(value));
                    }
                    for handle in handles {
                        sum += handle.await.expect("a trivial task does not fail");
                    }
                }
                Pattern::OneByOne => {
                    for value in 0..batch {
                        sum += variant
                            .spawn(value)
                            .await
                            .expect("a trivial task does not fail");
                    }
                }
            }
            let elapsed = start.elapsed();
            black_box(sum);
            elapsed / batch as u32
        })
        .await
        .expect("the driver task does not fail")
    })
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Measures every variant on `runtime` and prints a row each; returns the ratios to plain.
fn bench(name: &str, runtime: &Runtime, pattern: Pattern, rounds: usize, batch: usize) -> Vec<f64> {
    for round in 0..WARM_UP_ROUNDS {
        for variant in Variant::ALL {
            black_box(sample(runtime, pattern, variant, batch / 4 + round));
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); Variant::ALL.len()];
    for round in 0..rounds {
        for offset in 0..Variant::ALL.len() {
            let index = (round + offset) % Variant::ALL.len();
            samples[index].push(sample(runtime, pattern, Variant::ALL[index], batch));
        }
    }
    let medians: Vec<(Variant, Duration)> = Variant::ALL
        .iter()
        .zip(samples.iter_mut())
        .map(|(variant, samples)| (*variant, median(samples)))
        .collect();
    let plain = medians[0].1.as_secs_f64();
    let mut ratios = Vec::new();
    for (variant, time) in &medians {
        let ratio = time.as_secs_f64() / plain;
        println!(
            "{name:<15} {:<11} {:<26} {:>10.1} {:>8.2}×",
            pattern.label(),
            variant.label(),
            time.as_secs_f64() * 1e9,
            ratio
        );
        ratios.push(ratio);
    }
    ratios
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (rounds, batch) = if quick { (11, 500) } else { (ROUNDS, BATCH) };
    println!("spawn of a trivial future to completion: median of {rounds} interleaved samples of {batch} tasks");
    println!("SPEC §8 target: leakcheck::tokio::spawn (or track) ≤ 1.25× tokio::spawn\n");
    println!(
        "{:<15} {:<11} {:<26} {:>10} {:>9}",
        "flavor", "pattern", "variant", "ns/task", "ratio"
    );

    let mut worst = 0.0_f64;
    for (name, mut builder) in [
        ("current_thread", Builder::new_current_thread()),
        ("multi_thread", Builder::new_multi_thread()),
    ] {
        let runtime = builder.enable_all().build().expect("a runtime");
        for pattern in [Pattern::Batch, Pattern::OneByOne] {
            let ratios = bench(name, &runtime, pattern, rounds, batch);
            worst = ratios.into_iter().fold(worst, f64::max);
        }
    }
    println!(
        "\nworst ratio: {worst:.2}× ({})",
        if worst <= 1.25 {
            "within the target"
        } else {
            "ABOVE the target"
        }
    );
}
