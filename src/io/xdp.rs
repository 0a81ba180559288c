//! `io::xdp`: load the steering program (`bpf/xsk_redirect.bpf.c`), attach it to each port
//! through a **bpf_link**, and populate its maps.
//!
//! A bpf_link is owned by a file descriptor: when the process exits for any reason —
//! SIGTERM, panic (`panic = "abort"`), SIGKILL — the kernel closes it and detaches the
//! program, so a crashed router never leaves an interface black-holed. The program passes
//! to the kernel any frame whose XSKMAP slot has no socket yet, so the window between
//! attach and socket creation drops nothing either.

use std::{
    io,
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
};

use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    MapCore, MapFlags, OpenObject,
};

use super::xdp_tx::{TxMap, XdpTx};

// Generated code is exempt from our SAFETY-comment rule, nothing else is.
#[allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xsk_redirect.skel.rs"));
}

/// Must match `XGW_MAX_QUEUES` in the BPF program.
pub const MAX_QUEUES: u32 = 64;
/// Must match `XGW_MAX_PORTS` in the BPF program.
pub const MAX_PORTS: u32 = 16;

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Generic,
}

/// The loaded program and its links; dropping it detaches everything.
pub struct XdpProgram {
    skel: skel::XskRedirectSkel<'static>,
    links: Vec<(u32, OwnedFd)>,
    /// The workers' transmit queues (the program's `txq` map, mapped).
    tx: TxMap,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("links", &self.links)
            .finish()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl XdpProgram {
    /// Load the program (does not attach) for the ports `ifindexes` (port i is slot i), with a
    /// transmit queue for each of `workers` workers (see [`XdpProgram::tx_queue`]).
    pub fn load(ifindexes: &[u32], workers: u32) -> io::Result<XdpProgram> {
        if ifindexes.len() > MAX_PORTS as usize || ifindexes.contains(&0) {
            return Err(err(
                "load",
                format!("1..={MAX_PORTS} ports with valid ifindexes"),
            ));
        }
        // Ifindex 1 is the loopback device, whose "received" frames mark transmit runs
        // (bpf/xsk_redirect.bpf.c); it cannot be a port.
        if ifindexes.contains(&1) {
            return Err(err("load", "the loopback device cannot be a port"));
        }
        // The skeleton borrows its object storage for its whole life; one program per
        // process, so the storage is leaked deliberately (a few hundred bytes).
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = skel::XskRedirectSkelBuilder::default()
            .open(storage)
            .map_err(|e| err("open BPF object", e))?;
        open.maps
            .txq
            .set_max_entries(workers.max(1))
            .map_err(|e| err("txq map size", e))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| err("BPF object", "no .rodata"))?;
        ro.port_ifindex[..ifindexes.len()].copy_from_slice(ifindexes);
        let skel = open.load().map_err(|e| {
            err(
                "load XDP program (is /sys/fs/bpf available, are we root?)",
                e,
            )
        })?;
        let tx = TxMap::new(
            skel.maps.txq.as_fd(),
            skel.maps.txq.value_size() as usize,
            workers.max(1),
            skel.progs.xgw_steer.as_fd(),
        )?;
        Ok(XdpProgram {
            skel,
            links: Vec::new(),
            tx,
        })
    }

    /// Worker `worker`'s XDP-redirect transmitter (each worker once).
    ///
    /// # Errors
    /// `worker` out of range or already taken.
    pub fn tx_queue(&mut self, worker: u32) -> io::Result<XdpTx> {
        self.tx.queue(worker)
    }

    /// Attach to `ifindex` (one of the ports given to [`XdpProgram::load`]) with a bpf_link
    /// in `mode`.
    pub fn attach(&mut self, ifindex: u32, mode: XdpMode) -> io::Result<()> {
        let known = self
            .skel
            .maps
            .rodata_data
            .is_some_and(|ro| ro.port_ifindex.contains(&ifindex));
        if !known {
            return Err(err("attach", format!("ifindex {ifindex} is not a port")));
        }
        let prog_fd = self.skel.progs.xgw_steer.as_fd().as_raw_fd();
        let flags = match mode {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        };
        let opts = libbpf_sys::bpf_link_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
            flags,
            ..Default::default()
        };
        let target = i32::try_from(ifindex).map_err(|e| err("ifindex", e))?;
        // SAFETY: `prog_fd` is the fd of the loaded program owned by `self.skel`, alive for
        // the call; `opts` is a fully initialised options struct whose `sz` is its size, as
        // libbpf's OPTS convention requires; libbpf only reads it.
        let fd =
            unsafe { libbpf_sys::bpf_link_create(prog_fd, target, libbpf_sys::BPF_XDP, &opts) };
        if fd < 0 {
            return Err(err(
                &format!("attach XDP ({mode:?}) to ifindex {ifindex}"),
                io::Error::from_raw_os_error(-fd),
            ));
        }
        // SAFETY: `fd` was just returned by bpf_link_create, is valid, and nothing else owns
        // it; the OwnedFd closes it (detaching the program) exactly once.
        let link = unsafe { OwnedFd::from_raw_fd(fd) };
        self.links.push((ifindex, link));
        Ok(())
    }

    /// Register an AF_XDP socket for `(slot, queue)`.
    pub fn register_socket(&mut self, slot: u32, queue: u32, fd: i32) -> io::Result<()> {
        if queue >= MAX_QUEUES {
            return Err(err("xsks map", format!("queue {queue} >= {MAX_QUEUES}")));
        }
        let key = slot * MAX_QUEUES + queue;
        self.skel
            .maps
            .xsks
            .update(&key.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| err("xsks map", e))
    }

    /// Frames the program left to the kernel, summed over CPUs: (not IPv4 or ARP, not from a
    /// port).
    pub fn stats(&self) -> (u64, u64) {
        let mut out = [0u64; 2];
        for (i, o) in out.iter_mut().enumerate() {
            let key = u32::try_from(i).unwrap_or(0).to_ne_bytes();
            if let Ok(Some(vals)) = self.skel.maps.stats.lookup_percpu(&key, MapFlags::ANY) {
                *o = vals
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_ne_bytes)
                    .sum();
            }
        }
        (out[0], out[1])
    }

    /// Detach from every interface now (also happens on drop).
    pub fn detach_all(&mut self) {
        self.links.clear();
    }
}
