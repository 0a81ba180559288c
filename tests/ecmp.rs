//! ECMP through the whole router over memory I/O: a route with several gateways spreads
//! flows over them, keeps each flow (and every fragment of a datagram) on one, honours
//! weights, and takes a gateway out while its port is down or its ARP failed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::{collections::HashMap, net::Ipv4Addr, time::Duration};

use common::*;
use xgw::{
    runtime::testbed::{port_mac, Testbed},
    wire::{
        arp,
        ethernet::{self, MacAddr},
        ipv4::Packet,
    },
};

const GW_A: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x0a]);
const GW_B: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x0b]);
const GW_C: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x0c]);

fn cfg(route: &str) -> String {
    format!(
        r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[interface]]
name = "r2"
address = "192.0.2.1/24"
[[route]]
prefix = "203.0.113.0/24"
{route}
[punt.resolve]
queue = 4096
"#
    )
}

/// The UDP flow numbered `k`: its own source port.
fn flow(k: u16) -> Vec<u8> {
    Ip::udp_ports(client(), 20_000 + k, ip("203.0.113.9"), 53, 16).client_frame()
}

/// Which gateway MAC each frame forwarded out of `port` went to, by the flow's source port.
fn members(port: usize, frames: &[Vec<u8>]) -> HashMap<u16, MacAddr> {
    frames
        .iter()
        .filter(|f| {
            ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == ethernet::EtherType::Ipv4
        })
        .map(|f| {
            let e = ethernet::Frame::new_checked(&f[..]).unwrap();
            assert_eq!(
                e.src_addr(),
                port_mac(port),
                "sent from the egress port's MAC"
            );
            let p = l3(f);
            assert_eq!(p.ttl(), 63);
            let sport = u16::from_be_bytes([p.payload()[0], p.payload()[1]]);
            (sport - 20_000, e.dst_addr())
        })
        .collect()
}

/// Answer every ARP request in `frames` (sent on `port`) whose target is in `gws`.
fn answer_arp(t: &mut Testbed, port: usize, frames: &[Vec<u8>], gws: &[(Ipv4Addr, MacAddr)]) {
    for f in frames {
        if ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() != ethernet::EtherType::Arp {
            continue;
        }
        let r = parse_arp(f);
        let Some(&(gw, mac)) = gws.iter().find(|(g, _)| *g == r.target_protocol_addr) else {
            continue;
        };
        t.push(
            port,
            &arp_frame(
                arp::Operation::Reply,
                mac,
                gw,
                port_mac(port),
                r.source_protocol_addr,
                port_mac(port),
            ),
        );
    }
    t.step();
}

/// Send flows `0..n`, answer the ARP requests they cause for `gws`, then send them again
/// and return which gateway each took (flows whose gateway is still unresolved are not
/// in it).
fn send_resolving(
    t: &mut Testbed,
    n: u16,
    gws: &[(usize, Ipv4Addr, MacAddr)],
) -> HashMap<u16, MacAddr> {
    t.flood(0, (0..n).map(flow));
    for port in [1usize, 2] {
        let tx = t.take_tx(port);
        let here: Vec<_> = gws
            .iter()
            .filter(|g| g.0 == port)
            .map(|g| (g.1, g.2))
            .collect();
        answer_arp(t, port, &tx, &here);
        let _ = t.take_tx(port);
    }
    let _ = t.take_tx(0);
    send(t, n)
}

fn send(t: &mut Testbed, n: u16) -> HashMap<u16, MacAddr> {
    t.flood(0, (0..n).map(flow));
    let mut out = members(1, &t.take_tx(1));
    out.extend(members(2, &t.take_tx(2)));
    out
}

fn share(m: &HashMap<u16, MacAddr>, mac: MacAddr) -> usize {
    m.values().filter(|&&v| v == mac).count()
}

const TWO_ON_R1: [(usize, &str, MacAddr); 2] = [(1, "198.19.0.2", GW_A), (1, "198.19.0.3", GW_B)];

fn gws(list: &[(usize, &str, MacAddr)]) -> Vec<(usize, Ipv4Addr, MacAddr)> {
    list.iter().map(|&(p, a, m)| (p, ip(a), m)).collect()
}

#[test]
fn flows_spread_over_both_gateways_and_each_stays_on_one() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2", "198.19.0.3"]"#));
    let first = send_resolving(&mut t, 1000, &gws(&TWO_ON_R1));
    assert_eq!(first.len(), 1000, "every flow forwarded once resolved");
    let (a, b) = (share(&first, GW_A), share(&first, GW_B));
    assert_eq!(a + b, 1000);
    // 1000 flows over two equal gateways: each gets about half (5 standard deviations).
    assert!((420..=580).contains(&a), "{a} vs {b}");
    // The same flows again (and again): each on the gateway it had.
    for _ in 0..2 {
        assert_eq!(send(&mut t, 1000), first);
    }
}

