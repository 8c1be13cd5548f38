//! The task registry: a record per live tracked task, kept in the scope that owns it.
//!
//! There is no process-wide table of tasks. Each [`Scope`] keeps its live tasks in a few sharded
//! intrusive lists, so spawning and exiting lock one shard of one scope for a few pointer writes,
//! a check of a scope costs what that scope holds (not what the process holds), and a finished
//! task leaves nothing behind: the list links live in the record, which is freed with its last
//! `Arc`, so there is no table to shrink after a burst. The only global structures are the list of
//! live scopes (touched when a scope opens or closes) and the [`exit signal`](ExitSignal) that
//! wakes checks waiting for survivors to finish.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::async_state::AsyncState;
use crate::clock;
use crate::config::{self, CaptureLevel};
use crate::context;
use crate::os;
use crate::state::StateCell;

/// The identity of a tracked task, unique for the life of the process.
///
/// Ids grow monotonically, which is what makes [`Options::ignore_current`](crate::Options::ignore_current)
/// free: a task alive before the options were built has a smaller id than any task spawned after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The number behind the id, as shown in reports (`#17`).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// The id the next spawned task will get: every live task has a smaller one.
pub(crate) fn id_watermark() -> u64 {
    NEXT_TASK_ID.load(Ordering::Relaxed)
}

/// What kind of unit of execution a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// An OS thread spawned through [`leakcheck::thread`](crate::thread).
    Thread,
    /// A future registered through [`task::track`](crate::task::track) or a runtime hook.
    Async,
    /// An OS thread leakcheck did not spawn, found in the operating system's thread list.
    UntrackedThread,
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskKind::Thread => "thread",
            TaskKind::Async => "async task",
            TaskKind::UntrackedThread => "untracked thread",
        })
    }
}

/// Everything leakcheck knows about one live tracked task.
pub(crate) struct TaskRecord {
    pub(crate) id: TaskId,
    pub(crate) kind: TaskKind,
    pub(crate) name: Option<Box<str>>,
    /// Where `spawn`/`track` was called, through `#[track_caller]`.
    pub(crate) spawn_site: &'static Location<'static>,
    /// The type name of the closure or future the task runs, for example
    /// `my_crate::pool::Pool::new::{{closure}}`: names the function that spawned it, for free.
    pub(crate) entry: &'static str,
    /// An unresolved backtrace of the spawn, at capture level `backtrace`.
    /// Shared, so that reports and ignore checks use it without copying its frames.
    pub(crate) spawn_backtrace: Option<Arc<backtrace::Backtrace>>,
    /// The task that spawned this one, if it was a tracked task.
    pub(crate) parent: Option<Arc<TaskRecord>>,
    pub(crate) scope: Arc<Scope>,
    pub(crate) spawned_at: u64,
    pub(crate) state: StateCell,
    /// Async tasks only: waker bookkeeping behind the `scheduled`/`idle`/`lost` states.
    pub(crate) async_state: Option<AsyncState>,
    /// Threads only: the OS identity of the thread, set by the thread itself when it starts.
    pub(crate) os_thread: OnceLock<os::ThreadHandle>,
    /// Threads created without leakcheck's wrappers: how, as the `pthread_create` interposer saw
    /// it. Their `spawn_site` is only a placeholder; the creation stack says where.
    pub(crate) created: Option<Box<Creation>>,
    exited: AtomicBool,
    /// This record's place in its scope's shard list; see [`ShardList`].
    links: LinksCell,
}

impl TaskRecord {
    /// Registers a new task in the current scope, as a child of the current task.
    #[inline]
    pub(crate) fn register(
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_site: &'static Location<'static>,
        entry: &'static str,
    ) -> Arc<TaskRecord> {
        let (scope, parent) = context::spawn_context();
        Self::register_in(scope, parent, kind, name, spawn_site, entry)
    }

    /// Registers a new task in `scope`, as a child of `parent`.
    pub(crate) fn register_in(
        scope: Arc<Scope>,
        parent: Option<Arc<TaskRecord>>,
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_site: &'static Location<'static>,
        entry: &'static str,
    ) -> Arc<TaskRecord> {
        let spawn_backtrace = match scope.capture_level() {
            CaptureLevel::Location => None,
            CaptureLevel::Backtrace => Some(Arc::new(backtrace::Backtrace::new_unresolved())),
        };
        Self::insert_new(
            scope,
            parent,
            kind,
            name,
            spawn_site,
            entry,
            spawn_backtrace,
            None,
        )
    }

