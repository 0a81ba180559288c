//! Pipeline tests: the whole router (worker + control plane) over memory I/O with golden
//! packets built by `Repr::emit`. Asserts output bytes and counters. No root needed.
// Integration tests live at the crate root of their own test binary.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::time::Duration;

use common::*;

use xgw::{
    control::ControlEvent,
    dataplane::{DropReason, Event, PuntReason},
    runtime::testbed::port_mac,
    wire::{
        arp, checksum,
        ethernet::{self, EtherType, MacAddr},
        icmpv4::{self, Message},
        ipv4::{self, Packet, Protocol},
        udp,
    },
};

const CFG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
mtu = 1400
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[[route]]
prefix = "198.51.100.0/24"
type = "blackhole"
[icmp]
rate = 100
burst = 10
"#;

#[test]
fn forwards_with_ttl_decrement_and_mac_rewrite() {
    let mut t = bed_with_server(CFG);
    let before = t.counters().events(Event::TxPackets);
    let pkt = Ip::udp(client(), server(), 100);
    t.push(0, &pkt.client_frame());
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 1);
    let f = ethernet::Frame::new_checked(&tx[0][..]).unwrap();
    assert_eq!(f.dst_addr(), SERVER_MAC);
    assert_eq!(f.src_addr(), port_mac(1));
    // Expected bytes: the original with TTL 63 and a fully recomputed checksum.
    let mut want = pkt.bytes();
    let mut w = Packet::new_unchecked(&mut want[..]);
    w.set_ttl(63);
    w.fill_checksum();
    assert_eq!(&tx[0][ethernet::HEADER_LEN..], &want[..]);
    assert_eq!(
        t.counters().events(Event::TxPackets),
        before + 1,
        "forwarded in the fast path"
    );
    let p = l3(&tx[0]);
    let u = udp::Packet::new_checked(p.payload()).unwrap();
    assert!(u.verify_checksum(client(), server()));
}

#[test]
fn routes_via_gateway_and_accepts_ethernet_padding() {
    let mut t = bed_with_server(CFG);
    // 20 + 8 + 4 = 32 bytes of IP in a frame padded to 60.
    let pkt = Ip::udp(client(), ip("203.0.113.7"), 4);
    let mut frame = pkt.client_frame();
    frame.resize(60, 0);
    t.push(0, &frame);
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        ethernet::Frame::new_checked(&tx[0][..]).unwrap().dst_addr(),
        SERVER_MAC
    );
    assert_eq!(l3(&tx[0]).total_len(), 32);
}

#[test]
fn ttl_expiry_sends_time_exceeded_from_ingress_address() {
    let mut t = bed(CFG);
    let pkt = Ip::udp(client(), server(), 100).ttl(1);
    t.push(0, &pkt.client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        ethernet::Frame::new_checked(&tx[0][..]).unwrap().dst_addr(),
        CLIENT_MAC
    );
    let p = l3(&tx[0]);
    assert_eq!(p.src_addr(), ip("198.18.0.1"));
    assert_eq!(p.dst_addr(), client());
    let i = icmp_of(&p);
    assert_eq!(i.msg_type(), Message::TimeExceeded);
    assert_eq!(i.msg_code(), 0);
    assert_eq!(
        i.data(),
        &pkt.bytes()[..],
        "quotes the whole (short) original"
    );
    assert!(t.take_tx(1).is_empty());
    assert_eq!(t.counters().punted(PuntReason::TtlExpired), 1);
}

#[test]
fn ttl_one_to_the_router_is_answered() {
    let mut t = bed(CFG);
    t.push(
        0,
        &Ip::echo(client(), ip("198.18.0.1"), 1)
            .ttl(1)
            .client_frame(),
    );
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    assert_eq!(icmp_of(&p).msg_type(), Message::EchoReply);
    assert_eq!(p.src_addr(), ip("198.18.0.1"));
}

