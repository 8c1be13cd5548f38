//! Compile-time behaviour of `#[leak_test]`: every misuse is an error that points at the
//! offending token, and every valid argument form is accepted.
//!
//! Each `tests/ui/*.rs` file is compiled on its own by trybuild; the expected compiler output is
//! in the `.stderr` file beside it. To update the snapshots after a deliberate change of wording,
//! run `TRYBUILD=overwrite cargo test --test trybuild` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_arguments.rs");
    cases.pass("tests/ui/pass_crate_path.rs");
    cases.compile_fail("tests/ui/arguments.rs");
    cases.compile_fail("tests/ui/tokio_arguments.rs");
    cases.compile_fail("tests/ui/test_attributes.rs");
    cases.compile_fail("tests/ui/not_a_test_function.rs");
    cases.compile_fail("tests/ui/signatures.rs");
    cases.compile_fail("tests/ui/values.rs");
    // Needs the `tokio` crate, for `#[tokio::test]`.
    if cfg!(feature = "tokio") {
        cases.compile_fail("tests/ui/tokio_test_attribute.rs");
    }
}
