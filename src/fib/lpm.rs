//! Poptrie: the compiled, immutable longest-prefix-match table (Asai & Ohara, SIGCOMM 2015),
//! with an 18-bit direct-pointing array and nodes whose child links and leaves are stored
//! inline, next to the node's bitmaps.
//!
//! Owns the lookup arrays and their build from a sorted route list. Depends on nothing but `core`
//! and `std` collections; the route set itself lives in [`super::FibBuilder`].
//!
//! # Layout
//!
//! ```text
//!  addr: | 18 bits: dir index | 6: level 1 | 6: level 2 | 2 (+4 zero pad): level 3 |
//!
//!  dir[2^18] ── leaf ──► value (encoded in the entry itself, see `encode_dir_leaf`)
//!      └─────── node ──► words[p..]:  vector (2 words) | leafvec (2 words)
//!                                     | leaves: popcnt(leafvec) values
//!                                     | children: popcnt(vector) word offsets of child nodes
//!
//!  slot s of the node at p, bit = 1 << s:
//!    vector & bit != 0:  p' = words[p + 4 + L + popcnt(vector & below(bit))]     (L = leaves)
//!    otherwise:          value = words[p + 4 + popcnt(leafvec & upto(bit)) - 1]
//! ```
//!
//! A node covers 64 slots of 6 address bits. `vector` marks the slots that continue into a
//! child node; the other slots are leaves. Leaf compression: `leafvec` has a bit only where a
//! run of equal leaf values starts (child slots do not break a run), so a /24 inside a level-1
//! node costs one leaf, not four, and runs of /24s with one next hop cost one leaf in all.
//!
//! Why this shape (measured with `cargo bench --bench fib` on the DFZ table): random lookups
//! are bound by dependent cache misses, one per structure visited. The 18-bit first level
//! (1 MiB) resolves every prefix up to /18 in one load, and a /19–/24 — most of the Internet
//! table — in one node below it, where the original Poptrie's 16-bit first level needs a second
//! node for /23 and /24. Keeping a node's leaves and child links right after its bitmaps (the
//! paper stores them in separate leaf and node arrays) puts the leaf a lookup ends on in the
//! same or the next cache line as the node it just read, so a /24 costs two misses (dir, node)
//! instead of four (dir, node, node, leaf); and a node costs 16 bytes plus 4 per link instead of
//! a fixed 24.
//!
//! Level 3 starts at bit 30 and sees only 2 real address bits; the four low bits of its 6-bit
//! slot index are always zero in a lookup. The build paints those unreachable slots with the
//! value of the reachable one before them, so leaf compression absorbs them.
//!
//! # Contract
//!
//! * A [`Fib`] is immutable after [`Fib::from_sorted_routes`]; lookups take `&self` and no locks.
//! * `lookup(a)` returns the value of the longest prefix containing `a`, or [`NO_ROUTE`].
//! * The build input is sorted by `(addr, len)`: this is a pre-order walk of the prefix tree, so
//!   painting routes in input order lets more-specific routes overwrite their covering routes.

use std::collections::HashMap;
use std::fmt;

use super::{RouteValue, NO_ROUTE};

/// Address bits resolved by the direct-pointing array.
const DIR_BITS: u32 = 18;
/// Address bits resolved per internal node.
const STRIDE: u32 = 6;
/// Bit offset (from the most significant bit) of the deepest node level; `30 + 6 > 32`.
const LAST_OFFSET: u32 = 30;
/// Direct-pointing entries at or above this value are node offsets (`entry - NODE_TAG`).
const NODE_TAG: u32 = 1 << 31;
/// Largest value a direct-pointing entry can hold in place (as `value + 1`); larger values go
/// through a one-leaf node.
const DIR_INLINE_MAX: u32 = NODE_TAG - 2;
/// Words of a node before its leaves: `vector` and `leafvec`, two words each.
const HEADER: usize = 4;
/// Lanes interleaved by [`Fib::lookup_batch`]. Measured on the DFZ table with the earlier
/// 16-bit layout (`cargo bench --bench fib`): 16 beat 8 by a few percent, 4 was slower than the
/// plain loop and 32 gained nothing more. With the 18-bit layout a random lookup has fewer
/// dependent misses and the batch gains less over the plain loop (~1.1-1.3x; sorted
/// destinations, all in cache, are faster one at a time).
const LANES: usize = 16;

