//! `ip4-lookup`: longest-prefix match of the destination, batched.
//!
//! Uses: destination address of packets still `Continue`; `snap.fib`, `snap.nexthops`.
//! Sets: `meta.nh[i]` (FIB value = next-hop index; for an ECMP group, its member for the
//! packet's flow), `meta.tx_port[i]` where known.
//! Next: `Punt(ToUs)` (our address; `Drop(FragmentToUs)` for fragments), `Punt(NoRoute)`,
//! `Punt(Unreachable)`, `Drop(Blackhole | DirectedBroadcast)`; forwardable packets continue.

use super::{DropReason, LocalCounters, Meta, Next, NextHop, PuntReason, Snapshot};
use crate::{
    fib::NO_ROUTE,
    io::BATCH,
    wire::{ethernet::HEADER_LEN as ETH_LEN, ipv4::Packet},
};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    c: &mut LocalCounters,
) {
    // Gather the destinations of the live packets, look them up together so the trie's
    // cache misses overlap, then scatter the results.
    let mut idx = [0u8; BATCH];
    let mut dst = [0u32; BATCH];
    let mut k = 0;
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        if meta.next[i] == Next::Continue {
            dst[k] = u32::from(Packet::new_unchecked(&f[ETH_LEN..]).dst_addr());
            idx[k] = i as u8;
            k += 1;
        }
    }
    let mut val = [NO_ROUTE; BATCH];
    snap.fib.lookup_batch(&dst[..k], &mut val[..k]);
    for j in 0..k {
        let i = usize::from(idx[j]);
        let mut v = val[j];
        let next = if v == NO_ROUTE {
            Next::Punt(PuntReason::NoRoute)
        } else {
            v = snap.member(v, &frames[i][ETH_LEN..]);
            match snap.nexthops[v as usize] {
                NextHop::Via { port, .. } | NextHop::Connected { port } => {
                    meta.tx_port[i] = port;
                    Next::Continue
                }
                NextHop::Local => {
                    let pkt = Packet::new_unchecked(&frames[i][ETH_LEN..]);
                    if snap.nat.as_ref().is_some_and(|n| n.is_pool(pkt.dst_addr())) {
                        // A pool address: nat44 decides (translate, punt to us, or miss).
                        Next::Continue
                    } else if pkt.is_fragment() {
                        Next::Drop(DropReason::FragmentToUs)
                    } else {
                        Next::Punt(PuntReason::ToUs)
                    }
                }
                NextHop::Broadcast { .. } => Next::Drop(DropReason::DirectedBroadcast),
                NextHop::Blackhole => Next::Drop(DropReason::Blackhole),
                NextHop::Unreachable => Next::Punt(PuntReason::Unreachable),
                NextHop::Prohibit => Next::Punt(PuntReason::Prohibit),
                // A group's members are `Via`s ([`Snapshot::member`]).
                NextHop::Group { .. } => Next::Drop(DropReason::RewriteNoNextHop),
            }
        };
        meta.nh[i] = v;
        match next {
            Next::Drop(r) => c.drop(r),
            Next::Punt(r) => c.punt(r),
            _ => {}
        }
        meta.next[i] = next;
    }
}
