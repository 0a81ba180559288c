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
        nat: plane.nat_view().clone(),
        epoch: plane.epoch(),
        started: SystemTime::now(),
        trace: t.trace().clone(),
    };
    (Arc::new(Service::new(inv, jobs)), rx)
}

/// Run `f` on another thread while this one runs the control thread's jobs (and calls
/// `busy` between rounds).
fn pump<R: Send>(
    t: &mut Testbed,
    rx: &crossbeam::channel::Receiver<Job>,
    f: impl FnOnce() -> R + Send,
    mut busy: impl FnMut(&mut Testbed),
) -> R {
    let mut cfg = ConfigState::new(None, "# testbed\n".into());
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let h = {
            let done = done.clone();
            s.spawn(move || {
                let r = f();
                done.store(true, Ordering::Release);
                r
            })
        };
        while !done.load(Ordering::Acquire) {
            let xdp = Vec::new;
            let mut hook = |_: Option<&Result<String, String>>| {};
            let mut cx = ControlCtx {
                ctl: &mut t.ctl,
                config: &mut cfg,
                xdp_lines: &xdp,
                reload_hook: &mut hook,
            };
            run_jobs(rx, &mut cx);
            busy(t);
            std::thread::yield_now();
        }
        h.join().unwrap()
    })
}

/// Ask `verb` (see [`pump`]); returns the answer's lines.
fn ask_with(
    t: &mut Testbed,
    svc: &Arc<Service>,
    rx: &crossbeam::channel::Receiver<Job>,
    verb: Verb,
    busy: impl FnMut(&mut Testbed),
) -> Vec<Value> {
    let out = pump(
        t,
        rx,
        || {
            let mut buf = Vec::new();
            svc.handle(&verb, &mut buf).unwrap();
            buf
        },
        busy,
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `show nat sessions --inside ENDPOINT`, as answer lines.
fn sessions_inside(
    t: &mut Testbed,
    svc: &Arc<Service>,
    rx: &crossbeam::channel::Receiver<Job>,
    inside: &str,
) -> Vec<Value> {
    let f = SessionFilter {
        inside: Some(inside.into()),
        ..SessionFilter::default()
    };
    ask_with(t, svc, rx, Verb::ShowNatSessions(f), |_| {})
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
            flow: Default::default(),
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
            flow: Default::default(),
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
    let one = sessions_inside(&mut t, &svc, &rx, "198.18.0.2:10007");
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

/// One sample of an OpenMetrics text: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A strict reader of the OpenMetrics text format as far as xgw uses it: `# HELP`/`# TYPE`
/// before a family's samples, counters' samples named `<family>_total`, quoted label
/// values, numeric values, `# EOF` last. Panics on anything else.
fn parse_openmetrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut family: Option<(String, String)> = None;
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l == "# EOF" {
            assert!(lines.peek().is_none(), "text after # EOF");
            return out;
        }
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE name type");
            assert!(["counter", "gauge", "info"].contains(&ty), "{l}");
            family = Some((name.to_owned(), ty.to_owned()));
            continue;
        }
        if l.starts_with("# HELP ") || l.starts_with("# UNIT ") {
            continue;
        }
        let (fam, ty) = family
            .as_ref()
            .unwrap_or_else(|| panic!("sample before TYPE: {l}"));
        let (series, value) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {l}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {l}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {l}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label: {l}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (n, labels)
            }
            None => (series, Vec::new()),
        };
        let want = if ty == "counter" {
            format!("{fam}_total")
        } else {
            fam.clone()
        };
        assert_eq!(name, want, "sample of family {fam}: {l}");
        assert!(name.starts_with("xgw_"), "{l}");
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    panic!("no # EOF")
}

fn sample(ss: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    ss.iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
        .value
}

