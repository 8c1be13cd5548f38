use leakcheck::leak_test;

#[leak_test(ignore_spawned_at = "src/x.rs:abc")]
fn line_is_not_a_number() {}

#[leak_test(ignore_spawned_at = "src/x.rs:42:9:1")]
fn too_many_positions() {}

#[leak_test(ignore_spawned_at = "src/x.rs::42")]
fn path_and_position_mixed() {}

#[leak_test(ignore_spawned_at = "pool thread")]
fn neither_file_nor_function() {}

#[leak_test(ignore_function = "src/telemetry.rs")]
fn a_file_is_not_a_function() {}

#[leak_test(timeout = 500)]
fn a_bare_number_is_not_a_duration() {}

#[leak_test(timeout = 2s)]
fn a_suffixed_number_is_not_a_string() {}

fn main() {}
