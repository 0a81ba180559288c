//! The control-side ARP cache: RFC 826 resolution with RFC 1122 §2.3.2 timers and limits.
//!
//! Owns the neighbour state machine, the per-neighbour packet queues, request rate limiting and
//! the bound on table size. It does no I/O: it tells the caller what to send ([`Resolve`],
//! [`Event`]) and the caller (the control thread) builds and transmits ARP frames. Time is
//! passed in as [`Instant`], so tests drive it with a fake clock.
//!
//! ```text
//!            resolve()               learn()                reachable_time
//!   (none) ───────────► Incomplete ──────────► Reachable ─────────────────► Stale
//!                          │  ▲                  ▲   ▲ learn()                │ unicast probe every
//!   max_requests unanswered│  │ resolve() after  │   └────────────────────────┤ retrans_time
//!                          ▼  │ failed_hold      │ learn()                    │ max_requests
//!                        Failed ─────────────────┘                            ▼ unanswered
//!                          │ failed_hold elapsed                           removed (Expired)
//!                          ▼
//!                       removed
//! ```
//!
//! Contract:
//! - At most one request per `retrans_time` per destination (RFC 1122 §2.3.2.1).
//! - At most `queue_len` packets and `queue_bytes` bytes wait per unresolved neighbour (as
//!   Linux's `unres_qlen_bytes`); when full the oldest are dropped (RFC 1122 §2.3.2.2: keep at
//!   least the latest). All queues together hold at most `total_queue_bytes`; beyond that a
//!   new packet is dropped (an unreachable subnet cannot hold more than that).
//! - At most `max_entries` entries. When full, reclaim a Failed entry, then an Incomplete entry
//!   whose requests are exhausted, then the least recently confirmed Stale entry. A Reachable
//!   entry is never evicted and the table is never flushed wholesale; otherwise the new entry is
//!   refused. Victim search is one pass over the table, skipped entirely when only Reachable
//!   entries exist (the ARP-flood case).
//! - [`NeighCache::generation`] changes exactly when the resolved set `ip → (mac, port)` changes.
//! - Any ARP (request or reply) from a neighbour confirms it: it becomes Reachable.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::mem;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::PortId;
use crate::wire::ethernet::MacAddr;

/// Tunables of the neighbour cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighConfig {
    /// Upper bound on entries of any state (clamped to at least 1).
    pub max_entries: usize,
    /// Packets held per unresolved neighbour (clamped to at least 1).
    pub queue_len: usize,
    /// Bytes held per unresolved neighbour.
    pub queue_bytes: usize,
    /// Bytes held for all unresolved neighbours together.
    pub total_queue_bytes: usize,
    /// How long a confirmation keeps a neighbour Reachable.
    pub reachable_time: Duration,
    /// Minimum interval between two requests for the same neighbour.
    pub retrans_time: Duration,
    /// Requests sent before a neighbour is declared unreachable (clamped to at least 1).
    pub max_requests: u32,
    /// While Failed, new packets fail at once without new requests (default 3 s).
    pub failed_hold: Duration,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            max_entries: 4096,
            queue_len: 4096,
            queue_bytes: 212_992,
            total_queue_bytes: 4 << 20,
            reachable_time: Duration::from_secs(30),
            retrans_time: Duration::from_secs(1),
            max_requests: 3,
            failed_hold: Duration::from_secs(3),
        }
    }
}

/// State of one neighbour entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Requests sent, no answer yet; packets are queued.
    Incomplete,
    /// Confirmed within `reachable_time`.
    Reachable,
    /// `reachable_time` passed; still usable while being re-validated by unicast probes.
    Stale,
    /// No answer to `max_requests` requests; packets fail at once until `failed_hold` passes.
    Failed,
}

impl State {
    const COUNT: usize = 4;

    fn idx(self) -> usize {
        match self {
            State::Incomplete => 0,
            State::Reachable => 1,
            State::Stale => 2,
            State::Failed => 3,
        }
    }

    fn is_resolved(self) -> bool {
        matches!(self, State::Reachable | State::Stale)
    }
}

