use leakcheck::leak_test;

#[leak_test]
extern "C" fn extern_c() {}

#[leak_test]
const fn const_fn() {}

#[leak_test]
unsafe fn unsafe_fn() {}

fn main() {}
