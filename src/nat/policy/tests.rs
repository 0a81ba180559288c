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
        max_sessions_per_host: 1024,
        inbound_route: false,
        timeouts: Timeouts {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            tcp_inbound_open: Duration::from_secs(30),
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

/// RFC 6888 REQ-4/5: one inside host gets at most `max_sessions_per_host` sessions (and so
/// external ports); the next is refused with ICMP 3/13 without taking a port, other hosts are
/// unaffected, and the host gets room again as its sessions expire.
#[test]
fn sessions_per_host_are_limited() {
    let t0 = Instant::now();
    let mut c = cfg(Filtering::AddressDependent);
    c.max_sessions_per_host = 3;
    let mut n = NatPolicy::new(&c, t0, 1);
    for p in 0..3 {
        let o = n.handle(
            t0,
            Exception::Miss,
            &udp4("198.18.0.5", 40000 + p, "203.0.113.1", 53),
            INSIDE,
        );
        assert!(matches!(o, NatOutcome::Forward(_)), "{o:?}");
    }
    // More sessions of an existing mapping count too.
    let o = n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.2", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Reject(13)), "{o:?}");
    let o = n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40009, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Reject(13)), "{o:?}");
    // The worker's creation path refuses quietly (the slow path counts and answers).
    let key = translate::flow_key(&udp4("198.18.0.5", 40010, "203.0.113.1", 53)).unwrap();
    assert!(n.create_outbound(t0, &key, 0, INSIDE).is_none());
    assert_eq!(n.counters.get(NatEvent::HostLimit), 2);
    assert_eq!(
        n.counters.get(NatEvent::MappingsCreated),
        3,
        "no port taken"
    );
    assert_eq!(n.host_sessions(a("198.18.0.5")), 3);
    let o = n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.6", 40000, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Forward(_)), "another host: {o:?}");
    // A port forward's sessions belong to its inside target.
    for p in 0..4u16 {
        let o = n.handle(
            t0,
            Exception::Miss,
            &tcp4("203.0.113.9", 5000 + p, "198.19.0.1", 8080, tcp::flags::SYN),
            OUTSIDE,
        );
        let want_forward = p < 3;
        assert_eq!(
            matches!(o, NatOutcome::Forward(_)),
            want_forward,
            "{p}: {o:?}"
        );
    }
    assert_eq!(n.host_sessions(a("198.18.0.2")), 3);
    // Expiry gives the room back.
    n.tick(t0 + Duration::from_secs(301));
    assert_eq!(n.host_sessions(a("198.18.0.5")), 0);
    let o = n.handle(
        t0 + Duration::from_secs(301),
        Exception::Miss,
        &udp4("198.18.0.5", 40009, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Forward(_)), "{o:?}");
}

/// A full table whose sessions have expired (but not been swept yet) makes room for a new
/// one at once; a full table of live sessions refuses and evicts nothing (RFC 6888 REQ-11),
/// and a flood of refused packets costs a bounded number of reclaim passes.
#[test]
fn a_full_table_reclaims_expired_sessions_only() {
    let t0 = Instant::now();
    let mut c = cfg(Filtering::AddressDependent);
    c.max_sessions = 256;
    let mut n = NatPolicy::new(&c, t0, 1);
    let cap = n.sessions.capacity() as usize;
    let mut i = 0u16;
    while n.session_count() < cap {
        let src = format!("198.18.0.{}", 1 + i % 200);
        let o = n.handle(
            t0,
            Exception::Miss,
            &udp4(&src, 30000 + i, "203.0.113.1", 53),
            INSIDE,
        );
        assert!(matches!(o, NatOutcome::Forward(_)), "{o:?}");
        i += 1;
    }
    let later = t0 + Duration::from_secs(200);
    // Live sessions (UDP timeout 300 s): refused, nothing evicted, even under a flood.
    for k in 0..10_000u16 {
        let o = n.handle(
            later,
            Exception::Miss,
            &udp4("198.18.0.250", k, "203.0.113.1", 53),
            INSIDE,
        );
        assert!(matches!(o, NatOutcome::Reject(13)), "{o:?}");
    }
    assert_eq!(n.session_count(), cap);
    assert_eq!(n.counters.get(NatEvent::TableFull), 10_000);
    assert_eq!(n.counters.get(NatEvent::Reclaimed), 0);
    // Refresh one session so that it stays live; the rest expire.
    let keep = udp4("198.18.0.1", 30000, "203.0.113.1", 53);
    assert!(matches!(
        n.handle(later, Exception::Miss, &keep, INSIDE),
        NatOutcome::Forward(_)
    ));
    let late = t0 + Duration::from_secs(301);
    let o = n.handle(
        late,
        Exception::Miss,
        &udp4("198.18.0.250", 1, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Forward(_)), "reclaimed: {o:?}");
    assert!(n.counters.get(NatEvent::Reclaimed) >= cap as u64 - 1);
    let kept = translate::flow_key(&keep).unwrap();
    assert!(n.find(&kept).is_some(), "the live session survived");
}

