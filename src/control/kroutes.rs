//! The kernel's routing table as a kernel-mirror router imports it (DESIGN R21; issue 12).
//!
//! Fed the decoded netlink messages ([`crate::kernel::KernelMsg`]): a full dump at start,
//! then RTM_NEWROUTE/DELROUTE and nexthop-object events. It keeps the kernel's routes of one
//! table (all metrics of each prefix: the lowest wins, as in the kernel, and a withdrawn
//! best uncovers the next) and the nexthop objects, and says when a new FIB is **due**:
//! changes are coalesced for `coalesce` after the first one, so a burst of thousands of
//! updates costs one table build and one publish, and a change waits at most that long.
//!
//! **Resync**: a dump (at start, after lost events or an interrupted dump) is staged
//! beside the table in use and replaces it only when complete: a route the dump did not
//! list is gone, and forwarding uses the old table until then. An error ends the dump
//! without applying it (the caller dumps again).
//!
//! **Bounded**: at most `max_routes` prefixes; a new prefix beyond that is refused and
//! counted, never evicting what is there.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
    time::Duration,
};

use crate::{
    config::{Route, RouteTarget},
    kernel::{KernelMsg, NexthopMsg, RouteKind, RouteMsg, RoutePath},
    wire::ipv4::Cidr,
};

/// What to import and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSettings {
    /// The kernel table (254 is `main`).
    pub table: u32,
    /// Prefixes kept at most.
    pub max_routes: usize,
    /// How long after the first change of a burst the new FIB is due.
    pub coalesce: Duration,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            table: 254,
            max_routes: 2_000_000,
            coalesce: Duration::from_millis(20),
        }
    }
}

/// What the import did (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Route messages of the imported table applied (added, replaced or deleted).
    pub applied: u64,
    /// New prefixes refused because `max_routes` were held.
    pub refused_full: u64,
    /// Completed dumps.
    pub dumps: u64,
    /// Dumps abandoned (an error, or another dump started).
    pub dumps_abandoned: u64,
}

/// One of a prefix's kernel routes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KRoute {
    priority: u32,
    kind: RouteKind,
    paths: Box<[RoutePath]>,
    nh_id: Option<u32>,
}

type Table = HashMap<(u32, u8), Vec<KRoute>>;

/// What changed in the table in use since [`KernelRoutes::take_dirty`] was last called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dirty {
    /// Only these prefixes (`(network, length)`).
    Keys(HashSet<(u32, u8)>),
    /// Anything may have: resolve the whole table.
    All,
}

impl Default for Dirty {
    fn default() -> Self {
        Dirty::Keys(HashSet::new())
    }
}

/// Changed prefixes tracked one by one at most; beyond, the whole table is resolved again.
pub const MAX_DIRTY: usize = 65_536;

#[derive(Debug, Default, Clone)]
struct Staged {
    seq: u32,
    routes: Table,
    nexthops: HashMap<u32, NexthopMsg>,
}

/// The imported table.
#[derive(Debug, Clone)]
pub struct KernelRoutes {
    settings: ImportSettings,
    routes: Table,
    nexthops: HashMap<u32, NexthopMsg>,
    staged: Option<Staged>,
    /// What changed in `routes` since the caller last took it.
    dirty: Dirty,
    /// When the first unpublished change happened (the caller's clock).
    dirty_since: Option<Duration>,
    /// No FIB is due before this (see [`KernelRoutes::hold_off`]).
    hold_until: Duration,
    /// What it did.
    pub stats: ImportStats,
}

impl KernelRoutes {
    /// An empty table.
    pub fn new(settings: ImportSettings) -> KernelRoutes {
        KernelRoutes {
            settings,
            routes: HashMap::new(),
            nexthops: HashMap::new(),
            staged: None,
            dirty: Dirty::All,
            dirty_since: None,
            hold_until: Duration::ZERO,
            stats: ImportStats::default(),
        }
    }

    /// No new FIB is due before `until` (the caller's clock): after a build that took `t`,
    /// the caller holds the next off for a multiple of `t`, so that under sustained churn
    /// building takes a bounded share of its thread whatever the table's size.
    pub fn hold_off(&mut self, until: Duration) {
        self.hold_until = until;
    }

    /// Prefixes held (in the table in use).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No prefix held.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// A dump with sequence number `seq` was requested: what it lists until its
    /// `DumpDone` replaces the table. A dump already running is abandoned.
    pub fn begin_dump(&mut self, seq: u32) {
        if self.staged.is_some() {
            self.stats.dumps_abandoned += 1;
        }
        self.staged = Some(Staged {
            seq,
            ..Staged::default()
        });
    }

