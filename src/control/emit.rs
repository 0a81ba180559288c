//! The control plane's output: forwarding punted packets (ARP resolution, fragmentation),
//! originating ICMP errors and ARP, and answering what is addressed to the router.

use std::{net::Ipv4Addr, time::Instant};

use super::{
    frag,
    icmp::{self, IcmpError, Limited},
    ControlEvent, ControlPlane,
};
use crate::{
    neigh::{cache::Resolve, PortId},
    wire::{
        arp,
        ethernet::{self, EtherType, MacAddr},
        icmpv4::dst_unreachable_code as unreach,
        ipv4::{self, Packet, Protocol},
    },
};

impl ControlPlane {
    pub(super) fn port_mtu(&self, port: u16) -> u16 {
        self.ports
            .get(usize::from(port))
            .map_or(ipv4::MIN_MTU as u16, |p| p.mtu)
    }

    pub(super) fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Forward a transit packet the fast path could not finish: TTL, MTU, neighbour.
    pub(super) fn forward(
        &mut self,
        now: Instant,
        port: u16,
        nh: Ipv4Addr,
        l3: &[u8],
        l2_multicast: bool,
    ) {
        let Ok(pkt) = Packet::new_checked(l3) else {
            return;
        };
        let mut ip = l3[..usize::from(pkt.total_len())].to_vec();
        let mut p = Packet::new_unchecked(&mut ip[..]);
        let ttl = p.ttl();
        if ttl <= 1 {
            return self.send_error(now, IcmpError::TtlExceeded, l3, l2_multicast);
        }
        p.set_ttl(ttl - 1);
        p.fill_checksum();
        let mtu = self.port_mtu(port);
        if ip.len() > usize::from(mtu) {
            if Packet::new_unchecked(&ip[..]).dont_frag() {
                let e = IcmpError::Unreachable {
                    code: unreach::FRAG_NEEDED,
                    mtu,
                };
                return self.send_error(now, e, l3, l2_multicast);
            }
            return self.fragment_out(now, port, nh, &ip, mtu);
        }
        self.counters.inc(ControlEvent::SlowForwarded);
        self.output(now, port, nh, ip);
    }

    pub(super) fn fragment_out(
        &mut self,
        now: Instant,
        port: u16,
        nh: Ipv4Addr,
        ip: &[u8],
        mtu: u16,
    ) {
        let Some(frags) = frag::fragment(ip, usize::from(mtu)) else {
            return;
        };
        self.counters.inc(ControlEvent::Fragmented);
        self.counters
            .add(ControlEvent::FragmentsSent, frags.len() as u64);
        for f in frags {
            self.output(now, port, nh, f);
        }
    }

    /// Send an IPv4 packet to neighbour `nh` on `port`, resolving it first if needed.
    pub(super) fn output(&mut self, now: Instant, port: u16, nh: Ipv4Addr, ip: Vec<u8>) {
        if let Some((mac, p)) = self.neigh.lookup(nh) {
            return self.emit_ip(p.0, mac, &ip);
        }
        match self.neigh.resolve(now, nh, PortId(port), ip) {
            Resolve::Known(mac, ip) => self.emit_ip(port, mac, &ip),
            Resolve::Queued { send_request } => {
                if send_request {
                    self.send_arp_request(port, nh, None);
                }
            }
            Resolve::QueueFull(dropped) => self
                .counters
                .add(ControlEvent::NeighQueueFull, dropped.len() as u64),
            Resolve::TableFull(_) => self.counters.inc(ControlEvent::NeighTableFull),
            Resolve::Unreachable(ip) => {
                self.host_unreachable(now, ip);
            }
        }
    }

    /// RFC 1812 §4.3.3.1: the next hop did not answer ARP. A packet the NAT already
    /// translated is first translated back, so the error reaches the inside host that sent it.
    pub(super) fn host_unreachable(&mut self, now: Instant, ip: Vec<u8>) {
        self.counters.inc(ControlEvent::NeighUnreachable);
        let e = IcmpError::Unreachable {
            code: unreach::HOST,
            mtu: 0,
        };
        self.send_error(now, e, &ip, false);
    }