/// The 6-bit slot index of `addr` at bit offset `off`; bits past 32 read as zero.
#[inline(always)]
fn slot(addr: u32, off: u32) -> u32 {
    // The address sits in the top half of a u64 so that the last level (off = 30) can read six
    // bits, the low four of which are the zero padding.
    (((u64::from(addr) << 32) >> (64 - STRIDE - off)) & 63) as u32
}

/// Mask of the bits strictly below `bit` (a single set bit).
#[inline(always)]
fn below(bit: u64) -> u64 {
    bit - 1
}

/// Mask of the bits up to and including `bit` (a single set bit).
#[inline(always)]
fn upto(bit: u64) -> u64 {
    // For bit 63 the shift drops the bit and the subtraction wraps to all ones, as wanted.
    (bit << 1).wrapping_sub(1)
}

/// Encodes `v` into a direct-pointing entry, if it fits: `NO_ROUTE` becomes 0 (so an empty table
/// is a zeroed allocation) and `v < NODE_TAG - 1` becomes `v + 1`.
#[inline]
fn encode_dir_leaf(v: RouteValue) -> Option<u32> {
    if v == NO_ROUTE || v <= DIR_INLINE_MAX {
        Some(v.wrapping_add(1))
    } else {
        None
    }
}

/// Where one step of a lookup goes from the node at `p`.
enum Step {
    /// Into the child node at this word offset.
    Child(usize),
    /// The lookup ends with this value.
    Leaf(RouteValue),
}

/// Immutable, lock-free-readable compiled LPM table (Poptrie, 18-bit direct pointing, 6-bit
/// strides, inline leaves and child links).
///
/// `Send + Sync`; the caller shares it via `Arc` and replaces it wholesale on route changes.
#[derive(Clone)]
pub struct Fib {
    /// 2^18 entries: `< NODE_TAG` is a leaf (`value + 1`, 0 = no route), otherwise a node's word
    /// offset in `words` plus `NODE_TAG`.
    dir: Box<[u32]>,
    /// The nodes, each `HEADER` words of bitmaps, its leaf values, then its children's offsets.
    words: Box<[u32]>,
    routes: usize,
    nodes: usize,
    leaves: usize,
}

impl fmt::Debug for Fib {
    // The arrays are megabytes; print their shape, not their contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fib")
            .field("routes", &self.routes)
            .field("nodes", &self.nodes)
            .field("leaves", &self.leaves)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Default for Fib {
    fn default() -> Self {
        Fib::empty()
    }
}

impl Fib {
    /// A table without routes: every lookup misses.
    pub fn empty() -> Fib {
        Fib {
            dir: vec![0u32; 1 << DIR_BITS].into_boxed_slice(),
            words: Box::default(),
            routes: 0,
            nodes: 0,
            leaves: 0,
        }
    }

