//! The long listings: NAT sessions and routes, streamed from shared state on the
//! connection's thread (no copy of the table, nothing held that the writer waits on).

use std::{
    collections::BTreeMap,
    io::{self, Write},
    net::{Ipv4Addr, SocketAddrV4},
};

use serde_json::{json, Value};

use super::{write_line, Service};
use crate::{
    api::proto::{Header, SessionFilter},
    dataplane::NextHop,
    fib::Prefix,
    nat::{
        flow::{proto, FlowKey, Rewrite},
        table::SessionIndex,
        tcp::TcpState,
    },
};

/// `tcp`, `udp`, `icmp`, or the number.
pub(super) fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "tcp".into(),
        proto::UDP => "udp".into(),
        proto::ICMP => "icmp".into(),
        n => n.to_string(),
    }
}

/// The protocol number of `tcp`, `udp` or `icmp`.
pub(super) fn proto_number(p: &str) -> Result<u8, String> {
    match p {
        "tcp" => Ok(proto::TCP),
        "udp" => Ok(proto::UDP),
        "icmp" => Ok(proto::ICMP),
        p => Err(format!("--proto: `{p}` is not tcp, udp or icmp")),
    }
}

/// An `ADDR` or `ADDR:PORT` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    addr: Ipv4Addr,
    port: Option<u16>,
}

impl Endpoint {
    fn parse(field: &str, s: &str) -> Result<Endpoint, String> {
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            return Ok(Endpoint {
                addr: a,
                port: None,
            });
        }
        s.parse::<SocketAddrV4>()
            .map(|sa| Endpoint {
                addr: *sa.ip(),
                port: Some(sa.port()),
            })
            .map_err(|_| format!("--{field}: `{s}` is not ADDR or ADDR:PORT"))
    }

    fn matches(&self, addr: Ipv4Addr, port: u16) -> bool {
        self.addr == addr && self.port.is_none_or(|p| p == port)
    }
}

/// A parsed [`SessionFilter`].
#[derive(Debug, Clone, Copy)]
struct Filter {
    proto: Option<u8>,
    inside: Option<Endpoint>,
    external: Option<Endpoint>,
    limit: u64,
}

impl Filter {
    fn parse(f: &SessionFilter) -> Result<Filter, String> {
        let proto = f.proto.as_deref().map(proto_number).transpose()?;
        Ok(Filter {
            proto,
            inside: f
                .inside
                .as_deref()
                .map(|s| Endpoint::parse("inside", s))
                .transpose()?,
            external: f
                .external
                .as_deref()
                .map(|s| Endpoint::parse("external", s))
                .transpose()?,
            limit: f.limit.unwrap_or(u64::MAX),
        })
    }

    fn matches(&self, k: &FlowKey, r: &Rewrite) -> bool {
        self.proto.is_none_or(|p| p == k.proto)
            && self.inside.is_none_or(|e| e.matches(k.src, k.sport))
            && self.external.is_none_or(|e| e.matches(r.src, r.sport))
    }
}

/// A session as listed: inside `k.src:k.sport`, external `r.src:r.sport`, remote the
/// destination the inside host addressed (`k.dst:k.dport`; for a hairpin, the external
/// endpoint of the other inside host).
fn session_json(k: &FlowKey, r: &Rewrite, state: u8, idle: u32) -> Value {
    let state = if k.proto == proto::TCP {
        TcpState::from_u8(state).name()
    } else {
        "-"
    };
    json!({
        "proto": proto_name(k.proto),
        "inside": format!("{}:{}", k.src, k.sport),
        "external": format!("{}:{}", r.src, r.sport),
        "remote": format!("{}:{}", k.dst, k.dport),
        "state": state,
        "idle": idle,
    })
}

