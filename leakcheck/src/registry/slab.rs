//! Memory for records: fixed-size blocks carved from pages, a page per thread at a time.
//!
//! A tracked spawn in a burst paid `malloc` and `free` for its record: about a third of what
//! tracking cost a task spawned in bursts of 10,000, because glibc's fast paths hold only a few
//! chunks per size and the rest went through its bins. Here a thread takes blocks from a page of
//! its own, and gives them back to it, with no atomic instruction; a block freed on another
//! thread costs that thread one, shared with the other blocks of the same page it frees in a row.
//!
//! A page holds [`BLOCKS`] blocks. Its thread keeps the bits of the blocks it may take (one per
//! block, set while free) in a thread-local word. The page's own atomic word collects the bits of
//! blocks other threads free, which its thread takes over when its own run out, and the
//! [`DETACHED`] bit (a thread that frees several blocks of another thread's page in a row sets
//! their bits there at once, when it moves on to another page or ends). When the page is full, or its thread ends, the thread detaches it: it adds
//! its own bits and [`DETACHED`] to the page's word, and from then on every free sets a bit there
//! and nothing clears one. So exactly one atomic operation, the one that completes the word, sees
//! every block free with the page detached, and that one gives the page back to the allocator.
//! A burst's memory is returned as its tasks end.
//!
//! Pages come from the allocator [`CHUNK_PAGES`] at a time, in a chunk that goes back with its
//! last page: an 8 KiB request is one glibc serves slowly (merging its fast bins first), about
//! 11,000 instructions, which spread over one page's blocks was a sixth of a tracked spawn. A
//! thread keeps its current chunk (about 64 KiB), and at most one page of another thread's
//! chunk by holding back freed blocks, until it ends.
//!
//! All of the slab's `unsafe` is here, behind [`alloc`] and [`free`].

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes of a block, and its alignment: two cache lines, so a record never spans three.
const BLOCK: usize = 128;

/// Blocks per page: one bit each in the page's word, beside [`DETACHED`].
const BLOCKS: usize = 63;

/// Where a page's first block starts: its word (and its chunk's address) have a cache line of
/// their own, which freeing threads write, so that it does not slow the blocks' own accesses.
const HEADER: usize = 64;

/// Bytes of a page; a multiple of a cache line, so that every block starts on one.
const PAGE: usize = HEADER + BLOCKS * BLOCK;

/// Pages per chunk, the unit of allocation.
const CHUNK_PAGES: usize = 8;

/// Where a chunk's first page starts, after its count of pages not yet given back.
const CHUNK_HEADER: usize = 64;

/// What a block offers its user, after the word that names its page.
pub(crate) const PAYLOAD: usize = BLOCK - std::mem::size_of::<usize>();

/// The alignment of a payload.
pub(crate) const PAYLOAD_ALIGN: usize = std::mem::align_of::<usize>();

/// Set in a page's word once its thread no longer allocates from it.
const DETACHED: u64 = 1 << BLOCKS;

/// Every block's bit.
const ALL_FREE: u64 = DETACHED - 1;

/// The word of a page that nobody uses any more: it goes back to the allocator.
const DONE: u64 = ALL_FREE | DETACHED;

fn chunk_layout() -> Layout {
    // A constant size and a power-of-two alignment: this cannot fail.
    Layout::from_size_align(CHUNK_HEADER + CHUNK_PAGES * PAGE, 64).expect("a valid chunk layout")
}

/// A chunk: a pointer to the start of its allocation, which holds the count of its pages not
/// given back yet (at offset 0) and the pages; it carries the whole allocation's provenance.
#[derive(Clone, Copy)]
struct Chunk(NonNull<u8>);

impl Chunk {
    fn new() -> Chunk {
        let layout = chunk_layout();
        // SAFETY: the layout's size is not zero.
        let Some(start) = NonNull::new(unsafe { std::alloc::alloc(layout) }) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: the allocation starts with room for the count, aligned for it.
        unsafe {
            let count = AtomicUsize::new(CHUNK_PAGES);
            start.cast::<AtomicUsize>().as_ptr().write(count);
        }
        Chunk(start)
    }

    fn pages_left(&self) -> &AtomicUsize {
        // SAFETY: initialised when the chunk is made, alive until the chunk is given back, which
        // happens only once every page is (see `give_back_pages`); only accessed atomically.
        unsafe { &*self.0.as_ptr().cast::<AtomicUsize>() }
    }

