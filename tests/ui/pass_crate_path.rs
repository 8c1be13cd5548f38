//! `crate = path` for a crate that re-exports leakcheck, in both of its forms.
//!
//! (As in `pass_arguments.rs`, this checks the attribute's parsing; `tests/attribute.rs` compiles
//! and runs tests written through a re-export, and the macro's unit tests check that no generated
//! path names `leakcheck` itself.)

mod support {
    pub use leakcheck as checks;
}

#[support::checks::leak_test(crate = support::checks)]
fn bare_path() {}

#[support::checks::leak_test(crate = "crate::support::checks", timeout = "1s")]
async fn string_path() {}

#[support::checks::leak_test(tokio, crate = ::leakcheck, flavor = "local")]
async fn with_tokio() {}

fn main() {}