/// `show nat sessions`: walk the table's slots with the lock-free reader, writing each
/// match as it is found (a 1M-session listing holds one session at a time).
pub(super) fn nat_sessions(
    svc: &Service,
    f: &SessionFilter,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(nat) = svc.nat_fast() else {
        return write_line(out, &Header::error("NAT is not configured ([nat])"));
    };
    let filter = match Filter::parse(f) {
        Ok(f) => f,
        Err(e) => return write_line(out, &Header::error(e)),
    };
    write_line(out, &Header::stream("nat_sessions"))?;
    let now = secs_since(svc.inv.epoch);
    let (mut count, mut truncated) = (0u64, false);
    let mut w = io::BufWriter::new(out);
    for i in 0..nat.sessions.capacity() {
        let Some((k, r, state, seen)) = nat.sessions.get(SessionIndex(i)) else {
            continue;
        };
        if !filter.matches(&k, &r) {
            continue;
        }
        if count == filter.limit {
            truncated = true;
            break;
        }
        count += 1;
        let item = json!({"item": session_json(&k, &r, state, now.saturating_sub(seen))});
        write_line(&mut w, &item)?;
    }
    write_line(
        &mut w,
        &json!({"end": {"count": count, "truncated": truncated}}),
    )?;
    w.flush()
}

