//! Counters declared once with a description each, owned per worker, summed off-path (R16).
//!
//! A worker accumulates into a plain [`LocalCounters`] while it processes a batch and
//! publishes once per batch into its own cache-padded block of `AtomicU64`s with
//! `store(load + n)`: only that worker writes the block, so no `lock`-prefixed
//! read-modify-write appears on the hot path. Readers (`stats`) sum the blocks; a reader may
//! see a block mid-publication, which only delays a count, never loses it.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

pub(crate) use crate::counter::define_counters;
pub use crate::counter::{CounterEnum, Counts};

define_counters! {
    /// Why a packet left the fast path without being transmitted.
    pub enum DropReason {
        Runt = "ethernet_input.runt" => "frame shorter than an Ethernet header",
        NotForUs = "ethernet_input.not_for_us" => "unicast frame for another MAC address",
        L2Multicast = "ethernet_input.l2_multicast" => "IPv4 in a link-layer broadcast/multicast frame",
        UnknownEtherType = "ethernet_input.unknown_ethertype" => "neither IPv4 nor ARP",
        Truncated = "ip4_input.truncated" => "ip4 header truncated (< 20 bytes)",
        BadVersion = "ip4_input.bad_version" => "ip4 version != 4",
        BadHeaderLen = "ip4_input.bad_header_len" => "ip4 IHL < 5 or beyond the frame",
        BadTotalLen = "ip4_input.bad_total_len" => "ip4 total length inconsistent with IHL or frame",
        BadChecksum = "ip4_input.bad_checksum" => "ip4 header checksum invalid",
        MartianSource = "ip4_input.martian_source" => "ip4 source is a martian (RFC 1812 5.3.7)",
        MartianDestination = "ip4_input.martian_destination" => "ip4 destination is a martian",
        NotForwardable = "ip4_input.not_forwardable" => "multicast or limited-broadcast destination",
        DirectedBroadcast = "ip4_lookup.directed_broadcast" => "directed broadcast (RFC 2644: off)",
        Blackhole = "ip4_lookup.blackhole" => "blackhole route",
        NatUnsupported = "nat44.unsupported" => "NAT: protocol or packet the NAT cannot translate",
        NatPoolSource = "nat44.pool_source" => "NAT: an external (pool) address as the source: spoofed or looped",
        NatNoRoute = "nat44.no_route" => "NAT: the translated destination has no route out of a port",
        RewriteNoNextHop = "ip4_rewrite.no_next_hop" => "next hop not forwardable at rewrite (a route changed under the packet)",
        NatNoMapping = "nat44.no_mapping" => "NAT: inbound to an external port without a mapping",
        NatInboundRefused = "nat44.inbound_refused" => "NAT: from outside to an inside destination, untranslated ([nat] inbound = \"drop\")",
        NatBadUdpLength = "nat44.bad_udp_length" => "NAT: UDP length < 8 or beyond the IP payload",
        NatBadTcpOffset = "nat44.bad_tcp_offset" => "NAT: TCP data offset < 5 or beyond the segment",
        FragmentToUs = "ip4_local.fragment" => "fragment addressed to the router (no reassembly)",
        PuntQueueFull = "punt.queue_full" => "control-plane queue (or its buffers) full",
        PuntPoliced = "punt.policed" => "exception over its class's rate limit ([punt])",
        NeighFailed = "neigh.failed" => "next hop did not answer ARP (one punt per retransmit interval)",
    }
}

define_counters! {
    /// Why a packet was handed to the control plane.
    pub enum PuntReason {
        Arp = "punt.arp" => "ARP frame",
        ToUs = "punt.to_us" => "ip4 addressed to the router",
        TtlExpired = "punt.ttl_expired" => "ttl <= 1 in transit (ICMP time exceeded)",
        NoRoute = "punt.no_route" => "no route (ICMP net unreachable)",
        Unreachable = "punt.unreachable" => "unreachable route (ICMP net unreachable)",
        Prohibit = "punt.prohibit" => "prohibit route (ICMP communication administratively prohibited)",
        ArpMiss = "punt.arp_miss" => "next hop not resolved (ARP)",
        NeedFrag = "punt.need_frag" => "larger than egress MTU with DF (ICMP frag needed)",
        Fragment = "punt.fragment" => "larger than egress MTU without DF (fragment)",
        NatMiss = "punt.nat_miss" => "NAT: no session (create, filter or drop)",
        NatTooBig = "punt.nat_too_big" => "NAT: inbound over the egress MTU without DF (translated and fragmented on the slow path)",
        NatTcpControl = "punt.nat_tcp_control" => "NAT: TCP SYN/FIN/RST (session state)",
        NatIcmpError = "punt.nat_icmp_error" => "NAT: ICMP error to translate",
        NatFragment = "punt.nat_fragment" => "NAT: fragment (virtual reassembly)",
    }
}