#[test]
fn echo_to_far_side_address_is_answered_on_ingress() {
    let mut t = bed(CFG);
    t.push(0, &Ip::echo(client(), ip("198.19.0.1"), 3).client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    assert_eq!(p.src_addr(), ip("198.19.0.1"));
    let i = icmp_of(&p);
    assert_eq!(i.msg_type(), Message::EchoReply);
    assert_eq!(i.echo_seq_no(), 3);
    assert_eq!(t.control().counters.get(ControlEvent::EchoReplies), 1);
}

#[test]
fn no_route_sends_net_unreachable() {
    let mut t = bed(CFG);
    t.push(0, &Ip::udp(client(), ip("192.0.2.1"), 10).client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (Message::DstUnreachable, icmpv4::dst_unreachable_code::NET)
    );
    assert_eq!(t.counters().punted(PuntReason::NoRoute), 1);
}

#[test]
fn blackhole_drops_silently() {
    let mut t = bed(CFG);
    t.push(0, &Ip::udp(client(), ip("198.51.100.9"), 10).client_frame());
    t.step();
    assert!(t.take_tx(0).is_empty() && t.take_tx(1).is_empty());
    assert_eq!(t.counters().dropped(DropReason::Blackhole), 1);
}

#[test]
fn arp_miss_rate_limits_requests_then_host_unreachable() {
    let mut t = bed(&format!("{CFG}[neighbor]\nqueue_len = 4\n"));
    let silent = ip("198.19.0.99");
    for _ in 0..5 {
        t.push(0, &Ip::udp(client(), silent, 10).client_frame());
    }
    t.step();
    assert_eq!(t.take_tx(1).len(), 1, "a burst triggers one ARP request");
    t.advance(Duration::from_millis(500));
    assert!(
        t.take_tx(1).is_empty(),
        "at most one request per second (RFC 1122)"
    );
    let mut requests = 1;
    let mut unreachables = Vec::new();
    for _ in 0..8 {
        t.advance(Duration::from_millis(500));
        requests += t.take_tx(1).len();
        unreachables.extend(t.take_tx(0));
    }
    assert_eq!(requests, 3, "max_requests ARP requests in total");
    assert!(
        !unreachables.is_empty(),
        "host unreachable after resolution fails"
    );
    for f in &unreachables {
        let p = l3(f);
        let i = icmp_of(&p);
        assert_eq!(
            (i.msg_type(), i.msg_code()),
            (Message::DstUnreachable, icmpv4::dst_unreachable_code::HOST)
        );
        assert_eq!(p.src_addr(), ip("198.18.0.1"));
    }
    assert!(
        unreachables.len() <= 4,
        "only the queued packets (queue_len) are answered"
    );
}

#[test]
fn icmp_errors_are_suppressed_per_rfc1812() {
    let mut t = bed(CFG);
    // An ICMP error with TTL 1 gets nothing back.
    let te = icmpv4::Repr::TimeExceeded {
        code: 0,
        quote: &Ip::udp(server(), client(), 8).bytes(),
    };
    let mut payload = vec![0u8; te.buffer_len()];
    te.emit(&mut icmpv4::Packet::new_unchecked(&mut payload[..]));
    let err = Ip {
        src: client(),
        dst: server(),
        ttl: 1,
        df: false,
        proto: Protocol::Icmp,
        payload,
    };
    t.push(0, &err.client_frame());
    // A non-initial fragment with TTL 1.
    let mut frag = Ip::udp(client(), server(), 40).df(false).ttl(1).bytes();
    let mut fp = Packet::new_unchecked(&mut frag[..]);
    fp.set_frag_offset(1480);
    fp.fill_checksum();
    t.push(0, &eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &frag));
    // A subnet-broadcast destination is never forwarded (RFC 2644) nor answered.
    t.push(
        0,
        &Ip::udp(client(), ip("198.19.0.255"), 8)
            .ttl(1)
            .client_frame(),
    );
    t.step();
    assert!(
        t.take_tx(0).is_empty(),
        "no ICMP about ICMP errors, fragments or broadcasts"
    );
    assert_eq!(t.control().counters.get(ControlEvent::IcmpSuppressed), 2);
    assert_eq!(t.counters().dropped(DropReason::DirectedBroadcast), 1);
    // ... but an echo request with TTL 1 does get Time Exceeded.
    t.push(0, &Ip::echo(client(), server(), 1).ttl(1).client_frame());
    t.step();
    assert_eq!(t.take_tx(0).len(), 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut t = bed(CFG);
    for _ in 0..50 {
        t.push(0, &Ip::udp(client(), server(), 10).ttl(1).client_frame());
    }
    t.step();
    assert_eq!(t.take_tx(0).len(), 10, "global burst = 10");
    // The destination's share (20) passed 20, the global bucket 10 of them.
    assert_eq!(t.control().counters.get(ControlEvent::IcmpRateLimited), 10);
    assert_eq!(
        t.control()
            .counters
            .get(ControlEvent::IcmpRateLimitedDestination),
        30
    );
    t.advance(Duration::from_millis(100)); // global 100/s: 10 more; this destination 20/s: 2
    for _ in 0..50 {
        t.push(0, &Ip::udp(client(), server(), 10).ttl(1).client_frame());
    }
    t.step();
    assert_eq!(t.take_tx(0).len(), 2, "one destination gets its share only");
    // PMTUD has its own bucket: frag-needed still goes out after the TTL flood.
    let big = Ip::udp(client(), server(), 1464);
    t.push(0, &big.client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        icmp_of(&l3(&tx[0])).msg_code(),
        icmpv4::dst_unreachable_code::FRAG_NEEDED
    );
}

#[test]
fn df_packet_over_mtu_gets_frag_needed_with_next_hop_mtu() {
    let mut t = bed_with_server(CFG);
    let big = Ip::udp(client(), server(), 1472 - 8 + 8 - 8); // 20 + 8 + 1464 = 1492 > 1400
    t.push(0, &big.client_frame());
    t.step();
    assert!(t.take_tx(1).is_empty());
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (
            Message::DstUnreachable,
            icmpv4::dst_unreachable_code::FRAG_NEEDED
        )
    );
    assert_eq!(i.next_hop_mtu(), 1400);
    assert_eq!(p.src_addr(), ip("198.18.0.1"));
    assert!(tx[0].len() - ethernet::HEADER_LEN <= 576);
}

