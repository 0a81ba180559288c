//! `dataplane`: the batched, sans-I/O forwarding pipeline (DESIGN R3, R4, R9).
//!
//! Owns: the stage functions, the per-batch metadata, the immutable [`Snapshot`] type the
//! control plane publishes, punt messages and counters. Must not depend on: `io` beyond the
//! [`crate::io::Verdict`] type, `control`, `config`, locks, logging per packet.
//!
//! ```text
//!  rx burst ─► ethernet-input ─► ip4-input ─► ip4-lookup ─► nat44 ─► ip4-rewrite ─► Tx(port)
//!                 │ ARP            │ bad hdr     │ to-us, no    │ miss,   │ ttl<=1, arp miss,
//!                 ▼                ▼ martian     ▼ route        ▼ tcp ctl ▼ mtu exceeded
//!               punt ──────────► control thread (bounded queue)     punt
//!                                    drops are counted per reason, frames recycled
//! ```
//! A stage looks only at packets whose `next` is still [`Next::Continue`], sets `next` for
//! the ones it finishes, and never returns a `Result`, allocates or logs. Only `punt` copies
//! a frame (out of the fast path, into the control queue).

pub mod counters;
pub mod ecmp;
mod ethernet_input;
mod ip4_input;
mod ip4_lookup;
mod ip4_rewrite;
mod nat44;
pub mod punt;
pub mod trace;

use std::{net::Ipv4Addr, sync::Arc};

pub use self::counters::{
    DropReason, Event, LocalCounters, PortCounter, PuntReason, SharedCounters,
};
use self::punt::PuntTx;
pub use crate::nat::fast::NatFast;
use crate::nat::policy::NatPolicy;
use crate::{
    fib::Fib,
    io::{Verdict, BATCH},
    neigh::{AdjIndex, AdjTable},
    wire::{ethernet::MacAddr, ipv4::Cidr},
};

/// Fate of one packet in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Still being processed by the stages.
    Continue,
    /// Rewritten; transmit on this port.
    Tx(u16),
    /// Dropped and counted.
    Drop(DropReason),
    /// Copied to the control plane, then recycled.
    Punt(PuntReason),
}

/// What a route resolves to; the FIB's values index a `[NextHop]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// One of the router's own addresses.
    Local,
    /// The broadcast address of a connected subnet (directed broadcast: dropped, RFC 2644).
    Broadcast {
        /// Port of that subnet.
        port: u16,
    },
    /// A gateway on a connected subnet.
    Via {
        /// Gateway address.
        gateway: Ipv4Addr,
        /// Egress port.
        port: u16,
    },
    /// Destination is on-link: the neighbour is the destination itself.
    Connected {
        /// Egress port.
        port: u16,
    },
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP net unreachable.
    Unreachable,
    /// Drop with ICMP communication administratively prohibited.
    Prohibit,
    /// Several gateways (ECMP): [`Snapshot::groups`]`[id]` picks one per flow; ip4-lookup
    /// replaces this with the member, so later stages only see `Via`.
    Group {
        /// Index into the groups.
        id: u32,
    },
}

/// A next-hop group as the workers use it: its members (indices of `Via` next hops) and
/// the bucket table spreading flows over the live ones ([`ecmp::buckets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcmpTable {
    /// Next-hop indices of the members.
    pub members: Box<[u32]>,
    /// Per bucket, a position in `members`.
    pub buckets: Box<[u8]>,
}

/// Sentinel for "no adjacency" in [`Snapshot::nexthop_adj`].
pub const NO_ADJ: u32 = u32::MAX;

/// Per-port facts the fast path needs.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Interface name (for logs and `route get`).
    pub name: String,
    /// Our MAC address on this port.
    pub mac: MacAddr,
    /// Egress MTU (IP bytes).
    pub mtu: u16,
    /// Our addresses on this port (first = primary, used as ICMP source).
    pub addresses: Vec<Cidr>,
}

