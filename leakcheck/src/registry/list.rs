//! The sharded intrusive list that holds a scope's live tasks: all of the crate's list and
//! pointer `unsafe` is here, behind a safe API.
//!
//! Each element carries its own [`Links`]. A [`Shard`] owns one strong reference to each element
//! in it (taken with `Arc::into_raw` on insertion, given back on removal), so a listed element is
//! always alive, and an element's links are only touched with its shard's lock held.
//!
//! Provenance: every pointer the list follows or gives back to `Arc` comes from `Arc::into_raw`
//! or `Arc::as_ptr`, never from a shared reference to the element, so it may reach the `Arc`'s
//! counts (Stacked and Tree Borrows both accept this; Miri checks it).

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

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

/// Shard ids, unique for the life of the process (a `usize` of them cannot run out: each shard
/// is a 64-byte allocation).
static NEXT_SHARD_ID: AtomicUsize = AtomicUsize::new(NO_SHARD + 1);

/// One lock and its list, alone on a cache line; `len` is readable without the lock.
#[repr(align(64))]
pub(crate) struct Shard<T: Linked> {
    head: Mutex<Head<T>>,
    len: AtomicUsize,
    id: usize,
}

impl<T: Linked> Shard<T> {
    pub(crate) fn new() -> Shard<T> {
        Shard {
            head: Mutex::new(Head { first: ptr::null() }),
            len: AtomicUsize::new(0),
            id: NEXT_SHARD_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// How many elements the shard holds; exact when nothing is pushed or removed concurrently.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Adds `element`; the shard keeps a strong reference to it.
    ///
    /// # Panics
    ///
    /// If `element` is in a shard already.
    pub(crate) fn push(&self, element: &Arc<T>) {
        let mut head = self.head.lock();
        let claimed = element.links().owner.compare_exchange(
            NO_SHARD,
            self.id,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        assert!(claimed.is_ok(), "an element is pushed to a second list");
        let new = Arc::into_raw(Arc::clone(element));
        // SAFETY: we hold the lock; `new` is alive (we own a reference to it) and in no list, so
        // its links are ours; `head.first`, if any, is a live element of this list.
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

    /// Unlinks `element` and gives back the shard's reference to it; `None` if it is not in
    /// this shard.
    pub(crate) fn remove(&self, element: &Arc<T>) -> Option<Arc<T>> {
        let this = Arc::as_ptr(element);
        {
            let mut head = self.head.lock();
            if element.links().owner.load(Ordering::Acquire) != self.id {
                return None;
            }
            // SAFETY: we hold the lock, and `element` is in this list (its owner is this shard,
            // which only this lock sets and clears), so it and its neighbours are live elements
            // whose links this lock guards.
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
        // SAFETY: `push` leaked exactly one reference to this allocation with `Arc::into_raw`,
        // not given back until now (the owner was still this shard), and `this` comes from
        // `Arc::as_ptr` of the same allocation, so it may reach its counts.
        Some(unsafe { Arc::from_raw(this) })
    }

    /// Appends a strong reference to every element of the shard to `out`.
    pub(crate) fn collect_into(&self, out: &mut Vec<Arc<T>>) {
        let head = self.head.lock();
        let mut cursor = head.first;
        while !cursor.is_null() {
            // SAFETY: we hold the lock, so every element reachable from `first` is listed and
            // alive (the list owns a reference to it); `cursor` came from `Arc::into_raw`, and
            // the reference made here is the one the new `Arc` owns.
            unsafe {
                Arc::increment_strong_count(cursor);
                out.push(Arc::from_raw(cursor));
                cursor = (*(*cursor).links().cell.get()).next;
            }
        }
    }
}

impl<T: Linked> Drop for Shard<T> {
    /// Gives back the references of elements still listed, so that they are neither leaked nor
    /// left claiming a shard that no longer exists.
    fn drop(&mut self) {
        let mut cursor = std::mem::replace(&mut self.head.get_mut().first, ptr::null());
        while !cursor.is_null() {
            // SAFETY: `&mut self` excludes every other user of this list, so every element
            // reachable from `first` is listed and alive; `cursor` came from `Arc::into_raw` in
            // `push`, and that reference is given back here exactly once, after its links have
            // been read and cleared.
            unsafe {
                let element = Arc::from_raw(cursor);
                let links = &mut *element.links().cell.get();
                cursor = links.next;
                links.previous = ptr::null();
                links.next = ptr::null();
                element.links().owner.store(NO_SHARD, Ordering::Release);
            }
        }
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

    fn element(value: u32) -> Arc<Element> {
        Arc::new(Element {
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
            Arc::strong_count(&middle),
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
        assert!(elements.iter().all(|e| Arc::strong_count(e) == 1));
    }

    #[test]
    fn the_list_keeps_a_removed_element_alive_until_given_back() {
        let shard = Shard::new();
        let only = element(7);
        shard.push(&only);
        let weak = Arc::downgrade(&only);
        let given_back = shard.remove(&only).unwrap();
        drop(only);
        assert!(weak.upgrade().is_some());
        drop(given_back);
        assert!(
            weak.upgrade().is_none(),
            "the last reference was the list's"
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
        assert_eq!(Arc::strong_count(&e), 1);
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
            Arc::strong_count(&a),
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
        assert_eq!(Arc::strong_count(&b), 1);
    }

    #[test]
    fn threads_push_and_remove_concurrently() {
        let shard = Arc::new(Shard::new());
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let shard = Arc::clone(&shard);
                std::thread::spawn(move || {
                    for i in 0..8 {
                        let e = element(t * 100 + i);
                        shard.push(&e);
                        let mut seen = Vec::new();
                        shard.collect_into(&mut seen);
                        assert!(seen.iter().any(|s| Arc::ptr_eq(s, &e)));
                        assert!(shard.remove(&e).is_some());
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(shard.len(), 0);
    }
}
