//! Link monitoring: the ports' kernel state (up/down, MTU, present), kept from the netlink
//! feed ([`crate::kernel`]), and what the control plane does when it changes.
//!
//! A port goes **down** when its device is administratively or operationally down, or is
//! deleted: its connected routes and the routes through it are withdrawn (traffic follows
//! a less specific route or gets ICMP net unreachable), its neighbours are flushed, and the
//! frames the control plane would send through it are dropped (counted), so nothing queues
//! behind a dead link. Its own addresses stay the router's. On **up** everything comes
//! back. An **MTU** change becomes the port's egress MTU (the configured `mtu` caps it), so
//! the next oversized packet gets fragmentation needed with the new value (RFC 1191).
//!
//! A port's device is found by ifindex. A deleted one is **gone**; a new device with the
//! port's name is reported as reappeared, and once the runtime has moved the port's
//! sockets and XDP program to it ([`ControlPlane::reattached`]) the port takes its state. A dump (at start, and after lost events) is authoritative:
//! a port it does not list is gone.

use tracing::{info, warn};

use super::{ControlEvent, ControlPlane};
use crate::{
    config,
    dataplane::PortInfo,
    kernel::{DumpKind, KernelMsg, LinkMsg},
    neigh::PortId,
    wire::ethernet::MacAddr,
};

/// One port's device as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLink {
    /// The configured interface name.
    pub name: String,
    /// The device xgw attached to.
    pub ifindex: u32,
    /// Up for forwarding.
    pub up: bool,
    /// The device's MTU.
    pub dev_mtu: u32,
    /// The device was deleted.
    pub gone: bool,
    /// A dump in progress listed it.
    seen: bool,
    /// A deleted port's new device as last reported, until the port is attached to it:
    /// `(up, MTU)`.
    next: Option<(bool, u32)>,
}

/// A change of one port (by index) the control plane acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// Went down (or was deleted).
    Down(u16),
    /// Came back up.
    Up(u16),
    /// Its device's MTU changed.
    Mtu {
        /// Port.
        port: u16,
        /// The device's new MTU.
        mtu: u32,
    },
    /// Its device was deleted (also reported as [`LinkChange::Down`] if it was up).
    Gone(u16),
    /// A device with the port's name exists again, with a new ifindex. The port's AF_XDP
    /// sockets and XDP program were bound to the old device and died with it: the port
    /// stays down until the runtime has moved them to the new device
    /// ([`ControlPlane::reattached`]).
    Reappeared {
        /// Port.
        port: u16,
        /// The new device.
        ifindex: u32,
    },
}

/// The ports' link states.
#[derive(Debug, Clone, Default)]
pub struct Links {
    ports: Vec<PortLink>,
    /// The dump in progress (its request's sequence number).
    dumping: Option<u32>,
}

impl Links {
    /// Ports attached to these `(name, ifindex, device MTU)`, assumed up until the first
    /// report says otherwise.
    pub fn new(ports: impl IntoIterator<Item = (String, u32, u32)>) -> Links {
        Links {
            ports: ports
                .into_iter()
                .map(|(name, ifindex, dev_mtu)| PortLink {
                    name,
                    ifindex,
                    up: true,
                    dev_mtu,
                    gone: false,
                    seen: false,
                    next: None,
                })
                .collect(),
            dumping: None,
        }
    }

    /// Per port, as last reported.
    pub fn ports(&self) -> &[PortLink] {
        &self.ports
    }

    /// Is port `p` up? (Unknown ports count as up: the state is only ever narrowed.)
    pub fn is_up(&self, p: usize) -> bool {
        self.ports.get(p).is_none_or(|l| l.up)
    }

    /// Dump `seq` starts: ports not reported before its [`KernelMsg::DumpDone`] are gone.
    pub fn begin_dump(&mut self, seq: u32) {
        self.dumping = Some(seq);
        for p in &mut self.ports {
            p.seen = false;
        }
    }

