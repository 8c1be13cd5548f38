//! The `waiting` annotation: marks an `.await` as blocking, so that the task polling it shows
//! `blocked` in a named reason while the future is pending.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock;
use crate::context;
use crate::registry::{Shared, TaskRecord};
use crate::state::{Blocked, SavedState};
use crate::vocab::{TaskKind, TaskState};

/// Marks an `.await` as blocking, so that a report shows the task `blocked` in `reason` at this
/// call site, and since when, instead of merely `idle`.
///
/// Use it around an await that can wait indefinitely on something the task cannot see: a channel
/// send or receive, a lock, a response.
///
/// ```
/// use std::future::Future;
///
/// async fn call(response: impl Future<Output = u32>) -> u32 {
///     // A report shows a task stuck here as `blocked in "response"` at this line.
///     leakcheck::waiting("response", response).await
/// }
/// ```
///
/// It marks the tracked task whose poll it is in (a [`Tracked`](crate::task::Tracked) future, a task spawned with
/// [`leakcheck::tokio::spawn`](crate::tokio), or one a leakcheck test runtime saw spawn) from the
/// first time the future returns `Pending` until it completes or is dropped. Nested, the
/// innermost `waiting` is the one reported. Driven on a tracked thread (by a `block_on`), it marks
/// the thread as blocked. Anywhere else it is the future itself.
#[track_caller]
pub fn waiting<F: Future>(reason: &'static str, future: F) -> Waiting<F> {
    Waiting {
        future,
        reason,
        site: Location::caller(),
        mark: None,
    }
}

/// The future returned by [`waiting`](crate::waiting).
#[must_use = "futures do nothing unless awaited"]
pub struct Waiting<F> {
    /// Structurally pinned, as in `Tracked`.
    future: F,
    reason: &'static str,
    site: &'static Location<'static>,
    mark: Option<Mark>,
}

/// The task a [`Waiting`] marked as blocked, and what to restore.
struct Mark {
    task: Shared<TaskRecord>,
    saved: SavedState,
}

impl<F> Waiting<F> {
    /// Marks the current task as blocked here, unless an inner `waiting` already did.
    fn enter(&mut self) {
        let Some(task) = context::current_task() else {
            return;
        };
        let blocked = Blocked {
            reason: self.reason,
            site: self.site,
            stack: task.blocking_stack(),
        };
        if task.kind() == TaskKind::Async {
            let details = task.state_details();
            if details.blocked_since().is_some() {
                return;
            }
            let now = clock::now();
            let poll_started = task.state.last_polled(now);
            let saved = task.block(blocked, now);
            details.set_blocked_since(Some(now));
            // Still inside the poll: `running` until it ends, then `blocked`.
            task.state
                .set(TaskState::Running, poll_started.unwrap_or(now));
            self.mark = Some(Mark { task, saved });
        } else {
            // A thread driving the future: blocked for as long as the future is pending.
            // Already blocked by an inner `waiting` (or a `blocking` call): the innermost
            // reason stands, as for async tasks.
            if task.state.load().0 == TaskState::Blocked {
                return;
            }
            let saved = task.block(blocked, clock::now());
            self.mark = Some(Mark { task, saved });
        }
    }

    /// Undoes [`enter`](Self::enter).
    fn leave(&mut self) {
        let Some(Mark { task, saved }) = self.mark.take() else {
            return;
        };
        if task.kind() != TaskKind::Async {
            task.unblock(saved, clock::now());
            return;
        }
        task.state_details().set_blocked_since(None);
        task.unblock(saved, clock::now());
        let in_its_poll =
            context::with_current_task(|current| current.is_some_and(|c| std::ptr::eq(c, &*task)));
        if !in_its_poll {
            // Dropped between polls: the task is still pending (or ending), not running.
            task.end_pending_poll(clock::now());
        }
    }
}

impl<F: Future> Future for Waiting<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned, as in `Tracked::poll`; the other fields are
        // not pinned and `Drop` does not move `future`.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match future.poll(cx) {
            Poll::Ready(output) => {
                this.leave();
                Poll::Ready(output)
            }
            Poll::Pending => {
                if this.mark.is_none() {
                    this.enter();
                }
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for Waiting<F> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl<F> fmt::Debug for Waiting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("reason", &self.reason)
            .field("site", &self.site)
            .field("blocking", &self.mark.is_some())
            .finish_non_exhaustive()
    }
}
