//! The sharded intrusive list that holds a scope's live tasks: all of the list's pointer `unsafe`
//! is here, behind a safe API (the registry's other `unsafe` is the lock in `shard_lock`, and the
//! records' memory in `shared` and `slab`).
//!
//! Each element carries its own [`Links`]. A [`Shard`] owns one strong reference to each element
//! in it (taken with `Shared::into_raw` on insertion, given back on removal), so a listed element
//! is always alive, and an element's links are only touched with its shard's lock held.
//!
//! An element is listed one of two ways. [`Shard::push`] lists a [`Shared`] element, which anyone
//! holding a reference may [`remove`](Shard::remove). [`Shard::push_new`] lists a new element and
//! returns a [`Listed`] handle instead of a reference: the list's reference is then the only one
//! its owner needs (no count of its own, no claim on a shared element to check).
//!
//! Such an element leaves its list in two steps, so that a task's exit takes no lock. Its handle
//! marks it [departed](Listed::depart), with a store: from then on, no reader of the list sees
//! it, but it stays linked, and its reference stays the list's, which the handle goes on using.
//! When the handle is dropped, the element's type takes that reference as a [`Departed`] and
//! unlinks it when it likes ([`Linked::departed`]): a task record batches its thread's departures
//! and unlinks each run of them from a shard under one lock ([`Shard::lock_for_unlinking`]).
//!
//! Provenance: every pointer the list follows or gives back to `Shared` comes from
//! `Shared::into_raw` or `Shared::as_ptr`, never from a shared reference to the element, so it
//! may reach the element's count (Stacked and Tree Borrows both accept this; Miri checks it).

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::shard_lock::{ShardGuard, ShardLock};
use super::shared::Shared;

/// An element's neighbours in the one list it may be in, which only that list's lock may touch.
pub(crate) struct Links<T> {
    /// The id of the shard the element is in (0: none). Written only under that shard's lock, so
    /// a shard that holds its lock and reads its own id here knows the element is its own. An id,
    /// not an address: a shard's address can be reused by another shard once it is gone.
    owner: AtomicUsize,
    cell: UnsafeCell<Neighbours<T>>,
}

struct Neighbours<T> {
    previous: *const T,
    next: *const T,
}

impl<T> Default for Links<T> {
    fn default() -> Self {
        Links {
            owner: AtomicUsize::new(NO_SHARD),
            cell: UnsafeCell::new(Neighbours {
                previous: ptr::null(),
                next: ptr::null(),
            }),
        }
    }
}

impl<T> Links<T> {
    /// Whether the element is in a list, for its readers: set by `push`, cleared by `remove`
    /// under the lock, or by its handle's `depart` (the element stays linked a while longer).
    pub(crate) fn is_listed(&self) -> bool {
        is_present(self.owner.load(Ordering::Acquire))
    }
}

/// Whether an element whose owner reads `owner` is in a list, for its readers.
fn is_present(owner: usize) -> bool {
    owner != NO_SHARD && owner & DEPARTED == 0
}

// SAFETY: the neighbours are only read or written with the lock of the shard the element is in
// held (see `Shard`), so sharing and sending them between threads is serialised by that lock; the
// pointers themselves are to `Send + Sync` elements.
unsafe impl<T: Send + Sync> Sync for Links<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Links<T> {}

/// An element of a [`Shard`].
///
/// # Safety
///
/// `links` must return the same `Links` every time for one element, which live as long as the
/// element, are distinct from every other element's, and are used by nothing else: the list
/// relies on them being this element's own.
pub(crate) unsafe trait Linked: Send + Sync + Sized {
    /// This element's links.
    fn links(&self) -> &Links<Self>;

    /// Takes over a departed element whose handle is dropped: it is still linked, and `this`
    /// holds the list's reference to it, which unlinking it gives back (dropping `this` after
    /// [`Unlinking::unlink`]). Dropped still linked, it stays so for good.
    fn departed(this: Departed<Self>);
}