define_counters! {
    /// Other per-worker events.
    pub enum Event {
        RxPackets = "worker.rx_packets" => "frames received",
        TxPackets = "worker.tx_packets" => "frames the fast path forwarded, handed to the I/O (its losses: xsk.tx_ring_full_drops, xdp_tx.failed)",
        Injected = "worker.injected" => "frames sent on behalf of the control plane",
        InjectFailed = "worker.inject_failed" => "control-plane frames dropped (no buffer)",
        SnapshotSwaps = "worker.snapshot_swaps" => "new control-plane snapshots picked up",
        NatIn2Out = "nat44.in2out" => "NAT: packets translated inside to outside in the fast path",
        NatOut2In = "nat44.out2in" => "NAT: packets translated outside to inside in the fast path",
        NatCreated = "nat44.sessions_created" => "NAT: outbound sessions created by the worker",
        NatCreateBusy = "nat44.create_busy" => "NAT: policy busy, first packet sent to the slow path",
        Loops = "worker.loops" => "worker loop iterations",
        BusyLoops = "worker.busy_loops" => "worker loop iterations that received or injected frames",
        RxBursts = "worker.rx_bursts" => "non-empty receive bursts (worker.rx_packets / this = mean burst)",
        BusyNs = "worker.busy_ns" => "nanoseconds in loop iterations that did work",
        IdleNs = "worker.idle_ns" => "nanoseconds polling with nothing to do or asleep",
    }
}

/// Ports a worker counts separately (the XDP program's `XGW_MAX_PORTS`; the runtime
/// checks they agree).
pub const MAX_PORTS: usize = 16;

/// Per-port traffic counters, indexing [`LocalCounters::ports`]' inner arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum PortCounter {
    /// Frames received.
    RxPackets,
    /// Bytes received (Ethernet header included, no FCS).
    RxBytes,
    /// Frames transmitted: forwarded by the fast path, or injected for the control plane.
    TxPackets,
    /// Bytes of those.
    TxBytes,
}

/// Number of [`PortCounter`]s.
pub const PORT_COUNTERS: usize = 4;

define_counters! {
    /// Per exception class (`dataplane::punt::PuntClass`, in its order): punts queued,
    /// policed and dropped for a full queue. Index = class * 3 + [`ClassCounter`].
    pub enum ClassEvent {
        ArpAccepted = "punt.arp.accepted" => "ARP: queued to the control plane",
        ArpPoliced = "punt.arp.policed" => "ARP: dropped by the class policer",
        ArpQueueFull = "punt.arp.queue_full" => "ARP: dropped, queue or buffers full",
        ResolveAccepted = "punt.resolve.accepted" => "next hop resolution: queued to the control plane",
        ResolvePoliced = "punt.resolve.policed" => "next hop resolution: dropped by the class policer",
        ResolveQueueFull = "punt.resolve.queue_full" => "next hop resolution: dropped, queue or buffers full",
        NatAccepted = "punt.nat.accepted" => "NAT exceptions: queued to the control plane",
        NatPoliced = "punt.nat.policed" => "NAT exceptions: dropped by the class policer",
        NatQueueFull = "punt.nat.queue_full" => "NAT exceptions: dropped, queue or buffers full",
        IcmpErrorAccepted = "punt.icmp_error.accepted" => "ICMP errors to translate: queued to the control plane",
        IcmpErrorPoliced = "punt.icmp_error.policed" => "ICMP errors to translate: dropped by the class policer",
        IcmpErrorQueueFull = "punt.icmp_error.queue_full" => "ICMP errors to translate: dropped, queue or buffers full",
        FragmentAccepted = "punt.fragment.accepted" => "NAT fragments: queued to the control plane",
        FragmentPoliced = "punt.fragment.policed" => "NAT fragments: dropped by the class policer",
        FragmentQueueFull = "punt.fragment.queue_full" => "NAT fragments: dropped, queue or buffers full",
        PmtuAccepted = "punt.pmtu.accepted" => "DF packets over the MTU (frag needed): queued to the control plane",
        PmtuPoliced = "punt.pmtu.policed" => "DF packets over the MTU (frag needed): dropped by the class policer",
        PmtuQueueFull = "punt.pmtu.queue_full" => "DF packets over the MTU (frag needed): dropped, queue or buffers full",
        TransitAccepted = "punt.transit.accepted" => "transit exceptions (TTL, route, fragmenting): queued to the control plane",
        TransitPoliced = "punt.transit.policed" => "transit exceptions (TTL, route, fragmenting): dropped by the class policer",
        TransitQueueFull = "punt.transit.queue_full" => "transit exceptions (TTL, route, fragmenting): dropped, queue or buffers full",
        LocalAccepted = "punt.local.accepted" => "packets to the router: queued to the control plane",
        LocalPoliced = "punt.local.policed" => "packets to the router: dropped by the class policer",
        LocalQueueFull = "punt.local.queue_full" => "packets to the router: dropped, queue or buffers full",
    }
}

