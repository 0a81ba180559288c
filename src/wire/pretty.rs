//! tcpdump-style one-line summaries of frames, for traces and test failure messages.
//!
//! Formatting never panics, whatever the bytes: every view goes through `new_checked`, and
//! anything that does not parse is printed as `[truncated]`, `[bad checksum]` and the like.

use core::fmt;
use core::net::Ipv4Addr;

use super::Error;
use super::{arp, ethernet, icmpv4, ipv4, tcp, udp};

/// Displays an Ethernet frame as a one-line summary, e.g.
/// `02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 198.18.0.2 > 198.19.0.2 ttl 64 len 84 ICMP echo
/// request id 1 seq 1`.
#[derive(Debug, Clone, Copy)]
pub struct PrettyFrame<'a>(pub &'a [u8]);

/// Displays an IPv4 packet (no link-layer header) as a one-line summary.
#[derive(Debug, Clone, Copy)]
pub struct PrettyIpv4<'a>(pub &'a [u8]);

impl fmt::Display for PrettyFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = match ethernet::Frame::new_checked(self.0) {
            Ok(frame) => frame,
            Err(_) => return write!(f, "ethernet [truncated, {} bytes]", self.0.len()),
        };
        write!(f, "{} > {} ", frame.src_addr(), frame.dst_addr())?;
        match frame.ethertype() {
            ethernet::EtherType::Ipv4 => fmt_ipv4(f, frame.payload()),
            ethernet::EtherType::Arp => fmt_arp(f, frame.payload()),
            other => write!(f, "{other} len {}", frame.payload().len()),
        }
    }
}

impl fmt::Display for PrettyIpv4<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ipv4(f, self.0)
    }
}

/// Writes ` [reason]` for a parse error.
fn fmt_err(f: &mut fmt::Formatter<'_>, err: Error) -> fmt::Result {
    match err {
        Error::Truncated => f.write_str(" [truncated]"),
        other => write!(f, " [{other}]"),
    }
}

fn fmt_arp(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("ARP")?;
    let packet = match arp::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => return fmt_err(f, e),
    };
    let repr = match arp::Repr::parse(&packet) {
        Ok(repr) => repr,
        Err(_) => {
            return write!(
                f,
                " [unsupported htype {} ptype {:#06x}]",
                packet.hardware_type(),
                packet.protocol_type()
            )
        }
    };
    match repr.operation {
        arp::Operation::Request => write!(
            f,
            " request who-has {} tell {}",
            repr.target_protocol_addr, repr.source_protocol_addr
        ),
        arp::Operation::Reply => {
            write!(
                f,
                " reply {} is-at {}",
                repr.source_protocol_addr, repr.source_hardware_addr
            )
        }
        arp::Operation::Unknown(op) => write!(
            f,
            " op {op} {} > {}",
            repr.source_protocol_addr, repr.target_protocol_addr
        ),
    }
}

fn fmt_ipv4(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("IPv4")?;
    let packet = ipv4::Packet::new_unchecked(bytes);
    if bytes.len() < ipv4::HEADER_LEN {
        return fmt_err(f, Error::Truncated);
    }
    // At least 20 bytes: the fixed header fields are readable.
    write!(
        f,
        " {} > {} ttl {} len {}",
        packet.src_addr(),
        packet.dst_addr(),
        packet.ttl(),
        packet.total_len()
    )?;
    match packet.validate() {
        Ok(()) => {}
        // The lengths are sound; keep decoding so the trace shows what was damaged.
        Err(Error::BadChecksum) => fmt_err(f, Error::BadChecksum)?,
        Err(e) => return fmt_err(f, e),
    }
    if packet.is_fragment() {
        let more = if packet.more_frags() { "+" } else { "" };
        write!(
            f,
            " frag id {} off {}{more}",
            packet.ident(),
            packet.frag_offset()
        )?;
        if !packet.is_first_fragment() {
            return write!(f, " {}", packet.protocol());
        }
    }
    let (src, dst, payload) = (packet.src_addr(), packet.dst_addr(), packet.payload());
    match packet.protocol() {
        ipv4::Protocol::Icmp => fmt_icmp(f, payload),
        ipv4::Protocol::Udp => fmt_udp(f, src, dst, payload),
        ipv4::Protocol::Tcp => fmt_tcp(f, src, dst, payload),
        other => write!(f, " {other}"),
    }
}

