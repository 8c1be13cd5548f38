//! Waker bookkeeping of tracked futures: what tells `scheduled`, `idle` and `lost` apart.
//! (Owned by the async-tasks work; see `task.rs`.)

/// Per-task waker state of a tracked future.
#[derive(Default)]
pub(crate) struct AsyncState {}

/// The state a report shows for `record`: for futures, `idle` with no live waker reads `lost`.
pub(crate) fn observe(record: &crate::registry::TaskRecord) -> crate::snapshot::Observed {
    crate::snapshot::observe_plain(record)
}
