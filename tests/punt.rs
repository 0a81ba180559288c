//! The exception path under attack, through the production control loop over memory I/O:
//! per-class policers and queues, ARP first, unmapped inbound NAT traffic dropped in the
//! worker, punt buffers conserved, and two workers sharing one NAT.
// Integration tests live at the crate root of their own test binary.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::{net::Ipv4Addr, time::Duration};

use common::*;
use xgw::{
    control::{nat::NatEvent, ControlEvent},
    dataplane::{counters::ClassCounter, punt::PuntClass, DropReason, Event, PuntReason},
    runtime::testbed::{port_mac, Testbed},
    wire::{
        arp,
        ethernet::{self, EtherType, MacAddr},
        icmpv4,
        tcp::flags,
        udp,
    },
};

const NAT: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[nat]
outside = "r1"
inside = ["198.18.0.0/24"]
max_sessions = 65536
[[nat.forward]]
protocol = "udp"
port = 5353
to = "198.18.0.2:53"
"#;

fn ext() -> Ipv4Addr {
    ip("198.19.0.1")
}

/// A neighbour on the outside subnet that xgw has not resolved yet.
fn fresh() -> Ipv4Addr {
    ip("198.19.0.77")
}
const FRESH_MAC: MacAddr = MacAddr([0x02, 0x77, 0, 0, 0, 0x77]);

fn arp_reply_from_fresh() -> Vec<u8> {
    arp_frame(
        arp::Operation::Reply,
        FRESH_MAC,
        fresh(),
        port_mac(1),
        ext(),
        port_mac(1),
    )
}

/// Inbound UDP from the Internet to external port `port`.
fn unmapped_udp(port: u16) -> Vec<u8> {
    server_frame(&Ip::udp_ports(ip("203.0.113.9"), 1000 + port % 50_000, ext(), port, 8).bytes())
}

/// Every punt buffer of every worker is back in its pool.
fn assert_buffers_conserved(t: &Testbed, per_worker: usize) {
    for (w, worker) in t.workers.iter().enumerate() {
        let q = worker.punt_queues();
        assert!(q.is_empty(), "worker {w}: punts left");
        assert_eq!(
            q.free_buffers(),
            per_worker,
            "worker {w}: buffers conserved"
        );
    }
}

/// Buffers per worker with the default `[punt]` (the sum of the queue depths).
const DEFAULT_BUFFERS: usize = 512 + 512 + 4096 + 256 + 512 + 256 + 256 + 256;

/// The client opens a flow to a neighbour nobody resolved yet: xgw sends one ARP request
/// and holds the (translated) packet.
fn start_resolving(t: &mut Testbed) {
    t.push(
        0,
        &Ip::udp_ports(client(), 41000, fresh(), 9, 16).client_frame(),
    );
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 1, "one ARP request, the packet held");
    assert_eq!(parse_arp(&tx[0]).target_protocol_addr, fresh());
}

fn released_to_fresh(t: &mut Testbed) -> usize {
    t.take_tx(1)
        .iter()
        .filter(|f| {
            let e = ethernet::Frame::new_checked(&f[..]).unwrap();
            e.ethertype() == EtherType::Ipv4 && e.dst_addr() == FRESH_MAC
        })
        .count()
}

#[test]
fn unmapped_inbound_flood_is_dropped_in_the_worker_and_the_arp_reply_gets_through() {
    let mut t = bed_with_server(NAT);
    start_resolving(&mut t);
    let before = t.counters();
    let n = 20_000u16;
    // The ARP reply arrives in the middle of the flood.
    let frames = (0..n)
        .map(|k| {
            if k == n / 2 {
                arp_reply_from_fresh()
            } else {
                unmapped_udp(6000 + k)
            }
        })
        .collect::<Vec<_>>();
    t.flood(1, frames);
    let c = t.counters();
    assert_eq!(
        c.dropped(DropReason::NatNoMapping) - before.dropped(DropReason::NatNoMapping),
        u64::from(n - 1),
        "every unmapped datagram dropped in the worker"
    );
    assert_eq!(
        c.punted(PuntReason::NatMiss),
        before.punted(PuntReason::NatMiss),
        "none of them punted"
    );
    assert_eq!(
        c.class_count(PuntClass::Arp, ClassCounter::Accepted)
            - before.class_count(PuntClass::Arp, ClassCounter::Accepted),
        1
    );
    assert_eq!(
        released_to_fresh(&mut t),
        1,
        "the held packet left once resolved"
    );
    // The port forward and existing mappings still get inbound traffic.
    t.push(1, &unmapped_udp(5353));
    t.step();
    let inside = t.take_tx(0);
    assert_eq!(inside.len(), 1, "forwarded port is not dropped");
    assert_eq!(l3(&inside[0]).dst_addr(), client());
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}