/// The head of one shard's list, only read or written under the shard's lock.
struct Head<T> {
    first: *const T,
}

// SAFETY: the pointer is an owned strong reference to a `Send + Sync` element, only followed
// under the shard's lock.
unsafe impl<T: Send + Sync> Send for Head<T> {}

/// The owner id of an element that is in no shard.
const NO_SHARD: usize = 0;

/// Marks, in an element's owner, a shard that only a [`Listed`] handle may take the element out
/// of. Shard ids never reach this bit.
const HANDLE_OWNED: usize = 1 << (usize::BITS - 1);

/// Marks, in the owner of an element a [`Listed`] handle holds, an element that has departed:
/// still linked, but in the list for no reader. Shard ids never reach this bit either.
const DEPARTED: usize = 1 << (usize::BITS - 2);

/// Shard ids, unique for the life of the process (a `usize` of them cannot run out: each shard
/// is a 64-byte allocation).
static NEXT_SHARD_ID: AtomicUsize = AtomicUsize::new(NO_SHARD + 1);

/// One lock and its list, alone on a cache line; `len` is readable without the lock.
#[repr(align(64))]
pub(crate) struct Shard<T: Linked> {
    head: ShardLock<Head<T>>,
    len: AtomicUsize,
    id: usize,
}

impl<T: Linked> Shard<T> {
    pub(crate) fn new() -> Shard<T> {
        Shard {
            head: ShardLock::new(Head { first: ptr::null() }),
            len: AtomicUsize::new(0),
            id: NEXT_SHARD_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// How many elements the shard links, departed ones not yet unlinked included; exact when
    /// nothing is pushed, removed or unlinked concurrently.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// What an element's owner reads while a [`Listed`] handle holds it in this shard.
    fn handle_owned_id(&self) -> usize {
        self.id | HANDLE_OWNED
    }

    /// What an element's owner reads once it has departed from this shard, until unlinked.
    fn departed_id(&self) -> usize {
        self.handle_owned_id() | DEPARTED
    }

    /// Links `new` (a reference the list now owns, to an element in no list) at the head.
    ///
    /// # Safety
    ///
    /// The lock is held (`head` is its guard's), and `new` came from `Shared::into_raw` of an
    /// element whose owner the caller just set to this shard.
    unsafe fn link_at_head(&self, head: &mut Head<T>, new: *const T) {
        // SAFETY: per the contract, `new` is alive (the list owns a reference to it) and was in
        // no list, so its links are ours; `head.first`, if any, is a live element of this list.
        unsafe {
            *(*new).links().cell.get() = Neighbours {
                previous: ptr::null(),
                next: head.first,
            };
            if let Some(first) = head.first.as_ref() {
                (*first.links().cell.get()).previous = new;
            }
        }
        head.first = new;
        self.len.store(self.len() + 1, Ordering::Relaxed);
    }

    /// Unlinks `element`, which is in this list, and clears its owner.
    ///
    /// # Safety
    ///
    /// The lock is held (`head` is its guard's), and `element`'s owner says it is in this shard.
    unsafe fn unlink(&self, head: &mut Head<T>, element: &T) {
        // SAFETY: per the contract, `element` is in this list, so it and its neighbours are
        // live elements whose links this lock guards.
        unsafe {
            let links = &mut *element.links().cell.get();
            match links.previous.as_ref() {
                Some(previous) => (*previous.links().cell.get()).next = links.next,
                None => head.first = links.next,
            }
            if let Some(next) = links.next.as_ref() {
                (*next.links().cell.get()).previous = links.previous;
            }
            links.previous = ptr::null();
            links.next = ptr::null();
        }
        element.links().owner.store(NO_SHARD, Ordering::Release);
        self.len.store(self.len() - 1, Ordering::Relaxed);
    }

    /// Lists a new element and hands back the one handle that reaches it through the list's
    /// own reference, and that alone may take it out again.
    #[cfg(test)]
    pub(crate) fn push_new(&self, element: T) -> Listed<T> {
        self.push_new_raw(Shared::into_raw(Shared::new(element)))
    }

    /// [`push_new`](Self::push_new) of the element at `new`, fresh from `Shared::into_raw`.
    fn push_new_raw(&self, new: *const T) -> Listed<T> {
        let mut head = self.head.lock();
        // No claim to contest: nobody else has seen the element yet.
        // SAFETY: per `push_new_raw`'s callers, `new` was made by `Shared::into_raw` just now and
        // is in no list.
        unsafe {
            (*new)
                .links()
                .owner
                .store(self.handle_owned_id(), Ordering::Release);
            self.link_at_head(&mut head, new);
        }
        drop(head);
        Listed {
            // SAFETY: `Shared::into_raw` never returns null.
            element: unsafe { ptr::NonNull::new_unchecked(new.cast_mut()) },
        }
    }

    /// Adds `element`; the shard keeps a strong reference to it.
    ///
    /// # Panics
    ///
    /// If `element` is in a shard already.
    pub(crate) fn push(&self, element: &Shared<T>) {
        let mut head = self.head.lock();
        let claimed = element.links().owner.compare_exchange(
            NO_SHARD,
            self.id,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        assert!(claimed.is_ok(), "an element is pushed to a second list");
        let new = Shared::into_raw(Shared::clone(element));
        // SAFETY: we hold the lock; `new` is a reference the list now owns, to an element we
        // just claimed for this shard.
        unsafe { self.link_at_head(&mut head, new) };
    }

    /// Unlinks `element` and gives back the shard's reference to it; `None` if it is not in
    /// this shard, or if a [`Listed`] handle holds it (only that handle may take it out).
    pub(crate) fn remove(&self, element: &Shared<T>) -> Option<Shared<T>> {
        let this = Shared::as_ptr(element);
        {
            let mut head = self.head.lock();
            if element.links().owner.load(Ordering::Acquire) != self.id {
                return None;
            }
            // SAFETY: we hold the lock, and `element` is in this list (its owner is this shard,
            // which only this lock sets and clears).
            unsafe { self.unlink(&mut head, element) };
        }
        // SAFETY: `push` leaked exactly one reference to this element with `Shared::into_raw`,
        // not given back until now (the owner was still this shard), and `this` comes from
        // `Shared::as_ptr` of the same element, so it may reach its count.
        Some(unsafe { Shared::from_raw(this) })
    }

    /// Appends a strong reference to every element of the shard to `out`, but for departed ones.
    pub(crate) fn collect_into(&self, out: &mut Vec<Shared<T>>) {
        let head = self.head.lock();
        let mut cursor = head.first;
        while !cursor.is_null() {
            // SAFETY: we hold the lock, so every element reachable from `first` is linked and
            // alive (the list owns a reference to it); `cursor` came from `Shared::into_raw`, and
            // the reference made here is the one the new `Shared` owns.
            unsafe {
                let links = (*cursor).links();
                if is_present(links.owner.load(Ordering::Acquire)) {
                    out.push(Shared::clone_from_raw(cursor));
                }
                cursor = (*links.cell.get()).next;
            }
        }
    }

    /// Takes the lock, to unlink departed elements of this shard.
    pub(crate) fn lock_for_unlinking(&self) -> Unlinking<'_, T> {
        Unlinking {
            shard: self,
            head: self.head.lock(),
        }
    }
}

/// A shard's lock, held to unlink departed elements from it; see [`Shard::lock_for_unlinking`].
pub(crate) struct Unlinking<'a, T: Linked> {
    shard: &'a Shard<T>,
    head: ShardGuard<'a, Head<T>>,
}

impl<T: Linked> Unlinking<'_, T> {
    /// The shard whose lock this is.
    pub(crate) fn shard(&self) -> &Shard<T> {
        self.shard
    }

