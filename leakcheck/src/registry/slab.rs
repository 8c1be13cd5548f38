//! Memory for records: fixed-size blocks carved from pages, a page per thread at a time.
//!
//! A tracked spawn in a burst paid `malloc` and `free` for its record: about a third of what
//! tracking cost a task spawned in bursts of 10,000, because glibc's fast paths hold only a few
//! chunks per size and the rest went through its bins. Here a thread takes blocks from a page of
//! its own, and gives them back to it, with no atomic instruction; a thread that frees blocks of
//! another thread's page pays one atomic instruction for a run of them.
//!
//! A page holds [`BLOCKS`] blocks. Its thread keeps the bits of the blocks it may take (one per
//! block, set while free) in a thread-local word. The page's own atomic word collects the bits of
//! blocks freed on other threads, which its thread takes over when its own run out. When the page
//! is full, or its thread ends, the thread detaches it: it adds its own bits and [`DETACHED`] to
//! the page's word, and from then on every free sets a bit there and nothing clears one. So
//! exactly one atomic operation, the one that completes the word, sees every block free with the
//! page detached, and that one gives the page back.
//!
//! A thread that frees blocks of a page not its own sets their bits in the page's word together,
//! when it next frees a block of a third page, or ends: it holds back one page at most. (Handing
//! them back also whenever the thread moved to a new page of its own measured a multi-thread
//! burst a third slower, so it does not.)
//!
//! Pages come from the allocator [`CHUNK_PAGES`] at a time, in a chunk that goes back with its
//! last page: an 8 KiB request is one glibc serves slowly (it sorts its unsorted bins first),
//! about 11,000 instructions, which spread over one page's blocks was a sixth of a tracked spawn.
//!
//! What this keeps: a thread's current chunk (64 KiB) until it ends, and, as any slab does, the
//! whole chunk of a block that lives long (a leaked task's record pins 64 KiB where its own
//! allocation was 120 bytes). A burst's memory goes back as its tasks end.
//!
//! All of the slab's `unsafe` is here, behind [`alloc`] and [`free`].

use std::alloc::Layout;
use std::cell::Cell;
use std::mem::{offset_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes of a block: two cache lines (blocks start on one), so a record never spans three.
const BLOCK: usize = 128;

/// Blocks per page: one bit each in the page's word, beside [`DETACHED`].
const BLOCKS: usize = 63;

/// Where a page's first block starts: its header has a cache line of its own, which freeing
/// threads write, so that it does not slow the blocks' own accesses.
const HEADER: usize = 64;

/// Bytes of a page; a multiple of a cache line, so that every block starts on one.
const PAGE: usize = HEADER + BLOCKS * BLOCK;

/// Pages per chunk, the unit of allocation.
const CHUNK_PAGES: usize = 8;

/// Where a chunk's first page starts, after its count of pages not yet given back.
const CHUNK_HEADER: usize = 64;

/// What a block offers its user, after the address of its page.
pub(crate) const PAYLOAD: usize = BLOCK - size_of::<Page>();

/// The alignment of a payload.
pub(crate) const PAYLOAD_ALIGN: usize = std::mem::align_of::<Page>();

/// Set in a page's word once its thread no longer takes blocks from it.
const DETACHED: u64 = 1 << BLOCKS;

/// Every block's bit.
const ALL_FREE: u64 = DETACHED - 1;

/// The word of a page that nobody uses any more: it goes back to its chunk.
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
        // nobody else's yet, and starts on a cache line, so it is aligned.
        unsafe {
            let start = self.0.add(CHUNK_HEADER + index * PAGE);
            start.cast::<PageHeader>().as_ptr().write(PageHeader {
                word: AtomicU64::new(0),
                chunk: self,
            });
            Page(start)
        }
    }

    /// Counts `pages` as given back; gives the chunk back to the allocator with its last page.
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

/// The start of a page.
#[repr(C)]
struct PageHeader {
    /// A bit per block freed but not taken back by the page's thread, and [`DETACHED`].
    word: AtomicU64,
    /// The chunk the page is part of, never changed.
    chunk: Chunk,
}

/// A page: a pointer to its start in its chunk, which holds its [`PageHeader`] and the blocks;
/// it carries the whole chunk's provenance. Only raw pointers reach into a page: other threads
/// write its blocks, so no reference to the whole page may exist.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Page(NonNull<u8>);

impl Page {
    fn word(&self) -> &AtomicU64 {
        // SAFETY: a page's header is written when it is made, and the page lives until it is
        // given back, which happens only once nobody can reach it (see `hand_back`). Shared
        // access is all there is to the word: every change is atomic.
        unsafe { &*self.0.as_ptr().add(offset_of!(PageHeader, word)).cast() }
    }

