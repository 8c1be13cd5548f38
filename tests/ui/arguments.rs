use leakcheck::leak_test;

#[leak_test(timout = "1s")]
fn unknown_argument() {}

#[leak_test(timeout = "5 parsecs")]
fn malformed_duration() {}

#[leak_test(timeout = 500ms)]
fn unquoted_duration() {}

#[leak_test(ignore_name = 42)]
fn non_string_ignore_name() {}

#[leak_test(timeout = "1s", ignore_name = "a", timeout = "2s")]
fn duplicate_timeout() {}

#[leak_test(process_wide = true, ignore_current)]
fn flag_with_a_value() {}

#[leak_test(retries = 3, ignore_spawned_at = "", ignore_function)]
fn every_mistake_at_once() {}

fn main() {}
