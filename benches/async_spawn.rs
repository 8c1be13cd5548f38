//! SPEC §8: what tracking costs a tokio task, spawned and awaited to completion, against plain
//! `tokio::spawn` measured in the same run, on both runtime flavors. Target: ≤ 1.25×.
//!
//! Variants:
//! - `tokio::spawn`: the baseline, on a plain runtime built once;
//! - `leakcheck::tokio::spawn` and `tokio::spawn(track(..))`: tracked spawns, on that runtime;
//! - `tokio::spawn, fresh runtime`: the baseline of the next two rows, which run on a runtime
//!   built for each sample as `#[leak_test(tokio)]` builds one for each test: a plain spawn on a
//!   plain runtime, also built for each sample (a new multi-thread runtime's workers start cold);
//! - `tokio::spawn in leak_test`: a plain `tokio::spawn` on the runtime `#[leak_test(tokio)]`
//!   builds. With `--cfg tokio_unstable` its task hooks register every task (target: ≤ +0.2 µs
//!   per task); on stable tokio they do not exist, and this row shows the runtime's own cost;
//! - `leakcheck::tokio::spawn in leak_test`: a tracked spawn there (on stable tokio it also
//!   counts its runtime task, so that the runtime's count of unidentified tasks stays exact).
//!
//! Patterns: one by one (each task awaited before the next is spawned) and bursts of 10,000
//! (all spawned, then all awaited). Each sample spawns from inside a task of the runtime (the
//! common hot path: tasks spawning tasks).
//!
//! Every round measures each variant of one baseline once, in rotating order, and each variant's
//! ratio is taken against the plain sample of the same round, so that drift of the machine
//! (frequency, other processes) hits both sides alike. The two baselines' variants are measured
//! apart, one after the other (see `bench`). Rows show the median time per task, the median ratio, and
//! its spread (the 10th to 90th percentile of the per-round ratios).
//!
//! Run it with `cargo bench --bench async_spawn`; `-- --quick` (or `LEAKCHECK_BENCH_QUICK=1`) is a
//! smoke run of a few rounds, which CI uses to keep it building and running. A burst row of the
//! full table moves by 0.1× or more between runs on a loaded 2-core machine; 400 rounds of one
//! flavor and pattern resolve a few hundredths:
//! `cargo bench --bench async_spawn -- --flavor current_thread --pattern burst --rounds 400`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use leakcheck::__private::{run_tokio_test, TokioFlavor, TokioTestConfig};
use leakcheck::Options;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    LeakcheckSpawn,
    TrackThenSpawn,
    PlainFreshRuntime,
    PlainInLeakTest,
    LeakcheckSpawnInLeakTest,
}

impl Variant {
    const ALL: [Variant; 6] = [
        Variant::Plain,
        Variant::LeakcheckSpawn,
        Variant::TrackThenSpawn,
        Variant::PlainFreshRuntime,
        Variant::PlainInLeakTest,
        Variant::LeakcheckSpawnInLeakTest,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "tokio::spawn",
            Variant::LeakcheckSpawn => "leakcheck::tokio::spawn",
            Variant::TrackThenSpawn => "tokio::spawn(track(..))",
            Variant::PlainFreshRuntime => "tokio::spawn, fresh runtime",
            Variant::PlainInLeakTest => "tokio::spawn in leak_test",
            Variant::LeakcheckSpawnInLeakTest => "leakcheck::tokio::spawn in leak_test",
        }
    }

    /// The variant this one's ratio is taken against, in the same round: a plain spawn on the
    /// same kind of runtime (built once, or built for each sample).
    fn baseline(self) -> Variant {
        match self {
            Variant::Plain | Variant::LeakcheckSpawn | Variant::TrackThenSpawn => Variant::Plain,
            Variant::PlainFreshRuntime
            | Variant::PlainInLeakTest
            | Variant::LeakcheckSpawnInLeakTest => Variant::PlainFreshRuntime,
        }
    }

    fn spawn(self, value: usize) -> JoinHandle<usize> {
        let future = async move { black_box(value) };
        match self {
            Variant::Plain | Variant::PlainFreshRuntime | Variant::PlainInLeakTest => {
                tokio::spawn(future)
            }
            Variant::LeakcheckSpawn | Variant::LeakcheckSpawnInLeakTest => {
                leakcheck::tokio::spawn(future)
            }
            Variant::TrackThenSpawn => tokio::spawn(leakcheck::task::track(future)),
        }
    }
}

/// How the tasks of a sample are spawned and awaited.
#[derive(Clone, Copy)]
enum Pattern {
    /// Each awaited before the next is spawned: one task alive at a time.
    OneByOne,
    /// All spawned, then all awaited: the whole sample alive at once.
    Burst,
}

