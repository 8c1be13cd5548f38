use leakcheck::leak_test;

#[leak_test]
#[test]
fn duplicate_test() {}

#[leak_test(timeout = "1s")]
#[leakcheck::leak_test]
fn leak_test_twice() {}

#[leak_test]
#[async_std::test]
async fn another_test_attribute() {}

fn main() {}
