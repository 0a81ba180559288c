//! Unit tests of the neighbour cache (a fake clock, no I/O).

use super::*;
use rand::{Rng, SeedableRng};

const P0: PortId = PortId(0);
const P1: PortId = PortId(1);
const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const GW: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Fake clock: a base instant plus millisecond offsets.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }

    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// Test packets are numbers; each counts 100 bytes.
impl QueuedLen for u32 {
    fn queued_len(&self) -> usize {
        100
    }
}

/// The defaults, with today's small packet queue for the tests written against it.
fn cfg() -> NeighConfig {
    NeighConfig {
        queue_len: 4,
        ..NeighConfig::default()
    }
}

fn cache(cfg: NeighConfig) -> NeighCache<u32> {
    NeighCache::new(cfg)
}

fn poll(c: &mut NeighCache<u32>, now: Instant) -> Vec<Event<u32>> {
    let mut out = Vec::new();
    c.poll(now, &mut out);
    c.check_invariants();
    out
}

fn ip(i: u32) -> Ipv4Addr {
    // 198.18.0.0/15 holds 131072 addresses.
    assert!(i < 1 << 17);
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i)
}

#[test]
fn request_rate_limited_to_one_per_retrans_time() {
    let t = Clock::new();
    let mut c = cache(NeighConfig {
        queue_len: 16,
        ..cfg()
    });
    let mut requests = 0;
    for i in 0..10 {
        match c.resolve(t.at(u64::from(i)), GW, P1, i) {
            Resolve::Queued { send_request } => requests += u32::from(send_request),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(requests, 1);
    assert_eq!(c.state(GW), Some(State::Incomplete));
    assert!(poll(&mut c, t.at(999)).is_empty());
    assert_eq!(
        c.resolve(t.at(999), GW, P1, 10),
        Resolve::Queued {
            send_request: false
        }
    );
    // One retrans_time after the first request, the next may go (from resolve or poll).
    assert_eq!(
        c.resolve(t.at(1000), GW, P1, 11),
        Resolve::Queued { send_request: true }
    );
    assert!(poll(&mut c, t.at(1500)).is_empty());
    assert_eq!(
        poll(&mut c, t.at(2000)),
        vec![Event::SendRequest {
            ip: GW,
            port: P1,
            unicast: None
        }]
    );
    assert_eq!(c.stats().requests_sent, 3);
}

#[test]
fn byte_budgets_per_neighbour_and_in_all() {
    let t = Clock::new();
    // Test packets count 100 bytes: 10 per neighbour, 25 in all.
    let mut c = cache(NeighConfig {
        queue_len: 1000,
        queue_bytes: 1000,
        total_queue_bytes: 2500,
        ..cfg()
    });
    for i in 0..10 {
        assert!(matches!(
            c.resolve(t.at(0), GW, P1, i),
            Resolve::Queued { .. }
        ));
    }
    // The 11th for GW pushes out the oldest.
    assert_eq!(c.resolve(t.at(0), GW, P1, 10), Resolve::QueueFull(vec![0]));
    let other = ip(500);
    for i in 100..110 {
        assert!(matches!(
            c.resolve(t.at(0), other, P1, i),
            Resolve::Queued { .. }
        ));
    }
    // A third neighbour gets what is left of the cache-wide budget, then its new packets
    // are refused (its entry still resolves).
    let third = ip(501);
    for i in 200..205 {
        assert!(matches!(
            c.resolve(t.at(0), third, P1, i),
            Resolve::Queued { .. }
        ));
    }
    assert_eq!(
        c.resolve(t.at(0), third, P1, 205),
        Resolve::QueueFull(vec![205])
    );
    let fourth = ip(502);
    assert_eq!(
        c.resolve(t.at(0), fourth, P1, 300),
        Resolve::QueueFull(vec![300])
    );
    assert_eq!(c.state(fourth), Some(State::Incomplete), "still resolved");
    c.check_invariants();
    // Resolution frees the budget for others.
    let l = c.learn(t.at(1), GW, MAC_A, P1, false);
    assert_eq!(l.released, (1..=10).collect::<Vec<_>>());
    assert!(matches!(
        c.resolve(t.at(1), fourth, P1, 301),
        Resolve::Queued { .. }
    ));
    // So do failure and a link going down.
    let mut out = Vec::new();
    c.poll(t.at(10_000), &mut out);
    c.check_invariants();
    c.flush_port(P1);
    c.check_invariants();
    assert_eq!(c.stats().queue_overflow, 3);
}

#[test]
fn a_packet_larger_than_the_neighbour_budget_is_refused() {
    let t = Clock::new();
    let mut c = cache(NeighConfig {
        queue_bytes: 99,
        ..cfg()
    });
    assert_eq!(c.resolve(t.at(0), GW, P1, 1), Resolve::QueueFull(vec![1]));
    assert_eq!(c.state(GW), Some(State::Incomplete));
    c.check_invariants();
}

#[test]
fn queue_limit_drops_oldest() {
    let t = Clock::new();
    let mut c = cache(cfg());
    for i in 0..4 {
        assert!(matches!(
            c.resolve(t.at(0), GW, P1, i),
            Resolve::Queued { .. }
        ));
    }
    assert_eq!(c.resolve(t.at(1), GW, P1, 4), Resolve::QueueFull(vec![0]));
    assert_eq!(c.resolve(t.at(2), GW, P1, 5), Resolve::QueueFull(vec![1]));
    assert_eq!(c.stats().queue_overflow, 2);
    c.check_invariants();
    let l = c.learn(t.at(3), GW, MAC_A, P1, false);
    assert_eq!(l.released, vec![2, 3, 4, 5]);
}

#[test]
fn resolution_releases_queued_packets_in_order() {
    let t = Clock::new();
    let mut c = cache(cfg());
    assert_eq!(
        c.resolve(t.at(0), GW, P1, 7),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(
        c.resolve(t.at(5), GW, P1, 8),
        Resolve::Queued {
            send_request: false
        }
    );
    assert_eq!(
        c.resolve(t.at(6), GW, P1, 9),
        Resolve::Queued {
            send_request: false
        }
    );
    assert_eq!(c.lookup(GW), None);
    let l = c.learn(t.at(10), GW, MAC_A, P1, false);
    assert_eq!(
        l,
        Learned {
            released: vec![7, 8, 9],
            changed: true
        }
    );
    assert_eq!(c.state(GW), Some(State::Reachable));
    assert_eq!(c.lookup(GW), Some((MAC_A, P1)));
    assert_eq!(c.resolve(t.at(11), GW, P1, 10), Resolve::Known(MAC_A, 10));
    assert_eq!(c.stats().replies_learned, 1);
    c.check_invariants();
}

#[test]
fn failure_after_max_requests_hands_back_packets() {
    let t = Clock::new();
    let mut c = cache(cfg());
    assert_eq!(
        c.resolve(t.at(0), GW, P1, 1),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(
        c.resolve(t.at(100), GW, P1, 2),
        Resolve::Queued {
            send_request: false
        }
    );
    let req = Event::SendRequest {
        ip: GW,
        port: P1,
        unicast: None,
    };
    assert_eq!(poll(&mut c, t.at(1000)), vec![req]);
    let req = Event::SendRequest {
        ip: GW,
        port: P1,
        unicast: None,
    };
    assert_eq!(poll(&mut c, t.at(2000)), vec![req]);
    assert_eq!(c.state(GW), Some(State::Incomplete));
    // The third (last) request gets its full retrans_time before we give up.
    assert!(poll(&mut c, t.at(2999)).is_empty());
    assert_eq!(
        poll(&mut c, t.at(3000)),
        vec![Event::Unreachable {
            ip: GW,
            port: P1,
            pending: vec![1, 2]
        }]
    );
    assert_eq!(c.state(GW), Some(State::Failed));
    assert_eq!(c.stats().requests_sent, 3);
    assert_eq!(c.stats().failed, 1);
    assert_eq!(c.generation(), 1, "the Failed set changed (published)");
}

fn failed_at_3s(t: &Clock) -> NeighCache<u32> {
    let mut c = cache(cfg());
    c.resolve(t.at(0), GW, P1, 1);
    for ms in [1000, 2000, 3000] {
        poll(&mut c, t.at(ms));
    }
    assert_eq!(c.state(GW), Some(State::Failed));
    c
}

#[test]
fn failed_hold_fails_fast_then_retries() {
    let t = Clock::new();
    let mut c = failed_at_3s(&t);
    let sent = c.stats().requests_sent;
    assert_eq!(c.resolve(t.at(4000), GW, P1, 5), Resolve::Unreachable(5));
    assert_eq!(c.resolve(t.at(5999), GW, P1, 6), Resolve::Unreachable(6));
    assert_eq!(c.stats().requests_sent, sent, "no requests while Failed");
    assert!(poll(&mut c, t.at(5999)).is_empty());
    assert!(
        poll(&mut c, t.at(6000)).is_empty(),
        "Failed entries go silently"
    );
    assert_eq!(c.state(GW), None);
    assert_eq!(
        c.resolve(t.at(6100), GW, P1, 7),
        Resolve::Queued { send_request: true }
    );
}

#[test]
fn failed_set_is_published_and_withdrawn() {
    // The workers learn Failed neighbours from the snapshot (to drop and throttle their
    // packets), so entering and leaving Failed bumps the generation.
    let t = Clock::new();
    let mut c = NeighCache::new(cfg());
    assert_eq!(
        c.resolve(t.at(0), GW, P0, 1),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(c.iter_failed().count(), 0);
    let mut g = c.generation();
    let mut at = 0;
    while c.state(GW) != Some(State::Failed) {
        at += 100;
        assert!(at <= 10_000, "never Failed");
        let _ = poll(&mut c, t.at(at));
    }
    assert!(c.generation() > g, "Failed published");
    assert_eq!(c.iter_failed().collect::<Vec<_>>(), vec![GW]);
    g = c.generation();
    // Hold over: collected by poll, and withdrawn.
    let _ = poll(&mut c, t.at(at + 3000));
    assert_eq!(c.state(GW), None);
    assert!(c.generation() > g, "Failed withdrawn");
    assert_eq!(c.iter_failed().count(), 0);
}

#[test]
fn failed_hold_over_before_poll_restarts_resolution() {
    let t = Clock::new();
    let mut c = failed_at_3s(&t);
    assert_eq!(
        c.resolve(t.at(6000), GW, P0, 8),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(c.state(GW), Some(State::Incomplete));
    c.check_invariants();
    assert_eq!(c.learn(t.at(6001), GW, MAC_A, P0, false).released, vec![8]);
}

#[test]
fn failed_entry_resolved_by_late_reply() {
    let t = Clock::new();
    let mut c = failed_at_3s(&t);
    let g = c.generation();
    let l = c.learn(t.at(3500), GW, MAC_A, P1, false);
    assert_eq!(
        l,
        Learned {
            released: vec![],
            changed: true
        }
    );
    assert_eq!(c.lookup(GW), Some((MAC_A, P1)));
    assert_eq!(c.generation(), g + 1);
    assert_eq!(c.iter_failed().count(), 0, "no longer Failed");
}

#[test]
fn reachable_goes_stale_and_is_revalidated() {
    let t = Clock::new();
    let mut c = cache(cfg());
    assert!(c.learn(t.at(0), GW, MAC_A, P1, true).changed);
    let g = c.generation();
    assert!(poll(&mut c, t.at(29_999)).is_empty());
    assert_eq!(
        poll(&mut c, t.at(30_000)),
        vec![Event::SendRequest {
            ip: GW,
            port: P1,
            unicast: Some(MAC_A)
        }]
    );
    assert_eq!(c.state(GW), Some(State::Stale));
    assert_eq!(c.lookup(GW), Some((MAC_A, P1)), "Stale stays usable");
    assert_eq!(c.resolve(t.at(30_100), GW, P1, 1), Resolve::Known(MAC_A, 1));
    assert!(poll(&mut c, t.at(30_500)).is_empty());
    assert_eq!(
        poll(&mut c, t.at(31_000)),
        vec![Event::SendRequest {
            ip: GW,
            port: P1,
            unicast: Some(MAC_A)
        }]
    );
    let l = c.learn(t.at(31_200), GW, MAC_A, P1, false);
    assert_eq!(
        l,
        Learned {
            released: vec![],
            changed: false
        }
    );
    assert_eq!(c.state(GW), Some(State::Reachable));
    assert_eq!(
        c.generation(),
        g,
        "re-validation does not change the resolved set"
    );
    assert!(poll(&mut c, t.at(61_199)).is_empty());
    assert_eq!(poll(&mut c, t.at(61_200)).len(), 1);
}

#[test]
fn stale_expires_without_reply() {
    let t = Clock::new();
    let mut c = cache(cfg());
    c.learn(t.at(0), GW, MAC_A, P1, true);
    let g = c.generation();
    for ms in [30_000, 31_000, 32_000] {
        let ev = poll(&mut c, t.at(ms));
        assert_eq!(
            ev,
            vec![Event::SendRequest {
                ip: GW,
                port: P1,
                unicast: Some(MAC_A)
            }]
        );
    }
    assert!(poll(&mut c, t.at(32_999)).is_empty());
    assert_eq!(c.generation(), g);
    assert_eq!(poll(&mut c, t.at(33_000)), vec![Event::Expired { ip: GW }]);
    assert_eq!(c.generation(), g + 1);
    assert_eq!(c.lookup(GW), None);
    assert!(c.is_empty());
    assert_eq!(c.stats().expired, 1);
    assert_eq!(c.stats().requests_sent, 3);
}

#[test]
fn mac_change_updates_entry_and_bumps_generation() {
    let t = Clock::new();
    let mut c = cache(cfg());
    c.learn(t.at(0), GW, MAC_A, P1, true);
    let g = c.generation();
    // Gratuitous ARP from a replacement host; not addressed to us (create = false).
    let l = c.learn(t.at(10), GW, MAC_B, P1, false);
    assert!(l.changed);
    assert_eq!(c.lookup(GW), Some((MAC_B, P1)));
    assert_eq!(c.generation(), g + 1);
    assert_eq!(c.stats().mac_changed, 1);
    // Same MAC again: a confirmation, not a change.
    assert!(!c.learn(t.at(20), GW, MAC_B, P1, false).changed);
    assert_eq!(c.generation(), g + 1);
    // Same MAC on another port is a change too.
    assert!(c.learn(t.at(30), GW, MAC_B, P0, false).changed);
    assert_eq!(c.lookup(GW), Some((MAC_B, P0)));
}

#[test]
fn create_false_does_not_create() {
    let t = Clock::new();
    let mut c = cache(cfg());
    let l = c.learn(t.at(0), HOST, MAC_A, P0, false);
    assert_eq!(
        l,
        Learned {
            released: vec![],
            changed: false
        }
    );
    assert!(c.is_empty());
    assert_eq!(c.generation(), 0);
    assert!(c.learn(t.at(0), HOST, MAC_A, P0, true).changed);
    assert_eq!(c.len(), 1);
}

#[test]
fn bogus_sender_mac_ignored() {
    let t = Clock::new();
    let mut c = cache(cfg());
    for mac in [
        MacAddr::BROADCAST,
        MacAddr::ZERO,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
    ] {
        assert!(!c.learn(t.at(0), HOST, mac, P0, true).changed);
    }
    assert!(c.is_empty());
    assert_eq!(c.stats().bogus_ignored, 3);
}

#[test]
fn eviction_order_failed_then_oldest_stale_never_reachable() {
    let t = Clock::new();
    let mut c = cache(NeighConfig {
        max_entries: 5,
        ..cfg()
    });
    let reach = ip(1);
    let stale_old = ip(2);
    let stale_new = ip(3);
    let pending = ip(4);
    let failed = ip(5);
    // Unsolicited ARP creates Stale entries.
    c.learn(t.at(0), stale_old, MAC_A, P0, true);
    c.learn(t.at(10), stale_new, MAC_A, P0, true);
    assert_eq!(c.state(stale_old), Some(State::Stale));
    // `reach` answers our request: Reachable.
    c.resolve(t.at(20), reach, P0, 0);
    assert!(c.learn(t.at(30), reach, MAC_B, P0, false).changed);
    assert_eq!(c.state(reach), Some(State::Reachable));
    // A second unsolicited ARP from an unprobed Stale entry does not confirm it.
    c.learn(t.at(40), stale_old, MAC_A, P0, true);
    assert_eq!(c.state(stale_old), Some(State::Stale));
    c.resolve(t.at(26_000), failed, P0, 0);
    for ms in [27_000, 28_000, 29_000] {
        poll(&mut c, t.at(ms));
    }
    c.resolve(t.at(29_000), pending, P0, 0);
    assert_eq!(c.state(failed), Some(State::Failed));
    assert_eq!(c.state(pending), Some(State::Incomplete));
    assert_eq!(c.len(), 5);
    let g = c.generation();

    let new = |i: u32| ip(100 + i);
    assert!(matches!(
        c.resolve(t.at(29_020), new(0), P0, 9),
        Resolve::Queued { .. }
    ));
    assert_eq!(c.state(failed), None, "Failed first");
    assert_eq!(c.generation(), g + 1);
    assert!(c.learn(t.at(29_020), new(1), MAC_A, P1, true).changed);
    assert_eq!(c.state(stale_old), None, "then the oldest Stale");
    assert!(c.learn(t.at(29_020), new(2), MAC_A, P1, true).changed);
    assert_eq!(c.state(stale_new), None);
    // new(1), new(2) are unsolicited Stale entries: the next ones evict them, oldest first.
    assert!(matches!(
        c.resolve(t.at(29_030), new(3), P0, 9),
        Resolve::Queued { .. }
    ));
    assert_eq!(c.state(new(1)), None);
    assert!(matches!(
        c.resolve(t.at(29_030), new(4), P0, 9),
        Resolve::Queued { .. }
    ));
    assert_eq!(c.state(new(2)), None);
    // Left: reach, pending, new(0), new(3), new(4): Reachable or Incomplete, never evicted.
    assert_eq!(
        c.resolve(t.at(29_040), new(5), P0, 9),
        Resolve::TableFull(9)
    );
    assert!(!c.learn(t.at(29_040), new(6), MAC_A, P1, true).changed);
    assert_eq!(c.state(reach), Some(State::Reachable));
    assert_eq!(c.stats().evicted, 5);
    assert_eq!(c.stats().table_full_refused, 2);
    assert_eq!(c.len(), 5);
    c.check_invariants();
}

/// A spoofed ARP flood (100 000 unsolicited senders on one port) cannot make the routes'
/// next hops unresolvable: pinned next hops are resolved even when asked for only after the
/// flood filled the table, the flood's entries evict each other (never a Reachable one),
/// memory stays bounded, and the other port keeps a quarter of the table.
/// A spoofed sender of the flood: 198.18.128.0/17, cycling (not HOST, not GW).
fn flooder(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 128, 0)) + i % 32_768)
}

#[test]
fn spoofed_arp_flood_never_blocks_a_pinned_gateway() {
    let t = Clock::new();
    let mut c = cache(NeighConfig {
        max_entries: 1024,
        max_entries_per_port: 768,
        ..cfg()
    });
    c.set_pinned([GW]);
    // A neighbour we resolved before the flood (Reachable).
    c.resolve(t.at(0), HOST, P0, 1);
    c.learn(t.at(0), HOST, MAC_A, P0, false);
    for i in 0..100_000u32 {
        let b = i.to_be_bytes();
        let mac = MacAddr([0x02, 0xee, b[0], b[1], b[2], b[3]]);
        c.learn(t.at(1000), flooder(i), mac, P0, true);
        assert!(c.len() <= 1024);
    }
    c.check_invariants();
    assert_eq!(c.len(), 768, "the flooded port holds its quota, no more");
    assert_eq!(c.state(HOST), Some(State::Reachable), "never evicted");
    // The gateway is resolved after the flood: room is always there.
    assert_eq!(
        c.resolve(t.at(2000), GW, P1, 7),
        Resolve::Queued { send_request: true }
    );
    let l = c.learn(t.at(2001), GW, MAC_B, P1, false);
    assert_eq!(l.released, vec![7]);
    assert_eq!(c.lookup(GW), Some((MAC_B, P1)));
    // The other port still has room for its own hosts.
    for k in 0..256u32 {
        let h = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 1, 0)) + k);
        assert!(matches!(
            c.resolve(t.at(2002), h, P1, 9),
            Resolve::Queued { .. }
        ));
    }
    // And the flood goes on: the gateway and the Reachable host stay.
    for i in 100_000..200_000u32 {
        let b = i.to_be_bytes();
        let mac = MacAddr([0x02, 0xef, b[0], b[1], b[2], b[3]]);
        c.learn(t.at(3000), flooder(i), mac, P0, true);
    }
    assert_eq!(c.lookup(GW), Some((MAC_B, P1)));
    assert_eq!(c.state(HOST), Some(State::Reachable));
    assert!(c.stats().evicted >= 199_000);
    assert!(c.len() <= 1024 + 1);
    c.check_invariants();
}