impl Pattern {
    fn label(self) -> &'static str {
        match self {
            Pattern::OneByOne => "one by one",
            Pattern::Burst => "burst",
        }
    }
}

#[derive(Clone, Copy)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }

    fn plain_runtime(self) -> Runtime {
        match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            Flavor::MultiThread => Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .expect("a runtime")
    }

    fn leak_test_config(self) -> TokioTestConfig {
        TokioTestConfig {
            flavor: match self {
                Flavor::CurrentThread => TokioFlavor::CurrentThread,
                Flavor::MultiThread => TokioFlavor::MultiThread,
            },
            ..TokioTestConfig::default()
        }
    }
}

/// Spawns `tasks` tasks of `variant` from a task of the current runtime, awaits them, and
/// returns the time per task.
async fn spawn_and_await(pattern: Pattern, variant: Variant, tasks: usize) -> Duration {
    tokio::spawn(async move {
        let mut sum = 0;
        let start = Instant::now();
        match pattern {
            Pattern::Burst => {
                let handles: Vec<_> = (0..tasks).map(|value| variant.spawn(value)).collect();
                for handle in handles {
                    sum += handle.await.expect("a trivial task does not fail");
                }
            }
            Pattern::OneByOne => {
                for value in 0..tasks {
                    sum += variant
                        .spawn(value)
                        .await
                        .expect("a trivial task does not fail");
                }
            }
        }
        let elapsed = start.elapsed();
        black_box(sum);
        elapsed / tasks as u32
    })
    .await
    .expect("the driver task does not fail")
}

/// One sample: the plain runtime for the first variants, a fresh plain runtime for its own, a
/// `#[leak_test(tokio)]` runtime (built the way the attribute builds it, and checked at the end
/// the same way) for the last.
fn sample(
    flavor: Flavor,
    runtime: &Runtime,
    pattern: Pattern,
    variant: Variant,
    tasks: usize,
) -> Duration {
    match variant {
        Variant::PlainInLeakTest | Variant::LeakcheckSpawnInLeakTest => run_tokio_test(
            "async_spawn_bench",
            Options::new(),
            flavor.leak_test_config(),
            spawn_and_await(pattern, variant, tasks),
        ),
        Variant::PlainFreshRuntime => flavor
            .plain_runtime()
            .block_on(spawn_and_await(pattern, variant, tasks)),
        _ => runtime.block_on(spawn_and_await(pattern, variant, tasks)),
    }
}

/// The `p`-quantile (0..=1) of `values`, which it sorts.
fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// Measures every variant and prints a row each; returns the worst median ratio of the tracked
/// spawns (the leak_test row is judged by its added time instead).
///
/// The variants of one baseline take turns only among themselves, all rounds of one baseline
/// before the next: a `#[leak_test(tokio)]` sample leaves the heap and caches in a state that
/// slowed the tracked sample after it on the runtime built once by 10–15 ns per task (with 35
/// more instructions: callgrind), which put the A/B of that row 0.06× above the same A/B run
/// alone.
fn bench(flavor: Flavor, runtime: &Runtime, pattern: Pattern, rounds: usize, tasks: usize) -> f64 {
    for variant in Variant::ALL {
        black_box(sample(flavor, runtime, pattern, variant, tasks / 10 + 1));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); Variant::ALL.len()];
    for baseline in [Variant::Plain, Variant::PlainFreshRuntime] {
        let group: Vec<usize> = (0..Variant::ALL.len())
            .filter(|&index| Variant::ALL[index].baseline() == baseline)
            .collect();
        for round in 0..rounds {
            for offset in 0..group.len() {
                let index = group[(round + offset) % group.len()];
                let time = sample(flavor, runtime, pattern, Variant::ALL[index], tasks);
                times[index].push(time.as_secs_f64() * 1e9);
            }
        }
    }
    let mut worst = 0.0_f64;
    for (index, variant) in Variant::ALL.into_iter().enumerate() {
        let baseline = Variant::ALL.iter().position(|v| *v == variant.baseline());
        let baseline = &times[baseline.expect("a baseline is a variant")];
        let mut ratios: Vec<f64> = times[index]
            .iter()
            .zip(baseline)
            .map(|(time, plain)| time / plain)
            .collect();
        let mut added: Vec<f64> = times[index]
            .iter()
            .zip(baseline)
            .map(|(time, plain)| time - plain)
            .collect();
        let ns = quantile(&mut times[index].clone(), 0.5);
        let ratio = quantile(&mut ratios, 0.5);
        println!(
            "{:<15} {:<11} {:<37} {:>8.0} {:>7.2}×  {:>5.2}–{:<5.2} {:>+8.0}",
            flavor.label(),
            pattern.label(),
            variant.label(),
            ns,
            ratio,
            quantile(&mut ratios, 0.1),
            quantile(&mut ratios, 0.9),
            quantile(&mut added, 0.5),
        );
        if matches!(variant, Variant::LeakcheckSpawn | Variant::TrackThenSpawn) {
            worst = worst.max(ratio);
        }
    }
    worst
}

