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

use super::bpfmap::Words;
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

/// 64-bit words of the NAT prefilter's port bitmap per (pool address, protocol); must match
/// `XGW_PORT_WORDS` in the BPF program (and `nat::portmap`).
pub const PORT_WORDS: usize = 65536 / 64;

/// The NAT prefilter's parameters (see `bpf/xsk_redirect.bpf.c`): inbound TCP/UDP on
/// `outside_ifindex` to a `pool` address and a port whose bit in the bitmap is clear is
/// dropped by the program.
#[derive(Debug, Clone)]
pub struct NatPrefilter {
    /// The NAT's outside interface.
    pub outside_ifindex: u32,
    /// The pool, in pool order (an address's position is its index in the bitmap).
    pub pool: Vec<std::net::Ipv4Addr>,
    /// Pool addresses the maps are sized for (room for addresses a reload adds:
    /// [`XdpProgram::add_pool_address`]); at least `pool.len()`.
    pub capacity: usize,
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Generic,
}

/// The steering program's counters (see [`XdpProgram::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// Passed to the kernel: neither IPv4 nor ARP.
    pub not_ipv4_or_arp: u64,
    /// Passed to the kernel: arrived on an interface that is not a port.
    pub not_from_a_port: u64,
    /// Dropped by the NAT prefilter: inbound to an external port without a mapping.
    pub nat_unmapped: u64,
    /// Passed to the kernel: no socket on the frame's (port, RX queue).
    pub no_socket: u64,
    /// Passed to the kernel in mirror mode: the host's (ARP, multicast, to its addresses).
    pub host: u64,
}

/// Kernel mirror mode's host path: frames for the host go to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPath {
    /// The host's addresses (the namespace's, but the NAT pool's).
    pub addresses: Vec<std::net::Ipv4Addr>,
    /// Addresses the map holds at most (later additions beyond it are refused).
    pub capacity: usize,
}

