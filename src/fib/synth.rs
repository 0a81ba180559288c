//! Route tables for tests and benchmarks: seeded synthetic tables with a realistic prefix-length
//! mix, and a loader for the DFZ table in `shared/data/dfz-ipv4.csv` when it is present.
//!
//! Owns the one copy of these generators, shared by the `fib` unit tests and `bench/fib.rs`.
//! Depends on `std` only (no `rand`): [`Rng`] is a seeded SplitMix64, so a table is a pure
//! function of its seed and a failure reproduces from the printed seed. Not used by the router.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{FibBuilder, Prefix, NO_ROUTE};

/// A seeded pseudo-random generator (SplitMix64, Steele et al. 2014): tiny, fast, and good
/// enough to draw test tables and benchmark addresses. Not for anything security-related.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (multiply-shift; the bias is below 2^-32, irrelevant here).
    ///
    /// # Panics
    ///
    /// If `n == 0`.
    pub fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "Rng::below(0)");
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }
}

/// `FIB_SEED` from the environment (decimal or 0x-hex) if set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("FIB_SEED")
        .ok()
        .and_then(|s| match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        })
        .unwrap_or(default)
}

/// A prefix length drawn from roughly the DFZ mix: ~60% /24, ~10% /22-/23, ~12% /19-/21,
/// ~10% /16-/18, ~3% /8-/15, ~5% /25-/32.
fn realistic_len(rng: &mut Rng) -> u8 {
    let r = rng.below(100);
    let (lo, hi) = match r {
        0..=59 => (24, 24),
        60..=69 => (22, 23),
        70..=81 => (19, 21),
        82..=91 => (16, 18),
        92..=94 => (8, 15),
        _ => (25, 32),
    };
    (lo + rng.below(hi - lo + 1)) as u8
}

/// `n` distinct routes with a realistic length mix. About a third are more-specifics of an
/// earlier route (deaggregation), so nesting across stride boundaries is common; values repeat
/// (few next hops) so leaf compression is exercised. Half the tables also get a default route.
pub fn realistic_table(rng: &mut Rng, n: usize) -> FibBuilder {
    let mut b = FibBuilder::new();
    let mut list: Vec<Prefix> = Vec::with_capacity(n);
    while b.len() < n {
        let len = realistic_len(rng);
        let addr = if !list.is_empty() && rng.below(3) == 0 {
            // Inside an existing route: keep its bits, randomise the rest.
            let parent = list[rng.below(list.len() as u32) as usize];
            parent.addr_u32() | (rng.next_u32() & !parent.mask_u32())
        } else {
            // Unicast-looking space, clustered into a few thousand /12s like real allocations.
            let cluster = 1 + rng.below(223);
            cluster << 24 | (rng.below(16) << 20) | (rng.next_u32() & 0x000f_ffff)
        };
        let p = Prefix::from_u32(addr, len);
        if b.get(p).is_none() {
            b.insert(p, rng.below(64));
            list.push(p);
        }
    }
    if rng.below(2) == 0 {
        b.insert(Prefix::from_u32(0, 0), 999);
    }
    b
}

/// Up to `n` routes of any length 0..=32 packed into 10.0.0.0/8, many of them nested, with
/// 3 distinct values, one of them too large to sit in a direct-pointing entry.
pub fn dense_table(rng: &mut Rng, n: usize) -> FibBuilder {
    let mut b = FibBuilder::new();
    for _ in 0..n {
        let len = match rng.below(4) {
            0 => rng.below(33) as u8,
            _ => 14 + rng.below(19) as u8,
        };
        // Few distinct high bits below the /8 so routes collide in the same nodes.
        let addr = 0x0a00_0000 | (rng.below(4) << 16) | (rng.next_u32() & 0xffff);
        b.insert(
            Prefix::from_u32(addr, len),
            [0, 1, NO_ROUTE - 1][rng.below(3) as usize],
        );
    }
    b
}

/// The DFZ table, if present next to the crate (`../shared/data` or `../../shared/data`).
pub fn dfz_path() -> Option<PathBuf> {
    [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/dfz-ipv4.csv"),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/dfz-ipv4.csv"
        ),
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Loads `net,len,asn` rows (header line with a UTF-8 BOM). The value is the ASN, or the row
/// index if the ASN is missing or `u32::MAX`; a repeated prefix keeps its last row.
///
/// # Errors
///
/// The read error, or `InvalidData` naming the first row whose network or length does not
/// parse.
pub fn load_dfz(path: &Path) -> io::Result<FibBuilder> {
    let text = std::fs::read_to_string(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let bad = |i: usize, line: &str, what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: row {i}: bad {what} {line:?}", path.display()),
        )
    };
    let mut b = FibBuilder::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut f = line.trim().split(',');
        let (Some(net), Some(len)) = (f.next(), f.next()) else {
            continue;
        };
        let net: Ipv4Addr = net.parse().map_err(|_| bad(i, line, "net"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|&l| l <= 32)
            .ok_or_else(|| bad(i, line, "len"))?;
        let v = f
            .next()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|&v| v != NO_ROUTE)
            .unwrap_or(i as u32);
        b.insert(Prefix::new(net, len), v);
    }
    Ok(b)
}