    /// Compiles `(addr, len, value)` routes, which must be sorted by `(addr, len)` ascending
    /// without duplicate prefixes and with host bits zero (what iterating a
    /// `BTreeMap<Prefix, _>` yields). A route whose value is [`NO_ROUTE`] acts as a hole in its
    /// covering route; [`super::FibBuilder`] never produces one.
    ///
    /// # Panics
    ///
    /// If the input is not strictly sorted by `(addr, len)` or a prefix length exceeds 32.
    /// (Host bits are checked in debug builds only.)
    pub fn from_sorted_routes<I>(routes: I) -> Fib
    where
        I: IntoIterator<Item = (u32, u8, RouteValue)>,
    {
        let routes: Vec<(u32, u8, RouteValue)> = routes.into_iter().collect();
        // O(n), ~1 ms for the DFZ: cheap insurance, since unsorted input would build a wrong
        // table silently.
        assert!(
            routes
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
            "from_sorted_routes: routes not strictly sorted by (addr, len)"
        );
        assert!(
            routes.iter().all(|r| r.1 <= 32),
            "from_sorted_routes: prefix length > 32"
        );
        debug_assert!(
            routes.iter().all(|r| r.0 & !super::mask(r.1) == 0),
            "host bits set"
        );

        let mut dir_val = vec![NO_ROUTE; 1 << DIR_BITS];
        // Routes of length <= 18 paint whole dir ranges; input order = pre-order, so nested
        // routes overwrite their covering route. Total work <= 19 * 2^18 entries.
        for &(addr, len, v) in routes.iter().filter(|r| u32::from(r.1) <= DIR_BITS) {
            let start = (addr >> (32 - DIR_BITS)) as usize;
            let width = 1usize << (DIR_BITS - u32::from(len));
            dir_val[start..start + width].fill(v);
        }

        let mut b = Emitter {
            words: Vec::new(),
            big: HashMap::new(),
            nodes: 0,
            leaves: 0,
        };
        let mut dir: Vec<u32> = Vec::with_capacity(1 << DIR_BITS);
        for &v in &dir_val {
            let e = match encode_dir_leaf(v) {
                Some(e) => e,
                None => b.uniform_node(v),
            };
            dir.push(e);
        }

        // Longer routes, grouped by /18 block. A route of length <= 18 inside a block starts at
        // the block's first address, so it sorts before the block's longer routes: the groups
        // are contiguous runs of the sorted input.
        let mut i = 0;
        while i < routes.len() {
            if u32::from(routes[i].1) <= DIR_BITS {
                i += 1;
                continue;
            }
            let block = routes[i].0 >> (32 - DIR_BITS);
            let mut j = i + 1;
            while j < routes.len() && routes[j].0 >> (32 - DIR_BITS) == block {
                j += 1;
            }
            let at = b.build_node(&routes[i..j], DIR_BITS, dir_val[block as usize]);
            dir[block as usize] = tag(at);
            i = j;
        }

        Fib {
            dir: dir.into_boxed_slice(),
            words: b.words.into_boxed_slice(),
            routes: routes.len(),
            nodes: b.nodes,
            leaves: b.leaves,
        }
    }

    /// One lookup step at the node at word offset `p`, for the slot of `addr` at bit `off`.
    #[inline(always)]
    fn step(&self, p: usize, addr: u32, off: u32) -> Step {
        let h: &[u32; HEADER] = self.words[p..p + HEADER]
            .try_into()
            .expect("node header is HEADER words");
        let vector = u64::from(h[0]) | u64::from(h[1]) << 32;
        let leafvec = u64::from(h[2]) | u64::from(h[3]) << 32;
        let bit = 1u64 << slot(addr, off);
        if vector & bit == 0 {
            let i = p + HEADER + (leafvec & upto(bit)).count_ones() as usize - 1;
            Step::Leaf(self.words[i])
        } else {
            let leaves = leafvec.count_ones() as usize;
            let i = p + HEADER + leaves + (vector & below(bit)).count_ones() as usize;
            Step::Child(self.words[i] as usize)
        }
    }

    /// The value of the longest prefix containing `addr` (host order), or [`NO_ROUTE`].
    #[inline]
    pub fn lookup(&self, addr: u32) -> RouteValue {
        let e = self.dir[(addr >> (32 - DIR_BITS)) as usize];
        if e < NODE_TAG {
            return e.wrapping_sub(1);
        }
        let mut p = (e - NODE_TAG) as usize;
        let mut off = DIR_BITS;
        loop {
            match self.step(p, addr, off) {
                Step::Leaf(v) => return v,
                Step::Child(c) => p = c,
            }
            off += STRIDE;
        }
    }

    /// [`Fib::lookup`] for an [`Ipv4Addr`](std::net::Ipv4Addr); `None` on a miss.
    #[inline]
    pub fn lookup_addr(&self, addr: std::net::Ipv4Addr) -> Option<RouteValue> {
        match self.lookup(u32::from(addr)) {
            NO_ROUTE => None,
            v => Some(v),
        }
    }

    /// Batched lookup: `out[i] = self.lookup(addrs[i])`.
    ///
    /// Runs `LANES` (16) independent lookups stage by stage (dir, then one node level per
    /// pass), so their cache misses overlap instead of each lookup waiting on its own chain of
    /// loads.
    ///
    /// # Panics
    ///
    /// If `out.len() < addrs.len()`.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [RouteValue]) {
        assert!(
            out.len() >= addrs.len(),
            "lookup_batch: out shorter than addrs"
        );
        let out = &mut out[..addrs.len()];
        let mut a_chunks = addrs.chunks_exact(LANES);
        let mut o_chunks = out.chunks_exact_mut(LANES);
        for (a, o) in (&mut a_chunks).zip(&mut o_chunks) {
            // chunks_exact guarantees the length; the conversions cannot fail.
            let a: &[u32; LANES] = a.try_into().expect("chunk of LANES");
            let o: &mut [u32; LANES] = o.try_into().expect("chunk of LANES");
            self.lookup_lanes(a, o);
        }
        for (a, o) in a_chunks.remainder().iter().zip(o_chunks.into_remainder()) {
            *o = self.lookup(*a);
        }
    }

