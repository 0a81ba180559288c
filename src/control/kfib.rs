//! The kernel's routes as FIB values (mirror mode; issue 12), kept up to date prefix by
//! prefix.
//!
//! A burst of route changes re-resolves only the prefixes it touched: each one's best
//! kernel route is mapped onto xgw's ports and its value set in a persistent route set,
//! which [`super::routes::Routes::build`] takes as the bottom layer. So the cost of a
//! burst is that of the changes plus one compile of the FIB, not a re-import of the whole
//! table (at DFZ size the full re-import took over a second of the control thread).
//!
//! Everything is resolved again from the kernel's table when that is cheaper or when the
//! prefix-by-prefix result could differ from it: after a dump, a nexthop-object change
//! (it may move any route), when a port went up or down, was deleted or changed its
//! ifindex, and when enough next hops are no longer used by any route that dropping
//! them is worth it (they are never reused otherwise, so this bounds the table).

use std::net::Ipv4Addr;

use super::{
    kroutes::{Dirty, KernelRoutes},
    routes::NextHops,
};
use crate::{
    config::Route,
    dataplane::NextHop,
    fib::{FibBuilder, Prefix},
};

/// Unused next hops tolerated before a full re-resolve (and at most as many as are used).
const MAX_UNUSED: usize = 1024;

/// A port as the resolution saw it: its device's ifindex, and whether routes may use it
/// (up and not deleted).
pub type PortView = (u32, bool);

/// The kernel's routes resolved onto the ports.
#[derive(Debug, Clone, Default)]
pub struct KernelFib {
    builder: FibBuilder,
    nexthops: NextHops,
    /// Prefixes using each value.
    uses: Vec<u32>,
    /// Values no prefix uses.
    unused: usize,
    /// The ports it was resolved for.
    ports: Vec<PortView>,
    /// Full resolutions done (the first import included).
    pub full_builds: u64,
    /// Prefixes resolved one by one.
    pub prefix_updates: u64,
}

impl KernelFib {
    /// Bring the set up to date with `routes` for the ports as they are now, taking what
    /// changed there since the last call. Returns whether it resolved the whole table.
    pub fn sync(&mut self, routes: &mut KernelRoutes, ports: Vec<PortView>) -> bool {
        let dirty = routes.take_dirty();
        let full = matches!(dirty, Dirty::All)
            || ports != self.ports
            || (self.unused > MAX_UNUSED && self.unused * 2 > self.nexthops.len());
        if full {
            let (full_builds, prefix_updates) = (self.full_builds + 1, self.prefix_updates);
            *self = KernelFib::resolve_all(routes, ports);
            self.full_builds = full_builds;
            self.prefix_updates = prefix_updates;
        } else if let Dirty::Keys(keys) = dirty {
            for key in keys {
                self.update(routes, key);
            }
        }
        full
    }

    fn resolve_all(routes: &KernelRoutes, ports: Vec<PortView>) -> KernelFib {
        let mut k = KernelFib {
            ports,
            ..KernelFib::default()
        };
        let mut set = Vec::with_capacity(routes.len());
        for key in routes.keys() {
            let r = routes.resolve_prefix(*key, |ifx| k.port_of(ifx));
            if let Some(v) = k.nexthops.value_of(&r.iter().collect::<Vec<_>>()) {
                set.push((prefix(*key), v));
            }
        }
        k.uses = vec![0; k.nexthops.len()];
        k.unused = k.uses.len();
        for &(_, v) in &set {
            k.count(v, true);
        }
        k.builder = set.into_iter().collect();
        k
    }

    fn update(&mut self, routes: &KernelRoutes, key: (u32, u8)) {
        self.prefix_updates += 1;
        let r: Vec<Route> = routes.resolve_prefix(key, |ifx| self.port_of(ifx));
        let new = self.nexthops.value_of(&r.iter().collect::<Vec<_>>());
        if self.uses.len() < self.nexthops.len() {
            self.unused += self.nexthops.len() - self.uses.len();
            self.uses.resize(self.nexthops.len(), 0);
        }
        let p = prefix(key);
        let old = match new {
            Some(v) => self.builder.insert(p, v),
            None => self.builder.remove(p),
        };
        if let Some(v) = new {
            self.count(v, true);
        }
        if let Some(v) = old {
            self.count(v, false);
        }
    }

    /// One more (`up`) or one fewer prefix uses value `v`, and so each member of its group.
    fn count(&mut self, v: u32, up: bool) {
        let members: Vec<u32> = match self.nexthops.get(v) {
            Some(NextHop::Group { id }) => self
                .nexthops
                .group(id)
                .map_or_else(Vec::new, |g| g.members.clone()),
            _ => Vec::new(),
        };
        for x in std::iter::once(v).chain(members) {
            let u = &mut self.uses[x as usize];
            if up {
                if *u == 0 {
                    self.unused -= 1;
                }
                *u += 1;
            } else {
                *u -= 1;
                if *u == 0 {
                    self.unused += 1;
                }
            }
        }
    }

    fn port_of(&self, ifindex: u32) -> Option<usize> {
        self.ports
            .iter()
            .position(|&(ifx, usable)| usable && ifx == ifindex)
    }

    /// The route set, `prefix -> value` (values index [`KernelFib::nexthops`]).
    pub fn builder(&self) -> &FibBuilder {
        &self.builder
    }

    /// The next hops and groups the values stand for.
    pub fn nexthops(&self) -> &NextHops {
        &self.nexthops
    }

    /// Prefixes imported.
    pub fn len(&self) -> usize {
        self.builder.len()
    }

    /// None are.
    pub fn is_empty(&self) -> bool {
        self.builder.is_empty()
    }

    /// Next hops no prefix uses (kept until the next full resolution).
    pub fn unused(&self) -> usize {
        self.unused
    }
}

fn prefix((net, len): (u32, u8)) -> Prefix {
    Prefix::new(Ipv4Addr::from(net), len)
}

#[cfg(test)]
#[path = "kfib_tests.rs"]
mod tests;