/// RFC 7857 §2.1: an inbound SYN through a forward that the inside never answers lives on
/// its own short timer (`tcp_inbound_open`); an answered one gets the transitory and then
/// the established timer.
#[test]
fn unanswered_inbound_syn_expires_on_its_own_timer() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::AddressDependent), t0, 1);
    let syn = |sport| tcp4("203.0.113.9", sport, "198.19.0.1", 8080, tcp::flags::SYN);
    assert!(matches!(
        n.handle(t0, Exception::Miss, &syn(5000), OUTSIDE),
        NatOutcome::Forward(_)
    ));
    assert!(matches!(
        n.handle(t0, Exception::Miss, &syn(5001), OUTSIDE),
        NatOutcome::Forward(_)
    ));
    // The inside server answers the second one.
    let synack = tcp4(
        "198.18.0.2",
        80,
        "203.0.113.9",
        5001,
        tcp::flags::SYN | tcp::flags::ACK,
    );
    assert!(matches!(
        n.handle(t0, Exception::TcpControl, &synack, INSIDE),
        NatOutcome::Forward(_)
    ));
    let inbound = |sport| {
        translate::flow_key(&tcp4(
            "198.18.0.2",
            80,
            "203.0.113.9",
            sport,
            tcp::flags::ACK,
        ))
        .unwrap()
    };
    n.tick(t0 + Duration::from_secs(30));
    assert!(n.find(&inbound(5000)).is_some(), "not before 30 s");
    n.tick(t0 + Duration::from_secs(32));
    assert!(
        n.find(&inbound(5000)).is_none(),
        "unanswered: gone after 30 s"
    );
    assert!(n.find(&inbound(5001)).is_some(), "answered: kept");
    assert_eq!(n.host_sessions(a("198.18.0.2")), 1);
}

/// A hairpin session holds a reference on its target's mapping: while inside host A keeps
/// using B's external endpoint, B's mapping (and so its external port) is not released and
/// given to another host; it goes when the hairpin session does.
#[test]
fn hairpin_session_keeps_the_target_mapping() {
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::EndpointIndependent), t0, 1);
    let b_out = udp4("198.18.0.5", 40000, "203.0.113.1", 53);
    let (ext, eport, _, _) = endpoints(&n.handle(t0, Exception::Miss, &b_out, INSIDE));
    let a_to_b = udp4("198.18.0.6", 5000, &ext.to_string(), eport);
    let o = n.handle(t0, Exception::Miss, &a_to_b, INSIDE);
    assert_eq!(endpoints(&o).2, a("198.18.0.5"), "hairpinned to B");
    // A keeps the hairpin alive; B's own session goes idle and expires.
    let t1 = t0 + Duration::from_secs(200);
    assert!(matches!(
        n.handle(t1, Exception::Miss, &a_to_b, INSIDE),
        NatOutcome::Forward(_)
    ));
    n.tick(t0 + Duration::from_secs(301));
    assert_eq!(
        n.counters.get(NatEvent::SessionsExpired),
        1,
        "B's outbound session"
    );
    assert_eq!(
        n.counters.get(NatEvent::MappingsReleased),
        0,
        "B's mapping is still in use"
    );
    let o = n.handle(
        t0 + Duration::from_secs(302),
        Exception::Miss,
        &a_to_b,
        INSIDE,
    );
    assert_eq!(endpoints(&o).2, a("198.18.0.5"), "still B's");
    // When the hairpin expires too, both mappings (A's and B's) are released.
    n.tick(t0 + Duration::from_secs(700));
    assert_eq!(n.counters.get(NatEvent::MappingsReleased), 2);
    assert_eq!(
        n.mappings.len(),
        1,
        "only the port forward's permanent mapping"
    );
}