    /// Registers a thread being created without leakcheck's wrappers, in `scope`, as a child of
    /// `parent`. Its creation stack stands in for a spawn site and a spawn backtrace.
    #[track_caller]
    pub(crate) fn register_created(
        scope: Arc<Scope>,
        parent: Option<Arc<TaskRecord>>,
        creation: Creation,
    ) -> Arc<TaskRecord> {
        Self::insert_new(
            scope,
            parent,
            TaskKind::Thread,
            None,
            Location::caller(),
            "",
            None,
            Some(Box::new(creation)),
        )
    }

    #[allow(clippy::too_many_arguments)] // The fields of a record, each said once.
    fn insert_new(
        scope: Arc<Scope>,
        parent: Option<Arc<TaskRecord>>,
        kind: TaskKind,
        name: Option<Box<str>>,
        spawn_site: &'static Location<'static>,
        entry: &'static str,
        spawn_backtrace: Option<Arc<backtrace::Backtrace>>,
        created: Option<Box<Creation>>,
    ) -> Arc<TaskRecord> {
        let now = clock::now();
        let record = Arc::new(TaskRecord {
            id: TaskId(NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed)),
            kind,
            name,
            spawn_site,
            entry,
            spawn_backtrace,
            parent,
            scope,
            spawned_at: now,
            state: StateCell::new(kind, now),
            async_state: (kind == TaskKind::Async).then(AsyncState::default),
            os_thread: OnceLock::new(),
            created,
            exited: AtomicBool::new(false),
            links: LinksCell(UnsafeCell::new(Links::default())),
        });
        record.scope.insert(&record);
        record
    }

    /// Marks the task as ended: it leaves its scope and waiting checks are woken. Idempotent, so
    /// that completion and a later drop of the same future count once.
    pub(crate) fn exit(&self) {
        if self.exited.swap(true, Ordering::AcqRel) {
            return;
        }
        self.scope.remove(self);
        exit_signal().notify();
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The ids of this task's ancestors, nearest first.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &TaskRecord> {
        std::iter::successors(self.parent.as_deref(), |p| p.parent.as_deref())
    }
}

impl Drop for TaskRecord {
    fn drop(&mut self) {
        // A long chain of ancestors kept alive only by this record would otherwise be dropped
        // recursively; unlink it iteratively so a deep spawn chain cannot overflow the stack.
        let mut parent = self.parent.take();
        while let Some(p) = parent {
            parent = match Arc::try_unwrap(p) {
                Ok(mut p) => p.parent.take(),
                Err(_) => None,
            };
        }
    }
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

/// What a scope is, for the report's headline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScopeLabel {
    /// A test, named as the test harness names it.
    Test(String),
    /// A thread that is not a test (for example `main`), by its name.
    Thread(String),
    /// A scope opened with [`crate::in_scope`].
    Named(String),
}

impl std::fmt::Display for ScopeLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeLabel::Test(name) => write!(f, "test `{name}`"),
            ScopeLabel::Thread(name) => write!(f, "thread `{name}`"),
            ScopeLabel::Named(name) => write!(f, "scope `{name}`"),
        }
    }
}

/// Shards per scope: enough to keep the spawning threads of one busy scope off each other's
/// locks on the machines tests run on, few enough that an empty scope is cheap to check.
const SHARDS: usize = 8;

/// A record's [`Links`], which only its shard's lock may touch.
struct LinksCell(UnsafeCell<Links>);

// SAFETY: the links are only read or written with the lock of the shard list the record is in
// held (see `ShardList`), so sharing and sending them between threads is serialised by it.
unsafe impl Sync for LinksCell {}
// SAFETY: as above.
unsafe impl Send for LinksCell {}

impl LinksCell {
    fn get(&self) -> *mut Links {
        self.0.get()
    }
}

/// Neighbours in a shard list.
struct Links {
    previous: *const TaskRecord,
    next: *const TaskRecord,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            previous: ptr::null(),
            next: ptr::null(),
        }
    }
}

