//! Interface addresses as rtnetlink reports them (RTM_NEWADDR / RTM_DELADDR), and the
//! request a kernel-mirror router sends to have the kernel resolve a neighbour.
//!
//! Pure, like the rest of `kernel`. IPv4 only: other families decode to nothing.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    AddressFamily, RouteNetlinkMessage,
};

/// `RTMGRP_IPV4_IFADDR`.
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;

/// One IPv4 interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrMsg {
    /// Interface index.
    pub ifindex: u32,
    /// The address (`IFA_LOCAL`, or `IFA_ADDRESS` without one).
    pub addr: Ipv4Addr,
    /// Prefix length (0..=32).
    pub len: u8,
}

pub(super) fn addr(m: &AddressMessage) -> Option<AddrMsg> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(v)) => local = Some(*v),
            AddressAttribute::Address(IpAddr::V4(v)) => address = Some(*v),
            _ => {}
        }
    }
    Some(AddrMsg {
        ifindex: m.header.index,
        // On a point-to-point link IFA_ADDRESS is the peer; IFA_LOCAL is always ours.
        addr: local.or(address)?,
        len: m.header.prefix_len.min(32),
    })
}

/// An RTM_GETADDR dump request (IPv4) with sequence number `seq`.
pub fn addr_dump_request(seq: u32) -> Vec<u8> {
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    super::dump_request(seq, RouteNetlinkMessage::GetAddress(a))
}

/// An RTM_NEWNEIGH request with `NTF_USE` and `NLM_F_CREATE`: the kernel resolves `ip` on
/// interface `ifindex` as if it had a packet for it (creating the entry if needed, or
/// probing a stale one), and reports the outcome as RTM_NEWNEIGH. No acknowledgement is
/// asked for; an error comes back to the sender's socket.
pub fn neigh_solicit_request(seq: u32, ifindex: u32, ip: Ipv4Addr) -> Vec<u8> {
    let mut n = NeighbourMessage::default();
    n.header.family = AddressFamily::Inet;
    n.header.ifindex = ifindex;
    n.header.flags = NeighbourFlags::Use;
    n.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_CREATE;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::NewNeighbour(n)),
    );
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}