#[test]
fn non_df_packet_over_mtu_is_fragmented() {
    let mut t = bed_with_server(CFG);
    let big = Ip::udp(client(), server(), 1464).df(false);
    let orig = big.bytes();
    t.push(0, &big.client_frame());
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 2);
    let mut data = Vec::new();
    for (k, f) in tx.iter().enumerate() {
        assert!(f.len() - ethernet::HEADER_LEN <= 1400);
        let p = l3(f);
        assert_eq!(p.ttl(), 63);
        assert_eq!(p.more_frags(), k == 0);
        assert_eq!(usize::from(p.frag_offset()), data.len());
        data.extend_from_slice(p.payload());
    }
    assert_eq!(&data[..], &orig[ipv4::HEADER_LEN..]);
    assert_eq!(t.control().counters.get(ControlEvent::Fragmented), 1);
}

#[test]
fn malformed_frames_are_counted_drops() {
    let mut t = bed_with_server(CFG);
    let good = Ip::udp(client(), server(), 20).client_frame();
    let mut bad_csum = good.clone();
    bad_csum[ethernet::HEADER_LEN + 10] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[ethernet::HEADER_LEN] = 0x65;
    let mut bad_ihl = good.clone();
    bad_ihl[ethernet::HEADER_LEN] = 0x44;
    let mut long_total = good.clone();
    long_total[ethernet::HEADER_LEN + 2] = 0x05; // total length 0x05xx > frame
    let truncated = good[..ethernet::HEADER_LEN + 12].to_vec();
    let runt = good[..10].to_vec();
    let mut martian = Ip::udp(ip("127.0.0.1"), server(), 20).client_frame();
    let mut other_mac = good.clone();
    other_mac[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    for f in [
        &bad_csum,
        &bad_version,
        &bad_ihl,
        &long_total,
        &truncated,
        &runt,
        &mut martian,
        &other_mac,
    ] {
        t.push(0, f);
    }
    t.step();
    assert!(
        t.take_tx(0).is_empty() && t.take_tx(1).is_empty(),
        "nothing transmitted, no ICMP"
    );
    let c = t.counters();
    for r in [
        DropReason::BadChecksum,
        DropReason::BadVersion,
        DropReason::BadHeaderLen,
        DropReason::BadTotalLen,
        DropReason::Truncated,
        DropReason::Runt,
        DropReason::MartianSource,
        DropReason::NotForUs,
    ] {
        assert_eq!(c.dropped(r), 1, "{}", r.name());
    }
}

#[test]
fn incremental_checksum_matches_full_recompute_through_the_pipeline() {
    let mut t = bed_with_server(CFG);
    for ttl in 2..=255u8 {
        t.push(
            0,
            &Ip::udp(client(), server(), usize::from(ttl))
                .ttl(ttl)
                .client_frame(),
        );
    }
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 254);
    for f in &tx {
        let p = l3(f);
        let mut copy = p.header().to_vec();
        let mut c = Packet::new_unchecked(&mut copy[..]);
        c.fill_checksum();
        assert_eq!(p.checksum(), c.checksum());
        assert_eq!(checksum::data(p.header()), 0xffff);
    }
}

