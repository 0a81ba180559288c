//! `fib`: IPv4 longest-prefix match (LPM) — the control-side route set and the compiled table.
//!
//! Owns [`Prefix`], [`FibBuilder`] (the mutable exact-prefix route map, with a naive reference
//! LPM) and [`Fib`] (the immutable compiled table the fast path reads). Depends on `core`/`std`
//! only: not on `neigh`, `nat`, `dataplane`, `io` or `control`, and takes no locks.
//!
//! # Contract
//!
//! * LPM is exact: the longest prefix containing the address wins; `/0` is a default route, `/32`
//!   a host route; removing a route makes its covering route visible again.
//! * A [`RouteValue`] is an opaque `u32` chosen by the caller (e.g. an adjacency index, R6);
//!   [`NO_ROUTE`] (`u32::MAX`) is reserved for "miss".
//! * [`Fib`] is immutable and `Send + Sync`. Route changes go to the [`FibBuilder`] on the
//!   control thread, which calls [`FibBuilder::build`] and publishes the new `Arc<Fib>` (R5).
//!   A full rebuild of the 886k-prefix DFZ table takes about 45 ms in release mode.
//! * Addresses are host-order `u32` inside the table; [`std::net::Ipv4Addr`] only at the API edge.
//!
//! # Why Poptrie
//!
//! [`Fib`] is a Poptrie (Asai & Ohara, SIGCOMM 2015) with an 18-bit first level (the paper's
//! "Poptrie18"): a 2^18-entry direct-pointing array, then nodes of 6-bit stride that find a
//! child or a leaf with one `popcnt` over a 64-bit bitmap, with leaf compression; unlike the
//! paper, a node's leaves and child links sit right after its bitmaps (see [`lpm`] for the
//! layout and why). Measured on the real DFZ table (886,117 distinct prefixes,
//! `shared/data/dfz-ipv4.csv`, `cargo bench --bench fib`, one core of a shared 2-vCPU EPYC VM
//! whose memory latency beyond L2 is ~150 ns): **3.64 MiB** (1 MiB dir, 70,400 nodes, 404,441
//! leaves), built in **~45 ms**; ~110 M lookups/s batched (92–140 across runs) and ~90 M/s
//! one at a time for addresses inside random routes, 190–340 M/s for sorted ones. A lookup does at most four
//! dependent loads (dir, up to three nodes, the leaf sharing its node's cache lines); a /24
//! takes two.
//!
//! Alternatives (sizes for the DFZ table are computed from its 25,304 /16 blocks and 3,876 /24
//! blocks that hold longer routes):
//!
//! * **DIR-24-8** (DPDK `rte_lpm`, the layout `DESIGN.md` first suggested): 2^24 × 4 B = 64 MiB
//!   for the first level alone, ~68 MiB with one 256-entry tbl8 group per /24 block holding
//!   longer routes. One or two loads per lookup, but random destinations miss every cache level,
//!   the table is four times the 16 MiB budget, and a rebuild writes 64+ MiB, so it needs
//!   in-place updates with RCU (R5) instead of the simple rebuild-and-publish this module does.
//! * **16-8-8 mtrie** (VPP `ip4_mtrie`): 256-entry plies of 4-byte leaves plus a prefix-length
//!   byte each (~1.25 KiB); one ply per such /16 and /24 block is ~36 MiB. Three loads at most,
//!   but also far beyond the budget.
//! * **DXR** (Zec et al. 2012): a direct table on the top 16–20 bits, then binary search over
//!   sorted range boundaries. Very compact (a few MiB), but the binary search costs log2(k)
//!   dependent, unpredictable loads per lookup; the Poptrie paper measures it slower.
//! * **Tree bitmap** (Eatherton et al. 2004): multibit nodes with bitmaps like Poptrie, but each
//!   node also encodes its internal prefixes, so a level needs an extra bitmap search and a
//!   deferred result load. Poptrie pushes prefixes to leaves (one `popcnt` per level) and keeps
//!   nodes small (16 bytes plus 4 per leaf or child), so the hot part of the table stays in
//!   L2/L3.
//! * **Poptrie16** (the paper's default, this module's previous layout: 16-bit dir, separate
//!   node and leaf arrays): 8.38 MiB for the DFZ and four dependent misses for a /24 instead of
//!   two; 2–4x slower on random lookups here.
//!
//! The cost is a compile of the whole table on every change (no in-place update of the
//! trie); see [`FibBuilder::build`]. The route set itself is updated in place: in kernel
//! mirror mode only the changed prefixes are re-resolved (`control::kfib`), so a burst of
//! changes to the DFZ table costs its changes plus one compile (~50 ms, `cargo bench
//! --bench mirror`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub mod lpm;
pub mod synth;

