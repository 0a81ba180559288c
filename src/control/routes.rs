//! Route table assembly: connected, local, broadcast and static routes from the config,
//! compiled into the FIB. Shared by the running router and `xgw route get`, so both choose
//! next hops the same way.

use std::{collections::HashMap, net::Ipv4Addr, sync::Arc};

use super::kfib::KernelFib;
use crate::{
    config::{Route, RouteTarget, ValidConfig},
    dataplane::NextHop,
    fib::{Fib, FibBuilder, Prefix},
    wire::ipv4::Cidr,
};

/// The control plane's route state: the exact-prefix builder, next hops, compiled FIB.
#[derive(Debug, Clone)]
pub struct Routes {
    /// Shared with `xgw show route` listings (which walk it off the control thread).
    builder: Arc<FibBuilder>,
    nexthops: Vec<NextHop>,
    /// ECMP groups (`NextHop::Group { id }` indexes them).
    groups: Arc<[Group]>,
    fib: Arc<Fib>,
}

/// One multipath route's gateways: `Via` next-hop indices and their weights, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// Next-hop indices (each a `NextHop::Via`).
    pub members: Vec<u32>,
    /// Their weights.
    pub weights: Vec<u8>,
}

/// Where a destination goes, as `xgw route get` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The matching prefix.
    pub prefix: Prefix,
    /// What it resolves to.
    pub nexthop: NextHop,
}

fn to_prefix(c: Cidr) -> Prefix {
    Prefix::new(c.address(), c.prefix_len())
}

impl Routes {
    /// Build the table for `cfg`.
    ///
    /// Precedence for equal prefixes: local /32 > broadcast /32 > connected > static
    /// (config validation rejects duplicate static prefixes).
    pub fn from_config(cfg: &ValidConfig) -> Routes {
        Routes::build(cfg, &[], None, &[])
    }

    /// The table for `cfg` plus `runtime` routes (`xgw route add`; their prefixes differ
    /// from the configuration's, which the caller ensures), with the same precedence.
    /// Ports marked in `down` (by index; missing means up) lose their connected and
    /// broadcast routes and every route through them; their addresses stay local.
    pub fn build(
        cfg: &ValidConfig,
        runtime: &[Route],
        kernel: Option<&KernelFib>,
        down: &[bool],
    ) -> Routes {
        let is_down = |p: usize| down.get(p).copied().unwrap_or(false);
        // The kernel's routes (mirror mode) are the bottom layer: its next hops keep their
        // values, and everything below replaces its routes of the same prefix.
        let (mut b, mut nh) = match kernel {
            Some(k) => (k.builder().clone(), k.nexthops().clone()),
            None => (FibBuilder::new(), NextHops::default()),
        };
        let all: Vec<&Route> = cfg.routes.iter().chain(runtime).collect();
        // A multipath route is consecutive routes of one prefix (config validation keeps
        // prefixes of different [[route]]s apart).
        for paths in all.chunk_by(|a, b| a.prefix == b.prefix) {
            let live: Vec<&Route> = paths
                .iter()
                .copied()
                .filter(|r| match r.target {
                    RouteTarget::Via { interface, .. } | RouteTarget::Dev { interface } => {
                        !is_down(interface)
                    }
                    _ => true,
                })
                .collect();
            let prefix = to_prefix(paths[0].prefix);
            // A configured route with no live path hides the kernel's too.
            match nh.value_of(&live) {
                Some(v) => b.insert(prefix, v),
                None => b.remove(prefix),
            };
        }
        let mut id = |n: NextHop| nh.intern(n);
        for (p, iface) in cfg
            .interfaces
            .iter()
            .enumerate()
            .filter(|(p, _)| !is_down(*p))
        {
            let port = port_id(p);
            for a in &iface.addresses {
                b.insert(to_prefix(a.network()), id(NextHop::Connected { port }));
            }
        }
        for (p, iface) in cfg
            .interfaces
            .iter()
            .enumerate()
            .filter(|(p, _)| !is_down(*p))
        {
            let port = port_id(p);
            for a in &iface.addresses {
                if let Some(bc) = a.broadcast() {
                    b.insert(Prefix::new(bc, 32), id(NextHop::Broadcast { port }));
                }
            }
        }
        for iface in &cfg.interfaces {
            for a in &iface.addresses {
                b.insert(Prefix::new(a.address(), 32), id(NextHop::Local));
            }
        }
        // The NAT's external addresses are ours too (the fast path translates to them).
        for a in cfg.nat.iter().flat_map(|n| &n.addresses) {
            b.insert(Prefix::new(*a, 32), id(NextHop::Local));
        }
        let fib = Arc::new(b.build());
        Routes {
            builder: Arc::new(b),
            nexthops: nh.list,
            groups: nh.groups.into(),
            fib,
        }
    }

