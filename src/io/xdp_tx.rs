//! `io::xdp_tx`: transmit by XDP redirect from a live-frames `BPF_PROG_RUN` — xgw's TX path
//! on devices where AF_XDP runs in copy mode (every veth, NICs without zero-copy).
//!
//! In copy mode the kernel turns every AF_XDP TX descriptor into an skb and transmits it on
//! its own (`__xsk_generic_xmit`); on veth each such transmit also runs the receiver's NAPI
//! poll inline, and the receiver copies the frame once more when it runs XDP. Here a worker
//! instead copies the frames it sends into its queue in the steering program's memory-mapped
//! `txq` map and runs that program over them with `BPF_PROG_RUN` and
//! `BPF_F_TEST_XDP_LIVE_FRAMES`: the kernel takes a page-pool page per frame, the program
//! copies the next queued frame into it and returns `XDP_REDIRECT` to its egress ifindex, and
//! the egress driver's `ndo_xdp_xmit` takes the frames in bulk. No skb, one syscall per batch
//! (see `bpf/xsk_redirect.bpf.c` for why it is the attached steering program that runs, and
//! how a run is told from a received frame).
//!
//! The egress device must accept redirected frames (`NETDEV_XDP_ACT_NDO_XMIT`: a veth only
//! while its peer has an XDP program or GRO on); [`redirect_target`] asks the kernel. Frames
//! over [`FRAME_MAX`] bytes do not fit a live-frames page and go through AF_XDP.
//!
//! Contract: [`TxMap::queue`] hands out each worker slot once, so a queue has one writer,
//! its [`XdpTx`], which the kernel reads only during that `XdpTx`'s own `BPF_PROG_RUN`.
//! Frames pushed are sent by the next [`XdpTx::flush`] (which [`XdpTx::push`] also calls
//! when the queue is full), in push order.
//!
//! Every XDP `BPF_PROG_RUN` takes the kernel's global XDP-dispatcher mutex for a moment. A
//! run of a program that is attached nowhere holds it across two `synchronize_rcu()` (it is
//! added to the dispatcher and removed again), so another process doing such runs on the
//! same host stalls these flushes by milliseconds each time. (The benchmark's generator
//! attaches its program for that reason.)

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    sync::Arc,
};

use super::bpfmap::Mapping;