/// What the command line asks for; see the module's documentation.
struct Args {
    quick: bool,
    flavors: Vec<Flavor>,
    patterns: Vec<Pattern>,
    /// Rounds for every selected row, instead of each pattern's default.
    rounds: Option<usize>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut args = Args {
            quick: std::env::var_os("LEAKCHECK_BENCH_QUICK").is_some_and(|v| v != "0"),
            flavors: vec![Flavor::CurrentThread, Flavor::MultiThread],
            patterns: vec![Pattern::OneByOne, Pattern::Burst],
            rounds: None,
        };
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            let mut value = |accepted: &str| {
                words
                    .next()
                    .ok_or_else(|| format!("`{word}` needs a value: {accepted}"))
            };
            match word.as_str() {
                // What `cargo bench` passes to every benchmark binary.
                "--bench" => {}
                "--quick" => args.quick = true,
                "--flavor" => {
                    let choices = [
                        ("current_thread", Flavor::CurrentThread),
                        ("multi_thread", Flavor::MultiThread),
                    ];
                    args.flavors = vec![one_of(&word, &mut value, &choices)?];
                }
                "--pattern" => {
                    let choices = [("one-by-one", Pattern::OneByOne), ("burst", Pattern::Burst)];
                    args.patterns = vec![one_of(&word, &mut value, &choices)?];
                }
                "--rounds" => {
                    let accepted = "a number of rounds, at least 1";
                    let rounds = value(accepted)?;
                    match rounds.parse() {
                        Ok(rounds) if rounds > 0 => args.rounds = Some(rounds),
                        _ => return Err(format!("`--rounds {rounds}`: expected {accepted}")),
                    }
                }
                other => {
                    return Err(format!(
                        "unknown argument `{other}`: expected --quick, --flavor, --pattern or \
                         --rounds"
                    ))
                }
            }
        }
        Ok(args)
    }
}

/// The choice that `flag`'s value names, of `choices`; the error names the value and the accepted
/// names.
fn one_of<T: Copy>(
    flag: &str,
    value: &mut impl FnMut(&str) -> Result<String, String>,
    choices: &[(&str, T)],
) -> Result<T, String> {
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let accepted = names.join(" or ");
    let given = value(&accepted)?;
    choices
        .iter()
        .find(|(name, _)| *name == given)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| format!("`{flag} {given}`: expected {accepted}"))
}

fn main() {
    let args = Args::parse().unwrap_or_else(|error| {
        eprintln!("async_spawn: {error}");
        std::process::exit(2);
    });
    let quick = args.quick;
    // (rounds, tasks per sample) for one by one and for bursts.
    let (mut one_by_one, mut burst) = if quick {
        ((3, 200), (3, 1_000))
    } else {
        ((31, 2_000), (21, 10_000))
    };
    if let Some(rounds) = args.rounds {
        (one_by_one.0, burst.0) = (rounds, rounds);
    }
    println!(
        "tokio spawn + await of a trivial future: per task, medians of interleaved rounds{}",
        if quick { " (quick smoke run)" } else { "" }
    );
    println!(
        "tokio_unstable hooks: {}",
        if cfg!(tokio_unstable) {
            "on (the leak_test row pays them)"
        } else {
            "off (stable tokio)"
        }
    );
    println!("SPEC §8 target: tracked ≤ 1.25× tokio::spawn; hooks ≤ +200 ns per task\n");
    println!(
        "{:<15} {:<11} {:<37} {:>8} {:>8}  {:<11} {:>8}",
        "flavor", "pattern", "variant", "ns/task", "ratio", "p10–p90", "+ns"
    );
    let mut worst = 0.0_f64;
    for &flavor in &args.flavors {
        let runtime = flavor.plain_runtime();
        for &pattern in &args.patterns {
            let (rounds, tasks) = match pattern {
                Pattern::OneByOne => one_by_one,
                Pattern::Burst => burst,
            };
            worst = worst.max(bench(flavor, &runtime, pattern, rounds, tasks));
        }
    }
    println!(
        "\nworst tracked ratio: {worst:.2}× ({})",
        if worst <= 1.25 {
            "within the target"
        } else {
            "ABOVE the target"
        }
    );
}
