//! The control socket's service over a whole router in memory: its answers to known
//! traffic, NAT listings streamed while the session writer goes on, and refusals.
// Integration tests live at the crate root of their own test binary.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::SystemTime,
};

use common::*;
use serde_json::Value;
use xgw::{
    api::{
        proto::{SessionFilter, Verb},
        service::{
            job_queue, run_jobs, ConfigState, ControlCtx, Inventory, Job, PortFacts, Service,
        },
    },
    io::xsk_stats::XskStatsReader,
    runtime::testbed::Testbed,
};

const NAT: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[nat]
outside = "r1"
inside = ["198.18.0.0/24"]
max_sessions = 65536
max_sessions_per_host = 65536
[punt.nat]
rate = 100000000
burst = 100000
queue = 8192
"#;

fn service(t: &Testbed) -> (Arc<Service>, crossbeam::channel::Receiver<Job>) {
    let (jobs, rx) = job_queue(Arc::new(|| {}));
    let plane = t.control();
    let inv = Inventory {
        ports: plane
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| PortFacts {
                info: p.clone(),
                ifindex: 10 + i as u32,
                xdp_mode: "native".into(),
                tx_path: "auto".into(),
            })
            .collect(),
        workers: t.shared_counters().to_vec(),
        xsk: XskStatsReader::default(),
        nat: plane.nat_fast().cloned(),
        epoch: plane.epoch(),
        started: SystemTime::now(),
    };
    (Arc::new(Service::new(inv, jobs)), rx)
}

/// Ask `verb` on another thread while this one runs the control thread's jobs (and, if
/// `busy` is given, keeps stepping it); returns the answer's lines.
fn ask_with(
    t: &mut Testbed,
    svc: &Arc<Service>,
    rx: &crossbeam::channel::Receiver<Job>,
    verb: Verb,
    mut busy: impl FnMut(&mut Testbed),
) -> Vec<Value> {
    let mut cfg = ConfigState::new(None, "# testbed\n".into());
    let done = Arc::new(AtomicBool::new(false));
    let out = std::thread::scope(|s| {
        let h = {
            let svc = svc.clone();
            let done = done.clone();
            s.spawn(move || {
                let mut buf = Vec::new();
                svc.handle(&verb, &mut buf).unwrap();
                done.store(true, Ordering::Release);
                buf
            })
        };
        while !done.load(Ordering::Acquire) {
            let xdp = Vec::new;
            let mut cx = ControlCtx {
                ctl: &mut t.ctl,
                config: &mut cfg,
                xdp_lines: &xdp,
            };
            run_jobs(rx, &mut cx);
            busy(t);
            std::thread::yield_now();
        }
        h.join().unwrap()
    });
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ask(
    t: &mut Testbed,
    svc: &Arc<Service>,
    rx: &crossbeam::channel::Receiver<Job>,
    verb: Verb,
) -> Value {
    let lines = ask_with(t, svc, rx, verb, |_| {});
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["version"], 1);
    if lines[0]["ok"] == true {
        lines[0]["result"].clone()
    } else {
        Value::String(format!("error: {}", lines[0]["error"].as_str().unwrap()))
    }
}

