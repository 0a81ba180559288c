//! Kernel mirror mode through the whole router over memory I/O (sans-I/O: the kernel's
//! messages are fed as the netlink reader would queue them): routes imported after the
//! coalescing delay with the file's routes on top, a dump staged until complete,
//! neighbours mirrored and resolved by asking the kernel, host addresses, and the bounds
//! under floods of kernel messages and of unresolved destinations.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::{net::Ipv4Addr, time::Duration};

use common::*;

use xgw::{
    control::{mirror::MAX_SOLICITS, ControlEvent},
    dataplane::NextHop,
    kernel::{AddrMsg, DumpKind, KernelMsg, NeighMsg, NudState, RouteKind, RouteMsg, RoutePath},
    runtime::testbed::{port_ifindex, Testbed},
    wire::{ethernet::MacAddr, icmpv4::Message},
};

const CFG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "192.0.2.0/24"
via = "198.19.0.3"
[kernel]
mirror = true
max_routes = 1000
"#;

fn route(prefix: &str, kind: RouteKind, paths: &[(&str, usize)]) -> RouteMsg {
    let (dst, len) = prefix.split_once('/').unwrap();
    RouteMsg {
        table: 254,
        dst: dst.parse().unwrap(),
        len: len.parse().unwrap(),
        kind,
        protocol: 12,
        priority: 32,
        paths: paths
            .iter()
            .map(|&(gw, port)| RoutePath {
                gateway: Some(gw.parse().unwrap()),
                oif: port_ifindex(port),
                weight: 1,
            })
            .collect(),
        nh_id: None,
    }
}

fn neigh(addr: Ipv4Addr, port: usize, mac: MacAddr, state: u16) -> KernelMsg {
    KernelMsg::Neigh(NeighMsg {
        ifindex: port_ifindex(port),
        addr,
        mac: Some(mac.0),
        state: NudState(state),
    })
}

/// The kernel's route to the remote prefix 203.0.113.0/24 through server 198.19.0.2.
fn remote_route() -> KernelMsg {
    KernelMsg::Route(route(
        "203.0.113.0/24",
        RouteKind::Unicast,
        &[("198.19.0.2", 1)],
    ))
}

/// The coalescing delay (20 ms by default) and a little.
fn settle(t: &mut Testbed) {
    t.advance(Duration::from_millis(25));
}

/// A mirror-mode router that knows the client (the kernel resolved it).
fn bed_mirror(cfg: &str) -> Testbed {
    let mut t = Testbed::new(cfg);
    t.kernel(&neigh(client(), 0, CLIENT_MAC, NudState::REACHABLE));
    t
}

fn via_of(t: &Testbed, dst: &str) -> Option<NextHop> {
    t.control().routes().get(ip(dst)).map(|r| r.nexthop)
}

#[test]
fn routes_come_from_the_kernel_after_the_coalescing_delay_under_the_files() {
    let mut t = bed_mirror(CFG);
    t.kernel(&remote_route());
    // The file has 192.0.2.0/24: the kernel's route of that prefix is not taken.
    t.kernel(&KernelMsg::Route(route(
        "192.0.2.0/24",
        RouteKind::Unicast,
        &[("198.19.0.9", 1)],
    )));
    assert_eq!(
        via_of(&t, "203.0.113.7"),
        None,
        "not before the burst settles"
    );
    settle(&mut t);
    assert_eq!(
        via_of(&t, "203.0.113.7"),
        Some(NextHop::Via {
            gateway: ip("198.19.0.2"),
            port: 1
        })
    );
    assert_eq!(
        via_of(&t, "192.0.2.1"),
        Some(NextHop::Via {
            gateway: ip("198.19.0.3"),
            port: 1
        }),
        "the configuration's [[route]] stays on top"
    );
    assert_eq!(t.control().counters.get(ControlEvent::KernelFibBuilt), 1);
    // Withdrawn: gone after the next settle (and the file's route is untouched).
    t.kernel(&KernelMsg::RouteDeleted(route(
        "203.0.113.0/24",
        RouteKind::Unicast,
        &[("198.19.0.2", 1)],
    )));
    settle(&mut t);
    assert_eq!(via_of(&t, "203.0.113.7"), None);
    assert!(via_of(&t, "192.0.2.1").is_some());
}