    /// Unlinks `departed` if it is in this shard, and says whether it was. Dropping `departed`
    /// then gives its reference back: after this lock is released, as that may free the shard.
    pub(crate) fn unlink(&mut self, departed: &Departed<T>) -> bool {
        let element = departed.get();
        if element.links().owner.load(Ordering::Acquire) != self.shard.departed_id() {
            return false;
        }
        // SAFETY: we hold the lock, and the owner says the element is linked in this shard.
        unsafe { self.shard.unlink(&mut self.head, element) };
        true
    }
}

impl<T: Linked> Drop for Shard<T> {
    /// Gives back the references of elements still listed, so that they are neither leaked nor
    /// left claiming a shard that no longer exists. An element a [`Listed`] handle holds keeps
    /// the list's reference (the handle reaches the element through it), and so does a departed
    /// element (its [`Departed`] holds it): each is left as it is, and no shard will ever follow
    /// its links again, its owner being this shard's id.
    fn drop(&mut self) {
        let handle_owned = self.handle_owned_id();
        let mut cursor = std::mem::replace(&mut self.head.get_mut().first, ptr::null());
        while !cursor.is_null() {
            // SAFETY: `&mut self` excludes every other user of this list, so every element
            // reachable from `first` is linked and alive; `cursor` came from `Shared::into_raw` in
            // `push` or `push_new_raw`. A `push`ed element's reference is given back here exactly
            // once, after its links have been read and cleared; a handle's, or a departed
            // element's (its `Departed` holds it), is not touched.
            unsafe {
                let links = (*cursor).links();
                let next = (*links.cell.get()).next;
                if links.owner.load(Ordering::Acquire) & !DEPARTED != handle_owned {
                    let element = Shared::from_raw(cursor);
                    let links = &mut *element.links().cell.get();
                    links.previous = ptr::null();
                    links.next = ptr::null();
                    element.links().owner.store(NO_SHARD, Ordering::Release);
                }
                cursor = next;
            }
        }
    }
}