/// Known traffic shows by exact counts: after `clear counters`, 10 frames through are +10
/// on r0 in and r1 out (bytes included), and one TTL=1 packet is one `punt.ttl_expired`.
#[test]
fn interfaces_and_errors_count_known_traffic() {
    let mut t = bed_with_server(NAT.split("[nat]").next().unwrap());
    let (svc, rx) = service(&t);
    ask(&mut t, &svc, &rx, Verb::ClearCounters);
    let frame = Ip::udp(client(), server(), 100).client_frame();
    for _ in 0..10 {
        t.push(0, &frame);
    }
    t.step();
    assert_eq!(t.take_tx(1).len(), 10);
    let v = ask(&mut t, &svc, &rx, Verb::ShowInterfaces);
    let (r0, r1) = (&v[0], &v[1]);
    assert_eq!(
        (r0["name"].as_str(), r1["name"].as_str()),
        (Some("r0"), Some("r1"))
    );
    assert_eq!(r0["rx_packets"], 10, "{v}");
    assert_eq!(r0["rx_bytes"], 10 * frame.len() as u64);
    assert_eq!(r1["tx_packets"], 10);
    assert_eq!(r1["tx_bytes"], 10 * frame.len() as u64);
    assert_eq!(r0["tx_packets"], 0);
    assert_eq!(r1["addresses"][0], "198.19.0.1/24");
    t.push(0, &Ip::udp(client(), server(), 10).ttl(1).client_frame());
    t.step();
    let e = ask(&mut t, &svc, &rx, Verb::ShowErrors { per_worker: true });
    let by: std::collections::HashMap<&str, &Value> = e["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
        .collect();
    assert_eq!(by["punt.ttl_expired"]["count"], 1, "{e}");
    assert_eq!(by["punt.ttl_expired"]["per_worker"][0], 1);
    assert_eq!(by["icmp.errors_sent"]["count"], 1);
    assert!(
        !by.contains_key("ip4_input.bad_checksum"),
        "zeros are left out"
    );
    // The ICMP error went back out of r0: one transmitted frame there.
    assert_eq!(
        ask(&mut t, &svc, &rx, Verb::ShowInterfaces)[0]["tx_packets"],
        1
    );
    let rt = ask(&mut t, &svc, &rx, Verb::ShowRuntime);
    assert_eq!(rt[0]["rx_packets"], 11);
    assert!(rt[0]["loops"].as_u64().unwrap() >= 2);
    let g = ask(
        &mut t,
        &svc,
        &rx,
        Verb::RouteGet {
            addr: "203.0.113.7".into(),
        },
    );
    assert_eq!(g["via"], "198.19.0.2");
    assert_eq!(g["dev"], "r1");
    let bad = ask(
        &mut t,
        &svc,
        &rx,
        Verb::RouteGet {
            addr: "203.0.113".into(),
        },
    );
    assert_eq!(bad, "error: `203.0.113` is not an IPv4 address");
    let n = ask(&mut t, &svc, &rx, Verb::ShowNeighbors);
    let s = n
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == "198.19.0.2")
        .unwrap();
    assert_eq!(s["state"], "reachable");
    assert_eq!(s["dev"], "r1");
    let nat = ask(&mut t, &svc, &rx, Verb::ShowNatSummary);
    assert_eq!(nat, "error: NAT is not configured ([nat])");
    let reload = ask(&mut t, &svc, &rx, Verb::Reload);
    assert!(
        reload
            .as_str()
            .unwrap()
            .contains("without a configuration file"),
        "{reload}"
    );
}

fn udp_from(sport: u16) -> Vec<u8> {
    Ip::udp_ports(client(), sport, server(), 53, 8).client_frame()
}