    /// Block `index`, which its thread took: its page's address is written in it.
    fn block(self, index: usize) -> NonNull<u8> {
        debug_assert!(index < BLOCKS);
        // SAFETY: in bounds of the page for every `index < BLOCKS`; the block is its taker's
        // now, and starts (on a cache line) with room for the page's address.
        unsafe {
            let block = self.0.add(HEADER + index * BLOCK);
            block.cast::<Page>().as_ptr().write(self);
            block
        }
    }

    /// The page and the bit of the block whose payload is `payload`.
    ///
    /// # Safety
    ///
    /// `payload` came from [`alloc`] and its block was not freed since.
    unsafe fn of(payload: NonNull<u8>) -> (Page, u64) {
        // SAFETY: per the contract, the block starts `BLOCK - PAYLOAD` bytes earlier, with the
        // address of its page, written when it was taken; the page lives until it is freed.
        unsafe {
            let block = payload.sub(BLOCK - PAYLOAD);
            let page = block.cast::<Page>().as_ptr().read();
            // The block is inside the page, so the offset is in bounds and positive.
            let offset = block.as_ptr().offset_from(page.0.as_ptr()) as usize;
            (page, 1 << ((offset - HEADER) / BLOCK))
        }
    }

    /// Sets `bits` in the page's word: blocks freed elsewhere than in the page's thread's own
    /// bits, or, with [`DETACHED`], what its thread hands over as it detaches the page. Gives the
    /// page back if that makes every block free with the page detached.
    fn hand_back(self, bits: u64) {
        // Release: the writes to the blocks happen before their next user's (`take_block`
        // acquires). Acquire: if this completes the word, every other block's last writes
        // happen before the page is given back.
        let before = self.word().fetch_or(bits, Ordering::AcqRel);
        debug_assert_eq!(
            before & bits,
            0,
            "a block is freed once, a page detached once"
        );
        if before | bits == DONE {
            // SAFETY: this operation completed the word, which happens once: the page is
            // detached (its thread no longer takes blocks) and every block is free, so nobody
            // reaches the page any more. Its chunk's address was written when it was made, which
            // happens before (the word's operations order it), and the page is counted once.
            unsafe {
                let chunk = self
                    .0
                    .add(offset_of!(PageHeader, chunk))
                    .cast::<Chunk>()
                    .read();
                chunk.give_back_pages(1);
            }
        }
    }

    /// The page's thread will not take blocks from it again, and hands over `free`, the blocks
    /// it still could: see [`hand_back`](Self::hand_back).
    fn detach(self, free: u64) {
        self.hand_back(free | DETACHED);
    }
}

/// The page this thread takes blocks from, the blocks of it it may take, and the chunk its next
/// pages come from; and blocks of another page this thread freed, not handed back yet.
struct LocalPages {
    page: Cell<Option<Page>>,
    /// A bit per block of `page` this thread may take. Disjoint from the page's word: a block
    /// freed on this thread is set here, one freed elsewhere there.
    free: Cell<u64>,
    /// The chunk of `page`, and the index of its next page not made yet (`CHUNK_PAGES`: all
    /// were).
    chunk: Cell<Option<Chunk>>,
    next_page: Cell<usize>,
    /// The page of the last block this thread freed, if it was not `page`.
    freed_page: Cell<Option<Page>>,
    /// The blocks of `freed_page` this thread freed and has not set in its word yet. Until they
    /// are, the page is not given back.
    freed: Cell<u64>,
    /// Set while this thread makes a new chunk: the global allocator may create a thread, whose
    /// interposed creation registers a record, from inside it. Meanwhile the slab is used as if
    /// this thread's pages were gone.
    busy: Cell<bool>,
}

impl LocalPages {
    /// A block of this thread's page, or `None` if it has none or none is free.
    #[inline]
    fn take_block(&self) -> Option<NonNull<u8>> {
        let page = self.page.get()?;
        let mut free = self.free.get();
        if free == 0 {
            // Acquire: whoever freed a block wrote it last, and released it with its bit.
            // (The word of a page in use has no `DETACHED` bit.)
            free = page.word().swap(0, Ordering::Acquire);
            if free == 0 {
                return None;
            }
        }
        let index = free.trailing_zeros() as usize;
        self.free.set(free & !(1 << index));
        Some(page.block(index))
    }