    /// Route and send a packet the router originates (DF clear, so it may be fragmented).
    pub(super) fn originate(&mut self, now: Instant, ip: Vec<u8>) {
        let dst = Packet::new_unchecked(&ip[..]).dst_addr();
        let Some((port, nh)) = self.routes.output(dst) else {
            return self.counters.inc(ControlEvent::NoRouteOut);
        };
        let mtu = self.port_mtu(port);
        if ip.len() > usize::from(mtu) {
            return self.fragment_out(now, port, nh, &ip, mtu);
        }
        self.output(now, port, nh, ip);
    }

    pub(super) fn emit_ip(&mut self, port: u16, dst: MacAddr, ip: &[u8]) {
        let src = self.ports[usize::from(port)].mac;
        let mut f = vec![0u8; ethernet::HEADER_LEN + ip.len()];
        let repr = ethernet::Repr {
            src_addr: src,
            dst_addr: dst,
            ethertype: EtherType::Ipv4,
        };
        repr.emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
        f[ethernet::HEADER_LEN..].copy_from_slice(ip);
        self.out.push((port, f));
    }

    /// RFC 1812 §4.3.2: suppression checks, rate limit, then build and route the error. An
    /// error about a packet the NAT translated quotes it as it was before (see
    /// [`crate::nat::fast::NatFast::untranslate`]).
    pub(super) fn send_error(
        &mut self,
        now: Instant,
        kind: IcmpError,
        l3: &[u8],
        l2_multicast: bool,
    ) {
        let back = self.nat_fast.as_ref().and_then(|n| n.untranslate(l3));
        let l3 = back.as_deref().unwrap_or(l3);
        let routes = &self.routes;
        let verdict = icmp::may_send_error(
            l2_multicast,
            l3,
            |a| routes.is_subnet_broadcast(a),
            |a| routes.is_local(a),
        );
        if verdict.is_err() {
            return self.counters.inc(ControlEvent::IcmpSuppressed);
        }
        let orig_src = Packet::new_unchecked(l3).src_addr();
        let Some((port, nh)) = self.routes.output(orig_src) else {
            return self.counters.inc(ControlEvent::NoRouteOut);
        };
        match self.icmp.allow(now, kind, orig_src) {
            Ok(()) => {}
            Err(Limited::Global) => return self.counters.inc(ControlEvent::IcmpRateLimited),
            Err(Limited::Destination) => {
                return self.counters.inc(ControlEvent::IcmpRateLimitedDestination)
            }
        }
        // RFC 1812 §4.3.2.4: the source is an address of the interface the error leaves by.
        let src = self.source_for(port, nh);
        let ident = self.next_ident();
        if let Some(err) = icmp::build_error(kind, l3, src, ident) {
            self.counters.inc(ControlEvent::IcmpErrors);
            self.originate(now, err);
        }
    }

    /// Our address on `port`, preferring one on the same subnet as `peer`.
    pub(super) fn source_for(&self, port: u16, peer: Ipv4Addr) -> Ipv4Addr {
        let addrs = &self.ports[usize::from(port)].addresses;
        addrs
            .iter()
            .find(|c| c.contains_addr(&peer))
            .or(addrs.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |c| c.address())
    }

    pub(super) fn handle_local(&mut self, now: Instant, l3: &[u8]) {
        let Ok(pkt) = Packet::new_checked(l3) else {
            return;
        };
        match pkt.protocol() {
            Protocol::Icmp => {
                let ident = self.next_ident();
                match icmp::build_echo_reply(l3, ident) {
                    Some(reply) => {
                        self.counters.inc(ControlEvent::EchoReplies);
                        self.originate(now, reply);
                    }
                    None => self.counters.inc(ControlEvent::LocalDropped),
                }
            }
            // RFC 1122 §4.1.3.1: no listener → port unreachable (traceroute's UDP probes).
            Protocol::Udp => {
                let e = IcmpError::Unreachable {
                    code: unreach::PORT,
                    mtu: 0,
                };
                self.send_error(now, e, l3, false)
            }
            // No TCP stack: drop quietly (a RST would need one).
            Protocol::Tcp => self.counters.inc(ControlEvent::LocalDropped),
            Protocol::Unknown(_) => {
                let e = IcmpError::Unreachable {
                    code: unreach::PROTOCOL,
                    mtu: 0,
                };
                self.send_error(now, e, l3, false)
            }
        }
    }