pub use lpm::Fib;

/// Value stored per route (an index chosen by the caller, e.g. a next-hop id). `u32::MAX` is
/// reserved ([`NO_ROUTE`]).
pub type RouteValue = u32;

/// The "no matching route" value returned by [`Fib::lookup`].
pub const NO_ROUTE: u32 = u32::MAX;

/// Network mask with the top `len` bits set (`len <= 32`).
#[inline]
const fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// An IPv4 prefix; host bits are always zero (constructors mask them).
///
/// Ordered by address, then length: iterating a sorted set of prefixes is a pre-order walk of
/// the prefix tree (a covering prefix comes before the prefixes it contains), which the
/// [`Fib`] build relies on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Prefix {
    // Field order defines the derived `Ord`: (addr, len). Do not reorder.
    addr: u32,
    len: u8,
}

impl Prefix {
    /// The prefix `addr/len` with host bits cleared.
    ///
    /// # Panics
    ///
    /// If `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Prefix {
        Prefix::from_u32(u32::from(addr), len)
    }

    /// [`Prefix::new`] from a host-order `u32` address.
    ///
    /// # Panics
    ///
    /// If `len > 32`.
    pub const fn from_u32(addr: u32, len: u8) -> Prefix {
        assert!(len <= 32, "prefix length > 32");
        Prefix {
            addr: addr & mask(len),
            len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    /// The network address as a host-order `u32`.
    pub const fn addr_u32(&self) -> u32 {
        self.addr
    }

    /// The prefix length in bits (0..=32).
    #[allow(clippy::len_without_is_empty)] // a length in bits, not a container size
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// The network mask as a host-order `u32`.
    pub const fn mask_u32(&self) -> u32 {
        mask(self.len)
    }

    /// The last address covered by the prefix (host order).
    pub const fn last_u32(&self) -> u32 {
        self.addr | !mask(self.len)
    }

    /// Whether `a` lies inside the prefix.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.contains_u32(u32::from(a))
    }

    /// Whether the host-order address `a` lies inside the prefix.
    pub const fn contains_u32(&self, a: u32) -> bool {
        a & mask(self.len) == self.addr
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// Why a string is not an `a.b.c.d/n` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixParseError {
    kind: ParseErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParseErrorKind {
    MissingSlash,
    BadAddr,
    BadLen,
}

impl fmt::Display for PrefixParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ParseErrorKind::MissingSlash => "invalid prefix: expected a.b.c.d/len",
            ParseErrorKind::BadAddr => "invalid prefix: bad IPv4 address",
            ParseErrorKind::BadLen => "invalid prefix: length must be 0..=32",
        })
    }
}

impl std::error::Error for PrefixParseError {}

impl FromStr for Prefix {
    type Err = PrefixParseError;

    /// Parses `a.b.c.d/n`. Host bits are cleared like [`Prefix::new`] does (`10.1.2.3/8` parses
    /// as `10.0.0.0/8`); compare [`Prefix::addr`] with the input to reject such input.
    fn from_str(s: &str) -> Result<Prefix, PrefixParseError> {
        let err = |kind| PrefixParseError { kind };
        let (a, l) = s.split_once('/').ok_or(err(ParseErrorKind::MissingSlash))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| err(ParseErrorKind::BadAddr))?;
        // Digits only: `u8::from_str` would also accept a leading '+'.
        if l.is_empty() || l.len() > 2 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(ParseErrorKind::BadLen));
        }
        let len: u8 = l.parse().map_err(|_| err(ParseErrorKind::BadLen))?;
        if len > 32 {
            return Err(err(ParseErrorKind::BadLen));
        }
        Ok(Prefix::new(addr, len))
    }
}

