//! A scope: a test, or a part of one a user named; the unit a check looks at. Its live tasks (and
//! their descendants, however deep) are kept here, in a few shards of the intrusive list.
//!
//! Generic over its members only so that it need not name the task record, which names it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::list::{Linked, Shard};
use super::shared::Shared;
use crate::config::{self, CaptureLevel};
use crate::vocab::TaskId;

/// Shards per scope: enough to keep the spawning threads of one busy scope off each other's
/// locks on the machines tests run on, few enough that an empty scope is cheap to check.
const SHARDS: usize = 8;

/// How many ids in a row share a shard: a thread's block of ids (see `record::next_task_id`), so
/// that a thread that spawns and ends tasks keeps to one shard's lock and cache line, instead of
/// taking turns on all of them with every other thread.
pub(crate) const SHARD_RUN: u64 = 64;

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

/// A member of a scope: listed by its id.
pub(crate) trait Member: Linked {
    fn id(&self) -> TaskId;
}

/// The count behind [`Scope::count_executor_root`], on a cache line of its own: the workers of
/// a multi-thread runtime write it at every spawn and exit, and every spawn reads the flags
/// beside it.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
#[repr(align(128))]
struct ExecutorRoots(AtomicUsize);

/// A scope and its live members.
pub(crate) struct Scope<T: Member> {
    pub(crate) id: u64,
    pub(crate) label: ScopeLabel,
    shards: [Shard<T>; SHARDS],
    /// Set by a check with `Options::capture_backtraces`: spawns in this scope record backtraces.
    capture_backtraces: AtomicBool,
    /// Members an executor integration counts as tasks of its own (only stable tokio's test
    /// runtime does: see [`Scope::count_executor_root`]).
    #[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
    executor_roots: ExecutorRoots,
    /// Set once a check looks at this scope (see [`Scope::mark_checked`]).
    checked: AtomicBool,
}

impl<T: Member> Scope<T> {
    /// An empty scope; `registry::open_scope` also makes it findable by process-wide checks.
    pub(crate) fn new(id: u64, label: ScopeLabel) -> Scope<T> {
        Scope {
            id,
            label,
            shards: std::array::from_fn(|_| Shard::new()),
            capture_backtraces: AtomicBool::new(false),
            executor_roots: ExecutorRoots(AtomicUsize::new(0)),
            checked: AtomicBool::new(false),
        }
    }

    /// Says that a check looks at this scope: what is created in it stays in it, even a thread
    /// named like a test (see `context`).
    pub(crate) fn mark_checked(&self) {
        self.checked.store(true, Ordering::Relaxed);
    }

    /// Whether a check has looked at this scope.
    pub(crate) fn is_checked(&self) -> bool {
        self.checked.load(Ordering::Relaxed)
    }

    pub(crate) fn capture_backtraces(&self) {
        self.capture_backtraces.store(true, Ordering::Relaxed);
    }

    /// How much to record for a task spawned in this scope.
    #[inline]
    pub(crate) fn capture_level(&self) -> CaptureLevel {
        if self.capture_backtraces.load(Ordering::Relaxed) {
            CaptureLevel::Backtrace
        } else {
            config::capture_level()
        }
    }

    /// The shard a member with this id is kept in.
    pub(crate) fn shard(&self, id: TaskId) -> &Shard<T> {
        &self.shards[(id.0 / SHARD_RUN) as usize % SHARDS]
    }

    pub(crate) fn insert(&self, member: &Shared<T>) {
        self.shard(member.id()).push(member);
    }

    /// Takes `member` out of the scope, if it is in it; says whether it was.
    pub(crate) fn remove(&self, member: &Shared<T>) -> bool {
        // The list's reference may be the last but the caller's: dropped here, outside the lock.
        self.shard(member.id()).remove(member).is_some()
    }

    /// How many members this scope's lists link, without a lock: those alive, and departed
    /// ones not unlinked yet (see `departures`). Exact when no task spawns or exits concurrently
    /// and no thread holds departed members of it.
    pub(crate) fn live_count(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    /// The live members of this scope, in id order: spawn order on each thread.
    pub(crate) fn live_tasks(&self) -> Vec<Shared<T>> {
        let mut tasks = Vec::with_capacity(self.live_count());
        for shard in &self.shards {
            // A shard lists its newest member first: reversed, each shard is an ascending run,
            // which the sort below merges in a few passes instead of sorting from scratch.
            let start = tasks.len();
            shard.collect_into(&mut tasks);
            tasks[start..].reverse();
        }
        // Keys read once each: a comparison must not chase a record pointer.
        tasks.sort_by_cached_key(|t| t.id());
        tasks
    }
}

/// The executor's count, apart from the rest: only stable tokio uses it.
#[cfg_attr(not(all(feature = "tokio", not(tokio_unstable))), allow(dead_code))]
impl<T: Member> Scope<T> {
    /// Counts a member as a task of the executor that runs this scope's tasks, until
    /// [`Scope::uncount_executor_root`]: tokio's test runtime counts the roots
    /// `leakcheck::tokio::spawn` spawned on it this way, so that the future it spawns need not
    /// keep a word of its own for the count.
    pub(crate) fn count_executor_root(&self) {
        self.executor_roots.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back a count of [`Scope::count_executor_root`].
    pub(crate) fn uncount_executor_root(&self) {
        let before = self.executor_roots.0.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "an executor root uncounted twice");
    }

    /// How many members are counted as the executor's tasks now.
    pub(crate) fn executor_roots(&self) -> usize {
        self.executor_roots.0.load(Ordering::Relaxed)
    }
}
