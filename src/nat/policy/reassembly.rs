//! Bounded bookkeeping for the NAT's virtual reassembly (RFC 4787 REQ-14): which fragments
//! of each datagram have been seen, the fragments held until their first one arrives, and the
//! memory all of that may take.
//!
//! Limits, all enforced before anything is stored:
//! - a byte budget for the whole table (`[nat] reassembly_bytes`, default 4 MiB): held
//!   fragments count their length, each datagram tracked a fixed [`ENTRY_COST`] plus
//!   [`RANGE_COST`] per fragment seen. A datagram that would exceed it evicts the oldest
//!   datagrams first (as the kernel's `ipfrag_high_thresh` does); one that still does not fit
//!   is dropped;
//! - a per-source share (`reassembly_bytes / 16`, at least 64 KiB): one source cannot take
//!   the budget from the others, its excess is dropped (no eviction);
//! - at most [`MAX_FRAGMENTS`] fragments per datagram, which must end by 65 535 bytes;
//! - overlapping fragments (RFC 1858, RFC 3128): a fragment that overlaps one already seen
//!   without being an exact duplicate of it drops the whole datagram, which stays poisoned
//!   (its later fragments dropped) until it times out; an exact duplicate is dropped alone
//!   (as Linux does); a TCP fragment at offset 8 is refused (RFC 1858 §3: it can only
//!   rewrite the first fragment's header);
//! - a datagram is forgotten [`TIMEOUT`] after its first fragment arrived, or as soon as all of
//!   it has passed.
//!
//! Sans-I/O: time is an argument; the policy does the translating.

use std::{
    collections::VecDeque,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

/// How long fragments of one datagram are kept.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Budget charged per datagram tracked (the entry and its map slot, rounded up).
pub const ENTRY_COST: usize = 256;
/// Budget charged per fragment seen (its range).
pub const RANGE_COST: usize = 8;
/// Fragments per datagram (a 65 535-byte datagram over a 576-byte MTU needs 117).
pub const MAX_FRAGMENTS: usize = 128;
/// Default `[nat] reassembly_bytes`.
pub const DEFAULT_BUDGET: usize = 4 << 20;
/// The smallest per-source share.
const MIN_SOURCE_SHARE: usize = 64 << 10;

/// (source, destination, protocol, identification): one datagram (RFC 791).
pub type FragKey = (Ipv4Addr, Ipv4Addr, u8, u16);

/// Why a fragment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It overlaps another fragment of its datagram, or is otherwise impossible (past 65 535
    /// bytes, a non-last fragment whose length is not a multiple of 8, beyond the last
    /// fragment's end, TCP at offset 8, too many fragments); the datagram is dropped.
    Overlap,
    /// An exact duplicate of a fragment already seen.
    Duplicate,
    /// The byte budget or the source's share is used up.
    OverBudget,
    /// Its datagram was dropped earlier (overlap) and has not timed out yet.
    Poisoned,
}

#[derive(Debug)]
struct Entry {
    born: Instant,
    /// New (src, dst) once the first fragment was translated.
    translation: Option<(Ipv4Addr, Ipv4Addr)>,
    held: Vec<Vec<u8>>,
    /// Byte ranges `[start, end)` seen.
    ranges: Vec<(u16, u32)>,
    /// The end of the datagram, once its last fragment was seen.
    end: Option<u32>,
    /// Bytes of the datagram seen (no overlaps, so the sum of the ranges).
    seen: u32,
    poisoned: bool,
    /// Budget charged to this entry.
    charged: usize,
}

impl Entry {
    fn complete(&self) -> bool {
        self.translation.is_some() && self.end.is_some_and(|e| e == self.seen)
    }
}

/// What happened to a fragment that was accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The datagram's translation is known: rewrite this fragment with it.
    Translate(Ipv4Addr, Ipv4Addr),
    /// Not yet known: hold the fragment ([`Reassembly::hold`]), or, for a first fragment,
    /// translate it and report the result ([`Reassembly::translated`]).
    Unknown,
}

/// The table.
#[derive(Debug)]
pub struct Reassembly {
    budget: usize,
    share: usize,
    used: usize,
    entries: super::HashMap<FragKey, Entry>,
    /// Keys in arrival order of their datagram's first fragment seen (= deadline order),
    /// with the entry's birth to skip keys that were removed and re-created.
    order: VecDeque<(Instant, FragKey)>,
    /// Budget charged per source address.
    sources: super::HashMap<Ipv4Addr, usize>,
    /// Held fragments dropped (evicted or timed out) since the last [`Reassembly::take_dropped`].
    dropped: u64,
}

