//! `io::loadgen`: the benchmark's traffic generator, sink counter and reference forwarder
//! (`bpf/loadgen.bpf.c`), driven by `xgw loadgen` from `scripts/bench.sh`. Not used by the
//! router.
//!
//! - The generator runs the `xgw_gen` XDP program with `BPF_PROG_RUN` in live-frames mode
//!   (`BPF_F_TEST_XDP_LIVE_FRAMES`): the kernel allocates each frame from a page pool, runs
//!   the program, and transmits what it redirects out of the given interface, in batches,
//!   without a socket or an skb. One core reaches a few Mpps of 64-byte frames. The program
//!   is attached to that interface while the generator runs (see `bpf/loadgen.bpf.c`).
//! - The sink, pass and forwarder programs are attached with a bpf_link that is pinned in a
//!   bpffs directory, so they outlive the command that attached them; removing the pin (or
//!   unmounting that bpffs) detaches them. The sink's frame counter is pinned next to it.

use std::{
    fs, io,
    mem::MaybeUninit,
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    MapCore, MapFlags, MapHandle, OpenObject, ProgramInput,
};

use super::netdev::NetDev;
use crate::wire::{
    ethernet::{self, EtherType, MacAddr},
    ipv4::{self, Protocol},
    udp,
};

// Generated code is exempt from our SAFETY-comment rule, nothing else is.
#[allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/loadgen.skel.rs"));
}

/// Length of a generated frame: 64 bytes on the wire, less the FCS.
pub const FRAME_LEN: usize = 60;

/// The UDP destination port of benchmark traffic (discard), which the sink counts.
pub const BENCH_PORT: u16 = 9;

/// Which program [`attach`] attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Count and drop benchmark frames, pass the rest.
    Sink,
    /// `XDP_PASS`: lets a veth accept frames redirected into its peer.
    Pass,
    /// The in-kernel reference forwarder (`bpf_fib_lookup` + `bpf_redirect`).
    Fwd,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "sink" => Ok(Role::Sink),
            "pass" => Ok(Role::Pass),
            "fwd" => Ok(Role::Fwd),
            _ => Err(format!("unknown role {s:?} (sink, pass, fwd)")),
        }
    }
}

/// What the generator sends.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Destination MAC (the router's ingress interface).
    pub dst_mac: MacAddr,
    /// IPv4 source address.
    pub src: Ipv4Addr,
    /// IPv4 destination address.
    pub dst: Ipv4Addr,
    /// Distinct flows: UDP source ports `sport_base..sport_base + flows`.
    pub flows: u16,
    /// First UDP source port.
    pub sport_base: u16,
    /// Use each flow's source port as its destination port too (a scan of `dst`'s ports)
    /// instead of the fixed benchmark port.
    pub vary_dport: bool,
    /// Source addresses `src..src + src_hosts`, one per frame in turn (1: `src` only).
    pub src_hosts: u32,
    /// Attach the generator to this interface for the run instead of the one it sends on
    /// (when that one carries another program, e.g. the sink); any otherwise unused
    /// interface of the namespace will do.
    pub attach: Option<String>,
}

/// What a generator run did.
#[derive(Debug, Clone, Copy)]
pub struct GenReport {
    /// Frames the program produced (handed to the interface).
    pub frames: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The generator's frame: Ethernet, IPv4 (TTL 64, checksum filled), UDP to [`BENCH_PORT`]
/// with no checksum (0, RFC 768), zero payload.
pub fn template(src_mac: MacAddr, spec: &GenSpec) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    ethernet::Repr {
        src_addr: src_mac,
        dst_addr: spec.dst_mac,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
    let l4_len = FRAME_LEN - ethernet::HEADER_LEN - ipv4::HEADER_LEN;
    let ip_buf = &mut f[ethernet::HEADER_LEN..];
    ipv4::Repr {
        src_addr: spec.src,
        dst_addr: spec.dst,
        protocol: Protocol::Udp,
        payload_len: l4_len,
        ttl: 64,
        ident: 0,
        dont_frag: false,
        dscp_ecn: 0,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut ip_buf[..]));
    let mut u = udp::Packet::new_unchecked(&mut ip_buf[ipv4::HEADER_LEN..]);
    u.set_src_port(spec.sport_base);
    u.set_dst_port(BENCH_PORT);
    u.set_len(u16::try_from(l4_len).unwrap_or(0));
    u.set_checksum(0);
    f
}

fn open_skel(
    storage: &mut MaybeUninit<OpenObject>,
    init: impl FnOnce(&mut skel::types::rodata),
) -> io::Result<skel::LoadgenSkel<'_>> {
    let mut open = skel::LoadgenSkelBuilder::default()
        .open(storage)
        .map_err(|e| err("open BPF object", e))?;
    let ro = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| err("BPF object", "no .rodata"))?;
    init(ro);
    open.load()
        .map_err(|e| err("load loadgen programs (root? bpffs?)", e))
}