    /// A dump is running.
    pub fn dumping(&self) -> bool {
        self.staged.is_some()
    }

    /// Apply one message at time `now`; true if the routes may have changed.
    pub fn apply(&mut self, m: &KernelMsg, now: Duration) -> bool {
        let changed = match m {
            KernelMsg::Route(r) => self.route(r, false),
            KernelMsg::RouteDeleted(r) => self.route(r, true),
            KernelMsg::Nexthop(n) => {
                self.nexthops_mut().insert(n.id, n.clone());
                self.dirty = Dirty::All;
                true
            }
            KernelMsg::NexthopDeleted { id } => {
                // The kernel drops the routes using it without telling: so do we.
                let gone = self.nexthops_mut().remove(id).is_some();
                let id = *id;
                self.table_mut().retain(|_, v| {
                    v.retain(|r| r.nh_id != Some(id));
                    !v.is_empty()
                });
                self.dirty = Dirty::All;
                gone
            }
            KernelMsg::DumpDone { seq } if self.staged.as_ref().is_some_and(|s| s.seq == *seq) => {
                let s = self.staged.take().unwrap_or_default();
                self.routes = s.routes;
                self.nexthops = s.nexthops;
                self.dirty = Dirty::All;
                self.stats.dumps += 1;
                true
            }
            KernelMsg::Error { seq, .. } if self.staged.as_ref().is_some_and(|s| s.seq == *seq) => {
                self.staged = None;
                self.stats.dumps_abandoned += 1;
                false
            }
            _ => false,
        };
        // While a dump runs, the table in use does not change (changes go to the staged
        // one): nothing is due until it completes.
        if changed && self.dirty_since.is_none() {
            self.dirty_since = Some(now);
        }
        changed
    }

    /// A new FIB should be built and published now.
    pub fn due(&self, now: Duration) -> bool {
        self.staged.is_none()
            && now >= self.hold_until
            && self
                .dirty_since
                .is_some_and(|t| now.saturating_sub(t) >= self.settings.coalesce)
    }

    /// When the next FIB will be due (for the caller's poll timeout), if one is pending.
    pub fn due_in(&self, now: Duration) -> Option<Duration> {
        let t = self.dirty_since?;
        Some(
            (t + self.settings.coalesce)
                .max(self.hold_until)
                .saturating_sub(now),
        )
    }

    /// The routes were built into a FIB: nothing is pending.
    pub fn published(&mut self) {
        self.dirty_since = None;
    }

    /// What changed since the last call (everything, the first time).
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    /// A prefix of the table in use changed.
    fn touch(&mut self, key: (u32, u8)) {
        if self.staged.is_some() {
            return; // the dump's end marks everything
        }
        if let Dirty::Keys(k) = &mut self.dirty {
            k.insert(key);
            if k.len() > MAX_DIRTY {
                self.dirty = Dirty::All;
            }
        }
    }

