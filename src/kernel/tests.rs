//! Decoding captured rtnetlink bytes. The fixtures in `testdata/` were recorded from this
//! kernel (6.18) with a `RTMGRP_LINK` socket in a scratch namespace while a veth pair (p0,
//! ifindex 3; p1, ifindex 2) was brought up, given MTU 1400, brought down and deleted.

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/src/kernel/testdata/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    hex(&std::fs::read_to_string(p).unwrap())
}

fn one(buf: &[u8]) -> KernelMsg {
    let mut out = Vec::new();
    let st = decode(buf, &mut out);
    assert_eq!(
        st,
        DecodeStats {
            decoded: 1,
            ..Default::default()
        }
    );
    out.pop().unwrap()
}

fn link(ifindex: u32, name: &str, admin_up: bool, oper_up: bool, mtu: u32) -> KernelMsg {
    KernelMsg::Link(LinkMsg {
        ifindex,
        name: name.into(),
        admin_up,
        oper_up,
        mtu,
    })
}

#[test]
fn link_states_from_captured_messages() {
    // `ip link set p1 up` while p0 is down: IFF_UP, no carrier (IFF_LOWER_UP clear).
    assert_eq!(
        one(&fixture("link_p1_up_lowerdown")),
        link(2, "p1", true, false, 1500)
    );
    // Both ends up: the carrier on.
    let up = one(&fixture("link_p1_oper_up"));
    assert_eq!(up, link(2, "p1", true, true, 1500));
    assert!(matches!(up, KernelMsg::Link(ref l) if l.is_up()));
    // `ip link set p0 mtu 1400`.
    assert_eq!(
        one(&fixture("link_p0_mtu1400")),
        link(3, "p0", true, true, 1400)
    );
    // `ip link set p1 down`.
    let down = one(&fixture("link_p1_admin_down"));
    assert_eq!(down, link(2, "p1", false, false, 1500));
    // `ip link del p0`.
    assert_eq!(
        one(&fixture("dellink_p0")),
        KernelMsg::LinkDeleted {
            ifindex: 3,
            name: "p0".into()
        }
    );
}