/// Control-side mutable route set: an exact-prefix map from [`Prefix`] to [`RouteValue`].
#[derive(Debug, Default, Clone)]
pub struct FibBuilder {
    routes: BTreeMap<Prefix, RouteValue>,
}

impl FibBuilder {
    /// An empty route set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the route for exactly `p`; returns the previous value.
    ///
    /// # Panics
    ///
    /// If `v == NO_ROUTE`.
    pub fn insert(&mut self, p: Prefix, v: RouteValue) -> Option<RouteValue> {
        assert_ne!(v, NO_ROUTE, "NO_ROUTE (u32::MAX) is reserved");
        self.routes.insert(p, v)
    }

    /// Removes the route for exactly `p`; returns its value.
    pub fn remove(&mut self, p: Prefix) -> Option<RouteValue> {
        self.routes.remove(&p)
    }

    /// The value of the route for exactly `p`.
    pub fn get(&self, p: Prefix) -> Option<RouteValue> {
        self.routes.get(&p).copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Removes all routes.
    pub fn clear(&mut self) {
        self.routes.clear();
    }

    /// The routes in `(addr, len)` order.
    pub fn iter(&self) -> impl Iterator<Item = (Prefix, RouteValue)> + '_ {
        self.routes.iter().map(|(p, v)| (*p, *v))
    }

    /// Naive exact LPM over the route set (slow path, `route get`, test oracle): the longest
    /// matching prefix and its value. Up to 33 map lookups.
    pub fn longest_match(&self, a: Ipv4Addr) -> Option<(Prefix, RouteValue)> {
        let a = u32::from(a);
        (0..=32u8).rev().find_map(|len| {
            let p = Prefix::from_u32(a, len);
            self.routes.get(&p).map(|v| (p, *v))
        })
    }

    /// Compiles the immutable lookup structure (a full rebuild).
    pub fn build(&self) -> Fib {
        Fib::from_sorted_routes(self.routes.iter().map(|(p, v)| (p.addr, p.len, *v)))
    }
}

impl Extend<(Prefix, RouteValue)> for FibBuilder {
    /// Inserts every route, later ones replacing earlier ones for the same prefix.
    ///
    /// # Panics
    ///
    /// If a value is `NO_ROUTE`.
    fn extend<I: IntoIterator<Item = (Prefix, RouteValue)>>(&mut self, iter: I) {
        for (p, v) in iter {
            self.insert(p, v);
        }
    }
}

