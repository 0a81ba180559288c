//! NAT44 through the whole router over memory I/O: mapping, filtering, TCP hold, ICMP,
//! port forwards, hairpinning, fragments, exhaustion and expiry (RFC 4787/5382/5508/7857).
// Integration tests live at the crate root of their own test binary.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::{net::Ipv4Addr, time::Duration};

use common::*;
use xgw::{
    control::{frag, nat::NatEvent},
    dataplane::{DropReason, Event},
    nat::{
        flow::{proto, FlowKey},
        policy::reassembly::{ENTRY_COST, RANGE_COST},
    },
    runtime::testbed::{port_mac, Testbed},
    wire::{
        arp,
        ethernet::{self, EtherType},
        icmpv4::{self, dst_unreachable_code as code, Message},
        ipv4::{Packet, Protocol},
        tcp::{self, flags},
        udp,
    },
};

fn cfg(filtering: &str, ports: &str) -> String {
    format!(
        r#"
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
ports = "{ports}"
filtering = "{filtering}"
max_sessions = 1024
[[nat.forward]]
protocol = "tcp"
port = 8080
to = "198.18.0.2:80"
"#
    )
}

fn ext() -> Ipv4Addr {
    ip("198.19.0.1")
}

fn nat_bed(filtering: &str) -> Testbed {
    bed_with_server(&cfg(filtering, "1024-65535"))
}

/// Send `p` from the client and return the IPv4 frames that left on the outside port. The
/// server answers the router's ARP requests (re-validation after long idle periods).
fn out(t: &mut Testbed, p: &Ip) -> Vec<Vec<u8>> {
    t.push(0, &p.client_frame());
    t.step();
    let mut frames = Vec::new();
    for _ in 0..4 {
        let mut answered = false;
        for f in t.take_tx(1) {
            if ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == EtherType::Arp {
                let req = parse_arp(&f);
                let reply = arp_frame(
                    arp::Operation::Reply,
                    SERVER_MAC,
                    req.target_protocol_addr,
                    port_mac(1),
                    req.source_protocol_addr,
                    port_mac(1),
                );
                t.push(1, &reply);
                answered = true;
            } else {
                frames.push(f);
            }
        }
        if !answered {
            break;
        }
        t.step();
    }
    frames
}

/// Send `p` from the outside (via the server's MAC) and return what reached the inside.
fn inbound(t: &mut Testbed, p: &Ip) -> Vec<Vec<u8>> {
    t.push(1, &server_frame(&p.bytes()));
    t.step();
    t.take_tx(0)
}

fn udp_ports(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = l3(f);
    let u = udp::Packet::new_checked(p.payload()).unwrap();
    assert!(
        u.verify_checksum(p.src_addr(), p.dst_addr()),
        "UDP checksum"
    );
    (p.src_addr(), u.src_port(), p.dst_addr(), u.dst_port())
}

fn tcp_of(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16, u8) {
    let p = l3(f);
    let t = tcp::Packet::new_checked(p.payload()).unwrap();
    assert!(
        t.verify_checksum(p.src_addr(), p.dst_addr()),
        "TCP checksum"
    );
    (
        p.src_addr(),
        t.src_port(),
        p.dst_addr(),
        t.dst_port(),
        t.flags(),
    )
}

#[test]
fn udp_round_trip_preserves_port_and_restores_bytes() {
    let mut t = nat_bed("address-dependent");
    let remote = ip("203.0.113.7");
    let o = out(&mut t, &Ip::udp_ports(client(), 40010, remote, 5000, 64));
    assert_eq!(o.len(), 1);
    assert_eq!(
        udp_ports(&o[0]),
        (ext(), 40010, remote, 5000),
        "source translated, port preserved"
    );
    let reply = Ip::udp_ports(remote, 5000, ext(), 40010, 32);
    let i = inbound(&mut t, &reply);
    assert_eq!(i.len(), 1);
    assert_eq!(
        ethernet::Frame::new_checked(&i[0][..]).unwrap().dst_addr(),
        CLIENT_MAC
    );
    // Byte-exact: the reply as the client would expect it, TTL decremented once.
    let mut want = Ip::udp_ports(remote, 5000, client(), 40010, 32).bytes();
    let mut w = Packet::new_unchecked(&mut want[..]);
    w.set_ttl(63);
    w.fill_checksum();
    assert_eq!(&i[0][ethernet::HEADER_LEN..], &want[..]);
    // Established flows stay on the fast path.
    let before = t.counters();
    out(&mut t, &Ip::udp_ports(client(), 40010, remote, 5000, 64));
    inbound(&mut t, &reply);
    let after = t.counters();
    assert_eq!(
        after.events(Event::NatIn2Out),
        before.events(Event::NatIn2Out) + 1
    );
    assert_eq!(
        after.events(Event::NatOut2In),
        before.events(Event::NatOut2In) + 1
    );
}

#[test]
fn endpoint_independent_mapping() {
    let mut t = nat_bed("address-dependent");
    let a = out(
        &mut t,
        &Ip::udp_ports(client(), 40020, ip("203.0.113.7"), 5000, 8),
    );
    let b = out(
        &mut t,
        &Ip::udp_ports(client(), 40020, ip("203.0.113.8"), 6000, 8),
    );
    let (sa, pa, ..) = udp_ports(&a[0]);
    let (sb, pb, ..) = udp_ports(&b[0]);
    assert_eq!(
        (sa, pa),
        (sb, pb),
        "one external endpoint for one internal socket"
    );
    let nat = t.control().nat().unwrap();
    assert_eq!(
        nat.counters.get(NatEvent::MappingsCreated),
        2,
        "the server flow and this one"
    );
}

#[test]
fn filtering_modes_admit_what_they_should() {
    // (mode, same address other port admitted, other address admitted)
    for (mode, port_ok, addr_ok) in [
        ("endpoint-independent", true, true),
        ("address-dependent", true, false),
        ("address-and-port-dependent", false, false),
    ] {
        let mut t = nat_bed(mode);
        let r = ip("203.0.113.7");
        out(&mut t, &Ip::udp_ports(client(), 40030, r, 5000, 8));
        let same = inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), 40030, 8));
        assert_eq!(same.len(), 1, "{mode}: the contacted endpoint");
        let other_port = inbound(&mut t, &Ip::udp_ports(r, 6000, ext(), 40030, 8));
        assert_eq!(
            other_port.len(),
            usize::from(port_ok),
            "{mode}: same address, other port"
        );
        let other_addr = inbound(
            &mut t,
            &Ip::udp_ports(ip("203.0.113.8"), 5000, ext(), 40030, 8),
        );
        assert_eq!(
            other_addr.len(),
            usize::from(addr_ok),
            "{mode}: other address"
        );
        if !addr_ok {
            assert!(t.control().nat().unwrap().counters.get(NatEvent::Filtered) >= 1);
        }
    }
}

#[test]
fn unsolicited_inbound_never_reaches_inside_and_held_syn_gets_port_unreachable() {
    let mut t = nat_bed("endpoint-independent");
    let r = ip("203.0.113.9");
    assert!(inbound(&mut t, &Ip::udp_ports(r, 1234, ext(), 4444, 8)).is_empty());
    assert!(inbound(&mut t, &Ip::tcp(r, 1234, ext(), 5555, flags::SYN)).is_empty());
    assert!(t.take_tx(1).is_empty(), "RFC 5382 REQ-4: no answer for 6 s");
    t.advance(Duration::from_secs(5));
    assert!(t.take_tx(1).is_empty());
    t.advance(Duration::from_secs(2));
    let icmp = t.take_tx(1);
    assert_eq!(icmp.len(), 1, "port unreachable after the hold");
    let p = l3(&icmp[0]);
    assert_eq!(p.dst_addr(), r);
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (Message::DstUnreachable, code::PORT)
    );
    let nat = t.control().nat().unwrap();
    assert_eq!(nat.counters.get(NatEvent::SynHeld), 1);
    assert_eq!(nat.counters.get(NatEvent::SynHoldRefused), 1);
}

