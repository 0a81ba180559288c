//! `io::bpfmap`: a `BPF_F_MMAPABLE` array map's values, memory-mapped into this process.
//!
//! The kernel lays an mmapable array's values out contiguously from offset 0 of the map's
//! fd, each `value_size` rounded up to 8 bytes, and lets a process map them rounded up to a
//! page. A mapping keeps the map alive by itself: it stays valid after the program and its
//! fds are gone, until it is unmapped (on drop of the last owner).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::AtomicU64,
};

/// A shared read-write mapping of a BPF array map's values.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; `Mapping` itself only unmaps it on drop. Who
// writes which bytes is the owner's contract (one writer per `txq` slot in `xdp_tx`, atomic
// words only in `PortWords`), not this handle's.
unsafe impl Send for Mapping {}
// SAFETY: as above; a `&Mapping` reads or writes nothing itself.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map the first `bytes` bytes (rounded up to a page) of the values of `map_fd`, an array
    /// map created with `BPF_F_MMAPABLE` whose values span at least `bytes`.
    ///
    /// # Errors
    /// `mmap` failed (not mmapable, or `bytes` beyond the map).
    pub fn new(map_fd: BorrowedFd<'_>, bytes: usize, what: &str) -> io::Result<Mapping> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = bytes.max(1).next_multiple_of(page);
        // SAFETY: a new shared mapping of `len` bytes of the map's fd at offset 0, where the
        // kernel places the array's values; the kernel refuses (MAP_FAILED) a length beyond
        // the values rounded up to a page. No existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map_fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::other(format!(
                "mmap {what} map: {}",
                io::Error::last_os_error()
            )));
        }
        let base = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::other(format!("mmap {what} map: null")))?;
        Ok(Mapping { base, len })
    }

    /// Start of the mapping.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the address and length of the successful `mmap` in
        // `Mapping::new`; this runs once, when the last owner (and so every user of the
        // memory) is gone.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// An mmapable array of `u64` values seen as atomic words, shared by this process (any
/// thread) and a BPF program (which reads them with plain loads).
#[derive(Debug)]
pub struct Words {
    map: Mapping,
    words: usize,
}

impl Words {
    /// Map the `words` u64 values of `map_fd` (an mmapable array with `value_size` 8 and at
    /// least `words` entries).
    ///
    /// # Errors
    /// `mmap` failed.
    pub fn new(map_fd: BorrowedFd<'_>, words: usize, what: &str) -> io::Result<Words> {
        let map = Mapping::new(map_fd, words * 8, what)?;
        Ok(Words { map, words })
    }
}

impl AsRef<[AtomicU64]> for Words {
    fn as_ref(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned (so 8-aligned), at least `words * 8` bytes long
        // and lives as long as `self`. AtomicU64 has u64's layout; every access from this
        // process goes through these atomics, and the kernel's BPF side only performs
        // aligned 8-byte loads, so no non-atomic Rust access to the words ever exists.
        unsafe { std::slice::from_raw_parts(self.map.base().cast::<AtomicU64>(), self.words) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_a_non_bpf_fd_fails_cleanly() {
        // /dev/null cannot be mapped shared read-write: the error names the map.
        let f = std::fs::File::open("/dev/null").expect("open /dev/null");
        use std::os::fd::AsFd;
        let e = Mapping::new(f.as_fd(), 8, "nat_ports").unwrap_err();
        assert!(e.to_string().contains("nat_ports"), "{e}");
    }
}