/// What the caller must do with a packet handed to [`NeighCache::resolve`].
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve<P> {
    /// Already resolved; the caller sends the packet to this MAC.
    Known(MacAddr, P),
    /// The packet was queued; if `send_request`, the caller broadcasts an ARP request now.
    Queued {
        /// Whether a request is due now (rate limited to one per `retrans_time`).
        send_request: bool,
    },
    /// The queue was full: these packets were dropped (counted): the oldest of the
    /// neighbour's queue to make room for the new one, or the new one itself when it does
    /// not fit the neighbour's or the cache-wide byte budget.
    QueueFull(Vec<P>),
    /// The neighbour is Failed within `failed_hold`: send ICMP host unreachable for this packet.
    Unreachable(P),
    /// The table is full of entries that may not be reclaimed; the packet is refused (counted).
    TableFull(P),
}

/// Outcome of [`NeighCache::learn`].
#[derive(Debug, PartialEq, Eq)]
pub struct Learned<P> {
    /// Packets that were waiting for this neighbour, oldest first; send them to the MAC now.
    pub released: Vec<P>,
    /// Whether the resolved set changed (the adjacency snapshot must be republished).
    pub changed: bool,
}

/// An action requested by [`NeighCache::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum Event<P> {
    /// Send an ARP request for `ip` out of `port`: broadcast if `unicast` is `None`, otherwise a
    /// unicast probe to the known MAC (re-validation of a Stale entry).
    SendRequest {
        /// Address being resolved.
        ip: Ipv4Addr,
        /// Port to send on.
        port: PortId,
        /// Destination MAC for a unicast probe.
        unicast: Option<MacAddr>,
    },
    /// Resolution failed; send ICMP host unreachable for `pending` (RFC 1812 §4.3.3.1).
    Unreachable {
        /// Address that did not answer.
        ip: Ipv4Addr,
        /// Port it was expected on.
        port: PortId,
        /// Packets that were queued for it, oldest first.
        pending: Vec<P>,
    },
    /// A resolved neighbour stopped answering and was removed (generation bumped).
    Expired {
        /// Address removed.
        ip: Ipv4Addr,
    },
}

/// Counters of the neighbour cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighStats {
    /// ARP requests the caller was told to send (broadcast and unicast).
    pub requests_sent: u64,
    /// ARP packets that created, confirmed or updated an entry.
    pub replies_learned: u64,
    /// Packets dropped because a neighbour's queue was full.
    pub queue_overflow: u64,
    /// New entries refused because nothing could be reclaimed.
    pub table_full_refused: u64,
    /// Entries reclaimed to make room.
    pub evicted: u64,
    /// Resolutions that ended Failed.
    pub failed: u64,
    /// Stale entries removed after unanswered probes.
    pub expired: u64,
    /// Known neighbours whose MAC or port changed.
    pub mac_changed: u64,
    /// ARP senders ignored for claiming a multicast, broadcast or zero MAC (RFC 1812 §3.3.2).
    pub bogus_ignored: u64,
}

/// One neighbour.
struct Entry<P> {
    state: State,
    /// Valid while Reachable or Stale; `ZERO` otherwise.
    mac: MacAddr,
    port: PortId,
    queue: VecDeque<P>,
    /// Bytes in `queue`.
    queued_bytes: usize,
    /// Requests sent in the current resolution or re-validation round.
    requests: u32,
    /// Incomplete/Stale: next request (or, if exhausted, give up); Reachable: becomes Stale;
    /// Failed: end of `failed_hold`.
    deadline: Instant,
    /// Last confirmation (for least-recently-confirmed eviction of Stale entries).
    confirmed: Instant,
}

/// The ARP cache, generic over the queued packet type `P`.
pub struct NeighCache<P> {
    cfg: NeighConfig,
    map: HashMap<Ipv4Addr, Entry<P>, ahash::RandomState>,
    /// Entries per [`State`], so the flood case skips the victim search.
    counts: [usize; State::COUNT],
    generation: u64,
    stats: NeighStats,
    /// Bytes queued over all entries.
    queued_bytes: usize,
}

/// The size a queued packet counts against the byte budgets.
pub trait QueuedLen {
    /// Bytes.
    fn queued_len(&self) -> usize;
}

impl QueuedLen for Vec<u8> {
    fn queued_len(&self) -> usize {
        self.len()
    }
}

/// Takes `e`'s queue, releasing its bytes from the cache-wide count.
fn take_queue<P>(total: &mut usize, e: &mut Entry<P>) -> Vec<P> {
    *total -= e.queued_bytes;
    e.queued_bytes = 0;
    Vec::from(mem::take(&mut e.queue))
}

