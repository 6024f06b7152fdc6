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
//! A spin lock makes it sound for several threads; the generator has one, so the lock is never
//! contended.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// The allocator (install with `#[global_allocator]`).
#[derive(Debug)]
pub struct SmallAlloc {
    lock: AtomicBool,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only touched while `lock` is held.
unsafe impl Sync for SmallAlloc {}

impl SmallAlloc {
    /// An allocator with empty free lists and no chunk.
    pub const fn new() -> Self {
        SmallAlloc {
            lock: AtomicBool::new(false),
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }

    /// Runs `f` on the state with the lock held.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock gives exclusive access; `f` does not re-enter the allocator.
        let r = f(unsafe { &mut *self.state.get() });
        self.lock.store(false, Ordering::Release);
        r
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
            Some(c) => self.with(|s| unsafe { s.alloc(c) }),
            // SAFETY: forwarded unchanged.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(layout) {
            // SAFETY: `p` came from `alloc` with the same layout, hence from this class.
            Some(c) => self.with(|s| unsafe { s.free(p, c) }),
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
    fn over_aligned_and_large_layouts_use_the_system_allocator() {
        assert_eq!(class(Layout::from_size_align(64, 64).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(2000, 8).unwrap()), None);
        assert_eq!(class(Layout::from_size_align(1024, 8).unwrap()), Some(63));
        assert_eq!(class(Layout::from_size_align(1, 1).unwrap()), Some(0));
    }
}
