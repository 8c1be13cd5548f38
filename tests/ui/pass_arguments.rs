//! Every valid argument form of `#[leak_test]` is accepted.
//!
//! (Outside `cargo test` the built-in `#[test]` removes the functions after `#[leak_test]` ran, so
//! this checks the attribute's parsing; `tests/attribute.rs` compiles and runs the expansions.)

use leakcheck::leak_test;

#[leak_test]
fn no_arguments() {}

#[leak_test()]
fn empty_parentheses() {}

#[leak_test(
    timeout = "1.5s",
    ignore_name = "metrics-*",
    ignore_name = "reaper",
    ignore_spawned_at = "src/pool.rs:42",
    ignore_function = "my_crate::telemetry::flush_loop",
    ignore_current,
    process_wide
)]
fn every_option() -> Result<(), String> {
    Ok(())
}

#[leak_test(timeout = "0")]
#[should_panic(expected = "boom")]
#[ignore = "documentation"]
/// Docs stay.
async fn async_with_attributes() {
    panic!("boom")
}

#[leak_test(tokio)]
async fn tokio_default_flavor() {}

#[leak_test(tokio, flavor = "current_thread", start_paused = true)]
async fn tokio_current_thread() {}

#[leak_test(tokio, flavor = "multi_thread", worker_threads = 4, timeout = "250ms")]
async fn tokio_multi_thread() -> std::io::Result<()> {
    Ok(())
}

#[leakcheck::leak_test(tokio, flavor = "multi_thread")]
async fn tokio_multi_thread_default_workers() {}

#[leak_test(tokio, flavor = "local", start_paused = false)]
async fn tokio_local() {}

#[leak_test(
    ignore_spawned_at = "src/pool.rs",
    ignore_spawned_at = "src/pool.rs:42:9",
    ignore_spawned_at = "my_crate::pool::Pool::new",
    ignore_function = "flush_loop"
)]
fn every_pattern_form() {}

fn main() {}
