//! `wire` benchmarks (DESIGN R12): parse and validate a minimum-size Ethernet/IPv4/UDP frame
//! with the checks the dataplane applies, and the IPv4 header checksum after a TTL decrement,
//! RFC 1624 incremental against a full recompute.

mod common;

use std::hint::black_box;

use criterion::{
    criterion_group, criterion_main, measurement::WallTime, BatchSize, BenchmarkGroup, Criterion,
    Throughput,
};

/// As in the router binary: large tables on transparent huge pages (`xgw::io::hugealloc`).
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;
use xgw::{
    runtime::testbed::port_mac,
    wire::{
        checksum,
        ethernet::{self, EtherType, Frame, MacAddr},
        ipv4::{self, Packet, Protocol},
        udp,
    },
};

/// Frames per iteration (distinct buffers, so the loop is not one cached frame).
const FRAMES: usize = 256;

/// The checks `ethernet-input` and `ip4-input` make on a frame, plus the UDP header bounds check
/// `nat44` makes (`Frame::new_checked`, our MAC, RFC 1812 §5.2.2 `validate` with the checksum,
/// §5.3.7 martians, no multicast/broadcast destination), composed from the public `wire` API.
/// Returns the ports, or `None` where the dataplane would drop or punt.
#[inline]
fn parse_validate(f: &[u8], our_mac: MacAddr) -> Option<(u16, u16)> {
    let frame = Frame::new_checked(f).ok()?;
    if frame.ethertype() != EtherType::Ipv4 || frame.dst_addr() != our_mac {
        return None;
    }
    let pkt = Packet::new_unchecked(&f[ethernet::HEADER_LEN..]);
    pkt.validate().ok()?;
    let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
    if ipv4::is_martian_source(src)
        || ipv4::is_martian_destination(dst)
        || dst.is_multicast()
        || dst.is_broadcast()
        || pkt.protocol() != Protocol::Udp
    {
        return None;
    }
    let u = udp::Packet::new_checked(pkt.payload()).ok()?;
    Some((u.src_port(), u.dst_port()))
}

fn frames() -> Vec<Vec<u8>> {
    (0..FRAMES)
        .map(|i| {
            let sport = 10_000 + i as u16;
            common::client_udp_frame(sport, common::golden::ip("203.0.113.7"), 53)
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let frames = frames();
    assert_eq!(frames[0].len(), 60, "minimum-size frame");
    let mac = port_mac(0);
    assert!(frames.iter().all(|f| parse_validate(f, mac).is_some()));
    let mut g = c.benchmark_group("wire/parse");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("eth-ipv4-udp-validate", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for f in black_box(&frames) {
                if let Some((s, d)) = parse_validate(f, mac) {
                    acc = acc.wrapping_add(u32::from(s) ^ u32::from(d));
                }
            }
            acc
        })
    });
    g.finish();
}

/// What `ip4-rewrite` does: TTL - 1 and RFC 1624 eqn. 3 on the TTL/protocol word.
fn ttl_incremental(p: &mut Packet<&mut [u8]>) {
    p.set_ttl(p.ttl() - 1);
    p.set_checksum(checksum::ttl_decrement(p.checksum()));
}

/// TTL - 1 and a full RFC 1071 recompute over the header.
fn ttl_full(p: &mut Packet<&mut [u8]>) {
    p.set_ttl(p.ttl() - 1);
    p.fill_checksum();
}

/// Times `decrement` over fresh copies of `frames` (TTL 64, valid checksum; the copy is
/// untimed). Generic, not a `fn` pointer, so the variant is inlined like in the dataplane.
fn decrement_bench<F: Fn(&mut Packet<&mut [u8]>)>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    frames: &[Vec<u8>],
    decrement: F,
) {
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || frames.to_vec(),
            |fs| {
                for f in fs.iter_mut() {
                    decrement(&mut Packet::new_unchecked(black_box(
                        &mut f[ethernet::HEADER_LEN..],
                    )));
                }
            },
            BatchSize::SmallInput,
        )
    });
}

fn ipv4_checksum(c: &mut Criterion) {
    let frames = frames();
    // Both variants produce the same header (checked once, outside the timing).
    for f in &frames {
        let (mut a, mut b) = (f.clone(), f.clone());
        ttl_incremental(&mut Packet::new_unchecked(&mut a[ethernet::HEADER_LEN..]));
        ttl_full(&mut Packet::new_unchecked(&mut b[ethernet::HEADER_LEN..]));
        assert_eq!(a, b);
    }
    let mut g = c.benchmark_group("wire/ipv4-checksum");
    g.throughput(Throughput::Elements(FRAMES as u64));
    decrement_bench(
        &mut g,
        "ttl-decrement-incremental",
        &frames,
        ttl_incremental,
    );
    decrement_bench(&mut g, "ttl-decrement-full", &frames, ttl_full);
    g.bench_function("verify", |b| {
        b.iter(|| {
            black_box(&frames)
                .iter()
                .filter(|f| Packet::new_unchecked(&f[ethernet::HEADER_LEN..]).verify_checksum())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, parse, ipv4_checksum);
criterion_main!(benches);