#[test]
fn a_burst_of_changes_is_one_fib_build() {
    let mut t = bed_mirror(CFG);
    for i in 0..500u32 {
        let a = Ipv4Addr::from(u32::from(ip("198.51.100.0")) & 0xffff_ff00 | (i % 256));
        let p = format!("{}/32", a);
        let kind = if i % 2 == 0 {
            RouteKind::Blackhole
        } else {
            RouteKind::Unicast
        };
        t.kernel(&KernelMsg::Route(route(&p, kind, &[("198.19.0.2", 1)])));
    }
    settle(&mut t);
    assert_eq!(t.control().counters.get(ControlEvent::KernelFibBuilt), 1);
}

#[test]
fn a_dump_replaces_the_table_only_when_complete() {
    let mut t = bed_mirror(CFG);
    t.kernel(&remote_route());
    settle(&mut t);
    // A resync: until the dump's end the old table forwards.
    t.kernel(&KernelMsg::Resync);
    t.kernel(&KernelMsg::DumpStart {
        seq: 9,
        kind: DumpKind::Routes,
    });
    t.kernel(&KernelMsg::Route(route(
        "198.51.100.0/24",
        RouteKind::Unicast,
        &[("198.19.0.2", 1)],
    )));
    settle(&mut t);
    assert!(
        via_of(&t, "203.0.113.7").is_some(),
        "old table until the dump ends"
    );
    assert_eq!(via_of(&t, "198.51.100.1"), None);
    t.kernel(&KernelMsg::DumpDone { seq: 9 });
    settle(&mut t);
    assert_eq!(via_of(&t, "203.0.113.7"), None, "not in the dump: gone");
    assert!(via_of(&t, "198.51.100.1").is_some());
}

#[test]
fn prohibit_routes_answer_admin_prohibited() {
    let mut t = bed_mirror(CFG);
    t.kernel(&KernelMsg::Route(route(
        "203.0.113.0/24",
        RouteKind::Prohibit,
        &[],
    )));
    settle(&mut t);
    t.push(0, &Ip::udp(client(), ip("203.0.113.7"), 10).client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    let i = icmp_of(&p);
    assert_eq!((i.msg_type(), i.msg_code()), (Message::DstUnreachable, 13));
    assert_eq!(
        p.src_addr(),
        ip("198.18.0.1"),
        "from the ingress port's address"
    );
}

#[test]
fn misses_are_resolved_by_the_kernel_not_by_arp() {
    let mut t = bed_mirror(CFG);
    t.kernel(&remote_route());
    settle(&mut t);
    t.push(0, &Ip::udp(client(), ip("203.0.113.7"), 10).client_frame());
    t.step();
    assert!(
        t.take_tx(1).is_empty(),
        "no ARP request from xgw: the kernel is the ARP speaker"
    );
    assert_eq!(
        t.ctl.plane.take_solicits(),
        vec![(port_ifindex(1), ip("198.19.0.2"))]
    );
    // What the kernel does not have yet (incomplete), or failed, teaches nothing.
    t.kernel(&KernelMsg::Neigh(NeighMsg {
        ifindex: port_ifindex(1),
        addr: ip("198.19.0.2"),
        mac: None,
        state: NudState(NudState::INCOMPLETE),
    }));
    t.kernel(&neigh(ip("198.19.0.2"), 1, SERVER_MAC, NudState::FAILED));
    assert!(t.take_tx(1).is_empty());
    // A neighbour on a device that is not a port is none of xgw's business.
    t.kernel(&KernelMsg::Neigh(NeighMsg {
        ifindex: 7,
        addr: ip("198.19.0.2"),
        mac: Some(SERVER_MAC.0),
        state: NudState(NudState::REACHABLE),
    }));
    assert!(t.take_tx(1).is_empty());
    // The kernel resolved it: the held packet goes out to its MAC.
    t.kernel(&neigh(ip("198.19.0.2"), 1, SERVER_MAC, NudState::REACHABLE));
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 1, "the held packet is released");
    assert_eq!(
        xgw::wire::ethernet::Frame::new_checked(&tx[0][..])
            .unwrap()
            .dst_addr(),
        SERVER_MAC
    );
    assert_eq!(l3(&tx[0]).dst_addr(), ip("203.0.113.7"));
    // And the fast path forwards the next one itself.
    t.push(0, &Ip::udp(client(), ip("203.0.113.8"), 10).client_frame());
    t.step();
    assert_eq!(t.take_tx(1).len(), 1);
    assert!(t.ctl.plane.take_solicits().is_empty());
}