#[test]
fn dropped_and_admitted_inbound_follow_the_mappings() {
    let mut t = bed_with_server(&NAT.replace(
        "max_sessions = 65536",
        "max_sessions = 65536\nfiltering = \"endpoint-independent\"",
    ));
    let remote = ip("203.0.113.7");
    t.push(
        0,
        &Ip::udp_ports(client(), 40002, remote, 7, 8).client_frame(),
    );
    t.step();
    assert_eq!(t.take_tx(1).len(), 1);
    // Endpoint-independent filtering: anyone may reach the mapping (40002 preserved)...
    let from_other =
        |port| server_frame(&Ip::udp_ports(ip("203.0.113.99"), 999, ext(), port, 8).bytes());
    t.push(1, &from_other(40002));
    t.step();
    assert_eq!(t.take_tx(0).len(), 1, "mapped port admitted");
    // ...but not its neighbour port, which has no mapping: dropped in the worker.
    let before = t.counters().dropped(DropReason::NatNoMapping);
    t.push(1, &from_other(40004));
    t.step();
    assert!(t.take_tx(0).is_empty());
    assert_eq!(t.counters().dropped(DropReason::NatNoMapping), before + 1);
    // Once the mapping expires (UDP 300 s), its port drops in the worker too.
    t.advance(Duration::from_secs(400));
    // The expiry sweep visits a slice of the table per tick.
    for _ in 0..8 {
        t.advance(Duration::from_millis(50));
    }
    assert_eq!(t.control().nat().unwrap().session_count(), 0);
    t.push(1, &from_other(40002));
    t.step();
    let ipv4 = t
        .take_tx(0)
        .iter()
        .filter(|f| ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == EtherType::Ipv4)
        .count();
    assert_eq!(ipv4, 0, "nothing delivered inside");
    assert_eq!(t.counters().dropped(DropReason::NatNoMapping), before + 2);
}

#[test]
fn unsolicited_syn_to_an_unmapped_port_is_still_held_but_policed() {
    let mut t = bed_with_server(&format!("{NAT}[punt.nat]\nrate = 1000\nburst = 100\n"));
    start_resolving(&mut t);
    // Refill the bucket that the setup's flows drew on (1000/s: 100 tokens in 100 ms).
    t.advance(Duration::from_millis(500));
    let before = t.counters();
    let syn = |port: u16| {
        server_frame(&Ip::tcp(ip("203.0.113.9"), 1234, ext(), port, flags::SYN).bytes())
    };
    let ack = |port: u16| {
        server_frame(&Ip::tcp(ip("203.0.113.9"), 1234, ext(), port, flags::ACK).bytes())
    };
    let mut frames: Vec<Vec<u8>> = (0..5000u16).map(|k| syn(10_000 + k)).collect();
    frames.extend((0..5000u16).map(|k| ack(20_000 + k)));
    frames.push(arp_reply_from_fresh());
    t.flood(1, frames);
    let c = t.counters();
    let d = |what| c.class_count(PuntClass::Nat, what) - before.class_count(PuntClass::Nat, what);
    // Bare ACKs can match nothing: dropped in the worker.
    assert_eq!(c.dropped(DropReason::NatNoMapping), 5000);
    // SYNs are punted for the RFC 5382 REQ-4 hold, within the class's burst.
    assert_eq!(d(ClassCounter::Accepted), 100);
    assert_eq!(d(ClassCounter::Policed), 4900);
    assert_eq!(c.dropped(DropReason::PuntPoliced), 4900);
    assert_eq!(
        t.control().nat().unwrap().counters.get(NatEvent::SynHeld),
        100
    );
    // ARP has its own queue and policer: the held packet is released.
    assert_eq!(released_to_fresh(&mut t), 1);
    // A second later the class admits again.
    t.advance(Duration::from_secs(1));
    t.push(1, &syn(30_000));
    t.step();
    assert_eq!(
        t.counters()
            .class_count(PuntClass::Nat, ClassCounter::Accepted),
        c.class_count(PuntClass::Nat, ClassCounter::Accepted) + 1
    );
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}