/// Bytes of queue an entry may start in (`XGW_TXQ_BYTES`).
pub const QUEUE_BYTES: usize = 1 << 18;
/// Largest frame the program can send (`XGW_TX_FRAME_MAX`): a 4 KiB page-pool page less the
/// test run's page head, `XDP_PACKET_HEADROOM` and the `skb_shared_info` tailroom.
pub const FRAME_MAX: usize = 3392;
/// Smallest frame: an Ethernet header.
const FRAME_MIN: usize = 14;
/// Entry header: u16 length, u16 reserved, u32 egress ifindex.
const HDR: usize = 8;
/// `struct xgw_txq` before `q`: u32 off, u32 reserved, u64 errors[3].
const QUEUE_HEADER: usize = 32;
/// Size of `struct xgw_txq`.
pub const QUEUE_VALUE_SIZE: usize = QUEUE_HEADER + QUEUE_BYTES + HDR + FRAME_MAX + 8;
/// The device a transmit run is nominally received on: the loopback device, ifindex 1 in
/// every network namespace (`XGW_LOOPBACK_IFINDEX`), where the program is never attached.
const LOOPBACK_IFINDEX: u32 = 1;
/// A run's frame starts `BASE_LEN + slot` bytes long (`XGW_TX_BASE_LEN`).
const BASE_LEN: usize = 64;
/// Frames per page-pool batch inside one run: the kernel's default (the NAPI weight). A veth
/// receive ring holds 256, and the receiver drains it once per batch.
const RUN_BATCH: u32 = 64;
/// Entries per `BPF_PROG_RUN` at most.
pub const MAX_FRAMES: u32 = 1024;
/// `NETDEV_XDP_ACT_NDO_XMIT` (`include/uapi/linux/netdev.h`): the device implements
/// `ndo_xdp_xmit`, i.e. accepts redirected frames.
const NETDEV_XDP_ACT_NDO_XMIT: u64 = 1 << 2;

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Whether `ifindex` accepts XDP-redirected frames (`NETDEV_XDP_ACT_NDO_XMIT`) according to
/// the kernel's XDP feature flags (Linux 6.3+; `false` when the kernel cannot tell).
pub fn redirect_target(ifindex: u32) -> bool {
    let Ok(ifindex) = i32::try_from(ifindex) else {
        return false;
    };
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a fully initialised options struct whose `sz` is its size (libbpf's
    // OPTS convention); libbpf writes only within it, and it outlives the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex, 0, &mut opts) };
    rc == 0 && opts.feature_flags & NETDEV_XDP_ACT_NDO_XMIT != 0
}

/// The steering program's `txq` array map, memory-mapped: one [`QUEUE_VALUE_SIZE`] queue per
/// worker slot, `elem` bytes apart (the value size rounded up to 8, as the kernel lays out
/// array elements; element 0 is at offset 0 of the mapping).
#[derive(Debug)]
pub struct TxMap {
    map: Arc<Mapping>,
    elem: usize,
    taken: Vec<bool>,
    /// The program the queues belong to (duplicated for each [`XdpTx`]).
    prog: OwnedFd,
}

impl TxMap {
    /// Map `map_fd`, a `BPF_F_MMAPABLE` array of `slots` values of `value_size` bytes, which
    /// must be [`QUEUE_VALUE_SIZE`]; `prog` is the program that reads it.
    ///
    /// # Errors
    /// Wrong value size, `mmap` failed, or the program fd could not be duplicated.
    pub fn new(
        map_fd: BorrowedFd<'_>,
        value_size: usize,
        slots: u32,
        prog: BorrowedFd<'_>,
    ) -> io::Result<TxMap> {
        if value_size != QUEUE_VALUE_SIZE {
            return Err(err(
                "txq map",
                format!("value size {value_size}, expected {QUEUE_VALUE_SIZE}"),
            ));
        }
        let elem = value_size.next_multiple_of(8);
        let map = Mapping::new(map_fd, elem * slots as usize, "txq")?;
        Ok(TxMap {
            map: Arc::new(map),
            elem,
            taken: vec![false; slots as usize],
            prog: prog.try_clone_to_owned()?,
        })
    }

    /// The transmitter of worker `slot`. Each slot is handed out once.
    ///
    /// # Errors
    /// `slot` out of range or already taken; the program fd could not be duplicated.
    pub fn queue(&mut self, slot: u32) -> io::Result<XdpTx> {
        let n = self.taken.len();
        let taken = self
            .taken
            .get_mut(slot as usize)
            .ok_or_else(|| err("txq", format!("slot {slot} >= {n}")))?;
        if *taken {
            return Err(err("txq", format!("slot {slot} already in use")));
        }
        let prog = self.prog.try_clone()?;
        *taken = true;
        let data_in = vec![0u8; BASE_LEN + slot as usize];
        let data_end = u32::try_from(data_in.len()).map_err(|e| err("txq", e))?;
        Ok(XdpTx {
            prog,
            map: self.map.clone(),
            queue: self.elem * slot as usize,
            // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
            // egress_ifindex }: the whole of data_in is the frame; "received" on loopback,
            // which marks a transmit run for the program.
            ctx: [0, data_end, 0, LOOPBACK_IFINDEX, 0, 0],
            data_in,
            off: 0,
            n: 0,
            stats: TxStats::default(),
        })
    }
}

/// The 8-byte header of a queue entry for a `len`-byte frame (`len <= FRAME_MAX`) to
/// `ifindex`: u16 length, u16 reserved (0), u32 ifindex, in native byte order (the program
/// reads them as integers).
fn entry_header(len: usize, ifindex: u32) -> [u8; HDR] {
    let mut h = [0u8; HDR];
    h[..2].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    h[4..].copy_from_slice(&ifindex.to_ne_bytes());
    h
}

/// Bytes a `len`-byte frame's entry takes in the queue: header, frame, padding to 8 (the
/// program advances its cursor by the same amount).
const fn entry_size(len: usize) -> usize {
    HDR + len.next_multiple_of(8)
}

// Layout invariants, checked at compile time:
// - the program masks offsets with QUEUE_BYTES - 1;
// - push() flushes once `off >= QUEUE_BYTES`, so the last entry starts at the last 8-byte
//   offset below QUEUE_BYTES at most, may be maximal, and must stay inside the value;
// - 60-byte frames hit MAX_FRAMES before the queue is full (one run per MAX_FRAMES);
// - the worker slot rides on the initial frame length, which must be a valid frame for every
//   slot (MAX_QUEUES = 64).
const _: () = {
    assert!(QUEUE_BYTES.is_power_of_two());
    assert!(QUEUE_HEADER + (QUEUE_BYTES - 8) + entry_size(FRAME_MAX) <= QUEUE_VALUE_SIZE);
    assert!(MAX_FRAMES as usize * entry_size(60) <= QUEUE_BYTES);
    assert!(BASE_LEN >= FRAME_MIN && BASE_LEN + 64 <= FRAME_MAX);
};

/// Cumulative counts of one [`XdpTx`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames handed to the kernel.
    pub frames: u64,
    /// `BPF_PROG_RUN` calls.
    pub runs: u64,
    /// Frames lost because a run failed.
    pub failed: u64,
    /// Frames the program dropped (bad entry, resize or copy failure).
    pub rejected: u64,
}

