//! The NAT44 policy: the only writer of the session table, as a sans-I/O state machine
//! (DESIGN R19). Time comes in as an argument, packets in as bytes, decisions out as
//! [`NatOutcome`]s; the control thread (`control`) is the glue that feeds it punts and acts
//! on what it decides, and the unit tests below drive it directly with a virtual clock.
//!
//! Owns the endpoint-independent mappings (RFC 4787 REQ-1, RFC 5382 REQ-1, RFC 5508 REQ-1a),
//! the external port allocator, filtering decisions, TCP session state (RFC 7857 §2), ICMP
//! error translation (RFC 5508), virtual reassembly of fragments (RFC 4787 REQ-14), the
//! RFC 5382 REQ-4 hold of unsolicited inbound SYNs, static port forwards, hairpinning, and
//! expiry. Workers only look sessions up and refresh them; everything that creates, changes or
//! deletes one comes here as a punt.
//!
//! A session is stored as its in2out key `k` and rewrite `r` (see `nat::flow`). Shapes:
//! - outbound / inbound-to-a-mapping / port forward: `k = (I:i → R:r)`, `r = (E:e → R:r)`;
//! - hairpin (`A` inside → external `E:e` of inside `B:b`, `A` mapped to `Ea:ea`):
//!   `k = (A:a → E:e)`, `r = (Ea:ea → B:b)`; `B`'s replies match the derived out2in key.
//!
//! Every session belongs to the mapping of its `k.src:k.sport` (refcounted); the mapping and
//! its external port are released (into the allocator's 120 s quarantine) with its last
//! session. Static forwards own a permanent mapping.

use std::{
    collections::VecDeque,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use self::reassembly::{Accepted, FragKey, Reassembly, Refused};
use super::{
    fast::NatFast,
    flow::{out2in_rewrite, proto, Direction, FlowKey, Rewrite},
    log::{LogEvent, LogKind},
    portmap::PortMap,
    ports::{PortAllocator, PortConfig},
    table::{session_table, Hit, SessionIndex, SessionWriter},
    tcp::{self as tcpsm, TcpState, Timeout},
    translate::{self, NatError},
};
use crate::{
    counter::{define_counters, Counts},
    wire::{
        ipv4::{Cidr, Packet},
        tcp,
    },
};

/// Inbound filtering of packets to an existing dynamic mapping (RFC 4787 REQ-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// Any external endpoint may send to a mapping (EIF).
    EndpointIndependent,
    /// Only addresses the inside endpoint has sent to (ADF).
    AddressDependent,
    /// Only address:port pairs the inside endpoint has sent to (APDF).
    AddressAndPortDependent,
}

/// Idle timeouts per protocol and TCP state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP.
    pub udp: Duration,
    /// TCP established.
    pub tcp_established: Duration,
    /// TCP transitory (opening, closing).
    pub tcp_transitory: Duration,
    /// TCP opened from outside and not answered from inside (RFC 7857 §2.1).
    pub tcp_inbound_open: Duration,
    /// ICMP query.
    pub icmp: Duration,
}

/// A static port forward: `(proto, external:port)` reaches `to:to_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// IP protocol number (TCP or UDP).
    pub proto: u8,
    /// External address.
    pub external: Ipv4Addr,
    /// External port.
    pub port: u16,
    /// Inside host.
    pub to: Ipv4Addr,
    /// Inside port.
    pub to_port: u16,
}

/// What the policy needs to know (the control plane builds it from `[nat]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Port id of the outside interface.
    pub outside: u16,
    /// External address pool.
    pub addresses: Vec<Ipv4Addr>,
    /// Eligible inside sources (empty: all).
    pub inside: Vec<Cidr>,
    /// Lowest external port.
    pub min_port: u16,
    /// Highest external port.
    pub max_port: u16,
    /// Inbound filtering.
    pub filtering: Filtering,
    /// Session table capacity.
    pub max_sessions: u32,
    /// Virtual reassembly's byte budget.
    pub reassembly_bytes: usize,
    /// Sessions per inside host (RFC 6888 REQ-4/5).
    pub max_sessions_per_host: u32,
    /// Route untranslated traffic from outside to inside destinations (else drop it).
    pub inbound_route: bool,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Static port forwards.
    pub forwards: Vec<Forward>,
}

/// Why a packet came to the policy (the fast path's punt reasons that concern the NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// No session: create one, filter, or drop.
    Miss,
    /// A TCP SYN, FIN or RST, or a packet of a transitory session: state may change.
    TcpControl,
    /// An ICMP error about a session's packet, to translate.
    IcmpError,
    /// A fragment (virtual reassembly).
    Fragment,
}

