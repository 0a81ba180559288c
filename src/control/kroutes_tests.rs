//! The kernel route import against a fake feed: dumps, events, metrics, nexthop objects,
//! coalescing, resync, bounds.

use std::{net::Ipv4Addr, time::Duration};

use super::*;
use crate::kernel::{self, KernelMsg};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn rt(dst: &str, len: u8, priority: u32, paths: &[(Option<&str>, u32, u16)]) -> RouteMsg {
    RouteMsg {
        table: 254,
        dst: a(dst),
        len,
        kind: RouteKind::Unicast,
        protocol: 12,
        priority,
        paths: paths
            .iter()
            .map(|&(g, oif, weight)| RoutePath {
                gateway: g.map(a),
                oif,
                weight,
            })
            .collect(),
        nh_id: None,
    }
}

/// ifindex 3 is port 0, 5 is port 1; anything else is not xgw's.
fn port_of(ifindex: u32) -> Option<usize> {
    match ifindex {
        3 => Some(0),
        5 => Some(1),
        _ => None,
    }
}

fn via(prefix: &str, gw: &str, interface: usize, weight: u8) -> Route {
    Route {
        prefix: prefix.parse().unwrap(),
        target: RouteTarget::Via {
            gateway: a(gw),
            interface,
        },
        weight,
    }
}

fn fast() -> KernelRoutes {
    KernelRoutes::new(ImportSettings {
        coalesce: ms(20),
        ..ImportSettings::default()
    })
}

#[test]
fn the_lowest_metric_wins_and_its_withdrawal_uncovers_the_next() {
    let mut k = fast();
    let worse = rt("203.0.113.0", 24, 200, &[(Some("198.19.0.2"), 3, 1)]);
    let better = rt("203.0.113.0", 24, 10, &[(Some("192.0.2.2"), 5, 1)]);
    k.apply(&KernelMsg::Route(worse.clone()), ms(0));
    k.apply(&KernelMsg::Route(better.clone()), ms(0));
    assert_eq!(
        k.resolve(port_of),
        vec![via("203.0.113.0/24", "192.0.2.2", 1, 1)]
    );
    k.apply(&KernelMsg::RouteDeleted(better), ms(1));
    assert_eq!(
        k.resolve(port_of),
        vec![via("203.0.113.0/24", "198.19.0.2", 0, 1)]
    );
    k.apply(&KernelMsg::RouteDeleted(worse), ms(2));
    assert!(k.resolve(port_of).is_empty());
    assert!(k.is_empty());
    // Replacing a route of the same metric replaces it.
    k.apply(
        &KernelMsg::Route(rt("198.51.100.0", 24, 0, &[(Some("198.19.0.2"), 3, 1)])),
        ms(3),
    );
    k.apply(
        &KernelMsg::Route(rt("198.51.100.0", 24, 0, &[(Some("198.19.0.3"), 3, 1)])),
        ms(3),
    );
    assert_eq!(
        k.resolve(port_of),
        vec![via("198.51.100.0/24", "198.19.0.3", 0, 1)]
    );
}

