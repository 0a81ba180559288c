//! Kernel mirror mode (`[kernel] mirror = true`; issue 12): the kernel of xgw's network
//! namespace owns the addresses, ARP and the routing table, and the control plane mirrors
//! them (DESIGN R21).
//!
//! - **Routes**: the imported table ([`KernelRoutes`]) is resolved onto xgw's ports and
//!   built into the FIB once a burst of changes has settled (`[kernel] coalesce`), with the
//!   configuration's `[[route]]`s and the runtime routes (`xgw route add`) on top: a prefix
//!   one of them has is not taken from the kernel.
//! - **Neighbours**: the kernel's usable entries (reachable, stale, delay, probe,
//!   permanent) on xgw's ports are learned as ARP replies would be, releasing the packets
//!   held for them; where xgw would send an ARP request it asks the kernel to resolve
//!   instead (RTM_NEWNEIGH with NTF_USE, sent by the runtime), so the kernel is the one ARP
//!   speaker. xgw's own timers still age entries and fail unanswered ones.
//! - **Addresses**: every IPv4 address of the namespace is the host's: the XDP program
//!   passes frames to them to the kernel. The runtime applies the changes queued here; a
//!   port whose own addresses change takes them at once (ICMP source, local, broadcast
//!   and connected routes).
//!
//! Sans-I/O, like the rest of the control plane: messages in, routes, neighbour updates
//! and outgoing requests out.

