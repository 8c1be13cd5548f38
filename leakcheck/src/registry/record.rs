//! The record of one tracked task: who it is, where it was spawned, its state, its scope.

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::exit_signal::exit_signal;
use super::list::{Linked, Links};
use super::scope::{Member, Scope};
use crate::clock;
use crate::config::CaptureLevel;
use crate::os::ThreadHandle;
use crate::state::StateCell;
use crate::vocab::{TaskId, TaskKind};

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// The id the next spawned task will get: every live task has a smaller one.
pub(crate) fn id_watermark() -> TaskId {
    TaskId(NEXT_TASK_ID.load(Ordering::Relaxed))
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
    pub(crate) scope: Arc<Scope<TaskRecord>>,
    pub(crate) spawned_at: u64,
    pub(crate) state: StateCell,
    /// Threads only: the OS identity of the thread, set by the thread itself when it starts.
    pub(crate) os_thread: OnceLock<ThreadHandle>,
    /// Threads created without leakcheck's wrappers: how, as the `pthread_create` interposer saw
    /// it. Their `spawn_site` is only a placeholder; the creation stack says where.
    pub(crate) created: Option<Box<Creation>>,
    exited: AtomicBool,
    /// This record's place in its scope's shard list.
    links: Links<TaskRecord>,
}

// SAFETY: `links` is a field of the record's own, returned every time and used by nothing but
// the shard list.
unsafe impl Linked for TaskRecord {
    fn links(&self) -> &Links<Self> {
        &self.links
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
    #[cfg(leakcheck_interpose)]
    #[track_caller]
    pub(crate) fn register_created(
        scope: Arc<Scope<TaskRecord>>,
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
        scope: Arc<Scope<TaskRecord>>,
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
            os_thread: OnceLock::new(),
            created,
            exited: AtomicBool::new(false),
            links: Links::default(),
        });
        record.scope.insert(&record);
        record
    }

    /// Marks the task as ended: it leaves its scope and waiting checks are woken. Idempotent, so
    /// that completion and a later drop of the same future count once.
    ///
    /// Takes the `Arc`, not `&self`: leaving the scope gives back the list's reference, which may
    /// be the last but the caller's.
    pub(crate) fn exit(self: &Arc<Self>) {
        if self.exited.swap(true, Ordering::AcqRel) {
            return;
        }
        self.scope.remove(self);
        exit_signal().notify();
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// This task's ancestors, nearest first.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &TaskRecord> {
        std::iter::successors(self.parent.as_deref(), |p| p.parent.as_deref())
    }

    /// The stack to keep as this task blocks, at its scope's capture level.
    pub(crate) fn blocking_stack(&self) -> Option<Arc<backtrace::Backtrace>> {
        match self.scope.capture_level() {
            CaptureLevel::Location => None,
            CaptureLevel::Backtrace => Some(Arc::new(backtrace::Backtrace::new_unresolved())),
        }
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

/// Ends a task when dropped, which also covers unwinding and a closure dropped unrun.
pub(crate) struct ExitOnDrop(pub(crate) Arc<TaskRecord>);

impl Drop for ExitOnDrop {
    fn drop(&mut self) {
        self.0.exit();
    }
}
