//! Shared helpers for the pipeline and NAT tests: golden packets built with `Repr::emit`.
#![allow(dead_code, unreachable_pub, clippy::tests_outside_test_module)]

use std::net::Ipv4Addr;

use xgw::{
    runtime::testbed::{port_mac, Testbed},
    wire::{
        arp,
        ethernet::{self, EtherType, MacAddr},
        icmpv4,
        ipv4::{self, Packet, Protocol},
        tcp, udp,
    },
};

pub const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc0, 0, 0, 0, 0x02]);
pub const SERVER_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x02]);

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
pub fn client() -> Ipv4Addr {
    ip("198.18.0.2")
}
pub fn server() -> Ipv4Addr {
    ip("198.19.0.2")
}

pub fn eth(dst: MacAddr, src: MacAddr, ty: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + payload.len()];
    ethernet::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype: ty,
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
    f[ethernet::HEADER_LEN..].copy_from_slice(payload);
    f
}

pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub df: bool,
    pub proto: Protocol,
    pub payload: Vec<u8>,
}

impl Ip {
    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Ip {
        let mut payload = vec![0u8; udp::HEADER_LEN + len];
        for (i, b) in payload.iter_mut().enumerate().skip(udp::HEADER_LEN) {
            *b = (i % 251) as u8;
        }
        let mut u = udp::Packet::new_unchecked(&mut payload[..]);
        u.set_src_port(40000);
        u.set_dst_port(33434);
        u.set_len(u16::try_from(udp::HEADER_LEN + len).unwrap());
        u.fill_checksum(src, dst);
        Ip {
            src,
            dst,
            ttl: 64,
            df: true,
            proto: Protocol::Udp,
            payload,
        }
    }
    /// UDP with chosen ports and `len` payload bytes.
    pub fn udp_ports(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, len: usize) -> Ip {
        let mut p = Ip::udp(src, dst, len);
        let mut u = udp::Packet::new_unchecked(&mut p.payload[..]);
        u.set_src_port(sport);
        u.set_dst_port(dport);
        u.fill_checksum(src, dst);
        p
    }

    /// A 20-byte TCP segment with `flags` and no payload.
    pub fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Ip {
        let mut payload = vec![0u8; tcp::HEADER_LEN];
        let mut t = tcp::Packet::new_unchecked(&mut payload[..]);
        t.set_src_port(sport);
        t.set_dst_port(dport);
        t.set_seq_number(0x1000);
        t.set_header_len(20);
        t.set_flags(flags);
        t.set_window_len(65535);
        t.fill_checksum(src, dst);
        Ip {
            src,
            dst,
            ttl: 64,
            df: true,
            proto: Protocol::Tcp,
            payload,
        }
    }

    pub fn echo(src: Ipv4Addr, dst: Ipv4Addr, seq: u16) -> Ip {
        let data = b"xgw-ping-payload";
        let r = icmpv4::Repr::EchoRequest {
            ident: 0x77,
            seq_no: seq,
            data,
        };
        let mut payload = vec![0u8; r.buffer_len()];
        r.emit(&mut icmpv4::Packet::new_unchecked(&mut payload[..]));
        Ip {
            src,
            dst,
            ttl: 64,
            df: false,
            proto: Protocol::Icmp,
            payload,
        }
    }
    pub fn ttl(mut self, t: u8) -> Ip {
        self.ttl = t;
        self
    }
    pub fn df(mut self, df: bool) -> Ip {
        self.df = df;
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let r = ipv4::Repr {
            src_addr: self.src,
            dst_addr: self.dst,
            protocol: self.proto,
            payload_len: self.payload.len(),
            ttl: self.ttl,
            ident: 0x1234,
            dont_frag: self.df,
            dscp_ecn: 0,
        };
        let mut b = vec![0u8; ipv4::HEADER_LEN + self.payload.len()];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        b[ipv4::HEADER_LEN..].copy_from_slice(&self.payload);
        b
    }
    /// As a frame from the client to the router's port 0.
    pub fn client_frame(&self) -> Vec<u8> {
        eth(port_mac(0), CLIENT_MAC, EtherType::Ipv4, &self.bytes())
    }
}

