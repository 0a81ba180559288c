//! `control`: the slow path. One thread owns the route table, the ARP cache and the ICMP
//! rate limiter; it answers punts from the workers, originates ARP and ICMP, fragments,
//! ages neighbours and publishes snapshots (DESIGN 6.4, R5).
//!
//! Must not depend on: `io` internals. [`ControlPlane`] itself does no I/O and takes time
//! as an argument: it consumes [`Punt`]s and produces frames in an outbox, so tests drive
//! it synchronously and the runtime wraps it in a thread.

pub mod alarms;
mod emit;
pub mod event_loop;
pub mod frag;
pub mod icmp;
pub mod kfib;
pub mod kroutes;
pub mod link;
pub mod mirror;
pub mod nat;
pub mod natlog;
pub mod publish;
pub mod routes;

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use self::{
    icmp::{IcmpError, IcmpLimiter},
    nat::{NatOutcome, NatPolicy},
    routes::Routes,
};
use crate::{
    config::{Route, ValidConfig},
    dataplane::{
        counters::{define_counters, Counts},
        EcmpTable, NatFast, NextHop, PortInfo, Punt, PuntReason, Snapshot, NO_ADJ,
    },
    neigh::{
        cache::{Event as NeighEvent, NeighCache, NeighConfig},
        AdjIndex, AdjTable, Adjacency, PortId,
    },
    wire::{
        ethernet,
        icmpv4::dst_unreachable_code as unreach,
        ipv4::{Cidr, Packet},
    },
};

define_counters! {
    /// What the control plane did.
    pub enum ControlEvent {
        ArpRequestsIn = "arp.requests_in" => "ARP requests received",
        ArpRepliesIn = "arp.replies_in" => "ARP replies received",
        ArpRepliesSent = "arp.replies_sent" => "ARP replies sent for our addresses",
        ArpRequestsSent = "arp.requests_sent" => "ARP requests sent to resolve next hops",
        ArpInvalid = "arp.invalid" => "malformed or unsupported ARP",
        ArpNotLearned = "arp.not_learned" => "ARP sender not on a connected subnet of the port",
        NeighQueueFull = "neigh.queue_full" => "packets dropped: over the budget of packets waiting for ARP",
        NeighTableFull = "neigh.table_full" => "packets dropped: neighbour table full",
        NeighUnreachable = "neigh.unreachable" => "packets dropped: neighbour did not answer ARP",
        SlowForwarded = "slowpath.forwarded" => "packets forwarded by the control plane",
        Fragmented = "slowpath.fragmented" => "packets fragmented",
        FragmentsSent = "slowpath.fragments" => "fragments produced",
        EchoReplies = "icmp.echo_replies" => "echo replies sent",
        IcmpErrors = "icmp.errors_sent" => "ICMP errors sent",
        IcmpRateLimited = "icmp.rate_limited" => "ICMP errors not sent: global rate limit (of their kind)",
        IcmpRateLimitedDestination = "icmp.rate_limited_destination" => "ICMP errors not sent: the destination's share",
        IcmpSuppressed = "icmp.suppressed" => "ICMP errors not sent: RFC 1812 4.3.2.7",
        LocalDropped = "local.dropped" => "packets to the router it does not answer",
        NoRouteOut = "output.no_route" => "router-originated packet without a route",
        OutputPortDown = "output.port_down" => "router-originated frames dropped: their port is down",
        LinkDown = "link.down" => "ports gone down (their routes withdrawn, neighbours flushed)",
        LinkUp = "link.up" => "ports come back up (their routes restored)",
        LinkMtu = "link.mtu_changed" => "device MTU changes applied",
        LinkGone = "link.deleted" => "ports whose device was deleted",
        LinkBack = "link.reappeared" => "deleted ports' devices re-created (xgw attaches to them)",
        LinkReattached = "link.reattached" => "ports attached to their re-created device (sockets and XDP moved over)",
        LinkReattachFailed = "link.reattach_failed" => "re-created devices xgw could not attach to (the port stays down; see the log)",
        NetlinkMalformed = "netlink.malformed" => "netlink messages that did not parse (skipped)",
        NetlinkResync = "netlink.resyncs" => "netlink events lost (socket overrun or queue full): full dump",
        KernelRouteChanges = "kernel.route_changes" => "kernel route and nexthop changes applied (mirror mode)",
        KernelFibBuilt = "kernel.fib_builds" => "FIBs built from the kernel's routes (each after a burst settled)",
        KernelFullResolves = "kernel.full_resolves" => "times every kernel route was resolved again (a dump, a nexthop object or a port changed); other builds resolve only the changed prefixes",
        KernelAddressChanged = "kernel.port_address_changes" => "a port's kernel address added or removed while running",
        NeighKernelLearned = "neigh.kernel_learned" => "neighbours learned from the kernel's table (mirror mode)",
        NeighKernelSolicits = "neigh.kernel_solicits" => "neighbour resolutions asked of the kernel (mirror mode)",
        NeighSolicitDropped = "neigh.kernel_solicits_dropped" => "neighbour resolutions not asked: queue to the kernel full",
        NeighSolicitRefused = "neigh.kernel_solicits_refused" => "neighbour resolutions the kernel refused (netlink error)",
    }
}

