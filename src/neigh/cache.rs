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
//! - At most `max_entries` entries, and at most `max_entries_per_port` on one port, not
//!   counting pinned ones. When full, reclaim a Failed entry, then the Stale entry that became
//!   Stale first, of the port that is full (or, when the whole table is, of the port holding
//!   the most). A Reachable entry is never evicted and the table is never flushed wholesale;
//!   otherwise the new entry is refused. Victims come from per-port FIFO queues, so a miss
//!   costs O(ports), never a scan of the table.
//! - Pinned addresses ([`NeighCache::set_pinned`]: the routes' next hops) can always be
//!   resolved: they do not count against the limits and are never evicted, whatever fills
//!   the rest of the table.
//! - Like Linux (`neigh_event_ns`), an unsolicited ARP (one we did not ask for) that creates
//!   an entry creates it Stale: usable at once, evictable, and probed after `reachable_time`
//!   like any Stale entry. Only a neighbour we asked (Incomplete, Failed, or a Stale entry
//!   being probed) becomes Reachable when it answers; an unsolicited ARP from a Reachable
//!   neighbour refreshes it. So spoofed ARP can fill the table only with evictable entries.
//! - [`NeighCache::generation`] changes exactly when the resolved set `ip → (mac, port)` changes.

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
    /// Upper bound on entries of any state, pinned ones apart (clamped to at least 1).
    pub max_entries: usize,
    /// Upper bound on the (unpinned) entries of one port (clamped to 1..=max_entries).
    pub max_entries_per_port: usize,
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
            max_entries_per_port: 3072,
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

    /// Every state, in `name` order.
    pub const ALL: [State; 4] = [
        State::Incomplete,
        State::Reachable,
        State::Stale,
        State::Failed,
    ];

    /// Lower-case name, as `ip neigh` prints it (`incomplete`, `reachable`, `stale`, `failed`).
    pub fn name(self) -> &'static str {
        match self {
            State::Incomplete => "incomplete",
            State::Reachable => "reachable",
            State::Stale => "stale",
            State::Failed => "failed",
        }
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
    /// Last confirmation.
    confirmed: Instant,
    /// Bumped each time the entry is queued as an eviction candidate (stale queue entries
    /// are told from live ones by it).
    stamp: u32,
}

/// Eviction candidates of one port, in the order they became candidates.
#[derive(Default)]
struct Victims {
    failed: VecDeque<(Ipv4Addr, u32)>,
    stale: VecDeque<(Ipv4Addr, u32)>,
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
    /// Addresses that are always resolvable.
    pinned: std::collections::HashSet<Ipv4Addr, ahash::RandomState>,
    /// Entries in `map` whose address is pinned.
    pinned_present: usize,
    /// Unpinned entries per port (by `PortId.0`).
    per_port: Vec<usize>,
    /// Eviction candidates per port.
    victims: Vec<Victims>,
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

/// Queue `ip` (whose entry `e` just became Stale or Failed) as an eviction candidate.
fn candidate<P>(victims: &mut Vec<Victims>, ip: Ipv4Addr, e: &mut Entry<P>) {
    let port = usize::from(e.port.0);
    if victims.len() <= port {
        victims.resize_with(port + 1, Victims::default);
    }
    e.stamp = e.stamp.wrapping_add(1);
    let q = if e.state == State::Failed {
        &mut victims[port].failed
    } else {
        &mut victims[port].stale
    };
    q.push_back((ip, e.stamp));
}

impl<P: QueuedLen> NeighCache<P> {
    /// An empty cache. Zero `max_entries`, `queue_len` and `max_requests` are raised to 1.
    pub fn new(cfg: NeighConfig) -> Self {
        let cfg = Self::clamped(cfg);
        NeighCache {
            cfg,
            map: HashMap::with_hasher(ahash::RandomState::new()),
            counts: [0; State::COUNT],
            generation: 0,
            stats: NeighStats::default(),
            queued_bytes: 0,
            pinned: std::collections::HashSet::with_hasher(ahash::RandomState::new()),
            pinned_present: 0,
            per_port: Vec::new(),
            victims: Vec::new(),
        }
    }

    fn clamped(cfg: NeighConfig) -> NeighConfig {
        let max_entries = cfg.max_entries.max(1);
        NeighConfig {
            max_entries,
            max_entries_per_port: cfg.max_entries_per_port.clamp(1, max_entries),
            queue_len: cfg.queue_len.max(1),
            max_requests: cfg.max_requests.max(1),
            ..cfg
        }
    }

    /// New limits and timers (`xgw reload`), keeping every entry: a smaller table keeps
    /// what it has and admits nothing new until below the limit; timers apply from each
    /// entry's next deadline.
    pub fn set_config(&mut self, cfg: NeighConfig) {
        self.cfg = Self::clamped(cfg);
    }

