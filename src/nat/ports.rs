//! External address and port allocation for NAT44 mappings (control plane only).
//!
//! Owns: which external `(address, port, protocol)` triples are free, allocated, reserved for
//! static port forwards, or in quarantine; and the inside-address → external-address pairing.
//! Depends on: `ahash` and [`super::flow::proto`]. Never used on the fast path.
//!
//! # Contract and decisions
//!
//! - The caller asks once per **new mapping** of an inside endpoint `(int_addr, int_port,
//!   proto)`; reusing that mapping for every destination (endpoint-independent mapping, RFC
//!   4787 REQ-1, RFC 5382 REQ-1, RFC 5508 REQ-1a) is the session layer's job. Every
//!   [`PortAllocator::allocate`] must be matched by one [`PortAllocator::release`] with the same
//!   `int_addr`.
//! - No port overloading (RFC 4787 REQ-3, RFC 5382 REQ-7): a triple is held by at most one
//!   mapping or reservation. When nothing suitable is free, allocation fails with
//!   [`AllocError::Exhausted`]; nothing is evicted (RFC 6888 REQ-11).
//! - Paired pooling (RFC 4787 REQ-2, RFC 6888 REQ-2, across all protocols per RFC 7857 §4):
//!   while an inside address holds any mapping, all its new mappings use the same external
//!   address. If that address has no suitable port left the allocation **fails** rather than
//!   use another address. An inside address with no mapping is assigned deterministically:
//!   the first address, starting at a keyed hash of the inside address and going round the
//!   pool, that has a suitable free port (for a host with no mapping this breaks no pairing).
//! - Port choice (TCP, UDP), in this order, with no load-dependent fallback (RFC 4787 REQ-11):
//!   1. preserve `int_port` if it lies in `[min_port, max_port]` and is free;
//!   2. else a random free port of the **same parity** (RFC 4787 REQ-4) in the **same range
//!      class** (0–1023 or 1024–65535, RFC 4787 REQ-3a) intersected with `[min_port,
//!      max_port]`. If that intersection is empty (e.g. source port 80 with the default range
//!      1024–65535) the class is the whole configured range, still with the same parity. This
//!      depends only on the configuration, never on load. Port 0 is never allocated.
//! - ICMP query identifiers: preserved if free, else any free identifier in `[min_port,
//!   max_port]` (0 allowed), parity ignored.
//! - Randomisation (RFC 6056 §3.3.1 "Algorithm 1", RFC 7857 §9): a keyed-hash random start in
//!   the candidate range, then a sequential scan of the in-use bitmap 64 ports per word, with
//!   range and parity masks, wrapping once. Cost is bounded by 1024 word operations even when
//!   the pool is nearly full, and exhaustion is detected exactly. The generator is ahash keyed
//!   by `seed` over a counter: deterministic for a given seed, not cryptographic; production
//!   code must pass a secret random seed.
//! - Quarantine (RFC 6888 REQ-8): a released triple is not handed out again before
//!   `quarantine` (default 120 s) has passed. Quarantined ports stay marked in use and leave a
//!   FIFO lazily on the next `allocate` (or [`PortAllocator::expire_quarantine`]) at or after
//!   their deadline; `now` must be monotonic (an `Instant`).
//! - Memory: two 8 KiB bitmaps (in use, quarantined) per (address, protocol) for TCP, UDP and
//!   ICMP, plus the quarantine FIFO and the pairing map.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::flow::proto;

/// Default quarantine of a released port (RFC 6888 REQ-8: 120 s).
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(120);

/// 64-bit words in a 65536-port bitmap.
const WORDS: usize = 65536 / 64;
/// Protocols with their own port space: TCP, UDP, ICMP (identifiers).
const PROTOS: usize = 3;
/// Bits of the even ports in a bitmap word (word bases are multiples of 64, hence even).
const EVEN: u64 = 0x5555_5555_5555_5555;

/// The external address pool and port range.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PortConfig {
    /// External addresses (duplicates are ignored).
    pub addresses: Vec<Ipv4Addr>,
    /// Lowest port/identifier handed out (inclusive).
    pub min_port: u16,
    /// Highest port/identifier handed out (inclusive); a range with `min_port > max_port` is empty.
    pub max_port: u16,
    /// How long a released port stays unavailable (RFC 6888 REQ-8; 120 s by default).
    pub quarantine: Duration,
}

