//! Adjacencies and the ARP neighbour cache.
//!
//! Owns: [`PortId`], [`AdjIndex`], [`Adjacency`] / [`AdjTable`] (what the fast path reads) and,
//! in [`cache`], the control-side ARP state machine ([`NeighCache`]).
//!
//! Depends only on `wire` and `ahash`; no locks, no I/O, and time is passed in explicitly.
//!
//! Contract (R7): the control plane computes the rewrite once. An [`Adjacency`] holds the finished
//! 14-byte Ethernet header (dst MAC, src MAC, EtherType 0x0800), so `ip4-rewrite` does one copy
//! per packet. An [`AdjTable`] is immutable once published; the fast path refers to entries by
//! [`AdjIndex`] (R6), which stays valid for the lifetime of that snapshot.

pub mod cache;

pub use cache::{Event, Learned, NeighCache, NeighConfig, NeighStats, Resolve, State};

use crate::wire::ethernet::MacAddr;

/// EtherType of IPv4, written into every adjacency's header.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

/// Index of an interface (its position in the validated config's interface list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// Index of an [`Adjacency`] in an [`AdjTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdjIndex(pub u32);

/// A resolved next hop: the precomputed Ethernet header plus where and how big to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Adjacency {
    /// Finished Ethernet header: dst MAC, src MAC, EtherType 0x0800.
    pub l2_header: [u8; 14],
    /// Transmit port.
    pub port: PortId,
}

impl Adjacency {
    /// Builds the adjacency, writing the Ethernet header `dst | src | 0x0800` once (R7).
    pub fn new(dst: MacAddr, src: MacAddr, port: PortId) -> Adjacency {
        let mut l2_header = [0u8; 14];
        l2_header[0..6].copy_from_slice(&dst.0);
        l2_header[6..12].copy_from_slice(&src.0);
        l2_header[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        Adjacency { l2_header, port }
    }

    /// Destination MAC written in the header.
    pub fn dst_mac(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.l2_header[0..6]);
        MacAddr(m)
    }

    /// Source MAC written in the header.
    pub fn src_mac(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.l2_header[6..12]);
        MacAddr(m)
    }
}

/// The adjacency table: built on the control side, then published and read immutably.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdjTable {
    adjs: Vec<Adjacency>,
}

impl AdjTable {
    /// An empty table.
    pub fn new() -> AdjTable {
        AdjTable::default()
    }

    /// The adjacency at `index`.
    ///
    /// # Panics
    /// If `index` is out of range (an index from another snapshot is a bug).
    #[inline]
    pub fn get(&self, index: AdjIndex) -> &Adjacency {
        &self.adjs[index.0 as usize]
    }

    /// The adjacency at `index`, or `None` if out of range.
    #[inline]
    pub fn try_get(&self, index: AdjIndex) -> Option<&Adjacency> {
        self.adjs.get(index.0 as usize)
    }

    /// Number of adjacencies.
    pub fn len(&self) -> usize {
        self.adjs.len()
    }

    /// True if the table holds no adjacency.
    pub fn is_empty(&self) -> bool {
        self.adjs.is_empty()
    }

    /// Appends an adjacency (builder side, before publication) and returns its index.
    ///
    /// # Panics
    /// If the table already holds `u32::MAX` entries.
    pub fn push(&mut self, adj: Adjacency) -> AdjIndex {
        let index = u32::try_from(self.adjs.len()).expect("adjacency table full");
        assert!(index != u32::MAX, "adjacency table full");
        self.adjs.push(adj);
        AdjIndex(index)
    }

    /// Iterates over `(index, adjacency)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (AdjIndex, &Adjacency)> + '_ {
        // `push` keeps the length below u32::MAX, so zipping with a u32 counter loses nothing.
        (0u32..).zip(&self.adjs).map(|(i, a)| (AdjIndex(i), a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

    #[test]
    fn adjacency_header_golden_bytes() {
        let a = Adjacency::new(DST, SRC, PortId(1));
        assert_eq!(
            a.l2_header,
            [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
        );
        assert_eq!(a.dst_mac(), DST);
        assert_eq!(a.src_mac(), SRC);
        assert_eq!(a.port, PortId(1));
    }

    #[test]
    fn table_push_get_iter() {
        let mut t = AdjTable::new();
        assert!(t.is_empty());
        let i0 = t.push(Adjacency::new(DST, SRC, PortId(0)));
        let i1 = t.push(Adjacency::new(SRC, DST, PortId(1)));
        assert_eq!((i0, i1), (AdjIndex(0), AdjIndex(1)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(i1).port, PortId(1));
        assert!(t.try_get(AdjIndex(2)).is_none());
        let ports: Vec<_> = t.iter().map(|(i, a)| (i, a.port)).collect();
        assert_eq!(
            ports,
            vec![(AdjIndex(0), PortId(0)), (AdjIndex(1), PortId(1))]
        );
    }

    #[test]
    #[should_panic]
    fn get_out_of_range_panics() {
        let t = AdjTable::new();
        let _ = t.get(AdjIndex(0));
    }
}
