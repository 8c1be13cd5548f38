//! The record of one tracked task: who it is, where it was spawned, its state, its scope.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::departures;
use super::exit_signal::exit_signal;
use super::list::{Departed, Linked, Links, Listed};
use super::once_box::OnceBox;
use super::scope::{Member, Scope, SHARD_RUN};
use super::shared::Shared;
use super::spare_refs;
use crate::clock;
use crate::config::CaptureLevel;
use crate::os::ThreadHandle;
use crate::state::{Blocked, SavedState, StateCell, StateDetails};
use crate::vocab::{TaskId, TaskKind};

/// Ids are handed out in blocks, one thread at a time, so that a spawn takes no shared atomic;
/// a block is a run of ids that share a shard of their scope.
const ID_BLOCK: u64 = SHARD_RUN;

/// The first id of the next block (blocks start at multiples of [`ID_BLOCK`]).
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(ID_BLOCK);

/// Moved by every [`id_watermark`]: a thread whose block predates it takes a fresh block first.
static ID_EPOCH: AtomicU64 = AtomicU64::new(0);

/// This thread's block of ids.
#[derive(Clone, Copy)]
struct IdBlock {
    next: u64,
    end: u64,
    /// The [`ID_EPOCH`] the block was taken in.
    epoch: u64,
}

thread_local! {
    static IDS: Cell<IdBlock> = const { Cell::new(IdBlock { next: 0, end: 0, epoch: 0 }) };
}

/// A new task's id. Ids grow in spawn order on each thread; across threads, a task spawned after
/// [`id_watermark`] returned has an id at least the watermark.
fn next_task_id() -> TaskId {
    let epoch = ID_EPOCH.load(Ordering::SeqCst);
    let id = IDS.try_with(|ids| {
        let block = ids.get();
        if block.next < block.end && block.epoch == epoch {
            ids.set(IdBlock {
                next: block.next + 1,
                ..block
            });
            return block.next;
        }
        let start = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::SeqCst);
        ids.set(IdBlock {
            next: start + 1,
            end: start + ID_BLOCK,
            epoch,
        });
        start
    });
    // In a thread-local destructor, when the block is gone: a block of its own, so that blocks
    // stay aligned to shard runs.
    TaskId(id.unwrap_or_else(|_| NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::SeqCst)))
}

/// An id that every task alive now has less of, and that every task spawned after this returns
/// has at least (the ones spawned meanwhile may fall either side).
///
/// Why it holds with per-thread blocks: a live task's id came from a block taken before the
/// watermark was read, so it is below it. A spawn that happens after this returns sees the epoch
/// this moved (it happens after the move), so it takes a fresh block, and that block starts at
/// or past the watermark read before the move. A block taken in the new epoch was likewise taken
/// after the move, so after the read.
pub(crate) fn id_watermark() -> TaskId {
    let watermark = NEXT_ID_BLOCK.load(Ordering::SeqCst);
    ID_EPOCH.fetch_add(1, Ordering::SeqCst);
    TaskId(watermark)
}

/// How a thread that leakcheck did not spawn itself was created.
pub(crate) struct Creation {
    /// Return addresses of the creator's stack in `pthread_create`, innermost first, capped;
    /// symbolised only when a report needs them.
    pub(crate) stack: Box<[usize]>,
    /// The kernel name the thread started with, which it inherits from its creator; set by the
    /// thread itself. A thread whose name is still this one was never named.
    pub(crate) start_name: OnceLock<[u8; 16]>,
}

/// The type name of what a task runs, on demand: `std::any::type_name::<F>` as a function is
/// half the size of the name it returns.
pub(crate) type EntryName = fn() -> &'static str;

/// Everything leakcheck knows about one live tracked task.
///
/// Spawning and ending an async task write and read the whole record, so its hot part is 104
/// bytes: with its count, 112, which fits a slab block of two cache lines (see `slab`). What only
/// some tasks have lives in [`Side`], made when first needed.
pub(crate) struct TaskRecord {
    pub(crate) id: TaskId,
    /// Where `spawn`/`track` was called, through `#[track_caller]`.
    pub(crate) spawn_site: &'static Location<'static>,
    /// The type name of the closure or future the task runs, for example
    /// `my_crate::pool::Pool::new::{{closure}}`: names the function that spawned it, for free.
    entry: EntryName,
    /// The task that spawned this one, if it was a tracked task.
    pub(crate) parent: Option<Shared<TaskRecord>>,
    /// Offered to the freeing thread's spares when the record is freed (see `spare_refs`), and
    /// dropped there if they refuse it: not dropped with the record's fields.
    pub(crate) scope: ManuallyDrop<Arc<Scope<TaskRecord>>>,
    /// The kind, the spawn time, the state and the wakers.
    pub(crate) state: StateCell,
    side: OnceBox<Side>,
    /// A word for the one holder of a [`Listed`] record's handle, which nothing else writes (the
    /// record's drop checks it is clear): a tracked future keeps its reusable waker here (see
    /// `task::waker`), so that it is one word larger than the future it wraps. Null, or the
    /// holder's; cleared by the holder before it lets the record go.
    owner_word: AtomicPtr<()>,
    /// This record's place in its scope's shard list.
    links: Links<TaskRecord>,
}

