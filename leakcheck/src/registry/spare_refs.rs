//! References a thread keeps spare between the records it frees and the ones it spawns next, so
//! that a burst of tasks spawned in one scope by one parent changes neither count atomically.
//!
//! Every record holds a counted reference to its scope and one to its parent. Adding one at spawn
//! and subtracting it at free is a locked instruction each, and a locked instruction waits for
//! the thread's pending stores to reach the cache: in a burst of spawns, each writing a new task
//! to memory that is not in cache yet, those were a quarter of what tracking a tokio task cost
//! on a current-thread runtime. Instead, a record freed on a thread leaves its references to the
//! thread, as spares, and the next spawn there takes them, with no atomic instruction either way.
//!
//! A thread keeps spares of one scope and of one parent: the ones it last spawned for, or, while it
//! has none, the ones of the records it frees (a runtime's worker frees tasks that another thread
//! spawned). It gives them back (a subtraction each) when it spawns for another, once the spawn has
//! let go of the thread's context ([`settle`]), and when it ends. So a scope or a parent's record
//! can outlive the tasks that used it until then, which nothing but its count can tell (tests that
//! read counts settle them with `give_back` first); a thread keeps at most one scope and one parent
//! alive so, and what the parent keeps: its ancestors, their scopes and what they hold.
//!
//! All of this module's `unsafe` is the taking and giving of counts that its [`Counted`] types
//! leak to it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::directory::TaskScope;
use super::record::TaskRecord;
use super::shared::Shared;

/// A counted reference that can leave its count behind as a raw pointer, and be made again from
/// one: `Arc` and `Shared`.
trait Counted: Clone {
    type Target;

    fn as_ptr(this: &Self) -> *const Self::Target;

    /// The pointer, keeping the reference's count.
    fn into_raw(this: Self) -> *const Self::Target;

    /// # Safety
    ///
    /// `pointer` came from [`into_raw`](Self::into_raw) of a reference not taken back yet.
    unsafe fn from_raw(pointer: *const Self::Target) -> Self;
}

impl<T> Counted for Arc<T> {
    type Target = T;

    fn as_ptr(this: &Self) -> *const T {
        Arc::as_ptr(this)
    }

    fn into_raw(this: Self) -> *const T {
        Arc::into_raw(this)
    }

    unsafe fn from_raw(pointer: *const T) -> Self {
        // SAFETY: per the contract.
        unsafe { Arc::from_raw(pointer) }
    }
}

impl<T> Counted for Shared<T> {
    type Target = T;

    fn as_ptr(this: &Self) -> *const T {
        Shared::as_ptr(this)
    }

    fn into_raw(this: Self) -> *const T {
        Shared::into_raw(this)
    }

    unsafe fn from_raw(pointer: *const T) -> Self {
        // SAFETY: per the contract.
        unsafe { Shared::from_raw(pointer) }
    }
}

/// A thread's spare references to one value.
struct Spares<P: Counted> {
    /// The value they reference; only a key while `count` is zero (the value may be gone, and
    /// another made at its address: the counts taken and kept from then on are that one's).
    of: Cell<*const P::Target>,
    /// How many references to `of` were leaked here, with [`Counted::into_raw`].
    count: Cell<usize>,
    /// Spares of the value before `of`, put aside when a spawn moved to another, until
    /// [`settle`] gives them back: that may free a scope or a whole chain of records, which the
    /// spawn must not do while it holds the thread's context.
    retired_of: Cell<*const P::Target>,
    retired_count: Cell<usize>,
    marker: PhantomData<P>,
}

impl<P: Counted> Spares<P> {
    const fn none() -> Spares<P> {
        Spares {
            of: Cell::new(std::ptr::null()),
            count: Cell::new(0),
            retired_of: Cell::new(std::ptr::null()),
            retired_count: Cell::new(0),
            marker: PhantomData,
        }
    }

