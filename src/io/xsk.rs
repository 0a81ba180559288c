//! `io::xsk`: AF_XDP I/O for one worker: one UMEM shared by its sockets on every port
//! at the worker's queue id, so a frame received on one port is transmitted on another by
//! moving its descriptor (no copy).
//!
//! # Frame ownership invariants
//! - **U1** Every frame of the UMEM is, at any time, in exactly one of: a fill ring, an RX
//!   ring, the worker's current burst (`rx_descs[..n]`), a TX ring, a completion ring, or
//!   the `free` list. Descriptors move by value between these; nothing duplicates them.
//! - **U2** A descriptor returned by `RxQueue::consume` or `CompQueue::consume` has been
//!   released by the kernel: userspace may read and write its frame until it is handed to a
//!   fill or TX ring again.
//! - **U3** Every descriptor comes from this worker's `Umem` (created in [`XskIo::new`]),
//!   and all rings used here belong to sockets created from that same `Umem`.
//! - **U4** Sockets that share a `(ifname, queue)` pair are never created (one socket per
//!   port per worker), and the XDP program is loaded by us, not by libxdp (the
//!   `INHIBIT_PROG_LOAD` flag) — the precondition of `Socket::new`.
//!
//! - **U5** `owner[i]` names the port whose rings hold frame `i` (0: none). So when a
//!   port's device is deleted, the frames stranded in its dead rings are known and taken
//!   back once its socket is closed ([`XskIo::reattach`]).
//!
//! In debug builds `check_conservation` asserts U1's count after every loop: frames in
//! `free` + those handed to fill and TX rings and not yet returned == the UMEM's size.

use std::{
    ffi::CString,
    io,
    num::NonZeroU32,
    os::fd::{AsRawFd, BorrowedFd},
    time::{Duration, Instant},
};

use xsk_rs::{
    config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig},
    umem::frame::DataMut,
    CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem,
};

use super::{
    xdp_tx::{redirect_target, XdpTx},
    PacketIo, Verdict, BATCH,
};

/// Size of one UMEM frame.
pub const FRAME_SIZE: u32 = 4096;
/// Descriptors per ring (fill, completion, RX, TX).
pub const RING_SIZE: u32 = 2048;

/// The rings of one socket (one port at this worker's queue id).
struct PortRings {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    /// Frames handed to this port's fill ring and not yet received (U1 accounting).
    in_fill: usize,
    /// Frames handed to this port's TX ring and not yet completed.
    in_tx: usize,
    /// Frames received on this burst for TX on this port, not yet produced.
    pending_tx: Vec<FrameDesc>,
    /// The device's ifindex (the XDP-redirect path's egress).
    ifindex: u32,
    /// The configuration allows the XDP-redirect TX path on this port.
    redirect_allowed: bool,
    /// The socket is bound in zero-copy mode (then AF_XDP TX copies nothing: keep it).
    zerocopy: bool,
    /// Transmit through [`XdpTx`] now (allowed, copy mode, and the device accepts
    /// redirected frames at the last check).
    redirect: bool,
}

impl std::fmt::Debug for PortRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortRings")
            .field("in_fill", &self.in_fill)
            .field("in_tx", &self.in_tx)
            .finish()
    }
}

/// A worker's AF_XDP I/O.
#[derive(Debug)]
pub struct XskIo {
    umem: Umem,
    ports: Vec<PortRings>,
    free: Vec<FrameDesc>,
    /// Every frame's descriptor as the UMEM handed it out, by frame index (U5).
    frames: Vec<FrameDesc>,
    /// Where each frame is, by frame index (U5): 0 in userspace (`free`, a burst), `p + 1`
    /// in port `p`'s fill or TX ring (or its completion ring).
    owner: Vec<u8>,
    queue_id: u32,
    sock_cfg: SocketConfig,
    rx_descs: [FrameDesc; BATCH],
    scratch: Vec<FrameDesc>,
    total_frames: usize,
    tx_dropped: u64,
    /// The XDP-redirect transmitter, if enabled ([`XskIo::use_xdp_tx`]).
    xdp_tx: Option<XdpTx>,
    /// A burst of this loop iteration was full: more frames are waiting, so queued
    /// redirect frames may wait for a bigger batch (up to [`XDP_TX_FLUSH_AT`]).
    busy: bool,
    /// When to re-check which ports accept redirected frames.
    next_probe: Instant,
    /// Pause of the redirect path after failed runs.
    redirect_backoff: super::xdp_tx::Backoff,
}