#[test]
fn simultaneous_open_supersedes_the_held_syn() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.9");
    // The peer's SYN arrives first (hole punching), then ours.
    assert!(inbound(&mut t, &Ip::tcp(r, 7000, ext(), 40040, flags::SYN)).is_empty());
    let o = out(&mut t, &Ip::tcp(client(), 40040, r, 7000, flags::SYN));
    assert_eq!(tcp_of(&o[0]), (ext(), 40040, r, 7000, flags::SYN));
    // The peer's retransmitted SYN now passes, and SYN-ACK/ACK establish.
    let i = inbound(
        &mut t,
        &Ip::tcp(r, 7000, ext(), 40040, flags::SYN | flags::ACK),
    );
    assert_eq!(
        tcp_of(&i[0]),
        (r, 7000, client(), 40040, flags::SYN | flags::ACK)
    );
    t.advance(Duration::from_secs(7));
    assert!(t.take_tx(1).is_empty(), "no ICMP for the superseded SYN");
    assert_eq!(
        t.control()
            .nat()
            .unwrap()
            .counters
            .get(NatEvent::SynHoldDropped),
        1
    );
    // Data flows on the fast path.
    let o = out(&mut t, &Ip::tcp(client(), 40040, r, 7000, flags::ACK));
    assert_eq!(o.len(), 1);
}

#[test]
fn icmp_echo_identifier_is_translated_and_replies_return() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let o = out(&mut t, &Ip::echo(client(), r, 1));
    assert_eq!(o.len(), 1);
    let p = l3(&o[0]);
    assert_eq!(p.src_addr(), ext());
    let req = icmp_of(&p);
    let id = req.echo_ident();
    let reply = icmpv4::Repr::EchoReply {
        ident: id,
        seq_no: 1,
        data: b"xgw-ping-payload",
    };
    let mut payload = vec![0u8; reply.buffer_len()];
    reply.emit(&mut icmpv4::Packet::new_unchecked(&mut payload[..]));
    let back = Ip {
        src: r,
        dst: ext(),
        ttl: 64,
        df: false,
        proto: Protocol::Icmp,
        payload,
    };
    let i = inbound(&mut t, &back);
    assert_eq!(i.len(), 1);
    let p = l3(&i[0]);
    assert_eq!(p.dst_addr(), client());
    assert_eq!(
        icmp_of(&p).echo_ident(),
        0x77,
        "the client's own identifier"
    );
}

#[test]
fn icmp_error_from_outside_is_translated_with_valid_checksums() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let sent = out(&mut t, &Ip::udp_ports(client(), 40050, r, 33434, 12));
    let quoted = &sent[0][ethernet::HEADER_LEN..];
    // An outside router's Time Exceeded about the translated packet, to the external address.
    let te = icmpv4::Repr::TimeExceeded {
        code: 0,
        quote: quoted,
    };
    let mut payload = vec![0u8; te.buffer_len()];
    te.emit(&mut icmpv4::Packet::new_unchecked(&mut payload[..]));
    let err = Ip {
        src: ip("198.19.0.2"),
        dst: ext(),
        ttl: 64,
        df: false,
        proto: Protocol::Icmp,
        payload,
    };
    let i = inbound(&mut t, &err);
    assert_eq!(i.len(), 1, "RFC 5508 REQ-4: delivered to the inside host");
    let p = l3(&i[0]);
    assert_eq!((p.src_addr(), p.dst_addr()), (ip("198.19.0.2"), client()));
    let icmp = icmp_of(&p);
    assert_eq!(icmp.msg_type(), Message::TimeExceeded);
    let inner = Packet::new_checked(icmp.data()).unwrap();
    assert!(inner.verify_checksum(), "embedded IP checksum");
    assert_eq!((inner.src_addr(), inner.dst_addr()), (client(), r));
    let u = udp::Packet::new_unchecked(inner.payload());
    assert_eq!((u.src_port(), u.dst_port()), (40050, 33434));
    assert!(u.verify_checksum(client(), r), "embedded UDP checksum");
    // An error about nothing we translated is dropped.
    let stray = Ip::udp_ports(ext(), 1, r, 2, 4).bytes();
    let te = icmpv4::Repr::TimeExceeded {
        code: 0,
        quote: &stray,
    };
    let mut payload = vec![0u8; te.buffer_len()];
    te.emit(&mut icmpv4::Packet::new_unchecked(&mut payload[..]));
    let err = Ip {
        src: ip("198.19.0.2"),
        dst: ext(),
        ttl: 64,
        df: false,
        proto: Protocol::Icmp,
        payload,
    };
    assert!(inbound(&mut t, &err).is_empty());
}

#[test]
fn port_forward_and_hairpin_through_it() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let i = inbound(&mut t, &Ip::tcp(r, 3333, ext(), 8080, flags::SYN));
    assert_eq!(i.len(), 1, "static forward reachable from outside");
    assert_eq!(tcp_of(&i[0]), (r, 3333, client(), 80, flags::SYN));
    // The inside server's answer leaves from the forwarded external port.
    let o = out(
        &mut t,
        &Ip::tcp(client(), 80, r, 3333, flags::SYN | flags::ACK),
    );
    assert_eq!(
        tcp_of(&o[0]),
        (ext(), 8080, r, 3333, flags::SYN | flags::ACK)
    );
    // Hairpin (RFC 4787 REQ-9): another inside host uses the external address.
    let other = ip("198.18.0.3");
    let hp = Ip::tcp(other, 4444, ext(), 8080, flags::SYN);
    t.push(
        0,
        &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &hp.bytes()),
    );
    t.step();
    let h = t.take_tx(0);
    assert_eq!(h.len(), 1);
    assert_eq!(
        tcp_of(&h[0]),
        (ext(), 4444, client(), 80, flags::SYN),
        "the target sees the external address and port (REQ-9a)"
    );
    assert_eq!(
        t.control()
            .nat()
            .unwrap()
            .counters
            .get(NatEvent::Hairpinned),
        1
    );
}

/// An ICMP error frame's outer (source, destination), ICMP (type, code) and its quoted
/// packet's (src, sport, dst, dport), with the outer, ICMP and quoted IP checksums checked.
type Quote = (Ipv4Addr, Ipv4Addr, (u8, u8), (Ipv4Addr, u16, Ipv4Addr, u16));

fn quoted(f: &[u8]) -> Quote {
    let p = l3(f);
    assert!(p.verify_checksum());
    let i = icmp_of(&p);
    assert!(i.verify_checksum(), "ICMP checksum");
    let q = Packet::new_checked(i.data()).unwrap();
    assert!(q.verify_checksum(), "quoted IP checksum");
    let u = &q.payload()[..4];
    (
        p.src_addr(),
        p.dst_addr(),
        (u8::from(i.msg_type()), i.msg_code()),
        (
            q.src_addr(),
            u16::from_be_bytes([u[0], u[1]]),
            q.dst_addr(),
            u16::from_be_bytes([u[2], u[3]]),
        ),
    )
}

/// [`quoted`]: outer addresses and the quoted endpoints.
fn quoted_tcp(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, (Ipv4Addr, u16, Ipv4Addr, u16)) {
    let (src, dst, _, q) = quoted(f);
    (src, dst, q)
}

