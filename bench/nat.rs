//! NAT benchmarks (DESIGN R12): the session table (lookup hit at 1k and 1M sessions, miss,
//! miss + create, expiry by `remove` and by `sweep`) and the per-packet translation
//! (`nat::translate`) of a minimum-size UDP packet.

mod common;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

/// As in the router binary: large tables on transparent huge pages (`xgw::io::hugealloc`).
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;
use xgw::{
    fib::synth::Rng,
    nat::{
        flow::{proto, FlowKey, Rewrite},
        table::{session_table_with_seed, SessionIndex, SessionReader, SessionWriter},
        translate::{self, Compiled},
    },
};

/// Lookups per iteration.
const LOOKUPS: usize = 1 << 16;
/// Sessions created or expired per iteration (at most a quarter of the table).
const CHURN: u32 = 4096;
/// External ports per pool address (1024..=65535).
const PORTS: u32 = 64_512;
/// `last_seen` of live sessions; expired ones get 0.
const NOW: u32 = 1_000;
/// Table sizes: 1k and 1M (2^20: a power of two, the documented best case for memory).
const SIZES: [(&str, u32); 2] = [("1k", 1 << 10), ("1M", 1 << 20)];

/// Session `i`: inside host `198.18.0.0 + i/16` port `20000 + i%16` to `203.0.113.7:443`,
/// mapped to pool address `198.51.100.(i / PORTS)` port `1024 + i % PORTS`. Injective in both
/// directions, so any set of distinct `i` is a valid table content.
fn session(i: u32) -> (FlowKey, Rewrite) {
    let k = FlowKey {
        src: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i >> 4)),
        dst: Ipv4Addr::new(203, 0, 113, 7),
        sport: 20_000 + (i & 15) as u16,
        dport: 443,
        proto: proto::UDP,
    };
    let r = Rewrite {
        src: Ipv4Addr::new(198, 51, 100, (i / PORTS) as u8),
        sport: 1024 + (i % PORTS) as u16,
        dst: k.dst,
        dport: k.dport,
    };
    (k, r)
}

/// A table of capacity `cap` holding sessions `0..len`.
fn filled(cap: u32, len: u32) -> (SessionWriter, SessionReader) {
    let (mut w, r) = session_table_with_seed(cap, 7);
    for i in 0..len {
        let (k, rw) = session(i);
        w.insert(k, rw, 0, NOW).expect("capacity");
    }
    (w, r)
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat/lookup");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    for (name, cap) in SIZES {
        let (w, r) = filled(cap, cap);
        eprintln!(
            "nat table {name}: {} sessions, {} bytes, {:.2} B/session",
            w.len(),
            w.memory_bytes(),
            w.memory_bytes() as f64 / f64::from(cap)
        );
        let mut rng = Rng::new(1);
        let hits: Vec<FlowKey> = (0..LOOKUPS).map(|_| session(rng.below(cap)).0).collect();
        let misses: Vec<FlowKey> = (0..LOOKUPS as u32).map(|j| session(cap + j).0).collect();
        assert!(hits.iter().all(|k| r.lookup(k).is_some()));
        assert!(misses.iter().all(|k| r.lookup(k).is_none()));
        for (case, keys) in [("hit", &hits), ("miss", &misses)] {
            g.bench_with_input(BenchmarkId::new(case, name), keys, |b, keys| {
                b.iter(|| {
                    let mut found = 0u32;
                    for k in black_box(keys) {
                        found += u32::from(r.lookup(k).is_some());
                    }
                    found
                })
            });
            // Batches of 64 (a receive burst), as the nat44 stage looks them up.
            let mut out = vec![None; 64];
            g.bench_with_input(
                BenchmarkId::new(format!("{case}-batch"), name),
                keys,
                |b, keys| {
                    b.iter(|| {
                        let mut found = 0u32;
                        for chunk in black_box(keys).chunks(64) {
                            r.lookup_batch(chunk, &mut out);
                            found += out.iter().filter(|h| h.is_some()).count() as u32;
                        }
                        found
                    })
                },
            );
        }
    }
    g.finish();
}