/// What only some tasks have: a name, a spawn backtrace, an OS thread, details of a `blocked`
/// state, an executor's claim.
#[derive(Default)]
struct Side {
    name: Option<Box<str>>,
    /// An unresolved backtrace of the spawn, at capture level `backtrace`.
    /// Shared, so that reports and ignore checks use it without copying its frames.
    spawn_backtrace: Option<Arc<backtrace::Backtrace>>,
    /// Threads created without leakcheck's wrappers: how, as the `pthread_create` interposer saw
    /// it. Their `spawn_site` is only a placeholder; the creation stack says where.
    created: Option<Creation>,
    /// Threads only: the OS identity of the thread, set by the thread itself when it starts.
    os_thread: OnceLock<ThreadHandle>,
    state: StateDetails,
}

// SAFETY: `links` is a field of the record's own, returned every time and used by nothing but
// the shard list.
unsafe impl Linked for TaskRecord {
    fn links(&self) -> &Links<Self> {
        &self.links
    }

    #[inline]
    fn departed(this: Departed<Self>) {
        departures::unlink_later(this);
    }
}

impl Member for TaskRecord {
    fn id(&self) -> TaskId {
        self.id
    }
}

impl TaskRecord {
    /// Registers a new task in `scope`, as a child of `parent`.
    pub(crate) fn register_in(
        scope: Arc<Scope<TaskRecord>>,
        parent: Option<Shared<TaskRecord>>,
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_site: &'static Location<'static>,
        entry: EntryName,
    ) -> Shared<TaskRecord> {
        let side = Side::at_spawn(kind, name, Self::captured_backtrace(&scope), None);
        Self::insert(|| Self::new(scope, parent, kind, spawn_site, entry, side))
    }

    /// Like [`register_in`](Self::register_in), for a task with one owner (a tracked future):
    /// the owner reaches the record through its scope's reference, with no count of its own,
    /// and ends it with [`exit_in_place`](Self::exit_in_place).
    pub(crate) fn register_listed_in(
        scope: Arc<Scope<TaskRecord>>,
        parent: Option<Shared<TaskRecord>>,
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_site: &'static Location<'static>,
        entry: EntryName,
    ) -> Listed<TaskRecord> {
        let side = Side::at_spawn(kind, name, Self::captured_backtrace(&scope), None);
        let listed = Listed::new_in(
            || Self::new(scope, parent, kind, spawn_site, entry, side),
            |record| record.scope.shard(record.id),
        );
        exit_signal().note_spawn();
        listed
    }

    /// Ends a task registered with [`register_listed_in`](Self::register_listed_in), keeping
    /// the record in the handle: it leaves its scope (with no lock: see `departures`), `ending`
    /// runs, and waiting checks are woken (last, as their wakers may panic). `false`, and nothing
    /// runs, if it had ended already.
    pub(crate) fn exit_in_place(
        listed: &mut Listed<TaskRecord>,
        ending: impl FnOnce(&TaskRecord),
    ) -> bool {
        let exited = listed.depart();
        if exited {
            ending(listed);
            exit_signal().notify();
        }
        exited
    }

    /// The word the holder of `listed`, a record's one handle, keeps in it (see `owner_word`):
    /// by `&mut`, so that one user at a time has it.
    pub(crate) fn owner_word(listed: &mut Listed<TaskRecord>) -> &AtomicPtr<()> {
        &listed.owner_word
    }

    /// A backtrace of here to keep (at spawn, or as a task blocks), at `scope`'s capture level.
    #[inline]
    fn captured_backtrace(scope: &Scope<TaskRecord>) -> Option<Arc<backtrace::Backtrace>> {
        match scope.capture_level() {
            CaptureLevel::Location => None,
            CaptureLevel::Backtrace => Some(Arc::new(backtrace::Backtrace::new_unresolved())),
        }
    }