/// Frames the XDP-redirect queue collects while receive bursts keep coming full, before a
/// `BPF_PROG_RUN` sends them: each run costs a fixed ~20 µs (page pool set-up) on top of
/// ~0.25 µs per frame, so batching amortises it; when bursts stop being full the queue is
/// sent at once.
const XDP_TX_FLUSH_AT: u32 = 512;
/// Bursts smaller than this go out through the AF_XDP TX ring even where XDP redirect is
/// available (unless redirect frames are already queued). A redirect run has a fixed cost
/// (~18 µs: page pool set-up) and a small one per frame (~0.25 µs), a copy-mode AF_XDP
/// transmit none and a large one per frame (~1.7 µs, measured on the lab's veth): below ~12
/// frames AF_XDP costs less CPU and, for sparse traffic like a ping, less latency.
const XDP_TX_MIN_BURST: usize = 16;
/// How often a port's redirect capability is re-checked (a veth peer may gain or lose its
/// XDP program or GRO).
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Options for creating a worker's sockets.
#[derive(Debug, Clone, Copy)]
pub struct XskOptions {
    /// Frames in the worker's UMEM (shared by its ports).
    pub frames_per_port: u32,
    /// Force copy mode (needed with generic XDP; veth has no zero-copy anyway).
    pub force_copy: bool,
}

impl Default for XskOptions {
    fn default() -> Self {
        XskOptions {
            frames_per_port: 2 * RING_SIZE,
            force_copy: false,
        }
    }
}

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+, `include/uapi/linux/if_xdp.h`): how many TX
/// descriptors one copy-mode `sendto()` turns into skbs. The default is 32, so a full
/// burst would take several syscalls; raise it to the ring size. Older kernels reject the
/// option, which only costs the extra kicks.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// A socket on `name` at `queue_id` from `umem`, with its own fill and completion rings.
fn open_port(
    sock_cfg: SocketConfig,
    umem: &Umem,
    name: &str,
    queue_id: u32,
) -> io::Result<PortRings> {
    let cname = CString::new(name).map_err(|e| io_err("ifname", e))?;
    // SAFETY: U4 — this worker creates exactly one socket per (ifname, queue_id) (a port's
    // socket is replaced only after its device was deleted: a new device is a new pair),
    // and INHIBIT_PROG_LOAD is set because the XDP program is ours (io::xdp).
    let (tx, rx, rings) = unsafe { Socket::new(sock_cfg, umem, &Interface::new(cname), queue_id) }
        .map_err(|e| io_err(&format!("AF_XDP socket on {name} queue {queue_id}"), e))?;
    let (fq, cq) = rings.ok_or_else(|| {
        io_err(
            name,
            "no fill/completion rings (pair already bound from this UMEM)",
        )
    })?;
    raise_tx_budget(rx.fd().as_raw_fd());
    let zerocopy = bound_zerocopy(rx.fd().as_raw_fd());
    let ifindex = CString::new(name)
        .ok()
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        .map_or(0, |c| unsafe { libc::if_nametoindex(c.as_ptr()) });
    Ok(PortRings {
        tx,
        rx,
        fq,
        cq,
        in_fill: 0,
        in_tx: 0,
        pending_tx: Vec::with_capacity(BATCH),
        ifindex,
        redirect_allowed: false,
        zerocopy,
        redirect: false,
    })
}