    /// The route set, `prefix -> index into` [`Routes::nexthops`] (shared, not copied).
    pub fn route_set(&self) -> Arc<FibBuilder> {
        self.builder.clone()
    }

    /// The compiled FIB (values index [`Routes::nexthops`]).
    pub fn fib(&self) -> &Arc<Fib> {
        &self.fib
    }

    /// Next hops by FIB value.
    pub fn nexthops(&self) -> &[NextHop] {
        &self.nexthops
    }

    /// The ECMP groups (shared, not copied).
    pub fn groups(&self) -> &Arc<[Group]> {
        &self.groups
    }

    /// The gateways and weights of group `id` (empty if there is none).
    pub fn group_members(&self, id: u32) -> Vec<(NextHop, u8)> {
        self.groups.get(id as usize).map_or_else(Vec::new, |g| {
            g.members
                .iter()
                .zip(&g.weights)
                .map(|(&m, &w)| (self.nexthops[m as usize], w))
                .collect()
        })
    }

    /// The route the fast path would use for `dst`: the FIB decides the next hop, the
    /// builder names the prefix that produced it.
    pub fn get(&self, dst: Ipv4Addr) -> Option<RouteInfo> {
        let v = self.fib.lookup_addr(dst)?;
        let (prefix, bv) = self.builder.longest_match(dst)?;
        debug_assert_eq!(v, bv, "compiled FIB and route set disagree for {dst}");
        Some(RouteInfo {
            prefix,
            nexthop: self.nexthops[v as usize],
        })
    }

    /// Egress port and neighbour for a packet to `dst` originated by the router.
    pub fn output(&self, dst: Ipv4Addr) -> Option<(u16, Ipv4Addr)> {
        let v = self.fib.lookup_addr(dst)?;
        let mut nh = self.nexthops[v as usize];
        if let NextHop::Group { id } = nh {
            // The router's own packets (ICMP errors, fragments) take the first gateway.
            nh = self.nexthops[*self.groups.get(id as usize)?.members.first()? as usize];
        }
        match nh {
            NextHop::Via { gateway, port } => Some((port, gateway)),
            NextHop::Connected { port } => Some((port, dst)),
            _ => None,
        }
    }

    /// Is `a` one of the router's own addresses?
    pub fn is_local(&self, a: Ipv4Addr) -> bool {
        matches!(
            self.get(a),
            Some(RouteInfo {
                nexthop: NextHop::Local,
                ..
            })
        )
    }

    /// Is `a` the broadcast address of a connected subnet?
    pub fn is_subnet_broadcast(&self, a: Ipv4Addr) -> bool {
        matches!(
            self.get(a),
            Some(RouteInfo {
                nexthop: NextHop::Broadcast { .. },
                ..
            })
        )
    }
}

/// Next hops and ECMP groups by FIB value, each distinct one once.
#[derive(Debug, Clone, Default)]
pub struct NextHops {
    /// Next hops by value.
    list: Vec<NextHop>,
    ids: HashMap<NextHop, u32>,
    /// Groups by id (`NextHop::Group { id }`).
    groups: Vec<Group>,
    group_ids: HashMap<Group, u32>,
}

impl NextHops {
    /// The value of `n`, added if new.
    pub fn intern(&mut self, n: NextHop) -> u32 {
        *self.ids.entry(n).or_insert_with(|| {
            self.list.push(n);
            u32::try_from(self.list.len() - 1).expect("fewer than 2^32 next hops")
        })
    }

    /// The value of one prefix's routes (its live paths: one, or the gateways of a
    /// multipath route); `None` if there are none.
    pub fn value_of(&mut self, paths: &[&Route]) -> Option<u32> {
        let nh_of = |r: &Route| match r.target {
            RouteTarget::Via { gateway, interface } => NextHop::Via {
                gateway,
                port: port_id(interface),
            },
            RouteTarget::Dev { interface } => NextHop::Connected {
                port: port_id(interface),
            },
            RouteTarget::Blackhole => NextHop::Blackhole,
            RouteTarget::Unreachable => NextHop::Unreachable,
            RouteTarget::Prohibit => NextHop::Prohibit,
        };
        match paths {
            [] => None,
            [r] => Some(self.intern(nh_of(r))),
            many => {
                let g = Group {
                    members: many.iter().map(|r| self.intern(nh_of(r))).collect(),
                    weights: many.iter().map(|r| r.weight).collect(),
                };
                let next = u32::try_from(self.groups.len()).expect("fewer than 2^32 groups");
                let id = *self.group_ids.entry(g).or_insert_with_key(|g| {
                    self.groups.push(g.clone());
                    next
                });
                Some(self.intern(NextHop::Group { id }))
            }
        }
    }