/// Hairpinned ICMP errors are delivered both ways (RFC 5508 REQ-7, RFC 7857 §12): each
/// inside host sees the error from the external endpoint it knows the other by, quoting the
/// packet as it sent it, with valid checksums.
#[test]
fn hairpinned_icmp_errors_are_delivered_both_ways() {
    use xgw::control::icmp::{build_error, IcmpError};
    let mut t = nat_bed("address-dependent");
    let a = ip("198.18.0.3");
    // Let the router learn A (an ARP request from it).
    t.push(
        0,
        &arp_frame(
            arp::Operation::Request,
            CLIENT_MAC,
            a,
            ethernet::MacAddr([0; 6]),
            ip("198.18.0.1"),
            ethernet::MacAddr::BROADCAST,
        ),
    );
    t.step();
    t.take_tx(0);
    // A -> ext:8080 (the forward to the client, B) is hairpinned to B as ext:4444 -> B:80.
    let hp = Ip::tcp(a, 4444, ext(), 8080, flags::SYN);
    t.push(
        0,
        &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &hp.bytes()),
    );
    t.step();
    let at_b = t.take_tx(0);
    assert_eq!(tcp_of(&at_b[0]), (ext(), 4444, client(), 80, flags::SYN));
    // B reports an error about it (as B received it).
    let unreach = IcmpError::Unreachable {
        code: code::PORT,
        mtu: 0,
    };
    let err = build_error(unreach, &at_b[0][ethernet::HEADER_LEN..], client(), 1).unwrap();
    t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &err));
    t.step();
    let to_a = t.take_tx(0);
    assert_eq!(to_a.len(), 1, "delivered to A");
    assert_eq!(
        quoted_tcp(&to_a[0]),
        (ext(), a, (a, 4444, ext(), 8080)),
        "A sees it from B's external endpoint, quoting what A sent"
    );
    // B answers A through the hairpin; A reports an error about that packet.
    let reply = Ip::tcp(client(), 80, ext(), 4444, flags::SYN | flags::ACK);
    t.push(
        0,
        &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &reply.bytes()),
    );
    t.step();
    let at_a = t.take_tx(0);
    assert_eq!(
        tcp_of(&at_a[0]),
        (ext(), 8080, a, 4444, flags::SYN | flags::ACK)
    );
    let err = build_error(unreach, &at_a[0][ethernet::HEADER_LEN..], a, 2).unwrap();
    t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &err));
    t.step();
    let to_b = t.take_tx(0);
    assert_eq!(to_b.len(), 1, "delivered to B");
    assert_eq!(
        quoted_tcp(&to_b[0]),
        (ext(), client(), (client(), 80, ext(), 4444)),
        "B sees it from A's external endpoint, quoting what B sent"
    );
    assert_eq!(
        t.control()
            .nat()
            .unwrap()
            .counters
            .get(NatEvent::IcmpErrorsTranslated),
        2
    );
}

#[test]
fn fragments_are_translated_in_any_order() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let mut dgram = Ip::udp_ports(client(), 40060, r, 5000, 3000)
        .df(false)
        .bytes();
    Packet::new_unchecked(&mut dgram[..]).fill_checksum();
    let frags = frag::fragment(&dgram, 1200).unwrap();
    assert_eq!(frags.len(), 3);
    for f in frags.iter().rev() {
        t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, f));
    }
    t.step();
    let o = t.take_tx(1);
    assert_eq!(
        o.len(),
        3,
        "held until the first fragment, then all translated"
    );
    let mut by_off: Vec<(u16, Vec<u8>)> = o
        .iter()
        .map(|f| {
            let p = l3(f);
            assert_eq!((p.src_addr(), p.dst_addr()), (ext(), r));
            (p.frag_offset(), p.payload().to_vec())
        })
        .collect();
    by_off.sort();
    let data: Vec<u8> = by_off.into_iter().flat_map(|(_, d)| d).collect();
    let u = udp::Packet::new_checked(&data[..]).unwrap();
    assert_eq!(u.src_port(), 40060);
    assert!(
        u.verify_checksum(ext(), r),
        "the reassembled datagram's checksum is valid"
    );
}

/// With two workers, the fragments the slow path releases (held until the first arrived)
/// all leave through one worker, in order, never spread one by one (RFC 4787 REQ-13a).
#[test]
fn slow_path_fragments_leave_from_one_worker() {
    let mut t = Testbed::with_workers(&cfg("address-dependent", "1024-65535"), 2);
    // Resolve the server first (its ARP reply), through worker 0.
    t.push(
        0,
        &Ip::udp_ports(client(), 40090, ip("203.0.113.7"), 5000, 8).client_frame(),
    );
    t.step();
    t.take_tx(1);
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
    t.take_tx(1);
    for id in 0..8u16 {
        let mut dgram = Ip::udp_ports(client(), 40091 + id, ip("203.0.113.7"), 5000, 5000)
            .df(false)
            .bytes();
        Packet::new_unchecked(&mut dgram[..]).set_ident(0x6000 + id);
        Packet::new_unchecked(&mut dgram[..]).fill_checksum();
        let frags = frag::fragment(&dgram, 1200).unwrap();
        for f in frags.iter().rev() {
            t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, f));
        }
        t.step();
        let per_worker: Vec<Vec<Vec<u8>>> = (0..2).map(|w| t.workers[w].io.take_tx(1)).collect();
        let busy: Vec<usize> = per_worker.iter().map(Vec::len).collect();
        assert!(
            busy == [5, 0] || busy == [0, 5],
            "datagram {id}: fragments per worker {busy:?}"
        );
        let sent = per_worker.concat();
        let mut offsets: Vec<u16> = sent.iter().map(|f| l3(f).frag_offset()).collect();
        assert_eq!(
            offsets[0], 0,
            "the first fragment, then the held ones: {offsets:?}"
        );
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), 5, "each fragment once");
    }
}

/// An overlapping fragment (RFC 1858 / RFC 3128) drops its datagram: nothing of it passes
/// after the overlap, and a later clean datagram is translated as usual.
#[test]
fn overlapping_fragments_drop_the_datagram() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let mut dgram = Ip::udp_ports(client(), 40061, r, 5000, 3000)
        .df(false)
        .bytes();
    Packet::new_unchecked(&mut dgram[..]).fill_checksum();
    let frags = frag::fragment(&dgram, 1200).unwrap();
    let send = |t: &mut Testbed, f: &[u8]| {
        t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, f));
        t.step();
        t.take_tx(1).len()
    };
    assert_eq!(send(&mut t, &frags[0]), 1, "the first fragment passes");
    // A second fragment that rewrites bytes 8..1184 of the first.
    let mut evil = frags[1].clone();
    Packet::new_unchecked(&mut evil[..]).set_frag_offset(8);
    Packet::new_unchecked(&mut evil[..]).fill_checksum();
    assert_eq!(send(&mut t, &evil), 0, "overlap dropped");
    assert_eq!(send(&mut t, &frags[1]), 0, "the rest of the datagram too");
    assert_eq!(send(&mut t, &frags[2]), 0);
    {
        let nat = t.control().nat().unwrap();
        assert_eq!(nat.counters.get(NatEvent::FragmentsOverlap), 3);
    }
    // A retransmitted, identical copy of a passed fragment is dropped alone.
    let mut other = Ip::udp_ports(client(), 40062, r, 5000, 3000)
        .df(false)
        .bytes();
    Packet::new_unchecked(&mut other[..]).set_ident(0x5151);
    Packet::new_unchecked(&mut other[..]).fill_checksum();
    let frags = frag::fragment(&other, 1200).unwrap();
    assert_eq!(send(&mut t, &frags[0]), 1);
    assert_eq!(send(&mut t, &frags[0]), 0, "duplicate");
    assert_eq!(send(&mut t, &frags[1]), 1);
    assert_eq!(send(&mut t, &frags[2]), 1);
    let nat = t.control().nat().unwrap();
    assert_eq!(nat.counters.get(NatEvent::FragmentsDuplicate), 1);
    assert_eq!(
        nat.reassembly_bytes(),
        ENTRY_COST + RANGE_COST,
        "a complete datagram is forgotten; the poisoned one is remembered until it times out"
    );
    drop(nat);
    t.advance(Duration::from_secs(3));
    assert_eq!(t.control().nat().unwrap().reassembly_bytes(), 0);
}