/// An intrusive doubly-linked list of the live records of one shard of a scope.
///
/// The list owns one strong reference to each record in it (taken with `Arc::into_raw` on
/// insertion, given back on removal), so a listed record is always alive. A record's `links` are
/// touched only with this list's lock held.
struct ShardList {
    head: *const TaskRecord,
}

// SAFETY: the raw pointers are owned strong references to `Send + Sync` records, only followed
// under the shard's lock.
unsafe impl Send for ShardList {}

/// One lock and its list, alone on a cache line; `len` is readable without the lock.
#[repr(align(64))]
struct Shard {
    list: Mutex<ShardList>,
    len: AtomicUsize,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            list: Mutex::new(ShardList { head: ptr::null() }),
            len: AtomicUsize::new(0),
        }
    }

    fn push(&self, record: &Arc<TaskRecord>) {
        let new = Arc::into_raw(Arc::clone(record));
        let mut list = self.list.lock();
        // SAFETY: we hold the lock; `new` and `list.head` (if any) are live records of this list.
        unsafe {
            *(*new).links.get() = Links {
                previous: ptr::null(),
                next: list.head,
            };
            if let Some(head) = list.head.as_ref() {
                (*head.links.get()).previous = new;
            }
        }
        list.head = new;
        self.len
            .store(self.len.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Unlinks `record`, which must be in this list, and gives back the list's reference to it.
    fn unlink(&self, record: &TaskRecord) -> Arc<TaskRecord> {
        let this: *const TaskRecord = record;
        {
            let mut list = self.list.lock();
            // SAFETY: we hold the lock, and `record` and its neighbours are live records of this
            // list (the caller guarantees `record` was pushed here and not yet unlinked).
            unsafe {
                let links = &mut *record.links.get();
                match links.previous.as_ref() {
                    Some(previous) => (*previous.links.get()).next = links.next,
                    None => list.head = links.next,
                }
                if let Some(next) = links.next.as_ref() {
                    (*next.links.get()).previous = links.previous;
                }
                *links = Links::default();
            }
            self.len
                .store(self.len.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        }
        // SAFETY: `push` leaked exactly this reference with `Arc::into_raw`.
        unsafe { Arc::from_raw(this) }
    }

    fn collect_into(&self, tasks: &mut Vec<Arc<TaskRecord>>) {
        let list = self.list.lock();
        let mut cursor = list.head;
        // SAFETY: we hold the lock, so every record reachable from `head` is listed and alive;
        // each one we hand out gets a strong reference of its own.
        while let Some(record) = unsafe { cursor.as_ref() } {
            unsafe { Arc::increment_strong_count(cursor) };
            tasks.push(unsafe { Arc::from_raw(cursor) });
            cursor = unsafe { (*record.links.get()).next };
        }
    }
}

/// A test, or a scope a user opened: the unit a check looks at. Its tasks (and their descendants,
/// however deep) are kept here while they live.
pub(crate) struct Scope {
    pub(crate) id: u64,
    pub(crate) label: ScopeLabel,
    shards: [Shard; SHARDS],
    /// Set by a check with `Options::capture_backtraces`: spawns in this scope record backtraces.
    capture_backtraces: AtomicBool,
}

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// Every open scope, weakly: a scope closes when its last task and its last user are gone.
fn open_scopes() -> &'static Mutex<HashMap<u64, Weak<Scope>>> {
    static SCOPES: OnceLock<Mutex<HashMap<u64, Weak<Scope>>>> = OnceLock::new();
    SCOPES.get_or_init(Default::default)
}

impl Scope {
    pub(crate) fn open(label: ScopeLabel) -> Arc<Scope> {
        let scope = Arc::new(Scope {
            id: NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed),
            label,
            shards: std::array::from_fn(|_| Shard::new()),
            capture_backtraces: AtomicBool::new(false),
        });
        open_scopes()
            .lock()
            .insert(scope.id, Arc::downgrade(&scope));
        scope
    }

    pub(crate) fn capture_backtraces(&self) {
        self.capture_backtraces.store(true, Ordering::Relaxed);
    }

    /// How much to record for a task spawned in this scope.
    pub(crate) fn capture_level(&self) -> CaptureLevel {
        if self.capture_backtraces.load(Ordering::Relaxed) {
            CaptureLevel::Backtrace
        } else {
            config::capture_level()
        }
    }

    fn shard(&self, id: TaskId) -> &Shard {
        &self.shards[(id.0 as usize) % SHARDS]
    }

    fn insert(&self, record: &Arc<TaskRecord>) {
        self.shard(record.id).push(record);
    }

    fn remove(&self, record: &TaskRecord) {
        // The list's reference may be the last one: dropped here, outside the shard's lock.
        drop(self.shard(record.id).unlink(record));
    }

    /// How many tracked tasks of this scope are alive; exact when no task spawns or exits
    /// concurrently, and never reads a lock.
    pub(crate) fn live_count(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.len.load(Ordering::Relaxed))
            .sum()
    }

    /// The live tasks of this scope, in spawn order.
    pub(crate) fn live_tasks(&self) -> Vec<Arc<TaskRecord>> {
        let mut tasks = Vec::with_capacity(self.live_count());
        for shard in &self.shards {
            shard.collect_into(&mut tasks);
        }
        tasks.sort_unstable_by_key(|t| t.id);
        tasks
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let mut scopes = open_scopes().lock();
        // Only remove our own entry: the id is never reused, but the entry may already be gone.
        if scopes.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            scopes.remove(&self.id);
        }
        if scopes.capacity() > 64 && scopes.len() * 4 < scopes.capacity() {
            let keep = scopes.len() * 2;
            scopes.shrink_to(keep);
        }
    }
}