/// A scrape, parsed back: interface counters, drops and punts equal what `show
/// interfaces` and `show errors` say; NAT gauges equal the policy's own counts; a flood of
/// scrapes while NAT sessions are created stays consistent (sessions only grow).
#[test]
fn metrics_parse_back_and_match_show() {
    let mut t = bed_with_server(NAT);
    let (svc, rx) = service(&t);
    t.flood(0, (0..300u16).map(|i| udp_from(30_000 + i)));
    t.push(0, &Ip::udp(client(), server(), 10).ttl(1).client_frame());
    t.step();
    let text = pump(&mut t, &rx, || svc.metrics().unwrap(), |_| {});
    let ss = parse_openmetrics(&text);
    let ifs = ask(&mut t, &svc, &rx, Verb::ShowInterfaces);
    for (i, name) in ["r0", "r1"].iter().enumerate() {
        for (m, k) in [
            ("xgw_interface_rx_packets_total", "rx_packets"),
            ("xgw_interface_tx_bytes_total", "tx_bytes"),
        ] {
            assert_eq!(
                sample(&ss, m, &[("interface", name)]),
                ifs[i][k].as_f64().unwrap(),
                "{m} {name}"
            );
        }
    }
    let e = ask(&mut t, &svc, &rx, Verb::ShowErrors { per_worker: false });
    for c in e["counters"].as_array().unwrap() {
        let (kind, name, n) = (
            c["kind"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
            c["count"].as_f64().unwrap(),
        );
        let m = match kind {
            "drop" => sample(&ss, "xgw_drops_total", &[("reason", name)]),
            "punt" => sample(&ss, "xgw_punts_total", &[("reason", name)]),
            "control" => sample(&ss, "xgw_control_events_total", &[("counter", name)]),
            _ => continue,
        };
        assert_eq!(m, n, "{name}");
    }
    assert_eq!(
        sample(&ss, "xgw_punts_total", &[("reason", "punt.ttl_expired")]),
        1.0
    );
    let sessions = t.control().nat().unwrap().session_count() as f64;
    assert_eq!(
        sample(&ss, "xgw_nat_sessions", &[("proto", "udp")]),
        sessions
    );
    assert_eq!(sample(&ss, "xgw_nat_sessions_created_total", &[]), sessions);
    assert_eq!(
        sample(
            &ss,
            "xgw_nat_ports_in_use",
            &[("address", "198.19.0.1"), ("proto", "udp")]
        ),
        sessions
    );
    // The server answered our ARP (reachable); the client only asked (stale, as Linux).
    assert_eq!(sample(&ss, "xgw_neighbors", &[("state", "reachable")]), 1.0);
    assert_eq!(sample(&ss, "xgw_neighbors", &[("state", "stale")]), 1.0);
    assert!(sample(&ss, "xgw_fib_routes", &[]) >= 7.0);
    assert_eq!(
        sample(
            &ss,
            "xgw_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // Scrapes back to back while the control thread creates sessions.
    let mut next = 40_000u16;
    let texts = pump(
        &mut t,
        &rx,
        || (0..20).map(|_| svc.metrics().unwrap()).collect::<Vec<_>>(),
        |t| {
            if next < 42_000 {
                t.flood(0, (next..next + 50).map(udp_from));
                next += 50;
            }
        },
    );
    let mut last = 0.0;
    for text in &texts {
        let s = sample(
            &parse_openmetrics(text),
            "xgw_nat_sessions",
            &[("proto", "udp")],
        );
        assert!(s >= last, "sessions went back: {s} < {last}");
        last = s;
    }
}

#[test]
#[should_panic(expected = "no value")]
fn the_openmetrics_reader_rejects_garbage() {
    parse_openmetrics("# TYPE xgw_a counter\nxgw_a_total\n# EOF\n");
}

/// `route add` applies at once and is validated like the file; `route del` takes it away
/// (net unreachable again); file routes cannot be shadowed or deleted; `neighbor flush`
/// and `nat del session` remove what they name.
#[test]
fn runtime_routes_flush_and_session_delete() {
    let mut t = bed_with_server(NAT);
    let (svc, rx) = service(&t);
    let add = |prefix: &str, via: Option<&str>, kind: Option<&str>| Verb::RouteAdd {
        prefix: prefix.into(),
        via: via.map(Into::into),
        dev: None,
        kind: kind.map(Into::into),
    };
    let to = ip("192.0.2.5");
    let probe = Ip::udp(client(), to, 10).client_frame();
    t.push(0, &probe);
    t.step();
    assert_eq!(t.take_tx(1).len(), 0, "unrouted before");
    assert_eq!(t.take_tx(0).len(), 1, "net unreachable before");
    let r = ask(
        &mut t,
        &svc,
        &rx,
        add("192.0.2.0/24", Some("198.19.0.2"), None),
    );
    assert_eq!(r["message"], "192.0.2.0/24: added", "{r}");
    t.step();
    let g = ask(
        &mut t,
        &svc,
        &rx,
        Verb::RouteGet {
            addr: "192.0.2.5".into(),
            flow: Default::default(),
        },
    );
    assert_eq!(
        (g["prefix"].as_str(), g["via"].as_str()),
        (Some("192.0.2.0/24"), Some("198.19.0.2"))
    );
    t.push(0, &probe);
    t.step();
    assert_eq!(t.take_tx(1).len(), 1, "forwarded through the new route");
    let routes = ask_with(
        &mut t,
        &svc,
        &rx,
        Verb::ShowRoute {
            prefix: Some("192.0.2.0/24".into()),
        },
        |_| {},
    );
    assert_eq!(routes[1]["item"]["source"], "runtime", "{routes:?}");
    for (verb, want) in [
        (
            add("192.0.2.0/24", Some("198.19.0.2"), None),
            "route exists",
        ),
        (
            add("203.0.113.0/24", None, Some("blackhole")),
            "from the configuration file",
        ),
        (
            add("198.51.100.0/24", Some("192.0.2.9"), None),
            "route add: route.via:",
        ),
        (
            add("198.51.100.1/24", None, Some("blackhole")),
            "host bits set",
        ),
        (
            add("198.51.100.0/24", None, None),
            "needs one of `via`, `dev` or `type`",
        ),
        (
            add("198.51.100.0/24", None, Some("teleport")),
            "unknown route type",
        ),
        (
            Verb::RouteDel {
                prefix: "203.0.113.0/24".into(),
            },
            "from the configuration file",
        ),
        (
            Verb::RouteDel {
                prefix: "198.51.100.0/24".into(),
            },
            "no such route",
        ),
        (
            Verb::RouteDel {
                prefix: "nonsense".into(),
            },
            "not an IPv4 prefix",
        ),
    ] {
        let r = ask(&mut t, &svc, &rx, verb.clone());
        let msg = r
            .as_str()
            .unwrap_or_else(|| panic!("{verb:?} accepted: {r}"));
        assert!(msg.contains(want), "{verb:?}: {msg}");
    }
    let r = ask(
        &mut t,
        &svc,
        &rx,
        add("198.51.100.0/24", None, Some("unreachable")),
    );
    assert_eq!(r["message"], "198.51.100.0/24: added");
    let r = ask(
        &mut t,
        &svc,
        &rx,
        Verb::RouteDel {
            prefix: "192.0.2.0/24".into(),
        },
    );
    assert_eq!(r["message"], "192.0.2.0/24: deleted");
    t.step();
    t.push(0, &probe);
    t.step();
    assert_eq!(t.take_tx(1).len(), 0, "unrouted again");
    let icmp = t.take_tx(0);
    assert_eq!(icmp.len(), 1, "net unreachable to the client");
    // Neighbours.
    let bad = ask(
        &mut t,
        &svc,
        &rx,
        Verb::NeighborFlush {
            dev: Some("r9".into()),
        },
    );
    assert_eq!(bad, "error: no interface named `r9`");
    let r = ask(
        &mut t,
        &svc,
        &rx,
        Verb::NeighborFlush {
            dev: Some("r1".into()),
        },
    );
    assert_eq!(r["flushed"], 1);
    let n = ask(&mut t, &svc, &rx, Verb::ShowNeighbors);
    assert!(
        n.as_array()
            .unwrap()
            .iter()
            .all(|e| e["address"] != "198.19.0.2"),
        "{n}"
    );
    assert!(t.control().neighbors().lookup(server()).is_none());
    // Sessions: two of one endpoint (two destinations), one of another.
    let s1 = Ip::udp_ports(client(), 7000, server(), 53, 8).client_frame();
    let s2 = Ip::udp_ports(client(), 7000, ip("203.0.113.7"), 53, 8).client_frame();
    let s3 = Ip::udp_ports(client(), 7001, server(), 53, 8).client_frame();
    t.flood(0, [s1, s2, s3]);
    let before = t.control().nat().unwrap().session_count();
    let r = ask(
        &mut t,
        &svc,
        &rx,
        Verb::NatDelSession {
            inside: "198.18.0.2:7000".into(),
            proto: Some("tcp".into()),
        },
    );
    assert_eq!(r["deleted"], 0);
    let r = ask(
        &mut t,
        &svc,
        &rx,
        Verb::NatDelSession {
            inside: "198.18.0.2:7000".into(),
            proto: None,
        },
    );
    assert_eq!(r["deleted"], 2);
    assert_eq!(t.control().nat().unwrap().session_count(), before - 2);
    let left = sessions_inside(&mut t, &svc, &rx, "198.18.0.2:7000");
    assert_eq!(left.len(), 2, "none left: {left:?}");
    for (inside, proto) in [("198.18.0.2", None), ("198.18.0.2:7000", Some("sctp"))] {
        let r = ask(
            &mut t,
            &svc,
            &rx,
            Verb::NatDelSession {
                inside: inside.into(),
                proto: proto.map(Into::into),
            },
        );
        assert!(
            r.as_str().is_some_and(|m| m.starts_with("error: ")),
            "{inside} {proto:?}: {r}"
        );
    }
}

/// `trace add 3`: the next three packets, and only they, are traced through the stages: a
/// NAT-translated UDP packet (input, every stage passed, tx r1, the rewrite in the output:
/// external source, TTL 63), a TTL=1 packet punted at ip4-rewrite, a bad-checksum packet
/// dropped at ip4-input. A port filter skips the other port; a bad count or port is refused.
#[test]
fn packet_trace_shows_each_stage() {
    let mut t = bed_with_server(NAT);
    let (svc, rx) = service(&t);
    let add = |n: u32, port: Option<&str>| Verb::TraceAdd {
        count: n,
        port: port.map(str::to_owned),
    };
    assert!(ask(&mut t, &svc, &rx, add(0, None))
        .as_str()
        .unwrap()
        .contains("1..=1024"));
    assert!(ask(&mut t, &svc, &rx, add(3, Some("eth9")))
        .as_str()
        .unwrap()
        .contains("no port"));
    assert_eq!(ask(&mut t, &svc, &rx, add(3, None))["armed"], 3);
    t.push(
        0,
        &Ip::udp_ports(client(), 41000, server(), 53, 40).client_frame(),
    );
    t.step();
    t.push(0, &Ip::udp(client(), server(), 20).ttl(1).client_frame());
    t.step();
    let mut bad = Ip::udp(client(), server(), 20).client_frame();
    bad[24] ^= 0xff; // IPv4 header checksum
    t.push(0, &bad);
    t.step();
    t.push(0, &Ip::udp(client(), server(), 20).client_frame());
    t.step();
    let v = ask(&mut t, &svc, &rx, Verb::ShowTrace);
    let p = v["packets"].as_array().unwrap();
    assert_eq!(p.len(), 3, "{v}");
    assert_eq!(v["pending"], 0);
    let stages = |i: usize| -> Vec<(String, String)> {
        p[i]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stage"].as_str().unwrap().into(),
                    s["verdict"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let s0 = stages(0);
    assert_eq!(s0.len(), 5, "{s0:?}");
    assert!(s0[..4].iter().all(|s| s.1 == "pass"));
    assert_eq!(s0[4], ("ip4-rewrite".into(), "tx r1".into()));
    assert_eq!(p[0]["rx"], "r0");
    let input = p[0]["input"].as_str().unwrap();
    assert!(
        input.contains("IPv4 198.18.0.2 > 198.19.0.2 ttl 64") && input.ends_with("UDP 41000 > 53"),
        "{input}"
    );
    let output = p[0]["output"].as_str().unwrap();
    assert!(
        output.contains("IPv4 198.19.0.1 > 198.19.0.2 ttl 63"),
        "translated: {output}"
    );
    let s1 = stages(1);
    assert!(s1.last().unwrap().1.starts_with("punt "), "{s1:?}");
    assert!(p[1]["output"].is_null());
    let s2 = stages(2);
    assert_eq!(s2.last().unwrap().0, "ip4-input", "{s2:?}");
    assert!(s2.last().unwrap().1.starts_with("drop "), "{s2:?}");
    // The records stay for another look; a port filter skips r0's traffic.
    assert_eq!(
        ask(&mut t, &svc, &rx, Verb::ShowTrace)["packets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    ask(&mut t, &svc, &rx, add(2, Some("r1")));
    t.push(0, &Ip::udp(client(), server(), 20).client_frame());
    t.step();
    let v = ask(&mut t, &svc, &rx, Verb::ShowTrace);
    assert_eq!(
        (
            v["packets"].as_array().unwrap().len(),
            v["pending"].as_u64()
        ),
        (0, Some(2)),
        "{v}"
    );
    ask(&mut t, &svc, &rx, Verb::ClearTrace);
    assert_eq!(ask(&mut t, &svc, &rx, Verb::ShowTrace)["pending"], 0);
}

#[test]
fn route_get_names_the_gateway_a_flow_takes() {
    const ECMP: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = ["198.19.0.2", "198.19.0.3"]
weights = [1, 2]
"#;
    let macs = [
        (
            "198.19.0.2",
            xgw::wire::ethernet::MacAddr([2, 0x5e, 0, 0, 0, 0xa]),
        ),
        (
            "198.19.0.3",
            xgw::wire::ethernet::MacAddr([2, 0x5e, 0, 0, 0, 0xb]),
        ),
    ];
    let mut t = bed(ECMP);
    for (gw, mac) in macs {
        t.push(
            1,
            &arp_frame(
                xgw::wire::arp::Operation::Request,
                mac,
                ip(gw),
                xgw::wire::ethernet::MacAddr::ZERO,
                ip("198.19.0.1"),
                xgw::wire::ethernet::MacAddr::BROADCAST,
            ),
        );
    }
    t.step();
    let _ = t.take_tx(1);
    let (svc, rx) = service(&t);
    let mut seen = std::collections::HashSet::new();
    for sport in 40_000..40_032u16 {
        t.push(
            0,
            &Ip::udp_ports(client(), sport, ip("203.0.113.9"), 53, 8).client_frame(),
        );
        t.step();
        let tx = t.take_tx(1);
        assert_eq!(tx.len(), 1);
        let mac = xgw::wire::ethernet::Frame::new_checked(&tx[0][..])
            .unwrap()
            .dst_addr();
        let g = ask(
            &mut t,
            &svc,
            &rx,
            Verb::RouteGet {
                addr: "203.0.113.9".into(),
                flow: xgw::api::proto::FlowSpec {
                    from: Some(client().to_string()),
                    ipproto: Some("udp".into()),
                    sport: Some(sport),
                    dport: Some(53),
                },
            },
        );
        let via = g["via"].as_str().unwrap().to_owned();
        assert_eq!(
            macs.iter().find(|m| m.0 == via).map(|m| m.1),
            Some(mac),
            "route get says {via} for sport {sport}: {g}"
        );
        assert_eq!(g["dev"], "r1");
        assert_eq!(g["prefix"], "203.0.113.0/24");
        let nh = g["nexthops"].as_array().unwrap();
        assert_eq!(
            nh.iter()
                .map(|n| (n["via"].as_str().unwrap(), n["weight"].as_u64().unwrap()))
                .collect::<Vec<_>>(),
            vec![("198.19.0.2", 1), ("198.19.0.3", 2)]
        );
        assert!(nh.iter().all(|n| n["live"] == true));
        seen.insert(via);
    }
    assert_eq!(seen.len(), 2, "32 flows, one gateway: {seen:?}");
    // A malformed flow is refused by name.
    let bad = ask(
        &mut t,
        &svc,
        &rx,
        Verb::RouteGet {
            addr: "203.0.113.9".into(),
            flow: xgw::api::proto::FlowSpec {
                ipproto: Some("gre!".into()),
                ..Default::default()
            },
        },
    );
    assert_eq!(
        bad,
        "error: ipproto: `gre!` is not tcp, udp, icmp or a number"
    );
}
