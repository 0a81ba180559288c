//! The kernel's view of the router's interfaces, as rtnetlink reports it (DESIGN R21).
//!
//! Pure: bytes received from a `NETLINK_ROUTE` socket in, [`KernelMsg`]s out; the socket
//! itself is `io::netlink`. Parsing is netlink-packet-route's; this module picks out what
//! xgw acts on and turns everything else into counted skips, so a malformed or unexpected
//! message can never stop the feed.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{LinkAttribute, LinkFlags, LinkMessage},
    neighbour::NeighbourMessage,
    route::RouteMessage,
    AddressFamily, RouteNetlinkMessage,
};

mod addr;
mod route;
pub use addr::{addr_dump_request, neigh_solicit_request, AddrMsg, RTMGRP_IPV4_IFADDR};
pub use route::{
    nexthop_dump_request, NeighMsg, NexthopMsg, NudState, RouteKind, RouteMsg, RoutePath,
    RTMGRP_IPV4_ROUTE, RTMGRP_NEIGH, RTM_DELNEXTHOP, RTM_GETNEXTHOP, RTM_NEWNEXTHOP,
    RTNLGRP_NEXTHOP,
};

/// `RTMGRP_LINK`: the multicast group of link changes.
pub const RTMGRP_LINK: u32 = 1;

/// One link as the kernel describes it (RTM_NEWLINK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMsg {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name (empty if the message had none).
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// The carrier is on (`IFF_LOWER_UP`). Not `IFLA_OPERSTATE`: the kernel updates that
    /// from a deferred work item (linkwatch, up to a second late after a carrier change),
    /// so a port that just came up can still report `lowerlayerdown` while it forwards.
    pub oper_up: bool,
    /// Device MTU (0 if the message had none).
    pub mtu: u32,
}

impl LinkMsg {
    /// Up for forwarding: both administratively and operationally.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.oper_up
    }
}

/// What xgw takes from one netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelMsg {
    /// A link was created or changed (or is listed by a dump).
    Link(LinkMsg),
    /// A link was deleted (RTM_DELLINK).
    LinkDeleted {
        /// Its index.
        ifindex: u32,
        /// Its name, if the message had one.
        name: String,
    },
    /// An IPv4 route was added or changed (or is listed by a dump).
    Route(RouteMsg),
    /// An IPv4 route was deleted.
    RouteDeleted(RouteMsg),
    /// An IPv4 neighbour was added or changed (or is listed by a dump).
    Neigh(NeighMsg),
    /// An IPv4 neighbour was deleted.
    NeighDeleted(NeighMsg),
    /// A nexthop object was added or replaced (or is listed by a dump).
    Nexthop(NexthopMsg),
    /// An IPv4 address was added (or is listed by a dump).
    Addr(AddrMsg),
    /// An IPv4 address was removed.
    AddrDeleted(AddrMsg),
    /// A nexthop object was deleted.
    NexthopDeleted {
        /// Its id.
        id: u32,
    },
    /// The end of a dump (NLMSG_DONE) answering request `seq`.
    DumpDone {
        /// The request's sequence number.
        seq: u32,
    },
    /// The kernel answered request `seq` with an error.
    Error {
        /// errno (positive).
        errno: i32,
        /// The request's sequence number.
        seq: u32,
    },
    /// Dump `seq` was requested: what is reported from now until its
    /// [`KernelMsg::DumpDone`] is the whole state. Produced by the reader, never decoded
    /// from bytes.
    DumpStart {
        /// The request's sequence number.
        seq: u32,
        /// What it lists.
        kind: DumpKind,
    },
    /// Events were lost (the socket overran, or the feed's queue was full) or a dump was
    /// interrupted (`NLM_F_DUMP_INTR`, decoded once per buffer): everything must be dumped
    /// again.
    Resync,
}

/// What a dump lists (see [`KernelMsg::DumpStart`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpKind {
    /// Every link (RTM_GETLINK).
    Links,
    /// Every IPv4 address (RTM_GETADDR).
    Addresses,
    /// Every nexthop object and then every IPv4 route: two requests, the first
    /// (nexthops) with sequence number `seq - 1`, so that one staged table sees both and
    /// ends with the route dump's `DumpDone { seq }`.
    Routes,
    /// Every IPv4 neighbour (RTM_GETNEIGH).
    Neighbours,
}

/// How one buffer decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Messages turned into [`KernelMsg`]s.
    pub decoded: usize,
    /// Well-formed messages xgw does not act on (other types, acks).
    pub ignored: usize,
    /// Messages that did not parse (bad length, truncated or inconsistent attributes).
    pub malformed: usize,
}

