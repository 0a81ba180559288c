//! Answers to the control socket's verbs. State that is safe to read from any thread is
//! read here, on the connection's thread: the workers' counter blocks, the AF_XDP socket
//! statistics, the NAT session table (its lock-free reader) and the route set (an `Arc`
//! of the control plane's). Everything else is a [`Job`] run by the control thread between
//! two steps ([`ControlCtx`]), which copies out a small answer; a job that cannot be
//! queued, or is not answered within [`JOB_TIMEOUT`], fails with "busy".

use std::{
    collections::HashMap,
    io::{self, Write},
    net::Ipv4Addr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::proto::{FlowSpec, Header, Verb};
use crate::{
    config,
    control::{event_loop::ControlLoop, routes::RouteInfo},
    dataplane::{
        counters::{ClassEvent, CounterEnum, PortCounter},
        DropReason, Event, LocalCounters, NatFast, NextHop, PortInfo, PuntReason, SharedCounters,
    },
    io::xsk_stats::{XskStats, XskStatsReader},
    wire::ipv4::Cidr,
};

mod listing;
mod metrics;
mod trace;

/// How long a connection waits for the control thread to run its job.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(5);

/// Jobs queued for the control thread at most (more: "busy").
pub const JOB_QUEUE: usize = 64;

/// Jobs the control thread runs per round at most.
pub const JOBS_PER_STEP: usize = 8;

/// `(name, value, description)`, as the counter dumps list them.
pub type CounterLine = (&'static str, u64, &'static str);

/// The configuration the router runs with, and how its last reload ended.
#[derive(Debug, Clone)]
pub struct ConfigState {
    /// The file it was read from (re-read by `reload` and SIGHUP).
    pub path: Option<PathBuf>,
    /// Its text as applied.
    pub text: String,
    /// 1 at start, +1 per applied reload.
    pub generation: u64,
    /// When the running configuration was applied.
    pub applied_at: SystemTime,
    /// The last reload: when, and how it ended.
    pub last_reload: Option<(SystemTime, Result<(), String>)>,
    /// Mirror mode: the kernel's addresses the file is checked against.
    pub kernel_addresses: Option<config::KernelAddresses>,
}

impl ConfigState {
    /// The state at start.
    pub fn new(path: Option<PathBuf>, text: String) -> Self {
        ConfigState {
            path,
            text,
            generation: 1,
            applied_at: SystemTime::now(),
            last_reload: None,
            kernel_addresses: None,
        }
    }
}

/// Told when a reload starts (`None`) and how it ended.
pub type ReloadHook<'a> = dyn FnMut(Option<&Result<String, String>>) + 'a;

/// What a job may touch: the control loop (and its control plane) and the configuration
/// state, plus the steering program's counters (read when the job is run).
pub struct ControlCtx<'a> {
    /// The control loop.
    pub ctl: &'a mut ControlLoop,
    /// The running configuration.
    pub config: &'a mut ConfigState,
    /// The XDP program's counters, as counter lines.
    pub xdp_lines: &'a dyn Fn() -> Vec<CounterLine>,
    /// Told when a reload starts (`None`) and how it ended (systemd's RELOADING=1/READY=1).
    pub reload_hook: &'a mut ReloadHook<'a>,
}

impl std::fmt::Debug for ControlCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlCtx").finish_non_exhaustive()
    }
}

/// A request's share of work on the control thread.
pub type Job = Box<dyn FnOnce(&mut ControlCtx<'_>) + Send>;

/// The control thread's job queue: the service's end.
#[derive(Clone)]
pub struct JobSender {
    tx: Sender<Job>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for JobSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSender")
            .field("queued", &self.tx.len())
            .finish_non_exhaustive()
    }
}

/// A job queue of [`JOB_QUEUE`] jobs; `wake` rings the control thread after a submit.
pub fn job_queue(wake: Arc<dyn Fn() + Send + Sync>) -> (JobSender, Receiver<Job>) {
    let (tx, rx) = bounded(JOB_QUEUE);
    (JobSender { tx, wake }, rx)
}

