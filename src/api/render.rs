//! Human tables for the CLI, from the JSON answers (the `--json` form is the answer as is).
//! Pure functions of the answer, so their output is tested byte for byte.

use std::fmt::Write;

use serde_json::Value;

use super::{client::Answer, proto::Verb};

/// Columns left-aligned, separated by two spaces, headers first; the last column is not
/// padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 < w.len() {
                let _ = write!(l, "{c:<width$}  ", width = w[i]);
            } else {
                l.push_str(c);
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut headers.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    s
}

/// A JSON value as a cell: strings bare, null as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

fn rows(items: &[Value], keys: &[&str]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|it| keys.iter().map(|k| cell(&it[*k])).collect())
        .collect()
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Key/value lines for a flat object (nested objects as `key.sub`).
fn pairs(v: &Value, prefix: &str, out: &mut String) {
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Object(_) => pairs(x, &name, out),
                Value::Array(a) if a.iter().any(Value::is_object) => {
                    for (i, e) in a.iter().enumerate() {
                        pairs(e, &format!("{name}[{i}]"), out);
                    }
                }
                _ => {
                    let _ = writeln!(out, "{name}: {}", cell(x));
                }
            }
        }
    }
}

/// `show trace` as VPP prints it: per packet its arrival, then each stage it crossed with
/// its verdict, then what left.
fn trace(v: &Value) -> String {
    let mut s = String::new();
    for p in array(&v["packets"]) {
        let _ = writeln!(
            s,
            "Packet {} (worker {}, {:.6} s)\n  {} rx: {}",
            p["seq"],
            p["worker"],
            p["time"].as_f64().unwrap_or(0.0),
            p["rx"].as_str().unwrap_or("?"),
            p["input"].as_str().unwrap_or("")
        );
        for st in array(&p["stages"]) {
            let _ = writeln!(
                s,
                "  {:<15} {}",
                st["stage"].as_str().unwrap_or(""),
                st["verdict"].as_str().unwrap_or("")
            );
        }
        if let Some(o) = p["output"].as_str() {
            let _ = writeln!(s, "  out: {o}");
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "{} packets traced, {} still to trace, {} lost",
        array(&v["packets"]).len(),
        v["pending"],
        v["lost"]
    );
    s
}

/// The table (or text) the CLI prints for `verb`'s answer.
pub fn render(verb: &Verb, a: &Answer) -> String {
    let (v, items) = match a {
        Answer::Result(v) => (v, &[][..]),
        Answer::Items { items, .. } => (&Value::Null, items.as_slice()),
    };
    let mut s = match verb {
        Verb::ShowInterfaces => interfaces(v),
        Verb::ShowErrors { per_worker } => errors(v, *per_worker),
        Verb::ShowRuntime => table(
            &[
                "WORKER",
                "LOOPS",
                "BUSY-LOOPS",
                "RX",
                "TX",
                "INJECTED",
                "MEAN-BURST",
                "BUSY",
            ],
            &array(v)
                .iter()
                .map(|w| {
                    let mut r = rows(
                        std::slice::from_ref(w),
                        &[
                            "worker",
                            "loops",
                            "busy_loops",
                            "rx_packets",
                            "tx_packets",
                            "injected",
                            "mean_burst",
                        ],
                    )
                    .remove(0);
                    r.push(format!(
                        "{:.1}%",
                        w["busy_share"].as_f64().unwrap_or(0.0) * 100.0
                    ));
                    r
                })
                .collect::<Vec<_>>(),
        ),
        Verb::ShowRoute { .. } => table(
            &["PREFIX", "TYPE", "VIA", "DEV", "SOURCE"],
            &rows(items, &["prefix", "type", "via", "dev", "source"]),
        ),
        Verb::RouteGet { .. } => route_line(v),
        Verb::ShowNeighbors => table(
            &["ADDRESS", "MAC", "DEV", "STATE", "AGE", "PINNED"],
            &array(v)
                .iter()
                .map(|n| {
                    let mut r = rows(std::slice::from_ref(n), &["address", "mac", "dev", "state"])
                        .remove(0);
                    r.push(format!(
                        "{:.1}s",
                        n["age_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
                    ));
                    r.push(
                        if n["pinned"] == Value::Bool(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                    );
                    r
                })
                .collect::<Vec<_>>(),
        ),
        Verb::ShowNatSessions(_) => table(
            &["PROTO", "INSIDE", "EXTERNAL", "REMOTE", "STATE", "IDLE"],
            &rows(
                items,
                &["proto", "inside", "external", "remote", "state", "idle"],
            ),
        ),
        Verb::ShowNatMappings => table(
            &["PROTO", "INSIDE", "EXTERNAL", "SESSIONS", "KIND"],
            &rows(
                array(v),
                &["proto", "inside", "external", "sessions", "kind"],
            ),
        ),
        Verb::ShowConfig => {
            let mut s = String::new();
            let meta: serde_json::Map<String, Value> = v
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "text")
                        .map(|(k, x)| (k.clone(), x.clone()))
                        .collect()
                })
                .unwrap_or_default();
            pairs(&Value::Object(meta), "", &mut s);
            s.push_str("---\n");
            s.push_str(v["text"].as_str().unwrap_or(""));
            s
        }
        Verb::Reload => format!("{}\n", v["message"].as_str().unwrap_or("applied")),
        Verb::ClearCounters => "counters cleared\n".into(),
        Verb::TraceAdd { .. } => format!(
            "tracing the next {} packets{}\n",
            v["armed"],
            v["port"]
                .as_str()
                .map_or(String::new(), |p| format!(" received on {p}"))
        ),
        Verb::ShowTrace => trace(v),
        Verb::ClearTrace => "trace cleared\n".into(),
        Verb::RouteAdd { .. }
        | Verb::RouteDel { .. }
        | Verb::NeighborFlush { .. }
        | Verb::NatDelSession { .. } => {
            format!("{}\n", v["message"].as_str().unwrap_or("done"))
        }
        Verb::ShowRouteSummary | Verb::ShowNatSummary => {
            let mut s = String::new();
            pairs(v, "", &mut s);
            s
        }
    };
    if let Answer::Items {
        truncated: true,
        items,
        ..
    } = a
    {
        let _ = writeln!(s, "(first {} shown: --limit)", items.len());
    }
    s
}

