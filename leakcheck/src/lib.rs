//! Find the threads and async tasks a test left behind.
//!
//! (The guide is written in `lib.rs` at the end of the core work.)

#![warn(missing_docs)]

mod async_state;
mod check;
mod clock;
mod config;
mod context;
mod duration;
mod options;
mod os;
mod registry;
mod report;
mod snapshot;
mod state;
mod untracked;

pub mod sync;
pub mod task;
pub mod thread;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use check::{in_scope, verify_none, verify_none_with, VerifyGuard};
pub use leakcheck_macros::leak_test;
pub use options::Options;
pub use registry::{TaskId, TaskKind};
pub use report::{Frame, LeakReport, LeakedTask, OsThread, ParentTask, Site, Stack, StackOrigin};
pub use state::{blocking, TaskState};
pub use task::waiting;

/// Support for the code `#[leak_test]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::check::run_test;
    pub use crate::task::run_async_test;
}

/// Expands to nothing when the `tokio` feature is on; `#[leak_test(tokio)]` calls it.
#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio {
    () => {};
}

/// A clear compile error for `#[leak_test(tokio)]` without the `tokio` feature.
#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __private_require_tokio {
    () => {
        ::core::compile_error!(
            "#[leak_test(tokio)] needs leakcheck's `tokio` feature: leakcheck = { version = \"0.1\", features = [\"tokio\"] }"
        );
    };
}