define_counters! {
    /// What the NAT slow path did.
    pub enum NatEvent {
        SessionsCreated = "nat.sessions_created" => "sessions created",
        SessionsExpired = "nat.sessions_expired" => "sessions expired",
        SessionsDeleted = "nat.sessions_deleted" => "sessions deleted by the operator (xgw nat del session)",
        MappingsCreated = "nat.mappings_created" => "endpoint-independent mappings created",
        MappingsReleased = "nat.mappings_released" => "mappings released (port quarantined 120 s)",
        SlowTranslated = "nat.slow_translated" => "packets translated on the slow path",
        Hairpinned = "nat.hairpin" => "hairpin sessions created",
        Forwarded = "nat.port_forward" => "sessions created by a static port forward",
        PortsExhausted = "nat.ports_exhausted" => "no external port (ICMP 3/13 sent, rate-limited)",
        TableFull = "nat.table_full" => "session table full (ICMP 3/13 sent, rate-limited)",
        HostLimit = "nat.host_limit" => "inside host at max_sessions_per_host (ICMP 3/13 sent, rate-limited)",
        Reclaimed = "nat.sessions_reclaimed" => "expired sessions removed early to make room in a full table",
        NoMapping = "nat.no_mapping" => "inbound packet without a mapping, dropped",
        Filtered = "nat.filtered" => "inbound packet rejected by the filtering mode",
        TcpNoSession = "nat.tcp_not_syn" => "TCP without a session and not a SYN, dropped",
        SynHeld = "nat.syn_held" => "unsolicited inbound SYN held 6 s (RFC 5382 REQ-4)",
        SynHoldDropped = "nat.syn_hold_superseded" => "held SYN dropped: an outbound SYN opened it",
        SynHoldRefused = "nat.syn_hold_refused" => "held SYN answered with ICMP port unreachable",
        IcmpErrorsTranslated = "nat.icmp_errors" => "ICMP errors translated (RFC 5508)",
        IcmpErrorsDropped = "nat.icmp_errors_dropped" => "ICMP errors without a session or malformed",
        FragmentsTranslated = "nat.fragments" => "fragments translated",
        FragmentsHeld = "nat.fragments_held" => "fragments held until their first fragment",
        FragmentsDropped = "nat.fragments_dropped" => "held fragments dropped (timeout, eviction, datagram refused)",
        FragmentsOverlap = "nat.fragments_overlap" => "fragments overlapping another or impossible, dropped with their datagram",
        FragmentsDuplicate = "nat.fragments_duplicate" => "exact duplicate fragments, dropped",
        FragmentsOverBudget = "nat.fragments_over_budget" => "fragments dropped: reassembly budget or source share used up",
        Untranslatable = "nat.untranslatable" => "packets the NAT could not key or rewrite",
        BadUdpLength = "nat.bad_udp_length" => "UDP length < 8 or beyond the IP payload, dropped",
        BadTcpOffset = "nat.bad_tcp_offset" => "TCP data offset < 5 or beyond the segment, dropped",
        LogDropped = "nat.log_dropped" => "NAT log events dropped: the log buffer was full ([nat.log] buffer)",
    }
}

/// How long an unsolicited inbound SYN is held (RFC 5382 REQ-4: at least 6 s).
pub const SYN_HOLD: Duration = Duration::from_secs(6);
/// Held SYNs at once.
const SYN_HOLD_MAX: usize = 1024;
/// Session-table slots visited per tick by the expiry sweep.
const SWEEP_BUDGET: usize = 16384;
/// Slots a full table's reclaim pass visits, and how often one may run: at most ~4 M slot
/// visits per second however many packets find the table full.
const RECLAIM_BUDGET: usize = 4096;
const RECLAIM_EVERY: Duration = Duration::from_millis(1);

/// What the control plane should do with the result.
#[derive(Debug)]
pub enum NatOutcome {
    /// Forward these (translated) IPv4 packets.
    Forward(Vec<Vec<u8>>),
    /// Nothing to send (dropped, held, or filtered).
    Nothing,
    /// Drop and answer the original with ICMP destination unreachable, this code.
    Reject(u8),
    /// The packet is for the router itself after all.
    ToUs,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    ext: Ipv4Addr,
    eport: u16,
    sessions: u32,
    permanent: bool,
    /// A forward's: its port was reserved, not allocated (released as reserved).
    reserved: bool,
}

#[derive(Debug)]
struct HeldSyn {
    deadline: Instant,
    key: FlowKey,
    packet: Vec<u8>,
}

type MapKey = (u8, Ipv4Addr, u16);
/// The policy's maps: ahash (keys are addresses and ports chosen by outsiders too, so keyed
/// per process) instead of SipHash, which costs several times more per new flow.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
/// Entries the mapping and filter maps hold before their first rehash (a rehash runs while
/// the policy is locked, i.e. on a worker creating a session: keep it off typical loads).
const MAP_RESERVE: usize = 65_536;

fn reserved<K, V>(n: usize) -> HashMap<K, V> {
    HashMap::with_capacity_and_hasher(n, ahash::RandomState::new())
}

/// Grow `m` ahead of need (see [`NatPolicy::grow_ahead`]): when fewer than half of
/// [`MAP_RESERVE`] free places are left, at least double it, up to room for `limit` entries.
fn grow_ahead<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>, limit: usize) -> bool {
    let free = m.capacity().saturating_sub(m.len());
    if free >= MAP_RESERVE / 2 || m.capacity() >= limit {
        return false;
    }
    let want = m.len().max(MAP_RESERVE).min(limit.saturating_sub(m.len()));
    m.reserve(want);
    true
}

/// NAT counters.
pub type NatCounters = Counts<NatEvent>;

/// The NAT's policy state.
#[derive(Debug)]
pub struct NatPolicy {
    cfg: PolicyConfig,
    sessions: SessionWriter,
    fast: std::sync::Arc<NatFast>,
    ports: PortAllocator,
    /// Endpoint-independent mappings by inside endpoint.
    mappings: HashMap<MapKey, Mapping>,
    /// Inside endpoint by external endpoint.
    by_ext: HashMap<MapKey, (Ipv4Addr, u16)>,
    /// Static forwards: (proto, external, port) → inside endpoint.
    forwards: HashMap<MapKey, (Ipv4Addr, u16)>,
    /// Address-dependent filtering: remote addresses each mapping has sent to, refcounted.
    contacted: HashMap<(u8, Ipv4Addr, u16, Ipv4Addr), u32>,
    held_syns: VecDeque<HeldSyn>,
    frags: Reassembly,
    /// Sessions per inside host (every session shape's `k.src`).
    hosts: HashMap<Ipv4Addr, u32>,
    /// Live sessions per protocol: TCP, UDP, ICMP (see [`proto_slot`]).
    by_proto: [usize; 3],
    /// External ports of forwards a reload moved elsewhere, with the sessions still on
    /// them: `(proto, external, port) -> sessions`.
    retired: HashMap<MapKey, u32>,
    /// No reclaim pass before this.
    next_reclaim: Option<Instant>,
    epoch: Instant,
    /// Set while a worker tries to create a session: a failure is not counted there, the
    /// slow path that the packet then goes to counts it (and answers it).
    quiet: bool,
    /// The NAT event log's buffer, when `[nat.log]` is on.
    log: Option<LogBuf>,
    /// What it did.
    pub counters: NatCounters,
}