    /// Another reference to what `reference` references: a spare if there is one. Spawning for
    /// another value than the spares' puts them aside, for [`settle`] to give back, and keeps
    /// spares of this one from now on.
    #[inline]
    fn share(&self, reference: &P) -> P {
        let pointer = P::as_ptr(reference);
        if self.of.get() == pointer {
            if let Some(left) = self.count.get().checked_sub(1) {
                self.count.set(left);
                // SAFETY: a spare is a reference to `of` leaked here with `into_raw`, taken back
                // once: the count says it is still here, and now it is not.
                return unsafe { P::from_raw(self.of.get()) };
            }
        } else {
            if self.retired_count.get() != 0 {
                // Not settled since the last move (a spawn whose caller could not settle): given
                // back here rather than lost.
                self.give_back_retired();
            }
            self.retired_of.set(self.of.replace(pointer));
            self.retired_count.set(self.count.replace(0));
        }
        P::clone(reference)
    }

    /// Keeps `reference` as a spare if it references the spares' value, or if there are none
    /// (a thread that frees tasks others spawn, as a runtime's worker does, keeps theirs); gives
    /// it back otherwise.
    #[inline]
    fn keep(&self, reference: P) -> Option<P> {
        let pointer = P::as_ptr(&reference);
        if pointer != self.of.get() {
            if self.count.get() != 0 {
                return Some(reference);
            }
            self.of.set(pointer);
        }
        let _leaked = P::into_raw(reference);
        self.count.set(self.count.get() + 1);
        None
    }

    /// Drops the spares, those put aside first: what they kept alive may be dropped now, on
    /// this thread.
    fn give_back(&self) {
        self.give_back_retired();
        Self::drop_counted(&self.of, &self.count);
    }

    /// Drops the spares put aside by a spawn for another value.
    fn give_back_retired(&self) {
        Self::drop_counted(&self.retired_of, &self.retired_count);
    }

    /// Drops the `count` references to `of` leaked here. Counted down before each drop, and
    /// `of` read again after it: a drop may free a record whose own references are kept here.
    fn drop_counted(of: &Cell<*const P::Target>, count: &Cell<usize>) {
        while let Some(left) = count.get().checked_sub(1) {
            count.set(left);
            // SAFETY: each of the `count` references to `of` was leaked here with `into_raw`
            // (moved aside with its count, if retired), and is taken back once.
            drop(unsafe { P::from_raw(of.get()) });
        }
    }
}

/// A thread's spares: of the scope it last spawned in, and of the task it last spawned from.
struct ThreadSpares {
    scopes: Spares<Arc<TaskScope>>,
    parents: Spares<Shared<TaskRecord>>,
}

impl Drop for ThreadSpares {
    fn drop(&mut self) {
        self.parents.give_back();
        self.scopes.give_back();
    }
}

thread_local! {
    static SPARES: ThreadSpares = const {
        ThreadSpares { scopes: Spares::none(), parents: Spares::none() }
    };
}

/// Another reference to `scope`, for a task spawned in it on this thread.
#[inline]
pub(crate) fn share_scope(scope: &Arc<TaskScope>) -> Arc<TaskScope> {
    share(scope_spares, scope)
}

/// Another reference to `parent`, for a task it spawns on this thread.
#[inline]
pub(crate) fn share_parent(parent: &Shared<TaskRecord>) -> Shared<TaskRecord> {
    share(parent_spares, parent)
}

/// Another reference to the parent at `pointer`, for a task it spawns on this thread.
///
/// # Safety
///
/// As for [`Shared::clone_from_raw`].
#[inline]
pub(crate) unsafe fn share_parent_from_raw(pointer: *const TaskRecord) -> Shared<TaskRecord> {
    // SAFETY: per the contract; the reference rebuilt here is borrowed, not dropped.
    let parent = ManuallyDrop::new(unsafe { Shared::from_raw(pointer) });
    share_parent(&parent)
}