/// A flood of fragments whose first fragment never comes, from many (spoofed) sources, keeps
/// virtual reassembly within its byte budget; the held ones are evicted and counted, and a
/// real fragmented datagram still gets through during the flood.
#[test]
fn fragment_flood_stays_within_the_reassembly_budget() {
    let cfg = cfg("endpoint-independent", "1024-65535").replace(
        "max_sessions = 1024",
        "max_sessions = 1024\nreassembly_bytes = 262144",
    ) + "[punt.fragment]\nrate = 100000000\nburst = 1000000\nqueue = 65536\n";
    let mut t = bed_with_server(&cfg);
    let r = ip("203.0.113.7");
    // The inside client opens a mapping that the remote will answer with fragments.
    let first = out(&mut t, &Ip::udp_ports(client(), 40063, r, 5000, 8));
    let eport = udp_ports(&first[0]).1;
    let mut frames = Vec::new();
    for i in 0..20_000u32 {
        let src = Ipv4Addr::new(203, 0, 113, (i % 200) as u8 + 1);
        let mut d = Ip::udp_ports(src, 7000, ext(), 9, 2000).df(false).bytes();
        Packet::new_unchecked(&mut d[..]).set_ident((i / 200) as u16);
        Packet::new_unchecked(&mut d[..]).fill_checksum();
        let fr = frag::fragment(&d, 1200).unwrap();
        frames.push(server_frame(&fr[1]));
    }
    t.flood(1, frames);
    {
        let nat = t.control().nat().unwrap();
        assert!(
            nat.reassembly_bytes() <= 262_144,
            "{}",
            nat.reassembly_bytes()
        );
        let held = nat.counters.get(NatEvent::FragmentsHeld);
        let dropped = nat.counters.get(NatEvent::FragmentsDropped);
        let refused = nat.counters.get(NatEvent::FragmentsOverBudget);
        assert_eq!(held + refused, 20_000, "every fragment accounted for");
        // What is still held fits the budget (each fragment is 852 bytes).
        assert!(
            held - dropped <= 262_144 / 852,
            "held {held}, evicted {dropped}"
        );
    }
    // The real answer, fragmented, in reverse order.
    let mut d = Ip::udp_ports(r, 5000, ext(), eport, 3000).df(false).bytes();
    Packet::new_unchecked(&mut d[..]).set_ident(0x7777);
    Packet::new_unchecked(&mut d[..]).fill_checksum();
    for f in frag::fragment(&d, 1200).unwrap().iter().rev() {
        t.push(1, &server_frame(f));
    }
    t.step();
    assert_eq!(t.take_tx(0).len(), 3, "delivered inside during the flood");
    t.advance(Duration::from_secs(3));
    t.step();
    assert_eq!(t.control().nat().unwrap().reassembly_bytes(), 0);
}

/// `max_sessions_per_host` through the whole router (RFC 6888 REQ-4/5): the inside host's
/// next flow is refused with ICMP 3/13 back to it, another host's flow still passes.
#[test]
fn per_host_session_limit_answers_icmp_13() {
    let cfg = cfg("address-dependent", "1024-65535").replace(
        "max_sessions = 1024",
        "max_sessions = 1024\nmax_sessions_per_host = 2",
    );
    let mut t = bed_with_server(&cfg);
    let r = ip("203.0.113.7");
    // The testbed's own first flow is the client's first session.
    assert_eq!(
        out(&mut t, &Ip::udp_ports(client(), 40081, r, 5000, 8)).len(),
        1
    );
    assert!(out(&mut t, &Ip::udp_ports(client(), 40082, r, 5000, 8)).is_empty());
    let icmp = t.take_tx(0);
    assert_eq!(icmp.len(), 1, "ICMP back to the inside host");
    let p = l3(&icmp[0]);
    assert_eq!(p.dst_addr(), client());
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (Message::DstUnreachable, code::ADMIN_PROHIBITED)
    );
    let other = ip("198.18.0.9");
    assert_eq!(
        out(&mut t, &Ip::udp_ports(other, 40083, r, 5000, 8)).len(),
        1
    );
    let nat = t.control().nat().unwrap();
    assert_eq!(nat.counters.get(NatEvent::HostLimit), 1);
    assert_eq!(nat.host_sessions(client()), 2);
}

/// `[nat] inbound`: a packet that arrives on the outside port addressed straight to an inside
/// host (not to the external address) is dropped by default and routed in with "route";
/// transit that leaves by the outside port again is not affected either way.
#[test]
fn inbound_to_inside_prefixes_is_dropped_or_routed() {
    for (mode, delivered) in [
        ("", false),
        ("inbound = \"drop\"\n", false),
        ("inbound = \"route\"\n", true),
    ] {
        let cfg = cfg("endpoint-independent", "1024-65535").replace(
            "max_sessions = 1024\n",
            &format!("max_sessions = 1024\n{mode}"),
        );
        let mut t = bed_with_server(&cfg);
        t.take_tx(0);
        let before = t.counters().dropped(DropReason::NatInboundRefused);
        let direct = Ip::udp_ports(ip("203.0.113.7"), 5000, client(), 7000, 8).bytes();
        t.push(1, &server_frame(&direct));
        t.step();
        let inside = t.take_tx(0);
        let ipv4: Vec<_> = inside
            .iter()
            .filter(|f| {
                ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == EtherType::Ipv4
            })
            .collect();
        assert_eq!(!ipv4.is_empty(), delivered, "{mode:?}");
        if delivered {
            let p = l3(ipv4[0]);
            assert_eq!(
                (p.src_addr(), p.dst_addr()),
                (ip("203.0.113.7"), client()),
                "untranslated"
            );
        }
        let refused = t.counters().dropped(DropReason::NatInboundRefused) - before;
        assert_eq!(refused, u64::from(!delivered), "{mode:?}");
    }
}

#[test]
fn exhaustion_drops_with_icmp_13_and_never_evicts() {
    let mut t = bed_with_server(&cfg("address-dependent", "2000-2001"));
    // The testbed's own first flow (port 40000, even) took 2000.
    let r = ip("203.0.113.7");
    let a = out(&mut t, &Ip::udp_ports(client(), 40071, r, 5000, 8));
    assert_eq!(udp_ports(&a[0]).1, 2001, "odd keeps odd");
    let b = out(&mut t, &Ip::udp_ports(client(), 40072, r, 5000, 8));
    assert!(b.is_empty(), "no port left: no overloading");
    let icmp = t.take_tx(0);
    assert_eq!(icmp.len(), 1);
    let p = l3(&icmp[0]);
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (Message::DstUnreachable, code::ADMIN_PROHIBITED)
    );
    // The live mapping still works.
    let again = out(&mut t, &Ip::udp_ports(client(), 40071, r, 5000, 8));
    assert_eq!(udp_ports(&again[0]).1, 2001);
    assert_eq!(
        t.control()
            .nat()
            .unwrap()
            .counters
            .get(NatEvent::PortsExhausted),
        1
    );
}