/// The loaded program and its links; dropping it detaches everything.
pub struct XdpProgram {
    skel: skel::XskRedirectSkel<'static>,
    links: Vec<(u32, OwnedFd)>,
    /// The workers' transmit queues (the program's `txq` map, mapped).
    tx: TxMap,
    /// The NAT prefilter's port bitmap (the `nat_ports` map, mapped), until taken.
    nat_ports: Option<Words>,
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
    /// transmit queue for each of `workers` workers (see [`XdpProgram::tx_queue`]) and, if
    /// `nat` is given, the NAT prefilter (its bitmap: [`XdpProgram::take_nat_ports`]).
    /// With `host`, frames for the host go to the kernel (mirror mode).
    pub fn load(
        ifindexes: &[u32],
        workers: u32,
        nat: Option<&NatPrefilter>,
        host: Option<&HostPath>,
    ) -> io::Result<XdpProgram> {
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
        let words = nat.map_or(1, |n| {
            (n.capacity.max(n.pool.len()) * 2 * PORT_WORDS).max(1)
        });
        if let Some(n) = nat {
            if !ifindexes.contains(&n.outside_ifindex) || n.pool.is_empty() {
                return Err(err(
                    "NAT prefilter",
                    "outside must be a port, pool non-empty",
                ));
            }
        }
        if host.is_some() {
            ro.host_path = 1;
        }
        let bss = open
            .maps
            .bss_data
            .as_deref_mut()
            .ok_or_else(|| err("BPF object", "no .bss"))?;
        bss.port_ifindex[..ifindexes.len()].copy_from_slice(ifindexes);
        if let Some(n) = nat {
            bss.nat_outside_ifindex = n.outside_ifindex;
        }
        let entries = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| err(what, format!("{n} entries do not fit a map")))
        };
        open.maps
            .host_addrs
            .set_max_entries(entries(
                host.map_or(1, |h| h.capacity.max(h.addresses.len()).max(1)),
                "host_addrs",
            )?)
            .map_err(|e| err("host_addrs map size", e))?;
        open.maps
            .nat_pool
            .set_max_entries(entries(
                nat.map_or(1, |n| n.capacity.max(n.pool.len())),
                "nat_pool",
            )?)
            .map_err(|e| err("nat_pool map size", e))?;
        open.maps
            .nat_ports
            .set_max_entries(entries(words, "nat_ports")?)
            .map_err(|e| err("nat_ports map size", e))?;
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
        let nat_ports = match nat {
            Some(n) => {
                for (i, a) in n.pool.iter().enumerate() {
                    let idx = u32::try_from(i).map_err(|e| err("nat_pool", e))?;
                    skel.maps
                        .nat_pool
                        .update(&a.octets(), &idx.to_ne_bytes(), MapFlags::ANY)
                        .map_err(|e| err("nat_pool map", e))?;
                }
                Some(Words::new(skel.maps.nat_ports.as_fd(), words, "nat_ports")?)
            }
            None => None,
        };
        let prog = XdpProgram {
            skel,
            links: Vec::new(),
            tx,
            nat_ports,
        };
        for a in host.map_or(&[][..], |h| &h.addresses) {
            prog.set_host_address(*a, true)?;
        }
        Ok(prog)
    }

    /// Mirror mode: frames to `addr` go to the kernel (`add`) or to the workers again.
    ///
    /// # Errors
    /// The map refused the update (full: beyond the capacity loaded).
    pub fn set_host_address(&self, addr: std::net::Ipv4Addr, add: bool) -> io::Result<()> {
        let m = &self.skel.maps.host_addrs;
        if add {
            m.update(&addr.octets(), &[1u8], MapFlags::ANY)
                .map_err(|e| err("host_addrs map", e))
        } else {
            // Not there (never added, or the map was full) is no error.
            let _ = m.delete(&addr.octets());
            Ok(())
        }
    }

    /// Tell the NAT prefilter that `addr` is pool address number `index` (a reload added
    /// it; its bits in the bitmap are clear until it has mappings). Until then the program
    /// passes traffic to it to the workers unfiltered.
    ///
    /// # Errors
    /// The map refused the update (full: beyond the capacity loaded).
    pub fn add_pool_address(&self, addr: std::net::Ipv4Addr, index: u32) -> io::Result<()> {
        self.skel
            .maps
            .nat_pool
            .update(&addr.octets(), &index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| err("nat_pool map", e))
    }

    /// The NAT prefilter's port bitmap, shared with the program: the NAT's mapped-port map
    /// (`nat::portmap`) is to live in it. Once; `None` without a prefilter.
    pub fn take_nat_ports(&mut self) -> Option<Words> {
        self.nat_ports.take()
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
            .bss_data
            .as_deref()
            .is_some_and(|b| b.port_ifindex.contains(&ifindex));
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

    /// Port `slot`'s device is now `ifindex` (deleted and created anew): frames from it
    /// are steered as the port's (and the NAT prefilter, if the port is the outside one,
    /// follows). Returns the old ifindex.
    ///
    /// # Errors
    /// `slot` is not a port, or `ifindex` is invalid or another port's.
    pub fn set_port_ifindex(&mut self, slot: usize, ifindex: u32) -> io::Result<u32> {
        let bss = self
            .skel
            .maps
            .bss_data
            .as_deref_mut()
            .ok_or_else(|| err("BPF object", "no .bss"))?;
        let n = bss.port_ifindex.iter().take_while(|&&i| i != 0).count();
        if slot >= n || ifindex <= 1 {
            return Err(err(
                "port ifindex",
                format!("slot {slot}, ifindex {ifindex}"),
            ));
        }
        if bss
            .port_ifindex
            .iter()
            .enumerate()
            .any(|(i, &x)| i != slot && x == ifindex)
        {
            return Err(err("port ifindex", format!("{ifindex} is another port's")));
        }
        let old = bss.port_ifindex[slot];
        if bss.nat_outside_ifindex == old {
            bss.nat_outside_ifindex = ifindex;
        }
        bss.port_ifindex[slot] = ifindex;
        Ok(old)
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

    /// The program's counters, summed over CPUs: frames left to the kernel (not IPv4 or ARP,
    /// not from a port, no socket on their queue) and frames the NAT prefilter dropped.
    pub fn stats(&self) -> XdpStats {
        let mut out = [0u64; 5];
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
        XdpStats {
            not_ipv4_or_arp: out[0],
            not_from_a_port: out[1],
            nat_unmapped: out[2],
            no_socket: out[3],
            host: out[4],
        }
    }

    /// What the steering program decides for `frame` received on `ifindex` queue 0 (an XDP
    /// action: `XDP_DROP`, or `XDP_PASS` when the frame would go to a socket that is not
    /// registered), by one `BPF_PROG_RUN`; nothing is sent. For tests and diagnostics.
    ///
    /// # Errors
    /// The kernel refused the run (unknown `ifindex`, frame too short).
    pub fn verdict(&self, frame: &[u8], ifindex: u32) -> io::Result<u32> {
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex }.
        let len = u32::try_from(frame.len()).map_err(|e| err("frame", e))?;
        let words = [0, len, 0, ifindex, 0, 0];
        let mut ctx: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let input = libbpf_rs::ProgramInput {
            context_in: Some(&mut ctx[..]),
            data_in: Some(frame),
            repeat: 1,
            ..Default::default()
        };
        self.skel
            .progs
            .xgw_steer
            .test_run(input)
            .map(|o| o.return_value)
            .map_err(|e| err("BPF_PROG_RUN", e))
    }

    /// Detach from every interface now (also happens on drop).
    pub fn detach_all(&mut self) {
        self.links.clear();
    }
}