/// Queues `pkt` on `e` within the budgets; returns what was dropped.
fn enqueue<P: QueuedLen>(
    e: &mut Entry<P>,
    pkt: P,
    cfg: &NeighConfig,
    total: &mut usize,
    stats: &mut NeighStats,
) -> Vec<P> {
    let len = pkt.queued_len();
    let mut dropped = Vec::new();
    if len > cfg.queue_bytes {
        dropped.push(pkt);
    } else {
        // RFC 1122 §2.3.2.2: keep the latest packet, drop the oldest.
        while e.queue.len() >= cfg.queue_len || e.queued_bytes + len > cfg.queue_bytes {
            let Some(old) = e.queue.pop_front() else {
                break;
            };
            let n = old.queued_len();
            e.queued_bytes -= n;
            *total -= n;
            dropped.push(old);
        }
        if *total + len > cfg.total_queue_bytes {
            dropped.push(pkt);
        } else {
            e.queue.push_back(pkt);
            e.queued_bytes += len;
            *total += len;
        }
    }
    stats.queue_overflow += dropped.len() as u64;
    dropped
}

impl<P> fmt::Debug for NeighCache<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeighCache")
            .field("cfg", &self.cfg)
            .field("len", &self.map.len())
            .field("generation", &self.generation)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Sends a request if the rate limit allows and the round is not exhausted.
fn try_request<P>(
    e: &mut Entry<P>,
    now: Instant,
    cfg: &NeighConfig,
    stats: &mut NeighStats,
) -> bool {
    // RFC 1122 §2.3.2.1: at most one request per `retrans_time` per destination.
    if now >= e.deadline && e.requests < cfg.max_requests {
        e.requests += 1;
        e.deadline = now + cfg.retrans_time;
        stats.requests_sent += 1;
        true
    } else {
        false
    }
}

fn set_state<P>(counts: &mut [usize; State::COUNT], e: &mut Entry<P>, state: State) {
    counts[e.state.idx()] -= 1;
    counts[state.idx()] += 1;
    e.state = state;
}