#[test]
fn reload_publishes_new_routes_and_refuses_interface_changes() {
    let mut t = bed_with_server(CFG);
    t.push(0, &Ip::udp(client(), ip("192.0.2.1"), 10).client_frame());
    t.step();
    assert_eq!(t.counters().punted(PuntReason::NoRoute), 1);
    t.take_tx(0);
    let more = format!("{CFG}\n[[route]]\nprefix = \"192.0.2.0/24\"\nvia = \"198.19.0.2\"\n");
    let cfg = xgw::config::parse(&more, "reload.toml").unwrap();
    t.control_mut().reload(&cfg).unwrap();
    t.step();
    t.push(0, &Ip::udp(client(), ip("192.0.2.1"), 10).client_frame());
    t.step();
    let tx = t.take_tx(1);
    assert_eq!(tx.len(), 1, "routed by the new snapshot");
    assert_eq!(l3(&tx[0]).dst_addr(), ip("192.0.2.1"));
    assert_eq!(
        t.counters().punted(PuntReason::NoRoute),
        1,
        "no second miss"
    );
    let changed = CFG.replace("mtu = 1400", "mtu = 1300");
    let cfg = xgw::config::parse(&changed, "reload.toml").unwrap();
    let err = t.control_mut().reload(&cfg).unwrap_err();
    assert!(err.contains("interface"), "{err}");
}

#[test]
fn link_local_is_never_forwarded_rfc3927() {
    // RFC 3927 §7: a router MUST NOT forward a packet with a link-local source or
    // destination, whatever its routes say: dropped at input, before any lookup.
    let mut t = bed_with_server(CFG);
    let c0 = t.counters();
    for (src, dst) in [
        (ip("169.254.7.7"), server()),
        (client(), ip("169.254.7.7")),
        (ip("169.254.0.1"), ip("169.254.255.255")),
    ] {
        t.push(0, &Ip::udp(src, dst, 20).client_frame());
    }
    t.step();
    assert!(
        t.take_tx(0).is_empty() && t.take_tx(1).is_empty(),
        "nothing forwarded, no ICMP about it"
    );
    let c = t.counters();
    let d = |r| c.dropped(r) - c0.dropped(r);
    assert_eq!(d(DropReason::MartianSource), 2);
    assert_eq!(d(DropReason::MartianDestination), 1);
}

/// A route with `dev` and no `via` to a prefix outside the port's subnets (the on-link case
/// of `configs/router.example.toml`): the router ARPs for each destination directly, learns
/// the answer and forwards (it used to refuse to learn it, `arp.not_learned`, and end in host
/// unreachable).
#[test]
fn dev_only_route_to_an_off_subnet_prefix_resolves() {
    let cfg = CFG.replace(
        "[[route]]\nprefix = \"198.51.100.0/24\"\ntype = \"blackhole\"",
        "[[route]]\nprefix = \"198.51.100.0/24\"\ndev = \"r1\"",
    );
    let mut t = bed(&cfg);
    let dst = ip("198.51.100.9");
    t.push(0, &Ip::udp(client(), dst, 10).client_frame());
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "an ARP request for the destination itself");
    let r = parse_arp(&req[0]);
    assert_eq!(r.target_protocol_addr, dst);
    let mac = MacAddr([0x02, 0x51, 0, 0, 0, 9]);
    t.push(
        1,
        &arp_frame(
            arp::Operation::Reply,
            mac,
            dst,
            port_mac(1),
            ip("198.19.0.1"),
            port_mac(1),
        ),
    );
    t.step();
    let out = t.take_tx(1);
    assert_eq!(
        out.len(),
        1,
        "the held packet leaves once the neighbour answered"
    );
    let f = ethernet::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr(), mac);
    assert_eq!(t.control().counters.get(ControlEvent::ArpNotLearned), 0);
    // And the fast path uses the neighbour from then on.
    t.push(0, &Ip::udp(client(), dst, 10).client_frame());
    t.step();
    assert_eq!(t.take_tx(1).len(), 1);
    assert!(t.take_tx(0).is_empty(), "no host unreachable");
}