/// Run up to [`JOBS_PER_STEP`] queued jobs (the control thread, between steps). Returns
/// how many ran.
pub fn run_jobs(rx: &Receiver<Job>, cx: &mut ControlCtx<'_>) -> usize {
    let mut n = 0;
    while n < JOBS_PER_STEP {
        let Ok(job) = rx.try_recv() else { break };
        job(cx);
        n += 1;
    }
    n
}

/// Re-read the configuration file and apply it (`xgw reload`, SIGHUP): what changed is in
/// effect when this returns `Ok`, and nothing changed when it returns `Err` (the reason).
///
/// # Errors
/// No file, a file that does not load, or a change that cannot be made while running.
pub fn reload(cx: &mut ControlCtx<'_>) -> Result<String, String> {
    (cx.reload_hook)(None);
    let result = reload_inner(cx);
    (cx.reload_hook)(Some(&result));
    cx.config.last_reload = Some((
        SystemTime::now(),
        result.as_ref().map(|_| ()).map_err(Clone::clone),
    ));
    result
}

fn reload_inner(cx: &mut ControlCtx<'_>) -> Result<String, String> {
    let Some(path) = cx.config.path.clone() else {
        return Err("xgw runs without a configuration file: nothing to reload".into());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg = config::parse_with(
        &text,
        &path.display().to_string(),
        cx.config.kernel_addresses.as_ref(),
    )
    .map_err(|e| e.to_string())?;
    cx.ctl.plane.reload(&cfg)?;
    cx.config.text = text;
    cx.config.generation += 1;
    cx.config.applied_at = SystemTime::now();
    Ok(format!(
        "{}: applied (generation {})",
        path.display(),
        cx.config.generation
    ))
}

/// What the runtime knows about one port beyond [`PortInfo`].
#[derive(Debug, Clone)]
pub struct PortFacts {
    /// Names, MAC, MTU, addresses.
    pub info: PortInfo,
    /// Kernel interface index.
    pub ifindex: u32,
    /// `native` or `generic`.
    pub xdp_mode: String,
    /// `auto` or `af_xdp`.
    pub tx_path: String,
}

/// Facts fixed at start and the lock-free state the service reads itself.
#[derive(Debug)]
pub struct Inventory {
    /// The ports, in port-id order.
    pub ports: Vec<PortFacts>,
    /// The workers' counter blocks (worker i serves queue i).
    pub workers: Vec<Arc<SharedCounters>>,
    /// The AF_XDP sockets' statistics (`[queue][port]`).
    pub xsk: XskStatsReader,
    /// The NAT's lock-free view (the current one: a reload may replace it).
    pub nat: crate::control::NatView,
    /// The control plane's epoch (NAT session times count from it).
    pub epoch: Instant,
    /// When xgw started.
    pub started: SystemTime,
    /// The workers' packet trace.
    pub trace: Arc<crate::dataplane::trace::Trace>,
}

/// What `clear counters` zeroed from.
#[derive(Debug, Default)]
struct Baseline {
    workers: Vec<LocalCounters>,
    control: HashMap<&'static str, u64>,
    xsk: HashMap<(usize, usize), XskStats>,
    at: Option<SystemTime>,
}

/// The verbs' implementation.
#[derive(Debug)]
pub struct Service {
    inv: Inventory,
    jobs: JobSender,
    baseline: Mutex<Baseline>,
    /// Packet-trace records read out so far (see `trace`).
    traces: Mutex<Vec<crate::dataplane::trace::TraceRecord>>,
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn write_line(out: &mut dyn Write, v: &impl serde::Serialize) -> io::Result<()> {
    let mut s = serde_json::to_string(v).map_err(io::Error::other)?;
    s.push('\n');
    out.write_all(s.as_bytes())
}

/// The control-plane counters `show errors` lists (beside the workers'), from a job.
fn control_lines(cx: &ControlCtx<'_>) -> Vec<CounterLine> {
    let mut v = cx.ctl.plane.counter_lines();
    v.extend((cx.xdp_lines)());
    v.extend(cx.ctl.handled_lines());
    v.push((
        "control.inject_dropped",
        cx.ctl.inject_dropped,
        "control-plane frames dropped: a worker's inject queue was full",
    ));
    v
}

/// The first bytes of the IPv4 packet `flow` describes (header and ports), to hash as
/// the workers would.
fn flow_probe(dst: Ipv4Addr, flow: &FlowSpec) -> Result<Vec<u8>, String> {
    let src: Ipv4Addr = match &flow.from {
        Some(s) => s
            .parse()
            .map_err(|_| format!("from: `{s}` is not an IPv4 address"))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    let proto: u8 = match flow.ipproto.as_deref() {
        None => 0,
        Some("tcp") => 6,
        Some("udp") => 17,
        Some("icmp") => 1,
        Some(n) => n
            .parse()
            .map_err(|_| format!("ipproto: `{n}` is not tcp, udp, icmp or a number"))?,
    };
    let mut p = vec![0u8; 24];
    p[0] = 0x45;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&flow.sport.unwrap_or(0).to_be_bytes());
    p[22..24].copy_from_slice(&flow.dport.unwrap_or(0).to_be_bytes());
    Ok(p)
}

/// An ECMP group's gateways as `route get` and `show route` list them: `via`, `dev`,
/// `weight`, and `live` when known (false: the gateway holds no bucket now).
fn nexthops_json(members: &[(NextHop, u8)], names: &[String], live: Option<&[bool]>) -> Value {
    members
        .iter()
        .enumerate()
        .map(|(k, &(nh, weight))| {
            let (via, dev) = match nh {
                NextHop::Via { gateway, port } => (
                    Some(gateway.to_string()),
                    names.get(usize::from(port)).cloned(),
                ),
                _ => (None, None),
            };
            let mut v = json!({"via": via, "dev": dev, "weight": weight});
            if let Some(l) = live.and_then(|l| l.get(k)) {
                v["live"] = Value::Bool(*l);
            }
            v
        })
        .collect()
}

/// `xgw route get`'s answer for `addr` routed by `r` (`names`: port names; `owner`: the
/// port that has `addr`, for local routes). Keys: `dst`, `prefix`, `via`, `dev`, `type`.
pub fn route_json(addr: Ipv4Addr, r: &RouteInfo, names: &[String], owner: Option<String>) -> Value {
    let name = |p: u16| names.get(usize::from(p)).cloned();
    let (kind, via, dev) = match r.nexthop {
        NextHop::Via { gateway, port } => ("unicast", Some(gateway), name(port)),
        NextHop::Connected { port } => ("unicast", None, name(port)),
        NextHop::Local => ("local", None, owner),
        NextHop::Broadcast { port } => ("broadcast", None, name(port)),
        NextHop::Blackhole => ("blackhole", None, None),
        NextHop::Unreachable => ("unreachable", None, None),
        NextHop::Prohibit => ("prohibit", None, None),
        NextHop::Group { .. } => ("unicast", None, None),
    };
    json!({
        "dst": addr.to_string(),
        "prefix": r.prefix.to_string(),
        "via": via.map(|v| v.to_string()),
        "dev": dev,
        "type": kind,
    })
}

impl Service {
    /// A service over `inv`, sending jobs to `jobs`.
    pub fn new(inv: Inventory, jobs: JobSender) -> Self {
        Service {
            inv,
            jobs,
            baseline: Mutex::new(Baseline::default()),
            traces: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on the control thread and wait for its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ControlCtx<'_>) -> R + Send + 'static,
    ) -> Result<R, String> {
        let (tx, rx) = bounded(1);
        let job: Job = Box::new(move |cx| {
            let _ = tx.send(f(cx));
        });
        match self.jobs.tx.try_send(job) {
            Ok(()) => (self.jobs.wake)(),
            Err(TrySendError::Full(_)) => {
                return Err("control thread busy (request queue full): try again".into())
            }
            Err(TrySendError::Disconnected(_)) => return Err("xgw is stopping".into()),
        }
        rx.recv_timeout(JOB_TIMEOUT).map_err(|_| {
            format!(
                "control thread did not answer within {} s",
                JOB_TIMEOUT.as_secs()
            )
        })
    }

    /// The NAT's current lock-free view, if NAT is configured.
    pub(super) fn nat_fast(&self) -> Option<Arc<NatFast>> {
        self.inv.nat.lock().clone()
    }

    /// Answer one request, writing its lines to `out`.
    ///
    /// # Errors
    /// Only a failed write (the client went away); refusals are answers.
    pub fn handle(&self, verb: &Verb, out: &mut dyn Write) -> io::Result<()> {
        let answer = match verb {
            Verb::ShowNatSessions(f) => return listing::nat_sessions(self, f, out),
            Verb::ShowRoute { prefix } => return listing::routes(self, prefix.as_deref(), out),
            Verb::ShowInterfaces => Ok(self.interfaces()),
            Verb::ShowErrors { per_worker } => self.errors(*per_worker),
            Verb::ShowRuntime => Ok(self.runtime()),
            Verb::ShowRouteSummary => listing::route_summary(self),
            Verb::RouteGet { addr, flow } => self.route_get(addr, flow),
            Verb::RouteAdd {
                prefix,
                via,
                dev,
                kind,
            } => self.route_add(config::RouteConfig {
                prefix: prefix.clone(),
                via: via.clone().map(config::ViaConfig::One),
                weights: None,
                dev: dev.clone(),
                kind: kind.clone(),
            }),
            Verb::RouteDel { prefix } => self.route_del(prefix),
            Verb::ShowNeighbors => self.neighbors(),
            Verb::NeighborFlush { dev } => self.neighbor_flush(dev.clone()),
            Verb::NatDelSession { inside, proto } => self.nat_del(inside, proto.as_deref()),
            Verb::ShowNatSummary => listing::nat_summary(self),
            Verb::ShowNatMappings => self.nat_mappings(),
            Verb::ShowConfig => self.config(),
            Verb::Reload => self
                .call(reload)
                .and_then(|r| r.map(|m| json!({"message": m}))),
            Verb::ClearCounters => self.clear_counters(),
            Verb::TraceAdd { count, port } => self.trace_add(*count, port.as_deref()),
            Verb::ShowTrace => Ok(self.show_trace()),
            Verb::ClearTrace => Ok(self.clear_trace()),
        };
        match answer {
            Ok(v) => write_line(out, &Header::result(v)),
            Err(e) => write_line(out, &Header::error(e)),
        }
    }

    /// The workers' counters since `clear counters`, per worker.
    fn worker_counts(&self) -> Vec<LocalCounters> {
        let base = self.baseline.lock();
        self.inv
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| match base.workers.get(i) {
                Some(b) => w.read().since(b),
                None => w.read(),
            })
            .collect()
    }

    fn total(counts: &[LocalCounters]) -> LocalCounters {
        let mut t = LocalCounters::default();
        counts.iter().for_each(|c| t.add(c));
        t
    }

    fn xsk_since(&self, q: usize, port: usize) -> Option<XskStats> {
        let s = self.inv.xsk.read(q, port)?;
        let base = self.baseline.lock();
        let Some(b) = base.xsk.get(&(q, port)) else {
            return Some(s);
        };
        Some(XskStats {
            rx_dropped: s.rx_dropped.saturating_sub(b.rx_dropped),
            rx_invalid_descs: s.rx_invalid_descs.saturating_sub(b.rx_invalid_descs),
            tx_invalid_descs: s.tx_invalid_descs.saturating_sub(b.tx_invalid_descs),
            rx_ring_full: s.rx_ring_full.saturating_sub(b.rx_ring_full),
            rx_fill_ring_empty_descs: s
                .rx_fill_ring_empty_descs
                .saturating_sub(b.rx_fill_ring_empty_descs),
            tx_ring_empty_descs: s.tx_ring_empty_descs.saturating_sub(b.tx_ring_empty_descs),
        })
    }

    fn interfaces(&self) -> Value {
        let total = Self::total(&self.worker_counts());
        // The egress MTU follows the device's (link monitoring), a deleted device is
        // "gone", a re-created one has a new ifindex and MAC, and in mirror mode the
        // addresses are the kernel's: all live on the control thread (the facts fixed at
        // start otherwise).
        let live: Vec<(PortInfo, bool, u32)> = self
            .call(|cx| {
                let plane = &cx.ctl.plane;
                plane
                    .ports()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let l = plane.links().ports().get(i);
                        (
                            p.clone(),
                            l.is_some_and(|l| l.gone),
                            l.map_or(0, |l| l.ifindex),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ports: Vec<Value> = self
            .inv
            .ports
            .iter()
            .enumerate()
            .map(|(p, f)| {
                let queues: Vec<Value> = (0..self.inv.xsk.queues())
                    .filter_map(|q| self.xsk_since(q, p).map(|s| (q, s)))
                    .map(|(q, s)| {
                        json!({
                            "queue": q,
                            "rx_dropped": s.rx_dropped,
                            "rx_ring_full": s.rx_ring_full,
                            "fill_ring_empty": s.rx_fill_ring_empty_descs,
                            "tx_ring_empty": s.tx_ring_empty_descs,
                            "rx_invalid_descs": s.rx_invalid_descs,
                            "tx_invalid_descs": s.tx_invalid_descs,
                        })
                    })
                    .collect();
                let drops: u64 = queues
                    .iter()
                    .map(|q| {
                        q["rx_dropped"].as_u64().unwrap_or(0)
                            + q["rx_ring_full"].as_u64().unwrap_or(0)
                    })
                    .sum();
                let c = |w| total.port_count(p, w);
                let info = live.get(p).map_or(&f.info, |l| &l.0);
                json!({
                    "name": f.info.name,
                    "ifindex": live.get(p).map_or(f.ifindex, |l| l.2),
                    "mac": info.mac.to_string(),
                    "mtu": info.mtu,
                    "addresses": info.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "state": if live.get(p).is_some_and(|l| l.1) {
                        "gone".to_string()
                    } else {
                        oper_state(&f.info.name)
                    },
                    "queues": self.inv.workers.len(),
                    "xdp_mode": f.xdp_mode,
                    "tx_path": f.tx_path,
                    "rx_packets": c(PortCounter::RxPackets),
                    "rx_bytes": c(PortCounter::RxBytes),
                    "tx_packets": c(PortCounter::TxPackets),
                    "tx_bytes": c(PortCounter::TxBytes),
                    "drops": drops,
                    "xsk": queues,
                })
            })
            .collect();
        Value::Array(ports)
    }

    fn errors(&self, per_worker: bool) -> Result<Value, String> {
        let counts = self.worker_counts();
        let total = Self::total(&counts);
        let control = self.call(|cx| control_lines(cx))?;
        let base = self.baseline.lock();
        let mut rows = Vec::new();
        let mut push = |kind: &str, name: &str, desc: &str, n: u64, per: Vec<u64>| {
            if n != 0 {
                let mut r = json!({"kind": kind, "name": name, "count": n, "description": desc});
                if per_worker {
                    r["per_worker"] = json!(per);
                }
                rows.push(r);
            }
        };
        for r in DropReason::ALL {
            let per = counts.iter().map(|c| c.dropped(r)).collect();
            push("drop", r.name(), r.description(), total.dropped(r), per);
        }
        for r in PuntReason::ALL {
            let per = counts.iter().map(|c| c.punted(r)).collect();
            push("punt", r.name(), r.description(), total.punted(r), per);
        }
        for r in ClassEvent::ALL {
            let i = CounterEnum::index(r);
            let per = counts.iter().map(|c| c.classes[i]).collect();
            push(
                "punt_class",
                r.name(),
                r.description(),
                total.classes[i],
                per,
            );
        }
        for (name, v, desc) in control {
            let v = v.saturating_sub(base.control.get(name).copied().unwrap_or(0));
            push("control", name, desc, v, Vec::new());
        }
        Ok(json!({
            "workers": counts.len(),
            "since": base.at.map(unix_secs),
            "counters": rows,
        }))
    }

    fn runtime(&self) -> Value {
        let rows: Vec<Value> = self
            .worker_counts()
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let e = |x| c.events(x);
                let (busy, idle) = (e(Event::BusyNs), e(Event::IdleNs));
                let bursts = e(Event::RxBursts);
                json!({
                    "worker": w,
                    "loops": e(Event::Loops),
                    "busy_loops": e(Event::BusyLoops),
                    "rx_packets": e(Event::RxPackets),
                    "tx_packets": e(Event::TxPackets),
                    "injected": e(Event::Injected),
                    "rx_bursts": bursts,
                    "mean_burst": if bursts == 0 { 0.0 } else { e(Event::RxPackets) as f64 / bursts as f64 },
                    "busy_ns": busy,
                    "idle_ns": idle,
                    "busy_share": if busy + idle == 0 { 0.0 } else { busy as f64 / (busy + idle) as f64 },
                })
            })
            .collect();
        Value::Array(rows)
    }

    fn route_get(&self, addr: &str, flow: &FlowSpec) -> Result<Value, String> {
        let a: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let probe = flow_probe(a, flow)?;
        self.call(move |cx| {
            let plane = &cx.ctl.plane;
            let names: Vec<String> = plane.ports().iter().map(|p| p.name.clone()).collect();
            let owner = plane
                .ports()
                .iter()
                .find(|p| p.addresses.iter().any(|c| c.address() == a))
                .map(|p| p.name.clone());
            let r = plane
                .routes()
                .get(a)
                .ok_or_else(|| format!("{a}: no route (network unreachable)"))?;
            let NextHop::Group { id } = r.nexthop else {
                return Ok(route_json(a, &r, &names, owner));
            };
            // Which gateway this flow takes, as a worker would pick it, and the group.
            let tables = plane.ecmp_tables();
            let table = &tables[id as usize];
            let chosen = table.select(&probe, plane.ecmp_seed());
            let nexthops = plane.routes().nexthops();
            let mut v = route_json(
                a,
                &RouteInfo {
                    prefix: r.prefix,
                    nexthop: nexthops[chosen as usize],
                },
                &names,
                None,
            );
            let live: Vec<bool> = (0..table.members.len())
                .map(|k| table.buckets.iter().any(|&b| usize::from(b) == k))
                .collect();
            v["nexthops"] = nexthops_json(&plane.routes().group_members(id), &names, Some(&live));
            Ok(v)
        })?
    }

    fn route_add(&self, rc: config::RouteConfig) -> Result<Value, String> {
        self.call(move |cx| {
            let plane = &mut cx.ctl.plane;
            let r = plane
                .config()
                .check_route("route add", &rc)
                .map_err(|e| e.to_string())?;
            let prefix = r[0].prefix;
            plane.add_route(r)?;
            Ok(json!({"prefix": prefix.to_string(), "message": format!("{prefix}: added")}))
        })?
    }

    fn route_del(&self, prefix: &str) -> Result<Value, String> {
        let p: Cidr = prefix
            .parse()
            .map_err(|_| format!("`{prefix}` is not an IPv4 prefix (a.b.c.d/n)"))?;
        self.call(move |cx| {
            cx.ctl.plane.del_route(p)?;
            Ok(json!({"prefix": p.to_string(), "message": format!("{p}: deleted")}))
        })?
    }

    fn neighbor_flush(&self, dev: Option<String>) -> Result<Value, String> {
        self.call(move |cx| {
            let plane = &mut cx.ctl.plane;
            let port = match &dev {
                None => None,
                Some(d) => Some(
                    plane
                        .ports()
                        .iter()
                        .position(|p| &p.name == d)
                        .and_then(|i| u16::try_from(i).ok())
                        .ok_or_else(|| format!("no interface named `{d}`"))?,
                ),
            };
            let n = plane.flush_neighbors(port);
            Ok(json!({"flushed": n, "message": format!("{n} neighbours flushed")}))
        })?
    }

    fn nat_del(&self, inside: &str, proto: Option<&str>) -> Result<Value, String> {
        let sa: std::net::SocketAddrV4 = inside
            .parse()
            .map_err(|_| format!("--inside: `{inside}` is not ADDR:PORT"))?;
        let proto = match proto {
            None => None,
            Some(p) => Some(listing::proto_number(p)?),
        };
        self.call(move |cx| {
            let mut nat = cx
                .ctl
                .plane
                .nat()
                .ok_or_else(|| "NAT is not configured ([nat])".to_string())?;
            let n = nat.delete_sessions(Instant::now(), (*sa.ip(), sa.port()), proto);
            Ok(json!({"deleted": n, "message": format!("{n} sessions deleted")}))
        })?
    }

    fn neighbors(&self) -> Result<Value, String> {
        self.call(|cx| {
            let plane = &cx.ctl.plane;
            let names: Vec<String> = plane.ports().iter().map(|p| p.name.clone()).collect();
            let n = plane.neighbors();
            let mut v: Vec<_> = n.entries(Instant::now()).collect();
            v.sort_by_key(|e| e.0);
            let rows: Vec<Value> = v
                .into_iter()
                .map(|(ip, mac, port, state, age)| {
                    json!({
                        "address": ip.to_string(),
                        "mac": mac.map(|m| m.to_string()),
                        "dev": names.get(usize::from(port.0)),
                        "state": state.name(),
                        "age_ms": u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                        "pinned": n.is_pinned(ip),
                    })
                })
                .collect();
            Value::Array(rows)
        })
    }

    fn nat_mappings(&self) -> Result<Value, String> {
        self.call(|cx| {
            let nat = cx.ctl.plane.nat();
            let Some(n) = nat else {
                return Err("NAT is not configured ([nat])".to_string());
            };
            let rows: Vec<Value> = n
                .mapping_views()
                .into_iter()
                .map(|m| {
                    json!({
                        "proto": listing::proto_name(m.proto),
                        "inside": format!("{}:{}", m.inside.0, m.inside.1),
                        "external": format!("{}:{}", m.external.0, m.external.1),
                        "sessions": m.sessions,
                        "kind": if m.forward { "forward" } else { "dynamic" },
                    })
                })
                .collect();
            Ok(Value::Array(rows))
        })?
    }

    fn config(&self) -> Result<Value, String> {
        let st = self.call(|cx| cx.config.clone())?;
        let last = st.last_reload.map(|(at, r)| {
            json!({
                "at": unix_secs(at),
                "ok": r.is_ok(),
                "error": r.err(),
            })
        });
        Ok(json!({
            "path": st.path.map(|p| p.display().to_string()),
            "generation": st.generation,
            "applied_at": unix_secs(st.applied_at),
            "started_at": unix_secs(self.inv.started),
            "last_reload": last,
            "text": st.text,
        }))
    }

    fn clear_counters(&self) -> Result<Value, String> {
        let control = self.call(|cx| control_lines(cx))?;
        let workers: Vec<LocalCounters> = self.inv.workers.iter().map(|w| w.read()).collect();
        let mut xsk = HashMap::new();
        for q in 0..self.inv.xsk.queues() {
            for p in 0..self.inv.ports.len() {
                if let Some(s) = self.inv.xsk.read(q, p) {
                    xsk.insert((q, p), s);
                }
            }
        }
        let now = SystemTime::now();
        *self.baseline.lock() = Baseline {
            workers,
            control: control.into_iter().map(|(n, v, _)| (n, v)).collect(),
            xsk,
            at: Some(now),
        };
        Ok(json!({"cleared_at": unix_secs(now)}))
    }
}

/// The kernel's operational state of `dev` (`up`, `down`, `lowerlayerdown`, ...; `unknown`
/// if sysfs does not say).
fn oper_state(dev: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/operstate"))
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned())
}
