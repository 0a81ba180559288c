//! Prometheus metrics (OpenMetrics text, through prometheus-client): what `show
//! interfaces|errors|runtime` and the NAT and neighbour views report, as monotonic counters
//! and gauges, from the same reads. A scrape reads the workers' counter blocks, the AF_XDP
//! statistics and the NAT's session counts without a lock, and asks the control thread
//! for its counters in one job whose work is O(ports + pool addresses), independent of
//! the number of sessions, routes or neighbours; nothing a worker waits on is taken.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType, TypedMetric},
    registry::Registry,
};

use super::{control_lines, listing::proto_name, CounterLine, Service};
use crate::{
    dataplane::{
        counters::{ClassEvent, CounterEnum, PortCounter},
        DropReason, Event, LocalCounters, PuntReason,
    },
    nat::policy::operator::PolicySummary,
    neigh::State,
};

/// Labels of one sample.
type Labels = Vec<(String, String)>;

/// One metric family as collected.
#[derive(Debug, Clone)]
struct Family {
    /// Without `_total` (prometheus-client adds it to counters).
    name: &'static str,
    help: &'static str,
    counter: bool,
    samples: Vec<(Labels, f64)>,
}

impl Family {
    fn counter(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            counter: true,
            samples: Vec::new(),
        }
    }

    fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            counter: false,
            ..Family::counter(name, help)
        }
    }

    fn push(&mut self, labels: &[(&str, &str)], v: f64) {
        let l = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples.push((l, v));
    }
}

/// The collected families, encoded by prometheus-client.
#[derive(Debug)]
struct Collected(Vec<Family>);

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let ty = if f.counter {
                ConstCounter::<f64>::TYPE
            } else {
                ConstGauge::<f64>::TYPE
            };
            let mut me = encoder.encode_descriptor(f.name, f.help, None, ty)?;
            for (labels, v) in &f.samples {
                let fe = me.encode_family(labels)?;
                if f.counter {
                    ConstCounter::new(*v).encode(fe)?;
                } else {
                    ConstGauge::new(*v).encode(fe)?;
                }
            }
        }
        Ok(())
    }
}

const _: () = assert!(matches!(ConstCounter::<f64>::TYPE, MetricType::Counter));

/// What the control thread contributes to a scrape.
#[derive(Debug)]
struct ControlPart {
    lines: Vec<CounterLine>,
    neighbors: [(State, usize); 4],
    routes: usize,
    nat: Option<NatPart>,
}

#[derive(Debug)]
struct NatPart {
    by_proto: [(u8, usize); 3],
    ports: Vec<(std::net::Ipv4Addr, u8, usize)>,
    summary: PolicySummary,
    /// The event log's written, failed, dropped events, when `[nat.log]` is on.
    log: Option<[u64; 3]>,
}

/// The class and outcome of a `punt.<class>.<outcome>` counter.
fn class_labels(name: &str) -> (&str, &str) {
    let rest = name.strip_prefix("punt.").unwrap_or(name);
    rest.rsplit_once('.').unwrap_or((rest, ""))
}

