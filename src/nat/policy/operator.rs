//! The operator's views of the policy (`xgw show nat summary|mappings`: small aggregates
//! computed on the control thread, never per packet) and actions (`xgw nat del session`).

use std::{net::Ipv4Addr, time::Instant};

use super::{FlowKey, NatEvent, NatPolicy, PolicyConfig, Rewrite};
use crate::nat::fast::NatFast;

/// What `xgw show nat summary` and the metrics report from the policy: O(pool addresses)
/// to compute (the TCP states come from a walk of the table, off the control thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySummary {
    /// Live sessions.
    pub sessions: usize,
    /// The table's capacity (`[nat] max_sessions`).
    pub capacity: u32,
    /// External ports allocated (mapped, forwarded) per (external address, protocol
    /// number), ascending; zeros left out.
    pub ports_in_use: Vec<(Ipv4Addr, u8, usize)>,
    /// Ports released less than the quarantine ago (not reusable yet).
    pub quarantined: usize,
    /// Unsolicited inbound SYNs held (RFC 5382 REQ-4).
    pub held_syns: usize,
    /// Bytes held by virtual reassembly.
    pub reassembly_bytes: usize,
    /// Endpoint-independent mappings (forwards included).
    pub mappings: usize,
    /// Static port forwards.
    pub forwards: usize,
}

/// One mapping, as `xgw show nat mappings` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingView {
    /// Protocol number.
    pub proto: u8,
    /// Inside endpoint.
    pub inside: (Ipv4Addr, u16),
    /// External endpoint.
    pub external: (Ipv4Addr, u16),
    /// Sessions that hold it.
    pub sessions: u32,
    /// A static forward's (never released).
    pub forward: bool,
}

impl NatPolicy {
    /// The aggregates of [`PolicySummary`].
    pub fn summary(&self) -> PolicySummary {
        let mut ports: Vec<(Ipv4Addr, u8, usize)> = self
            .ports
            .in_use_by_address()
            .into_iter()
            .filter(|p| p.2 != 0)
            .collect();
        ports.sort_unstable();
        PolicySummary {
            sessions: self.sessions.len(),
            capacity: self.sessions.capacity(),
            ports_in_use: ports,
            quarantined: self.ports.quarantined(),
            held_syns: self.held_syns.len(),
            reassembly_bytes: self.frags.used(),
            mappings: self.mappings.len(),
            forwards: self.forwards.len(),
        }
    }

    /// Remove every session of inside endpoint `inside` (of protocol `proto`, or all),
    /// releasing what they held as expiry does; a mapping whose last session goes is
    /// released too (its port quarantined). Port forwards' own mappings stay. One pass over
    /// the table (`max_sessions` slots) on the control thread. Returns the sessions removed.
    pub fn delete_sessions(
        &mut self,
        now: Instant,
        inside: (Ipv4Addr, u16),
        proto: Option<u8>,
    ) -> usize {
        let mut gone: Vec<(FlowKey, Rewrite)> = Vec::new();
        let cap = self.sessions.capacity() as usize;
        self.sessions.sweep(cap, |_, k, r, _, _| {
            let hit =
                k.src == inside.0 && k.sport == inside.1 && proto.is_none_or(|p| p == k.proto);
            if hit {
                gone.push((*k, *r));
            }
            hit
        });
        for (k, r) in &gone {
            self.counters.inc(NatEvent::SessionsDeleted);
            self.forget_session(now, k, r);
        }
        gone.len()
    }

    /// Live sessions of TCP, UDP and ICMP (kept as sessions come and go: O(1)).
    pub fn sessions_by_proto(&self) -> [(u8, usize); 3] {
        [
            (super::proto::TCP, self.by_proto[0]),
            (super::proto::UDP, self.by_proto[1]),
            (super::proto::ICMP, self.by_proto[2]),
        ]
    }

    /// External ports in use per (address, protocol): O(addresses) (see
    /// [`crate::nat::ports::PortAllocator::in_use_by_address`]).
    pub fn ports_in_use_by_address(&self) -> Vec<(Ipv4Addr, u8, usize)> {
        self.ports.in_use_by_address()
    }