/// When the XDP-redirect path may be used after failed runs: a failed `BPF_PROG_RUN` turns it
/// off for a while (the worker uses the AF_XDP rings meanwhile), 1 s after the first
/// failure, doubling with each consecutive one up to 64 s; a successful run resets it. One
/// failure (a transient `ENOMEM`, a device being re-created) no longer turns it off for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
    until: Option<std::time::Instant>,
}

impl Backoff {
    /// The longest pause.
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(64);

    /// A run failed at `now`.
    pub fn failed(&mut self, now: std::time::Instant) {
        self.failures = self.failures.saturating_add(1);
        let secs = 1u64 << (self.failures - 1).min(6);
        self.until = Some(now + std::time::Duration::from_secs(secs).min(Self::MAX));
    }

    /// A run succeeded.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Whether the redirect path may be tried at `now`.
    pub fn allows(&self, now: std::time::Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// One worker's XDP-redirect transmitter (see the module docs).
#[derive(Debug)]
pub struct XdpTx {
    prog: OwnedFd,
    map: Arc<Mapping>,
    /// Offset of this worker's `struct xgw_txq` in the mapping.
    queue: usize,
    ctx: [u32; 6],
    data_in: Vec<u8>,
    /// Write offset in `q`.
    off: usize,
    /// Entries queued.
    n: u32,
    stats: TxStats,
}

impl XdpTx {
    /// Whether a frame of `len` bytes can be sent this way.
    #[inline]
    pub fn fits(len: usize) -> bool {
        (FRAME_MIN..=FRAME_MAX).contains(&len)
    }

    /// Queue `frame` for `ifindex`. Returns false (queuing nothing) if the frame does not
    /// [`fit`](Self::fits). Flushes first when the queue is full.
    #[inline]
    pub fn push(&mut self, ifindex: u32, frame: &[u8]) -> bool {
        if !Self::fits(frame.len()) {
            return false;
        }
        if self.off >= QUEUE_BYTES || self.n >= MAX_FRAMES {
            // A failed run is counted in the stats; this frame still gets queued.
            let _ = self.flush();
        }
        let at = QUEUE_HEADER + self.off;
        self.write(at, &entry_header(frame.len(), ifindex));
        self.write(at + HDR, frame);
        self.off += entry_size(frame.len());
        self.n += 1;
        true
    }

    /// Copy `bytes` to offset `at` of this worker's queue value.
    ///
    /// # Panics
    /// If the range leaves the value (a bug in the caller's bounds).
    #[inline]
    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(
            at + bytes.len() <= QUEUE_VALUE_SIZE,
            "txq write out of bounds"
        );
        let dst = self.map.base().wrapping_add(self.queue + at);
        // SAFETY: `dst..dst + bytes.len()` lies inside this worker's queue value (asserted),
        // which lies inside the live mapping (`map` is held). Only this XdpTx writes its slot
        // (TxMap::queue hands it out once), and the kernel reads it only during this XdpTx's
        // own BPF_PROG_RUN, not now. A raw copy: no reference to shared memory is formed.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
    }

    /// Frames queued and not yet sent.
    #[inline]
    pub fn queued(&self) -> u32 {
        self.n
    }

    /// Send everything queued with one `BPF_PROG_RUN`.
    ///
    /// # Errors
    /// The run failed; the queued frames are dropped (and counted in [`TxStats::failed`]).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        let n = std::mem::take(&mut self.n);
        self.off = 0;
        // The program's read cursor (`off`, the first u32 of the value).
        self.write(0, &0u32.to_ne_bytes());
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: self.data_in.as_ptr().cast(),
            data_size_in: u32::try_from(self.data_in.len()).unwrap_or(u32::MAX),
            ctx_in: self.ctx.as_ptr().cast(),
            ctx_size_in: std::mem::size_of_val(&self.ctx) as u32,
            repeat: i32::try_from(n).unwrap_or(i32::MAX),
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: RUN_BATCH.min(n),
            ..Default::default()
        };
        // SAFETY: `prog` is an fd of the loaded steering program; `opts` is fully initialised
        // with `sz` set (libbpf's OPTS convention), and its `data_in`/`ctx_in` point at live
        // buffers of the stated sizes, which the kernel only reads during the call. The
        // program reads this worker's queue, which no one writes during the call.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        self.stats.runs += 1;
        if rc != 0 {
            self.stats.failed += u64::from(n);
            return Err(err(
                "BPF_PROG_RUN (XDP TX)",
                io::Error::from_raw_os_error(-rc),
            ));
        }
        self.stats.frames += u64::from(n);
        Ok(())
    }

    /// Cumulative counts, including the program's rejections.
    pub fn stats(&self) -> TxStats {
        let mut errors = [0u8; 24];
        let src = self.map.base().wrapping_add(self.queue + 8);
        // SAFETY: `errors` (3 × u64 at offset 8 of this worker's value) lies inside the live
        // mapping; the program updates it only during this XdpTx's own runs, so nothing writes
        // it now. A raw byte copy: no reference to shared memory is formed.
        unsafe { std::ptr::copy_nonoverlapping(src, errors.as_mut_ptr(), errors.len()) };
        let rejected = errors
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .sum();
        TxStats {
            rejected,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `#define NAME <expr>` in the steering program, where `<expr>` is a number
    /// or `(1 << n)`.
    fn c_define(name: &str) -> usize {
        let src = include_str!("../../bpf/xsk_redirect.bpf.c");
        let line = src
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("no #define {name}"));
        let v = line.trim();
        match v.strip_prefix("(1 << ").and_then(|r| r.strip_suffix(')')) {
            Some(shift) => 1 << shift.parse::<u32>().unwrap(),
            None => v.parse().unwrap(),
        }
    }

    #[test]
    fn constants_match_the_bpf_program() {
        assert_eq!(c_define("XGW_TXQ_BYTES"), QUEUE_BYTES);
        assert_eq!(c_define("XGW_TX_FRAME_MAX"), FRAME_MAX);
        assert_eq!(c_define("XGW_TX_HDR"), HDR);
        assert_eq!(c_define("XGW_LOOPBACK_IFINDEX"), LOOPBACK_IFINDEX as usize);
        assert_eq!(c_define("XGW_TX_BASE_LEN"), BASE_LEN);
    }

    #[test]
    fn entry_layout_golden_bytes() {
        let h = entry_header(60, 3);
        if cfg!(target_endian = "little") {
            assert_eq!(h, [60, 0, 0, 0, 3, 0, 0, 0]);
        }
        assert_eq!(u16::from_ne_bytes([h[0], h[1]]), 60);
        assert_eq!(u32::from_ne_bytes([h[4], h[5], h[6], h[7]]), 3);
        assert_eq!(entry_size(60), 72);
        assert_eq!(entry_size(64), 72);
        assert_eq!(entry_size(65), 80);
        assert_eq!(entry_size(FRAME_MIN), 24);
    }

    #[test]
    fn fits_is_the_program_range() {
        assert!(!XdpTx::fits(13));
        assert!(XdpTx::fits(14));
        assert!(XdpTx::fits(1514));
        assert!(XdpTx::fits(FRAME_MAX));
        assert!(!XdpTx::fits(FRAME_MAX + 1));
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::Backoff;
    use std::time::{Duration, Instant};

    /// A failed run pauses the redirect path, longer with each consecutive failure (capped),
    /// and a success restores it: one failure no longer turns it off for good.
    #[test]
    fn redirect_backoff_retries_and_recovers() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.allows(t0));
        b.failed(t0);
        assert!(!b.allows(t0 + Duration::from_millis(999)));
        assert!(b.allows(t0 + Duration::from_secs(1)));
        b.failed(t0);
        assert!(!b.allows(t0 + Duration::from_secs(1)));
        assert!(b.allows(t0 + Duration::from_secs(2)));
        for _ in 0..20 {
            b.failed(t0);
        }
        assert!(!b.allows(t0 + Backoff::MAX - Duration::from_millis(1)));
        assert!(b.allows(t0 + Backoff::MAX), "capped");
        b.succeeded();
        assert!(b.allows(t0));
        assert_eq!(b.failures(), 0);
    }
}