/// An element listed by [`Shard::push_new`]: reaches it through the list's reference, and is
/// the only way to take it out of its list, so that reference outlives every use of the handle.
///
/// The handle takes its element out by [`depart`](Self::depart)ing it: the element stays linked,
/// and the handle goes on reaching it through the list's reference, until the handle is dropped
/// and hands that reference to [`Linked::departed`]. Dropping a handle whose element has not
/// departed leaves the element listed for good.
#[must_use = "an element whose handle is dropped without departing stays listed for good"]
pub(crate) struct Listed<T: Linked> {
    /// From `Shared::into_raw`: one strong reference, the list's, which the list keeps for the
    /// handle while it lives.
    element: ptr::NonNull<T>,
}

// SAFETY: the handle holds a strong reference to a `Send + Sync` element (`Linked` requires
// both), which the thread that drops it hands on (`T::departed`), and the right to depart it,
// which any thread may exercise by `&mut`: a `Shared<T>` is `Send` on the same terms.
unsafe impl<T: Linked> Send for Listed<T> {}
// SAFETY: through `&Listed` only shared access to the element is possible, as through
// `&Shared<T>`; departing takes the handle by `&mut`, and dropping it by value.
unsafe impl<T: Linked> Sync for Listed<T> {}

impl<T: Linked> std::ops::Deref for Listed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the list holds a strong reference for the handle for as long as the handle
        // lives: `Shard::remove` refuses a handle's element, `Shard::drop` leaves it linked, and
        // only the `Departed` made as the handle is dropped unlinks it.
        unsafe { self.element.as_ref() }
    }
}

impl<T: Linked> Drop for Listed<T> {
    fn drop(&mut self) {
        if self.links().owner.load(Ordering::Relaxed) & DEPARTED != 0 {
            // The list's reference, for whoever unlinks the element.
            T::departed(Departed {
                element: self.element,
            });
        }
    }
}