    /// Whether a running NAT can take `new` without a restart (`xgw reload`): timeouts,
    /// filtering, `inside`, `inbound`, the per-host limit, forwards added or removed, a
    /// larger `max_sessions` and pool addresses added at the end (up to
    /// [`crate::nat::portmap::POOL_HEADROOM`] more than at start) can; the outside port,
    /// removed or reordered pool addresses, the port range, a smaller table and the
    /// reassembly budget cannot.
    ///
    /// # Errors
    /// The first field that cannot change, with why.
    pub fn check_reconfigure(&self, new: &PolicyConfig) -> Result<(), String> {
        let c = &self.cfg;
        let restart =
            |field: &str, why: &str| Err(format!("{field} changed: {why}; restart xgw to apply"));
        if new.outside != c.outside {
            return restart("nat.outside", "sessions are bound to the outside port");
        }
        if new.addresses != c.addresses {
            if let Err(why) = self.fast.mapped.with_pool(&new.addresses) {
                return Err(format!(
                    "nat.addresses: addresses may be added at the end, live: {why}; restart xgw to apply"
                ));
            }
        }
        if (new.min_port, new.max_port) != (c.min_port, c.max_port) {
            return restart("nat.ports", "mapped ports may fall outside a new range");
        }
        if new.max_sessions < c.max_sessions {
            return Err(format!(
                "nat.max_sessions: {} is smaller than the running table ({}): it grows live but does not shrink; restart xgw to apply",
                new.max_sessions, c.max_sessions
            ));
        }
        if new.reassembly_bytes != c.reassembly_bytes {
            return restart(
                "nat.reassembly_bytes",
                "virtual reassembly is sized at start",
            );
        }
        for (i, f) in new.forwards.iter().enumerate() {
            let key = (f.proto, f.external, f.port);
            let existing = c
                .forwards
                .iter()
                .find(|o| (o.proto, o.external, o.port) == key);
            match existing {
                Some(o) if (o.to, o.to_port) == (f.to, f.to_port) => {}
                Some(_) => {
                    return Err(format!(
                        "nat.forward[{i}]: {}:{} now forwards elsewhere; remove it, reload, then add it",
                        f.external, f.port
                    ))
                }
                None if self.by_ext.contains_key(&key) => {
                    return Err(format!(
                        "nat.forward[{i}]: {}:{} is in use by a dynamic mapping; try again when it is released",
                        f.external, f.port
                    ))
                }
                // The target's mapping is a forward's that this reload removes: it moves.
                None if self
                    .mappings
                    .get(&(f.proto, f.to, f.to_port))
                    .is_some_and(|m| !(m.reserved && self.forward_removed(new, f.proto, m.ext, m.eport))) =>
                {
                    return Err(format!(
                        "nat.forward[{i}]: {}:{} already has a mapping; try again when its sessions end",
                        f.to, f.to_port
                    ))
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Whether the forward on external `(proto, ext, eport)` exists now and not in `new`.
    fn forward_removed(&self, new: &PolicyConfig, proto: u8, ext: Ipv4Addr, eport: u16) -> bool {
        let key = (proto, ext, eport);
        self.forwards.contains_key(&key)
            && !new
                .forwards
                .iter()
                .any(|f| (f.proto, f.external, f.port) == key)
    }

    /// Apply `new` (checked by [`NatPolicy::check_reconfigure`]) keeping every session:
    /// removed forwards stop taking new sessions (their mapping goes with its last
    /// session), added ones start. Returns whether the fast path's view changed (a new
    /// [`NatPolicy::fast`] to publish).
    pub fn reconfigure(&mut self, now: Instant, new: &PolicyConfig) -> bool {
        let key = |f: &super::Forward| (f.proto, f.external, f.port);
        let removed: Vec<super::Forward> = self
            .cfg
            .forwards
            .iter()
            .filter(|o| !new.forwards.iter().any(|f| key(f) == key(o)))
            .cloned()
            .collect();
        for f in removed {
            self.forwards.remove(&key(&f));
            let inside = (f.proto, f.to, f.to_port);
            let moved = new
                .forwards
                .iter()
                .any(|n| (n.proto, n.to, n.to_port) == inside);
            let Some(m) = self.mappings.get_mut(&inside) else {
                continue;
            };
            if m.sessions == 0 {
                self.release_mapping(now, f.proto, f.to, f.to_port);
            } else if moved {
                // The inside endpoint gets the new forward's port; its sessions stay on
                // the old one, which no new connection reaches and which goes with them.
                let sessions = m.sessions;
                self.mappings.remove(&inside);
                self.by_ext.remove(&key(&f));
                self.retired.insert(key(&f), sessions);
            } else {
                m.permanent = false;
            }
        }
        for f in &new.forwards {
            if !self.forwards.contains_key(&key(f)) {
                self.install_forward(f);
            }
        }
        let reader = (new.max_sessions > self.cfg.max_sessions)
            .then(|| self.grow_sessions(new.max_sessions));
        // Added pool addresses (checked: at the end, within the bitmap's room).
        let mapped = if new.addresses == self.cfg.addresses {
            None
        } else {
            for a in &new.addresses[self.cfg.addresses.len()..] {
                self.ports.add_address(*a);
            }
            self.fast.mapped.with_pool(&new.addresses).ok()
        };
        let fast_changed = reader.is_some()
            || mapped.is_some()
            || new.inside != self.cfg.inside
            || new.inbound_route != self.cfg.inbound_route;
        self.cfg = new.clone();
        if fast_changed {
            let old = &self.fast;
            self.fast = std::sync::Arc::new(NatFast {
                outside: old.outside,
                pool: new.addresses.clone(),
                inside: new.inside.clone(),
                sessions: reader.unwrap_or_else(|| old.sessions.clone()),
                mapped: mapped.unwrap_or_else(|| old.mapped.clone()),
                inbound_route: new.inbound_route,
            });
        }
        fast_changed
    }

    /// Move every session into a new table of `capacity` slots (larger than now): one pass
    /// over the old table, each session with its key, rewrite, state and last-seen time.
    /// Returns the new table's reader for the fast path's next view. Until the workers
    /// pick that up they read the old table, which no longer changes: a session created
    /// meanwhile is missed there and punted, and the slow path finds it in the new one; a
    /// refresh of the old table in that window is lost (at most the packets of the next
    /// snapshot's latency). Costs O(old capacity) on the control thread and both tables'
    /// memory until the old one's last reader is gone.
    fn grow_sessions(&mut self, capacity: u32) -> crate::nat::table::SessionReader {
        let (mut table, reader) = crate::nat::table::session_table(capacity);
        let old_capacity = self.sessions.capacity() as usize;
        let mut lost = 0u64;
        self.sessions.sweep(old_capacity, |_, k, r, state, last| {
            if table.insert(*k, *r, state, last).is_err() {
                lost += 1;
            }
            false
        });
        debug_assert_eq!(lost, 0, "a larger table holds every session");
        debug_assert_eq!(table.len(), self.sessions.len());
        self.sessions = table;
        reader
    }

    /// Every mapping, sorted by protocol, then inside endpoint.
    pub fn mapping_views(&self) -> Vec<MappingView> {
        let mut v: Vec<MappingView> = self
            .mappings
            .iter()
            .map(|(&(proto, addr, port), m)| MappingView {
                proto,
                inside: (addr, port),
                external: (m.ext, m.eport),
                sessions: m.sessions,
                forward: m.permanent,
            })
            .collect();
        v.sort_by_key(|m| (m.proto, m.inside));
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::nat::policy::{
        tests::{open_udp, policy_for_inspect},
        NatPolicy,
    };

    /// A forward and two outbound flows of one host: the counts add up by address and
    /// protocol, and the forward shows as a permanent mapping.
    #[test]
    fn summary_and_mappings_count_what_exists() {
        let now = Instant::now();
        let mut p: NatPolicy = policy_for_inspect(now);
        let s0 = p.summary();
        assert_eq!(s0.sessions, 0);
        assert_eq!(s0.forwards, 1);
        assert_eq!(s0.mappings, 1);
        assert_eq!(s0.ports_in_use.len(), 1, "{s0:?}");
        open_udp(&mut p, now, 1000);
        open_udp(&mut p, now + Duration::from_millis(1), 1001);
        let s = p.summary();
        assert_eq!(s.sessions, 2);
        assert_eq!(s.mappings, 3);
        assert_eq!(p.sessions_by_proto(), [(6, 0), (17, 2), (1, 0)]);
        let by_addr = p.ports_in_use_by_address();
        assert_eq!(by_addr.len(), 3, "one pool address x 3 protocols");
        assert!(
            by_addr.contains(&("198.19.0.1".parse().unwrap(), 17, 2)),
            "{by_addr:?}"
        );
        let udp: usize = s
            .ports_in_use
            .iter()
            .filter(|(_, proto, _)| *proto == 17)
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(udp, 2, "{s:?}");
        let m = p.mapping_views();
        assert_eq!(m.len(), 3);
        assert_eq!(m.iter().filter(|m| m.forward).count(), 1);
        assert!(m.iter().filter(|m| !m.forward).all(|m| m.sessions == 1));
        // Deleting one endpoint's sessions releases its mapping and port, nothing else.
        let a: std::net::Ipv4Addr = "198.18.0.5".parse().unwrap();
        assert_eq!(
            p.delete_sessions(now, (a, 1000), Some(6)),
            0,
            "wrong protocol"
        );
        assert_eq!(
            p.delete_sessions(now, (a, 999), None),
            0,
            "no such endpoint"
        );
        assert_eq!(p.delete_sessions(now, (a, 1000), None), 1);
        let s = p.summary();
        assert_eq!((s.sessions, s.mappings), (1, 2));
        assert_eq!(s.quarantined, 1, "its port is quarantined");
        assert_eq!(p.sessions_by_proto()[1], (17, 1));
        assert_eq!(p.host_sessions(a), 1);
        assert_eq!(
            p.counters
                .get(crate::nat::policy::NatEvent::SessionsDeleted),
            1
        );
        // The same flow again gets a new session.
        open_udp(&mut p, now + Duration::from_millis(2), 1000);
        assert_eq!(p.summary().sessions, 2);
    }
}
