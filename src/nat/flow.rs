//! Flow identities and the rewrites the NAT applies to them.
//!
//! Owns: [`FlowKey`] (the 5-tuple as seen on the wire), [`Rewrite`] (the full new
//! addresses/ports written into a packet), [`Direction`] and the protocol numbers the NAT knows.
//! Depends on nothing but `core`/`std::net`.
//!
//! Contract: a session is described by its **in2out key** `k` (as sent by the inside host) and
//! its in2out rewrite `r`. Everything about the other direction is *derived*, never stored:
//!
//! - out2in key = [`out2in_key`]`(k, r)` = `{ src: r.dst, sport: r.dport, dst: r.src,
//!   dport: r.sport, proto }`, i.e. the in2out packet after rewriting, reversed;
//! - out2in rewrite = [`out2in_rewrite`]`(k)` = `{ src: k.dst, sport: k.dport, dst: k.src,
//!   dport: k.sport }`, which restores the original packet, reversed.
//!
//! Plain SNAT has `r.dst == k.dst` and `r.dport == k.dport`; port forwards and hairpinning
//! rewrite the destination too. For ICMP query messages `sport == dport ==` the echo identifier
//! (RFC 5508 §3.1), so the same derivation translates identifiers.

use std::net::Ipv4Addr;

/// A flow as it appears on the wire (for ICMP query messages sport = dport = the echo identifier).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port (ICMP: echo identifier).
    pub sport: u16,
    /// Destination port (ICMP: echo identifier).
    pub dport: u16,
    /// IP protocol number (see [`proto`]).
    pub proto: u8,
}

impl Default for FlowKey {
    /// All-zero key (`0.0.0.0`, ports 0, protocol 0); `Ipv4Addr` has no `Default`.
    fn default() -> FlowKey {
        FlowKey {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            sport: 0,
            dport: 0,
            proto: 0,
        }
    }
}

impl FlowKey {
    /// The key of the reply direction: source and destination (addresses and ports) swapped.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// The full new values written into a packet of the forward direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Rewrite {
    /// New source address.
    pub src: Ipv4Addr,
    /// New destination address.
    pub dst: Ipv4Addr,
    /// New source port (ICMP: identifier).
    pub sport: u16,
    /// New destination port (ICMP: identifier).
    pub dport: u16,
}

impl Default for Rewrite {
    /// All-zero rewrite (`0.0.0.0`, ports 0); `Ipv4Addr` has no `Default`.
    fn default() -> Rewrite {
        Rewrite {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            sport: 0,
            dport: 0,
        }
    }
}

impl Rewrite {
    /// The key a packet with key `k` carries after this rewrite has been applied.
    #[inline]
    pub fn apply(&self, k: &FlowKey) -> FlowKey {
        FlowKey {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: k.proto,
        }
    }
}

/// Which way a packet crosses the NAT.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// From the inside network to the outside (the direction that creates dynamic sessions).
    In2Out,
    /// From the outside network to the inside (replies, port forwards).
    Out2In,
}

/// IP protocol numbers the NAT translates (IANA "Assigned Internet Protocol Numbers").
pub mod proto {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
}

/// The out2in key of the session `(k, r)`: the rewritten in2out packet, reversed.
#[inline]
pub fn out2in_key(k: &FlowKey, r: &Rewrite) -> FlowKey {
    r.apply(k).reversed()
}

/// The out2in rewrite of a session with in2out key `k`: restores the original endpoints.
#[inline]
pub fn out2in_rewrite(k: &FlowKey) -> Rewrite {
    Rewrite {
        src: k.dst,
        dst: k.src,
        sport: k.dport,
        dport: k.sport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FlowKey {
        FlowKey {
            src: Ipv4Addr::new(198, 18, 0, 10),
            dst: Ipv4Addr::new(192, 0, 2, 1),
            sport: 40000,
            dport: 53,
            proto: proto::UDP,
        }
    }

    #[test]
    fn reversed_is_involution() {
        let k = key();
        assert_eq!(k.reversed().reversed(), k);
        assert_eq!(k.reversed().src, k.dst);
        assert_eq!(k.reversed().sport, k.dport);
    }

    #[test]
    fn snat_round_trip_restores_original() {
        let k = key();
        let r = Rewrite {
            src: Ipv4Addr::new(203, 0, 113, 1),
            dst: k.dst,
            sport: 1024,
            dport: k.dport,
        };
        let o = out2in_key(&k, &r);
        assert_eq!(o.src, k.dst);
        assert_eq!(o.sport, k.dport);
        assert_eq!(o.dst, r.src);
        assert_eq!(o.dport, r.sport);
        // The reply, after the out2in rewrite, is exactly the reverse of the original packet.
        assert_eq!(out2in_rewrite(&k).apply(&o), k.reversed());
    }

    #[test]
    fn dnat_round_trip_restores_original() {
        // Port forward / hairpin: both endpoints change.
        let k = key();
        let r = Rewrite {
            src: Ipv4Addr::new(203, 0, 113, 1),
            dst: Ipv4Addr::new(198, 18, 0, 20),
            sport: 2000,
            dport: 8080,
        };
        let o = out2in_key(&k, &r);
        assert_eq!(o, r.apply(&k).reversed());
        assert_eq!(out2in_rewrite(&k).apply(&o), k.reversed());
    }
}
