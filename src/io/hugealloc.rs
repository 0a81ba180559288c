//! `io::hugealloc`: a global allocator that backs large allocations with transparent huge
//! pages, so the FIB's arrays and the NAT session table are covered by a few 2 MiB TLB
//! entries instead of thousands of 4 KiB ones.
//!
//! Random lookups into a multi-megabyte table miss the TLB on nearly every access when it is
//! mapped with 4 KiB pages, and on a virtual machine every miss is a two-dimensional page walk
//! (guest and host tables). Linux gives anonymous memory huge pages only where asked
//! (`transparent_hugepage/enabled` is `madvise` on most distributions) and only for 2 MiB
//! aligned ranges, which `malloc` does not produce. [`HugeAlloc`] therefore maps allocations of
//! at least [`THRESHOLD`] bytes itself: 2 MiB aligned, rounded up to 2 MiB, `MADV_HUGEPAGE`
//! before the first touch. Everything smaller goes to the system allocator.
//!
//! Such a mapping is also populated at once (`MADV_POPULATE_WRITE`): the session table is
//! sized for `max_sessions` and filled at random slots, and taking its page faults while
//! packets wait would cost a worker a fault (a 2 MiB zeroing, and on a fresh virtual machine
//! the host's own faults behind it) in the middle of a burst of new flows. Large tables are
//! therefore resident from their allocation on: RSS includes the whole session table.
//!
//! The router binary and the benchmarks install it with `#[global_allocator]`; the library's
//! data structures need no change (they allocate with `Vec`/`Box` as usual). Where THP is
//! disabled (`never`) the advice is ignored and the memory is ordinary pages.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    ptr,
};

/// Huge page size (x86-64 and arm64 with 4 KiB base pages).
const HUGE: usize = 2 << 20;
/// Allocations of at least this many bytes get their own huge-page-backed mapping.
pub const THRESHOLD: usize = 1 << 20;

/// The global allocator: [`System`] for small allocations, 2 MiB-aligned `mmap` with
/// `MADV_HUGEPAGE` for large ones (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct HugeAlloc;

/// Whether `layout` is served by a mapping of its own.
#[inline]
fn is_large(layout: Layout) -> bool {
    layout.size() >= THRESHOLD && layout.align() <= HUGE
}

/// Bytes mapped for a large allocation of `size` bytes.
#[inline]
fn mapped_len(size: usize) -> usize {
    size.next_multiple_of(HUGE)
}

/// A fresh 2 MiB-aligned anonymous mapping of `len` bytes (a multiple of [`HUGE`]) with
/// `MADV_HUGEPAGE`, or null.
fn map_huge(len: usize) -> *mut u8 {
    // Over-map by one huge page so that an aligned start exists, then trim both ends.
    let Some(span) = len.checked_add(HUGE) else {
        return ptr::null_mut();
    };
    // SAFETY: a new private anonymous mapping; no existing memory is affected.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = start.next_multiple_of(HUGE);
    let head = aligned - start;
    let tail = span - head - len;
    if head > 0 {
        // SAFETY: `[start, start + head)` is the unused head of the mapping just created,
        // which nothing references.
        unsafe { libc::munmap(raw, head) };
    }
    if tail > 0 {
        // SAFETY: `[aligned + len, aligned + len + tail)` is the unused tail of that mapping.
        unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
    }
    // SAFETY: `[aligned, aligned + len)` is the mapping we keep; madvise only sets its THP
    // policy (a failure, e.g. THP compiled out, leaves ordinary pages and is harmless).
    unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    // SAFETY: as above; MADV_POPULATE_WRITE (Linux 5.14) only faults the range in now, with
    // the huge pages just asked for, as a first write would. Failure (an older kernel, or
    // memory short) leaves the pages to be faulted in on first touch, as without it.
    unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
    aligned as *mut u8
}

