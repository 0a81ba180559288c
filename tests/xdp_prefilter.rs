//! The XDP program's NAT prefilter (bpf/xsk_redirect.bpf.c), run by BPF_PROG_RUN on frames
//! "received" on a veth (down) in a network namespace this test creates: what it drops
//! (inbound TCP/UDP to a pool port without a mapping) and everything it must leave to the
//! workers (mapped ports, bare SYNs, fragments, IP options, short or malformed headers,
//! other protocols and addresses, other ports). Needs root (CI is root); without it the test
//! says so and checks nothing.
#![cfg(feature = "xdp")]
#![allow(clippy::tests_outside_test_module)]

use std::{net::Ipv4Addr, process::Command};

use xgw::{
    io::xdp::{NatPrefilter, XdpMode, XdpProgram},
    nat::{flow::proto, portmap::PortMap},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const POOL: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// An Ethernet + IPv4 frame with `l4` as payload (checksums left zero: the prefilter does
/// not read them, and the workers check them).
fn frame(proto_: u8, dst: Ipv4Addr, l4: &[u8], ihl: u8, frag: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x08; // IPv4
    let hl = usize::from(ihl) * 4;
    let mut ip = vec![0u8; hl];
    ip[0] = 0x40 | ihl;
    ip[2..4].copy_from_slice(&u16::try_from(hl + l4.len()).unwrap().to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto_;
    ip[12..16].copy_from_slice(&REMOTE.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f.resize(f.len().max(60), 0); // Ethernet minimum, as on the wire
    f
}

fn udp(dport: u16) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[0..2].copy_from_slice(&5353u16.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&8u16.to_be_bytes());
    h
}

fn tcp(dport: u16, flags: u8) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&443u16.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[12] = 5 << 4;
    h[13] = flags;
    h
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect(args[0]);
    assert!(st.success(), "{args:?}");
}

/// Creates the namespace and runs [`prefilter_in_netns`] in it (this test binary again).
#[test]
fn prefilter_verdicts() {
    // Root: the effective uid in /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        eprintln!("prefilter_verdicts: not root, nothing checked");
        return;
    }
    let ns = Netns(format!("xgwt-pf-{}", std::process::id()));
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&[
        "ip", "-n", &ns.0, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", "prefilter_in_netns", "--ignored", "--nocapture"])
        .env("XGW_PREFILTER_NETNS", &ns.0)
        .output()
        .expect("run in netns");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the inner test ran: {text}");
}

fn ifindex(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .expect("ifindex")
        .trim()
        .parse()
        .expect("ifindex")
}

#[test]
#[ignore = "run by prefilter_verdicts inside its network namespace"]
fn prefilter_in_netns() {
    assert!(
        std::env::var("XGW_PREFILTER_NETNS").is_ok(),
        "run through prefilter_verdicts"
    );
    let (outside, inside) = (ifindex("d0"), ifindex("d1"));
    let other_pool = Ipv4Addr::new(198, 19, 0, 2);
    let mut prog = XdpProgram::load(
        &[inside, outside],
        1,
        Some(&NatPrefilter {
            outside_ifindex: outside,
            pool: vec![POOL, other_pool],
            capacity: 3,
        }),
        None,
    )
    .expect("load");
    // Attached so that test runs do not churn the kernel's XDP dispatcher (see io::xdp_tx);
    // the veth pair is down and nothing else is in the namespace, so nothing is received.
    for dev in [inside, outside] {
        prog.attach(dev, XdpMode::Native).expect("attach");
    }
    let words = prog.take_nat_ports().expect("bitmap");
    assert!(prog.take_nat_ports().is_none(), "handed out once");
    let map = PortMap::with_words(&[POOL, other_pool], Box::new(words));
    map.set(POOL, proto::UDP, 40000, true);
    map.set(POOL, proto::TCP, 8080, true);
    map.set(other_pool, proto::UDP, 65535, true);
    let v = |f: &[u8], dev: u32| prog.verdict(f, dev).expect("test run");

    // Dropped: unmapped UDP and TCP (not a bare SYN) to the pool, on the outside port.
    let drops = [
        frame(proto::UDP, POOL, &udp(40001), 5, 0),
        frame(proto::UDP, POOL, &udp(8080), 5, 0), // TCP 8080 is mapped, UDP is not
        frame(proto::UDP, other_pool, &udp(40000), 5, 0), // the other address's bits
        frame(proto::TCP, POOL, &tcp(40000, 0x10), 5, 0), // ACK; UDP 40000 is not TCP
        frame(proto::TCP, POOL, &tcp(1, 0x12), 5, 0), // SYN-ACK
        frame(proto::TCP, POOL, &tcp(1, 0x04), 5, 0), // RST
        frame(proto::TCP, POOL, &tcp(1, 0x06), 5, 0), // SYN+RST: not a bare SYN
        frame(proto::UDP, POOL, &udp(0), 5, 0),
        frame(proto::UDP, POOL, &udp(65534), 5, 0),
    ];
    for (i, f) in drops.iter().enumerate() {
        assert_eq!(v(f, outside), XDP_DROP, "drop #{i}");
    }
    assert_eq!(prog.stats().nat_unmapped, drops.len() as u64);

    // Left to the workers (no socket registered, so the program's fallback is XDP_PASS).
    let mut short_ip = frame(proto::UDP, POOL, &udp(40001), 5, 0);
    short_ip.truncate(14 + 19); // IPv4 header cut short
    let mut short_l4 = frame(proto::TCP, POOL, &tcp(1, 0x10), 5, 0);
    short_l4.truncate(14 + 20 + 13); // no TCP flags byte
    let mut v6 = frame(proto::UDP, POOL, &udp(40001), 5, 0);
    v6[14] = 0x65; // version 6 with an IPv4 ethertype
    let mut arp = frame(proto::UDP, POOL, &udp(40001), 5, 0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let passes = [
        ("mapped UDP", frame(proto::UDP, POOL, &udp(40000), 5, 0)),
        (
            "mapped TCP",
            frame(proto::TCP, POOL, &tcp(8080, 0x10), 5, 0),
        ),
        (
            "mapped, other address",
            frame(proto::UDP, other_pool, &udp(65535), 5, 0),
        ),
        (
            "bare SYN (REQ-4 hold)",
            frame(proto::TCP, POOL, &tcp(1, 0x02), 5, 0),
        ),
        (
            "SYN with FIN/PSH",
            frame(proto::TCP, POOL, &tcp(1, 0x0b), 5, 0),
        ),
        (
            "first fragment",
            frame(proto::UDP, POOL, &udp(40001), 5, 0x2000),
        ),
        (
            "later fragment",
            frame(proto::UDP, POOL, &udp(40001), 5, 0x0010),
        ),
        (
            "DF set, mapped",
            frame(proto::UDP, POOL, &udp(40000), 5, 0x4000),
        ),
        ("IP options", frame(proto::UDP, POOL, &udp(40001), 6, 0)),
        (
            "ICMP",
            frame(proto::ICMP, POOL, &[8, 0, 0, 0, 0, 1, 0, 1], 5, 0),
        ),
        (
            "not a pool address",
            frame(proto::UDP, REMOTE, &udp(40001), 5, 0),
        ),
        ("short IPv4 header", short_ip),
        ("short TCP header", short_l4),
        ("IP version 6", v6),
        ("ARP", arp),
    ];
    for (what, f) in &passes {
        assert_eq!(v(f, outside), XDP_PASS, "{what}");
    }
    // No socket serves queue 0 here: each of them was passed to the kernel, and counted so.
    assert_eq!(prog.stats().no_socket, passes.len() as u64);
    // DF alone is not a fragment: unmapped with DF set is dropped.
    assert_eq!(
        v(&frame(proto::UDP, POOL, &udp(40001), 5, 0x4000), outside),
        XDP_DROP
    );
    // The inside port never filters (hairpinning and outbound traffic reach the workers).
    assert_eq!(
        v(&frame(proto::UDP, POOL, &udp(40001), 5, 0), inside),
        XDP_PASS
    );

    // A mapping released: its port drops again; a new one passes at once.
    map.set(POOL, proto::UDP, 40000, false);
    assert_eq!(
        v(&frame(proto::UDP, POOL, &udp(40000), 5, 0), outside),
        XDP_DROP
    );
    map.set(POOL, proto::UDP, 40001, true);
    assert_eq!(
        v(&frame(proto::UDP, POOL, &udp(40001), 5, 0), outside),
        XDP_PASS
    );

    // Flood: 100k frames to unmapped ports, all dropped, all counted; one mapped port amid
    // them still passes. (BPF_PROG_RUN runs each frame once here; the rate is bench.sh's.)
    let before = prog.stats().nat_unmapped;
    let mut passed = 0u64;
    for i in 0..100_000u32 {
        let port = 1024 + u16::try_from(i % 60_000).unwrap();
        let r = v(&frame(proto::UDP, POOL, &udp(port), 5, 0), outside);
        if r == XDP_PASS {
            passed += 1;
        }
    }
    // Port 40001 is mapped: hit once per 60000 ports.
    assert_eq!(passed, 2);
    assert_eq!(prog.stats().nat_unmapped - before, 100_000 - 2);
    // Every frame passed for want of a socket is counted: the passes, the inside port's,
    // the new mapping's and the flood's two.
    assert_eq!(prog.stats().no_socket, passes.len() as u64 + 1 + 1 + 2);

    // A pool address a reload adds: unfiltered until the program is told, then filtered by
    // its own (clear) bits; past the capacity loaded the map refuses it.
    let added = Ipv4Addr::new(198, 19, 0, 3);
    assert_eq!(
        v(&frame(proto::UDP, added, &udp(40001), 5, 0), outside),
        XDP_PASS
    );
    let grown = map.with_pool(&[POOL, other_pool, added]).expect("room");
    prog.add_pool_address(added, 2).expect("within capacity");
    assert_eq!(
        v(&frame(proto::UDP, added, &udp(40001), 5, 0), outside),
        XDP_DROP
    );
    grown.set(added, proto::UDP, 40001, true);
    assert_eq!(
        v(&frame(proto::UDP, added, &udp(40001), 5, 0), outside),
        XDP_PASS
    );
    assert!(
        prog.add_pool_address(Ipv4Addr::new(198, 19, 0, 4), 3)
            .is_err(),
        "map full"
    );

    // The outside port's device created anew (d2, a new ifindex): the program steers it as
    // the port and the prefilter follows it; the old ifindex is no port any more.
    sh(&[
        "ip", "link", "add", "d2", "type", "veth", "peer", "name", "d3",
    ]);
    let again = ifindex("d2");
    assert!(prog.set_port_ifindex(2, again).is_err(), "no port 2");
    assert!(prog.set_port_ifindex(1, inside).is_err(), "another port's");
    assert!(prog.set_port_ifindex(1, 0).is_err(), "no device 0");
    assert_eq!(prog.set_port_ifindex(1, again).expect("moved"), outside);
    prog.attach(again, XdpMode::Native).expect("attach to d2");
    let v = |f: &[u8], dev: u32| prog.verdict(f, dev).expect("test run");
    let unmapped = frame(proto::UDP, POOL, &udp(40002), 5, 0);
    let before = prog.stats();
    assert_eq!(v(&unmapped, again), XDP_DROP, "filtered on the new device");
    assert_eq!(
        v(&unmapped, outside),
        XDP_PASS,
        "the old ifindex is not a port"
    );
    let after = prog.stats();
    assert_eq!(after.nat_unmapped - before.nat_unmapped, 1);
    assert_eq!(after.not_from_a_port - before.not_from_a_port, 1);
    // The inside port is untouched.
    assert_eq!(v(&unmapped, inside), XDP_PASS);
    assert_eq!(prog.stats().no_socket - after.no_socket, 1);
}