    /// One group of `LANES` lookups, interleaved stage by stage.
    #[inline]
    fn lookup_lanes(&self, a: &[u32; LANES], o: &mut [u32; LANES]) {
        // Stage 0: direct pointing. `cur[j]` becomes a node offset for lanes still pending.
        let mut cur = [0usize; LANES];
        let mut pending = 0u32;
        for j in 0..LANES {
            let e = self.dir[(a[j] >> (32 - DIR_BITS)) as usize];
            if e < NODE_TAG {
                o[j] = e.wrapping_sub(1);
            } else {
                cur[j] = (e - NODE_TAG) as usize;
                pending |= 1 << j;
            }
        }
        // Stages 1..=3: one node level per pass over the pending lanes.
        let mut off = DIR_BITS;
        while pending != 0 {
            let mut m = pending;
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                m &= m - 1;
                match self.step(cur[j], a[j], off) {
                    Step::Leaf(v) => {
                        o[j] = v;
                        pending &= !(1 << j);
                    }
                    Step::Child(c) => cur[j] = c,
                }
            }
            off += STRIDE;
        }
    }

    /// Heap bytes of the compiled arrays.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.dir) + std::mem::size_of_val(&*self.words)
    }

    /// Number of routes compiled into this table.
    pub fn route_count(&self) -> usize {
        self.routes
    }

    /// Number of internal nodes (for tests and statistics).
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Number of stored leaves after compression (for tests and statistics).
    pub fn leaf_count(&self) -> usize {
        self.leaves
    }
}

/// A dir entry pointing at the node at word offset `at`.
fn tag(at: usize) -> u32 {
    let at = u32::try_from(at).ok().filter(|&a| a < NODE_TAG);
    NODE_TAG + at.expect("poptrie word offset fits 31 bits")
}

/// Build state: the growing word array.
struct Emitter {
    words: Vec<u32>,
    /// One-leaf nodes for values too large for a dir entry, shared per value (dir entries).
    big: HashMap<RouteValue, u32>,
    nodes: usize,
    leaves: usize,
}

impl Emitter {
    /// A dir entry for a node whose 64 slots are all the single leaf `v`.
    fn uniform_node(&mut self, v: RouteValue) -> u32 {
        if let Some(&e) = self.big.get(&v) {
            return e;
        }
        let at = self.words.len();
        self.words.extend_from_slice(&[0, 0, 1, 0, v]);
        self.nodes += 1;
        self.leaves += 1;
        let e = tag(at);
        self.big.insert(v, e);
        e
    }