    /// Apply one message; the changes it causes, in order.
    pub fn apply(&mut self, m: &KernelMsg) -> Vec<LinkChange> {
        let mut out = Vec::new();
        match m {
            KernelMsg::Link(l) => self.link(l, &mut out),
            KernelMsg::LinkDeleted { ifindex, .. } => {
                if let Some(p) = self.by_ifindex(*ifindex) {
                    self.gone(p, &mut out);
                } else if let Some(lp) = self
                    .ports
                    .iter_mut()
                    .find(|p| p.gone && p.ifindex == *ifindex)
                {
                    // The new device went before the port was attached to it.
                    lp.next = None;
                }
            }
            KernelMsg::DumpStart {
                seq,
                kind: DumpKind::Links,
            } => self.begin_dump(*seq),
            // A refused dump (EBUSY: another one runs) proves nothing; the reader retries.
            KernelMsg::Error { seq, .. } if self.dumping == Some(*seq) => self.dumping = None,
            KernelMsg::DumpDone { seq } if self.dumping == Some(*seq) => {
                self.dumping = None;
                for p in 0..self.ports.len() {
                    if !self.ports[p].seen && !self.ports[p].gone {
                        self.gone(p, &mut out);
                    }
                }
            }
            _ => {}
        }
        out
    }

    fn by_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.ifindex == ifindex && !p.gone)
    }

    fn link(&mut self, l: &LinkMsg, out: &mut Vec<LinkChange>) {
        let Some(p) = self.by_ifindex(l.ifindex) else {
            // A new device under a port's name (the old one was deleted, or was replaced
            // while events were lost).
            if let Some(p) = self.ports.iter().position(|p| p.name == l.name) {
                let port = port_id(p);
                if !self.ports[p].gone {
                    self.gone(p, out);
                }
                let lp = &mut self.ports[p];
                lp.seen = true;
                lp.next = Some((l.is_up(), l.mtu));
                if lp.ifindex != l.ifindex {
                    lp.ifindex = l.ifindex;
                    out.push(LinkChange::Reappeared {
                        port,
                        ifindex: l.ifindex,
                    });
                }
            }
            return;
        };
        let port = port_id(p);
        let lp = &mut self.ports[p];
        lp.seen = true;
        if l.mtu != 0 && l.mtu != lp.dev_mtu {
            lp.dev_mtu = l.mtu;
            out.push(LinkChange::Mtu { port, mtu: l.mtu });
        }
        if l.is_up() != lp.up {
            lp.up = l.is_up();
            out.push(if lp.up {
                LinkChange::Up(port)
            } else {
                LinkChange::Down(port)
            });
        }
    }

    /// Port `p` now serves its re-created device `ifindex`: it is no longer gone, and takes
    /// the device's state as last reported (the changes that makes, in order). Nothing if
    /// the port was not gone or the device is not the one last reported.
    pub fn attached(&mut self, p: usize, ifindex: u32) -> Vec<LinkChange> {
        let mut out = Vec::new();
        let Some(lp) = self
            .ports
            .get_mut(p)
            .filter(|l| l.gone && l.ifindex == ifindex)
        else {
            return out;
        };
        lp.gone = false;
        lp.up = false;
        let (up, mtu) = lp.next.take().unwrap_or((false, lp.dev_mtu));
        if mtu != 0 && mtu != lp.dev_mtu {
            lp.dev_mtu = mtu;
            out.push(LinkChange::Mtu {
                port: port_id(p),
                mtu,
            });
        }
        if up {
            lp.up = true;
            out.push(LinkChange::Up(port_id(p)));
        }
        out
    }

    fn gone(&mut self, p: usize, out: &mut Vec<LinkChange>) {
        let lp = &mut self.ports[p];
        lp.gone = true;
        if lp.up {
            lp.up = false;
            out.push(LinkChange::Down(port_id(p)));
        }
        out.push(LinkChange::Gone(port_id(p)));
    }
}

fn port_id(p: usize) -> u16 {
    u16::try_from(p).expect("config limits the number of interfaces")
}

/// The egress MTU of a port: the device's, capped by the configured `mtu` and xgw's
/// maximum.
pub fn effective_mtu(configured: Option<u16>, device: u32) -> u16 {
    let dev = u16::try_from(device).unwrap_or(u16::MAX);
    configured.map_or(dev, |c| c.min(dev)).min(config::MAX_MTU)
}

