//! The generator's memory allocator: size-class free lists over 64 KiB chunks from the system
//! allocator.
//!
//! A run allocates and frees a few hundred thousand small blocks (the keys and values of every
//! line of every unit, podman argument words, output text). glibc's `malloc`/`free` spent about
//! 200 instructions per pair on that pattern — about 40% of the user-space instructions of a
//! 1,000-unit run (callgrind, generator/bench/compare.sh) — because its per-thread cache holds
//! only seven blocks per size and the rest goes through the bins and their consolidation.
//! mimalloc cut the instructions but raised the peak RSS above Quadlet's, so it was not taken.
//!
//! This allocator keeps, for each size class (multiples of 16 bytes up to 1 KiB), a singly linked
//! list of freed blocks (the link is stored in the free block itself). An allocation pops that
//! list, or else cuts a new block from the current chunk; a free pushes the block back. Blocks
//! have no header, so memory use stays close to glibc's. Chunk memory is never given back: the
//! generator is a short-lived process and the freed blocks are reused by later units. Requests
//! above 1 KiB or aligned above 16 bytes go to the system allocator unchanged.
//!
//! Each thread has its own free lists and chunk (thread-local state, no lock): the generator
//! spreads large runs over two threads (`generator/src/parallel.rs`), and a lock shared by
//! both would be taken on every allocation. A block may be freed by another thread than the one
//! that allocated it: it simply joins the freeing thread's lists (blocks carry no owner). What a
//! thread holds in its lists when it ends is not reused; the generator's helper threads are
//! short-lived and few (at most one at a time), so that is a bounded loss of a few hundred KiB at
//! most, never a growing one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes are multiples of this (and blocks are aligned to it).
const GRANULE: usize = 16;
/// The largest size served from the free lists.
const MAX_SMALL: usize = 1024;
/// Number of size classes: 16, 32, ..., 1024.
const CLASSES: usize = MAX_SMALL / GRANULE;
/// Size of the chunks cut into blocks.
const CHUNK: usize = 64 * 1024;

struct State {
    /// Head of the free list of each class (null: empty).
    free: [*mut u8; CLASSES],
    /// Next unused byte of the current chunk.
    bump: *mut u8,
    /// End of the current chunk.
    end: *mut u8,
}

/// The allocator (install with `#[global_allocator]`). All instances share the calling thread's
/// state.
#[derive(Debug, Clone, Copy)]
pub struct SmallAlloc;

thread_local! {
    // Constant-initialized and without destructor: accessing it is a plain thread-local access
    // (no lazy initialization, no registration that could allocate).
    static STATE: UnsafeCell<State> = const {
        UnsafeCell::new(State {
            free: [ptr::null_mut(); CLASSES],
            bump: ptr::null_mut(),
            end: ptr::null_mut(),
        })
    };
}

impl SmallAlloc {
    /// The allocator.
    pub const fn new() -> Self {
        SmallAlloc
    }

    /// Runs `f` on the calling thread's state.
    fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
        // SAFETY: the state belongs to this thread alone, and `f` (a free-list push or pop, or a
        // chunk from the system allocator) does not re-enter this allocator, so no other
        // reference to it exists while `f` runs.
        STATE.with(|s| f(unsafe { &mut *s.get() }))
    }
}

impl Default for SmallAlloc {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of a layout served from the free lists, or `None` for the system allocator.
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size == 0 || size > MAX_SMALL || layout.align() > GRANULE {
        return None;
    }
    Some((size - 1) / GRANULE)
}