use std::{
    collections::{BTreeSet, HashSet},
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use tracing::info;

use super::{
    kfib::KernelFib,
    kroutes::{ImportSettings, KernelRoutes},
    ControlEvent, ControlPlane,
};
use crate::{
    config::KernelSettings,
    kernel::{AddrMsg, DumpKind, KernelMsg, NeighMsg},
    neigh::PortId,
    wire::{ethernet::MacAddr, ipv4::Cidr},
};

/// Neighbour resolutions waiting for the runtime to send at most; more are dropped (and
/// counted) until it drains them: xgw's retransmission timer asks again.
pub const MAX_SOLICITS: usize = 4096;
/// After a FIB build that took `t`, the next waits at least `BUILD_HOLD_OFF * t`: under
/// sustained route churn, building takes at most a tenth of the control thread. With the
/// prefix-by-prefix import a DFZ-size build is ~50 ms, so a change then waits up to about
/// half a second longer than `[kernel] coalesce`; with small tables builds take
/// microseconds and the hold-off is nothing.
pub const BUILD_HOLD_OFF: u32 = 9;

/// The mirror's state.
#[derive(Debug)]
pub struct Mirror {
    routes: KernelRoutes,
    /// The kernel's routes as last resolved onto the ports.
    kfib: KernelFib,
    /// Resolutions to ask the kernel for: `(ifindex, address)`.
    solicits: Vec<(u32, Ipv4Addr)>,
    /// The namespace's addresses as last known.
    addresses: BTreeSet<AddrMsg>,
    /// An address dump in progress: its sequence number and what it listed.
    addr_dump: Option<(u32, BTreeSet<AddrMsg>)>,
    /// The host addresses the runtime was last given (the XDP program's map).
    published_hosts: BTreeSet<Ipv4Addr>,
    /// The addresses changed since then.
    hosts_dirty: bool,
    /// The NAT's external addresses: xgw's, never the host's.
    nat_pool: HashSet<Ipv4Addr>,
    epoch: Instant,
    /// The first import has been built into the FIB.
    imported: bool,
}

impl Mirror {
    /// A mirror importing as `k` says, knowing the namespace's `addresses` at start.
    pub fn new(
        k: &KernelSettings,
        addresses: &[AddrMsg],
        nat_pool: &[Ipv4Addr],
        epoch: Instant,
    ) -> Mirror {
        let mut m = Mirror {
            routes: KernelRoutes::new(ImportSettings {
                table: k.table,
                max_routes: k.max_routes,
                coalesce: k.coalesce,
            }),
            kfib: KernelFib::default(),
            solicits: Vec::new(),
            addresses: addresses.iter().copied().collect(),
            addr_dump: None,
            published_hosts: BTreeSet::new(),
            hosts_dirty: false,
            nat_pool: nat_pool.iter().copied().collect(),
            epoch,
            imported: false,
        };
        m.published_hosts = m.host_addresses().into_iter().collect();
        m
    }

    /// The host's addresses (every address of the namespace but the NAT pool's): frames to
    /// them go to the kernel.
    pub fn host_addresses(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .addresses
            .iter()
            .map(|a| a.addr)
            .filter(|a| !self.nat_pool.contains(a))
            .collect();
        v.dedup();
        v
    }

    /// The import state (for `show` and tests).
    pub fn kernel_routes(&self) -> &KernelRoutes {
        &self.routes
    }

    /// The kernel's routes as the FIB has them now.
    pub fn kernel_fib(&self) -> &KernelFib {
        &self.kfib
    }

    fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// Add or remove one address; true if that changed the set.
    fn address(&mut self, a: AddrMsg, add: bool) -> bool {
        let changed = if add {
            self.addresses.insert(a)
        } else {
            self.addresses.remove(&a)
        };
        self.hosts_dirty |= changed;
        changed
    }

    /// The host addresses added (true) and removed (false) since the last call: the
    /// difference between what the runtime was given and the namespace's addresses now
    /// (by address: two prefixes of one address, or a changed prefix length, are one).
    fn host_changes(&mut self) -> Vec<(Ipv4Addr, bool)> {
        if !std::mem::take(&mut self.hosts_dirty) {
            return Vec::new();
        }
        let now: BTreeSet<Ipv4Addr> = self.host_addresses().into_iter().collect();
        let mut out: Vec<(Ipv4Addr, bool)> = now
            .difference(&self.published_hosts)
            .map(|a| (*a, true))
            .collect();
        out.extend(self.published_hosts.difference(&now).map(|a| (*a, false)));
        self.published_hosts = now;
        out
    }

    /// An address dump ended: it is the namespace's set now. Returns the addresses that
    /// came or went.
    fn addr_dump_done(&mut self, listed: BTreeSet<AddrMsg>) -> Vec<AddrMsg> {
        let changed: Vec<AddrMsg> = self
            .addresses
            .symmetric_difference(&listed)
            .copied()
            .collect();
        self.hosts_dirty |= !changed.is_empty();
        self.addresses = listed;
        changed
    }
}

impl ControlPlane {
    /// Turn kernel mirror mode on (before the first message).
    pub fn set_mirror(&mut self, m: Mirror) {
        self.mirror = Some(m);
    }

    /// The mirror, in kernel mirror mode.
    pub fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_ref()
    }

    /// The port of the device `ifindex`, if it is one of xgw's (and not deleted).
    fn port_of_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.links
            .ports()
            .iter()
            .position(|p| p.ifindex == ifindex && !p.gone)
    }

    /// Apply one netlink message to the mirror (nothing outside mirror mode). Links are
    /// [`ControlPlane::link_message`]'s.
    pub fn kernel_message(&mut self, now: Instant, m: &KernelMsg) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        let t = mirror.since(now);
        match m {
            KernelMsg::DumpStart {
                seq,
                kind: DumpKind::Routes,
            } => mirror.routes.begin_dump(*seq),
            KernelMsg::DumpStart {
                seq,
                kind: DumpKind::Addresses,
            } => mirror.addr_dump = Some((*seq, BTreeSet::new())),
            KernelMsg::Addr(a) => match &mut mirror.addr_dump {
                Some((_, listed)) => {
                    listed.insert(*a);
                }
                None => self.kernel_address(*a, true),
            },
            KernelMsg::AddrDeleted(a) => {
                if let Some((_, listed)) = &mut mirror.addr_dump {
                    listed.remove(a);
                }
                self.kernel_address(*a, false);
            }
            KernelMsg::DumpDone { seq } | KernelMsg::Error { seq, .. }
                if mirror.addr_dump.as_ref().is_some_and(|(s, _)| s == seq) =>
            {
                let (_, listed) = mirror.addr_dump.take().unwrap_or_default();
                if matches!(m, KernelMsg::DumpDone { .. }) {
                    for a in mirror.addr_dump_done(listed) {
                        self.port_address_changed(a);
                    }
                }
            }
            KernelMsg::Neigh(n) => self.kernel_neighbour(now, n),
            _ => {
                if mirror.routes.apply(m, t) {
                    self.counters.inc(ControlEvent::KernelRouteChanges);
                }
            }
        }
    }

    fn kernel_address(&mut self, a: AddrMsg, add: bool) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        if mirror.address(a, add) {
            self.port_address_changed(a);
        }
    }

    /// A port's own address changed in the kernel: the port takes the kernel's addresses
    /// as they are now (its ICMP source, local and broadcast routes and connected subnets
    /// follow; the addresses it kept stay in their order, so the primary stays first
    /// while it exists). Counted and logged.
    fn port_address_changed(&mut self, a: AddrMsg) {
        if self
            .mirror
            .as_ref()
            .is_some_and(|m| m.nat_pool.contains(&a.addr))
        {
            return;
        }
        let Some(p) = self.port_of_ifindex(a.ifindex) else {
            return;
        };
        self.counters.inc(ControlEvent::KernelAddressChanged);
        self.port_takes_kernel_addresses(p);
    }

    /// Mirror mode: port `p` takes its device's addresses as the kernel has them now (also
    /// after the port was attached to a re-created device, whose addresses came while it
    /// was gone).
    pub(super) fn port_takes_kernel_addresses(&mut self, p: usize) {
        let (Some(m), Some(ifindex)) = (
            self.mirror.as_ref(),
            self.links.ports().get(p).map(|l| l.ifindex),
        ) else {
            return;
        };
        let now: Vec<Cidr> = m
            .addresses
            .iter()
            .filter(|x| x.ifindex == ifindex && !m.nat_pool.contains(&x.addr))
            .map(|x| Cidr::new(x.addr, x.len.min(32)))
            .collect();
        let old = &self.cfg.interfaces[p].addresses;
        let mut next: Vec<Cidr> = old.iter().filter(|c| now.contains(c)).copied().collect();
        next.extend(now.iter().filter(|c| !old.contains(c)));
        if next == *old {
            return;
        }
        info!(
            port = %self.cfg.interfaces[p].name,
            addresses = ?next.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "kernel addresses of a port changed: the port follows"
        );
        self.cfg.interfaces[p].addresses.clone_from(&next);
        let mut ports: Vec<crate::dataplane::PortInfo> = self.ports.to_vec();
        ports[p].addresses = next;
        self.ports = ports.into();
        self.rebuild_routes();
    }

    fn kernel_neighbour(&mut self, now: Instant, n: &NeighMsg) {
        let (Some(port), Some(mac)) = (self.port_of_ifindex(n.ifindex), n.mac) else {
            return;
        };
        if !n.state.is_usable() {
            return;
        }
        let port = u16::try_from(port).unwrap_or(u16::MAX);
        let mac = MacAddr(mac);
        let learned = self.neigh.learn(now, n.addr, mac, PortId(port), true);
        if learned.changed {
            self.counters.inc(ControlEvent::NeighKernelLearned);
        }
        for ip in learned.released {
            self.emit_ip(port, mac, &ip);
        }
    }

    /// Mirror mode: ask the kernel to resolve `ip` on `port` (instead of an ARP request).
    pub(super) fn kernel_solicit(&mut self, port: u16, ip: Ipv4Addr) {
        let Some(ifindex) = self.links.ports().get(usize::from(port)).map(|p| p.ifindex) else {
            return;
        };
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        if mirror.solicits.len() >= MAX_SOLICITS {
            self.counters.inc(ControlEvent::NeighSolicitDropped);
            return;
        }
        mirror.solicits.push((ifindex, ip));
        self.counters.inc(ControlEvent::NeighKernelSolicits);
    }

    /// The resolutions to ask the kernel for, as `(ifindex, address)`.
    pub fn take_solicits(&mut self) -> Vec<(u32, Ipv4Addr)> {
        self.mirror
            .as_mut()
            .map(|m| std::mem::take(&mut m.solicits))
            .unwrap_or_default()
    }

    /// Host addresses added (true) or removed (false) since the last call.
    pub fn take_host_changes(&mut self) -> Vec<(Ipv4Addr, bool)> {
        self.mirror
            .as_mut()
            .map(Mirror::host_changes)
            .unwrap_or_default()
    }

    /// When the next kernel FIB is due, if one is pending.
    pub fn kernel_routes_due_in(&self, now: Instant) -> Option<Duration> {
        let m = self.mirror.as_ref()?;
        m.routes.due_in(m.since(now))
    }

    /// Build the FIB from the kernel's routes if a settled change is pending; true if it did.
    pub fn publish_kernel_routes(&mut self, now: Instant) -> bool {
        let Some(m) = self.mirror.as_ref() else {
            return false;
        };
        if !m.routes.due(m.since(now)) {
            return false;
        }
        let started = Instant::now();
        self.rebuild_routes();
        let Some(m) = self.mirror.as_mut() else {
            return false;
        };
        m.routes.published();
        let n = m.kfib.len();
        self.counters.inc(ControlEvent::KernelFibBuilt);
        let took = started.elapsed();
        if let Some(m) = self.mirror.as_mut() {
            let t = m.since(now) + took * (BUILD_HOLD_OFF + 1);
            m.routes.hold_off(t);
        }
        let first = self
            .mirror
            .as_mut()
            .is_some_and(|m| !std::mem::replace(&mut m.imported, true));
        if first {
            info!(
                routes = n,
                ms = took.as_millis() as u64,
                "kernel routes imported"
            );
        } else if took > Duration::from_millis(100) {
            info!(
                routes = n,
                ms = took.as_millis() as u64,
                "kernel routes built into the FIB"
            );
        }
        true
    }

    /// Mirror mode: bring the kernel's layer of the route table up to date (before the
    /// table is built from it).
    pub(super) fn sync_kernel_fib(&mut self) {
        let ports = self
            .links
            .ports()
            .iter()
            .enumerate()
            .map(|(p, l)| (l.ifindex, !l.gone && self.links.is_up(p)))
            .collect();
        if let Some(m) = self.mirror.as_mut() {
            if m.kfib.sync(&mut m.routes, ports) {
                self.counters.inc(ControlEvent::KernelFullResolves);
            }
        }
    }
}