#[test]
fn transit_and_local_floods_are_policed_per_class() {
    let mut t = bed_with_server(NAT);
    let before = t.counters();
    // TTL=1 (traceroute-style) and pings to the router, all at one instant.
    let mut frames: Vec<Vec<u8>> = (0..3000u16)
        .map(|k| {
            Ip::udp_ports(client(), 30_000 + k, ip("203.0.113.5"), 9, 8)
                .ttl(1)
                .client_frame()
        })
        .collect();
    frames.extend((0..3000u16).map(|k| Ip::echo(client(), ip("198.18.0.1"), k).client_frame()));
    t.flood(0, frames);
    let c = t.counters();
    let d = |class, what| c.class_count(class, what) - before.class_count(class, what);
    assert_eq!(
        d(PuntClass::Transit, ClassCounter::Accepted),
        1024,
        "default burst"
    );
    assert_eq!(d(PuntClass::Transit, ClassCounter::Policed), 3000 - 1024);
    assert_eq!(
        d(PuntClass::Local, ClassCounter::Accepted),
        512,
        "default burst"
    );
    assert_eq!(d(PuntClass::Local, ClassCounter::Policed), 3000 - 512);
    assert_eq!(
        d(PuntClass::Nat, ClassCounter::Policed),
        0,
        "other classes untouched"
    );
    // What got through was handled: echo replies, and ICMP errors within [icmp] (this one
    // destination's share first).
    assert!(t.control().counters.get(ControlEvent::EchoReplies) > 0);
    assert!(
        t.control()
            .counters
            .get(ControlEvent::IcmpRateLimitedDestination)
            > 0
    );
    t.take_tx(0);
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}

/// PMTUD is never starved: during a TTL=1 flood far beyond the transit class's policer and
/// the ICMP budget, a DF packet over the outside MTU still gets its fragmentation needed.
#[test]
fn frag_needed_survives_a_ttl_flood() {
    let cfg = NAT.replace(
        "address = \"198.19.0.1/24\"",
        "address = \"198.19.0.1/24\"\nmtu = 1400",
    );
    let mut t = bed_with_server(&cfg);
    // Another host floods TTL=1 from many (spoofed) sources to empty every shared budget.
    let mut frames: Vec<Vec<u8>> = (0..20_000u32)
        .map(|k| {
            let src = Ipv4Addr::new(198, 18, 0, 100 + (k % 100) as u8);
            Ip::udp_ports(src, 30_000, ip("203.0.113.5"), 9, 8)
                .ttl(1)
                .client_frame()
        })
        .collect();
    frames.push(Ip::udp_ports(client(), 40_000, ip("203.0.113.5"), 9, 1400).client_frame());
    t.flood(0, frames);
    let c = t.counters();
    assert!(c.class_count(PuntClass::Transit, ClassCounter::Policed) > 10_000);
    assert_eq!(c.class_count(PuntClass::Pmtu, ClassCounter::Accepted), 1);
    assert!(t.control().counters.get(ControlEvent::IcmpRateLimited) > 0);
    let pmtu: Vec<_> = t
        .take_tx(0)
        .into_iter()
        .filter(|f| {
            if ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() != EtherType::Ipv4 {
                return false;
            }
            let p = l3(f);
            p.dst_addr() == client()
                && p.protocol() == xgw::wire::ipv4::Protocol::Icmp
                && icmp_of(&p).msg_code() == icmpv4::dst_unreachable_code::FRAG_NEEDED
        })
        .collect();
    assert_eq!(pmtu.len(), 1, "frag needed delivered");
    assert_eq!(icmp_of(&l3(&pmtu[0])).next_hop_mtu(), 1400);
}