#[test]
fn the_carrier_counts_not_the_late_operstate() {
    // Captured right after `ip link set p0 up` with p1 up: IFF_LOWER_UP is set while
    // IFLA_OPERSTATE still says LOWERLAYERDOWN (linkwatch has not run yet). Up.
    let buf = hex(&std::fs::read_to_string(format!(
        "{}/src/kernel/testdata/link_p0_carrier_before_operstate.hex",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap());
    assert_eq!(one(&buf), link(3, "p0", true, true, 1500));
}

#[test]
fn several_messages_in_one_buffer() {
    let mut buf = fixture("link_p1_up_lowerdown");
    buf.extend(fixture("link_p0_mtu1400"));
    buf.extend(fixture("dellink_p0"));
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!(st.decoded, 3);
    assert_eq!(st.malformed, 0);
    assert_eq!(out[1], link(3, "p0", true, true, 1400));
}

#[test]
fn done_error_and_other_types() {
    // NLMSG_DONE (type 3) with its 4-byte status.
    let done = [20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(one(&done), KernelMsg::DumpDone { seq: 1 });
    // NLMSG_ERROR (type 2), error -EBUSY (16) and the offending header.
    let mut err = vec![36, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    err.extend((-16i32).to_ne_bytes());
    err.extend([16, 0, 0, 0, 18, 0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(one(&err), KernelMsg::Error { errno: 16, seq: 1 });
    // An ACK (error 0) and RTM_NEWADDR are ignored, not errors.
    let mut ack = err.clone();
    ack[16..20].copy_from_slice(&0i32.to_ne_bytes());
    let mut out = Vec::new();
    assert_eq!(decode(&ack, &mut out).ignored, 1);
    let mut addr = fixture("link_p0_mtu1400");
    addr[4] = 20; // RTM_NEWADDR: the body no longer parses as an address message
    let st = decode(&addr, &mut out);
    assert_eq!(st.decoded, 0);
    assert!(out.is_empty());
}

#[test]
fn malformed_input_is_counted_never_decoded() {
    let good = fixture("link_p0_mtu1400");
    let mut out = Vec::new();
    // Truncated: the header's length runs past the buffer.
    let st = decode(&good[..good.len() - 10], &mut out);
    assert_eq!((st.decoded, st.malformed), (0, 1));
    // A length below the header size.
    let mut bad = good.clone();
    bad[..4].copy_from_slice(&8u32.to_ne_bytes());
    assert_eq!(decode(&bad, &mut out).malformed, 1);
    // An attribute whose length runs past the message: the message is skipped, the next
    // one still decodes.
    let mut corrupt = good.clone();
    corrupt[32..34].copy_from_slice(&0xfff0u16.to_ne_bytes());
    corrupt.extend(fixture("dellink_p0"));
    let st = decode(&corrupt, &mut out);
    assert_eq!((st.decoded, st.malformed), (1, 1), "{out:?}");
    // Trailing bytes too short for a header.
    let mut tail = fixture("dellink_p0");
    tail.extend([1, 2, 3]);
    out.clear();
    let st = decode(&tail, &mut out);
    assert_eq!((st.decoded, st.malformed), (1, 1));
    assert!(decode(&[], &mut out) == DecodeStats::default());
}

#[test]
fn a_flood_of_messages_decodes_in_bounded_steps() {
    // 4000 link messages in one buffer (the largest a 64 KiB read could hold is ~40; a
    // reader hands over one read at a time): all decoded, in order.
    let one = fixture("link_p1_admin_down");
    let buf: Vec<u8> = std::iter::repeat_n(&one, 4000).flatten().copied().collect();
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!(st.decoded, 4000);
    assert!(out.iter().all(|m| *m == link(2, "p1", false, false, 1500)));
}

#[test]
fn dump_request_is_a_getlink_dump() {
    let r = link_dump_request(7);
    assert_eq!(
        u32::from_ne_bytes(r[..4].try_into().unwrap()) as usize,
        r.len()
    );
    assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 18); // RTM_GETLINK
    assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301); // NLM_F_REQUEST | NLM_F_DUMP
    assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        prop_assert_eq!(st.decoded, out.len());
    }

    #[test]
    fn mutated_captures_never_panic(i in 0usize..1490, v in any::<u8>()) {
        let mut buf = fixture("link_p0_mtu1400");
        let i = i % buf.len();
        buf[i] = v;
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        prop_assert!(st.decoded + st.malformed + st.ignored >= 1);
        prop_assert_eq!(st.decoded, out.len());
    }

    #[test]
    fn mutated_route_captures_count_what_they_decode(
        name in proptest::sample::select(vec!["route_multipath", "route_nhid", "neigh_reachable"]),
        i in 0usize..4096,
        v in any::<u8>(),
    ) {
        let mut buf = fixture(name);
        let i = i % buf.len();
        buf[i] = v;
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        prop_assert_eq!(st.decoded, out.len());
    }
}

// Routes, neighbours and nexthop objects: recorded with `scripts/capture-netlink.py` (a
// scratch namespace: lo, veth p0 (ifindex 3) with 198.19.0.1/24, q0 (ifindex 5) with
// 192.0.2.1/24; the `ip` commands are in the script).

fn all(name: &str) -> Vec<KernelMsg> {
    let mut out = Vec::new();
    let st = decode(&fixture(name), &mut out);
    assert_eq!((st.malformed, st.ignored), (0, 0), "{name}: {st:?}");
    out
}

fn rt(table: u32, dst: &str, len: u8, kind: RouteKind, protocol: u8) -> RouteMsg {
    RouteMsg {
        table,
        dst: dst.parse().unwrap(),
        len,
        kind,
        protocol,
        priority: 0,
        paths: Vec::new(),
        nh_id: None,
    }
}

fn via(gw: Option<&str>, oif: u32, weight: u16) -> RoutePath {
    RoutePath {
        gateway: gw.map(|g| g.parse().unwrap()),
        oif,
        weight,
    }
}

#[test]
fn an_address_brings_its_local_connected_and_broadcast_routes() {
    let on = |mut r: RouteMsg| {
        r.paths = vec![via(None, 3, 1)];
        KernelMsg::Route(r)
    };
    assert_eq!(
        all("route_connected_and_local"),
        vec![
            on(rt(255, "198.19.0.1", 32, RouteKind::Local, 2)),
            on(rt(254, "198.19.0.0", 24, RouteKind::Unicast, 2)),
            on(rt(255, "198.19.0.255", 32, RouteKind::Broadcast, 2)),
        ]
    );
}

#[test]
fn unicast_multipath_and_reject_routes_decode() {
    let mut r = rt(254, "203.0.113.0", 24, RouteKind::Unicast, 4);
    r.priority = 10;
    r.paths = vec![via(Some("198.19.0.2"), 3, 1)];
    assert_eq!(all("route_via"), vec![KernelMsg::Route(r.clone())]);
    assert_eq!(all("route_deleted"), vec![KernelMsg::RouteDeleted(r)]);

    let mut m = rt(254, "198.51.100.0", 24, RouteKind::Unicast, 12);
    m.paths = vec![via(Some("198.19.0.2"), 3, 1), via(Some("192.0.2.2"), 5, 3)];
    assert_eq!(all("route_multipath"), vec![KernelMsg::Route(m)]);

    for (f, dst, len, kind) in [
        ("route_blackhole", "198.18.128.0", 17, RouteKind::Blackhole),
        (
            "route_unreachable",
            "198.18.64.0",
            18,
            RouteKind::Unreachable,
        ),
        ("route_prohibit", "198.18.32.0", 19, RouteKind::Prohibit),
    ] {
        assert_eq!(all(f), vec![KernelMsg::Route(rt(254, dst, len, kind, 3))]);
    }
    let mut o = rt(100, "203.0.113.0", 24, RouteKind::Unicast, 3);
    o.paths = vec![via(Some("192.0.2.2"), 5, 1)];
    assert_eq!(all("route_other_table"), vec![KernelMsg::Route(o)]);
}

#[test]
fn nexthop_objects_and_routes_through_them_decode() {
    assert_eq!(
        all("nexthop_via"),
        vec![KernelMsg::Nexthop(NexthopMsg {
            id: 10,
            gateway: Some("198.19.0.2".parse().unwrap()),
            oif: 3,
            blackhole: false,
            group: vec![],
        })]
    );
    // `group 10/11,2`: weights 1 and 2.
    assert_eq!(
        all("nexthop_group"),
        vec![KernelMsg::Nexthop(NexthopMsg {
            id: 20,
            gateway: None,
            oif: 0,
            blackhole: false,
            group: vec![(10, 1), (11, 2)],
        })]
    );
    assert_eq!(
        all("nexthop_blackhole"),
        vec![KernelMsg::Nexthop(NexthopMsg {
            id: 30,
            gateway: None,
            oif: 0,
            blackhole: true,
            group: vec![],
        })]
    );
    assert_eq!(
        all("nexthop_deleted"),
        vec![KernelMsg::NexthopDeleted { id: 30 }]
    );
    // A route through group 20: the kernel names it and also expands it.
    let mut r = rt(254, "203.0.113.128", 25, RouteKind::Unicast, 3);
    r.nh_id = Some(20);
    r.paths = vec![via(Some("198.19.0.2"), 3, 1), via(Some("192.0.2.2"), 5, 2)];
    assert_eq!(all("route_nhid"), vec![KernelMsg::Route(r)]);
}

#[test]
fn neighbours_decode_with_their_state() {
    let n = |ifindex, addr: &str, mac: Option<[u8; 6]>, state| NeighMsg {
        ifindex,
        addr: addr.parse().unwrap(),
        mac,
        state: NudState(state),
    };
    let got = all("neigh_reachable");
    assert_eq!(
        got,
        vec![KernelMsg::Neigh(n(
            3,
            "198.19.0.2",
            Some([2, 0x5e, 0, 0, 0, 0x0a]),
            NudState::REACHABLE
        ))]
    );
    let KernelMsg::Neigh(r) = got[0] else {
        unreachable!()
    };
    assert!(r.state.is_usable() && !r.state.is_failed());
    assert_eq!(
        all("neigh_permanent"),
        vec![KernelMsg::Neigh(n(
            5,
            "192.0.2.2",
            Some([2, 0x5e, 0, 0, 0, 0x0b]),
            NudState::PERMANENT
        ))]
    );
    // `ip neigh del`: the kernel first reports the entry failed, then deleted.
    let gone = n(3, "198.19.0.2", None, NudState::FAILED);
    assert_eq!(
        all("neigh_deleted"),
        vec![KernelMsg::Neigh(gone), KernelMsg::NeighDeleted(gone)]
    );
    assert!(gone.state.is_failed() && !gone.state.is_usable());
}

/// A nexthop message: `nhmsg` with `family`, then `attrs` as (type, value).
fn nh_msg(ty: u16, family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 16 + 8];
    b[16] = family;
    for (t, v) in attrs {
        let l = 4 + v.len();
        b.extend_from_slice(&(l as u16).to_ne_bytes());
        b.extend_from_slice(&t.to_ne_bytes());
        b.extend_from_slice(v);
        b.resize((b.len() + 3) & !3, 0);
    }
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&ty.to_ne_bytes());
    b
}

#[test]
fn malformed_nexthop_messages_are_counted_and_skipped() {
    let id = 7u32.to_ne_bytes();
    let good = nh_msg(
        RTM_NEWNEXTHOP,
        2,
        &[(1, &id), (6, &[198, 19, 0, 2]), (5, &3u32.to_ne_bytes())],
    );
    for bad in [
        nh_msg(RTM_NEWNEXTHOP, 2, &[(6, &[198, 19, 0, 2])]), // no id
        nh_msg(RTM_NEWNEXTHOP, 2, &[(1, &[7, 0])]),          // id of 2 bytes
        nh_msg(RTM_NEWNEXTHOP, 2, &[(1, &id), (6, &[198, 19, 0])]), // 3-byte gateway
        nh_msg(RTM_NEWNEXTHOP, 0, &[(1, &id), (2, &[1, 0, 0, 0, 0, 0])]), // group of 6 bytes
        nh_msg(RTM_NEWNEXTHOP, 0, &[(1, &id), (2, &[])]),    // empty group
        {
            // an attribute claiming more than the message holds
            let mut m = nh_msg(RTM_NEWNEXTHOP, 2, &[(1, &id)]);
            m[24..26].copy_from_slice(&64u16.to_ne_bytes());
            m
        },
        {
            // shorter than struct nhmsg
            let mut m = nh_msg(RTM_NEWNEXTHOP, 2, &[]);
            m.truncate(20);
            m[0..4].copy_from_slice(&20u32.to_ne_bytes());
            m
        },
    ] {
        let mut buf = bad.clone();
        buf.extend_from_slice(&good);
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        assert_eq!((st.malformed, st.decoded), (1, 1), "{bad:02x?}: {st:?}");
        assert!(matches!(
            out[..],
            [KernelMsg::Nexthop(NexthopMsg { id: 7, .. })]
        ));
    }
    // IPv6 nexthops are not ours: ignored, not malformed.
    let v6 = nh_msg(
        RTM_NEWNEXTHOP,
        10,
        &[
            (1, &id),
            (6, &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ],
    );
    let mut out = Vec::new();
    assert_eq!(
        decode(&v6, &mut out),
        DecodeStats {
            ignored: 1,
            ..Default::default()
        }
    );
}

#[test]
fn a_dump_sized_buffer_of_routes_decodes_every_one() {
    // A full dump arrives in 32 KiB reads: ~480 routes each, all decoded, none dropped.
    let one = fixture("route_via");
    let mut buf = Vec::new();
    while buf.len() + one.len() <= 32 * 1024 {
        buf.extend_from_slice(&one);
    }
    let n = buf.len() / one.len();
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!((st.decoded, st.malformed), (n, 0));
    assert_eq!(out.len(), n);
    // Truncated anywhere: what precedes the cut decodes, the cut is one malformed.
    buf.truncate(buf.len() - 7);
    out.clear();
    let st = decode(&buf, &mut out);
    assert_eq!((st.decoded, st.malformed), (n - 1, 1));
}

#[test]
fn dump_requests_are_well_formed() {
    for (req, ty, family) in [
        (route_dump_request(9), 26u16, 2u8),
        (neigh_dump_request(9), 30, 2),
        // Nexthops of every family: groups and blackholes are AF_UNSPEC.
        (nexthop_dump_request(9), RTM_GETNEXTHOP, 0),
    ] {
        assert_eq!(
            u32::from_ne_bytes(req[0..4].try_into().unwrap()) as usize,
            req.len()
        );
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), ty);
        assert_eq!(
            u16::from_ne_bytes([req[6], req[7]]),
            0x301,
            "REQUEST | DUMP"
        );
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 9);
        assert_eq!(req[16], family);
    }
}

#[test]
fn an_interrupted_dump_asks_for_a_resync_once() {
    let mut buf = fixture("route_via");
    buf[6] |= 0x10; // NLM_F_DUMP_INTR
    let again = buf.clone();
    buf.extend_from_slice(&again);
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!(st.decoded, 3, "two routes and one resync: {out:?}");
    assert_eq!(st.decoded, out.len());
    assert_eq!(out.iter().filter(|m| **m == KernelMsg::Resync).count(), 1);
    assert_eq!(
        out[0],
        KernelMsg::Resync,
        "before the inconsistent dump's messages"
    );
}