    pub(super) fn handle_arp(&mut self, now: Instant, port: u16, l3: &[u8]) {
        let Some(repr) = arp::Packet::new_checked(l3)
            .ok()
            .and_then(|p| arp::Repr::parse(&p).ok())
        else {
            return self.counters.inc(ControlEvent::ArpInvalid);
        };
        let Some(info) = self.ports.get(usize::from(port)) else {
            return;
        };
        let (spa, sha, tpa) = (
            repr.source_protocol_addr,
            repr.source_hardware_addr,
            repr.target_protocol_addr,
        );
        // Our addresses on this port, and the NAT's external addresses on the outside port.
        let target_is_us = info.addresses.iter().any(|c| c.address() == tpa)
            || self
                .nat_fast
                .as_ref()
                .is_some_and(|n| n.outside == port && n.is_pool(tpa));
        // On-link: in one of the port's subnets, or reached through this port by a route
        // with no gateway (`dev = "rN"` alone), whose destinations are their own next hops.
        let on_link = info.addresses.iter().any(|c| c.contains_addr(&spa))
            || self.routes.output(spa) == Some((port, spa));
        let our_mac = info.mac;
        match repr.operation {
            arp::Operation::Request => self.counters.inc(ControlEvent::ArpRequestsIn),
            arp::Operation::Reply => self.counters.inc(ControlEvent::ArpRepliesIn),
            arp::Operation::Unknown(_) => return self.counters.inc(ControlEvent::ArpInvalid),
        }
        // RFC 826 merge: update what we know about the sender; create an entry only when
        // the packet is about us. Probes (sender 0.0.0.0) teach nothing.
        if !spa.is_unspecified() && sha.is_unicast() {
            if on_link {
                let learned = self.neigh.learn(now, spa, sha, PortId(port), target_is_us);
                for ip in learned.released {
                    self.emit_ip(port, sha, &ip);
                }
            } else {
                self.counters.inc(ControlEvent::ArpNotLearned);
            }
        }
        if repr.operation == arp::Operation::Request && target_is_us && sha.is_unicast() {
            let reply = arp::Repr {
                operation: arp::Operation::Reply,
                source_hardware_addr: our_mac,
                source_protocol_addr: tpa,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            self.counters.inc(ControlEvent::ArpRepliesSent);
            self.emit_arp(port, sha, &reply);
        }
    }

    pub(super) fn send_arp_request(
        &mut self,
        port: u16,
        target: Ipv4Addr,
        unicast: Option<MacAddr>,
    ) {
        if self.mirror.is_some() {
            // The kernel is the ARP speaker: it resolves, and reports the answer.
            return self.kernel_solicit(port, target);
        }
        let Some(info) = self.ports.get(usize::from(port)) else {
            return;
        };
        let req = arp::Repr {
            operation: arp::Operation::Request,
            source_hardware_addr: info.mac,
            source_protocol_addr: self.source_for(port, target),
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        };
        self.counters.inc(ControlEvent::ArpRequestsSent);
        self.emit_arp(port, unicast.unwrap_or(MacAddr::BROADCAST), &req);
    }

    pub(super) fn emit_arp(&mut self, port: u16, dst: MacAddr, repr: &arp::Repr) {
        let src = self.ports[usize::from(port)].mac;
        // Pad to the 60-byte Ethernet minimum.
        let mut f = vec![0u8; 60];
        let eth = ethernet::Repr {
            src_addr: src,
            dst_addr: dst,
            ethertype: EtherType::Arp,
        };
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
        repr.emit(&mut arp::Packet::new_unchecked(
            &mut f[ethernet::HEADER_LEN..],
        ));
        self.out.push((port, f));
    }
}