const _: () = assert!(ClassEvent::COUNT == crate::dataplane::punt::CLASSES * 3);

/// What happened to one punt of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClassCounter {
    /// Queued to the control plane.
    Accepted,
    /// Over the class's rate.
    Policed,
    /// Queue or buffer pool full.
    QueueFull,
}

/// Counts accumulated by a worker during one batch (plain integers, no atomics).
#[derive(Debug, Clone)]
pub struct LocalCounters {
    /// Per [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Per [`PuntReason`].
    pub punts: [u64; PuntReason::COUNT],
    /// Per [`Event`].
    pub events: [u64; Event::COUNT],
    /// Per [`ClassEvent`].
    pub classes: [u64; ClassEvent::COUNT],
    /// Per port (`rx_port` / transmit port), per [`PortCounter`].
    pub ports: [[u64; PORT_COUNTERS]; MAX_PORTS],
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters {
            drops: [0; DropReason::COUNT],
            punts: [0; PuntReason::COUNT],
            events: [0; Event::COUNT],
            classes: [0; ClassEvent::COUNT],
            ports: [[0; PORT_COUNTERS]; MAX_PORTS],
        }
    }
}

impl LocalCounters {
    /// Count one drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    /// Count one punt.
    #[inline]
    pub fn punt(&mut self, r: PuntReason) {
        self.punts[r as usize] += 1;
    }
    /// Count `n` events.
    #[inline]
    pub fn event(&mut self, e: Event, n: u64) {
        self.events[e as usize] += n;
    }
    /// Count one punt of `class` by outcome.
    #[inline]
    pub fn class(&mut self, class: crate::dataplane::punt::PuntClass, what: ClassCounter) {
        self.classes[class as usize * 3 + what as usize] += 1;
    }
    /// Count `packets` frames of `bytes` bytes on `port`: `dir_packets` is
    /// [`PortCounter::RxPackets`] or [`PortCounter::TxPackets`], the bytes go to the counter
    /// after it. Ports past [`MAX_PORTS`] are not counted apart.
    #[inline]
    pub fn port(&mut self, port: u16, dir_packets: PortCounter, packets: u64, bytes: u64) {
        if let Some(c) = self.ports.get_mut(usize::from(port)) {
            c[dir_packets as usize] += packets;
            c[dir_packets as usize + 1] += bytes;
        }
    }
    /// Value of a per-port counter.
    pub fn port_count(&self, port: usize, what: PortCounter) -> u64 {
        self.ports.get(port).map_or(0, |c| c[what as usize])
    }
    /// Value of a per-class counter.
    pub fn class_count(&self, class: crate::dataplane::punt::PuntClass, what: ClassCounter) -> u64 {
        self.classes[class as usize * 3 + what as usize]
    }
    /// Value of a drop counter.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    /// Value of a punt counter.
    pub fn punted(&self, r: PuntReason) -> u64 {
        self.punts[r as usize]
    }
    /// Value of an event counter.
    pub fn events(&self, e: Event) -> u64 {
        self.events[e as usize]
    }
    /// Add another set of counts.
    pub fn add(&mut self, o: &LocalCounters) {
        self.drops
            .iter_mut()
            .zip(o.drops)
            .for_each(|(a, b)| *a += b);
        self.punts
            .iter_mut()
            .zip(o.punts)
            .for_each(|(a, b)| *a += b);
        self.events
            .iter_mut()
            .zip(o.events)
            .for_each(|(a, b)| *a += b);
        self.classes
            .iter_mut()
            .zip(o.classes)
            .for_each(|(a, b)| *a += b);
        self.ports
            .as_flattened_mut()
            .iter_mut()
            .zip(o.ports.as_flattened())
            .for_each(|(a, b)| *a += b);
    }

