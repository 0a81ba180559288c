//! FIB benchmarks (DESIGN R12): [`Fib::lookup`] one by one and [`Fib::lookup_batch`] against the
//! `prefix-trie` crate's `PrefixMap::get_lpm` as a peer, on synthetic tables with a realistic
//! prefix-length mix (1k / 100k / 800k routes) and on the real DFZ table when
//! `shared/data/dfz-ipv4.csv` is present; and the full rebuild time.
//!
//! Destinations: "random" are addresses drawn inside uniformly chosen routes (every lookup
//! walks as deep as its route; the order defeats the caches); "sequential" are the same
//! addresses sorted ascending (neighbouring lookups share the dir entry and upper nodes).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// As in the router binary: large tables on transparent huge pages (`xgw::io::hugealloc`).
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use xgw::fib::{
    synth::{self, Rng},
    Fib, FibBuilder, RouteValue, NO_ROUTE,
};

/// Lookups per iteration.
const LOOKUPS: usize = 1 << 16;
/// Seed of the synthetic tables and the destinations.
const SEED: u64 = 0xbe4c;

/// A table under test: the route set, our compiled FIB and the peer.
struct Table {
    name: String,
    builder: FibBuilder,
    fib: Fib,
    peer: PrefixMap<Ipv4Net, RouteValue>,
}

impl Table {
    fn new(name: &str, builder: FibBuilder) -> Table {
        let fib = builder.build();
        let mut peer = PrefixMap::new();
        for (p, v) in builder.iter() {
            let net = Ipv4Net::new(p.addr(), p.len()).expect("length <= 32");
            peer.insert(net, v);
        }
        eprintln!(
            "fib {name}: {} routes, xgw {:.2} MiB ({} nodes, {} leaves), prefix-trie {:.2} MiB",
            fib.route_count(),
            mib(fib.memory_bytes()),
            fib.node_count(),
            fib.leaf_count(),
            mib(peer.mem_size()),
        );
        Table {
            name: name.to_owned(),
            builder,
            fib,
            peer,
        }
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// The synthetic tables, then the DFZ table if present (with a note if not).
fn tables() -> Vec<Table> {
    let mut v: Vec<Table> = [
        (1_000, "synth-1k"),
        (100_000, "synth-100k"),
        (800_000, "synth-800k"),
    ]
    .into_iter()
    .map(|(n, name)| Table::new(name, synth::realistic_table(&mut Rng::new(SEED), n)))
    .collect();
    match synth::dfz_path() {
        Some(path) => {
            let b = synth::load_dfz(&path).unwrap_or_else(|e| panic!("{e}"));
            v.push(Table::new("dfz", b));
        }
        None => eprintln!(
            "fib: {} not found; skipping the DFZ cases",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/dfz-ipv4.csv")
        ),
    }
    v
}

/// `LOOKUPS` addresses inside uniformly chosen routes of `b`.
fn random_dsts(b: &FibBuilder, rng: &mut Rng) -> Vec<u32> {
    let routes: Vec<_> = b.iter().map(|(p, _)| p).collect();
    (0..LOOKUPS)
        .map(|_| {
            let p = routes[rng.below(routes.len() as u32) as usize];
            p.addr_u32() | (rng.next_u32() & !p.mask_u32())
        })
        .collect()
}

fn lookups(c: &mut Criterion, tables: &[Table]) {
    for t in tables {
        let random = random_dsts(&t.builder, &mut Rng::new(SEED ^ 1));
        let mut sequential = random.clone();
        sequential.sort_unstable();
        for (pattern, dsts) in [("random", random), ("sequential", sequential)] {
            let nets: Vec<Ipv4Net> = dsts
                .iter()
                .map(|&a| Ipv4Net::new(Ipv4Addr::from(a), 32).expect("/32"))
                .collect();
            // The peer must agree with us before it is worth timing.
            for (&a, n) in dsts.iter().zip(&nets).step_by(97) {
                let peer = t.peer.get_lpm(n).map_or(NO_ROUTE, |(_, v)| *v);
                assert_eq!(t.fib.lookup(a), peer, "{}: {}", t.name, Ipv4Addr::from(a));
            }
            let mut g = c.benchmark_group(format!("fib/{}", t.name));
            g.throughput(Throughput::Elements(LOOKUPS as u64));
            g.sample_size(20);
            g.bench_with_input(BenchmarkId::new("xgw-single", pattern), &dsts, |b, d| {
                let fib = &t.fib;
                b.iter(|| {
                    let mut acc = 0u32;
                    for &a in black_box(d) {
                        acc ^= fib.lookup(a);
                    }
                    acc
                })
            });
            let mut out = vec![NO_ROUTE; LOOKUPS];
            g.bench_with_input(BenchmarkId::new("xgw-batch", pattern), &dsts, |b, d| {
                b.iter(|| {
                    t.fib.lookup_batch(black_box(d), &mut out);
                    black_box(&out);
                })
            });
            g.bench_with_input(BenchmarkId::new("prefix-trie", pattern), &nets, |b, n| {
                let peer = &t.peer;
                b.iter(|| {
                    let mut acc = 0u32;
                    for net in black_box(n) {
                        acc ^= peer.get_lpm(net).map_or(NO_ROUTE, |(_, v)| *v);
                    }
                    acc
                })
            });
            g.finish();
        }
    }
}

/// Full rebuild (what a route change costs) of the largest synthetic table and the DFZ.
fn build(c: &mut Criterion, tables: &[Table]) {
    let mut g = c.benchmark_group("fib/build");
    g.sample_size(10);
    for t in tables
        .iter()
        .filter(|t| t.name == "synth-800k" || t.name == "dfz")
    {
        g.throughput(Throughput::Elements(t.builder.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("full-rebuild", &t.name),
            &t.builder,
            |bench, b| bench.iter_with_large_drop(|| b.build()),
        );
    }
    g.finish();
}

/// `RTM_NEWROUTE` bytes for every route of `b` (via 198.19.0.2 on ifindex 3, protocol
/// bird, table main), in 32 KiB reads as a dump arrives.
fn route_dump_bytes(b: &FibBuilder) -> Vec<Vec<u8>> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::{
        route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType},
        AddressFamily, RouteNetlinkMessage,
    };
    let mut reads = vec![Vec::new()];
    for (p, _) in b.iter() {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.destination_prefix_length = p.len();
        r.header.table = 254;
        r.header.protocol = RouteProtocol::Bird;
        r.header.kind = RouteType::Unicast;
        r.attributes = vec![
            RouteAttribute::Table(254),
            RouteAttribute::Destination(RouteAddress::Inet(p.addr())),
            RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(198, 19, 0, 2))),
            RouteAttribute::Oif(3),
        ];
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewRoute(r)),
        );
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        if reads
            .last()
            .is_some_and(|r: &Vec<u8>| r.len() + buf.len() > 32 << 10)
        {
            reads.push(Vec::new());
        }
        reads
            .last_mut()
            .unwrap_or_else(|| unreachable!())
            .extend_from_slice(&buf);
    }
    reads
}

