//! Kernel mirror mode at Internet scale (issue 12): what one settled burst of kernel route
//! changes costs the control thread with the DFZ table imported (`../shared/data/
//! dfz-ipv4.csv`): `one_change` re-resolves the changed prefix and compiles and publishes
//! the FIB; `full_resolve` is the same after a nexthop-object change, which re-resolves
//! every route. Skipped (with a note) without the table.

use std::{hint::black_box, net::Ipv4Addr, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use xgw::{
    kernel::{KernelMsg, NexthopMsg, RouteKind, RouteMsg, RoutePath},
    runtime::testbed::{port_ifindex, Testbed},
};

/// As in the router binary: large tables on transparent huge pages.
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;

const CFG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[kernel]
mirror = true
"#;

fn route(dst: Ipv4Addr, len: u8, gw: u8) -> KernelMsg {
    KernelMsg::Route(RouteMsg {
        table: 254,
        dst,
        len,
        kind: RouteKind::Unicast,
        protocol: 12,
        priority: 32,
        paths: vec![RoutePath {
            gateway: Some(Ipv4Addr::new(198, 19, 0, gw)),
            oif: port_ifindex(1),
            weight: 1,
        }],
        nh_id: None,
    })
}

/// A mirror-mode router with the DFZ table imported (half the routes through each of two
/// gateways), or `None` without the table.
fn imported() -> Option<Testbed> {
    let path = xgw::fib::synth::dfz_path()?;
    let table = xgw::fib::synth::load_dfz(&path).ok()?;
    let mut t = Testbed::new(CFG);
    let now = t.now;
    for (i, (p, _)) in table.iter().enumerate() {
        let m = route(p.addr(), p.len(), 2 + (i % 2) as u8);
        t.control_mut().kernel_message(now, &m);
    }
    t.advance(Duration::from_secs(1));
    eprintln!(
        "mirror: {} kernel routes imported",
        t.control().mirror().map_or(0, |m| m.kernel_fib().len())
    );
    Some(t)
}

fn bench(c: &mut Criterion) {
    let Some(mut t) = imported() else {
        eprintln!("mirror: no DFZ table (../shared/data/dfz-ipv4.csv): skipped");
        return;
    };
    let mut g = c.benchmark_group("mirror/dfz");
    g.sample_size(10);
    // Each iteration: one change, then past the coalescing delay and the hold-off that
    // followed the previous build, so that exactly one build runs.
    let mut gw = 2;
    g.bench_function("one_change", |b| {
        b.iter(|| {
            gw ^= 1;
            t.kernel(&route(Ipv4Addr::new(203, 0, 113, 0), 24, gw));
            t.advance(Duration::from_secs(30));
            black_box(t.control().routes().fib().route_count())
        })
    });
    g.bench_function("full_resolve", |b| {
        b.iter(|| {
            gw ^= 1;
            t.kernel(&KernelMsg::Nexthop(NexthopMsg {
                id: 1,
                gateway: Some(Ipv4Addr::new(198, 19, 0, gw)),
                oif: port_ifindex(1),
                blackhole: false,
                group: Vec::new(),
            }));
            t.advance(Duration::from_secs(30));
            black_box(t.control().routes().fib().route_count())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