impl Service {
    /// One scrape: the OpenMetrics text of every `xgw_` metric.
    ///
    /// # Errors
    /// The control thread is busy or stopping (the scrape fails rather than waits).
    pub fn metrics(&self) -> Result<String, String> {
        let part = self.call(|cx| {
            let plane = &cx.ctl.plane;
            ControlPart {
                lines: control_lines(cx),
                neighbors: plane.neighbors().state_counts(),
                routes: plane.routes().route_set().len(),
                nat: plane.nat().map(|n| NatPart {
                    by_proto: n.sessions_by_proto(),
                    ports: n.ports_in_use_by_address(),
                    summary: n.summary(),
                    log: plane.nat_log_stats().map(|s| {
                        use std::sync::atomic::Ordering::Relaxed;
                        [
                            s.written.load(Relaxed),
                            s.failed.load(Relaxed),
                            n.counters.get(crate::control::nat::NatEvent::LogDropped),
                        ]
                    }),
                }),
            }
        })?;
        let workers: Vec<LocalCounters> = self.inv.workers.iter().map(|w| w.read()).collect();
        let families = self.families(&workers, &part);
        let mut reg = Registry::default();
        reg.register_collector(Box::new(Collected(families)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn families(&self, workers: &[LocalCounters], part: &ControlPart) -> Vec<Family> {
        let mut total = LocalCounters::default();
        workers.iter().for_each(|w| total.add(w));
        let mut fams = Vec::new();
        let mut build = Family::gauge("xgw_build_info", "xgw build: version label, value 1");
        build.push(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        fams.push(build);
        for (name, help, what) in [
            (
                "xgw_interface_rx_packets",
                "frames received on the port",
                PortCounter::RxPackets,
            ),
            (
                "xgw_interface_rx_bytes",
                "bytes received on the port",
                PortCounter::RxBytes,
            ),
            (
                "xgw_interface_tx_packets",
                "frames transmitted on the port (forwarded and control plane)",
                PortCounter::TxPackets,
            ),
            (
                "xgw_interface_tx_bytes",
                "bytes transmitted on the port",
                PortCounter::TxBytes,
            ),
        ] {
            let mut f = Family::counter(name, help);
            for (p, facts) in self.inv.ports.iter().enumerate() {
                f.push(
                    &[("interface", &facts.info.name)],
                    total.port_count(p, what) as f64,
                );
            }
            fams.push(f);
        }
        let mut drops = Family::counter("xgw_drops", "packets the fast path dropped, by reason");
        for r in DropReason::ALL {
            drops.push(&[("reason", r.name())], total.dropped(r) as f64);
        }
        fams.push(drops);
        let mut punts = Family::counter(
            "xgw_punts",
            "packets handed to the control plane, by reason",
        );
        for r in PuntReason::ALL {
            punts.push(&[("reason", r.name())], total.punted(r) as f64);
        }
        fams.push(punts);
        let mut classes = Family::counter(
            "xgw_punt_class",
            "exceptions per class: accepted, policed, queue_full",
        );
        for r in ClassEvent::ALL {
            let (class, outcome) = class_labels(r.name());
            classes.push(
                &[("class", class), ("outcome", outcome)],
                total.classes[CounterEnum::index(r)] as f64,
            );
        }
        fams.push(classes);
        let mut ev = Family::counter(
            "xgw_worker_events",
            "per-worker events (worker.<event> counters)",
        );
        for (w, c) in workers.iter().enumerate() {
            let w = w.to_string();
            for e in Event::ALL {
                let name = e.name().strip_prefix("worker.").unwrap_or(e.name());
                ev.push(&[("worker", &w), ("event", name)], c.events(e) as f64);
            }
        }
        fams.push(ev);
        self.xsk_families(&mut fams);
        let mut ctl = Family::counter(
            "xgw_control_events",
            "control-plane and NAT slow-path counters (the names of show errors)",
        );
        for (name, v, _) in &part.lines {
            ctl.push(&[("counter", name)], *v as f64);
        }
        fams.push(ctl);
        let mut neigh = Family::gauge("xgw_neighbors", "ARP cache entries by state");
        for (st, n) in part.neighbors {
            neigh.push(&[("state", st.name())], n as f64);
        }
        fams.push(neigh);
        let mut routes = Family::gauge("xgw_fib_routes", "routes in the FIB (all sources)");
        routes.push(&[], part.routes as f64);
        fams.push(routes);
        if let Some(n) = &part.nat {
            self.nat_families(&mut fams, n, part);
        }
        fams
    }

    fn xsk_families(&self, fams: &mut Vec<Family>) {
        type Get = fn(&crate::io::xsk_stats::XskStats) -> u64;
        let kinds: [(&'static str, &'static str, Get); 6] = [
            (
                "xgw_xsk_rx_dropped",
                "AF_XDP: frames dropped (not for a full ring)",
                |s| s.rx_dropped,
            ),
            (
                "xgw_xsk_rx_ring_full",
                "AF_XDP: frames dropped for a full RX ring",
                |s| s.rx_ring_full,
            ),
            (
                "xgw_xsk_fill_ring_empty",
                "AF_XDP: times the fill ring was empty",
                |s| s.rx_fill_ring_empty_descs,
            ),
            (
                "xgw_xsk_tx_ring_empty",
                "AF_XDP: times the TX ring was empty",
                |s| s.tx_ring_empty_descs,
            ),
            (
                "xgw_xsk_rx_invalid_descs",
                "AF_XDP: invalid RX/fill descriptors",
                |s| s.rx_invalid_descs,
            ),
            (
                "xgw_xsk_tx_invalid_descs",
                "AF_XDP: invalid TX descriptors",
                |s| s.tx_invalid_descs,
            ),
        ];
        let mut stats = Vec::new();
        for q in 0..self.inv.xsk.queues() {
            for (p, facts) in self.inv.ports.iter().enumerate() {
                if let Some(s) = self.inv.xsk.read(q, p) {
                    stats.push((facts.info.name.as_str(), q.to_string(), s));
                }
            }
        }
        for (name, help, get) in kinds {
            let mut f = Family::counter(name, help);
            for (iface, q, s) in &stats {
                f.push(&[("interface", iface), ("queue", q)], get(s) as f64);
            }
            fams.push(f);
        }
    }

    fn nat_families(&self, fams: &mut Vec<Family>, n: &NatPart, part: &ControlPart) {
        let mut sessions = Family::gauge("xgw_nat_sessions", "NAT sessions by protocol");
        for (p, c) in n.by_proto {
            sessions.push(&[("proto", &proto_name(p))], c as f64);
        }
        fams.push(sessions);
        let created_slow = part
            .lines
            .iter()
            .find(|l| l.0 == "nat.sessions_created")
            .map_or(0, |l| l.1);
        // The policy counts every session it creates, the workers' included
        // (`nat44.sessions_created` is the workers' share of it).
        let mut created = Family::counter(
            "xgw_nat_sessions_created",
            "NAT sessions created (by workers and the slow path)",
        );
        created.push(&[], created_slow as f64);
        fams.push(created);
        let mut ports = Family::gauge(
            "xgw_nat_ports_in_use",
            "external ports with a mapping or forward",
        );
        for (a, p, c) in &n.ports {
            ports.push(
                &[("address", &a.to_string()), ("proto", &proto_name(*p))],
                *c as f64,
            );
        }
        fams.push(ports);
        let s = &n.summary;
        for (name, help, v) in [
            (
                "xgw_nat_sessions_capacity",
                "NAT session table capacity ([nat] max_sessions)",
                f64::from(s.capacity),
            ),
            (
                "xgw_nat_quarantined_ports",
                "external ports in quarantine",
                s.quarantined as f64,
            ),
            (
                "xgw_nat_held_syns",
                "unsolicited inbound SYNs held",
                s.held_syns as f64,
            ),
            (
                "xgw_nat_reassembly_bytes",
                "bytes held by virtual reassembly",
                s.reassembly_bytes as f64,
            ),
            (
                "xgw_nat_mappings",
                "endpoint-independent mappings (forwards included)",
                s.mappings as f64,
            ),
        ] {
            let mut f = Family::gauge(name, help);
            f.push(&[], v);
            fams.push(f);
        }
        if let Some([written, failed, dropped]) = n.log {
            let mut f = Family::counter(
                "xgw_nat_log_events",
                "NAT event log: events written, refused by the target, dropped (buffer full)",
            );
            for (result, v) in [
                ("written", written),
                ("failed", failed),
                ("dropped", dropped),
            ] {
                f.push(&[("result", result)], v as f64);
            }
            fams.push(f);
        }
    }
}