fn fmt_icmp(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    use icmpv4::{dst_unreachable_code as code, Message};

    f.write_str(" ICMP")?;
    let packet = match icmpv4::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => return fmt_err(f, e),
    };
    let msg = packet.msg_type();
    match msg {
        Message::EchoRequest | Message::EchoReply => {
            write!(
                f,
                " {msg} id {} seq {}",
                packet.echo_ident(),
                packet.echo_seq_no()
            )?;
        }
        Message::DstUnreachable => {
            f.write_str(" dst unreachable")?;
            match packet.msg_code() {
                code::NET => f.write_str(" net")?,
                code::HOST => f.write_str(" host")?,
                code::PROTOCOL => f.write_str(" protocol")?,
                code::PORT => f.write_str(" port")?,
                code::FRAG_NEEDED => write!(f, " frag needed mtu {}", packet.next_hop_mtu())?,
                code::ADMIN_PROHIBITED => f.write_str(" admin prohibited")?,
                other => write!(f, " code {other}")?,
            }
        }
        Message::ParamProblem => write!(f, " {msg} pointer {}", packet.pointer())?,
        _ => write!(f, " {msg} code {}", packet.msg_code())?,
    }
    if msg.is_error() {
        fmt_quote(f, packet.data())?;
    }
    if !packet.verify_checksum() {
        fmt_err(f, Error::BadChecksum)?;
    }
    Ok(())
}

/// The addresses and protocol of the datagram quoted in an ICMP error (usually truncated, so
/// only the fixed header is read).
fn fmt_quote(f: &mut fmt::Formatter<'_>, quote: &[u8]) -> fmt::Result {
    if quote.len() < ipv4::HEADER_LEN {
        return Ok(());
    }
    let inner = ipv4::Packet::new_unchecked(quote);
    write!(
        f,
        " for {} > {} {}",
        inner.src_addr(),
        inner.dst_addr(),
        inner.protocol()
    )
}

fn fmt_udp(f: &mut fmt::Formatter<'_>, src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8]) -> fmt::Result {
    f.write_str(" UDP")?;
    let packet = match udp::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => return fmt_err(f, e),
    };
    write!(
        f,
        " {} > {} len {}",
        packet.src_port(),
        packet.dst_port(),
        packet.payload().len()
    )?;
    if !packet.verify_checksum(src, dst) {
        fmt_err(f, Error::BadChecksum)?;
    }
    Ok(())
}

