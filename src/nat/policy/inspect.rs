//! Read-only views of the policy for the operator (`xgw show nat summary|mappings`): small
//! aggregates computed on the control thread, never per packet.

use std::{collections::BTreeMap, net::Ipv4Addr};

use super::NatPolicy;

/// What `xgw show nat summary` reports from the policy (the session counts by protocol and
/// state come from a walk of the table, off the control thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySummary {
    /// Live sessions.
    pub sessions: usize,
    /// The table's capacity (`[nat] max_sessions`).
    pub capacity: u32,
    /// External ports with a mapping, per (external address, protocol number), ascending.
    pub ports_in_use: Vec<(Ipv4Addr, u8, usize)>,
    /// Ports released less than the quarantine ago (not reusable yet).
    pub quarantined: usize,
    /// Unsolicited inbound SYNs held (RFC 5382 REQ-4).
    pub held_syns: usize,
    /// Bytes held by virtual reassembly.
    pub reassembly_bytes: usize,
    /// Endpoint-independent mappings (forwards included).
    pub mappings: usize,
    /// Static port forwards.
    pub forwards: usize,
}

/// One mapping, as `xgw show nat mappings` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingView {
    /// Protocol number.
    pub proto: u8,
    /// Inside endpoint.
    pub inside: (Ipv4Addr, u16),
    /// External endpoint.
    pub external: (Ipv4Addr, u16),
    /// Sessions that hold it.
    pub sessions: u32,
    /// A static forward's (never released).
    pub forward: bool,
}

impl NatPolicy {
    /// The aggregates of [`PolicySummary`].
    pub fn summary(&self) -> PolicySummary {
        let mut ports: BTreeMap<(Ipv4Addr, u8), usize> = BTreeMap::new();
        for &(proto, addr, _) in self.by_ext.keys() {
            *ports.entry((addr, proto)).or_default() += 1;
        }
        PolicySummary {
            sessions: self.sessions.len(),
            capacity: self.sessions.capacity(),
            ports_in_use: ports.into_iter().map(|((a, p), n)| (a, p, n)).collect(),
            quarantined: self.ports.quarantined(),
            held_syns: self.held_syns.len(),
            reassembly_bytes: self.frags.used(),
            mappings: self.mappings.len(),
            forwards: self.forwards.len(),
        }
    }

    /// Every mapping, sorted by protocol, then inside endpoint.
    pub fn mapping_views(&self) -> Vec<MappingView> {
        let mut v: Vec<MappingView> = self
            .mappings
            .iter()
            .map(|(&(proto, addr, port), m)| MappingView {
                proto,
                inside: (addr, port),
                external: (m.ext, m.eport),
                sessions: m.sessions,
                forward: m.permanent,
            })
            .collect();
        v.sort_by_key(|m| (m.proto, m.inside));
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::nat::policy::{
        tests::{open_udp, policy_for_inspect},
        NatPolicy,
    };

    /// A forward and two outbound flows of one host: the counts add up by address and
    /// protocol, and the forward shows as a permanent mapping.
    #[test]
    fn summary_and_mappings_count_what_exists() {
        let now = Instant::now();
        let mut p: NatPolicy = policy_for_inspect(now);
        let s0 = p.summary();
        assert_eq!(s0.sessions, 0);
        assert_eq!(s0.forwards, 1);
        assert_eq!(s0.mappings, 1);
        assert_eq!(s0.ports_in_use.len(), 1, "{s0:?}");
        open_udp(&mut p, now, 1000);
        open_udp(&mut p, now + Duration::from_millis(1), 1001);
        let s = p.summary();
        assert_eq!(s.sessions, 2);
        assert_eq!(s.mappings, 3);
        let udp: usize = s
            .ports_in_use
            .iter()
            .filter(|(_, proto, _)| *proto == 17)
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(udp, 2, "{s:?}");
        let m = p.mapping_views();
        assert_eq!(m.len(), 3);
        assert_eq!(m.iter().filter(|m| m.forward).count(), 1);
        assert!(m.iter().filter(|m| !m.forward).all(|m| m.sessions == 1));
    }
}