impl Reassembly {
    /// A table of at most `budget` bytes.
    pub fn new(budget: usize) -> Reassembly {
        Reassembly {
            budget,
            share: (budget / 16).max(MIN_SOURCE_SHARE).min(budget),
            used: 0,
            entries: super::HashMap::default(),
            order: VecDeque::new(),
            sources: super::HashMap::default(),
            dropped: 0,
        }
    }

    /// Bytes charged now (at most the budget).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Datagrams tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Held fragments dropped by eviction or timeout since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Account a fragment of datagram `k`: `offset` and `len` in bytes of the datagram's
    /// payload, `more` its MF flag, `tcp` whether the datagram is TCP.
    pub fn accept(
        &mut self,
        now: Instant,
        k: FragKey,
        offset: u16,
        len: usize,
        more: bool,
        tcp: bool,
    ) -> Result<Accepted, Refused> {
        let start = u32::from(offset);
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let end = start.saturating_add(len);
        if let Some(e) = self.entries.get(&k) {
            if e.poisoned {
                return Err(Refused::Poisoned);
            }
        }
        let impossible = end > 65_535 || (more && len % 8 != 0) || len == 0 || (tcp && offset == 8);
        if impossible {
            self.poison(now, k);
            return Err(Refused::Overlap);
        }
        if !self.entries.contains_key(&k) {
            self.make_room(k, ENTRY_COST + RANGE_COST)?;
            self.charge(k.0, ENTRY_COST);
            self.entries.insert(
                k,
                Entry {
                    born: now,
                    translation: None,
                    held: Vec::new(),
                    ranges: Vec::new(),
                    end: None,
                    seen: 0,
                    poisoned: false,
                    charged: ENTRY_COST,
                },
            );
            self.order.push_back((now, k));
            self.compact_order();
        } else {
            self.make_room(k, RANGE_COST)?;
        }
        let Some(e) = self.entries.get_mut(&k) else {
            return Err(Refused::OverBudget);
        };
        if e.ranges
            .iter()
            .any(|&(s, x)| u32::from(s) == start && x == end)
        {
            return Err(Refused::Duplicate);
        }
        let overlaps = e
            .ranges
            .iter()
            .any(|&(s, x)| start < x && u32::from(s) < end);
        let past_end = e.end.is_some_and(|d| end > d || (!more && end != d));
        let before_seen = !more && e.ranges.iter().any(|&(_, x)| x > end);
        if overlaps || past_end || before_seen || e.ranges.len() >= MAX_FRAGMENTS {
            self.poison(now, k);
            return Err(Refused::Overlap);
        }
        e.ranges.push((offset, end));
        e.seen += len;
        if !more {
            e.end = Some(end);
        }
        e.charged += RANGE_COST;
        let tr = e.translation;
        self.charge(k.0, RANGE_COST);
        Ok(match tr {
            Some((s, d)) => Accepted::Translate(s, d),
            None => Accepted::Unknown,
        })
    }

    /// Hold `frag` (an accepted fragment whose translation is unknown) until its first
    /// fragment; false (and nothing held) if the budget or the source's share is used up.
    pub fn hold(&mut self, k: FragKey, frag: Vec<u8>) -> bool {
        let cost = frag.len();
        if self.make_room(k, cost).is_err() || !self.entries.contains_key(&k) {
            return false;
        }
        self.charge(k.0, cost);
        if let Some(e) = self.entries.get_mut(&k) {
            e.charged += cost;
            e.held.push(frag);
        }
        true
    }

