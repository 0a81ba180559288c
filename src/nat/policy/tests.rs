//! Unit tests of the NAT policy, driven directly with a virtual clock.
use super::*;
use crate::wire::{
    ipv4::{self, Protocol},
    udp,
};

const OUTSIDE: u16 = 1;
const INSIDE: u16 = 0;

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cfg(filtering: Filtering) -> PolicyConfig {
    PolicyConfig {
        outside: OUTSIDE,
        addresses: vec![a("198.19.0.1")],
        inside: vec!["198.18.0.0/24".parse().unwrap()],
        min_port: 1024,
        max_port: 65535,
        filtering,
        max_sessions: 1024,
        reassembly_bytes: super::reassembly::DEFAULT_BUDGET,
        timeouts: Timeouts {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
        },
        forwards: vec![Forward {
            proto: proto::TCP,
            external: a("198.19.0.1"),
            port: 8080,
            to: a("198.18.0.2"),
            to_port: 80,
        }],
    }
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, p: Protocol, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; ipv4::HEADER_LEN + l4.len()];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: p,
        payload_len: l4.len(),
        ttl: 64,
        ident: 7,
        dont_frag: true,
        dscp_ecn: 0,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    b[ipv4::HEADER_LEN..].copy_from_slice(l4);
    b
}

fn udp4(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut l4 = vec![0u8; udp::HEADER_LEN + 4];
    let mut u = udp::Packet::new_unchecked(&mut l4[..]);
    u.set_src_port(sport);
    u.set_dst_port(dport);
    u.set_len(12);
    u.fill_checksum(a(src), a(dst));
    ip4(a(src), a(dst), Protocol::Udp, &l4)
}

fn tcp4(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let mut l4 = vec![0u8; tcp::HEADER_LEN];
    let mut t = tcp::Packet::new_unchecked(&mut l4[..]);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_header_len(20);
    t.set_flags(flags);
    t.fill_checksum(a(src), a(dst));
    ip4(a(src), a(dst), Protocol::Tcp, &l4)
}

/// The translated packet's (src, sport, dst, dport), checking both checksums.
fn endpoints(o: &NatOutcome) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let NatOutcome::Forward(v) = o else {
        panic!("not forwarded: {o:?}")
    };
    let p = Packet::new_checked(&v[0][..]).unwrap();
    assert!(p.verify_checksum());
    let u = udp::Packet::new_checked(p.payload()).unwrap();
    assert!(u.verify_checksum(p.src_addr(), p.dst_addr()));
    (p.src_addr(), u.src_port(), p.dst_addr(), u.dst_port())
}

#[test]
fn endpoint_independent_mapping_with_port_preservation() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::AddressDependent), t0, 1);
    let o1 = n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.1", 53),
        INSIDE,
    );
    let o2 = n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.2", 53),
        INSIDE,
    );
    assert_eq!(
        endpoints(&o1),
        (a("198.19.0.1"), 40000, a("203.0.113.1"), 53)
    );
    assert_eq!(
        endpoints(&o2),
        (a("198.19.0.1"), 40000, a("203.0.113.2"), 53)
    );
    assert_eq!(n.counters.get(NatEvent::MappingsCreated), 1);
    assert_eq!(n.session_count(), 2);
    assert!(n
        .fast()
        .mapped
        .may_be_mapped(a("198.19.0.1"), proto::UDP, 40000));
    assert!(!n
        .fast()
        .mapped
        .may_be_mapped(a("198.19.0.1"), proto::UDP, 40002));
    assert!(
        n.fast()
            .mapped
            .may_be_mapped(a("198.19.0.1"), proto::TCP, 8080),
        "forward"
    );
}

#[test]
fn address_dependent_filtering_and_expiry_with_quarantine() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::AddressDependent), t0, 1);
    n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.1", 53),
        INSIDE,
    );
    // From the contacted address, another port: admitted (a new session).
    let o = n.handle(
        t0,
        Exception::Miss,
        &udp4("203.0.113.1", 5353, "198.19.0.1", 40000),
        OUTSIDE,
    );
    assert_eq!(
        endpoints(&o),
        (a("203.0.113.1"), 5353, a("198.18.0.5"), 40000)
    );
    // From another address: filtered.
    let o = n.handle(
        t0,
        Exception::Miss,
        &udp4("203.0.113.9", 53, "198.19.0.1", 40000),
        OUTSIDE,
    );
    assert!(matches!(o, NatOutcome::Nothing));
    assert_eq!(n.counters.get(NatEvent::Filtered), 1);
    // 301 s of silence: expired (the sweep visits the table in slices), port released
    // into quarantine and cleared from the fast path's bitmap.
    let late = t0 + Duration::from_secs(301);
    for _ in 0..4 {
        assert!(n.tick(late).is_empty());
    }
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.counters.get(NatEvent::MappingsReleased), 1);
    assert!(!n
        .fast()
        .mapped
        .may_be_mapped(a("198.19.0.1"), proto::UDP, 40000));
    // The same inside socket comes back within 120 s: its old port is quarantined.
    let o = n.handle(
        late,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.1", 53),
        INSIDE,
    );
    let (_, port, _, _) = endpoints(&o);
    assert_ne!(port, 40000, "RFC 6888 REQ-8: not reused for 120 s");
    assert_eq!(port % 2, 0, "parity kept");
}