/// A spoofed ARP flood on the outside link (every free address of the subnet claims a
/// random MAC, far more senders than the table holds) never makes the route's gateway
/// unresolvable, even though the gateway is first needed only after the flood.
#[test]
fn spoofed_arp_flood_leaves_the_gateway_resolvable() {
    let cfg = format!(
        "{NAT}[neighbor]\nmax_entries = 64\n[punt.arp]\nrate = 100000000\nburst = 1000000\nqueue = 65536\n"
    );
    let mut t = bed(&cfg);
    let frames: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let host = 3 + (i % 250) as u8; // 198.19.0.3 ..= 198.19.0.252, never the gateway
            let b = i.to_be_bytes();
            arp_frame(
                arp::Operation::Request,
                MacAddr([0x02, 0xee, b[0], b[1], b[2], b[3]]),
                Ipv4Addr::new(198, 19, 0, host),
                MacAddr::ZERO,
                ext(),
                MacAddr::BROADCAST,
            )
        })
        .collect();
    t.flood(1, frames);
    t.take_tx(1);
    assert!(t.control().neighbors().len() <= 64 + 1);
    // Now traffic through the gateway 198.19.0.2: it is resolved and the packet delivered.
    t.push(0, &Ip::udp(client(), ip("203.0.113.7"), 10).client_frame());
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "an ARP request for the gateway");
    assert_eq!(parse_arp(&req[0]).target_protocol_addr, server());
    t.push(
        1,
        &arp_frame(
            arp::Operation::Reply,
            SERVER_MAC,
            server(),
            port_mac(1),
            ext(),
            port_mac(1),
        ),
    );
    t.step();
    let out = t.take_tx(1);
    assert_eq!(out.len(), 1, "delivered through the gateway");
    assert_eq!(l3(&out[0]).dst_addr(), ip("203.0.113.7"));
    assert!(t.control().neighbors().stats().evicted > 0);
}

#[test]
fn a_full_class_queue_drops_and_counts_then_recovers() {
    // Every first packet through the slow path, to exercise its queue.
    let cfg = NAT.replace(
        "max_sessions = 65536",
        "max_sessions = 65536\nsessions_in_workers = false",
    );
    let mut t = bed_with_server(&format!("{cfg}[punt.nat]\nqueue = 4\n"));
    let remote = ip("203.0.113.7");
    // 64 new flows in one burst: the worker sees them before the control loop runs.
    for k in 0..64u16 {
        t.push(
            0,
            &Ip::udp_ports(client(), 50_000 + 2 * k, remote, 7, 8).client_frame(),
        );
    }
    let before = t.counters();
    let now = t.now;
    t.workers[0].poll_once(now);
    let c = t.counters();
    let d = |what| c.class_count(PuntClass::Nat, what) - before.class_count(PuntClass::Nat, what);
    assert_eq!(d(ClassCounter::Accepted), 4);
    assert_eq!(d(ClassCounter::QueueFull), 60);
    assert_eq!(c.dropped(DropReason::PuntQueueFull), 60);
    t.step();
    assert_eq!(t.take_tx(1).len(), 4, "the queued four were translated");
    // Paced, every flow gets its session.
    for k in 0..64u16 {
        t.push(
            0,
            &Ip::udp_ports(client(), 60_000 + 2 * k, remote, 7, 8).client_frame(),
        );
        t.step();
    }
    assert_eq!(t.take_tx(1).len(), 64);
    assert_buffers_conserved(&t, 512 + 512 + 4 + 256 + 512 + 256 + 256 + 256);
}

#[test]
fn malformed_punts_are_counted_not_fatal() {
    let mut t = bed(NAT);
    let runt_arp = eth(MacAddr::BROADCAST, CLIENT_MAC, EtherType::Arp, &[0u8; 10]);
    let bad_op = {
        let mut f = arp_frame(
            arp::Operation::Request,
            CLIENT_MAC,
            client(),
            MacAddr::ZERO,
            ip("198.18.0.1"),
            MacAddr::BROADCAST,
        );
        f[ethernet::HEADER_LEN + 7] = 9;
        f
    };
    // A datagram to the router whose UDP length lies: still answered or dropped, never a
    // panic, and its buffer comes back.
    let mut lying = Ip::udp(client(), ip("198.18.0.1"), 8).bytes();
    let hl = 20;
    udp::Packet::new_unchecked(&mut lying[hl..]).set_len(60_000);
    let frames = vec![
        runt_arp,
        bad_op,
        eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &lying),
    ];
    t.flood(0, frames);
    assert_eq!(t.control().counters.get(ControlEvent::ArpInvalid), 2);
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}

