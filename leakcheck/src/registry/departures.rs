//! The records of exited tasks that had a `Listed` handle (tracked futures, and tasks the tokio
//! hooks registered), unlinked from their scopes in batches per thread, so that an exit takes no
//! lock.
//!
//! A shard's lock is a locked instruction to take, which waits for the thread's pending stores to
//! reach the cache: with one at spawn and one at exit, the two were the largest cost left of
//! tracking a task. A task's exit now only marks its record departed (no reader of its list sees
//! it from then on), and when the record's handle is dropped the record joins its thread's batch
//! here. A full batch is unlinked a run of records at a time, each run from one shard under one
//! lock; records spawned one after another are in one shard (see `scope::SHARD_RUN`), so a batch
//! of exits in spawn order takes a lock or two.
//!
//! Until its batch is unlinked, a departed record keeps its memory and its references (its
//! scope and its parent), and its shard counts it in its length. A thread keeps at most
//! [`BATCH`] less one, and unlinks them all when it ends.

use std::cell::Cell;
use std::ptr;

use super::list::{Departed, Unlinking};
use super::record::TaskRecord;

/// How many departed records a thread gathers before unlinking them.
pub(super) const BATCH: usize = 32;

/// One thread's departed records, oldest first.
struct Batch {
    records: [Cell<Option<Departed<TaskRecord>>>; BATCH],
    len: Cell<usize>,
}

thread_local! {
    static BATCH_OF_THREAD: Batch = const {
        Batch { records: [const { Cell::new(None) }; BATCH], len: Cell::new(0) }
    };
}

impl Batch {
    #[inline]
    fn push(&self, departed: Departed<TaskRecord>) {
        let len = self.len.get();
        self.records[len].set(Some(departed));
        self.len.set(len + 1);
        if len + 1 == BATCH {
            self.unlink_all();
        }
    }

    /// Unlinks every record of the batch, which starts again empty: records freed meanwhile may
    /// drop handles of departed records, which join it.
    fn unlink_all(&self) {
        let mut taken = [const { None }; BATCH];
        let len = self.len.replace(0);
        for (record, slot) in self.records[..len].iter().zip(&mut taken) {
            *slot = record.take();
        }
        unlink(&taken[..len]);
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.unlink_all();
    }
}

/// Takes over the record of a departed task whose handle is dropped: unlinked with its thread's
/// next batch, or now if the thread's batch is gone (the thread is ending).
#[inline]
pub(super) fn unlink_later(departed: Departed<TaskRecord>) {
    let mut departed = Some(departed);
    let _ = BATCH_OF_THREAD.try_with(|batch| batch.push(departed.take().expect("pushed once")));
    if let Some(departed) = departed {
        unlink(&[Some(departed)]);
    }
}

/// Unlinks this thread's departed records now, so that their scopes' lengths and their counts
/// are exact again (for tests that read them).
#[cfg(test)]
pub(crate) fn unlink_now() {
    let _ = BATCH_OF_THREAD.try_with(Batch::unlink_all);
}

/// Unlinks `departed`, holding one shard's lock at a time for each run of records in it, and
/// gives back their references as `departed` is dropped, once no lock is held (that may free a
/// shard).
fn unlink(departed: &[Option<Departed<TaskRecord>>]) {
    let mut held: Option<Unlinking<'_, TaskRecord>> = None;
    for record in departed.iter().flatten() {
        let shard = record.get().scope.shard(record.get().id);
        if !held
            .as_ref()
            .is_some_and(|held| ptr::eq(held.shard(), shard))
        {
            // Let go of one lock before taking the next: two held at once could deadlock.
            drop(held.take());
            held = Some(shard.lock_for_unlinking());
        }
        let unlinked = held.as_mut().is_some_and(|held| held.unlink(record));
        debug_assert!(unlinked, "a departed record is linked in its scope's shard");
    }
}