/// Attach `role`'s program to `dev` (in the current network namespace) and pin the link as
/// `pin_dir/link` (and the sink's counter as `pin_dir/frames`).
///
/// # Errors
/// Unknown device, load/attach/pin failures.
pub fn attach(dev: &str, role: Role, pin_dir: &Path) -> io::Result<()> {
    let nd = NetDev::open(dev)?;
    let mut storage = MaybeUninit::uninit();
    let mut skel = open_skel(&mut storage, |ro| ro.dport = BENCH_PORT)?;
    let prog = match role {
        Role::Sink => &skel.progs.xgw_sink,
        Role::Pass => &skel.progs.xgw_pass,
        Role::Fwd => &skel.progs.xgw_fwd,
    };
    let ifindex = i32::try_from(nd.ifindex).map_err(|e| err("ifindex", e))?;
    let mut link = prog
        .attach_xdp(ifindex)
        .map_err(|e| err(&format!("attach {role:?} to {dev}"), e))?;
    fs::create_dir_all(pin_dir)?;
    link.pin(pin_dir.join("link"))
        .map_err(|e| err("pin link", e))?;
    if role == Role::Sink {
        skel.maps
            .sink_frames
            .pin(pin_dir.join("frames"))
            .map_err(|e| err("pin counter", e))?;
    }
    Ok(())
}

/// Frames the sink pinned in `pin_dir` has counted so far (all CPUs).
///
/// # Errors
/// No such pin, map read failure.
pub fn sink_count(pin_dir: &Path) -> io::Result<u64> {
    let map = MapHandle::from_pinned_path(pin_dir.join("frames"))
        .map_err(|e| err("open pinned counter", e))?;
    let vals = map
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|e| err("read counter", e))?
        .unwrap_or_default();
    Ok(vals
        .iter()
        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_ne_bytes)
        .sum())
}

/// Run the generator on `dev` (in the current network namespace) for `duration`, or until
/// `max_frames` frames, whichever comes first; at most `rate` frames per second if given
/// (paced in ticks of [`PACE_TICK`]), else as fast as the core allows.
///
/// # Errors
/// Unknown device, load failure, or a `BPF_PROG_RUN` error (e.g. a kernel without live
/// frames, added in 5.18).
pub fn generate(
    dev: &str,
    spec: &GenSpec,
    duration: Duration,
    max_frames: u64,
    rate: Option<f64>,
) -> io::Result<GenReport> {
    let nd = NetDev::open(dev)?;
    let frame = template(nd.mac, spec);
    let mut storage = MaybeUninit::uninit();
    let skel = open_skel(&mut storage, |ro| {
        for (w, chunk) in ro.tmpl.iter_mut().zip(frame.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        ro.flows = u32::from(spec.flows.max(1));
        ro.sport_base = spec.sport_base;
        ro.dport = BENCH_PORT;
        ro.vary_dport = u8::from(spec.vary_dport);
        ro.src_hosts = spec.src_hosts.max(1);
        ro.gen_ifindex = nd.ifindex;
    })?;
    // Attached to its interface (or `spec.attach`) for the duration (see bpf/loadgen.bpf.c
    // for why); if that already has a program, run unattached and accept the dispatcher
    // churn.
    let at = match &spec.attach {
        Some(a) => NetDev::open(a)?,
        None => nd.clone(),
    };
    let ifindex = i32::try_from(at.ifindex).map_err(|e| err("ifindex", e))?;
    let dev = &at.name;
    let _link = match skel.progs.xgw_gen.attach_xdp(ifindex) {
        Ok(link) => Some(link),
        Err(e) => {
            eprintln!("xgw loadgen: generator not attached to {dev} ({e}); running unattached");
            None
        }
    };
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex }: live mode wants data = 0, data_end = the frame length; "received"
    // on the loopback device (ifindex 1), which the program takes for a generator run.
    let ctx_words = [0, FRAME_LEN as u32, 0, 1, 0, 0];
    let mut ctx: Vec<u8> = ctx_words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut run = |n: u64| {
        let input = ProgramInput {
            context_in: Some(&mut ctx[..]),
            data_in: Some(&frame[..]),
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            repeat: u32::try_from(n).unwrap_or(u32::MAX),
            ..Default::default()
        };
        skel.progs
            .xgw_gen
            .test_run(input)
            .map(|_| ())
            .map_err(|e| err("BPF_PROG_RUN (live frames)", e))
    };
    let start = Instant::now();
    let mut frames = 0u64;
    match rate.filter(|r| *r > 0.0) {
        None => {
            // Chunks short enough that the deadline is kept to ~0.1 s at a few Mpps.
            const CHUNK: u64 = 1 << 18;
            while frames < max_frames && start.elapsed() < duration {
                let n = CHUNK.min(max_frames - frames);
                run(n)?;
                frames += n;
            }
        }
        Some(rate) => {
            // Each tick sends what the schedule owes so far (catching up after a late tick),
            // then waits for the next tick: bursts of rate x PACE_TICK frames.
            let mut tick = start;
            while frames < max_frames {
                let now = Instant::now();
                let elapsed = now.duration_since(start);
                if elapsed >= duration {
                    break;
                }
                let owed = (rate * elapsed.as_secs_f64()) as u64;
                let n = owed.saturating_sub(frames).min(max_frames - frames);
                if n > 0 {
                    run(n)?;
                    frames += n;
                }
                tick += PACE_TICK;
                // Spin rather than sleep: the generator has its core to itself (the routers'
                // softirq work on it runs inside the runs above), and waking from a sleep
                // costs tens of microseconds on a VM, which would cut the rate it can pace.
                while Instant::now() < tick {
                    std::hint::spin_loop();
                }
            }
        }
    }
    Ok(GenReport {
        frames,
        elapsed: start.elapsed(),
    })
}

/// Pacing interval of a rate-limited [`generate`]: short enough that a burst (rate x tick)
/// stays well below a receive ring at the rates measured here, long enough that the
/// per-syscall cost of a live-frames run (~20 µs) stays small. The generator spins between
/// ticks.
pub const PACE_TICK: Duration = Duration::from_micros(500);