/// A NAT testbed with two workers, the client and the server resolved (the server's ARP
/// request arrives on worker `server_queue`).
fn two_worker_bed(server_queue: usize) -> Testbed {
    let mut t = Testbed::with_workers(NAT, 2);
    let ask = |mac, addr, target| {
        arp_frame(
            arp::Operation::Request,
            mac,
            addr,
            MacAddr::ZERO,
            target,
            MacAddr::BROADCAST,
        )
    };
    t.push(0, &ask(CLIENT_MAC, client(), ip("198.18.0.1")));
    t.push_to(server_queue, 1, &ask(SERVER_MAC, server(), ext()));
    t.step();
    t.take_tx(0);
    t.take_tx(1);
    t
}

#[test]
fn two_workers_share_one_nat_and_one_mapping() {
    // The server's ARP arrives on worker 1's queue.
    let mut t = two_worker_bed(1);
    // One inside endpoint opens flows to two remotes, on two queues, in the same round.
    let (a, b) = (ip("203.0.113.7"), ip("203.0.113.8"));
    t.push_to(
        0,
        0,
        &Ip::udp_ports(client(), 40100, a, 7, 8).client_frame(),
    );
    t.push_to(
        1,
        0,
        &Ip::udp_ports(client(), 40100, b, 7, 8).client_frame(),
    );
    t.step();
    let out = t.take_tx(1);
    assert_eq!(out.len(), 2);
    let mut ports: Vec<(Ipv4Addr, u16)> = out
        .iter()
        .map(|f| {
            let p = l3(f);
            let u = udp::Packet::new_checked(p.payload()).unwrap();
            assert!(u.verify_checksum(p.src_addr(), p.dst_addr()));
            (p.src_addr(), u.src_port())
        })
        .collect();
    ports.dedup();
    assert_eq!(
        ports,
        vec![(ext(), 40100)],
        "one endpoint-independent mapping"
    );
    // The reply from b arrives on worker 0's queue, a's on worker 1's: both translated.
    t.push_to(
        0,
        1,
        &server_frame(&Ip::udp_ports(b, 7, ext(), 40100, 8).bytes()),
    );
    t.push_to(
        1,
        1,
        &server_frame(&Ip::udp_ports(a, 7, ext(), 40100, 8).bytes()),
    );
    t.step();
    let back = t.take_tx(0);
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|f| l3(f).dst_addr() == client()));
    assert_eq!(
        t.worker_counters(0)
            .events(xgw::dataplane::Event::NatOut2In),
        1
    );
    assert_eq!(
        t.worker_counters(1)
            .events(xgw::dataplane::Event::NatOut2In),
        1
    );
    assert_eq!(t.control().nat().unwrap().session_count(), 2);
}

#[test]
fn first_packets_of_new_flows_wait_for_arp_by_bytes_not_four_packets() {
    let mut t = bed_with_server(NAT);
    // 2000 new flows towards a neighbour nobody resolved yet, all at once (Linux keeps
    // `unres_qlen_bytes`; xgw used to keep 4 packets and drop the rest).
    let frames = (0..2000u16)
        .map(|k| Ip::udp_ports(client(), 20_000 + 2 * k, fresh(), 9, 16).client_frame())
        .collect::<Vec<_>>();
    t.flood(0, frames);
    let arp_requests = t
        .take_tx(1)
        .iter()
        .filter(|f| ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == EtherType::Arp)
        .count();
    assert_eq!(arp_requests, 1, "one request for the burst");
    assert_eq!(t.control().counters.get(ControlEvent::NeighQueueFull), 0);
    t.push(1, &arp_reply_from_fresh());
    t.step();
    assert_eq!(
        released_to_fresh(&mut t),
        2000,
        "every first packet delivered"
    );
    assert_eq!(t.control().nat().unwrap().session_count(), 2001);
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}

