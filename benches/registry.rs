//! SPEC §8 figures for the registry, threads and checks, as ratios against the plain equivalent
//! measured in the same run. Run with `cargo bench --bench registry`; `-- --quick` (or
//! `LEAKCHECK_BENCH_QUICK=1`) is a smoke run of a few rounds, which CI uses to keep it running.
//!
//! No benchmark framework: each row interleaves the plain and the tracked variant round by round
//! (so drift in machine load hits both alike) and reports medians, and for ratios the median of
//! the per-round ratios with their spread (10th to 90th percentile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use leakcheck::Options;

/// Counts live heap bytes, for the memory row.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn median(samples: Vec<f64>) -> f64 {
    quantile(samples, 0.5)
}

fn quantile(mut samples: Vec<f64>, p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Whether this is a smoke run: a few rounds, to show the benchmarks still build and run.
fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
        || std::env::var_os("LEAKCHECK_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// `full`, or a small fraction of it in a smoke run.
fn scaled(full: usize) -> usize {
    if quick() {
        (full / 20).max(3)
    } else {
        full
    }
}

/// What [`compare`] measured: medians per iteration and the paired ratio with its spread.
struct Comparison {
    plain: f64,
    tracked: f64,
    ratio: f64,
    ratio_p10: f64,
    ratio_p90: f64,
}

impl Comparison {
    fn figure(&self) -> String {
        format!(
            "{:.0} vs {:.0} ns = {:.3}× ({:.2}–{:.2})",
            self.tracked, self.plain, self.ratio, self.ratio_p10, self.ratio_p90
        )
    }
}

/// Times `plain` and `tracked` alternately for `rounds` rounds of `iterations` each. Returns the
/// median nanoseconds per iteration of each, and the median and spread of the per-round ratios:
/// pairing each tracked round with the plain round next to it cancels out drift in machine load.
fn compare(
    rounds: usize,
    iterations: usize,
    mut plain: impl FnMut(),
    mut tracked: impl FnMut(),
) -> Comparison {
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    // Warm up both (caches, the allocator's free lists, lazily initialised state) unrecorded.
    (0..iterations).for_each(|_| {
        plain();
        tracked();
    });
    for round in 0..rounds {
        let time = |f: &mut dyn FnMut()| {
            let start = Instant::now();
            (0..iterations).for_each(|_| f());
            start.elapsed().as_nanos() as f64 / iterations as f64
        };
        // Alternate which goes first, so neither always runs on a warmer cache.
        let (p, t) = if round % 2 == 0 {
            let p = time(&mut plain);
            (p, time(&mut tracked))
        } else {
            let t = time(&mut tracked);
            (time(&mut plain), t)
        };
        a.push(p);
        b.push(t);
        ratios.push(t / p);
    }
    Comparison {
        plain: median(a),
        tracked: median(b),
        ratio: median(ratios.clone()),
        ratio_p10: quantile(ratios.clone(), 0.1),
        ratio_p90: quantile(ratios, 0.9),
    }
}

fn row(what: &str, figure: String, target: &str) {
    println!("{what:<62} {figure:>28}   target {target}");
}

/// Polls a future to completion on this thread; enough for futures that are ready at once.
fn poll_to_completion<F: Future>(future: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn thread_spawn_overhead() {
    let comparison = compare(
        scaled(41),
        scaled(200),
        || std::thread::spawn(|| ()).join().unwrap(),
        || leakcheck::thread::spawn(|| ()).join().unwrap(),
    );
    row(
        "thread::spawn + join (leakcheck vs std)",
        comparison.figure(),
        "≤ 1.03×",
    );
}

/// `task::track` on an executor that is not tokio (polling by hand on this thread): what
/// tracking itself costs, without a runtime's own cost to hide it.
fn track_on_another_executor() {
    let one_by_one = compare(
        scaled(41),
        scaled(20_000),
        || {
            poll_to_completion(async { std::hint::black_box(1) });
        },
        || {
            poll_to_completion(leakcheck::task::track(async { std::hint::black_box(1) }));
        },
    );
    row(
        "task::track + poll, one by one (vs the bare future)",
        format!("+{:.0} ns per task", one_by_one.tracked - one_by_one.plain),
        "a counter's cost",
    );
    // Bursts: 10,000 boxed futures alive at once (as an executor keeps them), then each run.
    const BURST: usize = 10_000;
    let burst = compare(
        scaled(21),
        1,
        || {
            let tasks: Vec<_> = (0..BURST)
                .map(|i| Box::pin(async move { std::hint::black_box(i) }))
                .collect();
            tasks.into_iter().for_each(|task| {
                poll_to_completion(task);
            });
        },
        || {
            let tasks: Vec<_> = (0..BURST)
                .map(|i| {
                    Box::pin(leakcheck::task::track(
                        async move { std::hint::black_box(i) },
                    ))
                })
                .collect();
            tasks.into_iter().for_each(|task| {
                poll_to_completion(task);
            });
        },
    );
    row(
        "task::track + poll, bursts of 10,000 boxed (vs boxed bare)",
        format!(
            "+{:.0} ns per task, {}",
            (burst.tracked - burst.plain) / BURST as f64,
            burst.figure()
        ),
        "a counter's cost",
    );
}

/// A never-ready future, held to keep a tracked task alive.
fn pending_task() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(leakcheck::task::track(std::future::pending::<()>()))
}

fn clean_check_with_foreign_tasks() {
    let measure = |foreign: usize| {
        let held: Vec<_> =
            leakcheck::in_scope("foreign", || (0..foreign).map(|_| pending_task()).collect());
        let per_check = leakcheck::in_scope("clean", || {
            let checks = scaled(10_000);
            let samples = (0..scaled(15))
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..checks {
                        leakcheck::verify_none_with(Options::new())
                            .verify()
                            .unwrap();
                    }
                    start.elapsed().as_nanos() as f64 / checks as f64
                })
                .collect();
            median(samples)
        });
        drop(held);
        per_check
    };
    let without = measure(0);
    let with = measure(scaled(100_000));
    row(
        "clean-scope check, 100,000 foreign tasks alive (vs none)",
        format!(
            "{:.2} µs vs {:.2} µs = {:.2}×",
            with / 1000.0,
            without / 1000.0,
            with / without
        ),
        "≤ 5 µs, independent",
    );
}

