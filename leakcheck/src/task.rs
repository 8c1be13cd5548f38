//! Tracked async tasks on any executor. (Owned by the async-tasks work; stub.)

use std::future::Future;

use crate::options::Options;

/// A future registered as a tracked task; see [`track`].
pub struct Tracked<F> {
    future: F,
}

/// Registers `future` as a tracked task (stub).
#[track_caller]
pub fn track<F: Future>(future: F) -> Tracked<F> {
    Tracked { future }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        // SAFETY: stub; structural pinning of `future`.
        unsafe { self.map_unchecked_mut(|t| &mut t.future) }.poll(cx)
    }
}

/// Marks an await as blocking (stub).
#[track_caller]
pub fn waiting<F: Future>(_reason: &'static str, future: F) -> impl Future<Output = F::Output> {
    future
}

/// Runs an async `#[leak_test]` body (stub).
#[doc(hidden)]
pub fn run_async_test<F: Future>(_name: &'static str, _options: Options, _body: F) -> F::Output {
    unimplemented!("async tests are being written")
}