#[test]
fn weights_are_honoured() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2", "198.19.0.3"]
weights = [3, 1]"#));
    let m = send_resolving(&mut t, 2000, &gws(&TWO_ON_R1));
    assert_eq!(m.len(), 2000);
    let a = share(&m, GW_A);
    // Three quarters to the first (1500, give or take 5 standard deviations).
    assert!((1400..=1600).contains(&a), "{a} of 2000");
}

#[test]
fn fragments_of_a_datagram_take_one_gateway() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2", "198.19.0.3"]"#));
    let _ = send_resolving(&mut t, 200, &gws(&TWO_ON_R1));
    let mut seen = HashMap::new();
    for d in 1..=64u8 {
        let dst = Ipv4Addr::new(203, 0, 113, d);
        // One 100-byte UDP datagram in two fragments: ports only in the first.
        let mut first = Ip::udp_ports(client(), 5000, dst, 53, 92).df(false).bytes();
        let mut second = first.clone();
        {
            let mut p = Packet::new_unchecked(&mut first[..]);
            p.set_ident(u16::from(d));
            p.set_more_frags(true);
            p.set_total_len(20 + 48);
            p.fill_checksum();
        }
        first.truncate(20 + 48);
        second.drain(20..20 + 48);
        {
            let mut p = Packet::new_unchecked(&mut second[..]);
            p.set_ident(u16::from(d));
            p.set_frag_offset(48);
            p.set_total_len(20 + 52);
            p.fill_checksum();
        }
        for frag in [first, second] {
            t.push(
                0,
                &eth(port_mac(0), CLIENT_MAC, ethernet::EtherType::Ipv4, &frag),
            );
        }
        t.step();
        let tx = t.take_tx(1);
        assert_eq!(tx.len(), 2, "both fragments forwarded");
        let macs: Vec<MacAddr> = tx
            .iter()
            .map(|f| ethernet::Frame::new_checked(&f[..]).unwrap().dst_addr())
            .collect();
        assert_eq!(
            macs[0], macs[1],
            "datagram {d}: fragments split over gateways"
        );
        *seen.entry(macs[0]).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "64 datagrams all on one gateway: {seen:?}");
}

#[test]
fn a_gateway_whose_arp_failed_leaves_the_group_until_it_answers() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2", "198.19.0.3"]"#));
    // Only .2 answers.
    let first = send_resolving(&mut t, 400, &gws(&TWO_ON_R1[..1]));
    assert!(first.values().all(|&m| m == GW_A));
    let on_b = 400 - first.len();
    assert!(on_b > 100, "about half the flows wait for .3: {on_b}");
    // No answer: Failed after three requests (defaults: 1 s apart).
    for _ in 0..4 {
        t.advance(Duration::from_secs(1));
    }
    let _ = (t.take_tx(0), t.take_tx(1));
    assert!(t
        .control()
        .neighbors()
        .iter_failed()
        .any(|a| a == ip("198.19.0.3")));
    // Now every flow goes through .2, and the flows already there stay.
    let m = send(&mut t, 400);
    assert_eq!(m.len(), 400, "no flow waits for the failed gateway");
    assert!(m.values().all(|&v| v == GW_A));
    assert!(t.take_tx(0).is_empty(), "no host unreachable");
    // .3 answers at last: it takes its flows back, the others never moved.
    t.push(
        1,
        &arp_frame(
            arp::Operation::Reply,
            GW_B,
            ip("198.19.0.3"),
            port_mac(1),
            ip("198.19.0.1"),
            port_mac(1),
        ),
    );
    t.step();
    let back = send(&mut t, 400);
    assert_eq!(back.len(), 400);
    assert_eq!(share(&back, GW_B), on_b);
    for (k, mac) in &first {
        assert_eq!(back[k], *mac, "flow {k} moved");
    }
}

#[test]
fn a_gateway_on_a_down_port_leaves_the_group_and_comes_back() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2", "192.0.2.2"]"#));
    let both = [(1, "198.19.0.2", GW_A), (2, "192.0.2.2", GW_C)];
    let first = send_resolving(&mut t, 600, &gws(&both));
    assert_eq!(first.len(), 600);
    let on_c = share(&first, GW_C);
    assert!((200..=400).contains(&on_c), "{on_c}");
    t.link(2, false, 1500);
    let m = send(&mut t, 600);
    assert_eq!(m.len(), 600, "every flow through r1 while r2 is down");
    assert!(m.values().all(|&v| v == GW_A));
    t.link(2, true, 1500);
    // r2's neighbour was flushed: resolve it again.
    let back = send_resolving(&mut t, 600, &gws(&both));
    assert_eq!(back, first, "each flow back on its gateway");
}

#[test]
fn a_single_gateway_list_is_a_plain_route() {
    let mut t = bed(&cfg(r#"via = ["198.19.0.2"]"#));
    let m = send_resolving(&mut t, 50, &gws(&TWO_ON_R1));
    assert_eq!(m.len(), 50);
    assert!(m.values().all(|&v| v == GW_A));
}