/// The scope reference of a record being freed on this thread: kept as a spare, or handed back
/// to drop.
#[inline]
pub(crate) fn keep_scope(scope: Arc<TaskScope>) -> Option<Arc<TaskScope>> {
    keep(scope_spares, scope)
}

/// The parent reference of a record being freed on this thread: kept as a spare, or handed back
/// to drop.
#[inline]
pub(crate) fn keep_parent(parent: Shared<TaskRecord>) -> Option<Shared<TaskRecord>> {
    keep(parent_spares, parent)
}

fn scope_spares(spares: &ThreadSpares) -> &Spares<Arc<TaskScope>> {
    &spares.scopes
}

fn parent_spares(spares: &ThreadSpares) -> &Spares<Shared<TaskRecord>> {
    &spares.parents
}

/// Another reference to what `reference` references, from this thread's spares that `which`
/// picks; a new count once the thread's spares are gone.
#[inline]
fn share<P: Counted>(which: fn(&ThreadSpares) -> &Spares<P>, reference: &P) -> P {
    SPARES
        .try_with(|spares| which(spares).share(reference))
        .unwrap_or_else(|_| P::clone(reference))
}

/// Keeps `reference` in this thread's spares that `which` picks, if it is theirs; otherwise (or
/// once the thread's spares are gone) hands it back, to be dropped outside: it may be the last.
#[inline]
fn keep<P: Counted>(which: fn(&ThreadSpares) -> &Spares<P>, reference: P) -> Option<P> {
    let mut reference = Some(reference);
    let _ = SPARES.try_with(|spares| {
        if let Some(kept) = reference.take() {
            reference = which(spares).keep(kept);
        }
    });
    reference
}

/// Gives back the spares a spawn on this thread put aside, moving to another scope or parent;
/// called by the spawn once it no longer holds the thread's context.
#[inline]
pub(crate) fn settle() {
    let _ = SPARES.try_with(|spares| {
        if spares.scopes.retired_count.get() != 0 || spares.parents.retired_count.get() != 0 {
            spares.parents.give_back_retired();
            spares.scopes.give_back_retired();
        }
    });
}

/// Gives this thread's spares back, so that counts read next are exact.
#[cfg(test)]
pub(crate) fn give_back() {
    let _ = SPARES.try_with(|spares| {
        spares.parents.give_back();
        spares.scopes.give_back();
    });
}

#[cfg(test)]
mod tests {
    use std::panic::Location;

    use super::*;
    use crate::registry::{open_scope, ScopeLabel};
    use crate::vocab::TaskKind;

    fn scope(name: &str) -> Arc<TaskScope> {
        open_scope(ScopeLabel::Named(name.into()))
    }

    /// A task spawned on this thread in `scope` by `parent`, as `context` spawns one.
    fn spawn(scope: &Arc<TaskScope>, parent: &Shared<TaskRecord>) -> Shared<TaskRecord> {
        let (scope, parent) = (share_scope(scope), share_parent(parent));
        settle();
        TaskRecord::register_in(
            scope,
            Some(parent),
            TaskKind::Thread,
            None,
            Location::caller(),
            || "child",
        )
    }

    fn end(task: Shared<TaskRecord>) {
        task.exit();
        drop(task);
    }

    fn counts(scope: &Arc<TaskScope>, parent: &Shared<TaskRecord>) -> (usize, usize) {
        (Arc::strong_count(scope), Shared::strong_count(parent))
    }

