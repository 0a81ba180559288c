//! The control socket's request and answer shapes (see the module docs of [`crate::api`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Longest request line accepted (bytes, newline included).
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version ([`VERSION`]).
    pub version: u32,
    /// What to do.
    #[serde(flatten)]
    pub verb: Verb,
}

/// Filters of `show nat sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionFilter {
    /// `tcp`, `udp` or `icmp`.
    pub proto: Option<String>,
    /// Inside `ADDR` or `ADDR:PORT`.
    pub inside: Option<String>,
    /// External `ADDR` or `ADDR:PORT`.
    pub external: Option<String>,
    /// At most this many sessions.
    pub limit: Option<u64>,
}

/// The verbs. Serialized as `"verb": "<snake_case name>", "args": {...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "verb",
    content = "args",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Verb {
    /// Ports: facts, traffic counters, AF_XDP statistics per queue.
    ShowInterfaces,
    /// Every drop and punt reason with its count.
    ShowErrors {
        /// One column per worker.
        #[serde(default)]
        per_worker: bool,
    },
    /// Per worker: loops, packets, mean burst, busy share.
    ShowRuntime,
    /// Routes (all, or those within / matching `prefix`).
    ShowRoute {
        /// `A.B.C.D/N`: that prefix and the routes inside it.
        #[serde(default)]
        prefix: Option<String>,
    },
    /// Route counts by prefix length and type.
    ShowRouteSummary,
    /// The route the running router uses for `addr`.
    RouteGet {
        /// Destination address.
        addr: String,
        /// The rest of the flow, for a multipath route: which gateway it takes.
        #[serde(default, flatten)]
        flow: FlowSpec,
    },
    /// Add a route at once (`via`, `dev`, or `type` = blackhole | unreachable | prohibit), validated
    /// as the file's routes are.
    RouteAdd {
        /// `A.B.C.D/N`, host bits clear.
        prefix: String,
        /// Next hop on a connected subnet.
        #[serde(default)]
        via: Option<String>,
        /// Interface (on-link route, or pins `via`).
        #[serde(default)]
        dev: Option<String>,
        /// `blackhole`, `unreachable` or `prohibit`.
        #[serde(default, rename = "type")]
        kind: Option<String>,
    },
    /// Remove a route added with `route_add`.
    RouteDel {
        /// The route's prefix.
        prefix: String,
    },
    /// The ARP cache.
    ShowNeighbors,
    /// Forget neighbours (of one port, or all).
    NeighborFlush {
        /// Port name.
        #[serde(default)]
        dev: Option<String>,
    },
    /// Remove the NAT sessions of one inside endpoint.
    NatDelSession {
        /// Inside `ADDR:PORT`.
        inside: String,
        /// `tcp`, `udp` or `icmp` (all if absent).
        #[serde(default)]
        proto: Option<String>,
    },
    /// NAT sessions (streamed).
    ShowNatSessions(SessionFilter),
    /// NAT aggregates: sessions by protocol and state, table fill, ports in use, ...
    ShowNatSummary,
    /// NAT mappings and forwards.
    ShowNatMappings,
    /// The running configuration and the last reload.
    ShowConfig,
    /// Re-read the configuration file (as SIGHUP), answering how it ended.
    Reload,
    /// Zero what `show errors`, `show interfaces` and `show runtime` count from (metrics
    /// stay monotonic).
    ClearCounters,
    /// Trace the next `count` packets received (on port `port`, or any).
    TraceAdd {
        /// Packets, 1..=1024.
        count: u32,
        /// Port name.
        #[serde(default)]
        port: Option<String>,
    },
    /// The packets traced: input, verdict per stage, rewrite, output.
    ShowTrace,
    /// Stop tracing, forget the records.
    ClearTrace,
}

/// The first line of every answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Protocol version.
    pub version: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// The answer (`ok` and not streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why not (`!ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Item lines follow (their kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

impl Header {
    /// A complete answer.
    pub fn result(v: Value) -> Header {
        Header {
            version: VERSION,
            ok: true,
            result: Some(v),
            error: None,
            stream: None,
        }
    }

    /// A refusal.
    pub fn error(msg: impl Into<String>) -> Header {
        Header {
            version: VERSION,
            ok: false,
            result: None,
            error: Some(msg.into()),
            stream: None,
        }
    }

    /// The start of a stream of `kind`.
    pub fn stream(kind: &str) -> Header {
        Header {
            version: VERSION,
            ok: true,
            result: None,
            error: None,
            stream: Some(kind.to_owned()),
        }
    }
}

