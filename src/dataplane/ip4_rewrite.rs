//! `ip4-rewrite`: decrement TTL, patch the checksum, check MTU, write the L2 header.
//!
//! Uses: `meta.nh[i]` (set by `ip4-lookup`), the IPv4 header at offset 14, the adjacency
//! of the next hop (`snap.nexthop_adj` for gateways, `snap.neighbors` for on-link hosts).
//! Sets: TTL, header checksum (RFC 1624 incremental), Ethernet dst/src/type.
//! Next: `Tx(port)`; `Punt(TtlExpired)`; `Punt(ArpMiss)` with `meta.nh_addr`;
//! `Punt(NeedFrag)` (DF set) or `Punt(Fragment)` when larger than the egress MTU.

use super::{DropReason, LocalCounters, Meta, Next, NextHop, PuntReason, Snapshot, NO_ADJ};
use crate::wire::{checksum, ethernet::HEADER_LEN as ETH_LEN, ipv4::Packet};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    c: &mut LocalCounters,
) {
    for (i, f) in frames.iter_mut().enumerate().take(meta.len) {
        if meta.next[i] != Next::Continue {
            continue;
        }
        let next = rewrite(f, i, meta, snap);
        match next {
            Next::Punt(r) => c.punt(r),
            Next::Drop(r) => c.drop(r),
            _ => {}
        }
        meta.next[i] = next;
    }
}

#[inline]
fn rewrite(f: &mut [u8], i: usize, meta: &mut Meta, snap: &Snapshot) -> Next {
    let (l2, l3) = f.split_at_mut(ETH_LEN);
    let mut pkt = Packet::new_unchecked(l3);
    // RFC 1812 §5.3.1: never forward with TTL 0; TTL <= 1 in transit → time exceeded.
    let ttl = pkt.ttl();
    if ttl <= 1 {
        return Next::Punt(PuntReason::TtlExpired);
    }
    let nh = meta.nh[i] as usize;
    let (port, adj, nh_addr) = match snap.nexthops[nh] {
        NextHop::Via { gateway, port } => (port, snap.nexthop_adj[nh], u32::from(gateway)),
        NextHop::Connected { port } => {
            let d = u32::from(pkt.dst_addr());
            (port, snap.neighbors.get(&d).map_or(NO_ADJ, |a| a.0), d)
        }
        // ip4-lookup lets only forwardable next hops through, nat44 re-routes to one.
        _ => return Next::Drop(DropReason::RewriteNoNextHop),
    };
    meta.nh_addr[i] = nh_addr;
    meta.tx_port[i] = port;
    // MTU before the neighbour: an oversized packet gets its frag-needed/fragment decision
    // whatever the ARP state (nat44 leaves such packets untranslated for this stage).
    if pkt.total_len() > snap.ports[usize::from(port)].mtu {
        return Next::Punt(if pkt.dont_frag() {
            PuntReason::NeedFrag
        } else {
            PuntReason::Fragment
        });
    }
    if adj == NO_ADJ {
        return Next::Punt(PuntReason::ArpMiss);
    }
    let adj = snap.adjs.get(crate::neigh::AdjIndex(adj));
    // RFC 1624 eqn. 3 on the TTL/protocol word.
    pkt.set_ttl(ttl - 1);
    pkt.set_checksum(checksum::ttl_decrement(pkt.checksum()));
    l2.copy_from_slice(&adj.l2_header);
    Next::Tx(adj.port.0)
}