    #[test]
    fn a_burst_freed_on_its_thread_leaves_its_references_to_the_next_burst() {
        let scope = scope("burst");
        let parent = TaskRecord::register_in(
            Arc::clone(&scope),
            None,
            TaskKind::Thread,
            None,
            Location::caller(),
            || "parent",
        );
        // Ours and the parent's; ours and the list's.
        assert_eq!(counts(&scope, &parent), (2, 2));

        let burst: Vec<_> = (0..3).map(|_| spawn(&scope, &parent)).collect();
        assert_eq!(counts(&scope, &parent), (5, 5));
        burst.into_iter().for_each(end);
        assert_eq!(counts(&scope, &parent), (5, 5), "three of each kept spare");

        let burst: Vec<_> = (0..4).map(|_| spawn(&scope, &parent)).collect();
        assert_eq!(counts(&scope, &parent), (6, 6), "three taken, one added");
        burst.into_iter().for_each(end);

        give_back();
        assert_eq!(counts(&scope, &parent), (2, 2));
    }

    #[test]
    fn spawning_for_another_scope_and_parent_gives_the_spares_back() {
        let (first, second) = (scope("first"), scope("second"));
        let register = |scope: &Arc<TaskScope>| {
            let site = Location::caller();
            TaskRecord::register_in(Arc::clone(scope), None, TaskKind::Thread, None, site, || "")
        };
        let (one, other) = (register(&first), register(&second));
        end(spawn(&first, &one));
        assert_eq!(counts(&first, &one), (3, 3), "one of each kept spare");

        let (scope, parent) = (share_scope(&second), share_parent(&other));
        assert_eq!(
            counts(&first, &one),
            (3, 3),
            "put aside while the spawn holds the context"
        );
        settle();
        assert_eq!(counts(&first, &one), (2, 2), "given back");
        let site = Location::caller();
        let child =
            TaskRecord::register_in(scope, Some(parent), TaskKind::Thread, None, site, || "");
        end(child);
        give_back();
        assert_eq!(counts(&second, &other), (2, 2));
    }

    #[test]
    fn a_thread_gives_its_spares_back_as_it_ends() {
        let scope = scope("ending thread");
        let parent = TaskRecord::register_in(
            Arc::clone(&scope),
            None,
            TaskKind::Thread,
            None,
            Location::caller(),
            || "parent",
        );
        // Joined, not scoped: a scoped thread counts as done before its thread-locals are
        // dropped.
        let (theirs, their_parent) = (Arc::clone(&scope), Shared::clone(&parent));
        std::thread::spawn(move || {
            end(spawn(&theirs, &their_parent));
            assert_eq!(
                counts(&theirs, &their_parent),
                (4, 4),
                "with one spare each"
            );
        })
        .join()
        .unwrap();
        assert_eq!(counts(&scope, &parent), (2, 2));
    }

    #[test]
    fn a_thread_that_frees_what_others_spawn_keeps_their_references() {
        let scope = scope("freed elsewhere");
        let parent = TaskRecord::register_in(
            Arc::clone(&scope),
            None,
            TaskKind::Thread,
            None,
            Location::caller(),
            || "parent",
        );
        let burst: Vec<_> = (0..3).map(|_| spawn(&scope, &parent)).collect();
        give_back(); // None are spare here: what follows is the freeing thread's.
        let (theirs, their_parent) = (Arc::clone(&scope), Shared::clone(&parent));
        std::thread::spawn(move || {
            burst.into_iter().for_each(end);
            assert_eq!(
                counts(&theirs, &their_parent),
                (6, 6),
                "ours, the parent's or the list's, theirs, and three spares each"
            );
        })
        .join()
        .unwrap();
        assert_eq!(counts(&scope, &parent), (2, 2), "given back as it ended");
    }

    #[test]
    fn a_parent_kept_only_by_spares_is_freed_when_they_are_given_back() {
        let (parents, children) = (scope("parents"), scope("children"));
        let parent = TaskRecord::register_in(
            Arc::clone(&parents),
            None,
            TaskKind::Thread,
            None,
            Location::caller(),
            || "parent",
        );
        end(spawn(&children, &parent));
        end(parent);
        assert_eq!(Arc::strong_count(&parents), 2, "ours, and the parent's");

        give_back();
        assert_eq!(Arc::strong_count(&parents), 1, "the parent is freed");
    }
}