impl FromIterator<(Prefix, RouteValue)> for FibBuilder {
    /// Collects routes, later ones replacing earlier ones for the same prefix.
    ///
    /// # Panics
    ///
    /// If a value is `NO_ROUTE`.
    fn from_iter<I: IntoIterator<Item = (Prefix, RouteValue)>>(iter: I) -> Self {
        // `BTreeMap`'s own collect sorts and builds in bulk (several times faster than
        // inserting one by one at DFZ size), keeping the last value of a repeated key.
        FibBuilder {
            routes: iter
                .into_iter()
                .inspect(|&(_, v)| assert_ne!(v, NO_ROUTE, "NO_ROUTE (u32::MAX) is reserved"))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::synth::{self, Rng};
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Checks `Fib::lookup`, `lookup_addr` and `lookup_batch` against the oracle on `addrs`.
    fn check(b: &FibBuilder, f: &Fib, addrs: &[u32], ctx: &str) {
        let mut out = vec![0; addrs.len()];
        f.lookup_batch(addrs, &mut out);
        for (&x, &batched) in addrs.iter().zip(&out) {
            let want = b.longest_match(Ipv4Addr::from(x)).map(|(_, v)| v);
            let got = f.lookup(x);
            assert_eq!(
                got,
                want.unwrap_or(NO_ROUTE),
                "{ctx}: lookup({}) oracle match {:?}",
                Ipv4Addr::from(x),
                b.longest_match(Ipv4Addr::from(x))
            );
            assert_eq!(batched, got, "{ctx}: lookup_batch({})", Ipv4Addr::from(x));
            assert_eq!(f.lookup_addr(Ipv4Addr::from(x)), want, "{ctx}: lookup_addr");
        }
    }

    /// First and last address of every route, and their neighbours.
    fn edge_addrs(b: &FibBuilder) -> Vec<u32> {
        let mut v = Vec::with_capacity(b.len() * 4);
        for (p, _) in b.iter() {
            let (lo, hi) = (p.addr_u32(), p.last_u32());
            v.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
        }
        v
    }

    #[test]
    fn prefix_new_masks_and_accessors() {
        let x = Prefix::new(a("10.1.2.3"), 8);
        assert_eq!(x.addr(), a("10.0.0.0"));
        assert_eq!(x.len(), 8);
        assert_eq!(x.last_u32(), u32::from(a("10.255.255.255")));
        assert!(x.contains(a("10.255.0.1")));
        assert!(!x.contains(a("11.0.0.0")));
        let d = Prefix::new(a("1.2.3.4"), 0);
        assert_eq!(d.addr(), a("0.0.0.0"));
        assert!(d.contains(a("255.255.255.255")));
        let h = Prefix::new(a("1.2.3.4"), 32);
        assert!(h.contains(a("1.2.3.4")) && !h.contains(a("1.2.3.5")));
    }

    #[test]
    #[should_panic(expected = "prefix length > 32")]
    fn prefix_new_rejects_len_33() {
        Prefix::new(a("1.2.3.4"), 33);
    }

    #[test]
    fn prefix_display_and_parse() {
        for s in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "192.168.1.0/24",
            "255.255.255.255/32",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p("10.1.2.3/8"), p("10.0.0.0/8"));
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
        ] {
            let e = bad.parse::<Prefix>().unwrap_err();
            assert!(e.to_string().starts_with("invalid prefix"), "{bad}: {e}");
        }
        assert_eq!(
            "1.2.3.4/x".parse::<Prefix>().unwrap_err().kind,
            ParseErrorKind::BadLen
        );
        assert_eq!(
            "1.2.3/8".parse::<Prefix>().unwrap_err().kind,
            ParseErrorKind::BadAddr
        );
    }

    #[test]
    fn prefix_order_is_preorder() {
        let mut v = vec![
            p("10.0.0.0/24"),
            p("10.0.0.0/8"),
            p("9.0.0.0/8"),
            p("10.0.0.0/16"),
        ];
        v.sort();
        assert_eq!(
            v,
            [
                p("9.0.0.0/8"),
                p("10.0.0.0/8"),
                p("10.0.0.0/16"),
                p("10.0.0.0/24")
            ]
        );
    }

    #[test]
    fn builder_map_semantics() {
        let mut b = FibBuilder::new();
        assert!(b.is_empty());
        assert_eq!(b.insert(p("10.0.0.0/8"), 1), None);
        assert_eq!(b.insert(p("10.0.0.0/8"), 2), Some(1));
        assert_eq!(b.get(p("10.0.0.0/8")), Some(2));
        assert_eq!(b.get(p("10.0.0.0/9")), None);
        assert_eq!(b.len(), 1);
        assert_eq!(b.remove(p("10.0.0.0/8")), Some(2));
        assert_eq!(b.remove(p("10.0.0.0/8")), None);
        assert!(b.is_empty());
    }

    #[test]
    #[should_panic(expected = "reserved")]
    fn builder_rejects_no_route_value() {
        FibBuilder::new().insert(p("10.0.0.0/8"), NO_ROUTE);
    }

    #[test]
    fn empty_table() {
        let b = FibBuilder::new();
        let f = b.build();
        assert_eq!(f.route_count(), 0);
        assert_eq!(b.longest_match(a("1.2.3.4")), None);
        check(&b, &f, &[0, 1, 0x0a00_0000, u32::MAX], "empty");
    }

