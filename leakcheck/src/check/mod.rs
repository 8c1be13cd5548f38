//! Checks: the guard, the grace wait, the snapshot of survivors, the ignore verdicts, and the
//! census of OS threads leakcheck did not spawn.
//!
//! - `guard`: [`verify_none`], [`VerifyGuard`], [`in_scope`];
//! - `test_body`: the bodies `#[leak_test]` runs (through `__private`);
//! - `wait`: one check in progress and its grace wait; `survivors`: which live tasks count and
//!   what forgives the others; `conclude`: the report and the `LEAKCHECK` mode;
//! - `ignore`: what `Options` forgive;
//! - `ignore_file`: the project's `leakcheck.toml`, and what its rules hide;
//! - `outcome`: how a failed check ends a test (where it points, `#[should_panic]`);
//! - `timer`: the deadline `verify_async` awaits, on any executor;
//! - `snapshot`: live records turned into the owned entries of a report;
//! - `census`: untracked OS threads.

mod census;
mod conclude;
mod guard;
mod ignore;
mod ignore_file;
mod outcome;
mod snapshot;
mod survivors;
mod test_body;
mod timer;
mod wait;

#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use census::{enter_test_main, harness_thread_started, harness_thread_stopped};
#[cfg(feature = "tokio")]
pub(crate) use conclude::deliver;
pub use guard::{in_scope, verify_none, verify_none_with, VerifyGuard};
#[cfg(feature = "tokio")]
pub(crate) use outcome::{finish_test, unusable_check};
#[cfg(feature = "tokio")]
pub(crate) use test_body::test_name;
pub use test_body::{run_async_test, run_test};
pub(crate) use wait::Check;
#[cfg(feature = "tokio")]
pub(crate) use wait::ReportExtras;