impl PortConfig {
    /// The default configuration for `addresses`: ports 1024–65535, 120 s quarantine.
    pub fn new(addresses: Vec<Ipv4Addr>) -> PortConfig {
        PortConfig {
            addresses,
            min_port: 1024,
            max_port: 65535,
            quarantine: DEFAULT_QUARANTINE,
        }
    }
}

/// Why no external port could be allocated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    /// No suitable free port on the (paired) external address.
    Exhausted,
    /// The protocol has no ports or identifiers to translate (only TCP, UDP, ICMP do).
    UnsupportedProtocol,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::Exhausted => "external ports exhausted",
            AllocError::UnsupportedProtocol => "protocol has no ports to translate",
        })
    }
}

impl std::error::Error for AllocError {}

/// Port state of one (external address, protocol).
struct Pool {
    /// Allocated, reserved or quarantined.
    used: Box<[u64]>,
    /// Quarantined (a subset of `used`).
    quarantined: Box<[u64]>,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            used: vec![0; WORDS].into_boxed_slice(),
            quarantined: vec![0; WORDS].into_boxed_slice(),
        }
    }
}

#[inline]
fn get(bits: &[u64], port: u16) -> bool {
    bits[usize::from(port) / 64] & (1 << (port % 64)) != 0
}

#[inline]
fn set(bits: &mut [u64], port: u16, on: bool) {
    let (w, b) = (usize::from(port) / 64, 1u64 << (port % 64));
    if on {
        bits[w] |= b;
    } else {
        bits[w] &= !b;
    }
}

/// First port in `[a, b]` that is clear in `used` and set in the parity mask `pm`.
fn scan(used: &[u64], a: u16, b: u16, pm: u64) -> Option<u16> {
    let (wa, wb) = (usize::from(a) / 64, usize::from(b) / 64);
    for (w, &word) in used.iter().enumerate().take(wb + 1).skip(wa) {
        let mut m = !word & pm;
        if w == wa {
            m &= !0u64 << (a % 64);
        }
        if w == wb {
            m &= !0u64 >> (63 - b % 64);
        }
        if m != 0 {
            return Some((w * 64 + m.trailing_zeros() as usize) as u16);
        }
    }
    None
}

/// A port in quarantine until `until`.
#[derive(Debug)]
struct Quarantined {
    until: Instant,
    pool: u32,
    port: u16,
}

/// The external address an inside address is paired with, and how many mappings hold it.
#[derive(Debug)]
struct Pair {
    addr: u32,
    refs: u32,
}

fn proto_index(p: u8) -> Option<usize> {
    match p {
        proto::TCP => Some(0),
        proto::UDP => Some(1),
        proto::ICMP => Some(2),
        _ => None,
    }
}

/// Allocator of external `(address, port)` pairs for NAT44 mappings (see the module docs).
pub struct PortAllocator {
    addresses: Vec<Ipv4Addr>,
    addr_index: HashMap<Ipv4Addr, u32, ahash::RandomState>,
    min_port: u16,
    max_port: u16,
    quarantine: Duration,
    /// `pools[addr * PROTOS + proto_index]`.
    pools: Vec<Pool>,
    fifo: VecDeque<Quarantined>,
    pairs: HashMap<Ipv4Addr, Pair, ahash::RandomState>,
    in_use: [usize; PROTOS],
    /// Ports in use per pool (`addr * PROTOS + proto_index`).
    pool_in_use: Vec<usize>,
    /// Keyed hash for random port starts and address choice.
    prf: ahash::RandomState,
    counter: u64,
}

impl fmt::Debug for PortAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortAllocator")
            .field("addresses", &self.addresses)
            .field("min_port", &self.min_port)
            .field("max_port", &self.max_port)
            .field("quarantine", &self.quarantine)
            .field("in_use", &self.in_use)
            .field("quarantined", &self.fifo.len())
            .field("paired_hosts", &self.pairs.len())
            .finish_non_exhaustive()
    }
}