/// Immutable forwarding state, built by the control plane and picked up by workers once
/// per batch (R5). Cheap to clone parts are `Arc`ed so a neighbour change does not copy
/// the FIB.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Publication generation (monotonic).
    pub generation: u64,
    /// Compiled LPM table; values index `nexthops`.
    pub fib: Arc<Fib>,
    /// Next hops by FIB value.
    pub nexthops: Arc<[NextHop]>,
    /// For `NextHop::Via` entries: the gateway's adjacency, or [`NO_ADJ`] if unresolved.
    pub nexthop_adj: Box<[u32]>,
    /// Resolved neighbours' finished rewrites.
    pub adjs: AdjTable,
    /// On-link neighbours by address (host order), for `NextHop::Connected`.
    pub neighbors: ahash::HashMap<u32, AdjIndex>,
    /// Neighbours that did not answer ARP (Failed, host order): a packet to one is punted at
    /// most once per `neigh_retrans_ns` per worker (the control plane answers it with ICMP
    /// host unreachable and retries resolution when the hold ends); the rest are dropped
    /// here (`neigh.failed`).
    pub neigh_failed: ahash::HashSet<u32>,
    /// The ARP retransmit interval, in nanoseconds (`[neighbor] retrans_time`).
    pub neigh_retrans_ns: u64,
    /// How long a worker polls after its last frame before sleeping (`[dataplane]
    /// idle_poll`; reloadable, so it travels with the snapshot).
    pub idle_poll: std::time::Duration,
    /// Next-hop groups (`NextHop::Group`), with only their live members in the buckets.
    pub groups: Arc<[EcmpTable]>,
    /// The flow-hash seed of [`ecmp::flow_hash`] (per router, the same in every worker).
    pub ecmp_seed: u64,
    /// Ports by index.
    pub ports: Arc<[PortInfo]>,
    /// NAT44, when configured.
    pub nat: Option<Arc<NatFast>>,
    /// The NAT policy, when workers create outbound sessions themselves
    /// (`[nat] sessions_in_workers`): taken with `try_lock` only, never waited for.
    pub nat_policy: Option<Arc<std::sync::Mutex<NatPolicy>>>,
}

impl Snapshot {
    /// The next hop a packet `l3` takes for FIB value `v`: `v` itself, or for a group the
    /// member its flow hashes to.
    #[inline]
    pub fn member(&self, v: u32, l3: &[u8]) -> u32 {
        match self.nexthops.get(v as usize) {
            Some(NextHop::Group { id }) => self
                .groups
                .get(*id as usize)
                .map_or(v, |g| g.select(l3, self.ecmp_seed)),
            _ => v,
        }
    }
}

impl EcmpTable {
    /// The member (a next-hop index) packet `l3` takes.
    #[inline]
    pub fn select(&self, l3: &[u8], seed: u64) -> u32 {
        let b = ecmp::bucket(ecmp::flow_hash(l3, seed));
        self.members[usize::from(self.buckets[b])]
    }
}

/// A packet handed to the control plane, with what the fast path already knew about it.
#[derive(Debug, Clone)]
pub struct Punt {
    /// Why.
    pub reason: PuntReason,
    /// Port the frame arrived on.
    pub rx_port: u16,
    /// Egress port, when the lookup got that far (else `u16::MAX`).
    pub tx_port: u16,
    /// Neighbour to resolve (`ArpMiss`, `Fragment`) or unspecified.
    pub next_hop: Ipv4Addr,
    /// The whole received frame, Ethernet header included.
    pub frame: Vec<u8>,
}

/// Per-packet metadata for one batch, structure-of-arrays (VPP's buffer opaque).
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) next: [Next; BATCH],
    /// FIB value (next-hop index) from `ip4-lookup`.
    pub(crate) nh: [u32; BATCH],
    /// Egress port chosen by `ip4-lookup`/`ip4-rewrite` (for punts).
    pub(crate) tx_port: [u16; BATCH],
    /// Neighbour address to resolve (host order) for `ArpMiss`/`Fragment` punts.
    pub(crate) nh_addr: [u32; BATCH],
    pub(crate) rx_port: u16,
    pub(crate) len: usize,
}

impl Meta {
    fn new(rx_port: u16, len: usize) -> Self {
        Meta {
            next: [Next::Continue; BATCH],
            nh: [0; BATCH],
            tx_port: [u16::MAX; BATCH],
            nh_addr: [0; BATCH],
            rx_port,
            len,
        }
    }
}

/// The fast-path pipeline of one worker.
#[derive(Debug)]
pub struct Pipeline {
    punt_tx: PuntTx,
    /// Seconds since the control plane's epoch (NAT refreshes).
    now: u32,
    /// Nanoseconds since the same epoch (punt policers).
    now_ns: u64,
    /// The same instant (NAT sessions created in the worker).
    now_instant: Option<std::time::Instant>,
    /// The packet trace and this worker's index, if tracing is possible.
    trace: Option<(Arc<trace::Trace>, u16)>,
    /// Counts of the batches processed since the last [`SharedCounters::publish`].
    pub counters: LocalCounters,
}