impl ControlPlane {
    /// Watch these ports' devices (`(ifindex, device MTU)` by port); until called, link
    /// messages are ignored.
    pub fn watch_links(&mut self, devices: &[(u32, u32)]) {
        self.links = Links::new(
            self.cfg
                .interfaces
                .iter()
                .zip(devices)
                .map(|(i, &(ifx, mtu))| (i.name.clone(), ifx, mtu)),
        );
    }

    /// The ports' link states.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Apply one netlink message: withdraw or restore routes, flush neighbours, change a
    /// port's MTU. Returns what changed (each also counted and logged).
    pub fn link_message(&mut self, m: &KernelMsg) -> Vec<LinkChange> {
        match m {
            KernelMsg::Resync => {
                self.counters.inc(ControlEvent::NetlinkResync);
                warn!("netlink: link events lost; re-reading every link");
            }
            KernelMsg::Error { errno, seq } => {
                warn!(errno, seq, "netlink: the kernel refused a request");
            }
            _ => {}
        }
        let changes = self.links.apply(m);
        for c in &changes {
            self.link_change(*c);
        }
        changes
    }

    fn link_change(&mut self, c: LinkChange) {
        let name = |p: u16| self.cfg.interfaces[usize::from(p)].name.clone();
        match c {
            LinkChange::Down(p) => {
                self.counters.inc(ControlEvent::LinkDown);
                let flushed = self.neigh.len();
                self.neigh.flush_port(PortId(p));
                let flushed = flushed - self.neigh.len();
                warn!(port = %name(p), neighbours_flushed = flushed, "link down: its routes withdrawn");
                self.rebuild_routes();
            }
            LinkChange::Up(p) => {
                self.counters.inc(ControlEvent::LinkUp);
                info!(port = %name(p), "link up: its routes restored");
                self.rebuild_routes();
            }
            LinkChange::Mtu { port, mtu } => {
                self.counters.inc(ControlEvent::LinkMtu);
                let i = usize::from(port);
                let configured = self.cfg.interfaces[i].mtu;
                let eff = effective_mtu(configured, mtu);
                if configured.is_some_and(|c| c > eff) {
                    warn!(port = %name(port), device_mtu = mtu, configured = ?configured, "device MTU below the configured mtu: using the device's");
                }
                if eff != self.ports[i].mtu {
                    info!(port = %name(port), mtu = eff, "egress MTU changed");
                    let mut ports: Vec<PortInfo> = self.ports.to_vec();
                    ports[i].mtu = eff;
                    self.ports = ports.into();
                    self.routes_changed = true;
                }
            }
            LinkChange::Gone(p) => {
                self.counters.inc(ControlEvent::LinkGone);
                warn!(port = %name(p), "interface deleted: the port is down until a device of its name exists again");
            }
            LinkChange::Reappeared { port, ifindex } => {
                self.counters.inc(ControlEvent::LinkBack);
                info!(port = %name(port), ifindex, "interface re-created: attaching to it");
                self.reattach.retain(|&(p, _)| p != port);
                self.reattach.push((port, ifindex));
            }
        }
    }

    /// The ports to attach to their re-created devices, as `(port, ifindex)`: the runtime
    /// moves their sockets and XDP program there, then calls
    /// [`ControlPlane::reattached`].
    pub fn take_reattach(&mut self) -> Vec<(u16, u32)> {
        std::mem::take(&mut self.reattach)
    }