/// `NLM_F_DUMP_INTR`.
const NLM_F_DUMP_INTR: u16 = 0x10;

/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// Decode every netlink message in `buf` (one `recv`), appending to `out`. A message whose
/// header lies about its length ends the buffer (nothing after it can be framed); one whose
/// body does not parse is skipped. Neither panics.
pub fn decode(buf: &[u8], out: &mut Vec<KernelMsg>) -> DecodeStats {
    let mut st = DecodeStats::default();
    let mut off = 0;
    let mut resync = false;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() - off {
            st.malformed += 1;
            return st;
        }
        let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        // NLM_F_DUMP_INTR: the table changed while this dump was being read, so the dump
        // is not a consistent picture: its message still counts, then everything is
        // dumped again.
        let interrupted = u16::from_ne_bytes([buf[off + 6], buf[off + 7]]) & NLM_F_DUMP_INTR != 0;
        if interrupted && !resync {
            resync = true;
            out.push(KernelMsg::Resync);
            st.decoded += 1;
        }
        if ty == RTM_NEWNEXTHOP || ty == RTM_DELNEXTHOP {
            // netlink-packet-route does not know nexthop objects: parsed in `route`.
            match route::nexthop(&buf[off + NLMSG_HDRLEN..off + len]) {
                Ok(route::Nh::Msg(m)) => {
                    out.push(if ty == RTM_NEWNEXTHOP {
                        KernelMsg::Nexthop(m)
                    } else {
                        KernelMsg::NexthopDeleted { id: m.id }
                    });
                    st.decoded += 1;
                }
                Ok(route::Nh::Foreign) => st.ignored += 1,
                Err(()) => st.malformed += 1,
            }
            off += (len + 3) & !3;
            continue;
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len]) {
            Ok(m) => match convert(m) {
                Some(k) => {
                    out.push(k);
                    st.decoded += 1;
                }
                None => st.ignored += 1,
            },
            Err(_) => st.malformed += 1,
        }
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        off += (len + 3) & !3;
    }
    if off < buf.len() {
        st.malformed += 1;
    }
    st
}

fn convert(m: NetlinkMessage<RouteNetlinkMessage>) -> Option<KernelMsg> {
    let seq = m.header.sequence_number;
    match m.payload {
        NetlinkPayload::Done(_) => Some(KernelMsg::DumpDone { seq }),
        NetlinkPayload::Error(e) => e.code.map(|c| KernelMsg::Error {
            errno: c.get().saturating_abs(),
            seq,
        }),
        NetlinkPayload::Overrun(_) => Some(KernelMsg::Resync),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
            Some(KernelMsg::Link(link(&l)))
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
            let l = link(&l);
            Some(KernelMsg::LinkDeleted {
                ifindex: l.ifindex,
                name: l.name,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
            route::route(&r).map(KernelMsg::Route)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => {
            route::route(&r).map(KernelMsg::RouteDeleted)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
            addr::addr(&a).map(KernelMsg::Addr)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => {
            addr::addr(&a).map(KernelMsg::AddrDeleted)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
            route::neigh(&n).map(KernelMsg::Neigh)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => {
            route::neigh(&n).map(KernelMsg::NeighDeleted)
        }
        _ => None,
    }
}

fn link(l: &LinkMessage) -> LinkMsg {
    let flags = l.header.flags;
    let mut m = LinkMsg {
        ifindex: l.header.index,
        name: String::new(),
        admin_up: flags.contains(LinkFlags::Up),
        oper_up: false,
        mtu: 0,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => m.name.clone_from(n),
            LinkAttribute::Mtu(v) => m.mtu = *v,
            _ => {}
        }
    }
    m.oper_up = flags.contains(LinkFlags::LowerUp);
    m
}

/// An RTM_GETLINK dump request with sequence number `seq`.
pub fn link_dump_request(seq: u32) -> Vec<u8> {
    dump_request(seq, RouteNetlinkMessage::GetLink(LinkMessage::default()))
}

/// An RTM_GETROUTE dump request (IPv4, every table) with sequence number `seq`.
pub fn route_dump_request(seq: u32) -> Vec<u8> {
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    dump_request(seq, RouteNetlinkMessage::GetRoute(r))
}

/// An RTM_GETNEIGH dump request (IPv4) with sequence number `seq`.
pub fn neigh_dump_request(seq: u32) -> Vec<u8> {
    let mut n = NeighbourMessage::default();
    n.header.family = AddressFamily::Inet;
    dump_request(seq, RouteNetlinkMessage::GetNeighbour(n))
}

fn dump_request(seq: u32, msg: RouteNetlinkMessage) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

#[cfg(test)]
mod tests;