    /// Emits the node for the block at bit offset `off` whose value, before `routes`, is
    /// `default`, then its children; returns its word offset. `routes` are the sorted routes
    /// inside the block (longer than `off` bits).
    fn build_node(&mut self, routes: &[(u32, u8, RouteValue)], off: u32, default: u32) -> usize {
        debug_assert!(off <= LAST_OFFSET);
        let mut vals = [default; 64];
        let mut vector = 0u64;
        // Per child slot: the range of `routes` that belongs to it.
        let mut ranges = [(0u32, 0u32); 64];
        let mut k = 0;
        while k < routes.len() {
            let (addr, len, v) = routes[k];
            let len = u32::from(len);
            debug_assert!(len > off);
            let s = slot(addr, off) as usize;
            if len <= off + STRIDE {
                // Ends in this node: paint its slots. At the last level this also paints the
                // unreachable padding slots, keeping them equal to their neighbour.
                vals[s..s + (1 << (off + STRIDE - len))].fill(v);
                k += 1;
            } else {
                // Deeper: a child slot. Its routes are contiguous: a route that ends in this node
                // and covers slot `s` starts at or before the slot's first address and so sorts
                // before all routes inside the slot.
                let start = k;
                while k < routes.len()
                    && u32::from(routes[k].1) > off + STRIDE
                    && slot(routes[k].0, off) as usize == s
                {
                    k += 1;
                }
                debug_assert!(
                    vector & (1 << s) == 0,
                    "child slot split by a shorter route"
                );
                vector |= 1 << s;
                ranges[s] = (start as u32, k as u32);
            }
        }

        let at = self.words.len();
        self.words.extend_from_slice(&[0; HEADER]);
        let mut leafvec = 0u64;
        let mut prev: Option<RouteValue> = None;
        for (s, &v) in vals.iter().enumerate() {
            if vector & (1 << s) == 0 && prev != Some(v) {
                leafvec |= 1 << s;
                self.words.push(v);
                prev = Some(v);
            }
        }
        self.words[at..at + HEADER].copy_from_slice(&[
            vector as u32,
            (vector >> 32) as u32,
            leafvec as u32,
            (leafvec >> 32) as u32,
        ]);
        self.nodes += 1;
        self.leaves += leafvec.count_ones() as usize;

        // Child links, filled in as the children are emitted after them.
        let links = self.words.len();
        self.words
            .resize(links + vector.count_ones() as usize, u32::MAX);
        let mut m = vector;
        let mut link = links;
        while m != 0 {
            let s = m.trailing_zeros() as usize;
            m &= m - 1;
            let (lo, hi) = ranges[s];
            let child = self.build_node(&routes[lo as usize..hi as usize], off + STRIDE, vals[s]);
            self.words[link] = u32::try_from(child).expect("poptrie word offset fits u32");
            link += 1;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
        u32::from_be_bytes([a, b, c, d])
    }

    fn fib(mut routes: Vec<(u32, u8, u32)>) -> Fib {
        routes.sort_unstable();
        Fib::from_sorted_routes(routes)
    }

    /// The node at word offset `p`: (vector, leafvec, leaf values, child offsets).
    fn node(f: &Fib, p: usize) -> (u64, u64, Vec<u32>, Vec<usize>) {
        let w = &f.words;
        let vector = u64::from(w[p]) | u64::from(w[p + 1]) << 32;
        let leafvec = u64::from(w[p + 2]) | u64::from(w[p + 3]) << 32;
        let l = leafvec.count_ones() as usize;
        let c = vector.count_ones() as usize;
        let leaves = w[p + HEADER..p + HEADER + l].to_vec();
        let children = w[p + HEADER + l..p + HEADER + l + c]
            .iter()
            .map(|&x| x as usize)
            .collect();
        (vector, leafvec, leaves, children)
    }

    /// The node the dir entry of `addr` points at.
    fn root(f: &Fib, addr: u32) -> usize {
        let e = f.dir[(addr >> (32 - DIR_BITS)) as usize];
        assert!(e >= NODE_TAG, "dir entry of {addr:#x} is a leaf");
        (e - NODE_TAG) as usize
    }

    #[test]
    fn slot_extraction() {
        let a = 0xABCD_1234u32;
        assert_eq!(slot(a, 18), (0x1234 >> 8) & 63);
        assert_eq!(slot(a, 24), (0x1234 >> 2) & 63);
        // Last level: 2 real bits, 4 zero pad bits.
        assert_eq!(slot(a, 30), 0x0 << 4);
        assert_eq!(slot(0xABCD_1237, 30), 0x3 << 4);
        assert_eq!(slot(u32::MAX, 30), 48);
    }

    #[test]
    fn masks() {
        assert_eq!(below(1), 0);
        assert_eq!(upto(1), 1);
        assert_eq!(upto(1 << 63), u64::MAX);
        assert_eq!(below(1 << 63), u64::MAX >> 1);
    }

    #[test]
    fn empty_is_zeroed_dir() {
        let f = Fib::empty();
        assert_eq!(f.node_count(), 0);
        assert_eq!(f.memory_bytes(), 4 << DIR_BITS);
        assert_eq!(f.lookup(0), NO_ROUTE);
        assert_eq!(f.lookup(u32::MAX), NO_ROUTE);
        let g = fib(vec![]);
        assert_eq!(g.node_count(), 0);
        assert_eq!(g.lookup(ip(1, 2, 3, 4)), NO_ROUTE);
    }

    #[test]
    fn short_prefixes_need_no_nodes() {
        let f = fib(vec![
            (0, 0, 1),
            (ip(10, 0, 0, 0), 8, 2),
            (ip(10, 1, 0, 0), 16, 3),
            (ip(10, 1, 192, 0), 18, 4),
        ]);
        assert_eq!(f.node_count(), 0);
        assert_eq!(f.leaf_count(), 0);
        assert_eq!(f.lookup(ip(9, 0, 0, 0)), 1);
        assert_eq!(f.lookup(ip(10, 0, 0, 0)), 2);
        assert_eq!(f.lookup(ip(10, 1, 191, 255)), 3);
        assert_eq!(f.lookup(ip(10, 1, 192, 0)), 4);
        assert_eq!(f.lookup(ip(10, 2, 0, 0)), 2);
    }

    #[test]
    fn golden_words_of_a_slash24() {
        // 10.0.1.0/24 in an empty table: the /18 block 10.0.0.0 gets one node (off 18) whose
        // slot 1 (10.0.1.0/24) is a leaf: runs [0] no route, [1] 7, [2..64) no route = 3 leaves,
        // no children.
        let f = fib(vec![(ip(10, 0, 1, 0), 24, 7)]);
        assert_eq!(f.node_count(), 1);
        let at = root(&f, ip(10, 0, 1, 0));
        assert_eq!(
            &f.words[at..],
            &[0, 0, 0b111, 0, NO_ROUTE, 7, NO_ROUTE],
            "vector, leafvec, then the leaves"
        );
        assert_eq!(f.leaf_count(), 3);
        assert_eq!(f.lookup(ip(10, 0, 1, 255)), 7);
        assert_eq!(f.lookup(ip(10, 0, 0, 255)), NO_ROUTE);
        assert_eq!(f.lookup(ip(10, 0, 2, 0)), NO_ROUTE);
        // 4 header words + 3 leaves.
        assert_eq!(f.memory_bytes(), (4 << DIR_BITS) + 4 * 7);
    }

    #[test]
    fn golden_words_of_a_child_link() {
        // 10.0.1.0/25 needs a child of the /24 slot: the root has one child link after its
        // leaves, and the child (off 24) holds two runs: [0..32) = 7, [32..64) = 5.
        let f = fib(vec![(ip(10, 0, 0, 0), 18, 5), (ip(10, 0, 1, 0), 25, 7)]);
        assert_eq!(f.node_count(), 2);
        let at = root(&f, ip(10, 0, 1, 0));
        let (vector, leafvec, leaves, children) = node(&f, at);
        assert_eq!(vector, 1 << 1);
        assert_eq!(leafvec, 1, "one run of 5 around the child slot");
        assert_eq!(leaves, vec![5]);
        assert_eq!(children, vec![at + HEADER + 1 + 1]);
        let (cv, cl, cleaves, cchildren) = node(&f, children[0]);
        assert_eq!((cv, cl), (0, 1 | 1 << 32));
        assert_eq!(
            cleaves,
            vec![7, 5],
            "the uncovered half inherits the /18's value"
        );
        assert!(cchildren.is_empty());
        assert_eq!(f.lookup(ip(10, 0, 1, 127)), 7);
        assert_eq!(f.lookup(ip(10, 0, 1, 128)), 5);
        assert_eq!(f.lookup(ip(10, 0, 2, 0)), 5);
    }

    #[test]
    fn leaf_runs_continue_across_child_slots() {
        // Default 5 in 10.0/18, a /25 at 10.0.1.0 (slot 1 at level 1 is a child).
        // Level-1 slots: 0 = 5, 1 = child, 2..64 = 5 -> one run, one leaf.
        let f = fib(vec![(ip(10, 0, 0, 0), 18, 5), (ip(10, 0, 1, 0), 25, 6)]);
        let (vector, leafvec, _, _) = node(&f, root(&f, ip(10, 0, 0, 0)));
        assert_eq!(vector, 1 << 1);
        assert_eq!(leafvec, 1);
        assert_eq!(f.lookup(ip(10, 0, 0, 255)), 5);
        assert_eq!(f.lookup(ip(10, 0, 1, 0)), 6);
        assert_eq!(f.lookup(ip(10, 0, 1, 200)), 5);
        assert_eq!(f.lookup(ip(10, 0, 63, 255)), 5);
    }

    #[test]
    fn alternating_leaves_are_not_merged() {
        // /24s with alternating values in one /18: 64 slots, 64 runs.
        let routes = (0..64u32)
            .map(|s| (ip(10, 0, 0, 0) | s << 8, 24, s % 2))
            .collect();
        let f = fib(routes);
        assert_eq!(f.node_count(), 1);
        let (_, leafvec, leaves, _) = node(&f, root(&f, ip(10, 0, 0, 0)));
        assert_eq!(leafvec, u64::MAX);
        assert_eq!(leaves.len(), 64);
        for s in 0..64u32 {
            assert_eq!(f.lookup(ip(10, 0, 0, 0) | s << 8 | 0xff), s % 2);
        }
    }

    #[test]
    fn last_level_padding_slots_compress() {
        // A single /32 in a /30 block: level-3 slots 16k..16k+15 share one address; the /32 at
        // offset 1 in its /30 fills slots 16..32 -> runs: [0..16) [16..32) [32..64) = 3 leaves.
        let a = ip(192, 0, 2, 5);
        let f = fib(vec![(a, 32, 9)]);
        assert_eq!(f.node_count(), 3);
        let mut p = root(&f, a);
        for _ in 0..2 {
            let (_, _, _, children) = node(&f, p);
            assert_eq!(children.len(), 1);
            p = children[0];
        }
        let (vector, leafvec, leaves, _) = node(&f, p);
        assert_eq!(vector, 0);
        assert_eq!(leafvec, 1 | 1 << 16 | 1 << 32);
        assert_eq!(leaves, vec![NO_ROUTE, 9, NO_ROUTE]);
        assert_eq!(f.lookup(a), 9);
        assert_eq!(f.lookup(a - 1), NO_ROUTE);
        assert_eq!(f.lookup(a + 1), NO_ROUTE);
    }

    #[test]
    fn values_too_large_for_dir_use_a_shared_node() {
        let big = NO_ROUTE - 1;
        let f = fib(vec![
            (ip(10, 0, 0, 0), 8, big),
            (ip(11, 0, 0, 0), 8, DIR_INLINE_MAX),
            (ip(12, 0, 0, 0), 8, DIR_INLINE_MAX + 1),
            (ip(13, 0, 0, 0), 8, 0),
        ]);
        // One shared node per large value, not one per dir entry.
        assert_eq!(f.node_count(), 2);
        assert_eq!(f.lookup(ip(10, 9, 9, 9)), big);
        assert_eq!(f.lookup(ip(11, 9, 9, 9)), DIR_INLINE_MAX);
        assert_eq!(f.lookup(ip(12, 9, 9, 9)), DIR_INLINE_MAX + 1);
        assert_eq!(f.lookup(ip(13, 9, 9, 9)), 0);
        assert_eq!(f.lookup(ip(14, 0, 0, 0)), NO_ROUTE);
    }

    #[test]
    fn batch_handles_remainders_and_longer_out() {
        let f = fib(vec![
            (0, 0, 1),
            (ip(10, 0, 0, 0), 24, 2),
            (ip(10, 0, 0, 1), 32, 3),
        ]);
        for n in [0usize, 1, 7, 8, 9, 17, 33] {
            let addrs: Vec<u32> = (0..n as u32).map(|i| ip(10, 0, 0, 0) + i % 3).collect();
            let mut out = vec![0xdead; n + 2];
            f.lookup_batch(&addrs, &mut out);
            for (a, o) in addrs.iter().zip(&out) {
                assert_eq!(*o, f.lookup(*a));
            }
            assert_eq!(&out[n..], &[0xdead, 0xdead], "out beyond addrs untouched");
        }
    }

    #[test]
    #[should_panic(expected = "not strictly sorted")]
    fn build_rejects_unsorted_input() {
        Fib::from_sorted_routes([(ip(10, 0, 0, 0), 8, 1), (ip(9, 0, 0, 0), 8, 2)]);
    }

    #[test]
    #[should_panic(expected = "out shorter")]
    fn batch_panics_on_short_out() {
        Fib::empty().lookup_batch(&[1, 2], &mut [0]);
    }

    #[test]
    fn fib_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Fib>();
    }
}