    /// `self - base`, counter by counter (saturating: a base newer than `self` gives 0).
    pub fn since(&self, base: &LocalCounters) -> LocalCounters {
        let mut out = self.clone();
        let sub = |a: &mut [u64], b: &[u64]| {
            a.iter_mut()
                .zip(b)
                .for_each(|(a, b)| *a = a.saturating_sub(*b))
        };
        sub(&mut out.drops, &base.drops);
        sub(&mut out.punts, &base.punts);
        sub(&mut out.events, &base.events);
        sub(&mut out.classes, &base.classes);
        sub(out.ports.as_flattened_mut(), base.ports.as_flattened());
        out
    }
    /// All non-zero counters as `(name, value, description)`.
    pub fn nonzero(&self) -> Vec<(&'static str, u64, &'static str)> {
        let d = DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.dropped(*r), r.description()));
        let p = PuntReason::ALL
            .iter()
            .map(|r| (r.name(), self.punted(*r), r.description()));
        let e = Event::ALL
            .iter()
            .map(|r| (r.name(), self.events(*r), r.description()));
        let k = ClassEvent::ALL
            .iter()
            .map(|r| (r.name(), self.classes[*r as usize], r.description()));
        e.chain(d)
            .chain(p)
            .chain(k)
            .filter(|(_, v, _)| *v != 0)
            .collect()
    }
}

const TOTAL: usize = DropReason::COUNT
    + PuntReason::COUNT
    + Event::COUNT
    + ClassEvent::COUNT
    + MAX_PORTS * PORT_COUNTERS;

/// A worker's published counters: written only by that worker, read by anyone.
#[derive(Debug)]
pub struct SharedCounters {
    cells: CachePadded<[AtomicU64; TOTAL]>,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            cells: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl SharedCounters {
    /// Publish a batch's local counts and reset them. Single writer: `Relaxed` load+store
    /// suffices (no other thread writes these cells; readers tolerate staleness).
    pub fn publish(&self, local: &mut LocalCounters) {
        let all = local
            .drops
            .iter()
            .chain(&local.punts)
            .chain(&local.events)
            .chain(&local.classes)
            .chain(local.ports.as_flattened());
        for (cell, &n) in self.cells.iter().zip(all) {
            if n != 0 {
                cell.store(cell.load(Ordering::Relaxed) + n, Ordering::Relaxed);
            }
        }
        *local = LocalCounters::default();
    }

    /// A copy of the current values.
    pub fn read(&self) -> LocalCounters {
        let mut out = LocalCounters::default();
        let all = out
            .drops
            .iter_mut()
            .chain(out.punts.iter_mut())
            .chain(out.events.iter_mut())
            .chain(out.classes.iter_mut())
            .chain(out.ports.as_flattened_mut().iter_mut());
        for (cell, v) in self.cells.iter().zip(all) {
            *v = cell.load(Ordering::Relaxed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_described() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.extend(PuntReason::ALL.iter().map(|r| r.name()));
        names.extend(Event::ALL.iter().map(|r| r.name()));
        names.extend(ClassEvent::ALL.iter().map(|r| r.name()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(DropReason::ALL.iter().all(|r| !r.description().is_empty()));
        assert_eq!(
            DropReason::ALL[DropReason::BadChecksum as usize],
            DropReason::BadChecksum
        );
    }

    #[test]
    fn publish_accumulates_and_resets() {
        let shared = SharedCounters::default();
        let mut l = LocalCounters::default();
        l.drop(DropReason::BadChecksum);
        l.drop(DropReason::BadChecksum);
        l.punt(PuntReason::Arp);
        l.event(Event::RxPackets, 5);
        shared.publish(&mut l);
        assert_eq!(l.dropped(DropReason::BadChecksum), 0);
        l.drop(DropReason::BadChecksum);
        shared.publish(&mut l);
        let r = shared.read();
        assert_eq!(r.dropped(DropReason::BadChecksum), 3);
        assert_eq!(r.punted(PuntReason::Arp), 1);
        assert_eq!(r.events(Event::RxPackets), 5);
        assert_eq!(r.nonzero().len(), 3);
        l.port(1, PortCounter::TxPackets, 2, 128);
        l.port(99, PortCounter::TxPackets, 2, 128);
        shared.publish(&mut l);
        let r2 = shared.read();
        assert_eq!(r2.port_count(1, PortCounter::TxPackets), 2);
        assert_eq!(r2.port_count(1, PortCounter::TxBytes), 128);
        assert_eq!(r2.port_count(0, PortCounter::TxPackets), 0);
        let d = r2.since(&r);
        assert_eq!(d.dropped(DropReason::BadChecksum), 0);
        assert_eq!(d.port_count(1, PortCounter::TxBytes), 128);
        assert_eq!(
            r.since(&r2).port_count(1, PortCounter::TxBytes),
            0,
            "saturates"
        );
    }
}