    /// The runtime moved port `port` to its device `ifindex` (whose MAC is `mac`, if the
    /// runtime knows it), or could not (`Err`, why): then the port stays down until a
    /// device of its name is created again.
    pub fn reattached(
        &mut self,
        port: u16,
        ifindex: u32,
        mac: Option<MacAddr>,
        result: Result<(), String>,
    ) {
        let p = usize::from(port);
        let Some(pname) = self.cfg.interfaces.get(p).map(|i| i.name.clone()) else {
            return;
        };
        if let Err(why) = result {
            self.counters.inc(ControlEvent::LinkReattachFailed);
            warn!(port = %pname, ifindex, "could not attach to the re-created interface: {why}; the port stays down");
            return;
        }
        if let Some(mac) = mac.filter(|m| *m != self.ports[p].mac) {
            let mut ports: Vec<PortInfo> = self.ports.to_vec();
            ports[p].mac = mac;
            self.ports = ports.into();
            self.routes_changed = true;
        }
        self.counters.inc(ControlEvent::LinkReattached);
        info!(port = %pname, ifindex, "attached to the re-created interface");
        for c in self.links.attached(p, ifindex) {
            self.link_change(c);
        }
        // Mirror mode: the new device's addresses came while the port was gone.
        self.port_takes_kernel_addresses(p);
        // In mirror mode the kernel's routes through the new device now resolve onto the
        // port (its ifindex changed): the next build re-resolves them all.
        self.rebuild_routes();
    }

    /// Frames to ports that are down are dropped here, not queued behind the dead link.
    pub(super) fn drop_to_down_ports(&mut self, out: &mut Vec<(u16, Vec<u8>)>) {
        let before = out.len();
        let links = &self.links;
        out.retain(|(p, _)| links.is_up(usize::from(*p)));
        let dropped = before - out.len();
        if dropped > 0 {
            self.counters
                .add(ControlEvent::OutputPortDown, dropped as u64);
        }
    }

