//! Routes, neighbours and nexthop objects as rtnetlink reports them: what a kernel-mirror
//! router imports (RTM_NEWROUTE/DELROUTE, RTM_NEWNEIGH/DELNEIGH, RTM_NEWNEXTHOP/DELNEXTHOP).
//!
//! Pure, like the rest of `kernel`. IPv4 only: other families decode to nothing (ignored).
//! Routes and neighbours are netlink-packet-route's parse; nexthop objects, which it does
//! not know, are parsed here from `struct nhmsg` and its `NHA_*` attributes with
//! netlink-packet-core's checked attribute iterator.

use std::net::Ipv4Addr;

use netlink_packet_core::{NlaBuffer, NlasIterator};
use netlink_packet_route::{
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage},
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteNextHop},
    AddressFamily,
};

/// `RTMGRP_NEIGH`.
pub const RTMGRP_NEIGH: u32 = 0x4;
/// `RTMGRP_IPV4_ROUTE`.
pub const RTMGRP_IPV4_ROUTE: u32 = 0x40;
/// `RTNLGRP_NEXTHOP` (a group number, joined with `NETLINK_ADD_MEMBERSHIP`; it is bit 31 of
/// the legacy mask too).
pub const RTNLGRP_NEXTHOP: u32 = 32;
/// `RTM_NEWNEXTHOP`.
pub const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
pub const RTM_DELNEXTHOP: u16 = 105;
/// `RTM_GETNEXTHOP`.
pub const RTM_GETNEXTHOP: u16 = 106;

/// What a route does with a packet (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Forward (through gateways or on-link).
    Unicast,
    /// The router's own address (table `local`).
    Local,
    /// A broadcast address of a connected subnet (table `local`).
    Broadcast,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP net unreachable.
    Unreachable,
    /// Drop with ICMP communication administratively prohibited.
    Prohibit,
    /// Anything else (anycast, multicast, nat, throw, ...): `rtm_type`.
    Other(u8),
}

/// One way out of a route: a gateway (or on-link when `None`) through interface `oif`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePath {
    /// The next hop's address; `None` for an on-link (connected) route.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface index (0 if the kernel gave none).
    pub oif: u32,
    /// Weight, 1..=256 (`rtnh_hops + 1`; 1 for a single-path route).
    pub weight: u16,
}

/// One IPv4 route (RTM_NEWROUTE / RTM_DELROUTE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMsg {
    /// Routing table (`RTA_TABLE`, or `rtm_table`): 254 `main`, 255 `local`.
    pub table: u32,
    /// Destination network address.
    pub dst: Ipv4Addr,
    /// Prefix length (0..=32).
    pub len: u8,
    /// What it does.
    pub kind: RouteKind,
    /// Who installed it (`rtm_protocol`: 2 kernel, 3 boot, 4 static, 12 bird, 186 bgp, ...).
    pub protocol: u8,
    /// Metric (`RTA_PRIORITY`; lower wins among routes of one prefix).
    pub priority: u32,
    /// Its paths: one for a plain route, several for RTA_MULTIPATH, none for a blackhole or
    /// a route through a nexthop object.
    pub paths: Vec<RoutePath>,
    /// The nexthop object it uses (`RTA_NH_ID`), if any: see [`NexthopMsg`].
    pub nh_id: Option<u32>,
}

/// `ndm_state` bits of a neighbour entry (NUD_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NudState(pub u16);

impl NudState {
    /// NUD_INCOMPLETE.
    pub const INCOMPLETE: u16 = 0x01;
    /// NUD_REACHABLE.
    pub const REACHABLE: u16 = 0x02;
    /// NUD_STALE.
    pub const STALE: u16 = 0x04;
    /// NUD_DELAY.
    pub const DELAY: u16 = 0x08;
    /// NUD_PROBE.
    pub const PROBE: u16 = 0x10;
    /// NUD_FAILED.
    pub const FAILED: u16 = 0x20;
    /// NUD_NOARP.
    pub const NOARP: u16 = 0x40;
    /// NUD_PERMANENT.
    pub const PERMANENT: u16 = 0x80;

    /// The kernel has a link-layer address it will use (`NUD_VALID` without NOARP: xgw
    /// forwards to it; stale, delay and probe entries still carry a usable address).
    pub fn is_usable(self) -> bool {
        self.0 & (Self::REACHABLE | Self::STALE | Self::DELAY | Self::PROBE | Self::PERMANENT) != 0
    }

    /// Resolution failed.
    pub fn is_failed(self) -> bool {
        self.0 & Self::FAILED != 0
    }
}

/// One IPv4 neighbour (RTM_NEWNEIGH / RTM_DELNEIGH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighMsg {
    /// Interface index.
    pub ifindex: u32,
    /// Its IPv4 address.
    pub addr: Ipv4Addr,
    /// Its MAC, when the entry has one (6 bytes; anything else is treated as none).
    pub mac: Option<[u8; 6]>,
    /// Its state.
    pub state: NudState,
}

/// One nexthop object (RTM_NEWNEXTHOP; `ip nexthop`), as FRR installs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopMsg {
    /// Its id (`NHA_ID`).
    pub id: u32,
    /// A gateway (`NHA_GATEWAY`, IPv4 only).
    pub gateway: Option<Ipv4Addr>,
    /// Output interface (`NHA_OIF`; 0 if none).
    pub oif: u32,
    /// A blackhole nexthop (`NHA_BLACKHOLE`).
    pub blackhole: bool,
    /// For a group (`NHA_GROUP`): member ids with their weights (1..=65536 stored as
    /// `weight - 1` in 16 bits: `weight` + `weight_high << 8`).
    pub group: Vec<(u32, u32)>,
}