/// Insert sessions `from..from + n` (untimed helper); returns their indices.
fn insert_range(w: &mut SessionWriter, from: u32, n: u32, last_seen: u32) -> Vec<SessionIndex> {
    (from..from + n)
        .map(|i| {
            let (k, r) = session(i);
            w.insert(k, r, 0, last_seen).expect("capacity")
        })
        .collect()
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat/churn");
    for (name, cap) in SIZES {
        let n = CHURN.min(cap / 4);
        // Full but for the `n` sessions each iteration creates or expires.
        let (mut w, r) = filled(cap, cap - n);
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(BenchmarkId::new("miss+create", name), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut created = Vec::with_capacity(n as usize);
                for _ in 0..iters {
                    let t = Instant::now();
                    for i in cap..cap + n {
                        let (k, rw) = session(i);
                        if r.lookup(black_box(&k)).is_none() {
                            created.push(w.insert(k, rw, 0, NOW).expect("capacity"));
                        }
                    }
                    timed += t.elapsed();
                    created.drain(..).for_each(|s| w.remove(s));
                }
                timed
            })
        });
        g.bench_function(BenchmarkId::new("remove", name), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let created = insert_range(&mut w, cap, n, NOW);
                    let t = Instant::now();
                    for s in created {
                        w.remove(black_box(s));
                    }
                    timed += t.elapsed();
                }
                timed
            })
        });
        // One full expiry scan with `n` expired sessions among `cap`: elements = slots visited.
        g.throughput(Throughput::Elements(u64::from(cap)));
        g.bench_function(BenchmarkId::new("sweep-full-table", name), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    insert_range(&mut w, cap, n, 0);
                    let t = Instant::now();
                    let removed = w.sweep(cap as usize, |_, _, _, _, seen| {
                        NOW.wrapping_sub(seen) > 300
                    });
                    timed += t.elapsed();
                    assert_eq!(removed, n as usize);
                }
                timed
            })
        });
        assert_eq!(
            w.len(),
            (cap - n) as usize,
            "churn left the table as it was"
        );
    }
    g.finish();
}

fn translation(c: &mut Criterion) {
    const PACKETS: usize = 1024;
    let cap = 1 << 20;
    let (_w, r) = filled(cap, cap);
    let mut rng = Rng::new(2);
    let flows: Vec<(FlowKey, Rewrite)> = (0..PACKETS).map(|_| session(rng.below(cap))).collect();
    let packets: Vec<Vec<u8>> = flows
        .iter()
        .map(|(k, _)| common::udp_packet(k.src, k.sport, k.dst, k.dport))
        .collect();
    let compiled: Vec<Compiled> = flows.iter().map(|(k, rw)| Compiled::new(k, rw)).collect();
    let mut g = c.benchmark_group("nat/translate");
    g.throughput(Throughput::Elements(PACKETS as u64));
    // Fresh copies of the packets per iteration, untimed.
    g.bench_function("apply-precompiled", |b| {
        b.iter_batched_ref(
            || packets.clone(),
            |ps| {
                for (p, cp) in ps.iter_mut().zip(&compiled) {
                    translate::apply(black_box(p), cp).expect("udp");
                }
            },
            BatchSize::SmallInput,
        )
    });
    // `Compiled::new` per packet, as `nat44` does today, without the key and the lookup.
    g.bench_function("compile+apply", |b| {
        b.iter_batched_ref(
            || packets.clone(),
            |ps| {
                for (p, (k, rw)) in ps.iter_mut().zip(&flows) {
                    translate::apply(black_box(p), &Compiled::new(k, rw)).expect("udp");
                }
            },
            BatchSize::SmallInput,
        )
    });
    // What `nat44` does per packet on a hit: key, lookup (1M sessions), compile, apply.
    g.bench_function("key+lookup+compile+apply-1M", |b| {
        b.iter_batched_ref(
            || packets.clone(),
            |ps| {
                for p in ps.iter_mut() {
                    let key = translate::flow_key(black_box(p)).expect("udp");
                    let hit = r.lookup(&key).expect("session");
                    translate::apply(p, &Compiled::new(&key, &hit.rewrite)).expect("udp");
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    // The translated packets are the rewrites (checked once, outside the timing).
    let mut ps = packets.clone();
    for (p, (k, rw)) in ps.iter_mut().zip(&flows) {
        translate::apply(p, &Compiled::new(k, rw)).expect("udp");
        assert_eq!(translate::flow_key(p).expect("udp"), rw.apply(k));
    }
}

criterion_group!(benches, lookups, churn, translation);
criterion_main!(benches);