    /// The addresses that must always be resolvable (the routes' next hops): their entries
    /// do not count against `max_entries` or a port's quota and are never evicted.
    pub fn set_pinned(&mut self, ips: impl IntoIterator<Item = Ipv4Addr>) {
        self.pinned = ips.into_iter().collect();
        self.pinned_present = 0;
        self.per_port.clear();
        let entries: Vec<(Ipv4Addr, PortId)> =
            self.map.iter().map(|(&ip, e)| (ip, e.port)).collect();
        for (ip, port) in entries {
            self.account(ip, port, true);
        }
    }

    /// Count `ip`'s entry on `port` in (`add`) or out of the limits.
    fn account(&mut self, ip: Ipv4Addr, port: PortId, add: bool) {
        if self.pinned.contains(&ip) {
            if add {
                self.pinned_present += 1;
            } else {
                self.pinned_present -= 1;
            }
            return;
        }
        let p = usize::from(port.0);
        if self.per_port.len() <= p {
            self.per_port.resize(p + 1, 0);
        }
        if add {
            self.per_port[p] += 1;
        } else {
            self.per_port[p] -= 1;
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
        if let Some(e) = self.map.get_mut(&ip) {
            let mut moved = None;
            match e.state {
                State::Reachable | State::Stale => return Resolve::Known(e.mac, pkt),
                State::Failed if now < e.deadline => return Resolve::Unreachable(pkt),
                State::Failed => {
                    // The hold is over but `poll` has not removed it yet: start again.
                    set_state(&mut self.counts, e, State::Incomplete);
                    self.generation += 1;
                    let old_port = mem::replace(&mut e.port, port);
                    e.requests = 0;
                    e.deadline = now;
                    moved = (old_port != port).then_some(old_port);
                }
                State::Incomplete => {}
            }
            let cfg = &self.cfg;
            let dropped = enqueue(e, pkt, cfg, &mut self.queued_bytes, &mut self.stats);
            let send_request = dropped.is_empty() && try_request(e, now, cfg, &mut self.stats);
            if let Some(old_port) = moved {
                self.account(ip, old_port, false);
                self.account(ip, port, true);
            }
            if !dropped.is_empty() {
                return Resolve::QueueFull(dropped);
            }
            return Resolve::Queued { send_request };
        }
        if !self.make_room(ip, port) {
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
            stamp: 0,
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
            let old_port = e.port;
            // Asked for (resolving, probing, failed) or already Reachable: confirmed. An
            // unsolicited ARP about an unprobed Stale entry only updates it (as Linux).
            let confirms = e.state != State::Stale || e.requests > 0;
            if confirms {
                set_state(&mut self.counts, e, State::Reachable);
                e.requests = 0;
                e.confirmed = now;
                e.deadline = now + self.cfg.reachable_time;
            }
            e.mac = mac;
            e.port = port;
            let requeue = e.state == State::Stale && old_port != port;
            if requeue {
                candidate(&mut self.victims, ip, e);
            }
            let released = take_queue(&mut self.queued_bytes, e);
            if old_port != port {
                self.account(ip, old_port, false);
                self.account(ip, port, true);
            }
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
        if !self.make_room(ip, port) {
            self.stats.table_full_refused += 1;
            return unchanged();
        }
        // Unsolicited: Stale (usable, evictable), probed once `reachable_time` has passed.
        let mut e = Entry {
            state: State::Stale,
            mac,
            port,
            queue: VecDeque::new(),
            queued_bytes: 0,
            requests: 0,
            deadline: now + self.cfg.reachable_time,
            confirmed: now,
            stamp: 0,
        };
        candidate(&mut self.victims, ip, &mut e);
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
        let mut removed: Vec<(Ipv4Addr, PortId)> = Vec::new();
        let Self {
            cfg,
            map,
            counts,
            generation,
            stats,
            queued_bytes,
            victims,
            ..
        } = self;
        map.retain(|&ip, e| {
            if e.state == State::Reachable && now >= e.deadline {
                // Still usable; re-validate with unicast probes starting now.
                set_state(counts, e, State::Stale);
                e.requests = 0;
                e.deadline = now;
                candidate(victims, ip, e);
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
                    candidate(victims, ip, e);
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
                    removed.push((ip, e.port));
                    false
                }
                State::Failed if now < e.deadline => true,
                State::Failed => {
                    counts[e.state.idx()] -= 1;
                    *generation += 1;
                    removed.push((ip, e.port));
                    false
                }
            }
        });
        for (ip, port) in removed {
            self.account(ip, port, false);
        }
        self.compact_victims();
    }

    /// Drop candidates whose entry is gone or changed, once they outnumber the table
    /// (amortised O(1); the queues stay within about twice the table).
    fn compact_victims(&mut self) {
        let queued: usize = self
            .victims
            .iter()
            .map(|v| v.failed.len() + v.stale.len())
            .sum();
        if queued <= 2 * self.map.len() + 64 {
            return;
        }
        let map = &self.map;
        let live = |&(ip, stamp): &(Ipv4Addr, u32)| map.get(&ip).is_some_and(|e| e.stamp == stamp);
        for v in &mut self.victims {
            v.failed.retain(live);
            v.stale.retain(live);
        }
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

    /// Every entry as `(address, MAC if resolved, port, state, time since the last
    /// confirmation)`, in no particular order (for `xgw show neighbors`).
    pub fn entries(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (Ipv4Addr, Option<MacAddr>, PortId, State, Duration)> + '_ {
        self.map.iter().map(move |(&ip, e)| {
            let mac = e.state.is_resolved().then_some(e.mac);
            (
                ip,
                mac,
                e.port,
                e.state,
                now.saturating_duration_since(e.confirmed),
            )
        })
    }

    /// Entries per state (O(1): kept as entries change).
    pub fn state_counts(&self) -> [(State, usize); 4] {
        State::ALL.map(|st| (st, self.counts[st.idx()]))
    }

    /// Whether `ip` is one of the routes' next hops (never evicted).
    pub fn is_pinned(&self, ip: Ipv4Addr) -> bool {
        self.pinned.contains(&ip)
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
            pinned,
            pinned_present,
            ..
        } = self;
        let mut changed = false;
        map.retain(|ip, e| {
            if e.port != port {
                return true;
            }
            *queued_bytes -= e.queued_bytes;
            counts[e.state.idx()] -= 1;
            if pinned.contains(ip) {
                *pinned_present -= 1;
            }
            changed |= e.state.is_resolved() || e.state == State::Failed;
            false
        });
        if let Some(n) = self.per_port.get_mut(usize::from(port.0)) {
            *n = 0;
        }
        if let Some(v) = self.victims.get_mut(usize::from(port.0)) {
            *v = Victims::default();
        }
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
        self.account(ip, e.port, true);
        let old = self.map.insert(ip, e);
        debug_assert!(old.is_none(), "insert over an existing entry");
    }

    /// Makes room for a new entry for `ip` on `port`; false if the port's quota or the table
    /// is full of entries that may not be reclaimed. Pinned addresses always have room.
    fn make_room(&mut self, ip: Ipv4Addr, port: PortId) -> bool {
        if self.pinned.contains(&ip) {
            return true;
        }
        let mine = self.per_port.get(usize::from(port.0)).copied().unwrap_or(0);
        if mine >= self.cfg.max_entries_per_port {
            // This port is at its quota: only one of its own entries can make room.
            return self.evict_from(port);
        }
        if self.map.len() - self.pinned_present < self.cfg.max_entries {
            return true;
        }
        // The table is full: take from the ports holding the most first.
        let mut ports: Vec<(usize, u16)> = self
            .per_port
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(p, &n)| (n, u16::try_from(p).unwrap_or(u16::MAX)))
            .collect();
        ports.sort_unstable_by(|a, b| b.cmp(a));
        ports.into_iter().any(|(_, p)| self.evict_from(PortId(p)))
    }

