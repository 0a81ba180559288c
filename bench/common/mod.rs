//! Helpers shared by the benchmarks: frames are built with the integration tests' golden
//! builders (`tests/common`), so benches and tests construct packets the same way.
// Each bench binary uses a different subset of these helpers.
#![allow(dead_code)]

#[path = "../../tests/common/mod.rs"]
pub(crate) mod golden;

use std::net::Ipv4Addr;

use golden::{client, Ip};

/// UDP payload bytes that make a 60-byte Ethernet frame (64 bytes on the wire with the FCS):
/// 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 18.
pub(crate) const UDP_PAYLOAD_64B: usize = 18;

/// A minimum-size UDP packet (IPv4 header first), `src:sport -> dst:dport`.
pub(crate) fn udp_packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    Ip::udp_ports(src, sport, dst, dport, UDP_PAYLOAD_64B).bytes()
}

/// A minimum-size UDP frame from the test client (`198.18.0.2`) to the router's port 0.
pub(crate) fn client_udp_frame(sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    Ip::udp_ports(client(), sport, dst, dport, UDP_PAYLOAD_64B).client_frame()
}