#[test]
fn workers_create_outbound_sessions_without_a_punt() {
    let mut t = bed_with_server(&format!("{NAT}[punt.nat]\nqueue = 4\n"));
    let before = t.counters();
    let remote = ip("203.0.113.7");
    for k in 0..64u16 {
        t.push(
            0,
            &Ip::udp_ports(client(), 50_000 + 2 * k, remote, 7, 8).client_frame(),
        );
    }
    let now = t.now;
    t.workers[0].poll_once(now);
    let c = t.counters();
    assert_eq!(
        c.events(Event::NatCreated) - before.events(Event::NatCreated),
        64
    );
    assert_eq!(
        c.punted(PuntReason::NatMiss),
        before.punted(PuntReason::NatMiss)
    );
    // Translated in the same poll, before the control loop ran: port preserved, checksums
    // valid, one mapping each.
    let out = t.take_tx(1);
    assert_eq!(out.len(), 64);
    for (k, f) in out.iter().enumerate() {
        let p = l3(f);
        assert!(p.verify_checksum());
        let u = udp::Packet::new_checked(p.payload()).unwrap();
        assert!(u.verify_checksum(p.src_addr(), p.dst_addr()));
        assert_eq!((p.src_addr(), u.src_port()), (ext(), 50_000 + 2 * k as u16));
    }
    t.step();
    let nat = t.control().nat().unwrap();
    assert_eq!(nat.counters.get(NatEvent::MappingsCreated), 64 + 1);
    // A TCP SYN opens its session in the worker too, in the state the slow path would give
    // it; the answer (SYN-ACK) changes that state on the slow path.
    drop(nat);
    let created = t.counters().events(Event::NatCreated);
    t.push(
        0,
        &Ip::tcp(client(), 45_000, remote, 80, flags::SYN).client_frame(),
    );
    t.step();
    assert_eq!(t.counters().events(Event::NatCreated), created + 1);
    assert_eq!(
        t.counters().punted(PuntReason::NatMiss),
        before.punted(PuntReason::NatMiss)
    );
    let syn = t.take_tx(1);
    assert_eq!(syn.len(), 1);
    assert_eq!(l3(&syn[0]).src_addr(), ext());
    let synack = Ip::tcp(remote, 80, ext(), 45_000, flags::SYN | flags::ACK);
    let tcp_ctl = t.counters().punted(PuntReason::NatTcpControl);
    t.push(1, &server_frame(&synack.bytes()));
    t.step();
    assert_eq!(t.counters().punted(PuntReason::NatTcpControl), tcp_ctl + 1);
    let back = t.take_tx(0);
    assert_eq!(back.len(), 1);
    assert_eq!(l3(&back[0]).dst_addr(), client());
    // A bare ACK without a session is not a connection: the slow path drops it.
    t.push(
        0,
        &Ip::tcp(client(), 45_002, remote, 80, flags::ACK).client_frame(),
    );
    t.step();
    assert!(t.take_tx(1).is_empty());
    assert_eq!(
        t.control()
            .nat()
            .unwrap()
            .counters
            .get(NatEvent::TcpNoSession),
        1
    );
}

#[test]
fn two_worker_threads_racing_on_one_inside_endpoint_get_one_mapping() {
    let mut t = two_worker_bed(0);
    // Each of 300 inside sockets sends to a different remote on each queue, at once.
    let ports: Vec<u16> = (0..300).map(|k| 30_000 + 3 * k).collect();
    for (w, remote) in [(0, "203.0.113.7"), (1, "203.0.113.8")] {
        for &p in &ports {
            let f = Ip::udp_ports(client(), p, ip(remote), 7, 8).client_frame();
            t.push_to(w, 0, &f);
        }
    }
    let now = t.now;
    let workers = std::mem::take(&mut t.workers);
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                while w.io.rx_pending(0) > 0 {
                    w.poll_once(now);
                }
                w
            })
        })
        .collect();
    t.workers = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let c = t.counters();
    eprintln!(
        "created in workers: {}, policy busy (sent to the slow path): {}",
        c.events(Event::NatCreated),
        c.events(Event::NatCreateBusy)
    );
    // What lost the race for the policy went to the slow path; let it finish.
    t.step();
    let out = t.take_tx(1);
    assert_eq!(out.len(), 600, "every first packet translated");
    let mut ext_of = std::collections::HashMap::new();
    for f in &out {
        let p = l3(f);
        assert!(p.verify_checksum());
        let u = udp::Packet::new_checked(p.payload()).unwrap();
        assert!(u.verify_checksum(p.src_addr(), p.dst_addr()));
        assert_eq!(p.src_addr(), ext());
        // The destination tells which inside socket this was only through the mapping, so
        // key by the external port: each must belong to exactly one inside socket, and each
        // inside socket must have exactly one external port (EIM).
        ext_of
            .entry(u.src_port())
            .or_insert_with(Vec::new)
            .push(p.dst_addr());
    }
    assert_eq!(ext_of.len(), 300, "one external port per inside socket");
    for (port, dsts) in &ext_of {
        let mut d = dsts.clone();
        d.sort();
        assert_eq!(d, vec![ip("203.0.113.7"), ip("203.0.113.8")], "port {port}");
    }
    let nat = t.control().nat().unwrap();
    assert_eq!(nat.counters.get(NatEvent::MappingsCreated), 300);
    assert_eq!(nat.session_count(), 600);
}

