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

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::flow::proto;

/// 64-bit words per (address, protocol).
const WORDS: usize = 65536 / 64;

/// The mapped-port bitmap of a NAT pool.
#[derive(Debug)]
pub struct PortMap {
    pool: Vec<Ipv4Addr>,
    bits: Box<[AtomicU64]>,
}

impl PortMap {
    /// An empty map over `pool` (in pool order).
    pub fn new(pool: &[Ipv4Addr]) -> PortMap {
        PortMap {
            pool: pool.to_vec(),
            bits: (0..pool.len() * 2 * WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
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
            let old = self.bits[w].load(Ordering::Relaxed);
            let new = if mapped { old | bit } else { old & !bit };
            self.bits[w].store(new, Ordering::Release);
        }
    }

    /// Whether inbound traffic to `(addr, proto, port)` may have somewhere to go: true for
    /// untracked protocols and addresses, else whether the port has a mapping.
    #[inline]
    pub fn may_be_mapped(&self, addr: Ipv4Addr, proto_: u8, port: u16) -> bool {
        match self.at(addr, proto_, port) {
            Some((w, bit)) => self.bits[w].load(Ordering::Acquire) & bit != 0,
            None => true,
        }
    }

    /// Heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_per_address_protocol_and_port() {
        let a = Ipv4Addr::new(198, 19, 0, 1);
        let b = Ipv4Addr::new(198, 19, 0, 2);
        let m = PortMap::new(&[a, b]);
        assert_eq!(m.memory_bytes(), 2 * 2 * 8192);
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