    /// Page `index`, new: all of its blocks its thread may take, none in its word.
    ///
    /// # Safety
    ///
    /// `index < CHUNK_PAGES`, and each index is made into a page once.
    unsafe fn page(self, index: usize) -> Page {
        debug_assert!(index < CHUNK_PAGES);
        // SAFETY: in bounds of the chunk's allocation, per the contract; the page's header is
        // nobody else's yet, and starts on a cache line, so the word and the address are aligned.
        unsafe {
            let start = self.0.add(CHUNK_HEADER + index * PAGE);
            start.cast::<AtomicU64>().as_ptr().write(AtomicU64::new(0));
            start.add(8).cast::<Chunk>().as_ptr().write(self);
            Page(start)
        }
    }

    /// Counts `pages` as given back; gives the chunk back with its last page.
    ///
    /// # Safety
    ///
    /// Each of the chunk's pages is counted once, here, once nobody reaches it any more.
    unsafe fn give_back_pages(self, pages: usize) {
        // AcqRel: every page's last use happens before the chunk is given back.
        if self.pages_left().fetch_sub(pages, Ordering::AcqRel) == pages {
            // SAFETY: every page was given back, so nobody reaches the chunk; it came from
            // `alloc` with this layout.
            unsafe { std::alloc::dealloc(self.0.as_ptr(), chunk_layout()) };
        }
    }
}

/// A page: a pointer to its start in its chunk, which holds the word (at offset 0), the chunk's
/// address and the blocks; it carries the whole chunk's provenance. Only raw pointers reach into
/// a page: other threads write its blocks, so no reference to the whole page may exist.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Page(NonNull<u8>);

impl Page {
    fn word(&self) -> &AtomicU64 {
        // SAFETY: a page's word is initialised when it is made and lives until the page is given
        // back, which happens only once nobody can reach the page (see `free` and `detach`).
        // Shared access is all there is to it: every change is atomic.
        unsafe { &*self.0.as_ptr().cast::<AtomicU64>() }
    }

    /// Block `index`, which its thread took from `free`: its page's address is written in it.
    fn block(self, index: usize) -> NonNull<u8> {
        debug_assert!(index < BLOCKS);
        // SAFETY: in bounds of the page's allocation for every `index < BLOCKS`.
        let block = unsafe { self.0.add(HEADER + index * BLOCK) };
        // SAFETY: the block is its taker's now and starts with room for the page's address.
        unsafe { block.cast::<Page>().as_ptr().write(self) };
        block
    }

    /// The page's thread will not allocate from it again, and hands over `free`, the blocks it
    /// could still take. The page is given back at once if every block is free, or by the last
    /// `free` otherwise.
    fn detach(self, free: u64) {
        let before = self.word().fetch_or(free | DETACHED, Ordering::AcqRel);
        debug_assert_eq!(before & DETACHED, 0, "a page is detached once");
        if before | free | DETACHED == DONE {
            // SAFETY: this operation completed the word, which happens once (see the module
            // doc), and the page's blocks are all free: nobody reaches the page any more.
            unsafe { self.release() };
        }
    }

    /// Sets `freed`, blocks freed on a thread that is not the page's, in the page's word; gives
    /// the page back if that makes every block free with the page detached.
    fn hand_back(self, freed: u64) {
        // Release: the writes to the blocks happen before their next user's (`take_block`
        // acquires). Acquire: if this completes the word, every other block's last writes
        // happen before the page is given back.
        let before = self.word().fetch_or(freed, Ordering::AcqRel);
        debug_assert_eq!(before & freed, 0, "a block is freed once");
        if before | freed == DONE {
            // SAFETY: this operation completed the word, which happens once: the page is
            // detached (its thread no longer takes blocks) and every block is free.
            unsafe { self.release() };
        }
    }

    /// Gives the page back to its chunk.
    ///
    /// # Safety
    ///
    /// The page is detached and every block is free (its word is [`DONE`]), seen by this caller's
    /// acquiring operation on the word, and nobody else will release it.
    unsafe fn release(self) {
        // SAFETY: per the contract, nobody uses the page any more, and it is counted once; its
        // chunk's address was written when it was made, which happens before (the word's
        // operations order it).
        unsafe {
            let chunk = self.0.add(8).cast::<Chunk>().as_ptr().read();
            chunk.give_back_pages(1);
        }
    }
}

/// The page this thread allocates from, and the blocks of it the thread may take, detached when
/// the thread ends; the chunk its next pages come from; and blocks of another page this thread
/// freed, not handed back yet.
struct LocalPages {
    page: Cell<Option<Page>>,
    /// A bit per block of `page` this thread may take. Disjoint from the page's word: a block
    /// freed on this thread is set here, one freed elsewhere there.
    free: Cell<u64>,
    /// The page of the last block this thread freed that was not its own, if any.
    freed_page: Cell<Option<Page>>,
    /// The blocks of `freed_page` this thread freed and has not set in its word yet. Until they
    /// are, the page is not given back: a thread holds back one page at most.
    freed: Cell<u64>,
    /// The chunk of `page`, and the index of its next page not made yet (`CHUNK_PAGES`: all
    /// were).
    chunk: Cell<Option<Chunk>>,
    next_page: Cell<usize>,
}