// Free blocks store a pointer in their first bytes; every block is 16-byte aligned.
#[allow(clippy::cast_ptr_alignment)]
impl State {
    /// A block of class `c` (`(c + 1) * GRANULE` bytes), or null when the system is out of memory.
    unsafe fn alloc(&mut self, c: usize) -> *mut u8 {
        let head = self.free[c];
        if !head.is_null() {
            // SAFETY: a free block holds the next pointer in its first bytes (aligned to 16).
            self.free[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = (c + 1) * GRANULE;
        if (self.end as usize) - (self.bump as usize) < size {
            // The rest of the old chunk (less than one block of this class) is abandoned.
            // SAFETY: CHUNK and GRANULE form a valid layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, GRANULE)) };
            if chunk.is_null() {
                return chunk;
            }
            self.bump = chunk;
            // SAFETY: one past the end of the chunk.
            self.end = unsafe { chunk.add(CHUNK) };
        }
        let p = self.bump;
        // SAFETY: `size` bytes are left in the chunk (checked above).
        self.bump = unsafe { p.add(size) };
        p
    }

    /// Returns a block of class `c` to its free list.
    unsafe fn free(&mut self, p: *mut u8, c: usize) {
        // SAFETY: the block is at least 16 bytes, aligned to 16 and no longer in use.
        unsafe { p.cast::<*mut u8>().write(self.free[c]) };
        self.free[c] = p;
    }
}

// SAFETY: blocks of a class are `(c + 1) * 16` bytes aligned to 16, which fits every layout mapped
// to that class; a block is handed out once until it is freed; other layouts use `System`.
unsafe impl GlobalAlloc for SmallAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            // SAFETY: see the impl.
            Some(c) => Self::with(|s| unsafe { s.alloc(c) }),
            // SAFETY: forwarded unchanged.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(layout) {
            // SAFETY: `p` came from `alloc` with the same layout, hence from this class.
            Some(c) => Self::with(|s| unsafe { s.free(p, c) }),
            // SAFETY: forwarded unchanged.
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for `new_size`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(a), Some(b)) if a == b => p,
            // SAFETY: both system blocks: forwarded unchanged.
            (None, None) => unsafe { System.realloc(p, layout, new_size) },
            _ => {
                // SAFETY: a fresh block of the new layout; the old one is valid for the smaller
                // of the two sizes and freed with its own layout.
                unsafe {
                    let q = self.alloc(new_layout);
                    if !q.is_null() {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_are_reused_and_live_blocks_do_not_overlap() {
        let a = SmallAlloc::new();
        let l24 = Layout::from_size_align(24, 8).unwrap();
        unsafe {
            let p = a.alloc(l24);
            let q = a.alloc(l24);
            assert!(!p.is_null() && !q.is_null());
            assert!((p as usize).abs_diff(q as usize) >= 32);
            assert_eq!(p as usize % 16, 0);
            p.write_bytes(0xaa, 24);
            q.write_bytes(0xbb, 24);
            a.dealloc(p, l24);
            // Same class (17..=32 bytes): the freed block comes back.
            let r = a.alloc(Layout::from_size_align(32, 16).unwrap());
            assert_eq!(r, p);
            assert_eq!(q.read(), 0xbb);
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_to_the_system() {
        let a = SmallAlloc::new();
        let l = Layout::from_size_align(10, 1).unwrap();
        unsafe {
            let p = a.alloc(l);
            for i in 0..10u8 {
                p.add(usize::from(i)).write(i);
            }
            let p = a.realloc(p, l, 12); // same class: same block
            let p = a.realloc(p, Layout::from_size_align(12, 1).unwrap(), 500);
            let p = a.realloc(p, Layout::from_size_align(500, 1).unwrap(), 5000);
            for i in 0..10u8 {
                assert_eq!(p.add(usize::from(i)).read(), i);
            }
            a.dealloc(p, Layout::from_size_align(5000, 1).unwrap());
        }
    }

    #[test]
    fn blocks_freed_on_another_thread_are_reused_there_and_threads_never_share_a_block() {
        let a = SmallAlloc::new();
        let l = Layout::from_size_align(48, 8).unwrap();
        // Allocated here, freed on another thread, which then gets the block back.
        let p = unsafe { a.alloc(l) } as usize;
        let (freed_then_got, theirs) = std::thread::spawn(move || unsafe {
            a.dealloc(p as *mut u8, l);
            let q = a.alloc(l) as usize;
            let theirs: Vec<usize> = (0..1000).map(|_| a.alloc(l) as usize).collect();
            (q, theirs)
        })
        .join()
        .unwrap();
        assert_eq!(freed_then_got, p);
        // Blocks handed out on two threads at the same time are distinct.
        let ours: Vec<usize> = (0..1000).map(|_| unsafe { a.alloc(l) } as usize).collect();
        let mut all: Vec<usize> = ours.iter().chain(&theirs).copied().collect();
        all.push(p);
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[1] - w[0] >= 48));
        for b in all {
            unsafe { a.dealloc(b as *mut u8, l) };
        }
    }

    #[test]
    fn over_aligned_and_large_layouts_use_the_system_allocator() {
        assert_eq!(class(Layout::from_size_align(64, 64).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(2000, 8).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(1024, 8).unwrap()), Some(63));
        assert_eq!(class(Layout::from_size_align(1, 1).unwrap()), Some(0));
    }
}