pub fn arp_frame(
    op: arp::Operation,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
    dst: MacAddr,
) -> Vec<u8> {
    let r = arp::Repr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut p = vec![0u8; arp::PACKET_LEN];
    r.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    eth(dst, sha, EtherType::Arp, &p)
}

pub fn parse_arp(f: &[u8]) -> arp::Repr {
    let fr = ethernet::Frame::new_checked(f).unwrap();
    assert_eq!(fr.ethertype(), EtherType::Arp);
    arp::Repr::parse(&arp::Packet::new_checked(fr.payload()).unwrap()).unwrap()
}

/// The IPv4 packet in a frame, checked.
pub fn l3(f: &[u8]) -> Packet<&[u8]> {
    let fr = ethernet::Frame::new_checked(f).unwrap();
    assert_eq!(fr.ethertype(), EtherType::Ipv4);
    let p = Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
    assert!(p.verify_checksum(), "IPv4 checksum");
    p
}

pub fn icmp_of<'a>(p: &'a Packet<&'a [u8]>) -> icmpv4::Packet<&'a [u8]> {
    assert_eq!(p.protocol(), Protocol::Icmp);
    let i = icmpv4::Packet::new_checked(p.payload()).unwrap();
    assert!(i.verify_checksum(), "ICMP checksum");
    i
}

/// A testbed where the client has ARPed for the router (so the router knows it).
pub fn bed(cfg: &str) -> Testbed {
    let mut t = Testbed::new(cfg);
    t.push(
        0,
        &arp_frame(
            arp::Operation::Request,
            CLIENT_MAC,
            client(),
            MacAddr::ZERO,
            ip("198.18.0.1"),
            MacAddr::BROADCAST,
        ),
    );
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1, "one ARP reply");
    let r = parse_arp(&tx[0]);
    assert_eq!(r.operation, arp::Operation::Reply);
    assert_eq!(r.source_hardware_addr, port_mac(0));
    assert_eq!(r.source_protocol_addr, ip("198.18.0.1"));
    assert_eq!(r.target_hardware_addr, CLIENT_MAC);
    assert_eq!(
        ethernet::Frame::new_checked(&tx[0][..]).unwrap().dst_addr(),
        CLIENT_MAC
    );
    t
}

/// Resolve the server: send a packet, answer the router's ARP request.
pub fn bed_with_server(cfg: &str) -> Testbed {
    let mut t = bed(cfg);
    t.push(0, &Ip::udp(client(), server(), 10).client_frame());
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "one ARP request");
    let r = parse_arp(&req[0]);
    assert_eq!(r.operation, arp::Operation::Request);
    assert_eq!(r.target_protocol_addr, server());
    assert_eq!(r.source_protocol_addr, ip("198.19.0.1"));
    assert!(ethernet::Frame::new_checked(&req[0][..])
        .unwrap()
        .dst_addr()
        .is_broadcast());
    t.push(
        1,
        &arp_frame(
            arp::Operation::Reply,
            SERVER_MAC,
            server(),
            port_mac(1),
            ip("198.19.0.1"),
            port_mac(1),
        ),
    );
    t.step();
    let released = t.take_tx(1);
    assert_eq!(
        released.len(),
        1,
        "the queued packet goes out once resolved (RFC 1122 2.3.2.2)"
    );
    assert_eq!(l3(&released[0]).ttl(), 63);
    t
}

/// A frame from the server's MAC to the router's port 1.
pub fn server_frame(ip: &[u8]) -> Vec<u8> {
    eth(port_mac(1), SERVER_MAC, EtherType::Ipv4, ip)
}