fn secs_since(epoch: std::time::Instant) -> u32 {
    u32::try_from(epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
}

/// `show nat summary`: the policy's aggregates (a job) and a walk of the table for the
/// sessions by protocol and TCP state.
pub(super) fn nat_summary(svc: &Service) -> Result<Value, String> {
    let Some(nat) = svc.nat_fast() else {
        return Err("NAT is not configured ([nat])".into());
    };
    let s = svc
        .call(|cx| cx.ctl.plane.nat().map(|n| n.summary()))?
        .ok_or("NAT is not configured ([nat])")?;
    let mut by_proto: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    for i in 0..nat.sessions.capacity() {
        if let Some((k, _, state, _)) = nat.sessions.get(SessionIndex(i)) {
            *by_proto.entry(proto_name(k.proto)).or_default() += 1;
            if k.proto == proto::TCP {
                *by_state.entry(TcpState::from_u8(state).name()).or_default() += 1;
            }
        }
    }
    let ports: Vec<Value> = s
        .ports_in_use
        .iter()
        .map(|(a, p, n)| json!({"address": a.to_string(), "proto": proto_name(*p), "ports": n}))
        .collect();
    Ok(json!({
        "sessions": s.sessions,
        "capacity": s.capacity,
        "fill": if s.capacity == 0 { 0.0 } else { s.sessions as f64 / f64::from(s.capacity) },
        "by_proto": by_proto,
        "tcp_states": by_state,
        "ports_in_use": ports,
        "quarantined_ports": s.quarantined,
        "held_syns": s.held_syns,
        "reassembly_bytes": s.reassembly_bytes,
        "mappings": s.mappings,
        "forwards": s.forwards,
    }))
}

/// Where routes came from, for `show route`'s `source`.
#[derive(Debug, Default)]
struct Origins {
    /// The prefixes of the ports' addresses.
    connected: Vec<Prefix>,
    /// The prefixes `route add` added.
    runtime: Vec<Prefix>,
    /// The configuration's `[[route]]` prefixes.
    config: Vec<Prefix>,
    /// Kernel mirror mode: the rest are the kernel's.
    mirror: bool,
}

/// One route as `show route` lists it.
fn route_json(p: Prefix, nh: &NextHop, names: &[String], o: &Origins, groups: &Groups) -> Value {
    let (connected, runtime) = (&o.connected, &o.runtime);
    let name = |port: u16| names.get(usize::from(port)).cloned();
    let mut nexthops = None;
    let (kind, via, dev, source) = match *nh {
        NextHop::Via { gateway, port } => {
            ("unicast", Some(gateway.to_string()), name(port), "static")
        }
        NextHop::Connected { port } if connected.contains(&p) => {
            ("unicast", None, name(port), "connected")
        }
        NextHop::Connected { port } => ("unicast", None, name(port), "static"),
        NextHop::Local => ("local", None, None, "local"),
        NextHop::Broadcast { port } => ("broadcast", None, name(port), "connected"),
        NextHop::Blackhole => ("blackhole", None, None, "static"),
        NextHop::Unreachable => ("unreachable", None, None, "static"),
        NextHop::Prohibit => ("prohibit", None, None, "static"),
        NextHop::Group { id } => {
            // A multipath route: its gateways joined in `via`/`dev`, and each in `nexthops`.
            let members = groups.get(id as usize).map_or(&[][..], Vec::as_slice);
            let (mut vias, mut devs) = (Vec::new(), Vec::new());
            for &(m, _) in members {
                if let NextHop::Via { gateway, port } = m {
                    vias.push(gateway.to_string());
                    devs.push(name(port).unwrap_or_default());
                }
            }
            devs.dedup();
            nexthops = Some(super::nexthops_json(members, names, None));
            (
                "unicast",
                Some(vias.join(",")),
                Some(devs.join(",")),
                "static",
            )
        }
    };
    let source = if runtime.contains(&p) {
        "runtime"
    } else if o.mirror && source == "static" && !o.config.contains(&p) {
        "kernel"
    } else {
        source
    };
    let mut v =
        json!({"prefix": p.to_string(), "type": kind, "via": via, "dev": dev, "source": source});
    if let Some(list) = nexthops {
        v["nexthops"] = list;
    }
    v
}

/// What the route listings need, copied from the control plane by a job (the route set
/// itself is shared, not copied).
type RouteView = (
    std::sync::Arc<crate::fib::FibBuilder>,
    Vec<NextHop>,
    Vec<String>,
    Origins,
    Groups,
);

/// Per ECMP group, its gateways and weights.
type Groups = Vec<Vec<(NextHop, u8)>>;

fn route_view(svc: &Service) -> Result<RouteView, String> {
    svc.call(|cx| {
        let plane = &cx.ctl.plane;
        let routes = plane.routes();
        let connected = plane
            .ports()
            .iter()
            .flat_map(|p| p.addresses.iter())
            .map(|c| Prefix::new(c.network().address(), c.prefix_len()))
            .collect();
        let prefixes = |v: &[crate::config::Route]| -> Vec<Prefix> {
            v.iter()
                .map(|r| Prefix::new(r.prefix.address(), r.prefix.prefix_len()))
                .collect()
        };
        let origins = Origins {
            connected,
            runtime: prefixes(plane.runtime_routes()),
            config: prefixes(&plane.config().routes),
            mirror: plane.mirror().is_some(),
        };
        let groups = (0..routes.groups().len())
            .map(|id| routes.group_members(u32::try_from(id).unwrap_or(u32::MAX)))
            .collect();
        (
            routes.route_set(),
            routes.nexthops().to_vec(),
            plane.ports().iter().map(|p| p.name.clone()).collect(),
            origins,
            groups,
        )
    })
}

/// `show route [PREFIX]`: every route, or those equal to or inside PREFIX, streamed.
pub(super) fn routes(svc: &Service, prefix: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let within = match prefix.map(str::parse::<Prefix>).transpose() {
        Ok(p) => p,
        Err(e) => {
            return write_line(
                out,
                &Header::error(format!("{}: {e}", prefix.unwrap_or(""))),
            )
        }
    };
    let (set, nexthops, names, origins, groups) = match route_view(svc) {
        Ok(v) => v,
        Err(e) => return write_line(out, &Header::error(e)),
    };
    write_line(out, &Header::stream("routes"))?;
    let mut w = io::BufWriter::new(out);
    let mut count = 0u64;
    for (p, v) in set.iter() {
        if within.is_some_and(|w| !(w.len() <= p.len() && w.contains(p.addr()))) {
            continue;
        }
        let Some(nh) = nexthops.get(v as usize) else {
            continue;
        };
        count += 1;
        write_line(
            &mut w,
            &json!({"item": route_json(p, nh, &names, &origins, &groups)}),
        )?;
    }
    write_line(
        &mut w,
        &json!({"end": {"count": count, "truncated": false}}),
    )?;
    w.flush()
}

/// `show route summary`: routes by type and by prefix length.
pub(super) fn route_summary(svc: &Service) -> Result<Value, String> {
    let (set, nexthops, names, origins, groups) = route_view(svc)?;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_len: BTreeMap<u8, u64> = BTreeMap::new();
    let mut total = 0u64;
    for (p, v) in set.iter() {
        let Some(nh) = nexthops.get(v as usize) else {
            continue;
        };
        let r = route_json(p, nh, &names, &origins, &groups);
        let key = format!(
            "{}/{}",
            r["type"].as_str().unwrap_or("?"),
            r["source"].as_str().unwrap_or("?")
        );
        *by_type.entry(key).or_default() += 1;
        *by_len.entry(p.len()).or_default() += 1;
        total += 1;
    }
    let lens: BTreeMap<String, u64> = by_len
        .into_iter()
        .map(|(l, n)| (format!("/{l}"), n))
        .collect();
    Ok(json!({"routes": total, "by_type": by_type, "by_length": lens, "next_hops": nexthops.len()}))
}
