//! `nat44`: NAPT on the fast path. Established sessions are translated here; everything else
//! that concerns the NAT goes to the control plane, which owns the session table.
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
//! Next: continues (translated, or not the NAT's business); `Punt(NatMiss)` (no session);
//! `Punt(NatTcpControl)` (SYN/FIN/RST: state changes are the control plane's);
//! `Punt(NatIcmpError)`; `Punt(NatFragment)`; `Punt(ToUs)` (ICMP to a pool address without a
//! session: the router answers it); `Drop(NatUnsupported)` (other protocols).
//! Packets with TTL <= 1 or larger than the egress MTU are left untranslated, so the ICMP
//! error that `ip4-rewrite` triggers goes to the real (inside) source (RFC 4787 REQ-13).

use super::{DropReason, Event, LocalCounters, Meta, Next, NextHop, PuntReason, Snapshot};
use crate::{
    fib::NO_ROUTE,
    nat::{
        flow::{proto, Direction},
        translate::{self, Compiled, NatError},
    },
    wire::{ethernet::HEADER_LEN as ETH_LEN, icmpv4::Message, ipv4::Packet, tcp},
};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    now: u32,
    c: &mut LocalCounters,
) {
    let Some(nat) = snap.nat.as_deref() else {
        return;
    };
    for (i, f) in frames.iter_mut().enumerate().take(meta.len) {
        if meta.next[i] != Next::Continue {
            continue;
        }
        let next = translate_one(&mut f[ETH_LEN..], i, meta, snap, nat, now, c);
        match next {
            Next::Drop(r) => c.drop(r),
            Next::Punt(r) => c.punt(r),
            _ => {}
        }
        meta.next[i] = next;
    }
}

#[inline]
fn translate_one(
    l3: &mut [u8],
    i: usize,
    meta: &mut Meta,
    snap: &Snapshot,
    nat: &super::NatFast,
    now: u32,
    c: &mut LocalCounters,
) -> Next {
    let nh = snap.nexthops[meta.nh[i] as usize];
    let pkt = Packet::new_unchecked(&*l3);
    let to_pool = nh == NextHop::Local;
    if !to_pool {
        let egress_outside = match nh {
            NextHop::Via { port, .. } | NextHop::Connected { port } => port == nat.outside,
            _ => false,
        };
        if !egress_outside || meta.rx_port == nat.outside || !nat.is_inside(pkt.src_addr()) {
            return Next::Continue;
        }
    }
    // Exceptions go untranslated to ip4-rewrite, which punts them (errors to the real source).
    if pkt.ttl() <= 1 {
        return Next::Continue;
    }
    if let NextHop::Via { port, .. } | NextHop::Connected { port } = nh {
        if pkt.total_len() > snap.ports[usize::from(port)].mtu {
            return Next::Continue;
        }
    }
    nat_slow_or_fast(l3, i, meta, snap, nat, to_pool, now, c)
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn nat_slow_or_fast(
    l3: &mut [u8],
    i: usize,
    meta: &mut Meta,
    snap: &Snapshot,
    nat: &super::NatFast,
    to_pool: bool,
    now: u32,
    c: &mut LocalCounters,
) -> Next {
    // Fragments go to the control plane's virtual reassembly, the first one included: it
    // decides the translation of the others (RFC 4787 REQ-14).
    let pkt = Packet::new_unchecked(&*l3);
    if pkt.more_frags() || pkt.frag_offset() != 0 {
        return Next::Punt(PuntReason::NatFragment);
    }
    let key = match translate::flow_key(l3) {
        Ok(k) => k,
        Err(e) => return cold_unkeyed(l3, e, to_pool),
    };
    let Some(hit) = nat.sessions.lookup(&key) else {
        // An echo request to a pool address with no session is for the router itself.
        return if to_pool && key.proto == proto::ICMP {
            Next::Punt(PuntReason::ToUs)
        } else {
            Next::Punt(PuntReason::NatMiss)
        };
    };
    if key.proto == proto::TCP {
        let flags = tcp::Packet::new_unchecked(
            &l3[usize::from(Packet::new_unchecked(&*l3).header_len())..],
        )
        .flags();
        if flags & (tcp::flags::SYN | tcp::flags::FIN | tcp::flags::RST) != 0 {
            return Next::Punt(PuntReason::NatTcpControl);
        }
    }
    if translate::apply(l3, &Compiled::new(&key, &hit.rewrite)).is_err() {
        return Next::Punt(PuntReason::NatMiss);
    }
    match hit.dir {
        Direction::In2Out => {
            nat.sessions.touch(hit.index, now);
            c.event(Event::NatIn2Out, 1);
        }
        Direction::Out2In => c.event(Event::NatOut2In, 1),
    }
    if hit.rewrite.dst != key.dst {
        // Out2in or hairpin: route the new destination.
        let v = snap.fib.lookup(u32::from(hit.rewrite.dst));
        if v == NO_ROUTE {
            return Next::Punt(PuntReason::NatMiss);
        }
        meta.nh[i] = v;
        match snap.nexthops[v as usize] {
            NextHop::Via { port, .. } | NextHop::Connected { port } => meta.tx_port[i] = port,
            _ => return Next::Drop(DropReason::NatUnsupported),
        }
    }
    Next::Continue
}

#[cold]
#[inline(never)]
fn cold_unkeyed(l3: &[u8], e: NatError, to_pool: bool) -> Next {
    let pkt = Packet::new_unchecked(l3);
    match e {
        NatError::Fragment => Next::Punt(PuntReason::NatFragment),
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