fn fmt_tcp(f: &mut fmt::Formatter<'_>, src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8]) -> fmt::Result {
    f.write_str(" TCP")?;
    let packet: tcp::Packet<&[u8]> = match tcp::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => return fmt_err(f, e),
    };
    write!(f, " {} > {} [", packet.src_port(), packet.dst_port())?;
    // tcpdump's letters and order.
    let letters = [
        (tcp::flags::FIN, 'F'),
        (tcp::flags::SYN, 'S'),
        (tcp::flags::RST, 'R'),
        (tcp::flags::PSH, 'P'),
        (tcp::flags::ACK, '.'),
        (tcp::flags::URG, 'U'),
        (tcp::flags::ECE, 'E'),
        (tcp::flags::CWR, 'W'),
    ];
    let flags = packet.flags();
    if flags == 0 {
        f.write_str("none")?;
    }
    for (bit, letter) in letters {
        if flags & bit != 0 {
            fmt::Write::write_char(f, letter)?;
        }
    }
    write!(f, "] seq {}", packet.seq_number())?;
    if packet.ack() {
        write!(f, " ack {}", packet.ack_number())?;
    }
    write!(
        f,
        " win {} len {}",
        packet.window_len(),
        packet.payload().len()
    )?;
    if !packet.verify_checksum(src, dst) {
        fmt_err(f, Error::BadChecksum)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, MacAddr};
    use crate::wire::test_rng::Rng;

    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const IP_B: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    /// Ethernet + IPv4 header (checksummed) around an L4 payload of `l4_len` bytes written by `fill`.
    fn ipv4_frame(proto: ipv4::Protocol, l4_len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut buf = vec![0u8; 14 + 20 + l4_len];
        let eth = ethernet::Repr {
            src_addr: MAC_A,
            dst_addr: MAC_B,
            ethertype: EtherType::Ipv4,
        };
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
        let ip = ipv4::Repr {
            src_addr: IP_A,
            dst_addr: IP_B,
            protocol: proto,
            payload_len: l4_len,
            ttl: 64,
            ident: 7,
            dont_frag: true,
            dscp_ecn: 0,
        };
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[14..]));
        fill(&mut buf[34..]);
        buf
    }

    fn echo_frame() -> Vec<u8> {
        let data = [0x5a; 56];
        let echo = icmpv4::Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: &data,
        };
        ipv4_frame(ipv4::Protocol::Icmp, echo.buffer_len(), |b| {
            echo.emit(&mut icmpv4::Packet::new_unchecked(b));
        })
    }

    fn arp_frame(repr: arp::Repr) -> Vec<u8> {
        let mut buf = vec![0u8; 60];
        let eth = ethernet::Repr {
            src_addr: MAC_B,
            dst_addr: MacAddr::BROADCAST,
            ethertype: EtherType::Arp,
        };
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
        repr.emit(&mut arp::Packet::new_unchecked(&mut buf[14..]));
        buf
    }

    fn udp_frame() -> Vec<u8> {
        ipv4_frame(ipv4::Protocol::Udp, 12, |b| {
            let mut p = udp::Packet::new_unchecked(b);
            p.set_src_port(1234);
            p.set_dst_port(53);
            p.set_len(12);
            p.fill_checksum(IP_A, IP_B);
        })
    }

    fn tcp_frame(flags: u8) -> Vec<u8> {
        ipv4_frame(ipv4::Protocol::Tcp, 22, |b| {
            let mut p = tcp::Packet::new_unchecked(b);
            p.set_src_port(40000);
            p.set_dst_port(80);
            p.set_seq_number(100);
            p.set_ack_number(200);
            p.set_header_len(20);
            p.set_flags(flags);
            p.set_window_len(512);
            p.fill_checksum(IP_A, IP_B);
        })
    }

    const PREFIX: &str =
        "02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 198.18.0.2 > 198.19.0.2 ttl 64";

    #[test]
    fn golden_echo() {
        assert_eq!(
            PrettyFrame(&echo_frame()).to_string(),
            format!("{PREFIX} len 84 ICMP echo request id 1 seq 1")
        );
        assert_eq!(
            PrettyIpv4(&echo_frame()[14..]).to_string(),
            "IPv4 198.18.0.2 > 198.19.0.2 ttl 64 len 84 ICMP echo request id 1 seq 1"
        );
    }

    #[test]
    fn golden_arp() {
        let request = arp::Repr {
            operation: arp::Operation::Request,
            source_hardware_addr: MAC_B,
            source_protocol_addr: IP_A,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: Ipv4Addr::new(198, 18, 0, 1),
        };
        assert_eq!(
            PrettyFrame(&arp_frame(request)).to_string(),
            "02:00:00:00:00:02 > ff:ff:ff:ff:ff:ff ARP request who-has 198.18.0.1 tell 198.18.0.2"
        );
        let reply = arp::Repr {
            operation: arp::Operation::Reply,
            ..request
        };
        assert!(PrettyFrame(&arp_frame(reply))
            .to_string()
            .ends_with("ARP reply 198.18.0.2 is-at 02:00:00:00:00:02"));
        let mut odd = arp_frame(request);
        odd[14 + 1] = 6; // htype 6 (IEEE 802)
        assert!(PrettyFrame(&odd)
            .to_string()
            .ends_with("ARP [unsupported htype 6 ptype 0x0800]"));
        assert!(PrettyFrame(&odd[..30])
            .to_string()
            .ends_with("ARP [truncated]"));
    }

    #[test]
    fn golden_udp_tcp() {
        assert_eq!(
            PrettyFrame(&udp_frame()).to_string(),
            format!("{PREFIX} len 32 UDP 1234 > 53 len 4")
        );
        assert_eq!(
            PrettyFrame(&tcp_frame(tcp::flags::SYN | tcp::flags::ACK)).to_string(),
            format!("{PREFIX} len 42 TCP 40000 > 80 [S.] seq 100 ack 200 win 512 len 2")
        );
        assert_eq!(
            PrettyFrame(&tcp_frame(tcp::flags::SYN)).to_string(),
            format!("{PREFIX} len 42 TCP 40000 > 80 [S] seq 100 win 512 len 2")
        );
        assert!(PrettyFrame(&tcp_frame(0)).to_string().contains("[none]"));
        let mut bad = udp_frame();
        bad[45] ^= 1;
        assert!(PrettyFrame(&bad)
            .to_string()
            .ends_with("UDP 1234 > 53 len 4 [bad checksum]"));
    }

    #[test]
    fn golden_icmp_error() {
        let quote = &echo_frame()[14..42];
        let msg = icmpv4::Repr::DstUnreachable {
            code: 4,
            next_hop_mtu: 1400,
            quote,
        };
        let frame = ipv4_frame(ipv4::Protocol::Icmp, msg.buffer_len(), |b| {
            msg.emit(&mut icmpv4::Packet::new_unchecked(b));
        });
        assert_eq!(
            PrettyFrame(&frame).to_string(),
            format!(
                "{PREFIX} len 56 ICMP dst unreachable frag needed mtu 1400 \
                 for 198.18.0.2 > 198.19.0.2 ICMP"
            )
        );
    }

    #[test]
    fn damaged() {
        assert_eq!(
            PrettyFrame(&[]).to_string(),
            "ethernet [truncated, 0 bytes]"
        );
        let echo = echo_frame();
        assert!(PrettyFrame(&echo[..20])
            .to_string()
            .ends_with("IPv4 [truncated]"));
        assert!(PrettyFrame(&echo[..40])
            .to_string()
            .ends_with("ttl 64 len 84 [bad total length]"));
        let mut bad = echo.clone();
        bad[14 + 10] ^= 0xFF;
        assert!(PrettyFrame(&bad)
            .to_string()
            .contains("len 84 [bad checksum] ICMP echo request"));
        let mut bad = echo.clone();
        bad[14] = 0x65;
        assert!(PrettyFrame(&bad).to_string().ends_with("[bad IP version]"));
        let mut frag = echo.clone();
        ipv4::Packet::new_unchecked(&mut frag[14..]).set_frag_offset(1480);
        ipv4::Packet::new_unchecked(&mut frag[14..]).fill_checksum();
        assert!(PrettyFrame(&frag)
            .to_string()
            .ends_with("frag id 7 off 1480 ICMP"));
        let mut vlan = echo;
        vlan[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(PrettyFrame(&vlan)
            .to_string()
            .ends_with("ethertype 0x8100 len 84"));
        // Padding after total_len is not part of the UDP datagram.
        let mut padded = udp_frame();
        padded.resize(60, 0);
        assert!(PrettyFrame(&padded)
            .to_string()
            .ends_with("UDP 1234 > 53 len 4"));
    }

    /// Arbitrary and mutated frames never make the formatter panic.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(5);
        let seeds = [
            echo_frame(),
            udp_frame(),
            tcp_frame(0x12),
            arp_frame(arp::Repr {
                operation: arp::Operation::Unknown(9),
                source_hardware_addr: MAC_A,
                source_protocol_addr: IP_A,
                target_hardware_addr: MAC_B,
                target_protocol_addr: IP_B,
            }),
        ];
        let mut out = String::new();
        for i in 0..50_000 {
            let mut buf = if i % 4 == 0 {
                let mut b = vec![0u8; rng.below(120)];
                rng.fill(&mut b);
                if b.len() >= 14 && rng.below(2) == 0 {
                    b[12..14].copy_from_slice(if rng.below(2) == 0 { &[8, 0] } else { &[8, 6] });
                }
                b
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..rng.below(4) {
                if !buf.is_empty() {
                    let at = rng.below(buf.len());
                    buf[at] = rng.byte();
                }
            }
            buf.truncate(rng.below(buf.len() + 1));
            out.clear();
            fmt::Write::write_fmt(&mut out, format_args!("{}", PrettyFrame(&buf))).unwrap();
            assert!(!out.is_empty());
        }
    }
}