/// Mirror mode's import, without the socket: a full route dump decoded, applied to the
/// kernel-route state, and resolved into the routes a FIB is built from (the FIB build
/// itself is `fib/build`).
fn kernel_import(c: &mut Criterion, tables: &[Table]) {
    use xgw::{
        control::kroutes::{ImportSettings, KernelRoutes},
        kernel::{self, KernelMsg},
    };
    let mut g = c.benchmark_group("fib/kernel-import");
    g.sample_size(10);
    for t in tables
        .iter()
        .filter(|t| t.name == "synth-800k" || t.name == "dfz")
    {
        let reads = route_dump_bytes(&t.builder);
        let want = t.builder.len();
        g.throughput(Throughput::Elements(t.builder.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("dump-decode-apply-resolve", &t.name),
            &reads,
            |bench, reads| {
                bench.iter_with_large_drop(|| {
                    let mut k = KernelRoutes::new(ImportSettings::default());
                    let mut msgs: Vec<KernelMsg> = Vec::with_capacity(1024);
                    for r in reads {
                        msgs.clear();
                        kernel::decode(r, &mut msgs);
                        for m in &msgs {
                            k.apply(m, std::time::Duration::ZERO);
                        }
                    }
                    let routes = k.resolve(|i| (i == 3).then_some(0));
                    assert_eq!(routes.len(), want);
                    (k, routes)
                });
            },
        );
    }
    g.finish();
}

fn fib(c: &mut Criterion) {
    let tables = tables();
    lookups(c, &tables);
    build(c, &tables);
    kernel_import(c, &tables);
}

criterion_group!(benches, fib);
criterion_main!(benches);