    /// Registers a thread being created without leakcheck's wrappers, in `scope`, as a child of
    /// `parent`. Its creation stack stands in for a spawn site and a spawn backtrace.
    #[cfg(leakcheck_interpose)]
    #[track_caller]
    pub(crate) fn register_created(
        scope: Arc<Scope<TaskRecord>>,
        parent: Option<Shared<TaskRecord>>,
        creation: Creation,
    ) -> Shared<TaskRecord> {
        let site = Location::caller();
        let side = Side::at_spawn(TaskKind::Thread, None, None, Some(creation));
        Self::insert(|| Self::new(scope, parent, TaskKind::Thread, site, || "", side))
    }

    /// A new record of the plain thread whose ended record is `ended`, in `scope`: under the
    /// same parent, created the same way and at the same time. For a thread a harness took over
    /// and gives up (see `plain_threads::Disowned`). `None` if `ended` is not a plain thread's
    /// that has started.
    #[cfg(leakcheck_interpose)]
    pub(crate) fn relist_created(
        ended: &TaskRecord,
        scope: Arc<Scope<TaskRecord>>,
    ) -> Option<Shared<TaskRecord>> {
        let (created, thread) = (ended.created()?, ended.os_thread()?);
        let creation = Creation {
            stack: created.stack.clone(),
            start_name: created.start_name.clone(),
        };
        let side = Side::boxed(None, None, Some(creation));
        let _ = side.os_thread.set(*thread);
        let parent = ended.parent.clone();
        let (site, spawned) = (ended.spawn_site, ended.spawned_at(clock::now()));
        Some(Self::insert(|| {
            Self::new_at(
                (scope, parent),
                TaskKind::Thread,
                site,
                || "",
                Some(side),
                spawned,
            )
        }))
    }

    /// Lists `record` in its scope, which then holds a reference to it until it exits.
    #[inline]
    fn insert(make: impl FnOnce() -> TaskRecord) -> Shared<TaskRecord> {
        let record = Shared::new_with(make);
        record.scope.insert(&record);
        exit_signal().note_spawn();
        record
    }

    #[inline(always)] // Into `Shared::new_with`'s closure, so that the record is built in place.
    fn new(
        scope: Arc<Scope<TaskRecord>>,
        parent: Option<Shared<TaskRecord>>,
        kind: TaskKind,
        spawn_site: &'static Location<'static>,
        entry: EntryName,
        side: Option<Box<Side>>,
    ) -> TaskRecord {
        let now = clock::now();
        Self::new_at((scope, parent), kind, spawn_site, entry, side, now)
    }

    /// [`new`](Self::new), spawned at the clock reading `spawned`.
    #[inline(always)]
    fn new_at(
        (scope, parent): (Arc<Scope<TaskRecord>>, Option<Shared<TaskRecord>>),
        kind: TaskKind,
        spawn_site: &'static Location<'static>,
        entry: EntryName,
        side: Option<Box<Side>>,
        spawned: u64,
    ) -> TaskRecord {
        TaskRecord {
            id: next_task_id(),
            spawn_site,
            entry,
            parent,
            scope: ManuallyDrop::new(scope),
            state: StateCell::new(kind, spawned),
            side: side.map_or_else(OnceBox::new, OnceBox::from_box),
            owner_word: AtomicPtr::new(std::ptr::null_mut()),
            links: Links::default(),
        }
    }

    pub(crate) fn kind(&self) -> TaskKind {
        self.state.kind()
    }

