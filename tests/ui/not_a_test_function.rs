use leakcheck::leak_test;

#[leak_test]
struct Pool;

#[leak_test]
fn with_parameters(pool: Pool, retries: u32) {}

#[leak_test]
fn generic<T: Default>() {}

fn main() {}