impl PortAllocator {
    /// An allocator for `cfg`; `seed` keys port randomisation (use a secret random value).
    pub fn new(cfg: PortConfig, seed: u64) -> Self {
        let s = |i: u64| {
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(i)
                .rotate_left(23)
        };
        let mut addresses = Vec::new();
        let mut addr_index = HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
        for a in cfg.addresses {
            if let Entry::Vacant(e) = addr_index.entry(a) {
                e.insert(addresses.len() as u32);
                addresses.push(a);
            }
        }
        let pools = (0..addresses.len() * PROTOS).map(|_| Pool::new()).collect();
        let pool_in_use = vec![0; addresses.len() * PROTOS];
        PortAllocator {
            addresses,
            addr_index,
            min_port: cfg.min_port,
            max_port: cfg.max_port,
            quarantine: cfg.quarantine,
            pools,
            fifo: VecDeque::new(),
            pairs: HashMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8)),
            in_use: [0; PROTOS],
            pool_in_use,
            prf: ahash::RandomState::with_seeds(s(1), s(2), s(3), s(4)),
            counter: 0,
        }
    }

    /// Add `a` to the pool (a reload): new hosts may be given it; paired hosts keep their
    /// address (RFC 4787 REQ-2). No-op if it is in the pool already.
    pub fn add_address(&mut self, a: Ipv4Addr) {
        if let Entry::Vacant(e) = self.addr_index.entry(a) {
            e.insert(self.addresses.len() as u32);
            self.addresses.push(a);
            self.pools.extend((0..PROTOS).map(|_| Pool::new()));
            self.pool_in_use.extend([0; PROTOS]);
        }
    }

    /// Choose the external (address, port) for a NEW mapping of inside endpoint (int_addr, int_port, proto).
    ///
    /// Paired pooling, port preservation, parity and range class as in the module docs.
    ///
    /// # Errors
    /// [`AllocError::Exhausted`] if the paired address (or, for an unpaired host, every
    /// address) has no suitable free port; [`AllocError::UnsupportedProtocol`] for protocols
    /// other than TCP, UDP and ICMP.
    pub fn allocate(
        &mut self,
        now: Instant,
        proto: u8,
        int_addr: Ipv4Addr,
        int_port: u16,
    ) -> Result<(Ipv4Addr, u16), AllocError> {
        let p = proto_index(proto).ok_or(AllocError::UnsupportedProtocol)?;
        self.expire_quarantine(now);
        let n = self.addresses.len() as u32;
        let (first, tries) = match self.pairs.get(&int_addr) {
            // RFC 4787 REQ-2: paired, never another address.
            Some(pair) => (pair.addr, 1),
            None if n == 0 => return Err(AllocError::Exhausted),
            None => (
                (self.prf.hash_one(u32::from(int_addr)) % u64::from(n)) as u32,
                n,
            ),
        };
        for t in 0..tries {
            let a = (first + t) % n;
            if let Some(port) = self.pick(a as usize * PROTOS + p, proto, int_port) {
                let pool = &mut self.pools[a as usize * PROTOS + p];
                set(&mut pool.used, port, true);
                self.in_use[p] += 1;
                self.pool_in_use[a as usize * PROTOS + p] += 1;
                self.pairs
                    .entry(int_addr)
                    .or_insert(Pair { addr: a, refs: 0 })
                    .refs += 1;
                return Ok((self.addresses[a as usize], port));
            }
        }
        Err(AllocError::Exhausted)
    }

    /// A free port of pool `pool` for `int_port`, or `None` (module docs, "Port choice").
    fn pick(&mut self, pool: usize, proto: u8, int_port: u16) -> Option<u16> {
        let icmp = proto == proto::ICMP;
        let lo = if icmp {
            self.min_port
        } else {
            self.min_port.max(1)
        };
        let hi = self.max_port;
        if lo > hi {
            return None;
        }
        let used = &self.pools[pool].used;
        if (lo..=hi).contains(&int_port) && !get(used, int_port) {
            return Some(int_port);
        }
        let (clo, chi, pm) = if icmp {
            (lo, hi, !0)
        } else {
            // RFC 4787 REQ-3a range class, REQ-4 parity.
            let (c0, c1) = if int_port < 1024 {
                (0, 1023)
            } else {
                (1024, 65535)
            };
            let (a, b) = (lo.max(c0), hi.min(c1));
            let (a, b) = if a <= b { (a, b) } else { (lo, hi) };
            (a, b, if int_port & 1 == 0 { EVEN } else { !EVEN })
        };
        self.counter += 1;
        let r = self.prf.hash_one(self.counter);
        let start = clo + (r % (u64::from(chi - clo) + 1)) as u16;
        let used = &self.pools[pool].used;
        scan(used, start, chi, pm).or_else(|| {
            if start > clo {
                scan(used, clo, start - 1, pm)
            } else {
                None
            }
        })
    }

    /// Reserve a specific (addr, port, proto) (static port forwards); false if taken.
    ///
    /// Also false for an address outside the pool or a protocol without ports. A reservation
    /// does not pair any inside host; free it with [`PortAllocator::release_reserved`].
    pub fn reserve(&mut self, proto: u8, addr: Ipv4Addr, port: u16) -> bool {
        let Some(pool) = self.pool_index(proto, addr) else {
            return false;
        };
        let used = &mut self.pools[pool].used;
        if get(used, port) {
            return false;
        }
        set(used, port, true);
        self.in_use[pool % PROTOS] += 1;
        self.pool_in_use[pool] += 1;
        true
    }

    /// Free a port: it enters quarantine and is not handed out again before `quarantine` has passed (RFC 6888 REQ-8).
    ///
    /// `int_addr`'s pairing is dropped with its last mapping. Releasing a triple that is not
    /// allocated (or already in quarantine) does nothing.
    pub fn release(
        &mut self,
        now: Instant,
        proto: u8,
        int_addr: Ipv4Addr,
        addr: Ipv4Addr,
        port: u16,
    ) {
        if !self.quarantine_port(now, proto, addr, port) {
            return;
        }
        let a = self.addr_index[&addr];
        if let Some(pair) = self.pairs.get_mut(&int_addr) {
            if pair.addr == a {
                pair.refs -= 1;
                if pair.refs == 0 {
                    self.pairs.remove(&int_addr);
                }
            }
        }
    }

    /// Free a port taken by [`PortAllocator::reserve`]; it goes through quarantine too.
    pub fn release_reserved(&mut self, now: Instant, proto: u8, addr: Ipv4Addr, port: u16) {
        self.quarantine_port(now, proto, addr, port);
    }

    /// Move an in-use triple to quarantine; false if it was not in use.
    fn quarantine_port(&mut self, now: Instant, proto: u8, addr: Ipv4Addr, port: u16) -> bool {
        let Some(pool) = self.pool_index(proto, addr) else {
            return false;
        };
        let p = &mut self.pools[pool];
        if !get(&p.used, port) || get(&p.quarantined, port) {
            return false;
        }
        set(&mut p.quarantined, port, true);
        self.in_use[pool % PROTOS] -= 1;
        self.pool_in_use[pool] -= 1;
        self.fifo.push_back(Quarantined {
            until: now + self.quarantine,
            pool: pool as u32,
            port,
        });
        true
    }

    /// Return every port whose quarantine ended at or before `now` to the free pool.
    pub fn expire_quarantine(&mut self, now: Instant) {
        while let Some(q) = self.fifo.front() {
            if q.until > now {
                break;
            }
            let pool = &mut self.pools[q.pool as usize];
            set(&mut pool.used, q.port, false);
            set(&mut pool.quarantined, q.port, false);
            self.fifo.pop_front();
        }
    }

    fn pool_index(&self, proto: u8, addr: Ipv4Addr) -> Option<usize> {
        let p = proto_index(proto)?;
        let a = *self.addr_index.get(&addr)?;
        Some(a as usize * PROTOS + p)
    }

    /// Ports of `proto` currently allocated or reserved (quarantined ports not included).
    pub fn in_use(&self, proto: u8) -> usize {
        proto_index(proto).map_or(0, |p| self.in_use[p])
    }

    /// Ports allocated or reserved per external address and protocol (TCP, UDP, ICMP), in
    /// pool order (O(addresses), for metrics).
    pub fn in_use_by_address(&self) -> Vec<(Ipv4Addr, u8, usize)> {
        let protos = [proto::TCP, proto::UDP, proto::ICMP];
        self.addresses
            .iter()
            .enumerate()
            .flat_map(|(a, &addr)| {
                protos
                    .iter()
                    .enumerate()
                    .map(move |(i, &p)| (addr, p, a * PROTOS + i))
            })
            .map(|(addr, p, pool)| (addr, p, self.pool_in_use[pool]))
            .collect()
    }

    /// Ports (all protocols) currently in quarantine.
    pub fn quarantined(&self) -> usize {
        self.fifo.len()
    }

    /// The external address `int_addr` is paired with, if it holds any mapping.
    pub fn paired_address(&self, int_addr: Ipv4Addr) -> Option<Ipv4Addr> {
        self.pairs
            .get(&int_addr)
            .map(|p| self.addresses[p.addr as usize])
    }

    /// All heap bytes of the allocator (bitmaps, FIFO, maps; hash maps estimated).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let bitmaps = self.pools.len() * (size_of::<Pool>() + 2 * WORDS * 8);
        let fifo = self.fifo.capacity() * size_of::<Quarantined>();
        // hashbrown: one control byte per bucket plus the entry.
        let pairs = self.pairs.capacity() * (size_of::<(Ipv4Addr, Pair)>() + 1);
        let index = self.addr_index.capacity() * (size_of::<(Ipv4Addr, u32)>() + 1);
        bitmaps + fifo + pairs + index + self.addresses.capacity() * size_of::<Ipv4Addr>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const EXT1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    const EXT2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

    fn host(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i)
    }

    fn alloc(addrs: &[Ipv4Addr], min: u16, max: u16, seed: u64) -> PortAllocator {
        PortAllocator::new(
            PortConfig {
                addresses: addrs.to_vec(),
                min_port: min,
                max_port: max,
                quarantine: DEFAULT_QUARANTINE,
            },
            seed,
        )
    }

    #[test]
    fn preserves_free_port() {
        let mut a = PortAllocator::new(PortConfig::new(vec![EXT1]), 1);
        let t = Instant::now();
        assert_eq!(a.allocate(t, proto::UDP, host(1), 40000), Ok((EXT1, 40000)));
        // The same port for TCP and ICMP is a different space.
        assert_eq!(a.allocate(t, proto::TCP, host(1), 40000), Ok((EXT1, 40000)));
        assert_eq!(
            a.allocate(t, proto::ICMP, host(1), 40000),
            Ok((EXT1, 40000))
        );
        // Taken: another host gets another port.
        let (_, p) = a.allocate(t, proto::UDP, host(2), 40000).unwrap();
        assert_ne!(p, 40000);
        assert_eq!(a.in_use(proto::UDP), 2);
        assert_eq!(a.in_use(proto::TCP), 1);
        assert_eq!(
            a.allocate(t, 47, host(1), 0),
            Err(AllocError::UnsupportedProtocol)
        );
    }

    #[test]
    fn parity_preserved_even_and_odd() {
        let mut a = PortAllocator::new(PortConfig::new(vec![EXT1]), 2);
        let t = Instant::now();
        for (i, sport) in [5000u16, 5001].into_iter().cycle().take(400).enumerate() {
            let (_, p) = a.allocate(t, proto::UDP, host(i as u32), sport).unwrap();
            assert_eq!(p % 2, sport % 2, "parity of {sport} -> {p}");
            assert!(p >= 1024);
        }
    }

    #[test]
    fn range_class_kept() {
        // Range allows low ports: source port 80 maps into 1..1024, 40000 into 1024+.
        let mut a = alloc(&[EXT1], 0, 65535, 3);
        let t = Instant::now();
        assert_eq!(a.allocate(t, proto::TCP, host(1), 80), Ok((EXT1, 80)));
        for i in 2..200 {
            let (_, p) = a.allocate(t, proto::TCP, host(i), 80).unwrap();
            assert!((1..1024).contains(&p) && p % 2 == 0, "80 -> {p}");
            let (_, p) = a.allocate(t, proto::TCP, host(i), 40001).unwrap();
            assert!(p >= 1024 && p % 2 == 1, "40001 -> {p}");
        }
        // Default range 1024-65535: the low class is not configured, so source port 80 gets a
        // port from 1024+ with the same (even) parity.
        let mut a = PortAllocator::new(PortConfig::new(vec![EXT1]), 3);
        for i in 0..100 {
            let (_, p) = a.allocate(t, proto::UDP, host(i), 80).unwrap();
            assert!(p >= 1024 && p % 2 == 0, "80 -> {p}");
        }
    }

    #[test]
    fn quarantine_blocks_reuse_for_120s() {
        // One usable even port: 2000 (range 2000-2001, source port even).
        let mut a = alloc(&[EXT1], 2000, 2001, 4);
        let t0 = Instant::now();
        assert_eq!(a.allocate(t0, proto::UDP, host(1), 2000), Ok((EXT1, 2000)));
        a.release(t0, proto::UDP, host(1), EXT1, 2000);
        a.release(t0, proto::UDP, host(1), EXT1, 2000); // double release ignored
        assert_eq!((a.in_use(proto::UDP), a.quarantined()), (0, 1));
        assert_eq!(a.paired_address(host(1)), None);
        let t = t0 + Duration::from_secs(119);
        assert_eq!(
            a.allocate(t, proto::UDP, host(2), 2000),
            Err(AllocError::Exhausted)
        );
        let t = t0 + Duration::from_secs(120);
        assert_eq!(a.allocate(t, proto::UDP, host(2), 2000), Ok((EXT1, 2000)));
        assert_eq!(a.quarantined(), 0);
    }

    #[test]
    fn exhaustion_detected_without_duplicates() {
        let mut a = alloc(&[EXT1], 3000, 3009, 5);
        let t = Instant::now();
        let mut seen = HashSet::new();
        for i in 0..10u32 {
            // Mixed parity source ports: 5 even and 5 odd ports exist.
            let (addr, p) = a
                .allocate(t, proto::TCP, host(1), 50_000 + i as u16)
                .unwrap();
            assert!((3000..=3009).contains(&p) && p % 2 == (i % 2) as u16);
            assert!(seen.insert((addr, p)), "duplicate {p}");
        }
        assert_eq!(
            a.allocate(t, proto::TCP, host(1), 50_000),
            Err(AllocError::Exhausted)
        );
        assert_eq!(
            a.allocate(t, proto::TCP, host(2), 3001),
            Err(AllocError::Exhausted)
        );
        assert_eq!(a.in_use(proto::TCP), 10);
        // Another protocol has its own ports.
        assert!(a.allocate(t, proto::UDP, host(1), 3000).is_ok());

        // Large nearly-full pool: the last free port is found by the bitmap scan.
        let mut a = PortAllocator::new(PortConfig::new(vec![EXT1]), 6);
        let mut n = 0;
        while a.allocate(t, proto::UDP, host(n), 1024).is_ok() {
            n += 1;
        }
        assert_eq!(n, 32256, "every even port 1024..65535 exactly once");
    }

    #[test]
    fn paired_pooling_with_two_addresses() {
        let mut a = alloc(&[EXT1, EXT2], 1024, 1033, 7);
        let t = Instant::now();
        let mut used_by = HashMap::new();
        for h in 0..8 {
            for (i, pr) in [proto::TCP, proto::UDP, proto::ICMP]
                .into_iter()
                .enumerate()
            {
                if let Ok((ext, _)) = a.allocate(t, pr, host(h), 1024 + i as u16) {
                    assert_eq!(*used_by.entry(h).or_insert(ext), ext, "host {h} unpaired");
                    assert_eq!(a.paired_address(host(h)), Some(ext));
                }
            }
        }
        let addrs: HashSet<_> = used_by.values().collect();
        assert_eq!(addrs.len(), 2, "hosts spread over both addresses");
        // Exhaust host 0's address for TCP: host 0 fails even though the other has ports.
        let mine = used_by[&0];
        let mut n = 0;
        while a.allocate(t, proto::TCP, host(0), 1025).is_ok() {
            n += 1;
        }
        assert!(n > 0);
        assert_eq!(a.paired_address(host(0)), Some(mine));
        // A new host is placed on an address that still has a port.
        let (ext, _) = a.allocate(t, proto::TCP, host(100), 1025).unwrap();
        assert_ne!(ext, mine);
    }

    #[test]
    fn reserve_static_forward() {
        let mut a = PortAllocator::new(PortConfig::new(vec![EXT1]), 8);
        let t = Instant::now();
        assert!(a.reserve(proto::TCP, EXT1, 8080));
        assert!(!a.reserve(proto::TCP, EXT1, 8080));
        assert!(!a.reserve(proto::TCP, EXT2, 8080), "not a pool address");
        assert!(a.reserve(proto::UDP, EXT1, 8080));
        let (_, p) = a.allocate(t, proto::TCP, host(1), 8080).unwrap();
        assert_ne!(p, 8080);
        assert_eq!(a.paired_address(host(1)), Some(EXT1));
        let (_, q) = a.allocate(t, proto::TCP, host(2), 9000).unwrap();
        assert!(!a.reserve(proto::TCP, EXT1, q));
        a.release_reserved(t, proto::TCP, EXT1, 8080);
        assert!(!a.reserve(proto::TCP, EXT1, 8080), "quarantined");
        a.expire_quarantine(t + DEFAULT_QUARANTINE);
        assert!(a.reserve(proto::TCP, EXT1, 8080));
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = |seed| {
            let mut a = alloc(&[EXT1, EXT2], 1024, 65535, seed);
            let t = Instant::now();
            (0..200)
                .map(|i| a.allocate(t, proto::UDP, host(i % 20), 5000).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn memory_is_bitmaps() {
        let a = alloc(&[EXT1, EXT2], 1024, 65535, 9);
        let m = a.memory_bytes();
        println!("2 addresses: {m} bytes");
        assert!((2 * 3 * 16384..2 * 3 * 16384 + 4096).contains(&m));
    }
}