impl<T: Linked> Listed<T> {
    /// Lists a new element, which `make` builds in place, in the shard `shard_of` names (one the
    /// element itself may refer to, such as its scope's); see [`Shard::push_new`].
    #[inline]
    pub(crate) fn new_in(
        make: impl FnOnce() -> T,
        shard_of: impl FnOnce(&T) -> &Shard<T>,
    ) -> Listed<T> {
        let new = Shared::into_raw(Shared::new_with(make));
        // SAFETY: `new` is alive: its only reference, made just now, is leaked to the list.
        let shard = shard_of(unsafe { &*new });
        shard.push_new_raw(new)
    }

    /// The element's address, with the provenance of its whole block (count included): valid
    /// while this handle is.
    pub(crate) fn as_ptr(&self) -> *const T {
        self.element.as_ptr().cast_const()
    }

    /// Whether the element is listed, which it is until the handle departs it.
    pub(crate) fn is_listed(&self) -> bool {
        self.links().is_listed()
    }

    /// A strong reference of its own to the element, which outlives the handle.
    pub(crate) fn share(&self) -> Shared<T> {
        // SAFETY: the pointer came from `Shared::into_raw` and the element is alive (see
        // `deref`); the reference added here is the one the new `Shared` owns.
        unsafe { Shared::clone_from_raw(self.as_ptr()) }
    }

    /// Takes the element out of its list for every reader, with a store and no lock; it stays
    /// linked until the handle is dropped (see [`Listed`]). `false` if it had departed already.
    pub(crate) fn depart(&mut self) -> bool {
        let owner = &self.links().owner;
        // No other thread writes a handle's element's owner while the handle lives (see
        // `deref`), so this load and store cannot lose a write.
        let listed = owner.load(Ordering::Relaxed);
        if listed & DEPARTED != 0 {
            return false;
        }
        owner.store(listed | DEPARTED, Ordering::Release);
        true
    }
}

/// A departed element whose handle is gone: it holds the list's reference to the element, which
/// is still linked until [`Unlinking::unlink`] unlinks it. Dropped once unlinked, it gives the
/// reference back; dropped still linked, it leaves the element so for good.
pub(crate) struct Departed<T: Linked> {
    /// From `Shared::into_raw`, like the handle's.
    element: ptr::NonNull<T>,
}

impl<T: Linked> Departed<T> {
    pub(crate) fn get(&self) -> &T {
        // SAFETY: the list's reference is this one's until dropped: unlinking does not give it
        // back, and nothing else unlinks a departed element (see `Listed::deref`).
        unsafe { self.element.as_ref() }
    }
}