#[test]
fn idle_sessions_expire_and_ports_are_quarantined() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let sessions = |t: &Testbed| t.control().nat().unwrap().session_count();
    let key = FlowKey {
        src: client(),
        sport: 40080,
        dst: r,
        dport: 5000,
        proto: proto::UDP,
    };
    out(&mut t, &Ip::udp_ports(client(), 40080, r, 5000, 8));
    assert!(t.control().nat().unwrap().find(&key).is_some());
    // Outbound refresh (RFC 4787 REQ-6) keeps it past the 300 s UDP timeout...
    for _ in 0..4 {
        t.advance(Duration::from_secs(100));
        out(&mut t, &Ip::udp_ports(client(), 40080, r, 5000, 8));
    }
    assert!(t.control().nat().unwrap().find(&key).is_some());
    assert_eq!(
        sessions(&t),
        1,
        "the testbed's unrefreshed first flow expired"
    );
    // ...silence expires it (and the testbed's first flow too).
    t.advance(Duration::from_secs(301));
    assert_eq!(sessions(&t), 0);
    // RFC 6888 REQ-8: the freed port is not reused within 120 s.
    let o = out(&mut t, &Ip::udp_ports(client(), 40080, r, 5000, 8));
    let p1 = udp_ports(&o[0]).1;
    assert_ne!(p1, 40080);
    assert_eq!(p1 % 2, 0, "parity kept");
    t.advance(Duration::from_secs(301));
    t.advance(Duration::from_secs(121));
    let o = out(&mut t, &Ip::udp_ports(client(), 40080, r, 5000, 8));
    assert_eq!(
        udp_ports(&o[0]).1,
        40080,
        "preserved again after the quarantine"
    );
}

#[test]
fn ttl_expiry_and_frag_needed_go_to_the_inside_host() {
    let mut t = bed_with_server(
        &format!("{}\n", cfg("address-dependent", "1024-65535")).replace(
            "address = \"198.19.0.1/24\"\n",
            "address = \"198.19.0.1/24\"\nmtu = 1400\n",
        ),
    );
    let r = ip("203.0.113.7");
    let o = out(&mut t, &Ip::udp_ports(client(), 40090, r, 5000, 8).ttl(1));
    assert!(o.is_empty());
    let e = t.take_tx(0);
    assert_eq!(e.len(), 1);
    assert_eq!(l3(&e[0]).dst_addr(), client());
    let big = Ip::udp_ports(client(), 40091, r, 5000, 1450);
    assert!(out(&mut t, &big).is_empty());
    let e = t.take_tx(0);
    assert_eq!(
        e.len(),
        1,
        "RFC 4787 REQ-13: frag needed to the internal host"
    );
    let p = l3(&e[0]);
    assert_eq!(p.dst_addr(), client());
    let i = icmp_of(&p);
    assert_eq!((i.msg_code(), i.next_hop_mtu()), (code::FRAG_NEEDED, 1400));
}

#[test]
fn session_memory_per_entry() {
    let mut t = bed_with_server(
        &cfg("address-dependent", "1024-65535")
            // One inside host opens them all.
            .replace(
                "max_sessions = 1024",
                "max_sessions = 32768\nmax_sessions_per_host = 32768",
            ),
    );
    let r = ip("203.0.113.7");
    for port in 20_000..40_000u16 {
        t.push(0, &Ip::udp_ports(client(), port, r, 5000, 8).client_frame());
        if port % 64 == 0 {
            // 64 flows per virtual millisecond: under the [punt.nat] policer's rate (all at
            // one instant, only its burst would be admitted).
            t.advance(Duration::from_millis(1));
            t.take_tx(1);
        }
    }
    t.step();
    let nat = t.control().nat().unwrap();
    let live = nat.session_count();
    assert!(live >= 20_000, "{live} sessions");
    let (total, capacity) = nat.memory();
    let table = nat.table_memory();
    let per_slot = table as f64 / f64::from(capacity);
    let per_live = total as f64 / live as f64;
    println!(
        "session table: {table} B for {capacity} slots = {per_slot:.1} B/session; \
         with mappings, filters and port bitmaps: {per_live:.1} B per live session ({live})"
    );
    assert!(per_slot <= 128.0, "{per_slot} B per session");
}

#[test]
fn own_external_address_as_source_is_dropped_not_translated() {
    let mut t = nat_bed("endpoint-independent");
    let r = ip("203.0.113.7");
    // An inside host spoofing the external address, then the "reply": neither crashes the
    // router nor creates a session.
    let spoof = Ip::udp_ports(ext(), 40100, r, 5000, 8);
    t.push(
        0,
        &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &spoof.bytes()),
    );
    t.step();
    assert!(t.take_tx(1).is_empty());
    assert!(inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), 40100, 8)).is_empty());
    let key = FlowKey {
        src: ext(),
        sport: 40100,
        dst: r,
        dport: 5000,
        proto: proto::UDP,
    };
    assert!(t.control().nat().unwrap().find(&key).is_none());
}

#[test]
fn oversized_packet_before_arp_resolution_leaves_translated() {
    // The outside MTU is smaller and the next hop not yet resolved: the fragments that
    // finally leave must carry the external address, never the inside one.
    let cfg = cfg("address-dependent", "1024-65535").replace(
        "address = \"198.19.0.1/24\"\n",
        "address = \"198.19.0.1/24\"\nmtu = 1400\n",
    );
    let mut t = bed(&cfg);
    let r = ip("203.0.113.7");
    t.push(
        0,
        &Ip::udp_ports(client(), 40110, r, 5000, 1450)
            .df(false)
            .client_frame(),
    );
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "an ARP request for the gateway");
    let a = parse_arp(&req[0]);
    t.push(
        1,
        &arp_frame(
            arp::Operation::Reply,
            SERVER_MAC,
            a.target_protocol_addr,
            port_mac(1),
            a.source_protocol_addr,
            port_mac(1),
        ),
    );
    t.step();
    let frags = t.take_tx(1);
    assert_eq!(frags.len(), 2);
    for f in &frags {
        let p = l3(f);
        assert_eq!(p.src_addr(), ext(), "translated before leaving");
        assert!(f.len() - ethernet::HEADER_LEN <= 1400);
    }
}

#[test]
fn inbound_too_big_gets_frag_needed_quoting_what_the_sender_sent() {
    let cfg = cfg("address-dependent", "1024-65535").replace(
        "address = \"198.18.0.1/24\"\n",
        "address = \"198.18.0.1/24\"\nmtu = 1400\n",
    );
    let mut t = bed_with_server(&cfg);
    let r = ip("203.0.113.7");
    out(&mut t, &Ip::udp_ports(client(), 40120, r, 5000, 8));
    assert!(inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), 40120, 1450)).is_empty());
    let e = t.take_tx(1);
    assert_eq!(e.len(), 1);
    let p = l3(&e[0]);
    assert_eq!(p.dst_addr(), r);
    let i = icmp_of(&p);
    assert_eq!((i.msg_code(), i.next_hop_mtu()), (code::FRAG_NEEDED, 1400));
    let quoted = Packet::new_unchecked(i.data()); // cut to fit 576 bytes
    assert_eq!(
        quoted.dst_addr(),
        ext(),
        "the quote is the untranslated packet (PMTUD works)"
    );
}

#[test]
fn ttl_one_ping_to_the_external_address_is_answered() {
    let mut t = nat_bed("address-dependent");
    let r = ip("203.0.113.7");
    let i = {
        t.push(1, &server_frame(&Ip::echo(r, ext(), 1).ttl(1).bytes()));
        t.step();
        t.take_tx(1)
    };
    assert_eq!(i.len(), 1);
    let p = l3(&i[0]);
    assert_eq!(icmp_of(&p).msg_type(), Message::EchoReply);
    assert_eq!(p.src_addr(), ext());
}

#[test]
fn host_unreachable_for_a_translated_packet_reaches_the_inside_host() {
    let cfg = cfg("address-dependent", "1024-65535");
    let mut t = bed(&cfg);
    let r = ip("203.0.113.7");
    // The gateway (198.19.0.2) never answers ARP.
    t.push(
        0,
        &Ip::udp_ports(client(), 40130, r, 5000, 8).client_frame(),
    );
    t.step();
    let mut errors = Vec::new();
    for _ in 0..10 {
        t.advance(Duration::from_millis(500));
        t.take_tx(1);
        errors.extend(t.take_tx(0));
    }
    assert_eq!(errors.len(), 1, "host unreachable");
    let p = l3(&errors[0]);
    assert_eq!(p.dst_addr(), client());
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (Message::DstUnreachable, code::HOST)
    );
    let quoted = Packet::new_checked(i.data()).unwrap();
    assert_eq!(
        quoted.src_addr(),
        client(),
        "the quote is the inside host's own packet"
    );
}

