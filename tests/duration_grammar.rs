//! The `timeout = "..."` argument of `#[leak_test]` and `LEAKCHECK_TIMEOUT` speak one grammar.
//!
//! The macro crate parses durations at compile time with its own copy of the runtime's parser (a
//! published proc-macro crate cannot include the runtime's file). The runtime's parser is the
//! reference; this feeds both the same inputs and asserts they agree, so the copies cannot drift.

#[allow(dead_code)]
#[path = "../leakcheck-macros/src/duration.rs"]
mod macro_duration;

use leakcheck::__private::parse_duration as runtime_parse;
use macro_duration::parse_duration as macro_parse;

/// Valid and invalid forms, edge cases of every branch of the grammar.
const INPUTS: &[&str] = &[
    "0",
    " 0 ",
    "0s",
    "0ms",
    "500ms",
    "2s",
    "1.5s",
    "100us",
    "100µs",
    "250ns",
    "1m",
    "1min",
    "1.25m",
    " 2s ",
    "2 s",
    "2s ",
    ".5s",
    "5.s",
    "1e3ms",
    "",
    " ",
    "5",
    "ms",
    "s",
    "5 parsecs",
    "-1s",
    "+1s",
    "1.2.3s",
    "1h",
    "1d",
    "10S",
    "10Ms",
    "1_000ms",
    "18446744073709551616s",
    "9300000000000000000s",
    "584y",
    "1e400s",
    "999999999999999999999999m",
    "0.0000000001ns",
    "nan s",
    "infs",
    "١s",
];

#[test]
fn the_attribute_and_the_environment_variable_accept_the_same_durations() {
    for input in INPUTS {
        assert_eq!(
            macro_parse(input),
            runtime_parse(input),
            "the macro crate's duration parser disagrees with the runtime's on {input:?}"
        );
    }
}

#[test]
fn the_table_covers_both_outcomes() {
    // Without both kinds of input, agreement would prove little.
    let accepted = INPUTS
        .iter()
        .filter(|input| runtime_parse(input).is_ok())
        .count();
    assert!(
        accepted >= 10 && INPUTS.len() - accepted >= 10,
        "{accepted}"
    );
}