    /// The next hop of value `v`.
    pub fn get(&self, v: u32) -> Option<NextHop> {
        self.list.get(v as usize).copied()
    }

    /// Group `id`.
    pub fn group(&self, id: u32) -> Option<&Group> {
        self.groups.get(id as usize)
    }

    /// How many next hops (values) there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// There are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn port_id(p: usize) -> u16 {
    u16::try_from(p).expect("config limits the number of interfaces")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    const CFG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = ["198.19.0.1/24", "192.0.2.1/25"]
[[route]]
prefix = "0.0.0.0/0"
via = "198.19.0.254"
[[route]]
prefix = "203.0.113.0/24"
dev = "r0"
[[route]]
prefix = "198.51.100.0/24"
type = "blackhole"
[[route]]
prefix = "198.51.100.128/25"
via = "198.18.0.9"
"#;

    fn routes() -> Routes {
        Routes::from_config(&config::parse(CFG, "t.toml").unwrap())
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn connected_local_broadcast_and_static() {
        let r = routes();
        let g = |s: &str| r.get(a(s)).unwrap();
        assert_eq!(g("198.18.0.1").nexthop, NextHop::Local);
        assert_eq!(g("198.18.0.1").prefix.to_string(), "198.18.0.1/32");
        assert_eq!(g("198.18.0.255").nexthop, NextHop::Broadcast { port: 0 });
        assert_eq!(g("198.18.0.7").nexthop, NextHop::Connected { port: 0 });
        assert_eq!(g("192.0.2.100").nexthop, NextHop::Connected { port: 1 });
        assert_eq!(g("192.0.2.127").nexthop, NextHop::Broadcast { port: 1 });
        assert_eq!(
            g("192.0.2.200").nexthop,
            NextHop::Via {
                gateway: a("198.19.0.254"),
                port: 1
            }
        );
        assert_eq!(g("203.0.113.9").nexthop, NextHop::Connected { port: 0 });
        assert_eq!(g("198.51.100.1").nexthop, NextHop::Blackhole);
        let more = g("198.51.100.200");
        assert_eq!(more.prefix.to_string(), "198.51.100.128/25");
        assert_eq!(
            more.nexthop,
            NextHop::Via {
                gateway: a("198.18.0.9"),
                port: 0
            }
        );
        assert_eq!(g("8.8.8.8").prefix.to_string(), "0.0.0.0/0");
        assert_eq!(r.output(a("203.0.113.5")), Some((0, a("203.0.113.5"))));
        assert_eq!(r.output(a("198.18.0.1")), None);
        assert!(r.is_local(a("192.0.2.1")));
        assert!(r.is_subnet_broadcast(a("198.19.0.255")));
    }

    #[test]
    fn a_down_port_loses_its_routes_but_not_its_addresses() {
        let cfg = config::parse(CFG, "t.toml").unwrap();
        let r = Routes::build(&cfg, &[], None, &[false, true]);
        let g = |s: &str| r.get(a(s)).map(|i| (i.prefix.to_string(), i.nexthop));
        // r1 (port 1) is down: its subnets, broadcasts and the default route through it go.
        assert_eq!(g("198.19.0.7"), None);
        assert_eq!(g("198.19.0.255"), None);
        assert_eq!(g("192.0.2.100"), None);
        assert_eq!(g("8.8.8.8"), None);
        // Its addresses are still the router's; r0's routes are untouched.
        assert!(r.is_local(a("198.19.0.1")));
        assert_eq!(
            g("198.51.100.200").map(|x| x.1),
            Some(NextHop::Via {
                gateway: a("198.18.0.9"),
                port: 0
            })
        );
        assert_eq!(
            g("198.18.0.7").map(|x| x.1),
            Some(NextHop::Connected { port: 0 })
        );
        // Back up: the same table as without link state.
        let up = Routes::build(&cfg, &[], None, &[false, false]);
        assert_eq!(up.get(a("8.8.8.8")), routes().get(a("8.8.8.8")));
    }

    #[test]
    fn identical_next_hops_share_one_value() {
        let r = routes();
        let n = r
            .nexthops()
            .iter()
            .filter(|h| **h == NextHop::Local)
            .count();
        assert_eq!(n, 1);
    }
}
