//! Which external TCP/UDP ports have a mapping: one bit per (pool address, protocol, port),
//! written by the NAT's control side whenever a mapping (dynamic or a static forward) is
//! created or released, read by every worker.
//!
//! It lets the fast path drop what the slow path would only drop (DESIGN R17): an inbound
//! packet from the outside to an external port that no session matched and that has no
//! mapping cannot be admitted by any filtering mode, so the worker counts and drops it
//! instead of punting it. ICMP identifiers are not tracked (ICMP to a pool address without
//! a session is the router's to answer).
//!
//! Ordering: a mapping's bit is set (`Release`) before the packet that created it is
//! forwarded, so a reply that arrives after it finds the bit (`Acquire`). A bit cleared at
//! release makes later inbound packets to that port drop in the worker, which is what the
//! slow path did for them (no mapping); a reader racing with the clear may still punt one,
//! which the slow path then drops. Memory: 16 KiB per pool address.
//!
//! The words may live outside the process's heap ([`PortMap::with_words`]): the runtime puts
//! them in the XDP steering program's memory-mapped `nat_ports` map, so that the program
//! drops such packets before they are copied to a socket, by the same bits and the same
//! ordering (a bit is set before the packet that made the mapping leaves).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::flow::proto;

/// 64-bit words per (address, protocol). Word `(a * 2 + p) * WORDS + port / 64`, bit
/// `port % 64`, where `a` is the address's index in the pool and `p` is 0 for TCP, 1 for UDP
/// (the layout `bpf/xsk_redirect.bpf.c` reads).
pub const WORDS: usize = 65536 / 64;

/// Storage of the bitmap: any shared slice of atomic words.
pub type Words = Box<dyn AsRef<[AtomicU64]> + Send + Sync>;

/// The mapped-port bitmap of a NAT pool. Clones share the bits (a reconfigured
/// [`crate::nat::fast::NatFast`] keeps the same map).
#[derive(Clone)]
pub struct PortMap {
    pool: Vec<Ipv4Addr>,
    bits: std::sync::Arc<dyn AsRef<[AtomicU64]> + Send + Sync>,
}

impl std::fmt::Debug for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortMap")
            .field("pool", &self.pool)
            .field("words", &self.bits.as_ref().as_ref().len())
            .finish()
    }
}

/// Words a bitmap over `pool_len` addresses needs.
pub fn words_for(pool_len: usize) -> usize {
    pool_len * 2 * WORDS
}

/// Addresses a reload may add to the pool without a restart (16 KiB of bitmap each, kept
/// from the start).
pub const POOL_HEADROOM: usize = 16;

/// Pool addresses the bitmap of a `pool_len`-address pool is sized for (room for
/// [`POOL_HEADROOM`] more).
pub fn capacity_for(pool_len: usize) -> usize {
    pool_len + POOL_HEADROOM
}

impl PortMap {
    /// An empty map over `pool` (in pool order), on the heap, with room for
    /// [`POOL_HEADROOM`] more addresses.
    pub fn new(pool: &[Ipv4Addr]) -> PortMap {
        let bits: Box<[AtomicU64]> = (0..words_for(capacity_for(pool.len())))
            .map(|_| AtomicU64::new(0))
            .collect();
        PortMap {
            pool: pool.to_vec(),
            bits: std::sync::Arc::new(bits),
        }
    }

    /// A map over `pool` kept in `words` (at least [`words_for`]`(pool.len())` of them; all
    /// cleared here), e.g. memory shared with the XDP program.
    ///
    /// # Panics
    /// If `words` is too short.
    pub fn with_words(pool: &[Ipv4Addr], words: Words) -> PortMap {
        let w = (*words).as_ref();
        assert!(
            w.len() >= words_for(pool.len()),
            "port map storage too short"
        );
        for x in w {
            x.store(0, Ordering::Relaxed);
        }
        PortMap {
            pool: pool.to_vec(),
            bits: std::sync::Arc::from(words),
        }
    }