impl LocalPages {
    fn take_block(&self) -> NonNull<u8> {
        if let Some(page) = self.page.get() {
            let mut free = self.free.get();
            if free == 0 {
                // Acquire: whoever freed a block wrote it last, and released it with its bit.
                // (The word of a page in use has no `DETACHED` bit.)
                free = page.word().swap(0, Ordering::Acquire);
            }
            if free != 0 {
                return self.take(page, free);
            }
            page.detach(0);
        }
        let page = self.new_page();
        self.page.set(Some(page));
        self.take(page, ALL_FREE)
    }

    /// The next page of this thread's chunk, or of a new one.
    fn new_page(&self) -> Page {
        let chunk = match self.chunk.get() {
            Some(chunk) if self.next_page.get() < CHUNK_PAGES => chunk,
            _ => {
                let chunk = Chunk::new();
                self.chunk.set(Some(chunk));
                self.next_page.set(0);
                chunk
            }
        };
        let index = self.next_page.replace(self.next_page.get() + 1);
        // SAFETY: below `CHUNK_PAGES`, and this thread makes each index of its chunk once.
        unsafe { chunk.page(index) }
    }

    /// Takes the lowest block of `free`, blocks of `page` this thread may take.
    fn take(&self, page: Page, free: u64) -> NonNull<u8> {
        let index = free.trailing_zeros() as usize;
        self.free.set(free & !(1 << index));
        page.block(index)
    }

    /// Gives back block `bit` of `page`: to this thread's own blocks if it is this thread's
    /// page, or with the other blocks of `page` this thread freed in a row.
    fn give_back(&self, page: Page, bit: u64) {
        // A page is not given back while it has a live block or one held back here, so an equal
        // address is the same page.
        if self.page.get() == Some(page) {
            debug_assert_eq!(self.free.get() & bit, 0, "a block is freed once");
            self.free.set(self.free.get() | bit);
        } else if self.freed_page.get() == Some(page) {
            debug_assert_eq!(self.freed.get() & bit, 0, "a block is freed once");
            self.freed.set(self.freed.get() | bit);
        } else {
            self.hand_back_freed();
            self.freed_page.set(Some(page));
            self.freed.set(bit);
        }
    }

    /// Sets the blocks this thread freed of another thread's page in that page's word.
    fn hand_back_freed(&self) {
        if let Some(page) = self.freed_page.take() {
            page.hand_back(self.freed.replace(0));
        }
    }
}

impl Drop for LocalPages {
    fn drop(&mut self) {
        self.hand_back_freed();
        if let Some(page) = self.page.take() {
            page.detach(self.free.get());
        }
        if let Some(chunk) = self.chunk.take() {
            let unmade = CHUNK_PAGES - self.next_page.get();
            if unmade > 0 {
                // SAFETY: pages never made are reached by nobody, and counted once, here.
                unsafe { chunk.give_back_pages(unmade) };
            }
        }
    }
}

thread_local! {
    static LOCAL_PAGES: LocalPages = const {
        LocalPages {
            page: Cell::new(None),
            free: Cell::new(0),
            freed_page: Cell::new(None),
            freed: Cell::new(0),
            chunk: Cell::new(None),
            next_page: Cell::new(0),
        }
    };
}

/// A block of [`PAYLOAD`] bytes aligned to [`PAYLOAD_ALIGN`], uninitialised, for [`free`].
#[inline]
pub(crate) fn alloc() -> NonNull<u8> {
    let block = LOCAL_PAGES
        .try_with(LocalPages::take_block)
        .unwrap_or_else(|_| {
            // The thread's own pages are gone (a thread-local destructor is allocating): a chunk
            // for this one block, its other pages given back and its page detached at once, so
            // that the block's `free` gives the chunk back.
            let chunk = Chunk::new();
            // SAFETY: index 0, made once; the others are never made, and counted once, here.
            let page = unsafe {
                chunk.give_back_pages(CHUNK_PAGES - 1);
                chunk.page(0)
            };
            page.detach(ALL_FREE & !1);
            page.block(0)
        });
    // SAFETY: a block is `BLOCK` bytes, and its payload starts after the page's address.
    unsafe { block.add(BLOCK - PAYLOAD) }
}