/// Control-plane counters.
pub type ControlCounters = Counts<ControlEvent>;

/// The NAT's read-only view as the operator's threads see it (None: no NAT). The control
/// thread replaces it on a reload that changes it; readers clone the `Arc` and let go.
pub type NatView = Arc<parking_lot::Mutex<Option<Arc<NatFast>>>>;

/// The slow path's state machine (no threads, no I/O).
#[derive(Debug)]
pub struct ControlPlane {
    ports: Arc<[PortInfo]>,
    routes: Routes,
    neigh: NeighCache<Vec<u8>>,
    icmp: IcmpLimiter,
    ident: u16,
    generation: u64,
    published_neigh: Option<u64>,
    /// Routes changed since the last snapshot.
    routes_changed: bool,
    /// Routes added with `xgw route add` (kept across reloads).
    runtime_routes: Vec<Route>,
    cfg: ValidConfig,
    out: Vec<(u16, Vec<u8>)>,
    epoch: Instant,
    /// The NAT policy, shared with the workers, which create outbound sessions under
    /// `try_lock` (see `dataplane::nat44`); the control thread locks it for the slow path.
    nat: Option<Arc<Mutex<NatPolicy>>>,
    /// The NAT's read-only view, for checks that need no lock.
    nat_fast: Option<Arc<NatFast>>,
    /// The same, for the operator's threads (`show nat sessions` walks its table): replaced
    /// when a reload gives the NAT a new view (a grown session table).
    nat_view: NatView,
    /// The NAT event log's writer, when `[nat.log]` is on.
    nat_log: Option<natlog::NatLogLink>,
    /// The ports' devices as netlink last reported them.
    links: link::Links,
    /// Ports whose device was created anew, for the runtime to attach: `(port, ifindex)`.
    reattach: Vec<(u16, u32)>,
    /// The ECMP flow-hash seed (random per router).
    ecmp_seed: u64,
    /// Kernel mirror mode's state (`[kernel] mirror = true`).
    mirror: Option<mirror::Mirror>,
    /// What it did.
    pub counters: ControlCounters,
}

/// The key of the NAT's port randomisation (RFC 6056 §3.3.3: a secret per run), from the
/// OS random source. Time and pid are guessable, and from them the external ports of every
/// flow; if the OS source fails (it does not on Linux after early boot), they are the
/// fallback, with a warning.
/// The routes' next hops: always resolvable, whatever fills the neighbour table.
fn route_gateways(cfg: &ValidConfig, runtime: &[Route]) -> Vec<Ipv4Addr> {
    cfg.routes
        .iter()
        .chain(runtime)
        .filter_map(|r| match r.target {
            crate::config::RouteTarget::Via { gateway, .. } => Some(gateway),
            _ => None,
        })
        .collect()
}