/// [`quoted`]: the ICMP (type, code) and the quoted endpoints.
fn quoted_udp(f: &[u8]) -> ((u8, u8), (Ipv4Addr, u16, Ipv4Addr, u16)) {
    let (_, _, kind, q) = quoted(f);
    (kind, q)
}

/// ICMP errors about a packet translated inbound (a port forward's first packet) quote what
/// the outside sender sent, never the inside address and port: time exceeded for TTL 1, and
/// host unreachable for a forward target that does not answer ARP.
#[test]
fn errors_after_inbound_translation_quote_the_external_endpoint() {
    let cfg = cfg("address-dependent", "1024-65535")
        + "[[nat.forward]]\nprotocol = \"udp\"\nport = 9000\nto = \"198.18.0.3:53\"\n";
    let mut t = bed_with_server(&cfg);
    let r = ip("203.0.113.7");
    // TTL 1 through the forward (its first packet, made on the slow path).
    assert!(inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), 9000, 8).ttl(1)).is_empty());
    let e = t.take_tx(1);
    assert_eq!(e.len(), 1);
    assert_eq!(l3(&e[0]).dst_addr(), r);
    assert_eq!(quoted_udp(&e[0]), ((11, 0), (r, 5000, ext(), 9000)));
    // The target is switched off: host unreachable once ARP gives up.
    t.push(
        1,
        &server_frame(&Ip::udp_ports(r, 5001, ext(), 9000, 8).bytes()),
    );
    t.step();
    let mut errors = Vec::new();
    for _ in 0..10 {
        t.advance(Duration::from_millis(500));
        t.take_tx(0); // ARP requests for 198.18.0.3
        errors.extend(t.take_tx(1).into_iter().filter(|f| {
            ethernet::Frame::new_checked(&f[..]).unwrap().ethertype() == EtherType::Ipv4
        }));
    }
    assert_eq!(errors.len(), 1, "host unreachable");
    assert_eq!(l3(&errors[0]).dst_addr(), r);
    assert_eq!(
        quoted_udp(&errors[0]),
        ((3, code::HOST), (r, 5001, ext(), 9000)),
        "the outside sender sees only what it sent"
    );
}

/// `p` with bytes `at..at + 2` of its transport header set to `v` (checksums left as they
/// were: a receiver would drop these anyway, and so must the NAT, before its checksum test).
fn with_u16(mut p: Ip, at: usize, v: u16) -> Ip {
    p.payload[at..at + 2].copy_from_slice(&v.to_be_bytes());
    p
}

/// `p` (TCP) with data offset `words`.
fn with_tcp_offset(mut p: Ip, words: u8) -> Ip {
    p.payload[12] = (words << 4) | (p.payload[12] & 0x0f);
    p
}

#[test]
fn malformed_udp_and_tcp_headers_are_dropped_both_ways_and_counted() {
    use xgw::dataplane::DropReason;
    let mut t = nat_bed("endpoint-independent");
    let remote = ip("203.0.113.1");
    let good = || Ip::udp_ports(client(), 40000, remote, 53, 8);
    let o = out(&mut t, &good());
    assert_eq!(o.len(), 1);
    let (_, eport, _, _) = udp_ports(&o[0]);
    let sessions = t.control().nat().unwrap().session_count();
    let c0 = t.counters();

    // UDP length (bytes 4..6; the datagram is 16 bytes): below 8, or beyond the payload.
    for len in [0u16, 7, 17, 0xffff] {
        t.push(0, &with_u16(good(), 4, len).client_frame());
        t.step();
        assert!(t.take_tx(1).is_empty(), "outbound, UDP length {len}");
        let back = Ip::udp_ports(remote, 53, ext(), eport, 8);
        assert!(
            inbound(&mut t, &with_u16(back, 4, len)).is_empty(),
            "inbound, UDP length {len}"
        );
        // A new flow with a bad length makes no session either.
        let fresh = Ip::udp_ports(client(), 41000 + len % 100, remote, 53, 8);
        t.push(0, &with_u16(fresh, 4, len).client_frame());
        t.step();
        assert!(t.take_tx(1).is_empty());
    }
    // TCP data offset (20-byte segments): below 5 words, or beyond the segment.
    for words in [0u8, 4, 6, 15] {
        let syn = Ip::tcp(client(), 40001, remote, 443, flags::SYN);
        t.push(0, &with_tcp_offset(syn, words).client_frame());
        t.step();
        assert!(t.take_tx(1).is_empty(), "outbound SYN, offset {words}");
        let fwd = Ip::tcp(remote, 5555, ext(), 8080, flags::SYN);
        assert!(
            inbound(&mut t, &with_tcp_offset(fwd, words)).is_empty(),
            "inbound SYN to the forward, offset {words}"
        );
    }
    let c = t.counters();
    assert_eq!(
        c.dropped(DropReason::NatBadUdpLength) - c0.dropped(DropReason::NatBadUdpLength),
        12
    );
    assert_eq!(
        c.dropped(DropReason::NatBadTcpOffset) - c0.dropped(DropReason::NatBadTcpOffset),
        8
    );
    assert_eq!(
        t.control().nat().unwrap().session_count(),
        sessions,
        "no state from malformed packets"
    );
    // The session still works both ways.
    assert_eq!(out(&mut t, &good()).len(), 1);
    assert_eq!(
        inbound(&mut t, &Ip::udp_ports(remote, 53, ext(), eport, 8)).len(),
        1
    );
}

/// Counters that used to mean two things each are apart: a packet with the external address
/// as its source is `nat44.pool_source` (not `nat44.unsupported`), and an inbound packet over
/// the inside MTU without DF is punted as `punt.nat_too_big` (translated and fragmented on
/// the slow path), not as a session miss.
#[test]
fn split_counters_name_one_thing_each() {
    use xgw::dataplane::PuntReason;
    let cfg = cfg("address-dependent", "1024-65535").replace(
        "address = \"198.18.0.1/24\"\n",
        "address = \"198.18.0.1/24\"\nmtu = 1400\n",
    );
    let mut t = bed_with_server(&cfg);
    let r = ip("203.0.113.7");
    let c0 = t.counters();
    let spoofed = Ip::udp_ports(ext(), 7000, client(), 40130, 8);
    assert!(inbound(&mut t, &spoofed).is_empty());
    let c = t.counters();
    assert_eq!(
        c.dropped(DropReason::NatPoolSource) - c0.dropped(DropReason::NatPoolSource),
        1
    );
    assert_eq!(
        c.dropped(DropReason::NatUnsupported),
        c0.dropped(DropReason::NatUnsupported)
    );
    out(&mut t, &Ip::udp_ports(client(), 40131, r, 5000, 8));
    let big = Ip::udp_ports(r, 5000, ext(), 40131, 1450).df(false);
    let misses = t.counters().punted(PuntReason::NatMiss);
    let frags = inbound(&mut t, &big);
    assert_eq!(
        frags.len(),
        2,
        "translated and fragmented to the inside MTU"
    );
    let c = t.counters();
    assert_eq!(c.punted(PuntReason::NatTooBig), 1);
    assert_eq!(c.punted(PuntReason::NatMiss), misses, "not a session miss");
}