    /// Ports down, by index (for the route table).
    pub(super) fn down_ports(&self) -> Vec<bool> {
        (0..self.cfg.interfaces.len())
            .map(|p| !self.links.is_up(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ifindex: u32, name: &str, up: bool, mtu: u32) -> KernelMsg {
        KernelMsg::Link(LinkMsg {
            ifindex,
            name: name.into(),
            admin_up: true,
            oper_up: up,
            mtu,
        })
    }

    fn links() -> Links {
        Links::new([("r0".into(), 5, 1500), ("r1".into(), 6, 1500)])
    }

    #[test]
    fn down_up_and_mtu() {
        let mut l = links();
        // Repeats of the current state change nothing.
        assert_eq!(l.apply(&msg(5, "r0", true, 1500)), vec![]);
        assert_eq!(
            l.apply(&msg(6, "r1", false, 1500)),
            vec![LinkChange::Down(1)]
        );
        assert_eq!(l.apply(&msg(6, "r1", false, 1500)), vec![]);
        assert!(!l.is_up(1) && l.is_up(0));
        assert_eq!(
            l.apply(&msg(6, "r1", true, 1400)),
            vec![LinkChange::Mtu { port: 1, mtu: 1400 }, LinkChange::Up(1)]
        );
        // Admin down with the carrier on is down.
        let mut admin_down = msg(5, "r0", true, 1500);
        if let KernelMsg::Link(m) = &mut admin_down {
            m.admin_up = false;
        }
        assert_eq!(l.apply(&admin_down), vec![LinkChange::Down(0)]);
        // Other devices are none of our business.
        assert_eq!(l.apply(&msg(9, "eth9", false, 9000)), vec![]);
        assert_eq!(
            l.apply(&KernelMsg::LinkDeleted {
                ifindex: 9,
                name: "eth9".into()
            }),
            vec![]
        );
    }

    #[test]
    fn deleted_then_recreated() {
        let mut l = links();
        let del = KernelMsg::LinkDeleted {
            ifindex: 6,
            name: "r1".into(),
        };
        assert_eq!(
            l.apply(&del),
            vec![LinkChange::Down(1), LinkChange::Gone(1)]
        );
        assert!(l.ports()[1].gone);
        // Deleted twice: nothing more.
        assert_eq!(l.apply(&del), vec![]);
        // The same name, a new ifindex.
        assert_eq!(
            l.apply(&msg(11, "r1", true, 1500)),
            vec![LinkChange::Reappeared {
                port: 1,
                ifindex: 11
            }]
        );
        assert!(!l.is_up(1), "a re-created device is not attached");
        assert_eq!(l.apply(&msg(11, "r1", true, 1500)), vec![]);
        // Its state changes while it waits; attaching takes the last one.
        assert_eq!(l.apply(&msg(11, "r1", true, 9000)), vec![]);
        assert_eq!(l.attached(1, 12), vec![], "not the device reported");
        assert_eq!(
            l.attached(1, 11),
            vec![LinkChange::Mtu { port: 1, mtu: 9000 }, LinkChange::Up(1)]
        );
        assert!(l.is_up(1) && !l.ports()[1].gone);
        assert_eq!(l.attached(1, 11), vec![], "once");
        // Now the device's own events count again.
        assert_eq!(
            l.apply(&msg(11, "r1", false, 9000)),
            vec![LinkChange::Down(1)]
        );
    }

    #[test]
    fn a_new_device_deleted_before_it_is_attached_comes_up_down() {
        let mut l = links();
        l.apply(&KernelMsg::LinkDeleted {
            ifindex: 6,
            name: "r1".into(),
        });
        l.apply(&msg(11, "r1", true, 1500));
        l.apply(&KernelMsg::LinkDeleted {
            ifindex: 11,
            name: "r1".into(),
        });
        assert_eq!(l.attached(1, 11), vec![]);
        assert!(!l.is_up(1));
    }

    #[test]
    fn replaced_while_events_were_lost() {
        // No RTM_DELLINK seen: a resync dump lists r1 with a new ifindex.
        let mut l = links();
        l.begin_dump(3);
        let mut got = l.apply(&msg(5, "r0", true, 1500));
        got.extend(l.apply(&msg(12, "r1", true, 1500)));
        got.extend(l.apply(&KernelMsg::DumpDone { seq: 3 }));
        assert_eq!(
            got,
            vec![
                LinkChange::Down(1),
                LinkChange::Gone(1),
                LinkChange::Reappeared {
                    port: 1,
                    ifindex: 12
                }
            ]
        );
    }

    #[test]
    fn a_dump_without_the_port_means_it_is_gone() {
        let mut l = links();
        assert_eq!(
            l.apply(&KernelMsg::DumpStart {
                seq: 4,
                kind: DumpKind::Links,
            }),
            vec![]
        );
        assert_eq!(l.apply(&msg(5, "r0", true, 1500)), vec![]);
        // The end of an older dump says nothing about this one.
        assert_eq!(l.apply(&KernelMsg::DumpDone { seq: 3 }), vec![]);
        assert_eq!(
            l.apply(&KernelMsg::DumpDone { seq: 4 }),
            vec![LinkChange::Down(1), LinkChange::Gone(1)]
        );
        // A stray DONE after the dump changes nothing.
        assert_eq!(l.apply(&KernelMsg::DumpDone { seq: 4 }), vec![]);
    }

    #[test]
    fn a_refused_dump_marks_nothing_gone() {
        let mut l = links();
        l.apply(&KernelMsg::DumpStart {
            seq: 5,
            kind: DumpKind::Links,
        });
        l.apply(&KernelMsg::Error { errno: 16, seq: 5 });
        assert_eq!(l.apply(&KernelMsg::DumpDone { seq: 5 }), vec![]);
        assert!(l.is_up(0) && l.is_up(1));
    }

    #[test]
    fn a_flood_of_flaps_ends_in_the_last_state() {
        let mut l = links();
        let mut downs = 0;
        let mut ups = 0;
        for i in 1..=100_000u32 {
            for c in l.apply(&msg(6, "r1", i % 2 == 0, 1500)) {
                match c {
                    LinkChange::Down(1) => downs += 1,
                    LinkChange::Up(1) => ups += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!((downs, ups), (50_000, 50_000));
        assert!(l.is_up(1), "the last message said up");
    }

    #[test]
    fn effective_mtu_is_capped_by_the_configuration() {
        assert_eq!(effective_mtu(None, 1400), 1400);
        assert_eq!(effective_mtu(Some(1280), 1500), 1280);
        assert_eq!(effective_mtu(Some(1500), 1400), 1400);
        assert_eq!(effective_mtu(None, 65536), config::MAX_MTU);
    }
}
