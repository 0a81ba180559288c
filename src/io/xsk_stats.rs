//! AF_XDP socket statistics read live from any thread (`xgw show interfaces`, metrics):
//! `getsockopt(SOL_XDP, XDP_STATISTICS)` on duplicates of the workers' socket descriptors,
//! so the reader never touches a worker's rings and its descriptors stay valid however long
//! it lives (a socket closes only with its last descriptor).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd},
    sync::Arc,
};

use parking_lot::RwLock;

/// One socket's counters (`struct xdp_statistics`, Linux 5.9+ layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct XskStats {
    /// Frames dropped for reasons other than a full ring (e.g. no fill-ring buffer in
    /// copy mode).
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring / RX side.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when the kernel needed a buffer.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was empty when the kernel looked for frames to send.
    pub tx_ring_empty_descs: u64,
}

const SOL_XDP: libc::c_int = 283;
const XDP_STATISTICS: libc::c_int = 7;

/// Duplicated socket descriptors: `[queue][port]`. Clones share them (a port's socket
/// replaced by [`XskStatsReader::replace`] is read by every clone).
#[derive(Debug, Default, Clone)]
pub struct XskStatsReader {
    fds: Arc<RwLock<Vec<Vec<OwnedFd>>>>,
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is an open AF_XDP socket owned by the caller's `XskIo` for the duration
    // of this call; it is only borrowed to duplicate it.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned()
}

impl XskStatsReader {
    /// Keep duplicates of one queue's sockets, in port order.
    ///
    /// # Errors
    /// `dup` failed (descriptor limit).
    pub fn add_queue(&mut self, fds: &[RawFd]) -> io::Result<()> {
        let v = fds.iter().map(|&fd| dup(fd)).collect::<io::Result<_>>()?;
        self.fds.write().push(v);
        Ok(())
    }

    /// Queue `q`'s socket on `port` is now `fd` (the port's device was created anew); the
    /// duplicate of the old one is closed.
    ///
    /// # Errors
    /// No such queue or port, or `dup` failed.
    pub fn replace(&self, q: usize, port: usize, fd: RawFd) -> io::Result<()> {
        let new = dup(fd)?;
        let mut fds = self.fds.write();
        let slot = fds
            .get_mut(q)
            .and_then(|v| v.get_mut(port))
            .ok_or_else(|| io::Error::other(format!("no socket for queue {q} port {port}")))?;
        *slot = new;
        Ok(())
    }

    /// Number of queues.
    pub fn queues(&self) -> usize {
        self.fds.read().len()
    }

    /// The statistics of queue `q`'s socket on `port`, or `None` if there is none or the
    /// kernel refuses.
    pub fn read(&self, q: usize, port: usize) -> Option<XskStats> {
        let fds = self.fds.read();
        let fd = fds.get(q)?.get(port)?;
        let mut st = XskStats::default();
        let mut len = std::mem::size_of::<XskStats>() as libc::socklen_t;
        // SAFETY: `fd` is an open descriptor we own; `st` is a writable `repr(C)` buffer of
        // `len` bytes matching `struct xdp_statistics`, and the kernel writes at most `len`.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                SOL_XDP,
                XDP_STATISTICS,
                (&raw mut st).cast(),
                &raw mut len,
            )
        };
        (r == 0).then_some(st)
    }
}