/// `reload` changes a running NAT without dropping a session (issue 11): a forward moved
/// from port 8080 to 9090 (the established connection through 8080 goes on, new ones to
/// 8080 are refused, 9090 reaches the inside), filtering and timeouts changed, `inside`
/// narrowed; what cannot change live (the table size, the pool) is refused by name and the
/// whole reload with it.
#[test]
fn reload_changes_the_nat_and_keeps_its_sessions() {
    let base = cfg("address-dependent", "1024-65535");
    let mut t = bed_with_server(&base);
    let r = ip("203.0.113.7");
    // An outbound UDP flow and a TCP connection in through the forward.
    let o = out(&mut t, &Ip::udp_ports(client(), 5000, r, 53, 16));
    assert_eq!(o.len(), 1);
    let i = inbound(&mut t, &Ip::tcp(r, 3333, ext(), 8080, flags::SYN));
    assert_eq!(i.len(), 1);
    let o = out(
        &mut t,
        &Ip::tcp(client(), 80, r, 3333, flags::SYN | flags::ACK),
    );
    assert_eq!(o.len(), 1);
    // (bed_with_server's own packet made a third.)
    let sessions = t.control().nat().unwrap().session_count();
    assert_eq!(sessions, 3);

    let moved = base
        .replace("port = 8080", "port = 9090")
        .replace(
            "filtering = \"address-dependent\"",
            "filtering = \"endpoint-independent\"",
        )
        .replace(
            "max_sessions = 1024",
            "max_sessions = 1024\n[nat.timeouts]\nudp = \"600s\"",
        );
    let cfg2 = xgw::config::parse(&moved, "reload.toml").unwrap();
    t.control_mut().reload(&cfg2).unwrap();
    t.step();
    assert_eq!(
        t.control().nat().unwrap().session_count(),
        sessions,
        "no session dropped"
    );
    // The established connection through the old forward goes on, both ways.
    let i = inbound(&mut t, &Ip::tcp(r, 3333, ext(), 8080, flags::ACK));
    assert_eq!(i.len(), 1, "established through the removed forward");
    assert_eq!(tcp_of(&i[0]), (r, 3333, client(), 80, flags::ACK));
    // A new connection to the old port is not forwarded; to the new one it is.
    assert!(inbound(&mut t, &Ip::tcp(r, 4444, ext(), 8080, flags::SYN)).is_empty());
    let i = inbound(&mut t, &Ip::tcp(r, 4445, ext(), 9090, flags::SYN));
    assert_eq!(i.len(), 1, "the added forward");
    assert_eq!(tcp_of(&i[0]), (r, 4445, client(), 80, flags::SYN));
    // Endpoint-independent filtering now admits another remote to the UDP mapping.
    let i = inbound(
        &mut t,
        &Ip::udp_ports(ip("203.0.113.99"), 777, ext(), 5000, 16),
    );
    assert_eq!(i.len(), 1, "EIF after the reload");
    // The UDP session outlives the old 300 s timeout.
    t.advance(Duration::from_secs(400));
    let o = out(&mut t, &Ip::udp_ports(client(), 5000, r, 53, 16));
    // (The SYN to the old port, held unanswered, got its ICMP port unreachable meanwhile.)
    let u: Vec<_> = o
        .iter()
        .filter(|f| l3(f).protocol() == Protocol::Udp)
        .collect();
    assert_eq!(udp_ports(u[0]).1, 5000, "same mapping after 400 s idle");

    // Refused, by field, and nothing of the reload applied (its new route included).
    for (from, to, field) in [
        (
            "max_sessions = 1024",
            "max_sessions = 512",
            "nat.max_sessions",
        ),
        (
            "ports = \"1024-65535\"",
            "ports = \"2000-65535\"",
            "nat.ports",
        ),
        (
            "inside = [\"198.18.0.0/24\"]",
            "inside = [\"198.18.0.0/24\"]\naddresses = [\"198.19.0.9\"]",
            "nat.addresses",
        ),
        (
            "address = \"198.19.0.1/24\"",
            "address = \"198.19.0.1/24\"\nmtu = 1300",
            "interface",
        ),
    ] {
        let bad = format!(
            "{}\n[[route]]\nprefix = \"192.0.2.0/24\"\nvia = \"198.19.0.2\"\n",
            moved.replace(from, to)
        );
        let c = xgw::config::parse(&bad, "reload.toml").unwrap();
        let e = t.control_mut().reload(&c).unwrap_err();
        assert!(e.contains(field), "{field}: {e}");
        assert!(
            t.control().routes().get(ip("192.0.2.1")).is_none(),
            "{field}: route applied"
        );
    }
    // Narrowing `inside` applies: the client is no longer translated.
    let narrow = moved
        .replace(
            "inside = [\"198.18.0.0/24\"]",
            "inside = [\"198.18.0.128/25\"]",
        )
        .replace(
            "[[nat.forward]]\nprotocol = \"tcp\"\nport = 9090\nto = \"198.18.0.2:80\"\n",
            "",
        );
    t.control_mut()
        .reload(&xgw::config::parse(&narrow, "reload.toml").unwrap())
        .unwrap();
    t.step();
    let o = out(&mut t, &Ip::udp_ports(client(), 6000, r, 53, 16));
    assert_eq!(
        udp_ports(&o[0]).0,
        client(),
        "not translated after inside narrowed"
    );
    // When the connection on the moved forward's old port expires, that port is freed.
    let tcp_ports = |t: &Testbed| {
        let s = t.control().nat().unwrap().summary();
        s.ports_in_use
            .iter()
            .filter(|p| p.1 == proto::TCP)
            .map(|p| p.2)
            .sum::<usize>()
    };
    let before = tcp_ports(&t);
    t.advance(Duration::from_secs(8000));
    for _ in 0..4 {
        t.advance(Duration::from_secs(1));
    }
    assert_eq!(
        tcp_ports(&t),
        before - 1,
        "the old forward port released with its session"
    );
    assert!(!t
        .control()
        .nat_fast()
        .unwrap()
        .mapped
        .may_be_mapped(ext(), proto::TCP, 8080));
}

/// The NAT event log through the whole router: a worker-created mapping reaches the log
/// writer's queue as APMADD with its inside and external endpoints on the next timer tick;
/// a flood of new flows against a writer that never catches up is bounded by the buffer,
/// the rest dropped and counted in `nat.log_dropped`, and forwarding goes on.
#[test]
fn nat_event_log_through_the_control_loop_and_a_flood() {
    use std::sync::Arc;
    use xgw::{
        control::natlog::{LogStats, NatLogLink},
        nat::log::LogKind,
    };
    let mut t = nat_bed("address-dependent");
    let line = |t: &Testbed, name: &str| {
        t.control()
            .counter_lines()
            .iter()
            .find(|l| l.0 == name)
            .map_or(0, |l| l.1)
    };
    // What the bed's setup made before the log was on.
    let made = |t: &Testbed| line(t, "nat.sessions_created") + line(t, "nat.mappings_created");
    let before = made(&t);
    let (tx, rx) = crossbeam::channel::bounded(1024);
    let stats = Arc::new(LogStats::default());
    t.control_mut().set_nat_log(Some(NatLogLink {
        tx,
        stats: stats.clone(),
        buffer: 100,
        destinations: true,
    }));
    let remote = ip("203.0.113.7");
    let o = out(&mut t, &Ip::udp_ports(client(), 40020, remote, 5000, 64));
    assert_eq!(o.len(), 1);
    t.advance(Duration::from_millis(60));
    let ev: Vec<_> = rx.try_iter().flatten().collect();
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [LogKind::MappingAdd, LogKind::SessionAdd], "{ev:?}");
    assert_eq!(ev[0].inside, (client(), 40020));
    assert_eq!(ev[0].external, (ext(), 40020));
    assert_eq!(ev[1].remote, Some((remote, 5000)));
    // Nobody writes: after 100 events in flight, the rest are dropped.
    stats
        .in_flight
        .store(0, std::sync::atomic::Ordering::Relaxed);
    t.flood(
        0,
        (0..2000u16).map(|i| Ip::udp_ports(client(), 10000 + i, remote, 5000, 64).client_frame()),
    );
    // Two ticks: events recorded after the first one's hand-off go with the second.
    t.advance(Duration::from_millis(60));
    t.advance(Duration::from_millis(60));
    let queued: usize = rx.try_iter().map(|b| b.len()).sum();
    assert!(queued <= 100, "{queued}");
    let dropped = line(&t, "nat.log_dropped");
    let events = made(&t) - before - 2;
    assert!(events > 1000, "{events}");
    assert_eq!(
        queued as u64 + dropped,
        events,
        "every event of the flood queued or counted"
    );
    let translated = t.take_tx(1).len() as u64;
    assert_eq!(translated, events / 2, "forwarding goes on");
}