/// Unsolicited ARP makes entries usable at once (Stale) but does not confirm them; an
/// answer to our probe does.
#[test]
fn unsolicited_entries_are_stale_until_they_answer_a_probe() {
    let t = Clock::new();
    let mut c = cache(cfg());
    assert!(c.learn(t.at(0), HOST, MAC_A, P0, true).changed);
    assert_eq!(c.state(HOST), Some(State::Stale));
    assert_eq!(c.lookup(HOST), Some((MAC_A, P0)), "usable at once");
    assert!(
        poll(&mut c, t.at(29_000)).is_empty(),
        "no probe before reachable_time"
    );
    let ev = poll(&mut c, t.at(30_000));
    assert_eq!(
        ev,
        vec![Event::SendRequest {
            ip: HOST,
            port: P0,
            unicast: Some(MAC_A)
        }]
    );
    c.learn(t.at(30_001), HOST, MAC_A, P0, false);
    assert_eq!(c.state(HOST), Some(State::Reachable), "answered our probe");
    c.check_invariants();
}

#[test]
fn generation_bumps_exactly_when_resolved_set_changes() {
    let t = Clock::new();
    let mut c = cache(cfg());
    let mut g = c.generation();
    let mut expect = |c: &NeighCache<u32>, bumped: bool, what: &str| {
        let now = c.generation();
        assert_eq!(now != g, bumped, "{what}");
        assert!(now == g || now == g + 1, "{what}: one bump at most");
        g = now;
    };
    c.resolve(t.at(0), GW, P1, 1);
    expect(&c, false, "Incomplete created");
    c.resolve(t.at(1), GW, P1, 2);
    expect(&c, false, "packet queued");
    c.learn(t.at(2), GW, MAC_A, P1, false);
    expect(&c, true, "resolved");
    c.learn(t.at(3), GW, MAC_A, P1, false);
    expect(&c, false, "confirmation");
    c.learn(t.at(4), HOST, MAC_B, P0, false);
    expect(&c, false, "create=false for unknown");
    c.learn(t.at(5), HOST, MAC_B, P0, true);
    expect(&c, true, "created Reachable");
    poll(&mut c, t.at(30_010));
    assert_eq!(c.state(HOST), Some(State::Stale));
    expect(&c, false, "Reachable -> Stale");
    c.learn(t.at(30_500), GW, MAC_A, P1, false);
    expect(&c, false, "Stale re-validated");
    c.learn(t.at(30_600), GW, MAC_B, P1, false);
    expect(&c, true, "MAC changed");
    for ms in [31_010, 32_010, 33_010] {
        poll(&mut c, t.at(ms));
    }
    assert_eq!(c.state(HOST), None);
    expect(&c, true, "Stale expired");
    c.flush_port(P0);
    expect(&c, false, "flush of a port with nothing resolved");
    c.flush_port(P1);
    expect(&c, true, "flush removed a resolved entry");
}