/// U5: the frames of `descs` are now where `to` says (0: userspace, `p + 1`: port `p`).
#[inline]
fn mark(owner: &mut [u8], descs: &[FrameDesc], to: usize) {
    let to = u8::try_from(to).unwrap_or(u8::MAX);
    for d in descs {
        if let Some(o) = owner.get_mut(d.addr() / FRAME_SIZE as usize) {
            *o = to;
        }
    }
}

/// Does a device with this ifindex exist (in this network namespace)?
fn device_exists(ifindex: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` is IF_NAMESIZE bytes, as if_indextoname requires; it writes at most that.
    !unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null()
}

fn raise_tx_budget(fd: i32) {
    let budget: u32 = RING_SIZE;
    // SAFETY: `fd` is the live AF_XDP socket just created by the caller; the option value
    // points at a `u32` on our stack with its exact size, which the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&budget as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(
            "XDP_MAX_TX_SKB_BUDGET not supported ({}); copy-mode TX sends 32 frames per kick",
            io::Error::last_os_error()
        );
    }
}

/// Start loading the first cache line of `frame` (its Ethernet and IPv4 headers). In copy
/// mode the kernel wrote each frame on another core, so the first read of every frame is a
/// cache miss; prefetching the whole burst up front overlaps those misses instead of taking
/// them one by one in `ethernet-input` (DPDK l3fwd does the same).
#[inline(always)]
fn prefetch(frame: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and has no effect on program semantics,
    // whatever the address; SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(frame.as_ptr().cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = frame;
}

/// `XDP_OPTIONS` (`include/uapi/linux/if_xdp.h`) and its `XDP_OPTIONS_ZEROCOPY` flag.
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// Whether the AF_XDP socket `fd` is bound in zero-copy mode.
fn bound_zerocopy(fd: i32) -> bool {
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `fd` is the live AF_XDP socket just created by the caller; the kernel writes at
    // most `len` (4) bytes of `struct xdp_options` into `flags` and updates `len`, both on our
    // stack and alive for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            XDP_OPTIONS,
            (&mut flags as *mut u32).cast(),
            &mut len,
        )
    };
    rc == 0 && flags & XDP_OPTIONS_ZEROCOPY != 0
}

fn io_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl XskIo {
    /// Create one socket per port in `ifnames` at `queue_id`, all on one new UMEM, and prime
    /// the fill rings.
    pub fn new(ifnames: &[String], queue_id: u32, opts: XskOptions) -> io::Result<XskIo> {
        let nports = u32::try_from(ifnames.len()).map_err(|e| io_err("ports", e))?;
        let frames = NonZeroU32::new(opts.frames_per_port * nports.max(1))
            .ok_or_else(|| io_err("umem", "zero frames"))?;
        let qs = |n| QueueSize::new(n).map_err(|e| io_err("queue size", e));
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE).map_err(|e| io_err("frame size", e))?)
            .fill_queue_size(qs(RING_SIZE)?)
            .comp_queue_size(qs(RING_SIZE)?)
            .build()
            .map_err(|e| io_err("umem config", e))?;
        let (umem, descs) = Umem::new(umem_cfg, frames, false).map_err(|e| io_err("umem", e))?;
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        if opts.force_copy {
            bind |= BindFlags::XDP_COPY;
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(qs(RING_SIZE)?)
            .tx_queue_size(qs(RING_SIZE)?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let mut ports = Vec::new();
        for name in ifnames {
            ports.push(open_port(sock_cfg, &umem, name, queue_id)?);
        }
        let total_frames = descs.len();
        if ifnames.len() >= usize::from(u8::MAX) {
            return Err(io_err("ports", "more than 254"));
        }
        let mut io = XskIo {
            umem,
            ports,
            frames: descs.clone(),
            owner: vec![0; descs.len()],
            queue_id,
            sock_cfg,
            free: descs,
            rx_descs: [FrameDesc::default(); BATCH],
            scratch: vec![FrameDesc::default(); RING_SIZE as usize],
            total_frames,
            tx_dropped: 0,
            xdp_tx: None,
            busy: false,
            next_probe: Instant::now(),
            redirect_backoff: super::xdp_tx::Backoff::default(),
        };
        io.refill();
        Ok(io)
    }

    /// Transmit through `tx` (XDP redirect, see [`super::xdp_tx`]) on the ports where it
    /// helps: `ports[i]` is port i's `(ifindex, allowed by the configuration)`. A port uses it
    /// while allowed, its socket is in copy mode and the device accepts redirected frames
    /// (re-checked every second); the others keep the AF_XDP TX ring.
    pub fn use_xdp_tx(&mut self, tx: XdpTx, ports: &[(u32, bool)]) {
        for (p, &(ifindex, allowed)) in self.ports.iter_mut().zip(ports) {
            p.ifindex = ifindex;
            p.redirect_allowed = allowed;
        }
        self.xdp_tx = Some(tx);
        self.probe_redirect();
    }

    /// Re-check which ports can take the XDP-redirect path.
    fn probe_redirect(&mut self) {
        self.next_probe = Instant::now() + PROBE_EVERY;
        if self.xdp_tx.is_none() {
            return;
        }
        let usable = self.redirect_backoff.allows(Instant::now());
        for (i, p) in self.ports.iter_mut().enumerate() {
            let now = usable && p.redirect_allowed && !p.zerocopy && redirect_target(p.ifindex);
            if now != p.redirect {
                tracing::info!(
                    port = i,
                    ifindex = p.ifindex,
                    "transmit path: {}",
                    if now {
                        "XDP redirect"
                    } else {
                        "AF_XDP (the device does not accept redirected frames now)"
                    }
                );
                p.redirect = now;
            }
        }
    }

    /// Send what the XDP-redirect queue holds, unless receive bursts are still coming full
    /// and the queue is short of [`XDP_TX_FLUSH_AT`].
    fn flush_xdp_tx(&mut self) {
        if let Some(tx) = &mut self.xdp_tx {
            let q = tx.queued();
            if q > 0 && (!self.busy || q >= XDP_TX_FLUSH_AT) {
                match tx.flush() {
                    Ok(()) => self.redirect_backoff.succeeded(),
                    Err(e) => {
                        // The kernel refused the run: the batch is lost (xdp_tx.failed); the
                        // AF_XDP rings carry everything until the backoff allows a retry
                        // (the next probe after it re-enables the ports that still qualify).
                        self.redirect_backoff.failed(Instant::now());
                        tracing::warn!(
                            failures = self.redirect_backoff.failures(),
                            "XDP-redirect transmit failed ({e}); AF_XDP rings until a retry"
                        );
                        for p in &mut self.ports {
                            p.redirect = false;
                        }
                    }
                }
            }
        }
        self.busy = false;
    }

    /// Port `port`'s device was deleted and a device of its name, `ifname`, exists again:
    /// bind a new socket there (same UMEM), close the old one and take back the frames
    /// stranded in its rings. Returns the new socket's descriptor (for the XSKMAP).
    ///
    /// # Errors
    /// The old device still exists (renamed, not deleted: its socket could still receive
    /// into the frames, so they are not taken back and nothing changes), or the new socket
    /// could not be created (the old one stays).
    pub fn reattach(&mut self, port: usize, ifname: &str) -> io::Result<i32> {
        let Some(old) = self.ports.get(port) else {
            return Err(io_err("reattach", format!("no port {port}")));
        };
        // The first port's socket shares its descriptor with the UMEM, and every other
        // socket binds through that descriptor (libxdp's shared UMEM): while it is unbound
        // (its device deleted) no socket can be bound from this UMEM, so that port cannot
        // be moved, nor any port while its device is gone.
        if port == 0 || self.ports[0].ifindex == 0 || !device_exists(self.ports[0].ifindex) {
            return Err(io_err(
                "reattach",
                "the first interface's socket carries the worker's UMEM and its device is \
                 gone: restart xgw to attach to the new device",
            ));
        }
        if old.ifindex != 0 && device_exists(old.ifindex) {
            return Err(io_err(
                "reattach",
                format!(
                    "the old device (ifindex {}) still exists; delete it",
                    old.ifindex
                ),
            ));
        }
        let mut new = open_port(self.sock_cfg, &self.umem, ifname, self.queue_id)?;
        new.redirect_allowed = old.redirect_allowed;
        let old = std::mem::replace(&mut self.ports[port], new);
        debug_assert!(old.pending_tx.is_empty(), "only within a burst");
        let stranded = old.in_fill + old.in_tx;
        // The kernel unbound the old socket when its device was unregistered
        // (xsk_unbind_dev, under rtnl, before a device of the same name could be created
        // again): it no longer receives into or sends from the UMEM, whatever still holds
        // its descriptor (the statistics reader's duplicate, until replaced).
        drop(old);
        let tag = u8::try_from(port + 1).unwrap_or(u8::MAX);
        for (i, o) in self.owner.iter_mut().enumerate() {
            if *o == tag {
                // U1/U5: frame `i` was in the dead socket's rings and nowhere else; the
                // socket is gone, so userspace owns it again.
                *o = 0;
                self.free.push(self.frames[i]);
            }
        }
        debug_assert_eq!(
            self.free.len()
                + self
                    .ports
                    .iter()
                    .map(|p| p.in_fill + p.in_tx)
                    .sum::<usize>(),
            self.total_frames,
            "U5: {stranded} frames were in the dead rings"
        );
        tracing::info!(
            port,
            ifname,
            queue = self.queue_id,
            frames_reclaimed = stranded,
            "AF_XDP socket re-created on the new device"
        );
        self.probe_redirect();
        self.refill();
        Ok(self.ports[port].rx.fd().as_raw_fd())
    }

    /// Frames in this worker's UMEM.
    pub fn frame_count(&self) -> usize {
        self.total_frames
    }

    /// File descriptors of the sockets, in port order (for the XSKMAP).
    pub fn fds(&self) -> Vec<i32> {
        self.ports.iter().map(|p| p.rx.fd().as_raw_fd()).collect()
    }

    /// Top up every fill ring from the free list, sharing frames fairly between ports.
    fn refill(&mut self) {
        let share = (self.free.len() / self.ports.len().max(1)).max(1);
        for (i, p) in self.ports.iter_mut().enumerate() {
            let want = u32::try_from(share.min(self.free.len())).unwrap_or(u32::MAX);
            let n = p.fq.nb_free(want).min(want) as usize;
            if n == 0 {
                continue;
            }
            let from = self.free.len() - n;
            // SAFETY: U1/U2 — the descriptors in `free` are owned by userspace only (not in
            // any ring) and belong to this UMEM (U3); after `produce` they are removed from
            // `free`, so each is handed to the kernel exactly once. `n <= nb_free`, so the
            // ring accepts all of them.
            let produced = unsafe { p.fq.produce(&self.free[from..]) };
            debug_assert_eq!(produced, n);
            mark(&mut self.owner, &self.free[from..from + produced], i + 1);
            self.free.truncate(self.free.len() - produced);
            p.in_fill += produced;
            if p.fq.needs_wakeup() {
                // A poll with timeout 0 lets the kernel resume filling (need_wakeup).
                let _ = p.fq.wakeup(p.rx.fd_mut(), 0);
            }
        }
    }

    /// Reap TX completions into the free list.
    fn complete(&mut self) {
        for p in &mut self.ports {
            if p.in_tx == 0 {
                continue;
            }
            // SAFETY: U2 — `consume` returns descriptors the kernel has finished sending;
            // they come from this UMEM (U3) and `scratch` is ours.
            let n = unsafe { p.cq.consume(&mut self.scratch) };
            p.in_tx -= n;
            mark(&mut self.owner, &self.scratch[..n], 0);
            self.free.extend_from_slice(&self.scratch[..n]);
        }
    }

    /// Hand each port's pending descriptors to its TX ring and kick it if asked.
    fn transmit_pending(&mut self) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if p.pending_tx.is_empty() {
                continue;
            }
            let want = u32::try_from(p.pending_tx.len()).unwrap_or(u32::MAX);
            let room = p.tx.nb_free(want).min(want) as usize;
            // SAFETY: U1 — the descriptors in `pending_tx` came out of this worker's RX ring
            // (or free list) in this iteration and are in no ring; U3 — same UMEM. `room <=
            // nb_free`, so the ring takes them all.
            let sent = unsafe { p.tx.produce(&p.pending_tx[..room]) };
            p.in_tx += sent;
            mark(&mut self.owner, &p.pending_tx[..sent], i + 1);
            let unsent = p.pending_tx.len() - sent;
            if unsent > 0 {
                self.tx_dropped += unsent as u64;
                self.free.extend_from_slice(&p.pending_tx[sent..]);
            }
            p.pending_tx.clear();
            if sent > 0 && p.tx.needs_wakeup() {
                // Copy mode transmits only on sendto(); errors (EAGAIN/ENOBUFS) mean "retry
                // on the next kick", which the next flush does.
                let _ = p.tx.wakeup();
            }
        }
    }

    #[cfg(debug_assertions)]
    fn check_conservation(&self) {
        let rings: usize = self.ports.iter().map(|p| p.in_fill + p.in_tx).sum();
        debug_assert_eq!(
            self.free.len() + rings,
            self.total_frames,
            "U1: frames lost or duplicated"
        );
    }
}

