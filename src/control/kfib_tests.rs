//! The kernel's routes resolved prefix by prefix against resolving them all again: the
//! same forwarding after any sequence of changes (a differential test over a random
//! feed), full re-resolution when only it is right, and the bound on unused next hops
//! under a flood of routes through ever new gateways.

use std::net::Ipv4Addr;

use super::*;
use crate::{
    control::kroutes::{ImportSettings, KernelRoutes},
    dataplane::NextHop,
    fib::synth::Rng,
    kernel::{KernelMsg, NexthopMsg, RouteKind, RouteMsg, RoutePath},
};

/// Port 0 is ifindex 3, port 1 ifindex 5 (both usable); ifindex 9 is not xgw's.
fn ports() -> Vec<PortView> {
    vec![(3, true), (5, true)]
}

fn route(net: u32, len: u8, priority: u32, kind: RouteKind, paths: &[(u32, u32)]) -> RouteMsg {
    RouteMsg {
        table: 254,
        dst: Ipv4Addr::from(net),
        len,
        kind,
        protocol: 12,
        priority,
        paths: paths
            .iter()
            .map(|&(gw, oif)| RoutePath {
                gateway: (gw != 0).then(|| Ipv4Addr::from(gw)),
                oif,
                weight: 1,
            })
            .collect(),
        nh_id: None,
    }
}

/// What a value means: a next hop, or a group's members and weights.
#[derive(Debug, PartialEq, Eq)]
enum Meaning {
    One(NextHop),
    Group(Vec<(NextHop, u8)>),
}

fn meaning(n: &NextHops, v: u32) -> Meaning {
    match n.get(v).unwrap() {
        NextHop::Group { id } => {
            let g = n.group(id).unwrap();
            Meaning::Group(
                g.members
                    .iter()
                    .zip(&g.weights)
                    .map(|(&m, &w)| (n.get(m).unwrap(), w))
                    .collect(),
            )
        }
        nh => Meaning::One(nh),
    }
}

/// Every prefix with what it forwards to.
fn forwarding(k: &KernelFib) -> Vec<(Prefix, Meaning)> {
    k.builder()
        .iter()
        .map(|(p, v)| (p, meaning(k.nexthops(), v)))
        .collect()
}

/// `routes` resolved from scratch (a new set never matches real ports: its first sync is
/// a full one).
fn fresh(routes: &mut KernelRoutes, ports: Vec<PortView>) -> KernelFib {
    let mut k = KernelFib::default();
    assert!(k.sync(routes, ports));
    k
}

fn table() -> KernelRoutes {
    KernelRoutes::new(ImportSettings::default())
}

#[test]
fn the_first_sync_resolves_everything_and_the_next_only_what_changed() {
    let mut r = table();
    let t = std::time::Duration::ZERO;
    let gw = u32::from(Ipv4Addr::new(198, 19, 0, 2));
    for i in 0..100u32 {
        r.apply(
            &KernelMsg::Route(route(
                0xcb00_7100 + (i << 8),
                24,
                32,
                RouteKind::Unicast,
                &[(gw, 5)],
            )),
            t,
        );
    }
    let mut k = KernelFib::default();
    assert!(k.sync(&mut r, ports()), "the first sync is a full one");
    assert_eq!((k.len(), k.full_builds, k.prefix_updates), (100, 1, 0));
    // One change: one prefix resolved, not the table.
    r.apply(
        &KernelMsg::RouteDeleted(route(0xcb00_7100, 24, 32, RouteKind::Unicast, &[])),
        t,
    );
    assert!(!k.sync(&mut r, ports()));
    assert_eq!((k.len(), k.full_builds, k.prefix_updates), (99, 1, 1));
    // Nothing changed: nothing resolved.
    assert!(!k.sync(&mut r, ports()));
    assert_eq!(k.prefix_updates, 1);
    // A port going down moves routes the kernel did not tell us about: all again.
    assert!(k.sync(&mut r, vec![(3, true), (5, false)]));
    assert_eq!((k.len(), k.full_builds), (0, 2));
    assert!(k.sync(&mut r, ports()));
    assert_eq!(k.len(), 99);
    // A nexthop object may be used by any route: all again.
    r.apply(
        &KernelMsg::Nexthop(NexthopMsg {
            id: 7,
            gateway: Some(Ipv4Addr::new(198, 19, 0, 3)),
            oif: 5,
            blackhole: false,
            group: Vec::new(),
        }),
        t,
    );
    assert!(k.sync(&mut r, ports()));
}

