//! `io`: the only module that touches AF_XDP, libbpf and raw memory.
//!
//! Owns: the [`PacketIo`] trait the worker loop drives, its AF_XDP implementation
//! ([`xsk`], with the XDP steering program in [`xdp`]) and the memory-backed one used by
//! tests and benches ([`mem`]).
//!
//! Must not depend on: `dataplane` internals, `control`. It speaks in port indices
//! (`usize`, the position of the interface in the config) and raw frames.
//!
//! This is the crate's `unsafe` quarantine (DESIGN R8): every `unsafe` block carries a
//! `// SAFETY:` comment naming the invariant (frame ownership U1..U4 in [`xsk`]).
#![allow(unsafe_code)]

#[cfg(feature = "xdp")]
pub mod bpfmap;
pub mod hugealloc;
#[cfg(feature = "xdp")]
pub mod loadgen;
pub mod mem;
pub mod natlog;
pub mod netdev;
pub mod netlink;
pub mod sched;
pub mod waker;
#[cfg(feature = "xdp")]
pub mod xdp;
#[cfg(feature = "xdp")]
pub mod xdp_tx;
#[cfg(feature = "xdp")]
pub mod xsk;
pub mod xsk_stats;

/// Maximum frames handled per receive burst (VPP's frame size, l3fwd's `MAX_PKT_BURST`).
pub const BATCH: usize = 64;

/// What the worker decided for one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Return the frame to the receive pool (dropped, or copied out to the control plane).
    Drop,
    /// Transmit the frame, as modified in place, on this port.
    Tx(u16),
}

/// Frame I/O seen by a worker: bursts of received frames as mutable views, transmission by
/// verdict, and injection of frames built by the control plane.
///
/// Implementations never allocate per received packet and never block, except in
/// [`PacketIo::wait`].
pub trait PacketIo {
    /// Number of ports (interfaces) this I/O serves; ports are `0..port_count()`.
    fn port_count(&self) -> usize;

    /// Receive up to [`BATCH`] frames on `port` and hand them to `f` as mutable views with a
    /// verdict slot each (initialised to [`Verdict::Drop`]). After `f` returns, frames are
    /// queued for transmission or recycled according to their verdicts. Returns the number
    /// of frames received.
    fn rx_burst<F>(&mut self, port: usize, f: F) -> usize
    where
        F: FnOnce(&mut [&mut [u8]], &mut [Verdict]);

    /// Copy `frame` into a free buffer and queue it for transmission on `port`.
    /// Returns false (and counts nothing itself) when no buffer or TX slot is free.
    fn inject(&mut self, port: usize, frame: &[u8]) -> bool;

    /// Housekeeping once per loop: kick transmission where the kernel asked for a wakeup,
    /// reap completions and top up the fill rings.
    fn flush(&mut self);

    /// Sleep until a frame may be ready, `wake` becomes readable, or `timeout` passes
    /// (idle back-off).
    fn wait(&mut self, timeout: std::time::Duration, wake: std::os::fd::BorrowedFd<'_>);

    /// Frames that could not be transmitted because a TX ring was full (cumulative).
    fn tx_dropped(&self) -> u64;

    /// Driver/socket statistics as `(name, value)` pairs, for logs (empty by default).
    fn stats(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Port `port`'s device was deleted and one named `ifname` exists again: serve it
    /// instead. Returns the new socket's descriptor, if there is one to steer frames to
    /// (the XSKMAP); by default, I/O that is not bound to devices has nothing to do.
    ///
    /// # Errors
    /// The port cannot be moved to the new device (it keeps its old state).
    fn reattach(&mut self, port: usize, ifname: &str) -> std::io::Result<Option<i32>> {
        let _ = (port, ifname);
        Ok(None)
    }
}