    #[inline]
    fn word(&self, w: usize) -> &AtomicU64 {
        &(*self.bits).as_ref()[w]
    }

    /// Word index and bit of `(addr, proto, port)`, if tracked.
    #[inline]
    fn at(&self, addr: Ipv4Addr, proto_: u8, port: u16) -> Option<(usize, u64)> {
        let p = match proto_ {
            proto::TCP => 0,
            proto::UDP => 1,
            _ => return None,
        };
        let a = self.pool.iter().position(|x| *x == addr)?;
        let word = (a * 2 + p) * WORDS + usize::from(port) / 64;
        Some((word, 1 << (port % 64)))
    }

    /// Mark `(addr, proto, port)` mapped or not (control side, single writer).
    pub fn set(&self, addr: Ipv4Addr, proto_: u8, port: u16, mapped: bool) {
        if let Some((w, bit)) = self.at(addr, proto_, port) {
            // Single writer: load + store suffices; Release orders the mapping's creation
            // before the bit (see the module docs).
            let word = self.word(w);
            let old = word.load(Ordering::Relaxed);
            let new = if mapped { old | bit } else { old & !bit };
            word.store(new, Ordering::Release);
        }
    }

    /// Whether inbound traffic to `(addr, proto, port)` may have somewhere to go: true for
    /// untracked protocols and addresses, else whether the port has a mapping.
    #[inline]
    pub fn may_be_mapped(&self, addr: Ipv4Addr, proto_: u8, port: u16) -> bool {
        match self.at(addr, proto_, port) {
            Some((w, bit)) => self.word(w).load(Ordering::Acquire) & bit != 0,
            None => true,
        }
    }

    /// Addresses the storage has room for.
    pub fn capacity(&self) -> usize {
        (*self.bits).as_ref().len() / (2 * WORDS)
    }

    /// The same bits over `pool`, which extends this map's pool (the same addresses first,
    /// in order) within [`PortMap::capacity`]: the added addresses' bits are all clear.
    ///
    /// # Errors
    /// `pool` does not start with this map's pool, or does not fit.
    pub fn with_pool(&self, pool: &[Ipv4Addr]) -> Result<PortMap, String> {
        if !pool.starts_with(&self.pool) {
            return Err("the running addresses must stay, first and in order".into());
        }
        if pool.len() > self.capacity() {
            return Err(format!(
                "room for {} addresses ({} at start + {POOL_HEADROOM})",
                self.capacity(),
                self.capacity() - POOL_HEADROOM.min(self.capacity())
            ));
        }
        Ok(PortMap {
            pool: pool.to_vec(),
            bits: self.bits.clone(),
        })
    }