    #[test]
    fn collecting_keeps_the_last_value_of_a_repeated_prefix() {
        let b: FibBuilder = [
            (p("198.18.0.0/15"), 1),
            (p("0.0.0.0/0"), 2),
            (p("198.18.0.0/15"), 3),
            (p("198.18.0.0/16"), 4),
            (p("198.18.0.0/15"), 5),
        ]
        .into_iter()
        .collect();
        let got: Vec<(Prefix, RouteValue)> = b.iter().collect();
        assert_eq!(
            got,
            [
                (p("0.0.0.0/0"), 2),
                (p("198.18.0.0/15"), 5),
                (p("198.18.0.0/16"), 4)
            ]
        );
    }

    #[test]
    #[should_panic(expected = "reserved")]
    fn collecting_refuses_no_route() {
        let _: FibBuilder = [(p("0.0.0.0/0"), NO_ROUTE)].into_iter().collect();
    }

    #[test]
    fn only_default_route() {
        let b: FibBuilder = [(p("0.0.0.0/0"), 42)].into_iter().collect();
        let f = b.build();
        assert_eq!(f.lookup(0), 42);
        assert_eq!(f.lookup(u32::MAX), 42);
        assert_eq!(b.longest_match(a("8.8.8.8")), Some((p("0.0.0.0/0"), 42)));
        check(
            &b,
            &f,
            &[0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX],
            "default",
        );
    }

    #[test]
    fn host_routes_at_the_edges() {
        let mut b = FibBuilder::new();
        b.insert(p("0.0.0.0/32"), 1);
        b.insert(p("255.255.255.255/32"), 2);
        let f = b.build();
        assert_eq!(f.lookup(0), 1);
        assert_eq!(f.lookup(1), NO_ROUTE);
        assert_eq!(f.lookup(u32::MAX), 2);
        assert_eq!(f.lookup(u32::MAX - 1), NO_ROUTE);
        b.insert(p("0.0.0.0/0"), 3);
        let f = b.build();
        check(
            &b,
            &f,
            &[0, 1, 2, 4, u32::MAX, u32::MAX - 1, u32::MAX - 4],
            "edges",
        );
        assert_eq!(f.lookup(1), 3);
    }

    #[test]
    fn nested_prefixes_across_stride_boundaries() {
        // Every length around the 16 / 22 / 28 boundaries (and /32), all nested in one another,
        // each with its own value.
        let base = u32::from(a("10.170.170.170"));
        let lens = [8u8, 15, 16, 17, 21, 22, 23, 27, 28, 29, 31, 32];
        let mut b = FibBuilder::new();
        for (i, &l) in lens.iter().enumerate() {
            b.insert(Prefix::from_u32(base, l), i as u32);
        }
        let f = b.build();
        assert_eq!(f.route_count(), lens.len());
        let addrs = edge_addrs(&b);
        check(&b, &f, &addrs, "nested");
        // The innermost /32 and its neighbour.
        assert_eq!(f.lookup(base), lens.len() as u32 - 1);
        assert_eq!(f.lookup(base ^ 1), lens.len() as u32 - 2);

        // Peel routes off one at a time from the inside out: the covering route reappears.
        for (i, &l) in lens.iter().enumerate().rev() {
            assert_eq!(
                b.build().lookup(base),
                i as u32,
                "after removing /{l}'s inner routes"
            );
            assert_eq!(b.remove(Prefix::from_u32(base, l)), Some(i as u32));
            let f = b.build();
            check(&b, &f, &edge_addrs(&b), "peel");
        }
        assert_eq!(b.build().lookup(base), NO_ROUTE);
    }

    #[test]
    fn siblings_at_each_boundary_length() {
        // Both halves of a split at each length, so adjacent slots differ at every level.
        let mut b = FibBuilder::new();
        b.insert(p("0.0.0.0/0"), 1000);
        for (i, l) in [15u8, 16, 17, 21, 22, 23, 28, 29, 32]
            .into_iter()
            .enumerate()
        {
            let base = (i as u32 + 1) << 24 | 0x00aa_aa00;
            let lo = Prefix::from_u32(base, l);
            let hi = Prefix::from_u32(base | 1 << (32 - u32::from(l)), l);
            b.insert(lo, 2 * i as u32);
            b.insert(hi, 2 * i as u32 + 1);
        }
        let f = b.build();
        check(&b, &f, &edge_addrs(&b), "siblings");
    }