#[test]
fn flush_port_drops_only_that_port() {
    let t = Clock::new();
    let mut c = cache(cfg());
    c.learn(t.at(0), GW, MAC_A, P1, true);
    c.learn(t.at(0), HOST, MAC_B, P0, true);
    c.resolve(t.at(0), Ipv4Addr::new(198, 19, 0, 3), P1, 1);
    c.resolve(t.at(0), Ipv4Addr::new(198, 18, 0, 3), P0, 2);
    let g = c.generation();
    c.flush_port(P1);
    assert_eq!(c.len(), 2);
    assert_eq!(c.lookup(GW), None);
    assert_eq!(c.state(Ipv4Addr::new(198, 19, 0, 3)), None);
    assert_eq!(c.lookup(HOST), Some((MAC_B, P0)));
    assert_eq!(c.generation(), g + 1);
    let resolved: Vec<_> = c.iter_resolved().collect();
    assert_eq!(resolved, vec![(HOST, MAC_B, P0)]);
    c.check_invariants();
}

#[test]
fn zero_limits_are_raised_to_one() {
    let t = Clock::new();
    let mut c = cache(NeighConfig {
        max_entries: 0,
        queue_len: 0,
        max_requests: 0,
        ..cfg()
    });
    assert_eq!(
        c.resolve(t.at(0), GW, P1, 1),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(c.resolve(t.at(0), GW, P1, 2), Resolve::QueueFull(vec![1]));
    assert_eq!(
        poll(&mut c, t.at(1000)),
        vec![Event::Unreachable {
            ip: GW,
            port: P1,
            pending: vec![2]
        }]
    );
    c.learn(t.at(1000), HOST, MAC_A, P0, true);
    assert_eq!(c.state(GW), None, "the Failed entry made room");
    assert_eq!(c.state(HOST), Some(State::Stale), "unsolicited: Stale");
    // ... and an unsolicited entry is evictable in turn.
    assert_eq!(
        c.resolve(t.at(1000), GW, P1, 3),
        Resolve::Queued { send_request: true }
    );
    assert_eq!(c.state(HOST), None);
    c.check_invariants();
}

/// Random operations keep the invariants, and lookup agrees with iter_resolved.
#[test]
fn randomized_invariants() {
    let t = Clock::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut c = cache(NeighConfig {
        max_entries: 32,
        ..cfg()
    });
    let mut now = 0u64;
    let mut gen_seen = c.generation();
    for step in 0..20_000u32 {
        now += rng.gen_range(0..300);
        let target = ip(rng.gen_range(0..64));
        let port = PortId(rng.gen_range(0..2));
        let published = |c: &NeighCache<u32>| {
            let mut v: Vec<_> = c.iter_resolved().collect();
            v.sort();
            let mut f: Vec<_> = c.iter_failed().collect();
            f.sort();
            (v, f)
        };
        let before = published(&c);
        match rng.gen_range(0..10) {
            0..=3 => {
                let _ = c.resolve(t.at(now), target, port, step);
            }
            4..=6 => {
                let mac = MacAddr([0x02, 0, 0, 0, 0, rng.gen_range(1..4)]);
                let _ = c.learn(t.at(now), target, mac, port, rng.gen_bool(0.5));
            }
            7 if rng.gen_bool(0.01) => c.flush_port(port),
            _ => {
                let _ = poll(&mut c, t.at(now));
            }
        }
        c.check_invariants();
        let after = published(&c);
        for &(i, mac, p) in &after.0 {
            assert_eq!(c.lookup(i), Some((mac, p)));
        }
        // Exactly when: a bump iff the resolved or the Failed set differs.
        assert_eq!(before != after, c.generation() != gen_seen, "step {step}");
        gen_seen = c.generation();
    }
}