impl<P: QueuedLen> NeighCache<P> {
    /// An empty cache. Zero `max_entries`, `queue_len` and `max_requests` are raised to 1.
    pub fn new(cfg: NeighConfig) -> Self {
        let cfg = NeighConfig {
            max_entries: cfg.max_entries.max(1),
            queue_len: cfg.queue_len.max(1),
            max_requests: cfg.max_requests.max(1),
            ..cfg
        };
        NeighCache {
            cfg,
            map: HashMap::with_hasher(ahash::RandomState::new()),
            counts: [0; State::COUNT],
            generation: 0,
            stats: NeighStats::default(),
            queued_bytes: 0,
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> &NeighConfig {
        &self.cfg
    }

    /// MAC and port of `ip` if it is Reachable or Stale.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<(MacAddr, PortId)> {
        self.map
            .get(&ip)
            .filter(|e| e.state.is_resolved())
            .map(|e| (e.mac, e.port))
    }

    /// State of the entry for `ip`, if any.
    pub fn state(&self, ip: Ipv4Addr) -> Option<State> {
        self.map.get(&ip).map(|e| e.state)
    }

    /// A packet to `ip` (out of `port`) has no resolved neighbour: queue it and maybe request.
    ///
    /// On `Queued { send_request: true }` the caller broadcasts an ARP request for `ip` on
    /// `port`. `QueueFull` never asks for a request: retransmissions are driven by
    /// [`NeighCache::poll`]. For an Incomplete entry, `port` of the first packet is kept.
    pub fn resolve(&mut self, now: Instant, ip: Ipv4Addr, port: PortId, pkt: P) -> Resolve<P> {
        let cfg = &self.cfg;
        if let Some(e) = self.map.get_mut(&ip) {
            match e.state {
                State::Reachable | State::Stale => return Resolve::Known(e.mac, pkt),
                State::Failed if now < e.deadline => return Resolve::Unreachable(pkt),
                State::Failed => {
                    // The hold is over but `poll` has not removed it yet: start again.
                    set_state(&mut self.counts, e, State::Incomplete);
                    self.generation += 1;
                    e.port = port;
                    e.requests = 0;
                    e.deadline = now;
                }
                State::Incomplete => {}
            }
            let dropped = enqueue(e, pkt, cfg, &mut self.queued_bytes, &mut self.stats);
            if !dropped.is_empty() {
                return Resolve::QueueFull(dropped);
            }
            let send_request = try_request(e, now, cfg, &mut self.stats);
            return Resolve::Queued { send_request };
        }
        if !self.make_room() {
            self.stats.table_full_refused += 1;
            return Resolve::TableFull(pkt);
        }
        let mut e = Entry {
            state: State::Incomplete,
            mac: MacAddr::ZERO,
            port,
            queue: VecDeque::with_capacity(self.cfg.queue_len.min(4)),
            queued_bytes: 0,
            requests: 0,
            deadline: now,
            confirmed: now,
        };
        let dropped = enqueue(
            &mut e,
            pkt,
            &self.cfg,
            &mut self.queued_bytes,
            &mut self.stats,
        );
        let send_request = try_request(&mut e, now, &self.cfg, &mut self.stats);
        self.insert(ip, e);
        if dropped.is_empty() {
            Resolve::Queued { send_request }
        } else {
            // Only the cache-wide budget refuses a new entry's first packet; the entry
            // stays, so the neighbour is still resolved.
            Resolve::QueueFull(dropped)
        }
    }

    /// An ARP request or reply from (ip, mac) arrived on port.
    ///
    /// `create`: true when the ARP's target is one of our addresses (RFC 826 merge rule:
    /// otherwise only update an existing entry). Returns the released packets to send now (to
    /// `mac`), and whether the resolved set changed. A multicast, broadcast or zero `mac` is
    /// ignored (RFC 1812 §3.3.2).
    pub fn learn(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: MacAddr,
        port: PortId,
        create: bool,
    ) -> Learned<P> {
        let unchanged = || Learned {
            released: Vec::new(),
            changed: false,
        };
        if !mac.is_unicast() || mac == MacAddr::ZERO {
            self.stats.bogus_ignored += 1;
            return unchanged();
        }
        if let Some(e) = self.map.get_mut(&ip) {
            let was_resolved = e.state.is_resolved();
            let moved = was_resolved && (e.mac != mac || e.port != port);
            if moved {
                // Gratuitous ARP or a replaced host: RFC 826 "update the sender hardware address".
                self.stats.mac_changed += 1;
            }
            set_state(&mut self.counts, e, State::Reachable);
            e.mac = mac;
            e.port = port;
            e.requests = 0;
            e.confirmed = now;
            e.deadline = now + self.cfg.reachable_time;
            let released = take_queue(&mut self.queued_bytes, e);
            self.stats.replies_learned += 1;
            let changed = moved || !was_resolved;
            if changed {
                self.generation += 1;
            }
            return Learned { released, changed };
        }
        if !create {
            return unchanged();
        }
        if !self.make_room() {
            self.stats.table_full_refused += 1;
            return unchanged();
        }
        let e = Entry {
            state: State::Reachable,
            mac,
            port,
            queue: VecDeque::new(),
            queued_bytes: 0,
            requests: 0,
            deadline: now + self.cfg.reachable_time,
            confirmed: now,
        };
        self.insert(ip, e);
        self.stats.replies_learned += 1;
        self.generation += 1;
        Learned {
            released: Vec::new(),
            changed: true,
        }
    }

    /// Timers; call about every 100 ms. Appends what to do to `out`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Event<P>>) {
        let Self {
            cfg,
            map,
            counts,
            generation,
            stats,
            queued_bytes,
        } = self;
        map.retain(|&ip, e| {
            if e.state == State::Reachable && now >= e.deadline {
                // Still usable; re-validate with unicast probes starting now.
                set_state(counts, e, State::Stale);
                e.requests = 0;
                e.deadline = now;
            }
            let state = e.state;
            match state {
                State::Reachable => true,
                State::Incomplete | State::Stale if now < e.deadline => true,
                State::Incomplete | State::Stale if try_request(e, now, cfg, stats) => {
                    let unicast = (state == State::Stale).then_some(e.mac);
                    out.push(Event::SendRequest {
                        ip,
                        port: e.port,
                        unicast,
                    });
                    true
                }
                State::Incomplete => {
                    // `max_requests` sent and the last one timed out.
                    set_state(counts, e, State::Failed);
                    e.deadline = now + cfg.failed_hold;
                    stats.failed += 1;
                    *generation += 1;
                    let pending = take_queue(queued_bytes, e);
                    out.push(Event::Unreachable {
                        ip,
                        port: e.port,
                        pending,
                    });
                    true
                }
                State::Stale => {
                    counts[e.state.idx()] -= 1;
                    stats.expired += 1;
                    *generation += 1;
                    out.push(Event::Expired { ip });
                    false
                }
                State::Failed if now < e.deadline => true,
                State::Failed => {
                    counts[e.state.idx()] -= 1;
                    *generation += 1;
                    false
                }
            }
        });
    }