impl PacketIo for XskIo {
    fn port_count(&self) -> usize {
        self.ports.len()
    }

    fn rx_burst<F>(&mut self, port: usize, f: F) -> usize
    where
        F: FnOnce(&mut [&mut [u8]], &mut [Verdict]),
    {
        let p = &mut self.ports[port];
        // SAFETY: U2 — `consume` writes into `rx_descs` descriptors the kernel has released
        // (they left this port's fill ring, which only ever receives frames of this UMEM).
        let n = unsafe { p.rx.consume(&mut self.rx_descs) };
        if n == 0 {
            return 0;
        }
        p.in_fill -= n;
        mark(&mut self.owner, &self.rx_descs[..n], 0);
        let mut verdicts = [Verdict::Drop; BATCH];
        {
            let umem = &self.umem;
            let mut data: [Option<DataMut<'_>>; BATCH] = std::array::from_fn(|_| None);
            for (slot, desc) in data.iter_mut().zip(self.rx_descs[..n].iter_mut()) {
                // SAFETY: U1 — each descriptor in `rx_descs[..n]` is distinct and owned by
                // userspace (U2), so no other reference to its frame exists; U3 — it belongs
                // to `umem`. The `DataMut` borrows the descriptor, so it cannot outlive the
                // burst: it is dropped before the descriptor is handed to a ring below.
                *slot = Some(unsafe { umem.data_mut(desc) });
            }
            let mut views: [&mut [u8]; BATCH] = std::array::from_fn(|_| <&mut [u8]>::default());
            for (v, d) in views.iter_mut().zip(data.iter_mut()) {
                if let Some(d) = d {
                    *v = d.contents_mut();
                    prefetch(v);
                }
            }
            f(&mut views[..n], &mut verdicts[..n]);
            // Small bursts keep the AF_XDP ring (see XDP_TX_MIN_BURST), unless frames are
            // already queued for redirect: then everything follows them, in order.
            let redirect_tx = self
                .xdp_tx
                .as_mut()
                .filter(|tx| n >= XDP_TX_MIN_BURST || tx.queued() > 0);
            if let Some(tx) = redirect_tx {
                for (v, frame) in verdicts[..n].iter_mut().zip(&views[..n]) {
                    if let Verdict::Tx(out) = *v {
                        if let Some(p) = self.ports.get(usize::from(out)) {
                            if p.redirect && tx.push(p.ifindex, frame) {
                                // Copied into the redirect queue: the frame is free again.
                                *v = Verdict::Drop;
                            }
                        }
                    }
                }
            }
        }
        self.busy |= n == BATCH;
        for (desc, v) in self.rx_descs[..n].iter().zip(verdicts) {
            match v {
                Verdict::Tx(out) if usize::from(out) < self.ports.len() => {
                    self.ports[usize::from(out)].pending_tx.push(*desc)
                }
                Verdict::Tx(out) => {
                    // The pipeline only names ports of this I/O; recycle and count otherwise.
                    debug_assert!(false, "verdict for unknown port {out}");
                    self.tx_dropped += 1;
                    self.free.push(*desc)
                }
                Verdict::Drop => self.free.push(*desc),
            }
        }
        self.transmit_pending();
        n
    }

    fn inject(&mut self, port: usize, frame: &[u8]) -> bool {
        if port >= self.ports.len() || frame.len() > (FRAME_SIZE as usize) - 512 {
            return false;
        }
        // Control-plane frames are sparse: they take the AF_XDP ring (XDP_TX_MIN_BURST)
        // unless redirect frames are queued, which they then follow.
        if let Some(tx) = self.xdp_tx.as_mut().filter(|tx| tx.queued() > 0) {
            let p = &self.ports[port];
            if p.redirect && tx.push(p.ifindex, frame) {
                return true;
            }
        }
        if self.free.is_empty() {
            self.complete();
        }
        let Some(mut desc) = self.free.pop() else {
            return false;
        };
        {
            // SAFETY: U1 — `desc` was just taken out of `free`, so it is in no ring and no
            // other reference to its frame exists; U3 — it belongs to this UMEM.
            let mut data = unsafe { self.umem.data_mut(&mut desc) };
            let mut cur = data.cursor();
            cur.set_pos(0);
            if std::io::Write::write_all(&mut cur, frame).is_err() {
                self.free.push(desc);
                return false;
            }
        }
        self.ports[port].pending_tx.push(desc);
        self.transmit_pending();
        true
    }

    fn flush(&mut self) {
        self.flush_xdp_tx();
        if self.xdp_tx.is_some() && Instant::now() >= self.next_probe {
            self.probe_redirect();
        }
        self.complete();
        self.refill();
        for p in &mut self.ports {
            // Copy-mode TX may stop after a partial send; keep kicking while frames are out.
            if p.in_tx > 0 && p.tx.needs_wakeup() {
                let _ = p.tx.wakeup();
            }
        }
        #[cfg(debug_assertions)]
        self.check_conservation();
    }

    fn wait(&mut self, timeout: Duration, wake: BorrowedFd<'_>) {
        let mut fds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .map(|p| p.rx.fd().as_raw_fd())
            .chain([wake.as_raw_fd()])
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` initialised
        // pollfd structs for the duration of the call; poll only writes `revents`.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }

    fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    fn reattach(&mut self, port: usize, ifname: &str) -> io::Result<Option<i32>> {
        XskIo::reattach(self, port, ifname).map(Some)
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let mut out = vec![("xsk.tx_ring_full_drops".to_string(), self.tx_dropped)];
        if let Some(tx) = &self.xdp_tx {
            let st = tx.stats();
            out.push(("xdp_tx.frames".to_string(), st.frames));
            out.push(("xdp_tx.runs".to_string(), st.runs));
            out.push(("xdp_tx.failed".to_string(), st.failed));
            out.push(("xdp_tx.rejected".to_string(), st.rejected));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if let Ok(st) = p.rx.fd().xdp_statistics() {
                out.push((format!("xsk.port{i}.rx_dropped"), st.rx_dropped()));
                out.push((format!("xsk.port{i}.rx_ring_full"), st.rx_ring_full()));
                out.push((
                    format!("xsk.port{i}.fill_ring_empty"),
                    st.rx_fill_ring_empty_descs(),
                ));
                out.push((
                    format!("xsk.port{i}.rx_invalid_descs"),
                    st.rx_invalid_descs(),
                ));
                out.push((
                    format!("xsk.port{i}.tx_invalid_descs"),
                    st.tx_invalid_descs(),
                ));
            }
        }
        out
    }
}
