//! Instrumented synchronisation primitives: std's API, with blocking calls visible in reports.
//!
//! A tracked task that blocks in one of these shows in a report as, for example,
//! `blocked in chan send` with the call site and since when.

pub mod mpsc;