    /// Evicts `port`'s oldest Failed candidate, else its oldest Stale one; false if none.
    fn evict_from(&mut self, port: PortId) -> bool {
        let Some(v) = self.victims.get_mut(usize::from(port.0)) else {
            return false;
        };
        for want in [State::Failed, State::Stale] {
            let q = if want == State::Failed {
                &mut v.failed
            } else {
                &mut v.stale
            };
            while let Some((ip, stamp)) = q.pop_front() {
                let live = self
                    .map
                    .get(&ip)
                    .is_some_and(|e| e.stamp == stamp && e.state == want && e.port == port)
                    && !self.pinned.contains(&ip);
                if !live {
                    continue;
                }
                if let Some(e) = self.map.remove(&ip) {
                    self.counts[e.state.idx()] -= 1;
                    self.queued_bytes -= e.queued_bytes;
                    self.stats.evicted += 1;
                    self.generation += 1;
                    self.account(ip, e.port, false);
                }
                return true;
            }
        }
        false
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
        let pinned = self
            .map
            .keys()
            .filter(|ip| self.pinned.contains(ip))
            .count();
        assert_eq!(pinned, self.pinned_present);
        assert!(self.map.len() - pinned <= self.cfg.max_entries);
        let mut per_port = vec![0usize; self.per_port.len()];
        for (ip, e) in &self.map {
            if !self.pinned.contains(ip) {
                per_port[usize::from(e.port.0)] += 1;
            }
        }
        assert_eq!(per_port, self.per_port);
        assert!(per_port.iter().all(|&n| n <= self.cfg.max_entries_per_port));
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