/// Events waiting for the control thread to hand them to the log writer.
#[derive(Debug)]
struct LogBuf {
    events: Vec<LogEvent>,
    /// At most this many wait; more are dropped (and counted).
    cap: usize,
    /// Session events too, not only mappings.
    destinations: bool,
}

/// Index of `by_proto` for protocol `p` (the NAT translates TCP, UDP and ICMP only).
fn proto_slot(p: u8) -> usize {
    match p {
        proto::TCP => 0,
        proto::UDP => 1,
        _ => 2,
    }
}

fn secs(epoch: Instant, now: Instant) -> u32 {
    u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX)
}

/// The TCP flags of a (keyed, so long enough) TCP packet.
fn tcp_flags(ip: &[u8]) -> u8 {
    let off = usize::from(Packet::new_unchecked(ip).header_len());
    ip.get(off..)
        .and_then(|l4| tcp::Packet::new_checked(l4).ok())
        .map_or(0, |t| t.flags())
}

impl NatPolicy {
    /// NAT state for `cfg`; `epoch` is the time base shared with the workers' refreshes,
    /// `seed` keys the port randomisation (a secret random value in production).
    pub fn new(cfg: &PolicyConfig, epoch: Instant, seed: u64) -> NatPolicy {
        NatPolicy::with_port_words(cfg, epoch, seed, None)
    }

    /// As [`NatPolicy::new`], with the mapped-port bitmap kept in `words` if given (memory
    /// shared with the XDP program's prefilter; see [`crate::nat::portmap`]).
    pub fn with_port_words(
        cfg: &PolicyConfig,
        epoch: Instant,
        seed: u64,
        words: Option<crate::nat::portmap::Words>,
    ) -> NatPolicy {
        let mapped = match words {
            Some(w) => PortMap::with_words(&cfg.addresses, w),
            None => PortMap::new(&cfg.addresses),
        };
        let (sessions, reader) = session_table(cfg.max_sessions);
        let fast = std::sync::Arc::new(NatFast {
            outside: cfg.outside,
            pool: cfg.addresses.clone(),
            inside: cfg.inside.clone(),
            sessions: reader,
            mapped,
            inbound_route: cfg.inbound_route,
        });
        let ports = PortAllocator::new(
            PortConfig {
                addresses: cfg.addresses.clone(),
                min_port: cfg.min_port,
                max_port: cfg.max_port,
                quarantine: crate::nat::ports::DEFAULT_QUARANTINE,
            },
            seed,
        );
        let reserve = MAP_RESERVE.min(cfg.max_sessions as usize);
        let mappings = reserved(reserve);
        let by_ext = reserved(reserve);
        let forwards = HashMap::default();
        let mut policy = NatPolicy {
            cfg: cfg.clone(),
            sessions,
            fast,
            ports,
            mappings,
            by_ext,
            forwards,
            contacted: reserved(reserve),
            held_syns: VecDeque::new(),
            frags: Reassembly::new(cfg.reassembly_bytes),
            hosts: reserved(reserve),
            by_proto: [0; 3],
            retired: HashMap::default(),
            next_reclaim: None,
            epoch,
            quiet: false,
            log: None,
            counters: NatCounters::default(),
        };
        for f in &cfg.forwards {
            policy.install_forward(f);
        }
        policy
    }

    /// The fast path's view (shared by every snapshot).
    pub fn fast(&self) -> std::sync::Arc<NatFast> {
        self.fast.clone()
    }

    /// Sessions in the table.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Heap bytes of the session table alone (what the fast path reads).
    pub fn table_memory(&self) -> usize {
        self.sessions.memory_bytes()
    }

    /// Heap bytes of the session table, mappings and filters, and the table's capacity.
    pub fn memory(&self) -> (usize, u32) {
        let entry = std::mem::size_of::<(MapKey, Mapping)>() + 8;
        let map_bytes = (self.mappings.capacity() + self.by_ext.capacity()) * entry
            + self.contacted.capacity()
                * (std::mem::size_of::<((u8, Ipv4Addr, u16, Ipv4Addr), u32)>() + 8);
        (
            self.sessions.memory_bytes()
                + map_bytes
                + self.ports.memory_bytes()
                + self.fast.mapped.memory_bytes(),
            self.sessions.capacity(),
        )
    }

    /// Is `a` an external (pool) address?
    pub fn is_pool(&self, a: Ipv4Addr) -> bool {
        self.fast.is_pool(a)
    }

    /// Should a transit packet `ip` arriving on `rx_port` and leaving by `tx_port` be
    /// translated? (Same rule as the fast path's.)
    pub fn is_relevant(&self, ip: &[u8], rx_port: u16, tx_port: Option<u16>) -> bool {
        let p = Packet::new_unchecked(ip);
        self.fast
            .concerns(p.src_addr(), p.dst_addr(), rx_port, tx_port)
    }

    /// Handle a packet (IPv4 header first) that concerns the NAT.
    pub fn handle(&mut self, now: Instant, why: Exception, ip: &[u8], rx_port: u16) -> NatOutcome {
        match why {
            Exception::IcmpError => self.icmp_error(ip, rx_port),
            Exception::Fragment => self.fragment(now, ip, rx_port),
            Exception::Miss | Exception::TcpControl => self.translate(now, ip, rx_port),
        }
    }