    /// The prefixes held, as `(network, length)`, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &(u32, u8)> + '_ {
        self.routes.keys()
    }

    fn table_mut(&mut self) -> &mut Table {
        match &mut self.staged {
            Some(s) => &mut s.routes,
            None => &mut self.routes,
        }
    }

    fn nexthops_mut(&mut self) -> &mut HashMap<u32, NexthopMsg> {
        match &mut self.staged {
            Some(s) => &mut s.nexthops,
            None => &mut self.nexthops,
        }
    }

    fn route(&mut self, r: &RouteMsg, delete: bool) -> bool {
        if r.table != self.settings.table {
            return false;
        }
        let len = r.len.min(32);
        let net = if len == 0 {
            0
        } else {
            u32::from(r.dst) & (u32::MAX << (32 - u32::from(len)))
        };
        let key = (net, len);
        let max = self.settings.max_routes;
        let table = self.table_mut();
        if delete {
            let Some(v) = table.get_mut(&key) else {
                return false;
            };
            let before = v.len();
            v.retain(|k| k.priority != r.priority);
            let changed = v.len() != before;
            if v.is_empty() {
                table.remove(&key);
            }
            if changed {
                self.stats.applied += 1;
                self.touch(key);
            }
            return changed;
        }
        if !table.contains_key(&key) && table.len() >= max {
            self.stats.refused_full += 1;
            return false;
        }
        let k = KRoute {
            priority: r.priority,
            kind: r.kind,
            paths: r.paths.clone().into_boxed_slice(),
            nh_id: r.nh_id,
        };
        let v = table.entry(key).or_default();
        match v.iter_mut().find(|x| x.priority == r.priority) {
            Some(x) => *x = k,
            None => {
                v.push(k);
                v.sort_by_key(|x| x.priority);
            }
        }
        self.stats.applied += 1;
        self.touch(key);
        true
    }

    /// The routes to forward by, as the file's routes are: each prefix's best kernel route
    /// (lowest metric), its paths on xgw's ports (`port_of` maps an ifindex to a port; a
    /// path through another device is left out, and a route with none left is not
    /// imported, so the packets follow a less specific route). A route through a nexthop
    /// object uses the object as it is now (a group's members, with their weights).
    /// Unreachable and prohibit stay what they are; local, broadcast and other types are
    /// not forwarding routes and are left out.
    pub fn resolve(&self, port_of: impl Fn(u32) -> Option<usize>) -> Vec<Route> {
        let mut out = Vec::with_capacity(self.routes.len());
        let mut keys: Vec<&(u32, u8)> = self.routes.keys().collect();
        keys.sort_unstable();
        for key in keys {
            out.extend(self.resolve_prefix(*key, &port_of));
        }
        out
    }

    /// [`KernelRoutes::resolve`] for one prefix `(network, length)`: its routes to forward
    /// by (none if it has none, or none on xgw's ports).
    pub fn resolve_prefix(
        &self,
        key: (u32, u8),
        port_of: impl Fn(u32) -> Option<usize>,
    ) -> Vec<Route> {
        let Some(best) = self.routes.get(&key).and_then(|v| v.first()) else {
            return Vec::new();
        };
        let prefix = Cidr::new(Ipv4Addr::from(key.0), key.1);
        let one = |target| {
            vec![Route {
                prefix,
                target,
                weight: 1,
            }]
        };
        match best.kind {
            RouteKind::Blackhole => one(RouteTarget::Blackhole),
            RouteKind::Unreachable => one(RouteTarget::Unreachable),
            RouteKind::Prohibit => one(RouteTarget::Prohibit),
            RouteKind::Unicast => {
                let paths = match best.nh_id {
                    Some(id) => match self.expand(id) {
                        Expanded::Paths(p) => p,
                        Expanded::Blackhole => return one(RouteTarget::Blackhole),
                    },
                    None => best.paths.to_vec(),
                };
                let on_ports: Vec<(RouteTarget, u16)> = paths
                    .iter()
                    .filter_map(|p| {
                        let interface = port_of(p.oif)?;
                        Some(match p.gateway {
                            Some(gateway) => (RouteTarget::Via { gateway, interface }, p.weight),
                            None => (RouteTarget::Dev { interface }, p.weight),
                        })
                    })
                    .collect();
                // Gateways make a (possibly multipath) route; an on-link route is
                // single-path, so without gateways the first path is the route.
                let vias = on_ports
                    .iter()
                    .filter(|(t, _)| matches!(t, RouteTarget::Via { .. }));
                if vias.clone().next().is_some() {
                    vias.map(|&(target, w)| Route {
                        prefix,
                        target,
                        weight: u8::try_from(w.clamp(1, 255)).unwrap_or(u8::MAX),
                    })
                    .collect()
                } else if let Some(&(target, _)) = on_ports.first() {
                    one(target)
                } else {
                    Vec::new()
                }
            }
            RouteKind::Local | RouteKind::Broadcast | RouteKind::Other(_) => Vec::new(),
        }
    }

    fn expand(&self, id: u32) -> Expanded {
        let Some(n) = self.nexthops.get(&id) else {
            return Expanded::Paths(Vec::new());
        };
        if n.blackhole {
            return Expanded::Blackhole;
        }
        if n.group.is_empty() {
            return Expanded::Paths(vec![RoutePath {
                gateway: n.gateway,
                oif: n.oif,
                weight: 1,
            }]);
        }
        // Groups hold single nexthops only (the kernel refuses nested groups).
        let paths = n
            .group
            .iter()
            .filter_map(|&(m, w)| {
                let m = self.nexthops.get(&m)?;
                (!m.blackhole && m.group.is_empty()).then_some(RoutePath {
                    gateway: m.gateway,
                    oif: m.oif,
                    weight: u16::try_from(w.min(256)).unwrap_or(256),
                })
            })
            .collect();
        Expanded::Paths(paths)
    }
}

enum Expanded {
    Paths(Vec<RoutePath>),
    Blackhole,
}

#[cfg(test)]
#[path = "kroutes_tests.rs"]
mod tests;