/// A random feed of adds, replacements, deletes (of known and unknown prefixes, with
/// several metrics), routes through devices that are not xgw's, multipath, blackholes,
/// nexthop objects and groups, and port changes: after each burst the incremental set
/// forwards exactly as one resolved from scratch.
#[test]
fn incremental_equals_from_scratch_over_a_random_feed() {
    let mut rng = Rng::new(0x6b66_6962);
    let mut r = table();
    let mut k = KernelFib::default();
    let t = std::time::Duration::ZERO;
    let gws: Vec<u32> = (1..=6)
        .map(|i| u32::from(Ipv4Addr::new(198, 19, 0, i)))
        .collect();
    let mut port_state = ports();
    for burst in 0..300 {
        for _ in 0..rng.below(40) + 1 {
            // A small space of prefixes, so that adds, replaces and deletes collide.
            let len = [8u8, 16, 24, 24, 32][rng.below(5) as usize];
            let net = (0xc600_0000 | (rng.below(64) << 8)) & (u32::MAX << (32 - len));
            let priority = [0, 32, 100][rng.below(3) as usize];
            let oif = [3, 5, 5, 9][rng.below(4) as usize];
            let gw = gws[rng.below(6) as usize];
            let kind = match rng.below(10) {
                0 => RouteKind::Blackhole,
                1 => RouteKind::Unreachable,
                2 => RouteKind::Local,
                _ => RouteKind::Unicast,
            };
            let paths: Vec<(u32, u32)> = match rng.below(4) {
                0 => vec![(gw, oif), (gws[rng.below(6) as usize], 3)],
                1 => vec![(0, oif)],
                _ => vec![(gw, oif)],
            };
            let mut m = route(net, len, priority, kind, &paths);
            if rng.below(8) == 0 {
                m.nh_id = Some(rng.below(4) + 1);
                m.paths.clear();
            }
            let msg = match rng.below(6) {
                0 | 1 => KernelMsg::RouteDeleted(m),
                _ => KernelMsg::Route(m),
            };
            r.apply(&msg, t);
        }
        match rng.below(20) {
            0 => {
                let id = rng.below(4) + 1;
                r.apply(
                    &KernelMsg::Nexthop(NexthopMsg {
                        id,
                        gateway: Some(Ipv4Addr::from(gws[rng.below(6) as usize])),
                        oif: 5,
                        blackhole: false,
                        group: Vec::new(),
                    }),
                    t,
                );
            }
            1 => {
                r.apply(
                    &KernelMsg::Nexthop(NexthopMsg {
                        id: 4,
                        gateway: None,
                        oif: 0,
                        blackhole: false,
                        group: vec![(1, 0), (2, 1)],
                    }),
                    t,
                );
            }
            2 => {
                let p = rng.below(2) as usize;
                port_state[p].1 = !port_state[p].1;
            }
            _ => {}
        }
        k.sync(&mut r, port_state.clone());
        let mut scratch = r.clone();
        let f = fresh(&mut scratch, port_state.clone());
        assert_eq!(forwarding(&k), forwarding(&f), "after burst {burst}");
    }
    assert!(k.prefix_updates > 1000, "mostly incremental: {k:?}");
}

/// A flood of routes through ever new gateways, each replaced by the next: the next hops
/// no longer used are dropped by a full resolution before they exceed the bound.
#[test]
fn unused_next_hops_stay_bounded_under_a_flood_of_new_gateways() {
    let mut r = table();
    let mut k = KernelFib::default();
    let t = std::time::Duration::ZERO;
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    for i in 0..20_000u32 {
        // One prefix, re-pointed at a new gateway each time (within 198.18.0.0/15).
        r.apply(
            &KernelMsg::Route(route(
                0xcb00_7100,
                24,
                32,
                RouteKind::Unicast,
                &[(base + (i % 131_072), 5)],
            )),
            t,
        );
        k.sync(&mut r, ports());
        assert!(k.unused() <= MAX_UNUSED + 1, "{} unused", k.unused());
        assert!(k.nexthops().len() <= MAX_UNUSED + 2);
        assert_eq!(k.len(), 1);
    }
    assert!(k.full_builds >= 19, "{k:?}");
}

/// Next hops used only as members of ECMP groups count as used: a table of many groups
/// over many gateways is not resolved again in full on every change.
#[test]
fn group_members_count_as_used() {
    let mut r = table();
    let t = std::time::Duration::ZERO;
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    for i in 0..1500u32 {
        r.apply(
            &KernelMsg::Route(route(
                0xcb00_0000 + (i << 8),
                24,
                32,
                RouteKind::Unicast,
                &[(base + 2 * i, 5), (base + 2 * i + 1, 3)],
            )),
            t,
        );
    }
    let mut k = KernelFib::default();
    assert!(k.sync(&mut r, ports()));
    assert_eq!(k.unused(), 0, "every member is some group's");
    r.apply(
        &KernelMsg::RouteDeleted(route(0xcb00_0000, 24, 32, RouteKind::Unicast, &[])),
        t,
    );
    assert!(!k.sync(&mut r, ports()), "one change, not a full resolve");
    // The deleted route's group and its two members are unused now.
    assert_eq!(k.unused(), 3);
    assert_eq!(k.len(), 1499);
}