    /// Moves this thread to a new page, the current one being full (or none), and takes a block
    /// of it.
    #[cold]
    fn take_block_of_new_page(&self) -> NonNull<u8> {
        if let Some(full) = self.page.take() {
            full.detach(self.free.replace(0));
        }
        let chunk = match self.chunk.get() {
            Some(chunk) if self.next_page.get() < CHUNK_PAGES => chunk,
            _ => {
                self.busy.set(true);
                let chunk = Chunk::new();
                self.busy.set(false);
                self.chunk.set(Some(chunk));
                self.next_page.set(0);
                chunk
            }
        };
        let index = self.next_page.replace(self.next_page.get() + 1);
        // SAFETY: below `CHUNK_PAGES`, and this thread makes each index of its chunk once.
        let page = unsafe { chunk.page(index) };
        self.page.set(Some(page));
        self.free.set(ALL_FREE & !1);
        page.block(0)
    }

    /// Gives back block `bit` of `page`: to this thread's own blocks if it is this thread's
    /// page, or with the other blocks of `page` this thread freed one after another. `false`
    /// while the thread is making a new chunk.
    #[inline]
    fn give_back(&self, page: Page, bit: u64) -> bool {
        if self.busy.get() {
            return false;
        }
        // A page is not given back while it has a live block or one held back here, so an equal
        // address is the same page.
        if self.page.get() == Some(page) {
            debug_assert_eq!(self.free.get() & bit, 0, "a block is freed once");
            self.free.set(self.free.get() | bit);
        } else if self.freed_page.get() == Some(page) {
            debug_assert_eq!(self.freed.get() & bit, 0, "a block is freed once");
            self.freed.set(self.freed.get() | bit);
        } else {
            // The new page is recorded before the old one is handed back, which may give a chunk
            // back to the allocator.
            let previous = self.freed_page.replace(Some(page));
            let bits = self.freed.replace(bit);
            if let Some(previous) = previous {
                previous.hand_back(bits);
            }
        }
        true
    }

    /// Sets the blocks this thread freed of another page in that page's word.
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
            chunk: Cell::new(None),
            next_page: Cell::new(0),
            freed_page: Cell::new(None),
            freed: Cell::new(0),
            busy: Cell::new(false),
        }
    };
}

/// A block for a thread whose pages are gone (a thread-local destructor is allocating) or
/// being made (the allocator is creating a thread): a chunk of its own, its other pages given
/// back and its page detached at once, so that the block's `free` gives the chunk back.
#[cold]
fn lone_block() -> NonNull<u8> {
    let chunk = Chunk::new();
    // SAFETY: index 0, made once; the others are never made, and counted once, here.
    let page = unsafe {
        chunk.give_back_pages(CHUNK_PAGES - 1);
        chunk.page(0)
    };
    page.detach(ALL_FREE & !1);
    page.block(0)
}

/// A block of [`PAYLOAD`] bytes aligned to [`PAYLOAD_ALIGN`], uninitialised, for [`free`].
#[inline]
pub(crate) fn alloc() -> NonNull<u8> {
    let block = LOCAL_PAGES
        .try_with(|local| {
            // While the thread makes a new chunk, its pages are as if gone (see `busy`).
            (!local.busy.get()).then(|| {
                local
                    .take_block()
                    .unwrap_or_else(|| local.take_block_of_new_page())
            })
        })
        .ok()
        .flatten()
        .unwrap_or_else(lone_block);
    // SAFETY: a block is `BLOCK` bytes, and its payload starts after the page's address.
    unsafe { block.add(BLOCK - PAYLOAD) }
}

/// Gives back a block [`alloc`] returned, from any thread.
///
/// # Safety
///
/// `payload` came from [`alloc`] and was not freed since; nothing uses the block any more.
pub(crate) unsafe fn free(payload: NonNull<u8>) {
    // SAFETY: per the contract.
    let (page, bit) = unsafe { Page::of(payload) };
    let given = LOCAL_PAGES.try_with(|local| local.give_back(page, bit));
    if given != Ok(true) {
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
        // SAFETY: the tests ask only about blocks they have not freed.
        unsafe { Page::of(payload) }.0
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
    fn while_a_chunk_is_being_made_the_slab_serves_as_if_the_threads_pages_were_gone() {
        std::thread::spawn(|| {
            let own = alloc();
            // As while the allocator, called for a new chunk, creates a thread.
            LOCAL_PAGES.with(|local| local.busy.set(true));
            let nested = alloc();
            fill(nested, 3);
            assert!(page_of(nested) != page_of(own), "a lone block");
            // SAFETY: from `alloc`, freed once, unused after.
            unsafe {
                free(own); // Into its page's word, not the thread's own bits.
                free(nested); // Gives its chunk back.
            }
            LOCAL_PAGES.with(|local| local.busy.set(false));
            // SAFETY: as above.
            unsafe { free(alloc()) };
        })
        .join()
        .unwrap();
        // (Miri reports a leak or a double free if a block went astray.)
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