impl Pipeline {
    /// A pipeline that punts through `punt_tx` (its class policers and queues).
    pub fn new(punt_tx: PuntTx) -> Self {
        Pipeline {
            punt_tx,
            now: 0,
            now_ns: 0,
            now_instant: None,
            trace: None,
            counters: LocalCounters::default(),
        }
    }

    /// Record packets into `t` when it is armed (`xgw trace add`), as worker `worker`.
    pub fn set_trace(&mut self, t: Arc<trace::Trace>, worker: u16) {
        self.trace = Some((t, worker));
    }

    /// Set the clock (time since the control plane's epoch): seconds refresh NAT sessions,
    /// nanoseconds drive the punt policers. The worker sets it once per loop.
    pub fn set_clock(&mut self, now: std::time::Instant, epoch: std::time::Instant) {
        let since_epoch = now.saturating_duration_since(epoch);
        self.now_instant = Some(now);
        self.now = u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX);
        self.now_ns = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
    }

    /// The exception queues this pipeline punts into.
    pub fn punt_queues(&self) -> &Arc<punt::PuntQueues> {
        self.punt_tx.queues()
    }

    /// Run every stage over one received burst and fill in the verdicts.
    ///
    /// # Panics
    /// If `frames.len() > BATCH` or `verdicts.len() < frames.len()`.
    pub fn process(
        &mut self,
        snap: &Snapshot,
        rx_port: u16,
        frames: &mut [&mut [u8]],
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len();
        assert!(n <= BATCH && verdicts.len() >= n);
        let mut meta = Meta::new(rx_port, n);
        let c = &mut self.counters;
        c.event(Event::RxPackets, n as u64);
        c.event(Event::RxBursts, 1);
        let rx_bytes: usize = frames.iter().map(|f| f.len()).sum();
        c.port(rx_port, PortCounter::RxPackets, n as u64, rx_bytes as u64);
        // One atomic load per burst when the trace is off.
        let traced = self.trace.as_ref().map_or(0, |(t, _)| t.claim(rx_port, n));
        let mut bt = (traced > 0).then(|| trace::BurstTrace::new(frames, traced));
        let mut stage = |i: u8, meta: &Meta| {
            if let Some(b) = bt.as_mut() {
                b.after(i, &meta.next);
            }
        };
        ethernet_input::run(frames, &mut meta, snap, c);
        stage(0, &meta);
        ip4_input::run::<true>(frames, &mut meta, c);
        stage(1, &meta);
        ip4_lookup::run(frames, &mut meta, snap, c);
        stage(2, &meta);
        nat44::run(frames, &mut meta, snap, (self.now, self.now_instant), c);
        stage(3, &meta);
        ip4_rewrite::run(frames, &mut meta, snap, c);
        stage(4, &meta);
        punt::run(frames, &mut meta, snap, &mut self.punt_tx, self.now_ns, c);
        stage(5, &meta);
        if let (Some(b), Some((t, worker))) = (bt, self.trace.as_ref()) {
            record(t, *worker, self.now_ns, rx_port, b, &meta, frames);
        }
        let mut tx = 0;
        for ((v, next), f) in verdicts.iter_mut().zip(&meta.next[..n]).zip(frames.iter()) {
            *v = match *next {
                Next::Tx(p) => {
                    tx += 1;
                    c.port(p, PortCounter::TxPackets, 1, f.len() as u64);
                    Verdict::Tx(p)
                }
                _ => Verdict::Drop,
            };
        }
        c.event(Event::TxPackets, tx);
    }
}

/// The traced packets of a finished burst into the trace's queue.
#[cold]
fn record(
    t: &trace::Trace,
    worker: u16,
    now_ns: u64,
    rx_port: u16,
    b: trace::BurstTrace,
    meta: &Meta,
    frames: &[&mut [u8]],
) {
    for (i, input) in b.input.into_iter().enumerate() {
        let next = meta.next[i];
        let output = match next {
            Next::Tx(_) => frames[i][..frames[i].len().min(trace::SNAP)].to_vec(),
            _ => Vec::new(),
        };
        t.push(trace::TraceRecord {
            seq: 0,
            worker,
            at_ns: now_ns,
            rx_port,
            len: b.lens[i],
            input,
            decided_by: b.decided_by[i],
            next,
            output,
        });
    }
}