#[test]
fn a_failed_neighbour_costs_one_punt_per_retransmit_interval_not_one_per_packet() {
    let mut t = bed_with_server(NAT);
    start_resolving(&mut t);
    // No answer: requests at 1 s and 2 s, Failed at 3 s (defaults: 1 s, 3 requests).
    for _ in 0..4 {
        t.advance(Duration::from_secs(1));
    }
    let _ = t.take_tx(0);
    let _ = t.take_tx(1);
    assert!(t.control().neighbors().iter_failed().any(|a| a == fresh()));
    let to_fresh =
        |k: u16| Ip::udp_ports(client(), 30_000 + k % 500, fresh(), 9, 16).client_frame();
    let resolve = |t: &Testbed| {
        t.counters()
            .class_count(PuntClass::Resolve, ClassCounter::Accepted)
    };

    // 10 000 packets within one interval: one punt (answered with host unreachable), the
    // rest dropped and counted in the worker.
    let (p0, d0) = (resolve(&t), t.counters().dropped(DropReason::NeighFailed));
    let icmp0 = t.control().counters.get(ControlEvent::IcmpErrors);
    t.flood(0, (0..10_000u16).map(to_fresh));
    assert_eq!(resolve(&t) - p0, 1, "one punt for the interval");
    assert_eq!(
        t.counters().dropped(DropReason::NeighFailed) - d0,
        9_999,
        "the rest dropped by the worker"
    );
    assert_eq!(
        t.control().counters.get(ControlEvent::IcmpErrors) - icmp0,
        1
    );
    let unreach = t
        .take_tx(0)
        .iter()
        .filter(|f| {
            let e = ethernet::Frame::new_checked(&f[..]).unwrap();
            if e.ethertype() != EtherType::Ipv4 {
                return false;
            }
            let p = l3(f);
            let i = icmp_of(&p);
            i.msg_type() == icmpv4::Message::DstUnreachable && i.msg_code() == 1
        })
        .count();
    assert_eq!(unreach, 1, "ICMP host unreachable to the client");
    assert_eq!(t.take_tx(1).len(), 0, "no ARP request while Failed");

    // The next interval: one more punt.
    t.advance(Duration::from_millis(1001));
    let p1 = resolve(&t);
    t.flood(0, (0..1_000u16).map(to_fresh));
    assert_eq!(resolve(&t) - p1, 1);

    // The neighbour comes back (a late reply): the fast path reaches it again.
    t.push(1, &arp_reply_from_fresh());
    t.step();
    assert!(t.control().neighbors().iter_failed().all(|a| a != fresh()));
    let _ = t.take_tx(1);
    let d1 = t.counters().dropped(DropReason::NeighFailed);
    let p2 = resolve(&t);
    t.flood(0, (0..100u16).map(to_fresh));
    assert_eq!(released_to_fresh(&mut t), 100, "forwarded in the fast path");
    assert_eq!(resolve(&t), p2, "no punt once resolved");
    assert_eq!(t.counters().dropped(DropReason::NeighFailed), d1);
    assert_buffers_conserved(&t, DEFAULT_BUFFERS);
}