/// Parse a request line: the version first, so a newer client gets a clear message.
///
/// # Errors
/// Not JSON, another version, an unknown verb, or bad arguments: the message says which.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON request: {e}"))?;
    match v.get("version").and_then(Value::as_u64) {
        Some(n) if n == u64::from(VERSION) => {}
        Some(n) => {
            return Err(format!(
                "protocol version {n} not supported (this xgw speaks {VERSION})"
            ))
        }
        None => return Err("request without a numeric \"version\"".into()),
    }
    match serde_json::from_value(v.clone()) {
        Ok(r) => Ok(r),
        // A verb whose arguments all have defaults may leave `args` out.
        Err(_) if v.get("args").is_none() && v.get("verb").is_some() => {
            let mut v = v;
            v["args"] = Value::Object(serde_json::Map::new());
            serde_json::from_value(v).map_err(|e| format!("bad request: {e}"))
        }
        Err(e) => Err(format!("bad request: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unit_verbs_need_no_args() {
        for verb in [
            Verb::ShowInterfaces,
            Verb::ShowErrors { per_worker: true },
            Verb::ShowRoute {
                prefix: Some("198.18.0.0/15".into()),
            },
            Verb::RouteGet {
                addr: "198.18.0.1".into(),
                flow: FlowSpec {
                    from: Some("198.18.0.2".into()),
                    ipproto: Some("udp".into()),
                    sport: Some(4000),
                    dport: Some(53),
                },
            },
            Verb::ShowNatSessions(SessionFilter {
                proto: Some("tcp".into()),
                limit: Some(3),
                ..SessionFilter::default()
            }),
            Verb::Reload,
        ] {
            let r = Request {
                version: VERSION,
                verb,
            };
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(parse_request(&line).unwrap(), r, "{line}");
        }
        assert_eq!(
            parse_request(r#"{"version":1,"verb":"show_interfaces"}"#)
                .unwrap()
                .verb,
            Verb::ShowInterfaces
        );
        assert_eq!(
            parse_request(r#"{"version":1,"verb":"show_errors"}"#)
                .unwrap()
                .verb,
            Verb::ShowErrors { per_worker: false }
        );
        assert_eq!(
            serde_json::to_string(&Request {
                version: 1,
                verb: Verb::RouteGet {
                    addr: "192.0.2.1".into(),
                    flow: FlowSpec::default(),
                }
            })
            .unwrap(),
            r#"{"version":1,"verb":"route_get","args":{"addr":"192.0.2.1"}}"#
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        for (line, want) in [
            ("", "not a JSON request"),
            ("{", "not a JSON request"),
            ("[1,2]", "numeric \"version\""),
            (r#"{"verb":"reload"}"#, "numeric \"version\""),
            (
                r#"{"version":2,"verb":"reload"}"#,
                "version 2 not supported",
            ),
            (r#"{"version":"1","verb":"reload"}"#, "numeric \"version\""),
            (r#"{"version":1,"verb":"format_disk"}"#, "bad request"),
            (r#"{"version":1}"#, "bad request"),
            (
                r#"{"version":1,"verb":"route_get","args":{}}"#,
                "bad request",
            ),
            (
                r#"{"version":1,"verb":"route_get","args":{"addr":5}}"#,
                "bad request",
            ),
            (
                r#"{"version":1,"verb":"show_nat_sessions","args":{"limit":-1}}"#,
                "bad request",
            ),
            (
                r#"{"version":1,"verb":"show_nat_sessions","args":{"colour":"red"}}"#,
                "bad request",
            ),
        ] {
            let e = parse_request(line).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
        }
    }

    #[test]
    fn headers_serialize_without_empty_fields() {
        assert_eq!(
            serde_json::to_string(&Header::error("no")).unwrap(),
            r#"{"version":1,"ok":false,"error":"no"}"#
        );
        assert_eq!(
            serde_json::to_string(&Header::stream("nat_sessions")).unwrap(),
            r#"{"version":1,"ok":true,"stream":"nat_sessions"}"#
        );
    }
}

/// A flow's fields beyond its destination (`xgw route get ADDR from SRC ipproto P sport N
/// dport N`): what an ECMP route hashes. Missing fields count as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpec {
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Protocol: `tcp`, `udp`, `icmp` or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipproto: Option<String>,
    /// Source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
}