pub(super) fn route(m: &RouteMessage) -> Option<RouteMsg> {
    if m.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut r = RouteMsg {
        table: u32::from(m.header.table),
        dst: Ipv4Addr::UNSPECIFIED,
        len: m.header.destination_prefix_length.min(32),
        kind: match u8::from(m.header.kind) {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            t => RouteKind::Other(t),
        },
        protocol: u8::from(m.header.protocol),
        priority: 0,
        paths: Vec::new(),
        nh_id: None,
    };
    let mut single = RoutePath {
        gateway: None,
        oif: 0,
        weight: 1,
    };
    let mut has_single = false;
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(d)) => r.dst = *d,
            RouteAttribute::Priority(p) => r.priority = *p,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                single.gateway = Some(*g);
                has_single = true;
            }
            RouteAttribute::Oif(o) => {
                single.oif = *o;
                has_single = true;
            }
            RouteAttribute::MultiPath(hops) => r.paths.extend(hops.iter().map(path)),
            RouteAttribute::NhId(id) => r.nh_id = Some(*id),
            _ => {}
        }
    }
    if r.paths.is_empty() && has_single && r.nh_id.is_none() {
        r.paths.push(single);
    }
    Some(r)
}

fn path(h: &RouteNextHop) -> RoutePath {
    let gateway = h.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
        _ => None,
    });
    RoutePath {
        gateway,
        oif: h.interface_index,
        weight: u16::from(h.hops) + 1,
    }
}

pub(super) fn neigh(m: &NeighbourMessage) -> Option<NeighMsg> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let mut addr = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) => addr = Some(*d),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
            _ => {}
        }
    }
    Some(NeighMsg {
        ifindex: m.header.ifindex,
        addr: addr?,
        mac,
        state: NudState(u16::from(m.header.state)),
    })
}

/// `struct nhmsg`: family, scope, protocol, reserved, flags (u32).
const NHMSG_LEN: usize = 8;
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
/// `struct nexthop_grp`: id (u32), weight (u8), weight_high (u8), reserved (u16).
const NEXTHOP_GRP_LEN: usize = 8;

/// The outcome of parsing a nexthop message body.
pub(super) enum Nh {
    /// An IPv4 (or family-less group / blackhole) nexthop.
    Msg(NexthopMsg),
    /// Well-formed but not IPv4.
    Foreign,
}

/// Parse the body (after the netlink header) of RTM_NEWNEXTHOP / RTM_DELNEXTHOP. `Err` for
/// anything inconsistent: too short, an attribute overrunning the body, a value of the
/// wrong size, no id.
pub(super) fn nexthop(body: &[u8]) -> Result<Nh, ()> {
    if body.len() < NHMSG_LEN {
        return Err(());
    }
    let family = body[0];
    let mut m = NexthopMsg {
        id: 0,
        gateway: None,
        oif: 0,
        blackhole: false,
        group: Vec::new(),
    };
    let mut has_id = false;
    let mut foreign_gateway = false;
    for nla in NlasIterator::new(&body[NHMSG_LEN..]) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(|_| ())?;
        let v = nla.value();
        match nla.kind() & netlink_packet_core::NLA_TYPE_MASK {
            NHA_ID => {
                m.id = u32::from_ne_bytes(v.try_into().map_err(|_| ())?);
                has_id = true;
            }
            NHA_OIF => m.oif = u32::from_ne_bytes(v.try_into().map_err(|_| ())?),
            NHA_BLACKHOLE => m.blackhole = true,
            NHA_GATEWAY => match <[u8; 4]>::try_from(v) {
                Ok(a) => m.gateway = Some(Ipv4Addr::from(a)),
                Err(_) if v.len() == 16 => foreign_gateway = true,
                Err(_) => return Err(()),
            },
            NHA_GROUP => {
                if v.is_empty() || v.len() % NEXTHOP_GRP_LEN != 0 {
                    return Err(());
                }
                m.group = v
                    .chunks_exact(NEXTHOP_GRP_LEN)
                    .map(|g| {
                        let id = u32::from_ne_bytes([g[0], g[1], g[2], g[3]]);
                        (id, u32::from(u16::from_le_bytes([g[4], g[5]])) + 1)
                    })
                    .collect();
            }
            _ => {}
        }
    }
    if !has_id {
        return Err(());
    }
    // AF_INET6 (10) nexthops, or an IPv6 gateway: not ours. Groups and blackholes are
    // AF_UNSPEC; AF_INET is 2.
    if family == 10 || foreign_gateway {
        return Ok(Nh::Foreign);
    }
    Ok(Nh::Msg(m))
}

/// An RTM_GETNEXTHOP dump request (all families) with sequence number `seq`.
pub fn nexthop_dump_request(seq: u32) -> Vec<u8> {
    let mut b = vec![0u8; super::NLMSG_HDRLEN + NHMSG_LEN];
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&RTM_GETNEXTHOP.to_ne_bytes());
    let flags = netlink_packet_core::NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP;
    b[6..8].copy_from_slice(&flags.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}
