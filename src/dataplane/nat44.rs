//! `nat44`: NAPT on the fast path. Established sessions are translated here, and so is the
//! first packet of a new outbound UDP flow, ICMP query or TCP connection (a bare SYN),
//! whose session the worker creates itself; everything else that concerns the NAT goes to
//! the control plane.
//!
//! Where sessions are made. A worker that finds no session for such a packet takes the NAT
//! policy (`nat::policy::NatPolicy`, the table's only writer) with `try_lock`,
//! creates the mapping and session by the same rules as the slow path, releases it and
//! translates the packet in place, in the same batch: no copy, no queue, no second thread.
//! If the lock is held (by the control thread's slow path or expiry sweep, or by another
//! worker creating a session), the packet is punted as before, so a worker never waits;
//! `nat44.create_busy` counts those. Why not VPP's per-worker sessions with handoff: AF_XDP
//! delivers a reply on whatever queue it arrives (on veth, the sender's CPU), and
//! endpoint-independent mapping and paired pooling are global per inside host, so per-worker
//! state needs every first packet handed off to the worker that owns its inside address (a
//! copy and a cross-thread queue: the round trip this removes) and replies handed to the
//! owner of their external port. One writer at a time under a mutex keeps the single-writer
//! table and every RFC rule exactly as they are, costs established traffic nothing (lookups
//! never lock) and a new flow one uncontended lock; its limit is contention between workers
//! creating at once (the two-thread test sees about half of the creations fall back when
//! both workers do nothing else), beyond which per-worker port ranges with handoff are the
//! next step. A new TCP session starts in the state its SYN gives it on the slow path; later
//! SYN/FIN/RST still go to the control thread, which tracks TCP state.
//!
//! A packet concerns the NAT when its destination is an external (pool) address, or when it
//! came in on an inside port, is routed out of the outside port and its source is eligible
//! (`nat.inside`). Hairpinned packets (inside → pool address) are the first kind.
//!
//! Uses: `meta.nh[i]` (from `ip4-lookup`; `Local` here means a pool address, the lookup lets
//! those through when NAT is on), the IPv4 header at offset 14, `snap.nat`.
//! Sets: addresses, ports/identifier and checksums per the session (`nat::translate`);
//! `meta.nh[i]`/`meta.tx_port[i]` again when the destination changed (out2in, hairpin); the
//! session's last-seen time on in2out hits (RFC 4787 REQ-6: outbound refresh).
//! Next: continues (translated, or not the NAT's business); `Punt(NatMiss)` (no session,
//! and none created here);
//! `Drop(NatNoMapping)` (inbound from outside to an external TCP/UDP port without a mapping,
//! not a SYN: nothing could admit it); `Punt(NatTcpControl)` (SYN/FIN/RST: state changes are
//! the control plane's);
//! `Punt(NatIcmpError)`; `Punt(NatFragment)`; `Punt(ToUs)` (ICMP to a pool address without a
//! session: the router answers it); `Drop(NatUnsupported)` (other protocols).
//! Outbound packets with TTL <= 1 or larger than the egress MTU are left untranslated, so the
//! ICMP error that `ip4-rewrite` triggers goes to the real (inside) source (RFC 4787 REQ-13);
//! inbound ones are punted (`TtlExpired`, `NeedFrag`) untranslated for the same reason.
//!
//! Three passes over the batch: classify (and key) the packets, look all keys up at once
//! (`SessionReader::lookup_batch`: their cache misses overlap), then translate each.

use std::time::Instant;

use super::{
    DropReason, Event, LocalCounters, Meta, NatFast, Next, NextHop, PuntReason, Snapshot, BATCH,
};
use crate::{
    nat::{
        flow::{proto, Direction, FlowKey},
        table::Hit,
        tcp::TcpState,
        translate::{self, Compiled, NatError},
    },
    wire::{ethernet::HEADER_LEN as ETH_LEN, icmpv4::Message, ipv4::Packet, tcp},
};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    (now, instant): (u32, Option<Instant>),
    c: &mut LocalCounters,
) {
    let Some(nat) = snap.nat.as_deref() else {
        return;
    };
    // Pass 1: which packets need a session lookup, and their keys.
    let mut keys = [FlowKey::default(); BATCH];
    let mut which = [0usize; BATCH];
    let mut n = 0;
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        if meta.next[i] != Next::Continue {
            continue;
        }
        match classify(&f[ETH_LEN..], i, meta, snap, nat) {
            Ok(Some(key)) => {
                keys[n] = key;
                which[n] = i;
                n += 1;
            }
            Ok(None) => {}
            Err(next) => set(meta, i, next, c),
        }
    }
    // Pass 2: look all keys up at once, their cache misses overlapped (a million sessions are
    // ~100 MB), instead of each lookup waiting for its own.
    let mut hits = [None; BATCH];
    nat.sessions.lookup_batch(&keys[..n], &mut hits[..n]);
    // Pass 3: translate.
    for ((key, &i), &hit) in keys[..n].iter().zip(&which[..n]).zip(&hits[..n]) {
        let l3 = &mut frames[i][ETH_LEN..];
        let (hit, fresh) = match hit {
            Some(h) => (Some(h), false),
            None => {
                let h = instant.and_then(|t| create_here(l3, key, i, meta, snap, t, c));
                (h, h.is_some())
            }
        };
        let next = translate_one(l3, key, hit, fresh, i, meta, snap, nat, now, c);
        set(meta, i, next, c);
    }
}