    /// Bumps whenever the resolved set (ip → mac, port) or the Failed set changes (for
    /// snapshot publication).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// All Reachable and Stale neighbours, in no particular order.
    pub fn iter_resolved(&self) -> impl Iterator<Item = (Ipv4Addr, MacAddr, PortId)> + '_ {
        self.map
            .iter()
            .filter(|(_, e)| e.state.is_resolved())
            .map(|(&ip, e)| (ip, e.mac, e.port))
    }

    /// All Failed neighbours (no answer to `max_requests` requests, within `failed_hold`
    /// or not yet collected), in no particular order.
    pub fn iter_failed(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.map
            .iter()
            .filter(|(_, e)| e.state == State::Failed)
            .map(|(&ip, _)| ip)
    }

    /// Number of entries in any state.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Link down: drop every entry on `port`, with its queued packets.
    pub fn flush_port(&mut self, port: PortId) {
        let Self {
            map,
            counts,
            generation,
            queued_bytes,
            ..
        } = self;
        let mut changed = false;
        map.retain(|_, e| {
            if e.port != port {
                return true;
            }
            *queued_bytes -= e.queued_bytes;
            counts[e.state.idx()] -= 1;
            changed |= e.state.is_resolved() || e.state == State::Failed;
            false
        });
        if changed {
            *generation += 1;
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NeighStats {
        self.stats
    }

    fn insert(&mut self, ip: Ipv4Addr, e: Entry<P>) {
        self.counts[e.state.idx()] += 1;
        let old = self.map.insert(ip, e);
        debug_assert!(old.is_none(), "insert over an existing entry");
    }

    /// Makes room for one new entry; false if the table is full of non-reclaimable entries.
    fn make_room(&mut self) -> bool {
        if self.map.len() < self.cfg.max_entries {
            return true;
        }
        let reclaimable = self.counts[State::Failed.idx()]
            + self.counts[State::Incomplete.idx()]
            + self.counts[State::Stale.idx()];
        if reclaimable == 0 {
            // Only Reachable entries: refuse without scanning (ARP flood).
            return false;
        }
        // Rank: 0 Failed, 1 exhausted Incomplete, 2 Stale (oldest confirmation first).
        let mut best: Option<(u8, Instant, Ipv4Addr)> = None;
        for (&ip, e) in &self.map {
            let rank = match e.state {
                State::Failed => 0,
                State::Incomplete if e.requests >= self.cfg.max_requests => 1,
                State::Stale => 2,
                State::Incomplete | State::Reachable => continue,
            };
            if best.is_none_or(|(r, c, _)| (rank, e.confirmed) < (r, c)) {
                best = Some((rank, e.confirmed, ip));
                if rank == 0 {
                    break;
                }
            }
        }
        let Some((_, _, ip)) = best else { return false };
        if let Some(e) = self.map.remove(&ip) {
            self.counts[e.state.idx()] -= 1;
            self.queued_bytes -= e.queued_bytes;
            self.stats.evicted += 1;
            if e.state.is_resolved() || e.state == State::Failed {
                self.generation += 1;
            }
        }
        true
    }

    /// Checks the internal counters against the table (tests only).
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut counts = [0; State::COUNT];
        let mut bytes = 0;
        for e in self.map.values() {
            counts[e.state.idx()] += 1;
            assert!(e.queue.len() <= self.cfg.queue_len);
            let b: usize = e.queue.iter().map(QueuedLen::queued_len).sum();
            assert_eq!(b, e.queued_bytes);
            assert!(b <= self.cfg.queue_bytes);
            bytes += b;
            assert!(e.state == State::Incomplete || e.queue.is_empty());
            assert!(e.requests <= self.cfg.max_requests);
            assert_eq!(e.state.is_resolved(), e.mac != MacAddr::ZERO);
        }
        assert_eq!(counts, self.counts);
        assert_eq!(bytes, self.queued_bytes);
        assert!(bytes <= self.cfg.total_queue_bytes);
        assert!(self.map.len() <= self.cfg.max_entries);
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