    /// The type name of the closure or future the task runs.
    pub(crate) fn entry(&self) -> &'static str {
        (self.entry)()
    }

    /// When the task was spawned, on [`clock`] (to about a millisecond), given a later reading.
    pub(crate) fn spawned_at(&self, now: u64) -> u64 {
        self.state.spawned_at(now)
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.side.get()?.name.as_deref()
    }

    pub(crate) fn spawn_backtrace(&self) -> Option<&Arc<backtrace::Backtrace>> {
        self.side.get()?.spawn_backtrace.as_ref()
    }

    /// How a thread leakcheck did not spawn itself was created; `None` for every other task.
    pub(crate) fn created(&self) -> Option<&Creation> {
        self.side.get()?.created.as_ref()
    }

    /// The OS identity of a thread, once it has started.
    pub(crate) fn os_thread(&self) -> Option<&ThreadHandle> {
        self.side.get()?.os_thread.get()
    }

    /// Called by a thread as it starts: its OS identity. A second call changes nothing.
    pub(crate) fn set_os_thread(&self, thread: ThreadHandle) {
        let _ = self.side().os_thread.set(thread);
    }

    /// The details of the task's state, made on first use.
    pub(crate) fn state_details(&self) -> &StateDetails {
        &self.side().state
    }

    /// The details of the task's state, if it ever needed any.
    #[inline]
    pub(crate) fn state_details_if_any(&self) -> Option<&StateDetails> {
        Some(&self.side.get()?.state)
    }

    /// The details of the current `blocked` state, if any.
    pub(crate) fn blocked(&self) -> Option<Blocked> {
        self.state_details_if_any()?.blocked()
    }

    /// Enters `blocked` at `now`, returning what to restore when the blocking call returns.
    pub(crate) fn block(&self, blocked: Blocked, now: u64) -> SavedState {
        self.state.block(self.state_details(), blocked, now)
    }

    /// Leaves `blocked` at `now`, back to what [`block`](Self::block) saved.
    pub(crate) fn unblock(&self, saved: SavedState, now: u64) {
        self.state.unblock(self.state_details(), saved, now);
    }

    /// A poll of this async task returned `Pending` at `now`: settles the state it waits in.
    pub(crate) fn end_pending_poll(&self, now: u64) {
        self.state
            .end_pending_poll(self.state_details_if_any(), now);
    }

    fn side(&self) -> &Side {
        self.side.get_or_init(Box::default)
    }

    pub(crate) fn has_exited(&self) -> bool {
        !self.links.is_listed()
    }

    /// This task's ancestors, nearest first.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &TaskRecord> {
        std::iter::successors(self.parent.as_deref(), |p| p.parent.as_deref())
    }

    /// The stack to keep as this task blocks, at its scope's capture level.
    pub(crate) fn blocking_stack(&self) -> Option<Arc<backtrace::Backtrace>> {
        Self::captured_backtrace(&self.scope)
    }
}

impl Shared<TaskRecord> {
    /// Marks the task as ended: it leaves its scope and waiting checks are woken. Idempotent, so
    /// that completion and a later drop of the same future count once.
    ///
    /// A method of the reference, not of the record: leaving the scope gives back the list's
    /// reference, which may be the last but the caller's.
    ///
    /// Being listed is being alive: the list's own lock decides which exit counts, so an exit
    /// costs no atomic of its own.
    pub(crate) fn exit(&self) {
        if self.scope.remove(self) {
            exit_signal().notify();
        }
    }
}

impl Drop for TaskRecord {
    fn drop(&mut self) {
        // SAFETY: taken once, here, and the field is not used again. First, so that the scope
        // is dropped even if the check below panics.
        let scope = unsafe { ManuallyDrop::take(&mut self.scope) };
        drop(spare_refs::keep_scope(scope));
        debug_assert!(
            self.owner_word.get_mut().is_null(),
            "the holder of a record's handle clears its word before letting the record go"
        );
        // A long chain of ancestors kept alive only by this record would otherwise be dropped
        // recursively; unlink it iteratively so a deep spawn chain cannot overflow the stack.
        let mut parent = self.parent.take().and_then(spare_refs::keep_parent);
        while let Some(p) = parent {
            parent = match Shared::try_unwrap(p) {
                Ok(mut p) => p.parent.take(),
                Err(_) => None,
            };
        }
    }
}

impl Side {
    /// What a task being spawned keeps out of line, if anything: a thread always has a side (for
    /// its OS identity), an async task only with a name or a spawn backtrace.
    #[inline]
    fn at_spawn(
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_backtrace: Option<Arc<backtrace::Backtrace>>,
        created: Option<Creation>,
    ) -> Option<Box<Side>> {
        let needed = kind != TaskKind::Async || name.is_some() || spawn_backtrace.is_some();
        needed.then(|| Side::boxed(name, spawn_backtrace, created))
    }

    #[inline(never)] // Off the path of a plain tracked future, which has no side.
    fn boxed(
        name: Option<Box<str>>,
        spawn_backtrace: Option<Arc<backtrace::Backtrace>>,
        created: Option<Creation>,
    ) -> Box<Side> {
        Box::new(Side {
            name,
            spawn_backtrace,
            created,
            ..Side::default()
        })
    }
}

/// Ends a task when dropped, which also covers unwinding and a closure dropped unrun.
pub(crate) struct ExitOnDrop(pub(crate) Shared<TaskRecord>);

impl Drop for ExitOnDrop {
    fn drop(&mut self) {
        self.0.exit();
    }
}