fn route_line(v: &Value) -> String {
    let mut s = cell(&v["dst"]);
    let kind = v["type"].as_str().unwrap_or("unicast");
    if kind != "unicast" {
        let _ = write!(s, " {kind}");
    }
    if let Some(via) = v["via"].as_str() {
        let _ = write!(s, " via {via}");
    }
    if let Some(dev) = v["dev"].as_str() {
        let _ = write!(s, " dev {dev}");
    }
    let _ = writeln!(s, " prefix {}", cell(&v["prefix"]));
    // A multipath route: every gateway (the line above names the one this flow takes).
    for nh in array(&v["nexthops"]) {
        let _ = writeln!(
            s,
            "    nexthop via {} dev {} weight {}{}",
            cell(&nh["via"]),
            cell(&nh["dev"]),
            cell(&nh["weight"]),
            if nh["live"] == Value::Bool(false) {
                " (failed)"
            } else {
                ""
            }
        );
    }
    s
}

fn interfaces(v: &Value) -> String {
    let ports = array(v);
    let mut s = table(
        &[
            "NAME", "IFINDEX", "MAC", "MTU", "STATE", "QUEUES", "XDP", "TX", "RX-PKTS", "RX-BYTES",
            "TX-PKTS", "TX-BYTES", "DROPS",
        ],
        &rows(
            ports,
            &[
                "name",
                "ifindex",
                "mac",
                "mtu",
                "state",
                "queues",
                "xdp_mode",
                "tx_path",
                "rx_packets",
                "rx_bytes",
                "tx_packets",
                "tx_bytes",
                "drops",
            ],
        ),
    );
    for p in ports {
        let _ = writeln!(s, "\n{}: {}", cell(&p["name"]), cell(&p["addresses"]));
        s.push_str(&table(
            &[
                "QUEUE",
                "RX-DROPPED",
                "RX-RING-FULL",
                "FILL-EMPTY",
                "TX-EMPTY",
                "RX-INVALID",
                "TX-INVALID",
            ],
            &rows(
                array(&p["xsk"]),
                &[
                    "queue",
                    "rx_dropped",
                    "rx_ring_full",
                    "fill_ring_empty",
                    "tx_ring_empty",
                    "rx_invalid_descs",
                    "tx_invalid_descs",
                ],
            ),
        ));
    }
    s
}

