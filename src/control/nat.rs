//! Glue between `[nat]` and the NAT policy (`nat::policy`): the validated settings become a
//! [`PolicyConfig`], and the fast path's punt reasons become the policy's [`Exception`]s.
//! The policy itself (mappings, filtering, SYN hold, reassembly, ICMP errors, expiry) lives
//! in `nat::policy`, sans-I/O and unit-tested there.

pub use crate::nat::policy::{NatCounters, NatEvent, NatOutcome, NatPolicy, SYN_HOLD};
use crate::{
    config::{self, NatSettings},
    dataplane::PuntReason,
    nat::policy::{Exception, Filtering, Forward, PolicyConfig, Timeouts},
};

/// The policy's configuration from the validated `[nat]` section.
pub fn policy_config(n: &NatSettings) -> PolicyConfig {
    PolicyConfig {
        outside: u16::try_from(n.outside).expect("port ids fit u16"),
        addresses: n.addresses.clone(),
        inside: n.inside.clone(),
        min_port: n.min_port,
        max_port: n.max_port,
        filtering: match n.filtering {
            config::Filtering::EndpointIndependent => Filtering::EndpointIndependent,
            config::Filtering::AddressDependent => Filtering::AddressDependent,
            config::Filtering::AddressAndPortDependent => Filtering::AddressAndPortDependent,
        },
        max_sessions: n.max_sessions,
        reassembly_bytes: n.reassembly_bytes,
        max_sessions_per_host: n.max_sessions_per_host,
        inbound_route: n.inbound == config::Inbound::Route,
        timeouts: Timeouts {
            udp: n.timeouts.udp,
            tcp_established: n.timeouts.tcp_established,
            tcp_transitory: n.timeouts.tcp_transitory,
            tcp_inbound_open: n.timeouts.tcp_inbound_open,
            icmp: n.timeouts.icmp,
        },
        forwards: n
            .forwards
            .iter()
            .map(|f| Forward {
                proto: f.proto,
                external: f.external,
                port: f.port,
                to: f.to,
                to_port: f.to_port,
            })
            .collect(),
    }
}

/// The policy's view of a punt reason (None: not a NAT exception).
pub fn exception(r: PuntReason) -> Option<Exception> {
    match r {
        PuntReason::NatMiss | PuntReason::NatTooBig => Some(Exception::Miss),
        PuntReason::NatTcpControl => Some(Exception::TcpControl),
        PuntReason::NatIcmpError => Some(Exception::IcmpError),
        PuntReason::NatFragment => Some(Exception::Fragment),
        _ => None,
    }
}