/// The neighbour cache's configuration from `[neighbor]`.
fn neigh_config(n: &crate::config::NeighborSettings) -> NeighConfig {
    NeighConfig {
        max_entries: n.max_entries,
        max_entries_per_port: n.max_entries_per_port,
        queue_len: n.queue_len,
        queue_bytes: n.queue_bytes,
        total_queue_bytes: n.total_queue_bytes,
        reachable_time: n.reachable_time,
        retrans_time: n.retrans_time,
        max_requests: n.max_requests,
        failed_hold: n.retrans_time * 3,
    }
}

fn port_key() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::getrandom(&mut b) {
        Ok(()) => u64::from_ne_bytes(b),
        Err(e) => {
            tracing::warn!(error = %e, "no OS random source: NAT port key from time and pid");
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

impl ControlPlane {
    /// Control plane for `cfg`, with the ports' runtime facts (MAC, effective MTU) in `ports`.
    pub fn new(cfg: &ValidConfig, ports: Vec<PortInfo>) -> Self {
        ControlPlane::with_port_words(cfg, ports, None)
    }

    /// As [`ControlPlane::new`], with the NAT's mapped-port bitmap kept in `port_words` (the
    /// XDP prefilter's shared map) if given.
    pub fn with_port_words(
        cfg: &ValidConfig,
        ports: Vec<PortInfo>,
        port_words: Option<crate::nat::portmap::Words>,
    ) -> Self {
        let mut neigh = NeighCache::new(neigh_config(&cfg.neighbor));
        neigh.set_pinned(route_gateways(cfg, &[]));
        let epoch = Instant::now();
        let seed = port_key();
        let nat = cfg
            .nat
            .as_ref()
            .map(|n| NatPolicy::with_port_words(&nat::policy_config(n), epoch, seed, port_words));
        let nat_fast = nat.as_ref().map(NatPolicy::fast);
        let nat = nat.map(|n| Arc::new(Mutex::new(n)));
        ControlPlane {
            ports: ports.into(),
            routes: Routes::from_config(cfg),
            neigh,
            icmp: IcmpLimiter::new(&cfg.icmp, port_key()),
            ident: 1,
            generation: 0,
            published_neigh: None,
            routes_changed: false,
            runtime_routes: Vec::new(),
            cfg: cfg.clone(),
            out: Vec::new(),
            epoch,
            nat,
            nat_view: Arc::new(parking_lot::Mutex::new(nat_fast.clone())),
            nat_fast,
            nat_log: None,
            links: link::Links::default(),
            reattach: Vec::new(),
            ecmp_seed: port_key(),
            mirror: None,
            counters: ControlCounters::default(),
        }
    }

    /// The instant NAT session times count from (workers use the same epoch).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The NAT state, if NAT is configured (locked: workers fall back to punting while it
    /// is held, so do not keep it).
    pub fn nat(&self) -> Option<MutexGuard<'_, NatPolicy>> {
        self.nat
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every non-zero control-plane counter (control and NAT) as `(name, value, description)`.
    pub fn counter_lines(&self) -> Vec<(&'static str, u64, &'static str)> {
        let mut v = self.counters.nonzero();
        if let Some(n) = self.nat() {
            v.extend(n.counters.nonzero());
        }
        if let Some(s) = self.nat_log_stats() {
            use std::sync::atomic::Ordering::Relaxed;
            for (name, value, what) in [
                (
                    "nat.log_written",
                    s.written.load(Relaxed),
                    "NAT log events written",
                ),
                (
                    "nat.log_failed",
                    s.failed.load(Relaxed),
                    "NAT log events the target refused (write or send failed)",
                ),
            ] {
                if value != 0 {
                    v.push((name, value, what));
                }
            }
        }
        v
    }

    /// Send the NAT's events to `link` from now on (None: stop recording them).
    /// The events still buffered go to the old link first.
    pub fn set_nat_log(&mut self, link: Option<natlog::NatLogLink>) {
        if let Some(mut n) = self.nat() {
            if let Some(old) = &self.nat_log {
                let dropped = old.offer(n.take_log());
                n.counters.add(nat::NatEvent::LogDropped, dropped as u64);
            }
            n.set_log(link.as_ref().map(|l| (l.buffer, l.destinations)));
        }
        self.nat_log = link;
    }

    /// The NAT's current read-only view, shared with the operator's threads.
    pub fn nat_view(&self) -> &NatView {
        &self.nat_view
    }

    /// The NAT event log writer's figures, when the log is on.
    pub fn nat_log_stats(&self) -> Option<&Arc<natlog::LogStats>> {
        self.nat_log.as_ref().map(|l| &l.stats)
    }

    /// The ports (names, MACs, MTUs, addresses).
    pub fn ports(&self) -> &Arc<[PortInfo]> {
        &self.ports
    }

    /// The NAT's lock-free view, if NAT is configured.
    pub fn nat_fast(&self) -> Option<&Arc<NatFast>> {
        self.nat_fast.as_ref()
    }

    /// The route table.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The neighbour cache (read-only, for stats and tests).
    pub fn neighbors(&self) -> &NeighCache<Vec<u8>> {
        &self.neigh
    }

    /// Whether the fast path's view is out of date.
    pub fn needs_publish(&self) -> bool {
        self.routes_changed || self.published_neigh != Some(self.neigh.generation())
    }

    /// Apply a re-read configuration without a restart, keeping every session and
    /// neighbour: routes, `[icmp]`, `[dataplane]`, `[neighbor]` limits and timers, and in
    /// `[nat]` the timeouts, filtering, `inside`, `inbound`, the per-host limit and forwards
    /// added or removed (the next snapshot carries them). Everything is checked before
    /// anything changes.
    ///
    /// # Errors
    /// A message naming the first field that cannot change while running (interfaces,
    /// `[control]`, `[metrics]`, and see [`NatPolicy::check_reconfigure`]); nothing is
    /// applied then.
    pub fn reload(&mut self, cfg: &ValidConfig) -> Result<(), String> {
        // In mirror mode the ports' addresses are the kernel's, followed while running (the
        // new file's were checked against the kernel when it was read): not a change.
        let mirror = self.cfg.kernel.mirror;
        let without_addresses = |c: &ValidConfig| {
            let mut v = c.interfaces.clone();
            if mirror {
                v.iter_mut().for_each(|i| i.addresses.clear());
            }
            v
        };
        if without_addresses(cfg) != without_addresses(&self.cfg) {
            return Err("[[interface]] sections changed: restart xgw to apply".into());
        }
        if cfg.control != self.cfg.control {
            return Err("control.socket changed: restart xgw to apply".into());
        }
        if cfg.kernel != self.cfg.kernel {
            return Err("[kernel] changed: restart xgw to apply".into());
        }
        if cfg.metrics != self.cfg.metrics {
            return Err("metrics.listen changed: restart xgw to apply".into());
        }
        if cfg.punt != self.cfg.punt {
            return Err(
                "[punt] changed: the workers' policers are set at start; restart xgw to apply"
                    .into(),
            );
        }
        let nat_new = match (&self.cfg.nat, &cfg.nat) {
            (None, None) => None,
            (Some(_), None) => return Err("[nat] removed: restart xgw to apply".into()),
            (None, Some(_)) => return Err("[nat] added: restart xgw to apply".into()),
            (Some(o), Some(n)) => {
                if o.sessions_in_workers != n.sessions_in_workers {
                    return Err("nat.sessions_in_workers changed: restart xgw to apply".into());
                }
                if o.xdp_prefilter != n.xdp_prefilter {
                    return Err("nat.xdp_prefilter changed: restart xgw to apply".into());
                }
                if o.log != n.log {
                    return Err("nat.log changed: restart xgw to apply".into());
                }
                let pc = nat::policy_config(n);
                if let Some(p) = self.nat() {
                    p.check_reconfigure(&pc)?;
                }
                Some(pc)
            }
        };
        // Checked; now apply.
        if let Some(pc) = nat_new {
            let fast = self.nat().map(|mut p| {
                p.reconfigure(Instant::now(), &pc);
                p.fast()
            });
            *self.nat_view.lock() = fast.clone();
            self.nat_fast = fast;
        }
        if cfg.neighbor != self.cfg.neighbor {
            self.neigh.set_config(neigh_config(&cfg.neighbor));
        }
        // Runtime routes stay on top of the new file, except where it now has the prefix.
        let before = self.runtime_routes.len();
        self.runtime_routes
            .retain(|r| cfg.routes.iter().all(|c| c.prefix != r.prefix));
        if self.runtime_routes.len() != before {
            tracing::warn!(
                dropped = before - self.runtime_routes.len(),
                "reload: runtime routes replaced by the file's routes of the same prefix"
            );
        }
        if cfg.icmp != self.cfg.icmp {
            self.icmp = IcmpLimiter::new(&cfg.icmp, port_key());
        }
        let live = std::mem::take(&mut self.cfg.interfaces);
        self.cfg = cfg.clone();
        if mirror {
            self.cfg.interfaces = live;
        }
        self.rebuild_routes();
        Ok(())
    }

    /// The running configuration.
    pub fn config(&self) -> &ValidConfig {
        &self.cfg
    }

    /// Routes added at runtime (`xgw route add`), in the order added.
    pub fn runtime_routes(&self) -> &[Route] {
        &self.runtime_routes
    }

    /// Add a route at once (a new FIB goes out with the next snapshot). `r` is validated
    /// by the caller ([`ValidConfig::check_route`]).
    ///
    /// # Errors
    /// The prefix already has a route, from the file or added earlier.
    pub fn add_route(&mut self, paths: Vec<Route>) -> Result<(), String> {
        let Some(&r) = paths.first() else {
            return Err("a route needs a target".into());
        };
        if self.cfg.routes.iter().any(|c| c.prefix == r.prefix) {
            return Err(format!(
                "{}: a route from the configuration file has this prefix (change it there and reload)",
                r.prefix
            ));
        }
        if self.runtime_routes.iter().any(|c| c.prefix == r.prefix) {
            return Err(format!("{}: route exists (route del it first)", r.prefix));
        }
        self.runtime_routes.extend(paths);
        self.rebuild_routes();
        Ok(())
    }

    /// Remove a route added at runtime.
    ///
    /// # Errors
    /// No runtime route has this prefix (routes from the file change through the file).
    pub fn del_route(&mut self, prefix: Cidr) -> Result<(), String> {
        if !self.runtime_routes.iter().any(|r| r.prefix == prefix) {
            if self.cfg.routes.iter().any(|c| c.prefix == prefix) {
                return Err(format!(
                    "{prefix}: the route is from the configuration file (remove it there and reload)"
                ));
            }
            return Err(format!("{prefix}: no such route"));
        }
        self.runtime_routes.retain(|r| r.prefix != prefix);
        self.rebuild_routes();
        Ok(())
    }

    fn rebuild_routes(&mut self) {
        self.sync_kernel_fib();
        self.routes = Routes::build(
            &self.cfg,
            &self.runtime_routes,
            self.mirror.as_ref().map(mirror::Mirror::kernel_fib),
            &self.down_ports(),
        );
        self.neigh
            .set_pinned(route_gateways(&self.cfg, &self.runtime_routes));
        self.routes_changed = true;
    }

    /// Forget the neighbours on `port` (every port if `None`), with their queued packets;
    /// they are resolved again on the next packet. Returns how many went.
    pub fn flush_neighbors(&mut self, port: Option<u16>) -> usize {
        let before = self.neigh.len();
        let ports = match port {
            Some(p) => p..p + 1,
            None => 0..u16::try_from(self.ports.len()).unwrap_or(u16::MAX),
        };
        for p in ports {
            self.neigh.flush_port(PortId(p));
        }
        before - self.neigh.len()
    }

    /// Build the next snapshot from the current routes and resolved neighbours.
    pub fn snapshot(&mut self) -> Snapshot {
        self.generation += 1;
        self.published_neigh = Some(self.neigh.generation());
        self.routes_changed = false;
        let mut adjs = AdjTable::default();
        let mut neighbors = ahash::HashMap::default();
        for (ip, mac, port) in self.neigh.iter_resolved() {
            let p = &self.ports[usize::from(port.0)];
            let idx = adjs.push(Adjacency::new(mac, p.mac, port));
            neighbors.insert(u32::from(ip), idx);
        }
        let nexthop_adj = self
            .routes
            .nexthops()
            .iter()
            .map(|nh| match nh {
                NextHop::Via { gateway, .. } => neighbors
                    .get(&u32::from(*gateway))
                    .map_or(NO_ADJ, |a: &AdjIndex| a.0),
                _ => NO_ADJ,
            })
            .collect();
        let groups = self.ecmp_tables();
        Snapshot {
            groups,
            ecmp_seed: self.ecmp_seed,
            generation: self.generation,
            fib: self.routes.fib().clone(),
            nexthops: self.routes.nexthops().into(),
            nexthop_adj,
            adjs,
            neighbors,
            neigh_failed: self.neigh.iter_failed().map(u32::from).collect(),
            neigh_retrans_ns: u64::try_from(self.cfg.neighbor.retrans_time.as_nanos())
                .unwrap_or(u64::MAX),
            idle_poll: self.cfg.dataplane.idle_poll,
            ports: self.ports.clone(),
            nat: self.nat_fast.clone(),
            nat_policy: self
                .nat
                .clone()
                .filter(|_| self.cfg.nat.as_ref().is_some_and(|n| n.sessions_in_workers)),
        }
    }

    /// The ECMP groups as the workers get them: a gateway whose ARP failed leaves its
    /// groups until it answers again.
    pub fn ecmp_tables(&self) -> Arc<[EcmpTable]> {
        let failed: std::collections::HashSet<Ipv4Addr> = self.neigh.iter_failed().collect();
        let nexthops = self.routes.nexthops();
        self.routes
            .groups()
            .iter()
            .map(|g| {
                let live: Vec<bool> = g
                    .members
                    .iter()
                    .map(|&m| match nexthops[m as usize] {
                        NextHop::Via { gateway, .. } => !failed.contains(&gateway),
                        _ => true,
                    })
                    .collect();
                EcmpTable {
                    members: g.members.clone().into(),
                    buckets: crate::dataplane::ecmp::buckets(&g.weights, &live),
                }
            })
            .collect()
    }

    /// The flow-hash seed the workers use.
    pub fn ecmp_seed(&self) -> u64 {
        self.ecmp_seed
    }

    /// Frames to transmit, as `(port, frame)`.
    pub fn take_output(&mut self) -> Vec<(u16, Vec<u8>)> {
        let mut out = std::mem::take(&mut self.out);
        self.drop_to_down_ports(&mut out);
        out
    }

    /// Handle one punted packet.
    pub fn handle(&mut self, now: Instant, punt: &Punt) {
        let frame = &punt.frame;
        if frame.len() < ethernet::HEADER_LEN {
            return;
        }
        let l2_multicast = ethernet::Frame::new_unchecked(&frame[..])
            .dst_addr()
            .is_multicast();
        let l3 = &frame[ethernet::HEADER_LEN..];
        match punt.reason {
            PuntReason::Arp => self.handle_arp(now, punt.rx_port, l3),
            PuntReason::ToUs => self.handle_local(now, l3),
            PuntReason::TtlExpired => {
                self.send_error(now, IcmpError::TtlExceeded, l3, l2_multicast)
            }
            PuntReason::NoRoute | PuntReason::Unreachable => {
                let e = IcmpError::Unreachable {
                    code: unreach::NET,
                    mtu: 0,
                };
                self.send_error(now, e, l3, l2_multicast)
            }
            PuntReason::Prohibit => {
                let e = IcmpError::Unreachable {
                    code: unreach::ADMIN_PROHIBITED,
                    mtu: 0,
                };
                self.send_error(now, e, l3, l2_multicast)
            }
            PuntReason::NeedFrag => {
                let mtu = self.port_mtu(punt.tx_port);
                let e = IcmpError::Unreachable {
                    code: unreach::FRAG_NEEDED,
                    mtu,
                };
                self.send_error(now, e, l3, l2_multicast)
            }
            PuntReason::Fragment
                if self.nat_fast.as_ref().is_some_and(|n| {
                    let p = Packet::new_unchecked(l3);
                    n.concerns(p.src_addr(), p.dst_addr(), punt.rx_port, Some(punt.tx_port))
                }) =>
            {
                let reason = if Packet::new_unchecked(l3).is_fragment() {
                    PuntReason::NatFragment
                } else {
                    PuntReason::NatMiss
                };
                self.nat_punt(now, reason, l3, punt.rx_port, l2_multicast)
            }
            PuntReason::ArpMiss | PuntReason::Fragment => {
                self.forward(now, punt.tx_port, punt.next_hop, l3, l2_multicast)
            }
            PuntReason::NatMiss
            | PuntReason::NatTooBig
            | PuntReason::NatTcpControl
            | PuntReason::NatIcmpError
            | PuntReason::NatFragment => {
                self.nat_punt(now, punt.reason, l3, punt.rx_port, l2_multicast)
            }
        }
    }

    /// Hand a packet to the NAT slow path and act on its decision.
    fn nat_punt(
        &mut self,
        now: Instant,
        reason: PuntReason,
        l3: &[u8],
        rx_port: u16,
        l2_multicast: bool,
    ) {
        let Some(why) = nat::exception(reason) else {
            return;
        };
        let Some(outcome) = self.nat().map(|mut n| n.handle(now, why, l3, rx_port)) else {
            return;
        };
        match outcome {
            NatOutcome::Forward(pkts) => {
                for p in pkts {
                    self.forward_routed(now, &p, l2_multicast);
                }
            }
            NatOutcome::Reject(code) => self.send_error(
                now,
                IcmpError::Unreachable { code, mtu: 0 },
                l3,
                l2_multicast,
            ),
            NatOutcome::ToUs => self.handle_local(now, l3),
            NatOutcome::Nothing => {}
        }
    }

    /// Forward a transit packet by looking its destination up (after NAT changed it).
    fn forward_routed(&mut self, now: Instant, l3: &[u8], l2_multicast: bool) {
        let dst = Packet::new_unchecked(l3).dst_addr();
        match self.routes.output(dst) {
            Some((port, nh)) => self.forward(now, port, nh, l3, l2_multicast),
            None => self.counters.inc(ControlEvent::NoRouteOut),
        }
    }

    /// Timers: ARP retransmission, neighbour ageing and failure.
    pub fn tick(&mut self, now: Instant) {
        let log = self.nat_log.as_ref();
        let refused = self
            .nat()
            .map(|mut n| {
                let refused = n.tick(now);
                if let Some(l) = log {
                    let dropped = l.offer(n.take_log());
                    n.counters.add(nat::NatEvent::LogDropped, dropped as u64);
                }
                refused
            })
            .unwrap_or_default();
        {
            // RFC 5382 REQ-4: a held unsolicited SYN nobody opened gets port unreachable.
            for syn in refused {
                let e = IcmpError::Unreachable {
                    code: unreach::PORT,
                    mtu: 0,
                };
                self.send_error(now, e, &syn, false);
            }
        }
        let mut events = Vec::new();
        self.neigh.poll(now, &mut events);
        for ev in events {
            match ev {
                NeighEvent::SendRequest { ip, port, unicast } => {
                    self.send_arp_request(port.0, ip, unicast)
                }
                NeighEvent::Unreachable { pending, .. } => {
                    for ip in pending {
                        self.host_unreachable(now, ip);
                    }
                }
                NeighEvent::Expired { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_key_is_random_per_run() {
        // Two keys from the OS source: equal with probability 2^-64 (a constant, or time
        // and pid read within one tick, would be equal or nearly so).
        let (a, b) = (super::port_key(), super::port_key());
        assert_ne!(a, b);
        assert!((a ^ b).count_ones() > 4, "{a:x} {b:x}");
    }
}
