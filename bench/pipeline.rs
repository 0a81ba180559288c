//! Whole-pipeline benchmarks (DESIGN R12): the worker loop (`Worker::poll_once`: rx burst,
//! every stage, tx by verdict, counter publication) over `io::mem`, for IPv4 forwarding and
//! NAT44 in both directions, at batch sizes 16/32/64/256 over 1024 flows.
//!
//! The control plane is set up and warmed with `Testbed` (ARP resolved, NAT sessions created),
//! then left out of the loop: only the worker runs, and a warm-up round asserts that every
//! frame is transmitted by the fast path (no punt, no drop). Pushing the frames into the
//! memory RX queue and recycling the transmitted buffers are untimed; `MemIo` hands out at
//! most `io::BATCH` (64) frames per burst, so a batch of 256 is four bursts.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// As in the router binary: large tables on transparent huge pages (`xgw::io::hugealloc`).
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;
use xgw::{
    dataplane::{Event, LocalCounters},
    runtime::testbed::Testbed,
    wire::{ethernet, ipv4::Packet, udp},
};

/// Distinct flows (source ports) cycled through.
const FLOWS: usize = 1024;
/// Frames per measured poll round.
const BATCHES: [usize; 4] = [16, 32, 64, 256];

/// Two connected subnets and a route via the far one (as in `tests/pipeline.rs`).
const ROUTER: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
"#;

/// The same router with NAT44 out of `r1` (as in `tests/nat.rs`).
const NAT: &str = r#"
[nat]
outside = "r1"
inside = ["198.18.0.0/24"]
ports = "1024-65535"
filtering = "endpoint-independent"
max_sessions = 4096
"#;

/// A warmed router and the frames to feed it.
struct Bench {
    t: Testbed,
    port: usize,
    frames: Vec<Vec<u8>>,
    next: usize,
}

impl Bench {
    /// Push `n` frames (the next ones of the flow cycle) into the RX queue.
    fn push(&mut self, n: usize) {
        for _ in 0..n {
            self.t.workers[0]
                .io
                .push_rx(self.port, &self.frames[self.next]);
            self.next = (self.next + 1) % self.frames.len();
        }
    }

    /// Run the worker until the RX queue is empty.
    fn drain(&mut self) {
        while self.t.workers[0].io.rx_pending(self.port) > 0 {
            black_box(self.t.workers[0].poll_once(self.t.now));
        }
    }

    /// One round of every flow through the worker alone; asserts that all of them were
    /// transmitted in the fast path. Returns how many were NAT-translated (in2out, out2in).
    fn check_fast_path(&mut self) -> (u64, u64) {
        let before = self.t.counters();
        self.push(FLOWS);
        self.drain();
        let after = self.t.counters();
        assert_eq!(
            after.events(Event::RxPackets) - before.events(Event::RxPackets),
            FLOWS as u64
        );
        assert_fast_path(&before, &after)
    }
}

/// Asserts that every frame received between the two counter readings was transmitted by the
/// fast path (none dropped or punted). Returns the NAT translations (in2out, out2in).
fn assert_fast_path(before: &LocalCounters, after: &LocalCounters) -> (u64, u64) {
    let delta = |e| after.events(e) - before.events(e);
    assert_eq!(
        delta(Event::TxPackets),
        delta(Event::RxPackets),
        "{:?}",
        after.nonzero()
    );
    assert_eq!(
        after.drops.iter().sum::<u64>() + after.punts.iter().sum::<u64>(),
        before.drops.iter().sum::<u64>() + before.punts.iter().sum::<u64>(),
        "a warm frame left the fast path: {:?}",
        after.nonzero()
    );
    (delta(Event::NatIn2Out), delta(Event::NatOut2In))
}

/// UDP flows `198.18.0.2:(10000 + i) -> 203.0.113.(1 + i % 254):53` from the client.
fn client_frames() -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            let dst = common::golden::ip(&format!("203.0.113.{}", 1 + i % 254));
            common::client_udp_frame(10_000 + i as u16, dst, 53)
        })
        .collect()
}

/// Forwarding: the gateway is resolved, so every frame is rewritten and transmitted.
fn forwarding() -> Bench {
    let mut t = common::golden::bed_with_server(ROUTER);
    t.take_tx(0);
    let mut b = Bench {
        t,
        port: 0,
        frames: client_frames(),
        next: 0,
    };
    b.check_fast_path();
    b.t.workers[0].io.recycle_tx();
    b
}

/// NAT44 inside to outside: one control-plane round creates the 1024 sessions, then every
/// frame hits one. Also returns the translated frames, to answer them.
fn nat_in2out() -> (Bench, Vec<Vec<u8>>) {
    let mut t = common::golden::bed_with_server(&format!("{ROUTER}{NAT}"));
    let frames = client_frames();
    for f in &frames {
        t.push(0, f);
    }
    t.step();
    let created = t.take_tx(1);
    assert_eq!(created.len(), FLOWS, "one translated frame per new session");
    t.take_tx(0);
    let mut b = Bench {
        t,
        port: 0,
        frames,
        next: 0,
    };
    assert_eq!(b.check_fast_path(), (FLOWS as u64, 0));
    b.t.workers[0].io.recycle_tx();
    (b, created)
}

/// NAT44 outside to inside: the replies to the frames `nat_in2out` translated.
fn nat_out2in() -> Bench {
    let (mut b, translated) = nat_in2out();
    b.frames = translated
        .iter()
        .map(|f| {
            let p = Packet::new_checked(&f[ethernet::HEADER_LEN..]).expect("ipv4");
            let u = udp::Packet::new_checked(p.payload()).expect("udp");
            let reply = common::udp_packet(p.dst_addr(), u.dst_port(), p.src_addr(), u.src_port());
            common::golden::server_frame(&reply)
        })
        .collect();
    b.port = 1;
    b.next = 0;
    assert_eq!(b.check_fast_path(), (0, FLOWS as u64));
    b.t.workers[0].io.recycle_tx();
    b
}

/// Times `batch` frames through the worker, for each batch size.
fn run(c: &mut Criterion, name: &str, mut b: Bench) {
    let before = b.t.counters();
    let mut g = c.benchmark_group(format!("pipeline/{name}"));
    for batch in BATCHES {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(BenchmarkId::new("batch", batch), |bench| {
            bench.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    b.push(batch);
                    let t = Instant::now();
                    b.drain();
                    timed += t.elapsed();
                    // Transmitted buffers go back to the pool: no growth across iterations.
                    b.t.workers[0].io.recycle_tx();
                }
                timed
            })
        });
    }
    g.finish();
    // Every measured frame took the fast path.
    assert_fast_path(&before, &b.t.counters());
}

fn pipeline(c: &mut Criterion) {
    run(c, "forward", forwarding());
    run(c, "nat44-in2out", nat_in2out().0);
    run(c, "nat44-out2in", nat_out2in());
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
