use leakcheck::leak_test;

#[leak_test(tokio, worker_threads = 2)]
async fn worker_threads_without_multi_thread() {}

#[leak_test(flavor = "multi_thread")]
async fn flavor_without_tokio() {}

#[leak_test(tokio, flavor = "multi-thread")]
async fn bad_flavor() {}

#[leak_test(tokio, flavor = "multi_thread", worker_threads = 0)]
async fn zero_workers() {}

#[leak_test(tokio, flavor = "multi_thread", start_paused = true)]
async fn start_paused_on_multi_thread() {}

#[leak_test(tokio)]
fn tokio_on_a_sync_fn() {}

fn main() {}