#[test]
fn captured_kernel_routes_import_with_their_types_and_weights() {
    let mut k = fast();
    for f in [
        "route_connected_and_local",
        "route_via",
        "route_multipath",
        "route_blackhole",
        "route_unreachable",
        "route_prohibit",
        "route_other_table",
    ] {
        let hex = std::fs::read_to_string(format!(
            "{}/src/kernel/testdata/{f}.hex",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let bytes: Vec<u8> = (0..hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut msgs = Vec::new();
        kernel::decode(&bytes, &mut msgs);
        for m in &msgs {
            k.apply(m, ms(0));
        }
    }
    let one = |p: &str, target| Route {
        prefix: p.parse().unwrap(),
        target,
        weight: 1,
    };
    // Sorted by prefix; local and broadcast routes (table 255) and table 100 left out.
    assert_eq!(
        k.resolve(port_of),
        vec![
            one("198.18.32.0/19", RouteTarget::Prohibit),
            one("198.18.64.0/18", RouteTarget::Unreachable),
            one("198.18.128.0/17", RouteTarget::Blackhole),
            one("198.19.0.0/24", RouteTarget::Dev { interface: 0 }),
            via("198.51.100.0/24", "198.19.0.2", 0, 1),
            via("198.51.100.0/24", "192.0.2.2", 1, 3),
            via("203.0.113.0/24", "198.19.0.2", 0, 1),
        ]
    );
}

#[test]
fn routes_through_nexthop_objects_follow_the_objects() {
    let mut k = fast();
    let nh = |id, gw: Option<&str>, oif, group: Vec<(u32, u32)>| {
        KernelMsg::Nexthop(NexthopMsg {
            id,
            gateway: gw.map(a),
            oif,
            blackhole: false,
            group,
        })
    };
    k.apply(&nh(10, Some("198.19.0.2"), 3, vec![]), ms(0));
    k.apply(&nh(11, Some("192.0.2.2"), 5, vec![]), ms(0));
    k.apply(&nh(20, None, 0, vec![(10, 1), (11, 2)]), ms(0));
    // The route as the kernel sends it: the id, and its expansion at that time.
    let mut r = rt(
        "203.0.113.0",
        24,
        0,
        &[(Some("198.19.0.2"), 3, 1), (Some("192.0.2.2"), 5, 2)],
    );
    r.nh_id = Some(20);
    k.apply(&KernelMsg::Route(r), ms(0));
    assert_eq!(
        k.resolve(port_of),
        vec![
            via("203.0.113.0/24", "198.19.0.2", 0, 1),
            via("203.0.113.0/24", "192.0.2.2", 1, 2)
        ]
    );
    // FRR replaces the group (no route message follows): the route follows the object.
    k.apply(&nh(20, None, 0, vec![(11, 5)]), ms(1));
    assert_eq!(
        k.resolve(port_of),
        vec![via("203.0.113.0/24", "192.0.2.2", 1, 5)]
    );
    // A member's gateway changes.
    k.apply(&nh(11, Some("192.0.2.9"), 5, vec![]), ms(2));
    assert_eq!(
        k.resolve(port_of),
        vec![via("203.0.113.0/24", "192.0.2.9", 1, 5)]
    );
    // A blackhole object makes a blackhole route.
    k.apply(
        &KernelMsg::Nexthop(NexthopMsg {
            id: 30,
            gateway: None,
            oif: 0,
            blackhole: true,
            group: vec![],
        }),
        ms(3),
    );
    let mut b = rt("198.51.100.0", 24, 0, &[]);
    b.nh_id = Some(30);
    k.apply(&KernelMsg::Route(b), ms(3));
    assert_eq!(k.resolve(port_of)[0].target, RouteTarget::Blackhole);
    // Deleting the group deletes the routes using it, as the kernel does.
    k.apply(&KernelMsg::NexthopDeleted { id: 20 }, ms(4));
    assert_eq!(k.len(), 1);
    // An unknown object: the route has no usable path and is not imported.
    let mut u = rt("192.0.2.128", 25, 0, &[]);
    u.nh_id = Some(99);
    k.apply(&KernelMsg::Route(u), ms(5));
    assert_eq!(k.resolve(port_of).len(), 1);
}

#[test]
fn paths_through_foreign_devices_are_left_out() {
    let mut k = fast();
    k.apply(
        &KernelMsg::Route(rt(
            "203.0.113.0",
            24,
            0,
            &[(Some("198.19.0.2"), 3, 1), (Some("198.18.9.9"), 77, 1)],
        )),
        ms(0),
    );
    k.apply(
        &KernelMsg::Route(rt("198.51.100.0", 24, 0, &[(Some("198.18.9.9"), 77, 1)])),
        ms(0),
    );
    assert_eq!(
        k.resolve(port_of),
        vec![via("203.0.113.0/24", "198.19.0.2", 0, 1)]
    );
}

#[test]
fn a_burst_of_changes_is_one_fib_due_after_the_coalescing_delay() {
    let mut k = fast();
    assert!(!k.due(ms(0)) && k.due_in(ms(0)).is_none());
    // 10 000 changes over 10 ms.
    for i in 0..10_000u32 {
        let dst = Ipv4Addr::from(0xcb00_7100 + (i % 256)); // 203.0.113.x/32
        k.apply(
            &KernelMsg::Route(rt(
                &dst.to_string(),
                32,
                i / 256,
                &[(Some("198.19.0.2"), 3, 1)],
            )),
            ms(u64::from(i / 1000)),
        );
    }
    assert!(!k.due(ms(10)), "not before 20 ms after the first change");
    assert_eq!(k.due_in(ms(10)), Some(ms(10)));
    assert!(k.due(ms(20)));
    k.published();
    assert!(!k.due(ms(1000)), "nothing pending once published");
    assert_eq!(k.len(), 256);
    assert_eq!(k.stats.applied, 10_000);
    // Messages that change nothing do not make a FIB due.
    let mut other = rt("192.0.2.0", 24, 0, &[]);
    other.table = 100;
    k.apply(&KernelMsg::Route(other), ms(1000));
    k.apply(
        &KernelMsg::RouteDeleted(rt("192.0.2.0", 24, 0, &[])),
        ms(1000),
    );
    assert!(!k.due(ms(2000)));
}

#[test]
fn a_resync_dump_replaces_the_table_only_when_complete() {
    let mut k = fast();
    let r1 = rt("203.0.113.0", 24, 0, &[(Some("198.19.0.2"), 3, 1)]);
    let r2 = rt("198.51.100.0", 24, 0, &[(Some("192.0.2.2"), 5, 1)]);
    k.apply(&KernelMsg::Route(r1.clone()), ms(0));
    k.apply(&KernelMsg::Route(r2), ms(0));
    k.published();
    // Events were lost: dump again. Only r1 and a new route are listed.
    k.begin_dump(7);
    k.apply(&KernelMsg::Route(r1), ms(100));
    let r3 = rt("192.0.2.128", 25, 0, &[(Some("192.0.2.2"), 5, 1)]);
    k.apply(&KernelMsg::Route(r3), ms(100));
    assert!(!k.due(ms(500)), "a dump in progress is never published");
    assert_eq!(
        k.resolve(port_of).len(),
        2,
        "the old table is used meanwhile"
    );
    // Another request's end does not end this dump.
    k.apply(&KernelMsg::DumpDone { seq: 6 }, ms(101));
    assert!(k.dumping());
    k.apply(&KernelMsg::DumpDone { seq: 7 }, ms(101));
    assert!(!k.dumping());
    assert!(k.due(ms(121)));
    let got: Vec<String> = k
        .resolve(port_of)
        .iter()
        .map(|r| r.prefix.to_string())
        .collect();
    assert_eq!(
        got,
        vec!["192.0.2.128/25", "203.0.113.0/24"],
        "r2 was not listed: gone"
    );
    assert_eq!(k.stats.dumps, 1);

    // An error ends a dump without applying it.
    k.published();
    k.begin_dump(8);
    k.apply(&KernelMsg::Error { errno: 16, seq: 8 }, ms(200));
    assert!(!k.dumping());
    assert_eq!(k.len(), 2);
    assert!(!k.due(ms(500)));
    // A dump started over another abandons the first.
    k.begin_dump(9);
    k.begin_dump(10);
    assert_eq!(k.stats.dumps_abandoned, 2);
}

#[test]
fn a_flood_of_prefixes_stops_at_the_bound_without_evicting() {
    let mut k = KernelRoutes::new(ImportSettings {
        max_routes: 100,
        ..ImportSettings::default()
    });
    for i in 0..1000u32 {
        let dst = Ipv4Addr::from(0xc612_0000 + (i << 8)); // 198.18.x.0/24 and on
        k.apply(
            &KernelMsg::Route(rt(&dst.to_string(), 24, 0, &[(Some("198.19.0.2"), 3, 1)])),
            ms(0),
        );
    }
    assert_eq!(k.len(), 100);
    assert_eq!(k.stats.refused_full, 900);
    // Those held can still change and go; a freed slot takes a new prefix.
    let first = rt("198.18.0.0", 24, 0, &[(Some("198.19.0.2"), 3, 1)]);
    k.apply(&KernelMsg::Route(first.clone()), ms(1));
    assert_eq!(k.stats.refused_full, 900);
    k.apply(&KernelMsg::RouteDeleted(first), ms(1));
    k.apply(
        &KernelMsg::Route(rt("203.0.113.0", 24, 0, &[(Some("198.19.0.2"), 3, 1)])),
        ms(1),
    );
    assert_eq!(k.len(), 100);
    assert_eq!(k.stats.refused_full, 900);
}

#[test]
fn odd_messages_never_panic_or_corrupt() {
    let mut k = fast();
    // Host bits set, a /0, an over-long length from a hostile feed, a gateway-less
    // multipath, a weight of 256.
    k.apply(
        &KernelMsg::Route(rt("203.0.113.77", 24, 0, &[(Some("198.19.0.2"), 3, 1)])),
        ms(0),
    );
    k.apply(
        &KernelMsg::Route(rt("0.0.0.0", 0, 0, &[(Some("198.19.0.2"), 3, 256)])),
        ms(0),
    );
    let mut long = rt("198.51.100.1", 40, 0, &[(None, 3, 1), (None, 5, 1)]);
    long.len = 40;
    k.apply(&KernelMsg::Route(long), ms(0));
    let got = k.resolve(port_of);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].prefix.to_string(), "0.0.0.0/0");
    assert_eq!(got[0].weight, 255);
    assert_eq!(got[1].prefix.to_string(), "198.51.100.1/32");
    assert_eq!(got[1].target, RouteTarget::Dev { interface: 0 });
    assert_eq!(got[2].prefix.to_string(), "203.0.113.0/24");
}

#[test]
fn a_hold_off_after_a_slow_build_delays_the_next_one() {
    let mut k = fast();
    k.apply(
        &KernelMsg::Route(rt("203.0.113.0", 24, 0, &[(None, 5, 1)])),
        ms(0),
    );
    assert!(k.due(ms(20)));
    k.published();
    // The build took 100 ms: nothing is due for 500 ms after it began.
    k.hold_off(ms(520));
    k.apply(
        &KernelMsg::Route(rt("198.51.100.0", 24, 0, &[(None, 5, 1)])),
        ms(30),
    );
    assert!(!k.due(ms(50)), "coalesced, but held off");
    assert_eq!(k.due_in(ms(50)), Some(ms(470)));
    assert!(!k.due(ms(519)));
    assert!(k.due(ms(520)));
}
