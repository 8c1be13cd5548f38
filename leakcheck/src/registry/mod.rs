//! The task registry: a record per live tracked task, kept in the scope that owns it.
//!
//! There is no process-wide table of tasks. Each scope keeps its live tasks in a few sharded
//! intrusive lists, so spawning locks one shard of one scope for a few pointer writes, an exit
//! (of a tracked future or hook-driven task) marks its record with a store and leaves the
//! unlinking to a batch, a check of a scope costs what that scope holds (not what the process
//! holds), and a finished task leaves nothing behind: the list links live in the record, which
//! is freed with its last reference. The only global structures are the directory of open
//! scopes (touched when a scope opens) and the exit signal that wakes checks waiting for
//! survivors to finish.
//!
//! The registry knows nothing of what is current on a thread, of async tasks, executors, reports
//! or checks. All of its `unsafe` is in [`list`], [`shard_lock`], [`shared`], [`slab`],
//! [`once_box`] and [`spare_refs`], but for `record`'s taking of its scope reference as it is
//! dropped.
//!
//! - `list`: the sharded intrusive list (`unsafe`, behind a safe API);
//! - `shard_lock`: the lock of one shard, released with a store (`unsafe`, behind a safe API);
//! - `shared`: the counted reference to a record, `Arc` on slab blocks (`unsafe`, behind a safe
//!   API);
//! - `slab`: blocks for records, from a page per thread (`unsafe`, behind a safe API);
//! - `once_box`: what a record keeps out of line, set once, in one word (`unsafe`, behind a safe
//!   API);
//! - `spare_refs`: the references a thread keeps between the records it frees and the ones it
//!   spawns (`unsafe`; one `unsafe fn`, for the context's borrowed task);
//! - `scope`: a scope and its shards;
//! - `record`: one task's record, its id, its exit;
//! - `departures`: exited tasks' records, unlinked in batches per thread;
//! - `directory`: the open scopes, for process-wide checks;
//! - `exit_signal`: wakes checks when any task exits.

mod departures;
mod directory;
mod exit_signal;
mod list;
mod once_box;
mod record;
mod scope;
mod shard_lock;
mod shared;
mod slab;
mod spare_refs;

pub(crate) use directory::{all_scopes, open_scope, TaskScope as Scope};
pub(crate) use exit_signal::{exit_signal, ExitSubscription};
pub(crate) use list::Listed;
pub(crate) use record::{id_watermark, EntryName, ExitOnDrop, TaskRecord};
// Made only by the `pthread_create` interposer's front end (`plain_threads`).
#[cfg(test)]
pub(crate) use departures::unlink_now as unlink_departures;
#[cfg(leakcheck_interpose)]
pub(crate) use record::Creation;
pub(crate) use scope::ScopeLabel;
#[cfg(feature = "tokio")]
pub(crate) use shard_lock::ShardLock;
pub(crate) use shared::Shared;
#[cfg(test)]
pub(crate) use spare_refs::give_back as give_back_spares;
pub(crate) use spare_refs::{
    settle as settle_spares, share_parent, share_parent_from_raw, share_scope,
};

#[cfg(test)]
mod tests {
    use std::panic::Location;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::vocab::TaskKind;

    fn register(scope: &Arc<Scope>, parent: Option<Shared<TaskRecord>>) -> Shared<TaskRecord> {
        TaskRecord::register_in(
            Arc::clone(scope),
            parent,
            TaskKind::Thread,
            None,
            Location::caller(),
            || "test",
        )
    }

    #[test]
    fn a_record_lives_in_its_scope_until_it_exits() {
        let scope = open_scope(ScopeLabel::Named("records".into()));
        let first = register(&scope, None);
        let second = register(&scope, Some(Shared::clone(&first)));
        let ids: Vec<_> = scope.live_tasks().iter().map(|t| t.id).collect();
        assert_eq!(ids, [first.id, second.id], "in spawn order");
        assert_eq!(
            second.ancestors().map(|a| a.id).collect::<Vec<_>>(),
            [first.id]
        );

        first.exit();
        first.exit(); // idempotent
        assert!(first.has_exited());
        assert_eq!(scope.live_count(), 1);
        second.exit();
        assert_eq!(scope.live_count(), 0);
        assert_eq!(
            Shared::strong_count(&second),
            1,
            "the list gave its reference back"
        );
    }

    #[test]
    fn an_exit_through_a_reference_from_the_list_gives_the_lists_reference_back() {
        let scope = open_scope(ScopeLabel::Named("last".into()));
        let record = register(&scope, None);
        let listed = scope.live_tasks().pop().unwrap();
        drop(record);
        // Only `listed` and the list hold it now; the exit, through `listed`, releases the
        // list's reference while `listed` keeps the record alive.
        assert_eq!(Shared::strong_count(&listed), 2);
        listed.exit();
        assert_eq!(Shared::strong_count(&listed), 1);
    }