    #[test]
    fn insert_remove_round_trip() {
        let mut b = FibBuilder::new();
        b.insert(p("10.0.0.0/8"), 1);
        let before = b.build();
        let probes: Vec<u32> = ["10.0.0.0", "10.1.2.3", "10.1.2.128", "10.255.255.255"]
            .iter()
            .map(|s| u32::from(a(s)))
            .collect();
        let extra = ["10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "10.1.2.3/32"];
        for s in extra {
            b.insert(p(s), 9);
        }
        let mid = b.build();
        assert_eq!(mid.lookup(probes[1]), 9);
        for s in extra {
            assert_eq!(b.remove(p(s)), Some(9));
        }
        let after = b.build();
        for &x in &probes {
            assert_eq!(after.lookup(x), before.lookup(x));
            assert_eq!(after.lookup(x), 1);
        }
        assert_eq!(after.node_count(), 0);
        assert_eq!(after.memory_bytes(), before.memory_bytes());
    }

    fn differential(n: usize, seed: u64) {
        eprintln!("differential: {n} routes, seed {seed:#x}");
        let mut rng = Rng::new(seed);
        let b = synth::realistic_table(&mut rng, n);
        let f = b.build();
        assert_eq!(f.route_count(), b.len());
        let mut addrs = edge_addrs(&b);
        addrs.extend((0..n.max(10_000)).map(|_| rng.next_u32()));
        let ctx = format!("{n} routes, seed {seed:#x}");
        check(&b, &f, &addrs, &ctx);
    }

    #[test]
    fn differential_1k() {
        differential(1_000, synth::seed(0x1000));
    }

    #[test]
    fn differential_20k() {
        differential(20_000, synth::seed(0x2000));
    }

    #[test]
    fn differential_100k() {
        differential(100_000, synth::seed(0x3000));
    }

    #[test]
    fn differential_many_small_tables() {
        // Small dense tables inside one /8 hit leaf runs and child slots far more often.
        let seed = synth::seed(0x4000);
        eprintln!("differential_many_small_tables: seed {seed:#x}");
        let mut rng = Rng::new(seed);
        for round in 0..200 {
            let b = synth::dense_table(&mut rng, 1 + round % 60);
            let f = b.build();
            let mut addrs = edge_addrs(&b);
            addrs.extend((0..200).map(|_| 0x0a00_0000 | rng.next_u32() >> 8));
            check(
                &b,
                &f,
                &addrs,
                &format!("dense round {round}, seed {seed:#x}"),
            );
        }
    }

    /// The real DFZ table against the oracle: ~26 s in a debug build (mostly the oracle's 33 map
    /// lookups per address), a few seconds with `--release`. Skipped if the CSV is absent.
    #[test]
    fn dfz_full_table() {
        let Some(path) = synth::dfz_path() else {
            eprintln!("dfz_full_table: dfz-ipv4.csv not found next to the crate; skipped");
            return;
        };
        let t = std::time::Instant::now();
        let b = synth::load_dfz(&path).expect("load dfz csv");
        eprintln!("dfz: loaded {} prefixes in {:?}", b.len(), t.elapsed());
        let t = std::time::Instant::now();
        let f = b.build();
        let build = t.elapsed();
        eprintln!(
            "dfz: build {build:?}, memory {} bytes ({:.2} MiB), {} routes, {} nodes, {} leaves",
            f.memory_bytes(),
            f.memory_bytes() as f64 / (1 << 20) as f64,
            f.route_count(),
            f.node_count(),
            f.leaf_count()
        );
        assert_eq!(f.route_count(), b.len());
        let seed = synth::seed(0xdf2);
        eprintln!("dfz: random addresses seed {seed:#x}");
        let mut rng = Rng::new(seed);
        let mut addrs: Vec<u32> = b
            .iter()
            .flat_map(|(p, _)| [p.addr_u32(), p.last_u32()])
            .collect();
        addrs.extend((0..1_000_000).map(|_| rng.next_u32()));
        let t = std::time::Instant::now();
        check(&b, &f, &addrs, "dfz");
        eprintln!(
            "dfz: {} addresses checked in {:?}",
            addrs.len(),
            t.elapsed()
        );
    }
}