    /// The session of an outbound packet with flow `key` that a worker looked up and did not
    /// find, created by the same rules as on the slow path (endpoint-independent mapping,
    /// paired pooling, port preservation, parity, range, quarantine): for the first packet
    /// of a UDP flow, an ICMP query or a TCP connection (a bare SYN, `flags`) from an
    /// eligible inside source that arrived on another port than the outside one, to a
    /// destination that is not an external address. The session starts in the state the
    /// slow path would give it (and an outbound SYN supersedes a held inbound one, RFC 5382
    /// REQ-4, as there).
    ///
    /// Returns the hit to translate the packet with, or None when the slow path must decide
    /// (another kind of packet, a full table, no free port: the slow path then answers with
    /// ICMP 3/13 and counts it).
    pub fn create_outbound(
        &mut self,
        now: Instant,
        key: &FlowKey,
        flags: u8,
        rx_port: u16,
    ) -> Option<Hit> {
        let bare_syn = flags
            & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST | tcp::flags::FIN)
            == tcp::flags::SYN;
        let eligible = (matches!(key.proto, proto::UDP | proto::ICMP)
            || (key.proto == proto::TCP && bare_syn))
            && rx_port != self.fast.outside
            && self.fast.is_inside(key.src)
            && !self.is_pool(key.src)
            && !self.is_pool(key.dst);
        if !eligible || self.sessions.len() >= self.sessions.capacity() as usize {
            return None;
        }
        // Another worker may have created it between our lookup and taking the policy.
        if let Some(h) = self.sessions.find(key) {
            return Some(h);
        }
        self.quiet = true;
        let hit = self.create(now, key, flags, &[], rx_port).ok();
        self.quiet = false;
        hit
    }

    /// Translate a whole packet (creating the session when the rules allow it).
    fn translate(&mut self, now: Instant, ip: &[u8], rx_port: u16) -> NatOutcome {
        let key = match translate::flow_key(ip) {
            Ok(k) => k,
            Err(e) => {
                self.counters.inc(match e {
                    NatError::BadUdpLength => NatEvent::BadUdpLength,
                    NatError::BadTcpOffset => NatEvent::BadTcpOffset,
                    _ => NatEvent::Untranslatable,
                });
                return NatOutcome::Nothing;
            }
        };
        let flags = if key.proto == proto::TCP {
            tcp_flags(ip)
        } else {
            0
        };
        let hit = match self.sessions.find(&key) {
            Some(h) => h,
            None => match self.create(now, &key, flags, ip, rx_port) {
                Ok(h) => h,
                Err(o) => return o,
            },
        };
        if key.proto == proto::TCP {
            let old = TcpState::from_u8(hit.state);
            let new = tcpsm::next(old, hit.dir, flags);
            if new != old {
                self.sessions.set_state(hit.index, new as u8);
            }
        }
        if hit.dir == Direction::In2Out {
            self.fast.sessions.touch(hit.index, secs(self.epoch, now));
        }
        let mut out = ip[..usize::from(Packet::new_unchecked(ip).total_len())].to_vec();
        if translate::rewrite(&mut out, &hit.rewrite).is_err() {
            self.counters.inc(NatEvent::Untranslatable);
            return NatOutcome::Nothing;
        }
        self.counters.inc(NatEvent::SlowTranslated);
        NatOutcome::Forward(vec![out])
    }

    /// A new session for `key`, or why not.
    fn create(
        &mut self,
        now: Instant,
        key: &FlowKey,
        flags: u8,
        ip: &[u8],
        rx_port: u16,
    ) -> Result<Hit, NatOutcome> {
        let syn = flags & tcp::flags::SYN != 0 && flags & tcp::flags::RST == 0;
        if key.proto == proto::TCP && !syn {
            self.counters.inc(NatEvent::TcpNoSession);
            return Err(NatOutcome::Nothing);
        }
        if self.is_pool(key.src) {
            // Our own external address as a source: never translated (spoofed or looped).
            self.counters.inc(NatEvent::Untranslatable);
            return Err(NatOutcome::Nothing);
        }
        let from_inside = rx_port != self.fast.outside && self.fast.is_inside(key.src);
        if self.is_pool(key.dst) && key.proto == proto::ICMP {
            // ICMP queries to an external address are answered by the router, never
            // diverted to an inside host whose mapping happens to use that identifier.
            return Err(NatOutcome::ToUs);
        }
        let (k, r, dir) = if self.is_pool(key.dst) {
            // Inbound to an external endpoint: a port forward, or an existing mapping that
            // the filtering mode admits; from the inside this is hairpinning.
            let ext = (key.proto, key.dst, key.dport);
            let target = if let Some(&t) = self.forwards.get(&ext) {
                Some((t, true))
            } else if let Some(&t) = self.by_ext.get(&ext) {
                let admitted = from_inside || self.admits(key);
                if !admitted {
                    self.counters.inc(NatEvent::Filtered);
                    return Err(self.unsolicited(now, key, syn, ip));
                }
                Some((t, false))
            } else {
                None
            };
            let Some(((to, to_port), forward)) = target else {
                if key.proto == proto::ICMP {
                    return Err(NatOutcome::ToUs);
                }
                self.counters.inc(NatEvent::NoMapping);
                return Err(self.unsolicited(now, key, syn, ip));
            };
            if from_inside {
                if (to, to_port) == (key.src, key.sport) {
                    // A socket reaching its own external endpoint: nothing sensible to do.
                    self.counters.inc(NatEvent::Untranslatable);
                    return Err(NatOutcome::Nothing);
                }
                self.admit(now, key.src)?;
                let (ea, eap) = self.mapping_for(now, key.proto, key.src, key.sport)?;
                // The session uses the target's mapping too: it holds a reference, so that
                // the target's external port is not released (and given to another host)
                // while the hairpin still delivers to the target.
                self.mapping_ref(key.proto, to, to_port, key.dst, key.dport);
                self.counters.inc(NatEvent::Hairpinned);
                let r = Rewrite {
                    src: ea,
                    sport: eap,
                    dst: to,
                    dport: to_port,
                };
                (*key, r, Direction::In2Out)
            } else {
                self.admit(now, to)?;
                if forward {
                    self.counters.inc(NatEvent::Forwarded);
                }
                // Stored from the inside host's point of view; this packet is its out2in.
                let k = FlowKey {
                    src: to,
                    sport: to_port,
                    dst: key.src,
                    dport: key.sport,
                    proto: key.proto,
                };
                let r = Rewrite {
                    src: key.dst,
                    sport: key.dport,
                    dst: key.src,
                    dport: key.sport,
                };
                self.mapping_ref(key.proto, to, to_port, key.dst, key.dport);
                (k, r, Direction::Out2In)
            }
        } else {
            self.admit(now, key.src)?;
            let (ea, eap) = self.mapping_for(now, key.proto, key.src, key.sport)?;
            // ICMP queries: the identifier is both "ports", so the reply's key matches.
            let dport = if key.proto == proto::ICMP {
                eap
            } else {
                key.dport
            };
            let r = Rewrite {
                src: ea,
                sport: eap,
                dst: key.dst,
                dport,
            };
            (*key, r, Direction::In2Out)
        };
        let state = if key.proto == proto::TCP {
            tcpsm::next(TcpState::Closed, dir, flags) as u8
        } else {
            0
        };
        let index = match self.sessions.insert(k, r, state, secs(self.epoch, now)) {
            Ok(i) => i,
            Err(_) => {
                self.unref_mapping(now, k.proto, k.src, k.sport);
                if self.is_pool(k.dst) {
                    self.unref_mapping(now, k.proto, r.dst, r.dport);
                }
                self.counters.inc(NatEvent::TableFull);
                return Err(NatOutcome::Reject(
                    crate::wire::icmpv4::dst_unreachable_code::ADMIN_PROHIBITED,
                ));
            }
        };
        self.counters.inc(NatEvent::SessionsCreated);
        self.log_session(LogKind::SessionAdd, now, &k, &r);
        *self.hosts.entry(k.src).or_insert(0) += 1;
        self.by_proto[proto_slot(k.proto)] += 1;
        *self
            .contacted
            .entry((k.proto, r.src, r.sport, r.dst))
            .or_insert(0) += 1;
        // RFC 5382 REQ-4: an outbound SYN opens what a held inbound SYN asked for; the held
        // one is then dropped silently.
        if key.proto == proto::TCP && dir == Direction::In2Out {
            let o2i = FlowKey {
                src: r.dst,
                sport: r.dport,
                dst: r.src,
                dport: r.sport,
                proto: k.proto,
            };
            let before = self.held_syns.len();
            self.held_syns.retain(|h| h.key != o2i);
            for _ in self.held_syns.len()..before {
                self.counters.inc(NatEvent::SynHoldDropped);
            }
        }
        let rewrite = if dir == Direction::In2Out {
            r
        } else {
            out2in_rewrite(&k)
        };
        Ok(Hit {
            index,
            dir,
            rewrite,
            state,
        })
    }

    /// May one more session be made for inside `host`? Checked before a mapping (and so an
    /// external port) is taken for it: a refused packet never costs a port. A full table
    /// first gets a bounded pass that removes expired sessions ([`RECLAIM_BUDGET`] slots, at
    /// most every [`RECLAIM_EVERY`]); live sessions are never evicted (RFC 6888 REQ-11).
    fn admit(&mut self, now: Instant, host: Ipv4Addr) -> Result<(), NatOutcome> {
        let reject =
            || NatOutcome::Reject(crate::wire::icmpv4::dst_unreachable_code::ADMIN_PROHIBITED);
        if self.hosts.get(&host).copied().unwrap_or(0) >= self.cfg.max_sessions_per_host {
            if !self.quiet {
                self.counters.inc(NatEvent::HostLimit);
            }
            return Err(reject());
        }
        if self.sessions.len() >= self.sessions.capacity() as usize {
            if self.next_reclaim.is_none_or(|t| now >= t) {
                self.next_reclaim = Some(now + RECLAIM_EVERY);
                let n = self.expire_slots(now, RECLAIM_BUDGET);
                for _ in 0..n {
                    self.counters.inc(NatEvent::Reclaimed);
                }
            }
            if self.sessions.len() >= self.sessions.capacity() as usize {
                if !self.quiet {
                    self.counters.inc(NatEvent::TableFull);
                }
                return Err(reject());
            }
        }
        Ok(())
    }

    /// Does the filtering mode admit inbound `key` (to an existing dynamic mapping)?
    fn admits(&self, key: &FlowKey) -> bool {
        match self.cfg.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => self
                .contacted
                .contains_key(&(key.proto, key.dst, key.dport, key.src)),
            // A session with exactly this remote endpoint would have matched already.
            Filtering::AddressAndPortDependent => false,
        }
    }

    /// Unsolicited inbound: hold a SYN for 6 s (RFC 5382 REQ-4), drop anything else.
    fn unsolicited(&mut self, now: Instant, key: &FlowKey, syn: bool, ip: &[u8]) -> NatOutcome {
        if key.proto == proto::TCP && syn && self.held_syns.len() < SYN_HOLD_MAX {
            self.counters.inc(NatEvent::SynHeld);
            self.held_syns.push_back(HeldSyn {
                deadline: now + SYN_HOLD,
                key: *key,
                packet: ip.to_vec(),
            });
        }
        NatOutcome::Nothing
    }

    /// The external endpoint of inside `(addr, port)`, creating the mapping if needed, and
    /// counting one more session on it.
    fn mapping_for(
        &mut self,
        now: Instant,
        proto_: u8,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(Ipv4Addr, u16), NatOutcome> {
        if let Some(m) = self.mappings.get_mut(&(proto_, addr, port)) {
            m.sessions += 1;
            return Ok((m.ext, m.eport));
        }
        match self.ports.allocate(now, proto_, addr, port) {
            Ok((ext, eport)) => {
                self.counters.inc(NatEvent::MappingsCreated);
                self.log(
                    LogKind::MappingAdd,
                    now,
                    proto_,
                    (addr, port),
                    (ext, eport),
                    None,
                );
                self.mappings.insert(
                    (proto_, addr, port),
                    Mapping {
                        ext,
                        eport,
                        sessions: 1,
                        permanent: false,
                        reserved: false,
                    },
                );
                self.by_ext.insert((proto_, ext, eport), (addr, port));
                self.fast.mapped.set(ext, proto_, eport, true);
                Ok((ext, eport))
            }
            Err(_) => {
                if !self.quiet {
                    self.counters.inc(NatEvent::PortsExhausted);
                }
                Err(NatOutcome::Reject(
                    crate::wire::icmpv4::dst_unreachable_code::ADMIN_PROHIBITED,
                ))
            }
        }
    }

    /// One more session on an existing mapping (inbound to a mapping or forward).
    fn mapping_ref(&mut self, proto_: u8, addr: Ipv4Addr, port: u16, ext: Ipv4Addr, eport: u16) {
        self.mappings
            .entry((proto_, addr, port))
            .or_insert(Mapping {
                ext,
                eport,
                sessions: 0,
                permanent: false,
                reserved: false,
            })
            .sessions += 1;
    }

    fn unref_mapping(&mut self, now: Instant, proto_: u8, addr: Ipv4Addr, port: u16) {
        let Some(m) = self.mappings.get_mut(&(proto_, addr, port)) else {
            return;
        };
        m.sessions = m.sessions.saturating_sub(1);
        if m.sessions == 0 && !m.permanent {
            self.release_mapping(now, proto_, addr, port);
        }
    }

    /// Start forward `f`: its external port reserved and marked mapped, a permanent mapping
    /// for its inside endpoint (whose own outbound traffic from that port uses it too).
    fn install_forward(&mut self, f: &Forward) {
        let key = (f.proto, f.external, f.port);
        self.ports.reserve(f.proto, f.external, f.port);
        self.forwards.insert(key, (f.to, f.to_port));
        self.mappings.insert(
            (f.proto, f.to, f.to_port),
            Mapping {
                ext: f.external,
                eport: f.port,
                sessions: 0,
                permanent: true,
                reserved: true,
            },
        );
        self.by_ext.insert(key, (f.to, f.to_port));
        self.fast.mapped.set(f.external, f.proto, f.port, true);
    }

    /// Remove the mapping of inside `(proto_, addr, port)` and free its external port.
    fn release_mapping(&mut self, now: Instant, proto_: u8, addr: Ipv4Addr, port: u16) {
        let Some(m) = self.mappings.remove(&(proto_, addr, port)) else {
            return;
        };
        self.by_ext.remove(&(proto_, m.ext, m.eport));
        self.fast.mapped.set(m.ext, proto_, m.eport, false);
        if m.reserved {
            self.ports.release_reserved(now, proto_, m.ext, m.eport);
        } else {
            self.ports.release(now, proto_, addr, m.ext, m.eport);
            self.log(
                LogKind::MappingDel,
                now,
                proto_,
                (addr, port),
                (m.ext, m.eport),
                None,
            );
        }
        self.counters.inc(NatEvent::MappingsReleased);
    }

    /// RFC 5508 §4: translate an ICMP error about a session's packet, in either direction.
    /// Errors never refresh or delete sessions (REQ-6, RFC 4787 REQ-12).
    fn icmp_error(&mut self, ip: &[u8], rx_port: u16) -> NatOutcome {
        let Ok(inner) = translate::icmp_error_inner_key(ip) else {
            self.counters.inc(NatEvent::IcmpErrorsDropped);
            return NatOutcome::Nothing;
        };
        // The quoted packet travelled the other way: its reverse is a key of the session.
        let Some(hit) = self.sessions.find(&inner.reversed()) else {
            self.counters.inc(NatEvent::IcmpErrorsDropped);
            return NatOutcome::Nothing;
        };
        let rw = hit.rewrite;
        // A hairpin session (inside A to inside B's external endpoint): its in2out key is
        // addressed to an external address, its out2in rewrite comes from one.
        let hairpin = match hit.dir {
            Direction::In2Out => self.is_pool(inner.src),
            Direction::Out2In => self.is_pool(rw.src),
        };
        // An error about an outbound packet comes from outside; one about an inbound packet
        // comes from inside; about a hairpinned one, from inside either way.
        let from_outside = rx_port == self.fast.outside;
        let expected_outside = hit.dir == Direction::Out2In && !hairpin;
        if from_outside != expected_outside {
            self.counters.inc(NatEvent::IcmpErrorsDropped);
            return NatOutcome::Nothing;
        }
        let quoted = Rewrite {
            src: rw.dst,
            sport: rw.dport,
            dst: rw.src,
            dport: rw.sport,
        };
        let p = Packet::new_unchecked(ip);
        let (outer_src, outer_dst) = match hit.dir {
            // Hairpinned (RFC 5508 REQ-7, RFC 7857 §12): to the other inside host, from the
            // external endpoint it knows the reporting host by; an inside router that
            // reports keeps its own address (both hosts can reach it).
            _ if hairpin => {
                let src = if p.src_addr() == inner.dst {
                    rw.src
                } else {
                    p.src_addr()
                };
                (src, rw.dst)
            }
            // From outside about an outbound packet: deliver to the inside host (REQ-4).
            Direction::Out2In => (p.src_addr(), rw.dst),
            // From inside about an inbound packet: it leaves from the external address (REQ-5).
            Direction::In2Out => (rw.src, p.dst_addr()),
        };
        let mut out = ip[..usize::from(p.total_len())].to_vec();
        if translate::rewrite_icmp_error(&mut out, outer_src, outer_dst, &quoted).is_err() {
            self.counters.inc(NatEvent::IcmpErrorsDropped);
            return NatOutcome::Nothing;
        }
        self.counters.inc(NatEvent::IcmpErrorsTranslated);
        NatOutcome::Forward(vec![out])
    }

    /// Virtual reassembly (RFC 4787 REQ-14): the first fragment decides the translation;
    /// later ones (in any order) get the same addresses; fragments that arrive before their
    /// first are held briefly. Bounded and checked by [`reassembly`].
    fn fragment(&mut self, now: Instant, ip: &[u8], rx_port: u16) -> NatOutcome {
        let p = Packet::new_unchecked(ip);
        let fk: FragKey = (
            p.src_addr(),
            p.dst_addr(),
            u8::from(p.protocol()),
            p.ident(),
        );
        let total = usize::from(p.total_len()).min(ip.len());
        let len = total.saturating_sub(usize::from(p.header_len()));
        let first = p.frag_offset() == 0;
        let accepted = self.frags.accept(
            now,
            fk,
            p.frag_offset(),
            len,
            p.more_frags(),
            fk.2 == proto::TCP,
        );
        let accepted = match accepted {
            Ok(a) => a,
            Err(why) => {
                self.counters.inc(match why {
                    Refused::Overlap | Refused::Poisoned => NatEvent::FragmentsOverlap,
                    Refused::Duplicate => NatEvent::FragmentsDuplicate,
                    Refused::OverBudget => NatEvent::FragmentsOverBudget,
                });
                self.count_frag_drops();
                return NatOutcome::Nothing;
            }
        };
        if first {
            let translated = match self.translate(now, ip, rx_port) {
                NatOutcome::Forward(v) => v,
                other => {
                    self.frags.forget(fk);
                    self.count_frag_drops();
                    return other;
                }
            };
            let Some(head) = translated.first() else {
                self.frags.forget(fk);
                self.count_frag_drops();
                return NatOutcome::Nothing;
            };
            let hp = Packet::new_unchecked(&head[..]);
            let (src, dst) = (hp.src_addr(), hp.dst_addr());
            let held = self.frags.translated(fk, src, dst);
            let mut out = translated;
            self.counters.inc(NatEvent::FragmentsTranslated);
            for mut f in held {
                if translate::rewrite_fragment(&mut f, src, dst).is_ok() {
                    self.counters.inc(NatEvent::FragmentsTranslated);
                    out.push(f);
                }
            }
            self.frags.finish_if_complete(fk);
            return NatOutcome::Forward(out);
        }
        let mut f = ip[..total].to_vec();
        match accepted {
            Accepted::Translate(src, dst) => {
                if translate::rewrite_fragment(&mut f, src, dst).is_err() {
                    self.counters.inc(NatEvent::FragmentsDropped);
                    return NatOutcome::Nothing;
                }
                self.counters.inc(NatEvent::FragmentsTranslated);
                self.frags.finish_if_complete(fk);
                NatOutcome::Forward(vec![f])
            }
            Accepted::Unknown => {
                if self.frags.hold(fk, f) {
                    self.counters.inc(NatEvent::FragmentsHeld);
                } else {
                    self.counters.inc(NatEvent::FragmentsOverBudget);
                }
                self.count_frag_drops();
                NatOutcome::Nothing
            }
        }
    }

    /// Count the held fragments reassembly dropped (evicted, timed out, poisoned).
    fn count_frag_drops(&mut self) {
        for _ in 0..self.frags.take_dropped() {
            self.counters.inc(NatEvent::FragmentsDropped);
        }
    }

    /// Bytes virtual reassembly holds now (at most `reassembly_bytes`).
    pub fn reassembly_bytes(&self) -> usize {
        self.frags.used()
    }

    /// Grow the maps that session creation inserts into (mappings, their reverse index,
    /// the filter's contacted endpoints) before they fill, here on the control thread's
    /// timer (every 50 ms or sooner): hashbrown rehashes a whole map inside the insert that
    /// finds it full, and that insert may be a worker's, holding the policy for milliseconds
    /// while its receive ring overflows. With half of [`MAP_RESERVE`] as the margin, workers
    /// would have to create 32 768 sessions between two ticks to reach a full map. Returns
    /// whether a map grew.
    pub fn grow_ahead(&mut self) -> bool {
        let limit = self.cfg.max_sessions as usize;
        let a = grow_ahead(&mut self.mappings, limit);
        let b = grow_ahead(&mut self.by_ext, limit);
        let c = grow_ahead(&mut self.contacted, limit);
        let d = grow_ahead(&mut self.hosts, limit);
        a || b || c || d
    }

    /// Timers: session expiry (a slice of the table per call), fragment and SYN-hold
    /// deadlines. Returns held SYNs to answer with ICMP port unreachable.
    pub fn tick(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.grow_ahead();
        self.expire_slots(now, SWEEP_BUDGET);
        self.ports.expire_quarantine(now);
        self.frags.expire(now);
        self.count_frag_drops();
        let mut refuse = Vec::new();
        while self.held_syns.front().is_some_and(|h| h.deadline <= now) {
            let Some(h) = self.held_syns.pop_front() else {
                break;
            };
            if self.sessions.find(&h.key).is_none() {
                self.counters.inc(NatEvent::SynHoldRefused);
                refuse.push(h.packet);
            }
        }
        refuse
    }

    /// Visit up to `budget` session slots (continuing where the last visit stopped) and
    /// remove the sessions idle past their timeout. Returns how many were removed.
    fn expire_slots(&mut self, now: Instant, budget: usize) -> usize {
        let t = self.cfg.timeouts;
        let now_s = secs(self.epoch, now);
        let mut expired: Vec<(FlowKey, Rewrite)> = Vec::new();
        self.sessions.sweep(budget, |_, k, r, state, last| {
            let limit = match k.proto {
                proto::TCP => match tcpsm::timeout(TcpState::from_u8(state)) {
                    Timeout::Established => t.tcp_established,
                    Timeout::Transitory => t.tcp_transitory,
                    Timeout::InboundOpen => t.tcp_inbound_open,
                },
                proto::UDP => t.udp,
                _ => t.icmp,
            };
            let dead = u64::from(now_s.saturating_sub(last)) > limit.as_secs();
            if dead {
                expired.push((*k, *r));
            }
            dead
        });
        let n = expired.len();
        for (k, r) in expired {
            self.counters.inc(NatEvent::SessionsExpired);
            self.forget_session(now, &k, &r);
        }
        n
    }

    /// What a removed session held: its filter entry, its host's count, its mapping (and a
    /// hairpin's second mapping).
    fn forget_session(&mut self, now: Instant, k: &FlowKey, r: &Rewrite) {
        self.log_session(LogKind::SessionDel, now, k, r);
        self.by_proto[proto_slot(k.proto)] -= 1;
        {
            if let Some(c) = self.contacted.get_mut(&(k.proto, r.src, r.sport, r.dst)) {
                *c -= 1;
                if *c == 0 {
                    self.contacted.remove(&(k.proto, r.src, r.sport, r.dst));
                }
            }
            if let Some(c) = self.hosts.get_mut(&k.src) {
                *c -= 1;
                if *c == 0 {
                    self.hosts.remove(&k.src);
                }
            }
            if !self.unref_retired(now, k.proto, r.src, r.sport) {
                self.unref_mapping(now, k.proto, k.src, k.sport);
            }
            if self.is_pool(k.dst) && !self.unref_retired(now, k.proto, k.dst, k.dport) {
                // A hairpin session: it also held the target's mapping (`r.dst:r.dport`).
                self.unref_mapping(now, k.proto, r.dst, r.dport);
            }
        }
    }

    /// A session on external `(ext, eport)` whose forward was moved by a reload: counted
    /// against the retired port (released with its last session) instead of the inside
    /// endpoint's new mapping. Returns whether it was such a session.
    fn unref_retired(&mut self, now: Instant, proto_: u8, ext: Ipv4Addr, eport: u16) -> bool {
        let Some(n) = self.retired.get_mut(&(proto_, ext, eport)) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.retired.remove(&(proto_, ext, eport));
            self.fast.mapped.set(ext, proto_, eport, false);
            self.ports.release_reserved(now, proto_, ext, eport);
            self.counters.inc(NatEvent::MappingsReleased);
        }
        true
    }

    /// Turn the NAT event log on (`Some((buffer, destinations))`: at most `buffer` events
    /// wait for [`NatPolicy::take_log`]; session events too if `destinations`) or off.
    pub fn set_log(&mut self, log: Option<(usize, bool)>) {
        self.log = log.map(|(cap, destinations)| LogBuf {
            events: Vec::new(),
            cap,
            destinations,
        });
    }

    /// The events recorded since the last call (empty when the log is off).
    pub fn take_log(&mut self) -> Vec<LogEvent> {
        self.log
            .as_mut()
            .map(|l| std::mem::take(&mut l.events))
            .unwrap_or_default()
    }

    fn log(
        &mut self,
        kind: LogKind,
        at: Instant,
        proto_: u8,
        inside: (Ipv4Addr, u16),
        external: (Ipv4Addr, u16),
        remote: Option<(Ipv4Addr, u16)>,
    ) {
        let Some(l) = self.log.as_mut() else { return };
        if l.events.len() >= l.cap {
            self.counters.inc(NatEvent::LogDropped);
            return;
        }
        l.events.push(LogEvent {
            kind,
            at,
            proto: proto_,
            inside,
            external,
            remote,
        });
    }

    /// A session event: inside `k.src:k.sport`, external `r.src:r.sport`, the remote as
    /// seen outside `r.dst:r.dport` (the session's stored shape, either direction).
    fn log_session(&mut self, kind: LogKind, at: Instant, k: &FlowKey, r: &Rewrite) {
        if self.log.as_ref().is_some_and(|l| l.destinations) {
            self.log(
                kind,
                at,
                k.proto,
                (k.src, k.sport),
                (r.src, r.sport),
                Some((r.dst, r.dport)),
            );
        }
    }

    /// Sessions of inside host `a`.
    pub fn host_sessions(&self, a: Ipv4Addr) -> u32 {
        self.hosts.get(&a).copied().unwrap_or(0)
    }

    /// Find a session (tests, diagnostics).
    pub fn find(&self, key: &FlowKey) -> Option<(SessionIndex, Direction)> {
        self.sessions.find(key).map(|h| (h.index, h.dir))
    }
}

pub mod operator;
pub mod reassembly;
#[cfg(test)]
mod tests;