    #[test]
    fn ids_grow_past_the_watermark() {
        let scope = open_scope(ScopeLabel::Named("ids".into()));
        // This thread takes a block of ids before the watermark, and another thread too.
        let before = register(&scope, None);
        let other_thread = {
            let scope = Arc::clone(&scope);
            std::thread::spawn(move || register(&scope, None))
                .join()
                .unwrap()
        };
        let watermark = id_watermark();
        assert!(before.id < watermark && other_thread.id < watermark);
        let after = register(&scope, None);
        assert!(
            after.id >= watermark,
            "a block of the old epoch is not used"
        );
        let from_another_thread = {
            let scope = Arc::clone(&scope);
            std::thread::spawn(move || register(&scope, None))
                .join()
                .unwrap()
        };
        assert!(from_another_thread.id >= watermark);
        let next = register(&scope, None);
        assert!(next.id > after.id, "ids grow on a thread");
        for record in [before, other_thread, after, from_another_thread, next] {
            record.exit();
        }
    }

    #[test]
    fn a_threads_tasks_in_a_row_share_a_shard() {
        let scope = open_scope(ScopeLabel::Named("runs".into()));
        // A check elsewhere (`id_watermark`) may move this thread to a new block of ids midway;
        // then the run is tried again.
        for _ in 0..10 {
            id_watermark(); // The next spawn here takes a fresh block of ids.
            let records: Vec<_> = (0..10).map(|_| register(&scope, None)).collect();
            records.iter().for_each(|r| r.exit());
            let ids: Vec<_> = records.iter().map(|r| r.id.0).collect();
            if ids.windows(2).any(|pair| pair[1] != pair[0] + 1) {
                continue;
            }
            assert_eq!(
                ids[0] % scope::SHARD_RUN,
                0,
                "a fresh block starts a shard run: {ids:?}"
            );
            let first = scope.shard(records[0].id);
            assert!(
                records
                    .iter()
                    .all(|r| std::ptr::eq(scope.shard(r.id), first)),
                "ids {ids:?} span shards"
            );
            return;
        }
        panic!("never ten ids in a row");
    }

    #[test]
    fn a_deep_spawn_chain_drops_without_recursion() {
        let scope = open_scope(ScopeLabel::Named("chain".into()));
        let mut parent = None;
        for _ in 0..if cfg!(miri) { 50 } else { 10_000 } {
            let child = register(&scope, parent.take());
            child.exit();
            parent = Some(child);
        }
        drop(parent);
        assert_eq!(scope.live_count(), 0);
    }