    /// The first fragment of `k` was translated to `(src, dst)`: returns the held fragments
    /// to rewrite and send.
    pub fn translated(&mut self, k: FragKey, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<Vec<u8>> {
        let Some(e) = self.entries.get_mut(&k) else {
            return Vec::new();
        };
        e.translation = Some((src, dst));
        let held = std::mem::take(&mut e.held);
        let freed: usize = held.iter().map(Vec::len).sum();
        e.charged -= freed;
        self.uncharge(k.0, freed);
        held
    }

    /// Forget `k` if all of it has passed.
    pub fn finish_if_complete(&mut self, k: FragKey) {
        if self.entries.get(&k).is_some_and(Entry::complete) {
            self.remove(k);
        }
    }

    /// Forget `k` (its first fragment was refused by the NAT); its held fragments are dropped.
    pub fn forget(&mut self, k: FragKey) {
        if let Some(e) = self.remove(k) {
            self.dropped += e.held.len() as u64;
        }
    }

    /// Drop datagrams older than [`TIMEOUT`].
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(born, k)) = self.order.front() {
            if now.saturating_duration_since(born) < TIMEOUT {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&k).is_some_and(|e| e.born == born) {
                self.forget(k);
            }
        }
    }

    /// Mark `k` dropped: its held fragments freed, later ones refused until it times out.
    fn poison(&mut self, now: Instant, k: FragKey) {
        if let Some(e) = self.entries.get_mut(&k) {
            let held = std::mem::take(&mut e.held);
            let freed: usize = held.iter().map(Vec::len).sum();
            e.charged -= freed;
            e.poisoned = true;
            self.dropped += held.len() as u64;
            self.uncharge(k.0, freed);
        } else if self.make_room(k, ENTRY_COST).is_ok() {
            // Remember the datagram so that its other fragments are refused too.
            self.charge(k.0, ENTRY_COST);
            self.entries.insert(
                k,
                Entry {
                    born: now,
                    translation: None,
                    held: Vec::new(),
                    ranges: Vec::new(),
                    end: None,
                    seen: 0,
                    poisoned: true,
                    charged: ENTRY_COST,
                },
            );
            self.order.push_back((now, k));
            self.compact_order();
        }
    }

    /// Make `cost` bytes available for `k`: refuse if `k`'s source would pass its share,
    /// else evict the oldest other datagrams until the total fits.
    fn make_room(&mut self, k: FragKey, cost: usize) -> Result<(), Refused> {
        let mine = self.sources.get(&k.0).copied().unwrap_or(0);
        if mine + cost > self.share {
            return Err(Refused::OverBudget);
        }
        while self.used + cost > self.budget {
            let Some((born, old)) = self.order.pop_front() else {
                return Err(Refused::OverBudget);
            };
            if old == k {
                // Never evict the datagram being added to: put it back and give up.
                self.order.push_front((born, old));
                return Err(Refused::OverBudget);
            }
            if self.entries.get(&old).is_some_and(|e| e.born == born) {
                self.forget(old);
            }
        }
        Ok(())
    }

    fn remove(&mut self, k: FragKey) -> Option<Entry> {
        let e = self.entries.remove(&k)?;
        self.uncharge(k.0, e.charged);
        Some(e)
    }

    fn charge(&mut self, src: Ipv4Addr, n: usize) {
        self.used += n;
        *self.sources.entry(src).or_insert(0) += n;
    }

    fn uncharge(&mut self, src: Ipv4Addr, n: usize) {
        self.used -= n;
        if let Some(c) = self.sources.get_mut(&src) {
            *c -= n;
            if *c == 0 {
                self.sources.remove(&src);
            }
        }
    }

    /// Drop keys of removed datagrams from the arrival queue once they outnumber the live
    /// ones (amortised O(1) per insert; the queue stays within twice the table).
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(born, k)| entries.get(k).is_some_and(|e| e.born == *born));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const B: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    const X: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn key(src: Ipv4Addr, id: u16) -> FragKey {
        (src, B, 17, id)
    }

    #[test]
    fn in_order_datagram_is_forgotten_when_complete() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        let k = key(A, 1);
        assert_eq!(r.accept(t, k, 0, 1480, true, false), Ok(Accepted::Unknown));
        assert!(r.translated(k, X, B).is_empty());
        assert_eq!(
            r.accept(t, k, 1480, 1480, true, false),
            Ok(Accepted::Translate(X, B))
        );
        r.finish_if_complete(k);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.accept(t, k, 2960, 100, false, false),
            Ok(Accepted::Translate(X, B))
        );
        r.finish_if_complete(k);
        assert!(r.is_empty());
        assert_eq!(r.used(), 0);
    }

    #[test]
    fn held_fragments_are_released_by_the_first() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        let k = key(A, 2);
        assert_eq!(
            r.accept(t, k, 1480, 100, false, false),
            Ok(Accepted::Unknown)
        );
        assert!(r.hold(k, vec![0; 120]));
        assert_eq!(r.used(), ENTRY_COST + RANGE_COST + 120);
        assert_eq!(r.accept(t, k, 0, 1480, true, false), Ok(Accepted::Unknown));
        assert_eq!(r.translated(k, X, B), vec![vec![0; 120]]);
        r.finish_if_complete(k);
        assert!(r.is_empty());
        assert_eq!(r.used(), 0);
    }

    #[test]
    fn overlaps_poison_the_datagram() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        let k = key(A, 3);
        r.accept(t, k, 800, 800, true, false).unwrap();
        assert!(r.hold(k, vec![1; 820]));
        // Overlapping the held one from below: the datagram goes, the held fragment with it.
        assert_eq!(r.accept(t, k, 0, 808, true, false), Err(Refused::Overlap));
        assert_eq!(r.take_dropped(), 1);
        assert_eq!(
            r.accept(t, k, 1600, 8, false, false),
            Err(Refused::Poisoned)
        );
        assert_eq!(r.accept(t, k, 0, 800, true, false), Err(Refused::Poisoned));
        assert_eq!(r.used(), ENTRY_COST + RANGE_COST);
        // Until it times out.
        r.expire(t + TIMEOUT);
        assert!(r.is_empty());
        assert_eq!(r.used(), 0);
        assert_eq!(
            r.accept(t + TIMEOUT, k, 0, 800, true, false),
            Ok(Accepted::Unknown)
        );
    }

    #[test]
    fn duplicates_are_dropped_alone() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        let k = key(A, 4);
        r.accept(t, k, 0, 800, true, false).unwrap();
        assert_eq!(r.accept(t, k, 0, 800, true, false), Err(Refused::Duplicate));
        assert_eq!(r.accept(t, k, 800, 8, false, false), Ok(Accepted::Unknown));
    }

    #[test]
    fn impossible_fragments_are_refused() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        // Past 65 535 bytes (ping of death), odd non-last length, empty, TCP at offset 8.
        assert_eq!(
            r.accept(t, key(A, 5), 65_528, 16, false, false),
            Err(Refused::Overlap)
        );
        assert_eq!(
            r.accept(t, key(A, 6), 0, 801, true, false),
            Err(Refused::Overlap)
        );
        assert_eq!(
            r.accept(t, key(A, 7), 8, 0, true, false),
            Err(Refused::Overlap)
        );
        assert_eq!(
            r.accept(t, key(A, 8), 8, 800, true, true),
            Err(Refused::Overlap)
        );
        assert_eq!(
            r.accept(t, key(A, 9), 8, 800, true, false),
            Ok(Accepted::Unknown)
        );
        // Beyond the end the last fragment set, or a second different end.
        let k = key(A, 10);
        r.accept(t, k, 800, 100, false, false).unwrap();
        assert_eq!(r.accept(t, k, 1600, 8, true, false), Err(Refused::Overlap));
        let k = key(A, 11);
        r.accept(t, k, 800, 800, true, false).unwrap();
        assert_eq!(r.accept(t, k, 0, 8, false, false), Err(Refused::Overlap));
        // Too many fragments.
        let k = key(A, 12);
        for i in 0..MAX_FRAGMENTS {
            let off = u16::try_from(8 * (i + 1)).unwrap();
            r.accept(t, k, off, 8, true, false).unwrap();
        }
        assert_eq!(r.accept(t, k, 4000, 8, true, false), Err(Refused::Overlap));
    }

    /// A flood of held fragments from many spoofed sources never takes more than the budget;
    /// the oldest datagrams are evicted and counted, the table keeps accepting new ones.
    #[test]
    fn flood_stays_within_the_budget() {
        let t = Instant::now();
        let budget = 1 << 20;
        let mut r = Reassembly::new(budget);
        let mut held = 0u64;
        for i in 0..200_000u32 {
            let src = Ipv4Addr::new(203, 0, 113, (i % 250) as u8 + 1);
            let k = key(src, (i / 250) as u16);
            let off = u16::try_from(1000 * (1 + i % 60)).unwrap();
            if r.accept(t, k, off, 1000, true, false).is_ok() && r.hold(k, vec![0; 1020]) {
                held += 1;
            }
            assert!(r.used() <= budget);
        }
        assert_eq!(held, 200_000, "eviction makes room for new datagrams");
        let dropped = r.take_dropped();
        assert!(dropped > 190_000, "{dropped}");
        assert!(r.order.len() <= 2 * r.len() + 65);
        r.expire(t + TIMEOUT);
        assert!(r.is_empty());
        assert_eq!(r.used(), 0);
        assert!(r.sources.is_empty());
    }

    /// One source is held to its share and cannot evict the others.
    #[test]
    fn one_source_is_held_to_its_share() {
        let t = Instant::now();
        let mut r = Reassembly::new(DEFAULT_BUDGET);
        let other = key(X, 1);
        r.accept(t, other, 8, 1000, true, false).unwrap();
        assert!(r.hold(other, vec![0; 1020]));
        let mut refused = 0;
        for id in 0..10_000u16 {
            let k = key(A, id);
            match r.accept(t, k, 8, 1000, true, false) {
                Ok(_) => {
                    if !r.hold(k, vec![0; 1020]) {
                        refused += 1;
                    }
                }
                Err(Refused::OverBudget) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(refused > 9_000);
        assert!(r.sources[&A] <= DEFAULT_BUDGET / 16);
        assert!(
            r.entries.contains_key(&other),
            "not evicted by another source"
        );
    }
}
