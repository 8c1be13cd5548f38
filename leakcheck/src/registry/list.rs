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
//! its owner needs (no count of its own, no claim on a shared element to check). Only that handle
//! can [`unlist`](Listed::unlist_in_place) the element, and it keeps the list's reference as it
//! does, so the reference outlives every use of the handle.
//!
//! Provenance: every pointer the list follows or gives back to `Shared` comes from
//! `Shared::into_raw` or `Shared::as_ptr`, never from a shared reference to the element, so it
//! may reach the element's count (Stacked and Tree Borrows both accept this; Miri checks it).

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::shard_lock::ShardLock;
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
    /// Whether the element is in a list: set by `push`, cleared by `remove`, under the lock.
    pub(crate) fn is_listed(&self) -> bool {
        self.owner.load(Ordering::Acquire) != NO_SHARD
    }
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

    /// What becomes of the reference a [`Listed`] handle unlisted in place holds, when the
    /// handle is dropped: by default, it is dropped.
    fn release(this: Shared<Self>) {
        drop(this);
    }
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

/// Marks, in an element's owner, a shard that only a [`Listed`] handle may unlist the element
/// from. Shard ids never reach this bit.
const HANDLE_OWNED: usize = 1 << (usize::BITS - 1);

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

    /// How many elements the shard holds; exact when nothing is pushed or removed concurrently.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// What an element's owner reads while a [`Listed`] handle holds it in this shard.
    fn handle_owned_id(&self) -> usize {
        self.id | HANDLE_OWNED
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

    /// Appends a strong reference to every element of the shard to `out`.
    pub(crate) fn collect_into(&self, out: &mut Vec<Shared<T>>) {
        let head = self.head.lock();
        let mut cursor = head.first;
        while !cursor.is_null() {
            // SAFETY: we hold the lock, so every element reachable from `first` is listed and
            // alive (the list owns a reference to it); `cursor` came from `Shared::into_raw`, and
            // the reference made here is the one the new `Shared` owns.
            unsafe {
                out.push(Shared::clone_from_raw(cursor));
                cursor = (*(*cursor).links().cell.get()).next;
            }
        }
    }
}