/// `nat.max_sessions` grows live: a table full at 1024 sessions is moved whole into one of
/// 4096 by a reload; every existing session keeps translating both ways (the workers read
/// the new table), new flows get sessions again, `show nat sessions`' view follows, and a
/// smaller table is refused by name with nothing changed.
#[test]
fn max_sessions_grows_live_keeping_every_session() {
    let base = cfg("address-dependent", "1024-65535");
    let mut t = bed_with_server(&base);
    let r = ip("203.0.113.7");
    let mut sent = 0u16;
    for port in 20_000..21_100u16 {
        t.push(0, &Ip::udp_ports(client(), port, r, 5000, 8).client_frame());
        sent += 1;
        if port % 64 == 0 {
            t.advance(Duration::from_millis(1));
            t.take_tx(1);
        }
    }
    t.step();
    t.take_tx(1);
    let full = t.control().nat().unwrap().session_count();
    assert_eq!(full, 1024, "{sent} flows into a 1024-session table");
    // The newest flows found the table full.
    let grown = base.replace(
        "max_sessions = 1024",
        "max_sessions = 4096\nmax_sessions_per_host = 4096",
    );
    let before_view = t.control().nat_view().lock().clone().unwrap();
    t.control_mut()
        .reload(&xgw::config::parse(&grown, "reload.toml").unwrap())
        .unwrap();
    t.step();
    let nat_summary = t.control().nat().unwrap().summary();
    assert_eq!((nat_summary.sessions, nat_summary.capacity), (full, 4096));
    let view = t.control().nat_view().lock().clone().unwrap();
    assert!(
        !std::sync::Arc::ptr_eq(&before_view, &view),
        "a new view for the operator"
    );
    assert_eq!(view.sessions.capacity(), 4096);
    // Old sessions: replies come in through the workers (no punt), outbound reuses the
    // mapping.
    t.take_tx(0); // the ICMP 3/13 answers to the refused flows
    let punts = t.counters().punted(xgw::dataplane::PuntReason::NatMiss);
    let mut back = 0;
    for port in (20_000..21_000u16).step_by(50) {
        back += inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), port, 8)).len();
    }
    assert_eq!(
        back, 20,
        "every sampled session translated inbound after the move"
    );
    assert_eq!(
        t.counters().punted(xgw::dataplane::PuntReason::NatMiss),
        punts,
        "found by the workers in the new table"
    );
    // New flows get sessions again.
    for port in 30_000..30_100u16 {
        t.push(0, &Ip::udp_ports(client(), port, r, 5000, 8).client_frame());
    }
    t.advance(Duration::from_millis(5));
    assert_eq!(t.take_tx(1).len(), 100);
    assert_eq!(t.control().nat().unwrap().session_count(), full + 100);
    // Shrinking is refused, by name, and nothing changes.
    let small = grown
        .replace("max_sessions = 4096\n", "max_sessions = 2048\n")
        .replace(
            "max_sessions_per_host = 4096",
            "max_sessions_per_host = 2048",
        );
    let e = t
        .control_mut()
        .reload(&xgw::config::parse(&small, "reload.toml").unwrap())
        .unwrap_err();
    assert!(
        e.contains("nat.max_sessions") && e.contains("does not shrink"),
        "{e}"
    );
    assert_eq!(t.control().nat().unwrap().summary().capacity, 4096);
}

/// Pool addresses added live: a reload appends 198.19.0.9 to the pool; hosts that already
/// have mappings keep their address (paired pooling, RFC 4787 REQ-2) and their sessions,
/// new hosts are spread over both, replies to the new address come back in, and an address
/// removed (or the room of 16 more exceeded) is refused by name.
#[test]
fn pool_addresses_added_live() {
    let base = cfg("address-dependent", "1024-65535");
    let mut t = bed_with_server(&base);
    let r = ip("203.0.113.7");
    let o = out(&mut t, &Ip::udp_ports(client(), 40200, r, 5000, 8));
    assert_eq!(udp_ports(&o[0]).0, ext());
    let grown = base.replace(
        "inside = [\"198.18.0.0/24\"]",
        "inside = [\"198.18.0.0/24\"]\naddresses = [\"198.19.0.1\", \"198.19.0.9\"]",
    );
    t.control_mut()
        .reload(&xgw::config::parse(&grown, "reload.toml").unwrap())
        .unwrap();
    t.step();
    assert!(t.control().nat_fast().unwrap().is_pool(ip("198.19.0.9")));
    // The paired host stays on its address, its session goes on.
    let o = out(&mut t, &Ip::udp_ports(client(), 40201, r, 5000, 8));
    assert_eq!(udp_ports(&o[0]).0, ext(), "paired pooling");
    let i = inbound(&mut t, &Ip::udp_ports(r, 5000, ext(), 40200, 8));
    assert_eq!(i.len(), 1, "the old session after the reload");
    // New hosts: some get the new address.
    let mut on_new = Vec::new();
    for h in 10..60u8 {
        let src = std::net::Ipv4Addr::new(198, 18, 0, h);
        t.push(
            0,
            &eth(
                port_mac(0),
                CLIENT_MAC,
                EtherType::Ipv4,
                &Ip::udp_ports(src, 7000, r, 5000, 8).bytes(),
            ),
        );
        t.step();
        for f in t.take_tx(1) {
            let (s, sp, _, _) = udp_ports(&f);
            if s == ip("198.19.0.9") {
                on_new.push(sp);
            }
        }
    }
    assert!(
        on_new.len() >= 5,
        "{} of 50 hosts on the added address",
        on_new.len()
    );
    // A reply to the added address is translated back (to the host's MAC once resolved:
    // the router asks for it on the inside).
    t.push(
        1,
        &server_frame(&Ip::udp_ports(r, 5000, ip("198.19.0.9"), on_new[0], 8).bytes()),
    );
    t.step();
    let asked = t.take_tx(0);
    assert_eq!(
        asked.len(),
        1,
        "ARP for the inside host: the reply was translated"
    );
    assert_eq!(
        parse_arp(&asked[0]).target_protocol_addr.octets()[..3],
        [198, 18, 0]
    );
    // Removing one, or more than the room, is refused by name.
    let removed = base.replace(
        "inside = [\"198.18.0.0/24\"]",
        "inside = [\"198.18.0.0/24\"]\naddresses = [\"198.19.0.9\", \"198.19.0.1\"]",
    );
    let e = t
        .control_mut()
        .reload(&xgw::config::parse(&removed, "reload.toml").unwrap())
        .unwrap_err();
    assert!(
        e.contains("nat.addresses") && e.contains("first and in order"),
        "{e}"
    );
    let many: Vec<String> = [1, 9]
        .into_iter()
        .chain(10..=30)
        .map(|i| format!("\"198.19.0.{i}\""))
        .collect();
    let too_many = base.replace(
        "inside = [\"198.18.0.0/24\"]",
        &format!(
            "inside = [\"198.18.0.0/24\"]\naddresses = [{}]",
            many.join(", ")
        ),
    );
    let e = t
        .control_mut()
        .reload(&xgw::config::parse(&too_many, "reload.toml").unwrap())
        .unwrap_err();
    assert!(
        e.contains("nat.addresses") && e.contains("room for 17"),
        "{e}"
    );
}