#[test]
fn a_flood_of_unresolved_destinations_asks_the_kernel_a_bounded_number_of_times() {
    // An on-link /16: every destination is its own neighbour to resolve.
    let cfg = CFG.replace("198.19.0.1/24", "198.19.0.1/16");
    let mut t = bed_mirror(&cfg);
    // Rounds of 20k new destinations, a second apart, while the runtime does not drain
    // the requests (a stalled netlink socket): the punt policer passes some of each round,
    // and the queue to the kernel stops at its bound.
    for round in 0..5u32 {
        let frames: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| {
                let dst = Ipv4Addr::from(u32::from(ip("198.19.0.0")) + 256 + round * 20_000 + i);
                Ip::udp(client(), dst, 10).client_frame()
            })
            .collect();
        t.flood(0, frames);
        t.advance(Duration::from_secs(1));
    }
    let asked = t.ctl.plane.take_solicits().len();
    assert_eq!(asked, MAX_SOLICITS, "the queue to the kernel is bounded");
    let c = &t.control().counters;
    assert_eq!(
        c.get(ControlEvent::NeighKernelSolicits),
        MAX_SOLICITS as u64,
        "{:?}",
        c.nonzero()
    );
    assert!(
        c.get(ControlEvent::NeighSolicitDropped) > 0,
        "{:?}",
        c.nonzero()
    );
    assert!(t.control().neighbors().len() <= t.control().config().neighbor.max_entries);
    // Drained, it takes requests again.
    t.push(0, &Ip::udp(client(), ip("198.19.255.1"), 10).client_frame());
    t.step();
    assert_eq!(t.ctl.plane.take_solicits().len(), 1);
}