/// 5000 sessions listed by streaming; filters and `limit` hold; a listing taken while
/// the control thread goes on creating sessions sees only whole sessions (every listed one
/// from the client, on the external address), at least those that existed before.
#[test]
fn nat_sessions_stream_while_the_writer_goes_on() {
    let mut t = bed_with_server(NAT);
    let (svc, rx) = service(&t);
    // bed_with_server's own packet made one session.
    let base = t.control().nat().unwrap().session_count();
    t.flood(0, (0..5000u16).map(|i| udp_from(10_000 + i)));
    let first = base + 5000;
    assert_eq!(t.control().nat().unwrap().session_count(), first);
    let all = ask_with(
        &mut t,
        &svc,
        &rx,
        Verb::ShowNatSessions(SessionFilter::default()),
        |_| {},
    );
    assert_eq!(all[0]["stream"], "nat_sessions");
    let items = &all[1..all.len() - 1];
    assert_eq!(items.len(), first);
    assert_eq!(all.last().unwrap()["end"]["count"], first as u64);
    for it in items {
        let i = &it["item"];
        assert_eq!(i["proto"], "udp");
        assert!(
            i["inside"].as_str().unwrap().starts_with("198.18.0.2:"),
            "{i}"
        );
        assert!(
            i["external"].as_str().unwrap().starts_with("198.19.0.1:"),
            "{i}"
        );
        assert!(
            i["remote"].as_str().unwrap().starts_with("198.19.0.2:"),
            "{i}"
        );
    }
    let one = ask_with(
        &mut t,
        &svc,
        &rx,
        Verb::ShowNatSessions(SessionFilter {
            inside: Some("198.18.0.2:10007".into()),
            ..SessionFilter::default()
        }),
        |_| {},
    );
    assert_eq!(one.len(), 3, "{one:?}");
    assert_eq!(one[1]["item"]["inside"], "198.18.0.2:10007");
    let limited = ask_with(
        &mut t,
        &svc,
        &rx,
        Verb::ShowNatSessions(SessionFilter {
            proto: Some("udp".into()),
            limit: Some(7),
            ..SessionFilter::default()
        }),
        |_| {},
    );
    assert_eq!(limited.len(), 9);
    assert_eq!(limited[8]["end"]["truncated"], true);
    for bad in [
        SessionFilter {
            proto: Some("sctp".into()),
            ..SessionFilter::default()
        },
        SessionFilter {
            inside: Some("198.18.0.2:99999".into()),
            ..SessionFilter::default()
        },
        SessionFilter {
            external: Some("nonsense".into()),
            ..SessionFilter::default()
        },
    ] {
        let r = ask_with(
            &mut t,
            &svc,
            &rx,
            Verb::ShowNatSessions(bad.clone()),
            |_| {},
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["ok"], false, "{bad:?}: {r:?}");
    }
    // The writer goes on while a listing runs: 5000 more sessions, 100 per round.
    let mut next = 20_000u16;
    let during = ask_with(
        &mut t,
        &svc,
        &rx,
        Verb::ShowNatSessions(SessionFilter::default()),
        |t| {
            if next < 25_000 {
                t.flood(0, (next..next + 100).map(udp_from));
                next += 100;
            }
        },
    );
    let n = during.len() - 2;
    assert!((first..=first + 5000).contains(&n), "{n}");
    for it in &during[1..=n] {
        let i = &it["item"];
        assert!(
            i["inside"].as_str().unwrap().starts_with("198.18.0.2:"),
            "torn: {i}"
        );
        assert!(
            i["external"].as_str().unwrap().starts_with("198.19.0.1:"),
            "torn: {i}"
        );
    }
    let sum = ask(&mut t, &svc, &rx, Verb::ShowNatSummary);
    let total = t.control().nat().unwrap().session_count() as u64;
    assert_eq!(sum["sessions"], total);
    assert_eq!(sum["by_proto"]["udp"], total);
    assert_eq!(sum["capacity"], 65536);
    let ports: u64 = sum["ports_in_use"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ports"].as_u64().unwrap())
        .sum();
    assert_eq!(ports, total, "one external port per inside port (EIM)");
    let maps = ask(&mut t, &svc, &rx, Verb::ShowNatMappings);
    assert_eq!(maps.as_array().unwrap().len() as u64, total);
}

/// With nobody running jobs (the control thread gone), job verbs fail at once with a
/// reason, and lock-free ones still answer.
#[test]
fn without_a_control_thread_job_verbs_fail_fast() {
    let t = Testbed::new(NAT);
    let (svc, rx) = service(&t);
    drop(rx);
    let mut buf = Vec::new();
    svc.handle(&Verb::ShowNeighbors, &mut buf).unwrap();
    let v: Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "xgw is stopping");
    let mut buf = Vec::new();
    svc.handle(&Verb::ShowRuntime, &mut buf).unwrap();
    let v: Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
