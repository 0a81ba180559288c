//! What the fast path needs of the NAT, shared by every snapshot: which port is outside,
//! which addresses are external, which sources are eligible, the session table's lock-free
//! reader and the mapped-port bitmap. The policy (`nat::policy`) owns the writers.

use std::net::Ipv4Addr;

use super::{portmap::PortMap, table::SessionReader};
use crate::wire::ipv4::Cidr;

/// What the fast path needs of the NAT: which port is outside, which addresses are external,
/// which sources are eligible, and read access to the session table.
#[derive(Debug)]
pub struct NatFast {
    /// The outside port.
    pub outside: u16,
    /// External (pool) addresses.
    pub pool: Vec<Ipv4Addr>,
    /// Eligible inside sources (empty: all).
    pub inside: Vec<Cidr>,
    /// Lock-free reader of the control plane's session table.
    pub sessions: SessionReader,
    /// External TCP/UDP ports with a mapping (written by the control plane).
    pub mapped: PortMap,
    /// `[nat] inbound = "route"`: packets arriving on the outside port for inside
    /// destinations are routed in untranslated (false: dropped).
    pub inbound_route: bool,
}

impl NatFast {
    /// Is `a` an external (pool) address?
    #[inline]
    pub fn is_pool(&self, a: Ipv4Addr) -> bool {
        self.pool.contains(&a)
    }

    /// May a packet from `a` be translated?
    #[inline]
    pub fn is_inside(&self, a: Ipv4Addr) -> bool {
        self.inside.is_empty() || self.inside.iter().any(|c| c.contains_addr(&a))
    }

    /// Is a packet to `dst` that arrived on `rx_port` and is routed out of `egress` one that
    /// came from outside for an inside destination without translation, to be dropped
    /// (`[nat] inbound = "drop"`)? Inside destinations are those in `nat.inside` (every
    /// address when it is empty) that are not routed back out of the outside port.
    #[inline]
    pub fn refuses_inbound(&self, dst: Ipv4Addr, rx_port: u16, egress: Option<u16>) -> bool {
        !self.inbound_route
            && rx_port == self.outside
            && egress.is_some_and(|p| p != self.outside)
            && self.is_inside(dst)
    }

    /// Does the NAT handle a packet from `src` to `dst` that arrived on `rx_port` and is
    /// routed out of `egress` (None: not routed out of a port)? The one rule, used by the
    /// fast path (`nat44`) and the slow path alike: traffic to an external address
    /// (inbound or hairpin), and traffic from an eligible inside source that arrived on
    /// another port and leaves by the outside one.
    #[inline]
    pub fn concerns(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        rx_port: u16,
        egress: Option<u16>,
    ) -> bool {
        self.is_pool(dst)
            || (egress == Some(self.outside) && rx_port != self.outside && self.is_inside(src))
    }

    /// The packet as it was before the NAT translated it, for the ICMP errors the router
    /// builds about a translated packet (TTL or MTU on the slow path, host unreachable):
    /// - translated outbound (its source is an external address): back to the inside
    ///   source, so the error reaches the inside host that sent it (RFC 5508 REQ-4);
    /// - translated inbound (a forward or mapping rewrote its destination to an inside
    ///   host): back to the external destination, so the error tells the outside sender
    ///   only what it sent, never the inside address and port.
    ///
    /// None if it is not a translated packet. Lock-free (the session table's reader), so the
    /// control thread never takes the policy for it.
    pub fn untranslate(&self, ip: &[u8]) -> Option<Vec<u8>> {
        let key = super::translate::flow_key(ip).ok()?;
        let hit = self.sessions.lookup(&key.reversed())?;
        let rw = hit.rewrite;
        let back = if self.is_pool(key.src) {
            super::flow::Rewrite {
                src: rw.dst,
                sport: rw.dport,
                dst: rw.src,
                dport: rw.sport,
            }
        } else if hit.dir == super::flow::Direction::In2Out && !self.is_pool(key.dst) {
            // The reverse is the session's in2out key, so this is its out2in packet after
            // translation: its destination was `rw.src:rw.sport`.
            super::flow::Rewrite {
                src: key.src,
                sport: key.sport,
                dst: rw.src,
                dport: rw.sport,
            }
        } else {
            return None;
        };
        let mut out = ip.to_vec();
        super::translate::rewrite(&mut out, &back).ok()?;
        Some(out)
    }
}