// SAFETY: large blocks are fresh mappings of at least `layout.size()` bytes aligned to 2 MiB
// (>= `layout.align()`, checked by `is_large`), returned to no one else until `dealloc`
// unmaps exactly that mapping; `is_large` depends only on the layout, so `dealloc` and
// `realloc` route a block to the allocator that made it. Small blocks are `System`'s.
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            map_huge(mapped_len(layout.size()))
        } else {
            // SAFETY: forwarded with the caller's guarantees (non-zero size).
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            // Fresh anonymous mappings read as zero.
            map_huge(mapped_len(layout.size()))
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout) {
            // SAFETY: the caller passes a block this allocator returned for `layout`, i.e. the
            // mapping `map_huge` made of exactly `mapped_len(layout.size())` bytes.
            unsafe { libc::munmap(ptr.cast(), mapped_len(layout.size())) };
        } else {
            // SAFETY: forwarded; the block came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align(new_size, layout.align());
        let Ok(new_layout) = new_layout else {
            return ptr::null_mut();
        };
        match (is_large(layout), is_large(new_layout)) {
            // SAFETY: forwarded; both the old and the new block are System's.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) if mapped_len(layout.size()) == mapped_len(new_size) => ptr,
            _ => {
                // SAFETY: the caller guarantees `new_layout` is valid and non-zero.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: `ptr` is valid for `layout.size()` bytes, `new` for `new_size`;
                    // they are distinct blocks, so they do not overlap.
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    }
                    // SAFETY: `ptr` was allocated by this allocator with `layout`.
                    unsafe { self.dealloc(ptr, layout) };
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_huge_aligned_and_zeroed() {
        let a = HugeAlloc;
        let layout = Layout::from_size_align(THRESHOLD + 12345, 64).unwrap();
        // SAFETY: non-zero size; freed below with the same layout.
        let p = unsafe { a.alloc_zeroed(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % HUGE, 0);
        // SAFETY: `p` is valid for `layout.size()` bytes.
        let s = unsafe { std::slice::from_raw_parts_mut(p, layout.size()) };
        assert!(s.iter().all(|&b| b == 0));
        s[layout.size() - 1] = 7;
        // Growing within the mapping keeps the block; past it moves and keeps the contents.
        // SAFETY: `p` came from `a` with `layout`.
        let q = unsafe { a.realloc(p, layout, mapped_len(layout.size())) };
        assert_eq!(q, p);
        let grown = Layout::from_size_align(mapped_len(layout.size()), 64).unwrap();
        // SAFETY: `q` came from `a` with `grown` (same mapping).
        let r = unsafe { a.realloc(q, grown, 3 * HUGE) };
        assert!(!r.is_null());
        let last = r.wrapping_add(layout.size() - 1);
        // SAFETY: `r` is valid for 3 * HUGE bytes, so `last` is in bounds.
        assert_eq!(unsafe { *last }, 7);
        let big = Layout::from_size_align(3 * HUGE, 64).unwrap();
        // Shrinking below the threshold moves the block to the system allocator.
        // SAFETY: `r` came from `a` with `big`.
        let t = unsafe { a.realloc(r, big, 100) };
        // SAFETY: `t` is valid for 100 bytes.
        assert_eq!(unsafe { *t }, 0);
        // SAFETY: `t` came from `a` with a 100-byte layout.
        unsafe { a.dealloc(t, Layout::from_size_align(100, 64).unwrap()) };
    }

    #[test]
    fn small_blocks_use_the_system_allocator() {
        assert!(!is_large(
            Layout::from_size_align(THRESHOLD - 1, 8).unwrap()
        ));
        assert!(is_large(Layout::from_size_align(THRESHOLD, 8).unwrap()));
        assert!(!is_large(
            Layout::from_size_align(THRESHOLD, 2 * HUGE).unwrap()
        ));
        assert_eq!(mapped_len(1), HUGE);
        assert_eq!(mapped_len(HUGE), HUGE);
        assert_eq!(mapped_len(HUGE + 1), 2 * HUGE);
    }
}