#[test]
fn a_flood_of_kernel_neighbours_is_bounded_by_the_table() {
    let cfg = CFG.replace("198.19.0.1/24", "198.19.0.1/16") + "[neighbor]\nmax_entries = 256\n";
    let mut t = bed_mirror(&cfg);
    for i in 0..10_000u32 {
        let a = Ipv4Addr::from(u32::from(ip("198.19.1.0")) + i);
        let mac = MacAddr([0x02, 0x77, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        t.ctl.plane.link_message(&neigh(a, 1, mac, NudState::STALE));
        t.ctl
            .plane
            .kernel_message(t.now, &neigh(a, 1, mac, NudState::STALE));
    }
    t.step();
    assert!(
        t.control().neighbors().len() <= 256,
        "{}",
        t.control().neighbors().len()
    );
    // A kernel entry with a multicast or zero MAC is never learned.
    let before = t.control().neighbors().len();
    t.kernel(&neigh(
        ip("198.19.0.77"),
        1,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        NudState::REACHABLE,
    ));
    t.kernel(&neigh(
        ip("198.19.0.78"),
        1,
        MacAddr::ZERO,
        NudState::REACHABLE,
    ));
    assert_eq!(t.control().neighbors().len(), before);
}

#[test]
fn kernel_routes_beyond_max_routes_are_refused_and_counted() {
    let mut t = bed_mirror(CFG);
    for i in 0..3000u32 {
        let a = Ipv4Addr::from(u32::from(ip("198.51.0.0")) + (i << 8));
        let p = format!("{a}/24");
        t.ctl.plane.kernel_message(
            t.now,
            &KernelMsg::Route(route(&p, RouteKind::Unicast, &[("198.19.0.2", 1)])),
        );
    }
    settle(&mut t);
    let m = t.control().mirror().expect("mirror mode");
    assert_eq!(m.kernel_routes().len(), 1000);
    assert_eq!(m.kernel_routes().stats.refused_full, 2000);
    assert_eq!(m.kernel_fib().len(), 1000);
}

#[test]
fn host_addresses_follow_the_kernel_but_the_nat_pool_stays_xgws() {
    let cfg = format!("{CFG}[nat]\noutside = \"r1\"\naddresses = [\"198.19.0.10\"]\n");
    let mut t = bed_mirror(&cfg);
    let m = t.control().mirror().unwrap();
    assert_eq!(m.host_addresses(), vec![ip("198.18.0.1"), ip("198.19.0.1")]);
    let add = |a: &str, ifx, len| AddrMsg {
        ifindex: ifx,
        addr: ip(a),
        len,
    };
    // A loopback address (BGP's router id) and the pool address both appear in the kernel.
    t.kernel(&KernelMsg::Addr(add("192.0.2.254", 1, 32)));
    t.kernel(&KernelMsg::Addr(add("198.19.0.10", port_ifindex(1), 32)));
    assert_eq!(
        t.ctl.plane.take_host_changes(),
        vec![(ip("192.0.2.254"), true)]
    );
    t.kernel(&KernelMsg::AddrDeleted(add("192.0.2.254", 1, 32)));
    assert_eq!(
        t.ctl.plane.take_host_changes(),
        vec![(ip("192.0.2.254"), false)]
    );
    // A port's own address changing is counted (and the port takes it: see below).
    t.kernel(&KernelMsg::Addr(add("198.18.0.9", port_ifindex(0), 24)));
    assert_eq!(
        t.control().counters.get(ControlEvent::KernelAddressChanged),
        1
    );
    assert_eq!(
        t.ctl.plane.take_host_changes(),
        vec![(ip("198.18.0.9"), true)]
    );
    // A dump that no longer lists an address removes it.
    t.kernel(&KernelMsg::DumpStart {
        seq: 4,
        kind: DumpKind::Addresses,
    });
    t.kernel(&KernelMsg::Addr(add("198.18.0.1", port_ifindex(0), 24)));
    // Its prefix length changed: still a host address throughout.
    t.kernel(&KernelMsg::Addr(add("198.19.0.1", port_ifindex(1), 25)));
    t.kernel(&KernelMsg::Addr(add("198.19.0.10", port_ifindex(1), 32)));
    t.kernel(&KernelMsg::DumpDone { seq: 4 });
    assert_eq!(
        t.ctl.plane.take_host_changes(),
        vec![(ip("198.18.0.9"), false)]
    );
}

#[test]
fn a_port_takes_the_kernels_addresses_as_they_change() {
    let mut t = bed_mirror(CFG);
    let add = |a: &str, port, len| AddrMsg {
        ifindex: port_ifindex(port),
        addr: ip(a),
        len,
    };
    let addrs = |t: &Testbed, p: usize| -> Vec<String> {
        t.control().ports()[p]
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    // A secondary address: local at once, and its subnet is connected.
    t.kernel(&KernelMsg::Addr(add("198.18.0.9", 0, 24)));
    t.kernel(&KernelMsg::Addr(add("198.51.100.1", 1, 24)));
    assert_eq!(addrs(&t, 0), ["198.18.0.1/24", "198.18.0.9/24"]);
    assert!(t.control().routes().is_local(ip("198.18.0.9")));
    assert_eq!(
        via_of(&t, "198.51.100.7"),
        Some(NextHop::Connected { port: 1 })
    );
    assert!(t
        .control()
        .routes()
        .is_subnet_broadcast(ip("198.51.100.255")));
    // The same address again changes nothing.
    t.kernel(&KernelMsg::Addr(add("198.18.0.9", 0, 24)));
    assert_eq!(addrs(&t, 0), ["198.18.0.1/24", "198.18.0.9/24"]);
    // The primary goes: the secondary sources the port's ICMP errors now.
    t.kernel(&KernelMsg::AddrDeleted(add("198.18.0.1", 0, 24)));
    assert_eq!(addrs(&t, 0), ["198.18.0.9/24"]);
    assert!(!t.control().routes().is_local(ip("198.18.0.1")));
    let pkt = Ip::udp(client(), ip("192.0.2.7"), 100).ttl(1);
    t.push(0, &pkt.client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1, "one time exceeded");
    let p = l3(&tx[0]);
    assert_eq!(p.src_addr(), ip("198.18.0.9"));
    assert_eq!(icmp_of(&p).msg_type(), Message::TimeExceeded);
    // An address of a device that is not xgw's, or of the NAT pool, is no port's.
    t.kernel(&KernelMsg::Addr(AddrMsg {
        ifindex: 99,
        addr: ip("192.0.2.77"),
        len: 24,
    }));
    assert_eq!(addrs(&t, 1), ["198.19.0.1/24", "198.51.100.1/24"]);
    assert!(!t.control().routes().is_local(ip("192.0.2.77")));
}

#[test]
fn a_reload_keeps_the_addresses_the_ports_took_from_the_kernel() {
    let mut t = bed_mirror(CFG);
    t.kernel(&KernelMsg::Addr(AddrMsg {
        ifindex: port_ifindex(0),
        addr: ip("198.18.0.9"),
        len: 24,
    }));
    // The file as read again: its ports' addresses are the kernel's (checked on reading),
    // here the ones it started with.
    let cfg = xgw::config::parse(CFG, "m.toml").unwrap();
    t.control_mut()
        .reload(&cfg)
        .expect("not an interface change");
    let addrs: Vec<String> = t.control().config().interfaces[0]
        .addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(addrs, ["198.18.0.1/24", "198.18.0.9/24"]);
    assert!(t.control().routes().is_local(ip("198.18.0.9")));
    // Another change to an interface is still refused.
    let renamed = CFG.replacen("\"r1\"", "\"r9\"", 1);
    let cfg = xgw::config::parse(&renamed, "m.toml").unwrap();
    assert!(t.control_mut().reload(&cfg).is_err());
}

#[test]
fn a_recreated_port_takes_the_addresses_its_new_device_got_while_it_was_gone() {
    use xgw::kernel::LinkMsg;
    let mut t = bed_mirror(CFG);
    let old = port_ifindex(1);
    let addr = |ifindex, a: &str| AddrMsg {
        ifindex,
        addr: ip(a),
        len: 24,
    };
    t.kernel(&KernelMsg::LinkDeleted {
        ifindex: old,
        name: "r1".into(),
    });
    t.kernel(&KernelMsg::AddrDeleted(addr(old, "198.19.0.1")));
    // The new r1 and its address arrive in one batch, before the port is attached.
    let now = t.now;
    let p = t.control_mut();
    for m in [
        KernelMsg::Link(LinkMsg {
            ifindex: 88,
            name: "r1".into(),
            admin_up: true,
            oper_up: true,
            mtu: 1500,
        }),
        KernelMsg::Addr(addr(88, "198.19.7.1")),
    ] {
        p.link_message(&m);
        p.kernel_message(now, &m);
    }
    t.step();
    assert_eq!(
        t.control().counters.get(ControlEvent::LinkReattached),
        1,
        "attached"
    );
    let addrs: Vec<String> = t.control().ports()[1]
        .addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(addrs, ["198.19.7.1/24"]);
    assert!(t.control().routes().is_local(ip("198.19.7.1")));
    assert_eq!(
        via_of(&t, "198.19.7.9"),
        Some(NextHop::Connected { port: 1 })
    );
}