impl<T: Linked> Drop for Shard<T> {
    /// Gives back the references of elements still listed, so that they are neither leaked nor
    /// left claiming a shard that no longer exists. An element a [`Listed`] handle holds keeps
    /// the list's reference (the handle reaches the element through it) and is left as it is: no
    /// shard will ever follow its links again, its owner being this shard's id.
    fn drop(&mut self) {
        let handle_owned = self.handle_owned_id();
        let mut cursor = std::mem::replace(&mut self.head.get_mut().first, ptr::null());
        while !cursor.is_null() {
            // SAFETY: `&mut self` excludes every other user of this list, so every element
            // reachable from `first` is listed and alive; `cursor` came from `Shared::into_raw` in
            // `push` or `push_new_raw`. A `push`ed element's reference is given back here exactly
            // once, after its links have been read and cleared; a handle's is not touched.
            unsafe {
                let links = (*cursor).links();
                let next = (*links.cell.get()).next;
                if links.owner.load(Ordering::Acquire) != handle_owned {
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
/// the only way to take it out of its list, so that reference outlives every borrow of it.
///
/// The handle may also [`unlist_in_place`](Self::unlist_in_place): the list's reference becomes
/// the handle's own, so that one word reaches the element before and after, and dropping the
/// handle then [releases](Linked::release) it. Dropping a handle whose element is still listed
/// leaves the element listed for good.
#[must_use = "an element whose handle is dropped stays listed for good"]
pub(crate) struct Listed<T: Linked> {
    /// From `Shared::into_raw`: one strong reference, the list's while the element is listed (it
    /// keeps it while the handle lives), the handle's own once unlisted in place.
    element: ptr::NonNull<T>,
}

// SAFETY: the handle holds a strong reference to a `Send + Sync` element (`Linked` requires
// both), which the thread that drops it may release (`T::release`), and the right to unlist it,
// which any thread may exercise under the shard's lock: a `Shared<T>` is `Send` on the same terms.
unsafe impl<T: Linked> Send for Listed<T> {}
// SAFETY: through `&Listed` only shared access to the element is possible, as through
// `&Shared<T>`; releasing takes the handle by value, and unlisting by `&mut` (its private helper
// takes `&self`, but changes nothing the shard's lock does not guard, and checks the owner again
// under it).
unsafe impl<T: Linked> Sync for Listed<T> {}

impl<T: Linked> std::ops::Deref for Listed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the handle holds a strong reference for as long as it lives. While the element
        // is listed, the list holds it for the handle: only the handle takes the element out
        // (`Shard::remove` refuses it), and keeps the reference as it does.
        unsafe { self.element.as_ref() }
    }
}

impl<T: Linked> Drop for Listed<T> {
    fn drop(&mut self) {
        if !self.is_listed() {
            // SAFETY: nothing but `unlist_in_place` takes a handle's element out of its list
            // (`Shard::remove` refuses it, `Shard::drop` leaves it listed), so the handle holds
            // the reference `Shared::into_raw` leaked, which is given back once, here.
            T::release(unsafe { Shared::from_raw(self.as_ptr()) });
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

    /// Whether the element is listed, which it is until the handle unlists it.
    pub(crate) fn is_listed(&self) -> bool {
        self.links().is_listed()
    }

    /// A strong reference of its own to the element, which outlives the handle.
    pub(crate) fn share(&self) -> Shared<T> {
        // SAFETY: the pointer came from `Shared::into_raw` and the element is alive (see
        // `deref`); the reference added here is the one the new `Shared` owns.
        unsafe { Shared::clone_from_raw(self.as_ptr()) }
    }

    /// Takes the element out of its list, which `shard_of` names, and keeps the list's
    /// reference to it in the handle; `false` if the element was not in that shard (or no
    /// longer listed).
    pub(crate) fn unlist_in_place<'a>(
        &'a mut self,
        shard_of: impl FnOnce(&'a T) -> &'a Shard<T>,
    ) -> bool {
        // The rest needs only shared access (the shard's lock excludes other users), so that the
        // shard may be borrowed from the element; `&mut` says that the handle changes.
        let this: &'a Self = self;
        // Read without the lock: only this handle moves its element out of a list, so an
        // element it has unlisted stays so (and a second exit costs no lock).
        if !this.is_listed() {
            return false;
        }
        this.unlist_in_place_from(shard_of(this))
    }

    /// [`unlist_in_place`](Self::unlist_in_place) from `shard`.
    fn unlist_in_place_from(&self, shard: &Shard<T>) -> bool {
        let mut head = shard.head.lock();
        if self.links().owner.load(Ordering::Acquire) != shard.handle_owned_id() {
            return false;
        }
        // SAFETY: we hold the lock, and the owner says the element is in this shard. The
        // reference `push_new` leaked with `Shared::into_raw` stays leaked: the handle holds it
        // now.
        unsafe { shard.unlink(&mut head, self) };
        true
    }
}

#[cfg(test)]
mod tests {
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
    }

    fn element(value: u32) -> Shared<Element> {
        Shared::new(Element {
            value,
            links: Links::default(),
        })
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
    fn a_listed_element_is_reached_and_unlisted_through_its_handle_only() {
        let shard = Shard::new();
        let shared = element(1);
        shard.push(&shared);
        let listed = shard.push_new(Element {
            value: 2,
            links: Links::default(),
        });
        assert_eq!(listed.value, 2);
        assert!(listed.links().is_listed());
        assert_eq!(values(&shard), [2, 1]);
        let mut collected = Vec::new();
        shard.collect_into(&mut collected);
        let other = Shared::clone(&collected[0]);
        drop(collected);
        assert!(
            shard.remove(&other).is_none(),
            "only its handle may take it out"
        );
        let shared_ref = listed.share();
        assert_eq!(
            Shared::strong_count(&shared_ref),
            3,
            "list, `other`, `shared_ref`"
        );
        drop((other, shared_ref));
        let mut listed = listed;
        assert!(listed.unlist_in_place(|_| &shard), "in this shard");
        assert!(!listed.is_listed());
        assert_eq!(values(&shard), [1]);
        assert_eq!(listed.value, 2, "still reached through the handle");
        let kept = listed.share();
        assert_eq!(Shared::strong_count(&kept), 2, "the handle's, and `kept`");
        assert!(!listed.unlist_in_place(|_| &shard), "unlisted once");
        drop(listed);
        assert_eq!(Shared::strong_count(&kept), 1, "released with the handle");
        assert!(shard.remove(&shared).is_some());
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn a_released_handle_hands_its_reference_to_the_element_type() {
        static RELEASED: AtomicUsize = AtomicUsize::new(0);
        struct Released(Links<Released>);
        // SAFETY: the links are a field of its own, used by nothing else.
        unsafe impl Linked for Released {
            fn links(&self) -> &Links<Self> {
                &self.0
            }
            fn release(this: Shared<Self>) {
                assert_eq!(Shared::strong_count(&this), 1, "the handle's own reference");
                RELEASED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let shard = Shard::new();
        let mut listed = shard.push_new(Released(Links::default()));
        assert!(listed.unlist_in_place(|_| &shard));
        assert_eq!(RELEASED.load(Ordering::SeqCst), 0, "held by the handle");
        drop(listed);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn a_listed_element_is_not_unlisted_from_another_shard() {
        let (one, other) = (Shard::new(), Shard::new());
        let mut listed = one.push_new(Element {
            value: 3,
            links: Links::default(),
        });
        assert!(
            !listed.unlist_in_place(|_| &other),
            "unlisted from a shard it is not in"
        );
        assert!(listed.is_listed());
        assert_eq!(one.len(), 1, "still in its own shard");
        assert_eq!(other.len(), 0);
        assert!(listed.unlist_in_place(|_| &one), "in its own shard");
        assert_eq!(listed.value, 3);
        assert_eq!(one.len(), 0);
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
