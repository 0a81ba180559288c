//! Test-only route tables: seeded random tables with a realistic prefix-length mix, and the DFZ
//! table from `shared/data/dfz-ipv4.csv` when it is present.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

use super::{FibBuilder, Prefix};

/// A seeded RNG so a failure reproduces from the printed seed.
pub(super) struct Rng(StdRng);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(StdRng::seed_from_u64(seed))
    }

    pub(super) fn next_u32(&mut self) -> u32 {
        self.0.gen()
    }

    fn below(&mut self, n: u32) -> u32 {
        self.0.gen_range(0..n)
    }
}

/// `FIB_SEED` from the environment (decimal or 0x-hex) if set, else `default`.
pub(super) fn seed(default: u64) -> u64 {
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
/// (few next hops) so leaf compression is exercised.
pub(super) fn realistic_table(rng: &mut Rng, n: usize) -> FibBuilder {
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
pub(super) fn dense_table(rng: &mut Rng, n: usize) -> FibBuilder {
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
            [0, 1, super::NO_ROUTE - 1][rng.below(3) as usize],
        );
    }
    b
}

/// The DFZ table, if present next to the crate (`../shared/data` or `../../shared/data`).
pub(super) fn dfz_path() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "../shared/data/dfz-ipv4.csv",
        "../../shared/data/dfz-ipv4.csv",
    ]
    .iter()
    .map(|rel| root.join(rel))
    .find(|p| p.is_file())
}

/// Loads `net,len,asn` rows (header line with a UTF-8 BOM). The value is the ASN, or the row
/// index if the ASN is missing or `u32::MAX`; a repeated prefix keeps its last row.
pub(super) fn load_dfz(path: &Path) -> FibBuilder {
    let text = std::fs::read_to_string(path).expect("read dfz csv");
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut b = FibBuilder::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut f = line.trim().split(',');
        let (Some(net), Some(len)) = (f.next(), f.next()) else {
            continue;
        };
        let net: Ipv4Addr = net
            .parse()
            .unwrap_or_else(|_| panic!("row {i}: bad net {line:?}"));
        let len: u8 = len
            .parse()
            .unwrap_or_else(|_| panic!("row {i}: bad len {line:?}"));
        let v = f
            .next()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|&v| v != super::NO_ROUTE)
            .unwrap_or(i as u32);
        b.insert(Prefix::new(net, len), v);
    }
    b
}