    #[test]
    fn threads_register_and_exit_concurrently() {
        let scope = open_scope(ScopeLabel::Named("threads".into()));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let scope = Arc::clone(&scope);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        let record = register(&scope, None);
                        assert!(scope.live_tasks().iter().any(|t| t.id == record.id));
                        record.exit();
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(scope.live_count(), 0);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_is_sized_to_the_byte() {
        // With its count, 112 bytes of a slab block's 120 (`Shared` checks that it fits).
        assert_eq!(std::mem::size_of::<TaskRecord>(), 104);
    }

    #[test]
    fn what_only_some_tasks_have_is_kept_aside_until_needed() {
        let scope = open_scope(ScopeLabel::Named("side".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let future = crate::context::register(TaskKind::Async, None, Location::caller(), || "f");
        assert!(future.state_details_if_any().is_none(), "nothing to keep");
        assert!(future.blocked().is_none());
        let named = crate::context::register(
            TaskKind::Async,
            Some("named".into()),
            Location::caller(),
            || "f",
        );
        assert_eq!(named.name(), Some("named"));
        let thread = register(&scope, None);
        assert!(thread.os_thread().is_none(), "not started");
        if !cfg!(miri) {
            // (Reads `/proc`, which Miri does not emulate.)
            thread.set_os_thread(crate::os::ThreadHandle::current());
            assert!(thread.os_thread().is_some());
        }
        assert_eq!(thread.entry(), "test");
        for record in [future, named, thread] {
            record.exit();
        }
    }

    fn spawn_listed() -> Listed<TaskRecord> {
        crate::context::register_listed(TaskKind::Async, None, Location::caller(), || "f")
    }

    fn exit_listed(mut listed: Listed<TaskRecord>) {
        assert!(TaskRecord::exit_in_place(&mut listed, |_| ()));
        assert!(listed.has_exited(), "kept by its handle after it ended");
        assert!(
            !TaskRecord::exit_in_place(&mut listed, |_| ()),
            "ended once"
        );
        drop(listed);
    }

    #[test]
    fn an_ended_records_block_is_reused_by_the_next_spawn_on_its_thread_once_unlinked() {
        let scope = open_scope(ScopeLabel::Named("reuse".into()));
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        let spawn = spawn_listed;
        let end = |listed| {
            exit_listed(listed);
            unlink_departures();
        };
        let first = spawn();
        let address = first.as_ptr();
        end(first);
        let second = spawn();
        assert_eq!(second.as_ptr(), address, "built in the freed block");
        assert_eq!(second.kind(), TaskKind::Async);
        assert!(!second.has_exited(), "listed again");
        // A record someone else still holds is not reused: it stays theirs.
        let shared = second.share();
        end(second);
        let third = spawn();
        assert_ne!(third.as_ptr(), address);
        assert!(shared.has_exited());
        assert_eq!(scope.live_count(), 1);
        end(third);
        assert_eq!(scope.live_count(), 0);
    }

    #[test]
    fn exits_leave_their_scope_at_once_and_are_unlinked_in_batches_and_at_thread_end() {
        let scope = open_scope(ScopeLabel::Named("batches".into()));
        let in_thread = Arc::clone(&scope);
        std::thread::spawn(move || {
            let _in_scope = crate::context::enter(Arc::clone(&in_thread), None);
            // Whatever earlier tests on this thread left is unlinked: the batch starts empty.
            unlink_departures();
            let first = spawn_listed();
            let kept = first.share();
            exit_listed(first);
            assert!(in_thread.live_tasks().is_empty(), "no reader sees it");
            assert_eq!(in_thread.live_count(), 1, "still linked, in the batch");
            assert_eq!(Shared::strong_count(&kept), 2, "the list's and `kept`");
            for _ in 1..departures::BATCH {
                exit_listed(spawn_listed());
            }
            assert_eq!(in_thread.live_count(), 0, "a full batch is unlinked");
            assert_eq!(Shared::strong_count(&kept), 1);
            let last = spawn_listed();
            let kept = last.share();
            exit_listed(last);
            assert_eq!(in_thread.live_count(), 1);
            kept
        })
        .join()
        .map(|kept| assert_eq!(Shared::strong_count(&kept), 1, "unlinked at thread end"))
        .unwrap();
        assert_eq!(scope.live_count(), 0);
    }

    #[test]
    fn a_waiter_that_saw_a_task_alive_is_woken_by_its_departure_or_sees_it() {
        // An exit that only marks its record departed races with the waiter's look; whichever
        // way the race goes, the waiter must not sleep through it. (Other tests' exits move the
        // epoch too, which can only hide a failure here, never make one.)
        let scope = open_scope(ScopeLabel::Named("departure race".into()));
        for _ in 0..if cfg!(miri) { 4 } else { 200 } {
            let (sender, receiver) = std::sync::mpsc::channel();
            let in_thread = Arc::clone(&scope);
            let exiting = std::thread::spawn(move || {
                let _in_scope = crate::context::enter(in_thread, None);
                let mut listed = spawn_listed();
                sender.send(listed.share()).unwrap();
                assert!(TaskRecord::exit_in_place(&mut listed, |_| ()));
            });
            let survivor = [receiver.recv().unwrap()];
            let subscription = exit_signal().subscribe();
            let epoch = subscription.epoch();
            if !survivor[0].has_exited() && !subscription.exited_unseen(&survivor) {
                let far = Instant::now() + Duration::from_secs(60);
                assert!(
                    subscription.wait(epoch, far),
                    "woken by the exit, not the deadline"
                );
            }
            exiting.join().unwrap();
        }
    }

    #[test]
    fn a_spawn_while_a_check_waits_is_counted_for_it() {
        // What tells a waiter that a scan may have missed a child spawned into a shard it had
        // read already.
        let scope = open_scope(ScopeLabel::Named("spawns".into()));
        let subscription = exit_signal().subscribe();
        let before = subscription.spawns();
        let record = register(&scope, None);
        assert!(subscription.spawns() > before, "a shared record's spawn");
        let after_one = subscription.spawns();
        let _in_scope = crate::context::enter(Arc::clone(&scope), None);
        exit_listed(spawn_listed());
        assert!(subscription.spawns() > after_one, "a listed record's spawn");
        record.exit();
    }

    #[test]
    fn an_exit_wakes_a_subscribed_waiter() {
        let scope = open_scope(ScopeLabel::Named("signal".into()));
        let record = register(&scope, None);
        let subscription = exit_signal().subscribe();
        let epoch = subscription.epoch();
        let exiting = std::thread::spawn(move || record.exit());
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(
            subscription.wait(epoch, far),
            "woken by the exit, not the deadline"
        );
        exiting.join().unwrap();
    }
}