/// Records packet `i`'s verdict (and counts a drop or punt).
#[inline]
fn set(meta: &mut Meta, i: usize, next: Next, c: &mut LocalCounters) {
    match next {
        Next::Drop(r) => c.drop(r),
        Next::Punt(r) => c.punt(r),
        _ => {}
    }
    meta.next[i] = next;
}

/// Whether the NAT handles packet `i`: `Ok(Some(key))` if it needs its session looked up,
/// `Ok(None)` if it is not the NAT's business (left as is), `Err(next)` for its verdict.
#[inline]
fn classify(
    l3: &[u8],
    i: usize,
    meta: &Meta,
    snap: &Snapshot,
    nat: &NatFast,
) -> Result<Option<FlowKey>, Next> {
    let nh = snap.nexthops[meta.nh[i] as usize];
    let pkt = Packet::new_unchecked(l3);
    let to_pool = nh == NextHop::Local;
    if nat.is_pool(pkt.src_addr()) {
        // Our own external address as a source: spoofed or looped, never forwarded.
        return Err(Next::Drop(DropReason::NatPoolSource));
    }
    if !to_pool {
        let egress = match nh {
            NextHop::Via { port, .. } | NextHop::Connected { port } => Some(port),
            _ => None,
        };
        if !nat.concerns(pkt.src_addr(), pkt.dst_addr(), meta.rx_port, egress) {
            if nat.refuses_inbound(pkt.dst_addr(), meta.rx_port, egress) {
                return Err(Next::Drop(DropReason::NatInboundRefused));
            }
            return Ok(None);
        }
        // Outbound exceptions go untranslated to ip4-rewrite, which punts them, so the ICMP
        // error reaches the real (inside) source (RFC 4787 REQ-13).
        if pkt.ttl() <= 1 {
            return Ok(None);
        }
        if let NextHop::Via { port, .. } | NextHop::Connected { port } = nh {
            if pkt.total_len() > snap.ports[usize::from(port)].mtu {
                return Ok(None);
            }
        }
    }
    // Fragments go to the control plane's virtual reassembly, the first one included: it
    // decides the translation of the others (RFC 4787 REQ-14).
    if pkt.more_frags() || pkt.frag_offset() != 0 {
        return Err(Next::Punt(PuntReason::NatFragment));
    }
    match translate::flow_key(l3) {
        Ok(k) => Ok(Some(k)),
        Err(e) => Err(cold_unkeyed(l3, e, to_pool)),
    }
}

/// Translates packet `i`, whose key (from [`classify`]) found `hit`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn translate_one(
    l3: &mut [u8],
    key: &FlowKey,
    hit: Option<Hit>,
    fresh: bool,
    i: usize,
    meta: &mut Meta,
    snap: &Snapshot,
    nat: &NatFast,
    now: u32,
    c: &mut LocalCounters,
) -> Next {
    let to_pool = snap.nexthops[meta.nh[i] as usize] == NextHop::Local;
    let pkt = Packet::new_unchecked(&*l3);
    let Some(hit) = hit else {
        return miss(l3, key, to_pool, meta.rx_port == nat.outside, nat);
    };
    if to_pool {
        // Inbound or hairpin: the destination changes, so route it first and check the
        // exceptions against the new egress before translating; errors then quote the
        // packet as its sender sent it.
        if pkt.ttl() <= 1 {
            return Next::Punt(PuntReason::TtlExpired);
        }
        let v = snap.fib.lookup(u32::from(hit.rewrite.dst));
        let v = snap.member(v, l3);
        let port = match snap.nexthops.get(v as usize) {
            Some(NextHop::Via { port, .. } | NextHop::Connected { port }) => *port,
            _ => return Next::Drop(DropReason::NatNoRoute),
        };
        if pkt.total_len() > snap.ports[usize::from(port)].mtu {
            meta.tx_port[i] = port;
            // DF: frag needed to the sender, untranslated; otherwise the slow path
            // translates and fragments.
            return if pkt.dont_frag() {
                Next::Punt(PuntReason::NeedFrag)
            } else {
                Next::Punt(PuntReason::NatTooBig)
            };
        }
        meta.nh[i] = v;
        meta.tx_port[i] = port;
    }
    // A session this worker just created for a SYN already has the state that SYN gives it.
    if key.proto == proto::TCP && !fresh {
        let hl = usize::from(pkt.header_len());
        let flags = tcp::Packet::new_unchecked(&l3[hl..]).flags();
        // State changes are the control plane's: SYN/FIN/RST, and anything that may lead a
        // session out of the transitory state (RFC 6146: TRANS + any packet → ESTABLISHED).
        if flags & (tcp::flags::SYN | tcp::flags::FIN | tcp::flags::RST) != 0
            || hit.state == TcpState::Trans as u8
        {
            return Next::Punt(PuntReason::NatTcpControl);
        }
    }
    if translate::apply(l3, &Compiled::new(key, &hit.rewrite)).is_err() {
        return Next::Punt(PuntReason::NatMiss);
    }
    match hit.dir {
        Direction::In2Out => {
            nat.sessions.touch(hit.index, now);
            c.event(Event::NatIn2Out, 1);
        }
        Direction::Out2In => c.event(Event::NatOut2In, 1),
    }
    Next::Continue
}