/// Gives back a block [`alloc`] returned, from any thread.
///
/// # Safety
///
/// `payload` came from [`alloc`] and was not freed since; nothing uses the block any more.
pub(crate) unsafe fn free(payload: NonNull<u8>) {
    // SAFETY: per the contract, the block starts `BLOCK - PAYLOAD` bytes earlier, with the
    // address of its page, written when it was taken; the page lives until this block is free.
    let (block, page) = unsafe {
        let block = payload.sub(BLOCK - PAYLOAD);
        (block, block.cast::<Page>().as_ptr().read())
    };
    // SAFETY: the block is inside the page, so the offset is in bounds and non-negative.
    let offset = unsafe { block.as_ptr().offset_from(page.0.as_ptr()) } as usize;
    let bit = 1 << ((offset - HEADER) / BLOCK);
    if LOCAL_PAGES
        .try_with(|local| local.give_back(page, bit))
        .is_err()
    {
        // This thread's pages are gone (a thread-local destructor is freeing).
        page.hand_back(bit);
    }
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    /// A block handed to another thread in a test.
    struct Sent(NonNull<u8>);
    // SAFETY: a block may be written and freed on any thread; the tests hand each one over once.
    unsafe impl Send for Sent {}

    fn fill(payload: NonNull<u8>, byte: u8) {
        // SAFETY: a payload is `PAYLOAD` bytes of our own.
        unsafe { ptr::write_bytes(payload.as_ptr(), byte, PAYLOAD) };
    }

    fn page_of(payload: NonNull<u8>) -> Page {
        // SAFETY: as in `free`.
        unsafe { payload.sub(BLOCK - PAYLOAD).cast::<Page>().as_ptr().read() }
    }

    fn current_page() -> Option<Page> {
        LOCAL_PAGES.with(|local| local.page.get())
    }

    #[test]
    fn a_freed_block_is_the_next_one_taken_on_its_thread() {
        let first = alloc();
        fill(first, 1);
        assert_eq!(first.as_ptr() as usize % PAYLOAD_ALIGN, 0);
        let second = alloc();
        assert_ne!(first, second);
        // SAFETY: from `alloc`, freed once, unused after.
        unsafe { free(first) };
        let third = alloc();
        assert_eq!(third, first, "the lowest free block is taken first");
        // SAFETY: as above.
        unsafe {
            free(second);
            free(third);
        }
    }

    #[test]
    fn full_pages_and_chunks_are_given_back_once_their_blocks_are_freed_on_other_threads() {
        // A fresh thread, so that its pages start empty; more blocks than a chunk holds.
        let blocks = std::thread::spawn(|| {
            let blocks: Vec<_> = (0..=CHUNK_PAGES * BLOCKS)
                .map(|i| {
                    let block = alloc();
                    fill(block, i as u8);
                    block
                })
                .collect();
            let first_page = page_of(blocks[0]);
            assert!(
                blocks[..BLOCKS].iter().all(|&b| page_of(b) == first_page),
                "one page holds the first {BLOCKS} blocks"
            );
            assert!(page_of(blocks[BLOCKS]) != first_page);
            assert!(
                current_page() != Some(first_page),
                "a full page is detached"
            );
            blocks.into_iter().map(Sent).collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        // The thread has ended, so its last page is detached too; each page goes back to its
        // chunk with its last block, and each chunk with its last page (Miri reports a leak or
        // a double free otherwise).
        let per_worker = blocks.len().div_ceil(4);
        let mut blocks = blocks.into_iter();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let share: Vec<_> = blocks.by_ref().take(per_worker).collect();
                std::thread::spawn(move || {
                    for Sent(block) in share {
                        // SAFETY: from `alloc`, freed once, unused after.
                        unsafe { free(block) };
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
    }

    #[test]
    fn a_page_whose_blocks_were_all_freed_is_given_back_when_its_thread_ends() {
        std::thread::spawn(|| {
            let blocks: Vec<_> = (0..3).map(|_| alloc()).collect();
            for block in blocks {
                // SAFETY: from `alloc`, freed once, unused after.
                unsafe { free(block) };
            }
            assert!(current_page().is_some(), "kept while the thread runs");
        })
        .join()
        .unwrap();
        // (Miri reports the page as leaked if the thread's end did not give it back.)
    }

    #[test]
    fn a_block_taken_after_the_threads_page_is_gone_still_goes_back() {
        struct AllocatesOnExit;
        impl Drop for AllocatesOnExit {
            fn drop(&mut self) {
                let block = alloc();
                fill(block, 7);
                // SAFETY: from `alloc`, freed once, unused after.
                unsafe { free(block) };
            }
        }
        thread_local! {
            static LATE: AllocatesOnExit = const { AllocatesOnExit };
        }
        std::thread::spawn(|| {
            // Thread-local destructors run in the reverse order of first use: `LATE`'s runs
            // after the page's, and takes a block with no page of the thread's left.
            LATE.with(|_| ());
            // SAFETY: from `alloc`, freed once, unused after.
            unsafe { free(alloc()) };
        })
        .join()
        .unwrap();
    }
}
