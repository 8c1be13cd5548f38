//! Checks: the guard, the grace wait, the snapshot of survivors, the ignore verdicts, and the
//! census of OS threads leakcheck did not spawn.
//!
//! - `guard`: [`verify_none`], [`VerifyGuard`], [`in_scope`];
//! - `test_body`: the bodies `#[leak_test]` runs (through `__private`);
//! - `wait`: one check in progress, the grace wait, the verdict;
//! - `ignore`: what `Options` forgive;
//! - `snapshot`: live records turned into the owned entries of a report;
//! - `census`: untracked OS threads.

mod census;
mod guard;
mod ignore;
mod snapshot;
mod test_body;
mod wait;

#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use census::{enter_test_main, harness_thread_started, harness_thread_stopped};
#[cfg(feature = "tokio")]
pub(crate) use guard::fail_test;
pub use guard::{in_scope, verify_none, verify_none_with, VerifyGuard};
#[cfg(feature = "tokio")]
pub(crate) use test_body::test_name;
pub use test_body::{run_async_test, run_test};
pub(crate) use wait::Check;
#[cfg(feature = "tokio")]
pub(crate) use wait::ReportExtras;