    /// Heap bytes.
    pub fn memory_bytes(&self) -> usize {
        (*self.bits).as_ref().len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload's larger pool: the same bits (a mapping set before is still seen), the
    /// added address clear, room for POOL_HEADROOM more; reordering or overflow refused.
    #[test]
    fn with_pool_extends_within_the_room() {
        let a = Ipv4Addr::new(198, 19, 0, 1);
        let b = Ipv4Addr::new(198, 19, 0, 9);
        let m = PortMap::new(&[a]);
        assert_eq!(m.capacity(), 1 + POOL_HEADROOM);
        m.set(a, proto::UDP, 5000, true);
        let g = m.with_pool(&[a, b]).unwrap();
        assert!(g.may_be_mapped(a, proto::UDP, 5000));
        assert!(!g.may_be_mapped(b, proto::UDP, 5000));
        g.set(b, proto::TCP, 80, true);
        assert!(!g.may_be_mapped(a, proto::TCP, 80), "own bits");
        assert!(m.with_pool(&[b, a]).is_err(), "reordered");
        assert!(m.with_pool(&[b]).is_err(), "removed");
        let many: Vec<Ipv4Addr> = (1..=(2 + POOL_HEADROOM as u8))
            .map(|i| Ipv4Addr::new(198, 19, 0, i))
            .collect();
        assert!(m.with_pool(&many).unwrap_err().contains("room for 17"));
    }

    #[test]
    fn set_clear_per_address_protocol_and_port() {
        let a = Ipv4Addr::new(198, 19, 0, 1);
        let b = Ipv4Addr::new(198, 19, 0, 2);
        let m = PortMap::new(&[a, b]);
        assert_eq!(
            m.memory_bytes(),
            (2 + POOL_HEADROOM) * 2 * 8192,
            "16 KiB per address, room for more"
        );
        for port in [0u16, 1, 63, 64, 1024, 65535] {
            assert!(!m.may_be_mapped(a, proto::UDP, port));
            m.set(a, proto::UDP, port, true);
            assert!(m.may_be_mapped(a, proto::UDP, port));
            assert!(!m.may_be_mapped(a, proto::TCP, port), "protocols apart");
            assert!(!m.may_be_mapped(b, proto::UDP, port), "addresses apart");
        }
        assert!(
            !m.may_be_mapped(a, proto::UDP, 2),
            "neighbouring bit untouched"
        );
        m.set(a, proto::UDP, 64, false);
        assert!(!m.may_be_mapped(a, proto::UDP, 64));
        assert!(m.may_be_mapped(a, proto::UDP, 63));
        // Untracked: ICMP and addresses outside the pool are never ruled out.
        assert!(m.may_be_mapped(a, proto::ICMP, 7));
        assert!(m.may_be_mapped(Ipv4Addr::new(203, 0, 113, 1), proto::UDP, 7));
        m.set(Ipv4Addr::new(203, 0, 113, 1), proto::UDP, 7, true);
    }

    #[test]
    fn external_words_are_cleared_and_shared() {
        use std::sync::Arc;
        // Storage owned elsewhere (as the XDP map is): the map clears it and writes into it.
        #[derive(Clone)]
        struct Shared(Arc<Vec<AtomicU64>>);
        impl AsRef<[AtomicU64]> for Shared {
            fn as_ref(&self) -> &[AtomicU64] {
                &self.0
            }
        }
        let a = Ipv4Addr::new(198, 19, 0, 1);
        let b = Ipv4Addr::new(198, 19, 0, 2);
        let store = Shared(Arc::new(
            (0..words_for(2)).map(|_| AtomicU64::new(!0)).collect(),
        ));
        let m = PortMap::with_words(&[a, b], Box::new(store.clone()));
        assert!(!m.may_be_mapped(a, proto::TCP, 80), "cleared on creation");
        m.set(b, proto::UDP, 65535, true);
        m.set(a, proto::TCP, 0, true);
        // The layout the BPF program reads: (index * 2 + udp) * WORDS + port / 64.
        let w = |i: usize| store.0[i].load(Ordering::Relaxed);
        assert_eq!(w(3 * WORDS + 65535 / 64), 1 << 63);
        assert_eq!(w(0), 1);
        let set: usize = store
            .0
            .iter()
            .map(|x| x.load(Ordering::Relaxed).count_ones() as usize)
            .sum();
        assert_eq!(set, 2);
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn short_storage_is_refused() {
        let short: Box<[AtomicU64]> = (0..WORDS).map(|_| AtomicU64::new(0)).collect();
        let _ = PortMap::with_words(&[Ipv4Addr::new(198, 19, 0, 1)], Box::new(short));
    }

    #[test]
    fn every_port_round_trips() {
        let a = Ipv4Addr::new(198, 19, 0, 1);
        let m = PortMap::new(&[a]);
        for port in (0..=65535u16).step_by(7) {
            m.set(a, proto::TCP, port, true);
        }
        for port in 0..=65535u16 {
            assert_eq!(
                m.may_be_mapped(a, proto::TCP, port),
                port % 7 == 0,
                "{port}"
            );
        }
    }
}