/// A policy with the default test config (one forward), for sibling modules' tests.
pub(super) fn policy_for_inspect(now: Instant) -> NatPolicy {
    NatPolicy::new(&cfg(Filtering::AddressDependent), now, 1)
}

/// One outbound UDP flow from 198.18.0.5:`sport` to 203.0.113.1:53.
pub(super) fn open_udp(n: &mut NatPolicy, now: Instant, sport: u16) {
    let o = n.handle(
        now,
        Exception::Miss,
        &udp4("198.18.0.5", sport, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(matches!(o, NatOutcome::Forward(_)), "{o:?}");
}

/// The event log: a mapping's creation and release (APMADD/APMDEL) with inside and external
/// endpoints; sessions (SADD/SDEL) with the remote only when destinations are on; forwards'
/// permanent mappings are configuration, not events; a flood past the buffer is dropped and
/// counted, never grown.
#[test]
fn event_log_mappings_sessions_and_a_bounded_buffer() {
    use crate::nat::log::LogKind;
    let t0 = Instant::now();
    let mut n = NatPolicy::new(&cfg(Filtering::AddressDependent), t0, 1);
    assert!(n.take_log().is_empty(), "off by default");
    n.set_log(Some((8, false)));
    n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.1", 53),
        INSIDE,
    );
    n.handle(
        t0,
        Exception::Miss,
        &udp4("198.18.0.5", 40000, "203.0.113.2", 53),
        INSIDE,
    );
    let ev = n.take_log();
    assert_eq!(ev.len(), 1, "one mapping, two sessions: {ev:?}");
    assert_eq!(ev[0].kind, LogKind::MappingAdd);
    assert_eq!(ev[0].proto, proto::UDP);
    assert_eq!(ev[0].inside, (a("198.18.0.5"), 40000));
    assert_eq!(ev[0].external, (a("198.19.0.1"), 40000));
    assert_eq!(ev[0].remote, None);
    assert!(n.take_log().is_empty(), "taken");
    // Both sessions expire: the mapping goes with the last.
    let later = t0 + Duration::from_secs(400);
    n.tick(later);
    let ev = n.take_log();
    assert_eq!(
        ev.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [LogKind::MappingDel]
    );
    assert_eq!(ev[0].external, (a("198.19.0.1"), 40000));
    assert_eq!(ev[0].at, later);

    // Destinations on: sessions too, an inbound forward's with the remote client.
    n.set_log(Some((8, true)));
    n.handle(
        later,
        Exception::Miss,
        &udp4("198.18.0.6", 5000, "203.0.113.1", 53),
        INSIDE,
    );
    n.handle(
        later,
        Exception::Miss,
        &tcp4("203.0.113.7", 33000, "198.19.0.1", 8080, tcp::flags::SYN),
        OUTSIDE,
    );
    let ev = n.take_log();
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            LogKind::MappingAdd,
            LogKind::SessionAdd,
            LogKind::SessionAdd
        ],
        "{ev:?}"
    );
    assert_eq!(ev[1].remote, Some((a("203.0.113.1"), 53)));
    assert_eq!(ev[2].inside, (a("198.18.0.2"), 80));
    assert_eq!(ev[2].external, (a("198.19.0.1"), 8080));
    assert_eq!(ev[2].remote, Some((a("203.0.113.7"), 33000)));
    assert_eq!(n.delete_sessions(later, (a("198.18.0.6"), 5000), None), 1);
    let kinds: Vec<_> = n.take_log().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [LogKind::SessionDel, LogKind::MappingDel]);

    // A flood of new mappings: 8 buffered, the rest dropped and counted.
    for port in 0..100u16 {
        n.handle(
            later,
            Exception::Miss,
            &udp4("198.18.0.7", 10000 + port, "203.0.113.1", 53),
            INSIDE,
        );
    }
    assert_eq!(n.take_log().len(), 8);
    assert_eq!(n.counters.get(NatEvent::LogDropped), 192);
    n.set_log(None);
    n.handle(
        later,
        Exception::Miss,
        &udp4("198.18.0.8", 1, "203.0.113.1", 53),
        INSIDE,
    );
    assert!(n.take_log().is_empty(), "off again");
}