/// Every open scope, for process-wide checks.
pub(crate) fn all_scopes() -> Vec<Arc<Scope>> {
    let mut scopes: Vec<Arc<Scope>> = open_scopes()
        .lock()
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    scopes.sort_unstable_by_key(|s| s.id);
    scopes
}

/// Wakes checks that wait for survivors to finish, the moment any tracked task exits.
///
/// A waiter subscribes, reads the epoch, looks at its survivors, and sleeps only if the epoch has
/// not moved since. An exit bumps the epoch and wakes waiters only if someone is subscribed, so
/// while no check waits an exit costs one load of a rarely written word. That is enough: a
/// waiter subscribes before it reads a shard, and an exit unlinks itself under that shard's lock
/// before it looks, so an exit the waiter could have missed always sees the subscription.
pub(crate) struct ExitSignal {
    epoch: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<Vec<Waker>>,
    condvar: Condvar,
}

pub(crate) fn exit_signal() -> &'static ExitSignal {
    static SIGNAL: ExitSignal = ExitSignal {
        epoch: AtomicU64::new(0),
        waiters: AtomicUsize::new(0),
        lock: Mutex::new(Vec::new()),
        condvar: Condvar::new(),
    };
    &SIGNAL
}

impl ExitSignal {
    /// Called on every tracked exit.
    pub(crate) fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            let wakers = std::mem::take(&mut *self.lock.lock());
            self.condvar.notify_all();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Registers interest in exits until the returned guard is dropped.
    pub(crate) fn subscribe(&self) -> ExitSubscription<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        ExitSubscription { signal: self }
    }
}

/// A registered waiter of the [`ExitSignal`].
pub(crate) struct ExitSubscription<'a> {
    signal: &'a ExitSignal,
}

impl ExitSubscription<'_> {
    /// The current epoch: take it *before* looking at the survivors.
    pub(crate) fn epoch(&self) -> u64 {
        self.signal.epoch.load(Ordering::SeqCst)
    }

    /// Blocks until a task exits after `epoch` was read, or until `deadline`.
    /// Returns `false` when the deadline passed.
    pub(crate) fn wait(&self, epoch: u64, deadline: Instant) -> bool {
        let mut wakers = self.signal.lock.lock();
        while self.epoch() == epoch {
            if self
                .signal
                .condvar
                .wait_until(&mut wakers, deadline)
                .timed_out()
            {
                return self.epoch() != epoch;
            }
        }
        true
    }

    /// Async counterpart of [`wait`](Self::wait): returns `true` (ready) if a task exited after
    /// `epoch`, otherwise registers `waker` to be woken by the next exit and returns `false`.
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_exit(&self, epoch: u64, waker: &Waker) -> bool {
        let mut wakers = self.signal.lock.lock();
        if self.epoch() != epoch {
            return true;
        }
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        false
    }
}

impl Drop for ExitSubscription<'_> {
    fn drop(&mut self) {
        self.signal.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}
