use leakcheck::leak_test;

#[leak_test(timeout = "1s")]
#[tokio::test(flavor = "multi_thread")]
async fn tokio_test_after() {}

#[tokio::test]
#[leak_test]
async fn tokio_test_before() {}

fn main() {}