/// No session for `key` of an outbound packet: create it here under the policy's lock
/// (`try_lock`: if the control thread or another worker holds it, the packet goes to the slow
/// path as before, so a worker never waits). See the module docs for why.
#[cold]
#[inline(never)]
fn create_here(
    l3: &[u8],
    key: &FlowKey,
    i: usize,
    meta: &Meta,
    snap: &Snapshot,
    now: Instant,
    c: &mut LocalCounters,
) -> Option<Hit> {
    let policy = snap.nat_policy.as_ref()?;
    if snap.nexthops[meta.nh[i] as usize] == NextHop::Local
        || Packet::new_unchecked(l3).is_fragment()
    {
        return None;
    }
    let pkt = Packet::new_unchecked(l3);
    let flags = if key.proto == proto::TCP {
        tcp::Packet::new_unchecked(&l3[usize::from(pkt.header_len())..]).flags()
    } else {
        0
    };
    let Ok(mut p) = policy.try_lock() else {
        c.event(Event::NatCreateBusy, 1);
        return None;
    };
    let hit = p.create_outbound(now, key, flags, meta.rx_port);
    drop(p);
    if hit.is_some() {
        c.event(Event::NatCreated, 1);
    }
    hit
}

/// No session for `key`. An ICMP query to a pool address is for the router itself (also
/// with TTL 1: RFC 1812 §4.2.2.9). Inbound from the outside to an external TCP/UDP port
/// with no mapping (nor forward) can be admitted by no filtering mode: dropped here, as the
/// slow path would drop it, except a TCP SYN, which the slow path holds for 6 s (RFC 5382
/// REQ-4) in case an outbound SYN opens that port. Everything else creates a session (or is
/// filtered) on the slow path.
#[inline]
fn miss(l3: &[u8], key: &FlowKey, to_pool: bool, from_outside: bool, nat: &NatFast) -> Next {
    if !to_pool {
        return Next::Punt(PuntReason::NatMiss);
    }
    if key.proto == proto::ICMP {
        return Next::Punt(PuntReason::ToUs);
    }
    if from_outside && !nat.mapped.may_be_mapped(key.dst, key.proto, key.dport) {
        let syn = key.proto == proto::TCP && {
            let hl = usize::from(Packet::new_unchecked(l3).header_len());
            let f = tcp::Packet::new_unchecked(&l3[hl..]).flags();
            f & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST) == tcp::flags::SYN
        };
        if !syn {
            return Next::Drop(DropReason::NatNoMapping);
        }
    }
    Next::Punt(PuntReason::NatMiss)
}

#[cold]
#[inline(never)]
fn cold_unkeyed(l3: &[u8], e: NatError, to_pool: bool) -> Next {
    let pkt = Packet::new_unchecked(l3);
    match e {
        NatError::Fragment => Next::Punt(PuntReason::NatFragment),
        // Malformed transport headers are dropped, to the pool as through it: nobody would
        // accept them, and translated they would reach an inside host (or make state).
        NatError::BadUdpLength => Next::Drop(DropReason::NatBadUdpLength),
        NatError::BadTcpOffset => Next::Drop(DropReason::NatBadTcpOffset),
        NatError::Unsupported if pkt.protocol() == crate::wire::ipv4::Protocol::Icmp => {
            let t = pkt.payload().first().copied().unwrap_or(0);
            if Message::from(t).is_error() {
                Next::Punt(PuntReason::NatIcmpError)
            } else if to_pool {
                Next::Punt(PuntReason::ToUs)
            } else {
                Next::Drop(DropReason::NatUnsupported)
            }
        }
        _ if to_pool => Next::Punt(PuntReason::ToUs),
        _ => Next::Drop(DropReason::NatUnsupported),
    }
}