fn errors(v: &Value, per_worker: bool) -> String {
    let counters = array(&v["counters"]);
    if counters.is_empty() {
        return "(all counters zero)\n".into();
    }
    let workers = v["workers"].as_u64().unwrap_or(0) as usize;
    let mut headers = vec!["COUNT".to_owned(), "NAME".into()];
    if per_worker {
        headers.extend((0..workers).map(|w| format!("W{w}")));
    }
    headers.push("DESCRIPTION".into());
    let body: Vec<Vec<String>> = counters
        .iter()
        .map(|c| {
            let mut r = vec![cell(&c["count"]), cell(&c["name"])];
            if per_worker {
                let per = array(&c["per_worker"]);
                r.extend((0..workers).map(|w| per.get(w).map_or_else(|| "-".into(), cell)));
            }
            r.push(cell(&c["description"]));
            r
        })
        .collect();
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&h, &body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn table_aligns_and_trims() {
        let t = table(
            &["A", "LONGER", "Z"],
            &[
                vec!["xxxx".into(), "1".into(), "end".into()],
                vec!["y".into(), "".into(), "".into()],
            ],
        );
        assert_eq!(t, "A     LONGER  Z\nxxxx  1       end\ny\n");
    }

    #[test]
    fn trace_golden() {
        let a = Answer::Result(json!({"pending": 1, "lost": 0, "packets": [{
            "seq": 0, "worker": 0, "time": 1.5, "rx": "r0", "len": 42,
            "input": "42 bytes a > b IPv4 198.18.0.2 > 198.19.0.2 ttl 64 id 1 len 28 ICMP echo request id 1 seq 1",
            "stages": [{"stage": "ethernet-input", "verdict": "pass"}, {"stage": "ip4-rewrite", "verdict": "tx r1"}],
            "result": "tx r1",
            "output": "42 bytes c > d IPv4 198.18.0.2 > 198.19.0.2 ttl 63 id 1 len 28 ICMP echo request id 1 seq 1"}]}));
        assert_eq!(
            render(&Verb::ShowTrace, &a),
            "Packet 0 (worker 0, 1.500000 s)\n  \
             r0 rx: 42 bytes a > b IPv4 198.18.0.2 > 198.19.0.2 ttl 64 id 1 len 28 ICMP echo request id 1 seq 1\n  \
             ethernet-input  pass\n  \
             ip4-rewrite     tx r1\n  \
             out: 42 bytes c > d IPv4 198.18.0.2 > 198.19.0.2 ttl 63 id 1 len 28 ICMP echo request id 1 seq 1\n\n\
             1 packets traced, 1 still to trace, 0 lost\n"
        );
    }

    #[test]
    fn sessions_and_route_get_golden() {
        let a = Answer::Items {
            kind: "nat_sessions".into(),
            items: vec![
                json!({"proto":"udp","inside":"198.18.0.2:4000","external":"198.19.0.1:4000",
                "remote":"198.19.0.2:53","state":"-","idle":3}),
            ],
            truncated: true,
        };
        assert_eq!(
            render(&Verb::ShowNatSessions(Default::default()), &a),
            "PROTO  INSIDE           EXTERNAL         REMOTE         STATE  IDLE\n\
             udp    198.18.0.2:4000  198.19.0.1:4000  198.19.0.2:53  -      3\n\
             (first 1 shown: --limit)\n"
        );
        let g = Answer::Result(
            json!({"dst":"203.0.113.9","prefix":"0.0.0.0/0","via":"198.19.0.2","dev":"r1","type":"unicast"}),
        );
        assert_eq!(
            render(
                &Verb::RouteGet {
                    addr: String::new(),
                    flow: Default::default(),
                },
                &g
            ),
            "203.0.113.9 via 198.19.0.2 dev r1 prefix 0.0.0.0/0\n"
        );
        let b = Answer::Result(
            json!({"dst":"198.51.100.1","prefix":"198.51.100.0/24","via":null,"dev":null,"type":"blackhole"}),
        );
        assert_eq!(
            render(
                &Verb::RouteGet {
                    addr: String::new(),
                    flow: Default::default(),
                },
                &b
            ),
            "198.51.100.1 blackhole prefix 198.51.100.0/24\n"
        );
    }

    #[test]
    fn errors_per_worker_and_empty() {
        let v = json!({"workers": 2, "counters": [
            {"kind":"drop","name":"ip4_input.bad_checksum","count":3,"description":"bad","per_worker":[1,2]}]});
        assert_eq!(
            render(&Verb::ShowErrors { per_worker: true }, &Answer::Result(v)),
            "COUNT  NAME                    W0  W1  DESCRIPTION\n3      ip4_input.bad_checksum  1   2   bad\n"
        );
        let e = json!({"workers": 1, "counters": []});
        assert_eq!(
            render(&Verb::ShowErrors { per_worker: false }, &Answer::Result(e)),
            "(all counters zero)\n"
        );
    }

    #[test]
    fn malformed_answers_render_without_panicking() {
        for v in [
            json!(null),
            json!(5),
            json!("x"),
            json!([1, {"a": []}]),
            json!({"counters": 7}),
            json!({"packets": [{"stages": 3}, 4]}),
        ] {
            for verb in [
                Verb::ShowInterfaces,
                Verb::ShowErrors { per_worker: true },
                Verb::ShowRuntime,
                Verb::ShowNeighbors,
                Verb::ShowNatMappings,
                Verb::ShowConfig,
                Verb::ShowNatSummary,
                Verb::ShowTrace,
                Verb::TraceAdd {
                    count: 1,
                    port: None,
                },
                Verb::RouteGet {
                    addr: String::new(),
                    flow: Default::default(),
                },
            ] {
                let _ = render(&verb, &Answer::Result(v.clone()));
            }
        }
    }
}