#[test]
fn unsolicited_syn_is_held_then_refused() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::AddressDependent), t0, 1);
    let syn = tcp4("203.0.113.9", 1234, "198.19.0.1", 2222, tcp::flags::SYN);
    assert!(matches!(
        n.handle(t0, Exception::TcpControl, &syn, OUTSIDE),
        NatOutcome::Nothing
    ));
    assert_eq!(n.counters.get(NatEvent::SynHeld), 1);
    assert!(n.tick(t0 + Duration::from_secs(5)).is_empty());
    let refused = n.tick(t0 + SYN_HOLD);
    assert_eq!(
        refused,
        vec![syn],
        "answered with port unreachable by the caller"
    );
}

#[test]
fn malformed_and_random_input_never_panics_nor_creates_state() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::EndpointIndependent), t0, 1);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let good = udp4("198.18.0.5", 40000, "203.0.113.1", 53);
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut p = good.clone();
        // Corrupt a byte or truncate, in every way the header allows.
        let at = (x as usize) % p.len();
        p[at] = (x >> 32) as u8;
        p.truncate(((x >> 40) as usize) % (good.len() + 1));
        let why = [
            Exception::Miss,
            Exception::TcpControl,
            Exception::IcmpError,
            Exception::Fragment,
        ][(i % 4) as usize];
        let port = if i % 3 == 0 { OUTSIDE } else { INSIDE };
        if Packet::new_checked(&p[..]).is_ok() {
            let _ = n.handle(t0, why, &p, port);
        }
    }
    // Bounded: never more sessions than slots, fragments and held SYNs within limits.
    assert!(n.session_count() <= 1024);
    assert!(n.frags.used() <= super::reassembly::DEFAULT_BUDGET);
    assert!(n.held_syns.len() <= SYN_HOLD_MAX);
}

#[test]
fn maps_grow_on_the_timer_before_a_worker_insert_would_rehash() {
    let t0 = Instant::now();
    let mut c = cfg(Filtering::AddressDependent);
    c.inside = vec!["198.18.0.0/16".parse().unwrap()];
    // Four external addresses: enough ports for the ~82 000 mappings below.
    c.addresses = (1..=4).map(|i| Ipv4Addr::new(198, 19, 0, i)).collect();
    c.max_sessions = 1 << 20;
    let mut n = NatPolicy::new(&c, t0, 1);
    let cap0 = n.mappings.capacity();
    assert!(cap0 >= MAP_RESERVE, "reserved up front");
    assert!(!n.grow_ahead(), "nothing to do while the margin holds");
    // Sessions as workers make them (create_outbound), one mapping each, until the margin
    // is used up: the next tick grows every map before any insert finds it full.
    let mut made = 0u32;
    while n.mappings.capacity() - n.mappings.len() >= MAP_RESERVE / 2 {
        let key = FlowKey {
            src: Ipv4Addr::from(u32::from(a("198.18.0.0")) + 1 + made / 8),
            dst: a("203.0.113.1"),
            sport: 1024 + u16::try_from(made % 8).unwrap(),
            dport: 53,
            proto: proto::UDP,
        };
        assert!(n.create_outbound(t0, &key, 0, INSIDE).is_some(), "{made}");
        made += 1;
    }
    assert_eq!(n.mappings.capacity(), cap0, "no rehash so far");
    let _ = n.tick(t0);
    for (what, cap, len) in [
        ("mappings", n.mappings.capacity(), n.mappings.len()),
        ("by_ext", n.by_ext.capacity(), n.by_ext.len()),
        ("contacted", n.contacted.capacity(), n.contacted.len()),
    ] {
        assert!(cap - len >= MAP_RESERVE / 2, "{what}: {len} of {cap}");
    }
    assert!(!n.grow_ahead(), "margin restored");
    // Never beyond room for max_sessions.
    let mut small = cfg(Filtering::AddressDependent);
    small.max_sessions = 1000;
    let mut m = NatPolicy::new(&small, t0, 1);
    assert!(!m.grow_ahead());
    assert!(m.mappings.capacity() < 4 * 1024);
}