impl<T: Linked> Drop for Departed<T> {
    fn drop(&mut self) {
        if self.get().links().owner.load(Ordering::Acquire) == NO_SHARD {
            // SAFETY: unlinked, so the reference `Shared::into_raw` leaked when the element was
            // listed is this one's alone (see `get`), and is given back once, here.
            drop(unsafe { Shared::from_raw(self.element.as_ptr().cast_const()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    struct Element {
        value: u32,
        links: Links<Element>,
    }

    // SAFETY: `links` is a field of its own, used by nothing else.
    unsafe impl Linked for Element {
        fn links(&self) -> &Links<Self> {
            &self.links
        }

        fn departed(this: Departed<Self>) {
            DEPARTED_HERE.with(|departed| departed.borrow_mut().push(this));
        }
    }

    /// An element in no list yet.
    fn unlinked(value: u32) -> Element {
        Element {
            value,
            links: Links::default(),
        }
    }

    fn element(value: u32) -> Shared<Element> {
        Shared::new(unlinked(value))
    }

    thread_local! {
        /// Departed elements whose handles this thread dropped, for the test to unlink.
        static DEPARTED_HERE: RefCell<Vec<Departed<Element>>> = const { RefCell::new(Vec::new()) };
    }

    fn departed_elements() -> Vec<Departed<Element>> {
        DEPARTED_HERE.with(|departed| std::mem::take(&mut *departed.borrow_mut()))
    }

    fn values(shard: &Shard<Element>) -> Vec<u32> {
        let mut out = Vec::new();
        shard.collect_into(&mut out);
        out.iter().map(|e| e.value).collect()
    }

    #[test]
    fn push_collect_and_remove_from_every_position() {
        let shard = Shard::new();
        let elements: Vec<_> = (0..4).map(element).collect();
        elements.iter().for_each(|e| shard.push(e));
        assert_eq!(values(&shard), [3, 2, 1, 0]);
        assert_eq!(shard.len(), 4);
        let middle = shard.remove(&elements[1]).unwrap();
        assert_eq!(
            Shared::strong_count(&middle),
            2,
            "the list's reference, given back"
        );
        drop(middle);
        assert_eq!(values(&shard), [3, 2, 0]);
        assert!(shard.remove(&elements[3]).is_some());
        assert_eq!(values(&shard), [2, 0]);
        assert!(shard.remove(&elements[0]).is_some());
        assert!(shard.remove(&elements[2]).is_some());
        assert!(shard.remove(&elements[2]).is_none(), "removed already");
        assert_eq!(values(&shard), Vec::<u32>::new());
        assert_eq!(shard.len(), 0);
        assert!(elements.iter().all(|e| Shared::strong_count(e) == 1));
    }

    #[test]
    fn the_list_keeps_a_removed_element_alive_until_given_back() {
        let shard = Shard::new();
        let only = element(7);
        shard.push(&only);
        let given_back = shard.remove(&only).unwrap();
        drop(only);
        assert_eq!(given_back.value, 7, "alive");
        assert_eq!(
            Shared::strong_count(&given_back),
            1,
            "the last reference is the list's"
        );
    }

    #[test]
    fn an_element_of_another_shard_is_not_removed() {
        let (one, other) = (Shard::new(), Shard::new());
        let e = element(1);
        one.push(&e);
        assert!(other.remove(&e).is_none());
        assert_eq!(values(&one), [1]);
        assert!(one.remove(&e).is_some());
    }

    #[test]
    fn an_element_is_in_one_list_at_most() {
        let (one, other) = (Shard::new(), Shard::new());
        let e = element(1);
        one.push(&e);
        let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| other.push(&e)));
        let panic = second.unwrap_err();
        let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(message.contains("pushed to a second list"), "{message}");
        assert_eq!(other.len(), 0);
        assert!(other.remove(&e).is_none());
        assert!(one.remove(&e).is_some());
        assert_eq!(Shared::strong_count(&e), 1);
    }

    #[test]
    fn a_new_shard_at_a_dead_shards_address_does_not_own_its_elements() {
        let old = Box::new(Shard::new());
        let (a, b) = (element(1), element(2));
        old.push(&a);
        old.push(&b);
        let address = &*old as *const Shard<Element>;
        drop(old);
        assert_eq!(
            Shared::strong_count(&a),
            1,
            "a dropped shard gives its references back"
        );
        // The allocator is free to hand the same address to the next shard; identity must not
        // depend on it.
        let new = Box::new(Shard::new());
        let reused = std::ptr::eq(&*new, address);
        assert!(new.remove(&a).is_none(), "reused address: {reused}");
        assert_eq!(new.len(), 0);
        new.push(&a);
        assert!(
            new.remove(&a).is_some(),
            "an element freed by a dropped shard can be listed again"
        );
        assert_eq!(Shared::strong_count(&b), 1);
    }

    #[test]
    fn a_listed_element_is_reached_and_departs_through_its_handle_only() {
        let shard = Shard::new();
        let shared = element(1);
        shard.push(&shared);
        let mut listed = shard.push_new(unlinked(2));
        assert_eq!(listed.value, 2);
        assert!(listed.is_listed());
        assert_eq!(values(&shard), [2, 1]);
        let mut collected = Vec::new();
        shard.collect_into(&mut collected);
        let other = Shared::clone(&collected[0]);
        drop(collected);
        assert!(
            shard.remove(&other).is_none(),
            "only its handle may take it out"
        );
        let kept = listed.share();
        assert_eq!(Shared::strong_count(&kept), 3, "list, `other`, `kept`");
        drop(other);

        assert!(listed.depart(), "departs once");
        assert!(!listed.is_listed());
        assert_eq!(values(&shard), [1], "no reader sees it");
        assert_eq!(shard.len(), 2, "still linked");
        assert_eq!(listed.value, 2, "still reached through the handle");
        assert!(!listed.depart(), "departed already");
        assert!(shard.remove(&kept).is_none(), "still its handle's");
        drop(listed);
        assert_eq!(
            Shared::strong_count(&kept),
            2,
            "the list's reference is kept"
        );

        let [departed] = <[_; 1]>::try_from(departed_elements()).ok().unwrap();
        assert_eq!(departed.get().value, 2);
        assert!(shard.lock_for_unlinking().unlink(&departed));
        assert_eq!(shard.len(), 1);
        assert_eq!(
            Shared::strong_count(&kept),
            2,
            "given back with the `Departed`"
        );
        drop(departed);
        assert_eq!(Shared::strong_count(&kept), 1);
        assert!(shard.remove(&shared).is_some());
        assert_eq!(shard.len(), 0);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "leaves an element listed for good: Miri reports the leak"
    )]
    fn a_dropped_handle_whose_element_has_not_departed_leaves_it_listed() {
        let shard = Shard::new();
        let listed = shard.push_new(unlinked(4));
        let kept = listed.share();
        drop(listed);
        assert!(departed_elements().is_empty());
        assert_eq!(values(&shard), [4]);
        assert_eq!(Shared::strong_count(&kept), 2, "the list's, and `kept`");
    }

    #[test]
    fn a_departed_element_is_not_unlinked_from_another_shard() {
        let (one, other) = (Shard::new(), Shard::new());
        let mut listed = one.push_new(unlinked(3));
        let kept = listed.share();
        assert!(listed.depart());
        drop(listed);
        let departed = departed_elements().pop().unwrap();
        assert!(
            !other.lock_for_unlinking().unlink(&departed),
            "unlinked from a shard it is not in"
        );
        assert_eq!(one.len(), 1, "still linked in its own shard");
        assert_eq!(other.len(), 0);
        assert!(
            one.lock_for_unlinking().unlink(&departed),
            "in its own shard"
        );
        assert!(!one.lock_for_unlinking().unlink(&departed), "unlinked once");
        assert_eq!(one.len(), 0);
        drop(departed);
        assert_eq!(Shared::strong_count(&kept), 1);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "leaves an element listed for good: Miri reports the leak"
    )]
    fn a_departed_element_dropped_still_linked_stays_so() {
        let shard = Shard::new();
        let mut listed = shard.push_new(unlinked(5));
        let kept = listed.share();
        assert!(listed.depart());
        drop(listed);
        drop(departed_elements());
        assert_eq!(shard.len(), 1, "still linked");
        assert!(values(&shard).is_empty());
        assert_eq!(
            Shared::strong_count(&kept),
            2,
            "the list's reference is not given back"
        );
    }

    #[test]
    fn threads_push_and_remove_concurrently() {
        let shard = std::sync::Arc::new(Shard::new());
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let shard = std::sync::Arc::clone(&shard);
                std::thread::spawn(move || {
                    for i in 0..8 {
                        let e = element(t * 100 + i);
                        shard.push(&e);
                        let mut seen = Vec::new();
                        shard.collect_into(&mut seen);
                        assert!(seen.iter().any(|s| Shared::ptr_eq(s, &e)));
                        assert!(shard.remove(&e).is_some());
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(shard.len(), 0);
    }
}