fn grace_wakeup_latency() {
    let mut latencies = Vec::new();
    for _ in 0..scaled(40) {
        let guard = leakcheck::verify_none_with(Options::new().timeout(Duration::from_secs(10)));
        let exited_at = Arc::new(Mutex::new(None));
        let stamp = Arc::clone(&exited_at);
        leakcheck::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            *stamp.lock().unwrap() = Some(Instant::now());
        });
        guard.verify().unwrap();
        let returned = Instant::now();
        let exited = exited_at.lock().unwrap().expect("the survivor ran");
        latencies.push(returned.duration_since(exited).as_nanos() as f64);
    }
    let worst = latencies.iter().cloned().fold(0.0, f64::max);
    row(
        "check return after the last survivor's exit (median, worst)",
        format!(
            "{:.0} µs, {:.0} µs",
            median(latencies) / 1000.0,
            worst / 1000.0
        ),
        "≤ 1 ms",
    );
}

fn memory_after_a_million_tasks() {
    let baseline = LIVE_BYTES.load(Ordering::Relaxed);
    let mut peak = 0;
    // A burst: 100,000 tracked tasks alive at once, ten times over, each run to completion.
    for _ in 0..10 {
        let burst: Vec<_> = (0..100_000)
            .map(|i| leakcheck::task::track(async move { i }))
            .collect();
        peak = peak.max(LIVE_BYTES.load(Ordering::Relaxed) - baseline);
        for task in burst {
            poll_to_completion(task);
        }
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed) - baseline;
    row(
        "heap after 1,000,000 tracked tasks ran (bursts of 100,000)",
        format!(
            "{:+.1} KiB (peak {:.0} MiB)",
            after as f64 / 1024.0,
            peak as f64 / (1 << 20) as f64
        ),
        "≤ 1 MiB",
    );
    let baseline = LIVE_BYTES.load(Ordering::Relaxed);
    let threads: Vec<_> = (0..2_000)
        .map(|_| {
            leakcheck::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(|| ())
                .unwrap()
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let after = LIVE_BYTES.load(Ordering::Relaxed) - baseline;
    row(
        "heap after a burst of 2,000 tracked threads",
        format!("{:+.1} KiB", after as f64 / 1024.0),
        "≤ 1 MiB",
    );
}

fn report_for_survivors() {
    leakcheck::in_scope("survivors", || {
        let held: Vec<_> = (0..100_000).map(|_| pending_task()).collect();
        let start = Instant::now();
        let report = leakcheck::verify_none_with(Options::new().timeout(Duration::ZERO))
            .verify()
            .unwrap_err();
        let text = report.to_string();
        let built = start.elapsed();
        assert_eq!(report.tasks().len(), 100_000);
        row(
            "report for 100,000 survivors (build + render, text size)",
            format!(
                "{:.0} ms, {:.1} KiB",
                built.as_secs_f64() * 1000.0,
                text.len() as f64 / 1024.0
            ),
            "≤ 1 s, ≤ 64 KiB",
        );
        let start = Instant::now();
        let json = report.to_json();
        let rendered = start.elapsed();
        row(
            "JSON report for the same 100,000 survivors (render, size)",
            format!(
                "{:.0} ms, {:.1} KiB",
                rendered.as_secs_f64() * 1000.0,
                json.len() as f64 / 1024.0
            ),
            "bounded like the text",
        );
        drop(held);
    });
}

fn main() {
    // `cargo test --benches` runs this with `--test`-like flags; a quick pass is enough there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "leakcheck registry benchmarks (medians; ratios against the plain equivalent in this run){}\n",
        if quick() { ", quick smoke run" } else { "" }
    );
    thread_spawn_overhead();
    track_on_another_executor();
    clean_check_with_foreign_tasks();
    grace_wakeup_latency();
    memory_after_a_million_tasks();
    report_for_survivors();
}
