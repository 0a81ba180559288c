//! xgw's fuzz targets, as plain functions of the input bytes: the `src/bin` entry points hand
//! them to AFL++ (afl.rs, stable Rust), and the tests below replay the committed corpora.
//!
//! Every target checks invariants on every input, beyond "no panic" (a panic, a failed
//! `assert!` or a debug assertion inside xgw is a finding: the fuzz profile keeps debug
//! assertions and overflow checks on):
//! - `wire`: every parser on arbitrary bytes; what a `Repr` parses it emits back unchanged.
//! - `nat_translate`: flow keys and rewrites of arbitrary packets; a rewrite of a packet whose
//!   checksums were valid leaves them valid (RFC 1624 incremental updates), and changes only
//!   the addresses, ports and checksums.
//! - `icmp_error`: errors built about arbitrary packets are at most 576 bytes with valid IP
//!   and ICMP checksums and quote a prefix of the original; translating an error (RFC 5508)
//!   keeps the outer, ICMP and quoted IP checksums valid.
//! - `config`: the config parser on arbitrary text never panics, and what it accepts meets
//!   its documented limits.
//! - `pipeline`: the whole router (workers and the production control loop over memory I/O,
//!   NAT included) on a sequence of frames and clock steps: every transmitted IPv4 packet has
//!   a valid header checksum, and a valid L4 checksum whenever every input had one; no limit
//!   is exceeded (sessions, per-host sessions, reassembly bytes, neighbours); every punt
//!   buffer comes back (frames conserved; the pipeline's own debug assertions check the
//!   batch accounting).
//! - `mirror`: the `netlink` target's bytes into a kernel-mirror control plane (bounds of
//!   the route import, the neighbour mirror and the resolution queue).
//! - `netlink`: rtnetlink bytes as one `recv` returns them: decoding never panics and
//!   accounts for every message; the link state machine stays consistent on what decodes.

use std::{net::Ipv4Addr, time::Duration};

use xgw::{
    control::icmp::{build_error, IcmpError, MAX_ERROR_LEN},
    nat::{flow::Rewrite, translate},
    runtime::testbed::{port_mac, Testbed},
    wire::{
        arp,
        ethernet::{self, EtherType, MacAddr},
        icmpv4, ipv4, tcp, udp,
    },
};

/// A little cursor over the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn addr(&mut self) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ))
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// Make `ip` a consistent IPv4 packet where it can: total length = its length, UDP length =
/// its transport length, and every checksum (IP, and TCP/UDP/ICMP of an unfragmented
/// packet) filled. Returns whether all checksums that apply are now valid.
pub fn fix_up(ip: &mut [u8]) -> bool {
    let Ok(len) = u16::try_from(ip.len()) else {
        return false;
    };
    if ip.len() < ipv4::HEADER_LEN {
        return false;
    }
    // The total length first: the checked view refuses one beyond the buffer.
    ip[2..4].copy_from_slice(&len.to_be_bytes());
    let Ok(mut p) = ipv4::Packet::new_checked(&mut ip[..]) else {
        return false;
    };
    if p.version() != 4 {
        return false;
    }
    p.set_total_len(len);
    p.fill_checksum();
    let hl = usize::from(p.header_len());
    let (src, dst, proto, frag) = (
        p.src_addr(),
        p.dst_addr(),
        u8::from(p.protocol()),
        p.is_fragment(),
    );
    if frag {
        return true;
    }
    let l4 = &mut ip[hl..];
    match proto {
        17 => {
            let Ok(n) = u16::try_from(l4.len()) else {
                return false;
            };
            if let Ok(mut u) = udp::Packet::new_checked(&mut l4[..]) {
                u.set_len(n);
                u.fill_checksum(src, dst);
            }
        }
        6 => {
            if let Ok(mut t) = tcp::Packet::new_checked(&mut l4[..]) {
                t.fill_checksum(src, dst);
            }
        }
        1 => {
            if let Ok(mut i) = icmpv4::Packet::new_checked(&mut l4[..]) {
                i.fill_checksum();
            }
        }
        _ => {}
    }
    true
}

/// Whether `ip`'s transport checksum is valid (true when it does not apply: fragments,
/// other protocols, headers too short to hold one).
pub fn l4_checksum_ok(ip: &[u8]) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(ip) else {
        return true;
    };
    if p.is_fragment() {
        return true;
    }
    let end = usize::from(p.total_len()).min(ip.len());
    let hl = usize::from(p.header_len());
    let Some(l4) = ip.get(hl..end) else {
        return true;
    };
    let (src, dst) = (p.src_addr(), p.dst_addr());
    match u8::from(p.protocol()) {
        17 => udp::Packet::new_checked(l4).map_or(true, |u| {
            usize::from(u.len()) != l4.len() || u.verify_checksum(src, dst)
        }),
        6 => tcp::Packet::new_checked(l4).map_or(true, |t| t.verify_checksum(src, dst)),
        1 => icmpv4::Packet::new_checked(l4).map_or(true, |i| i.verify_checksum()),
        _ => true,
    }
}

/// Every wire parser on `data`: no panic; a parsed `Repr` emits back to the same bytes it
/// covers.
pub fn wire(data: &[u8]) {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        if let Ok(r) = ethernet::Repr::parse(&f) {
            let mut b = data.to_vec();
            r.emit(&mut ethernet::Frame::new_unchecked(&mut b[..]));
            assert_eq!(b, data, "ethernet round trip");
        }
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
    }
    if let Ok(p) = arp::Packet::new_checked(data) {
        if let Ok(r) = arp::Repr::parse(&p) {
            let mut b = vec![0u8; data.len()];
            b.copy_from_slice(data);
            r.emit(&mut arp::Packet::new_unchecked(&mut b[..]));
            let again = arp::Repr::parse(&arp::Packet::new_unchecked(&b[..])).expect("reparse");
            assert_eq!(again, r, "arp round trip");
        }
    }
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (p.verify_checksum(), p.options().len(), p.payload().len());
        if let Ok(r) = ipv4::Repr::parse(&p) {
            let _ = r;
        }
        let _ = translate::flow_key(data);
        let _ = translate::icmp_error_inner_key(data);
        let _ = l4_checksum_ok(data);
    }
    if let Ok(p) = icmpv4::Packet::new_checked(data) {
        let _ = p.verify_checksum();
        if let Ok(r) = icmpv4::Repr::parse(&p) {
            let _ = r;
        }
    }
    if let Ok(u) = udp::Packet::new_checked(data) {
        let _ = (u.src_port(), u.dst_port(), u.len());
    }
    if let Ok(t) = tcp::Packet::new_checked(data) {
        let _ = (t.flags(), t.header_len());
    }
}

/// A rewrite from the input: `[rewrite 12 bytes][fix-up byte][packet]`.
pub fn nat_translate(data: &[u8]) {
    let mut inp = Input(data);
    let (Some(src), Some(sport), Some(dst), Some(dport), Some(fix)) =
        (inp.addr(), inp.u16(), inp.addr(), inp.u16(), inp.u8())
    else {
        return;
    };
    let mut ip = inp.0.to_vec();
    let valid = fix & 1 == 1 && fix_up(&mut ip);
    let before = ip.clone();
    let r = Rewrite {
        src,
        sport,
        dst,
        dport,
    };
    let key = translate::flow_key(&ip);
    if translate::rewrite(&mut ip, &r).is_ok() {
        let p = ipv4::Packet::new_checked(&ip[..]).expect("a rewritten packet parses");
        assert_eq!(ip.len(), before.len(), "length unchanged");
        if valid {
            assert!(p.verify_checksum(), "IP checksum after rewrite");
            assert!(l4_checksum_ok(&ip), "L4 checksum after rewrite");
        }
        let after = translate::flow_key(&ip);
        if let (Ok(k), Ok(a)) = (key, after) {
            assert_eq!(
                (a.src, a.dst, a.proto),
                (src, dst, k.proto),
                "addresses rewritten"
            );
        }
    } else {
        assert_eq!(ip, before, "a refused rewrite leaves the packet alone");
    }
    // Compiled rewrites (the fast path's form) agree with the plain one.
    if let Ok(k) = translate::flow_key(&before) {
        let mut a = before.clone();
        let mut b = before.clone();
        let ra = translate::rewrite(&mut a, &r);
        let rb = translate::apply(&mut b, &translate::Compiled::new(&k, &r));
        if ra.is_ok() && rb.is_ok() {
            assert_eq!(a, b, "compiled rewrite = rewrite");
        }
    }
    let mut f = before.clone();
    if translate::rewrite_fragment(&mut f, src, dst).is_ok() && valid {
        assert!(ipv4::Packet::new_checked(&f[..]).unwrap().verify_checksum());
    }
}

/// `[kind][code][mtu 2][source 4][fix-up][original]`: build an error; `[quote rewrite 12]`
/// follows and is applied to the built error as the NAT would (RFC 5508).
pub fn icmp_error(data: &[u8]) {
    let mut inp = Input(data);
    let (Some(kind), Some(code), Some(mtu), Some(src), Some(fix)) =
        (inp.u8(), inp.u8(), inp.u16(), inp.addr(), inp.u8())
    else {
        return;
    };
    let rw = (inp.addr(), inp.u16(), inp.addr(), inp.u16());
    let mut orig = inp.0.to_vec();
    if fix & 1 == 1 {
        fix_up(&mut orig);
    }
    let kind = if kind & 1 == 0 {
        IcmpError::TtlExceeded
    } else {
        IcmpError::Unreachable { code, mtu }
    };
    if let Some(err) = build_error(kind, &orig, src, 7) {
        assert!(
            err.len() <= MAX_ERROR_LEN,
            "RFC 1812 4.3.2.3: at most 576 bytes"
        );
        let p = ipv4::Packet::new_checked(&err[..]).expect("an error parses");
        assert!(p.verify_checksum(), "error IP checksum");
        let i = icmpv4::Packet::new_checked(p.payload()).expect("ICMP parses");
        assert!(i.verify_checksum(), "error ICMP checksum");
        let quote = i.data();
        assert!(
            orig.starts_with(quote),
            "the quote is a prefix of the original"
        );
        // Translate it as the NAT would.
        if let (Some(a), Some(ap), Some(b), Some(bp)) = rw {
            let mut t = err.clone();
            let r = Rewrite {
                src: a,
                sport: ap,
                dst: b,
                dport: bp,
            };
            let inner_ok = ipv4::Packet::new_checked(quote).is_ok_and(|q| q.verify_checksum());
            if translate::rewrite_icmp_error(&mut t, b, a, &r).is_ok() {
                let p = ipv4::Packet::new_checked(&t[..]).unwrap();
                assert!(p.verify_checksum(), "translated error: IP checksum");
                let i = icmpv4::Packet::new_checked(p.payload()).unwrap();
                assert!(i.verify_checksum(), "translated error: ICMP checksum");
                if inner_ok {
                    let q = ipv4::Packet::new_unchecked(i.data());
                    assert!(q.verify_checksum(), "translated error: quoted IP checksum");
                }
            }
        }
    }
    let _ = translate::icmp_error_inner_key(&orig);
}

/// The configuration parser on arbitrary text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = xgw::config::parse(text, "fuzz.toml") {
        assert!(!c.interfaces.is_empty());
        if let Some(n) = &c.nat {
            assert!(n.max_sessions_per_host <= n.max_sessions);
            assert!(!n.addresses.is_empty());
            for (i, f) in n.forwards.iter().enumerate() {
                for g in &n.forwards[..i] {
                    assert!((f.proto, f.external, f.port) != (g.proto, g.external, g.port));
                    assert!((f.proto, f.to, f.to_port) != (g.proto, g.to, g.to_port));
                }
            }
        }
        assert!(c.neighbor.max_entries_per_port <= c.neighbor.max_entries);
    }
}

/// The router the pipeline target drives: two ports, NAT on r1 with a forward, every limit
/// small so that inputs reach them.
pub const PIPELINE_CONFIG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
mtu = 1400
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[[route]]
prefix = "198.51.100.0/24"
type = "unreachable"
[icmp]
rate = 100000
burst = 100000
[neighbor]
max_entries = 16
queue_len = 4
[nat]
outside = "r1"
inside = ["198.18.0.0/24"]
ports = "1024-1100"
max_sessions = 32
max_sessions_per_host = 8
reassembly_bytes = 65536
[[nat.forward]]
protocol = "tcp"
port = 8080
to = "198.18.0.2:80"
[punt.arp]
queue = 16
[punt.resolve]
queue = 16
[punt.nat]
queue = 16
[punt.icmp_error]
queue = 16
[punt.fragment]
queue = 16
[punt.pmtu]
queue = 16
[punt.transit]
queue = 16
[punt.local]
queue = 16
"#;

const SESSIONS: usize = 32;
const PER_HOST: u32 = 8;
const REASSEMBLY: usize = 65_536;
const NEIGHBOURS: usize = 16;
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x05]);

/// Records `[op][len][payload: len bytes]`, each one frame or clock step:
/// - op & 0x80: advance the clock by `len` x 20 ms (no payload);
/// - op & 1: the port (0 inside, 1 outside);
/// - op & 2: ARP (the payload is the ARP packet) instead of IPv4;
/// - op & 4: the payload as is (no checksum fix-up; L4 checks are off for this input);
/// - op & 8: the frame goes to another MAC address than the port's;
/// - op & 0x40: `len` counts 8-byte units (frames up to 2040 bytes).
pub fn pipeline(data: &[u8]) {
    let mut t = Testbed::new(PIPELINE_CONFIG);
    let buffers: Vec<usize> = t
        .workers
        .iter()
        .map(|w| w.punt_queues().free_buffers())
        .collect();
    let mut inp = Input(data);
    let mut l4_checks = true;
    let mut frames = 0;
    while let (Some(op), Some(len)) = (inp.u8(), inp.u8()) {
        if op & 0x80 != 0 {
            t.advance(Duration::from_millis(20 * u64::from(len)));
        } else {
            let port = usize::from(op & 1);
            let n = if op & 0x40 != 0 {
                usize::from(len) * 8
            } else {
                usize::from(len)
            };
            let mut payload = inp.take(n).to_vec();
            let ty = if op & 2 != 0 {
                EtherType::Arp
            } else {
                if op & 4 == 0 {
                    fix_up(&mut payload);
                } else {
                    l4_checks = false;
                }
                EtherType::Ipv4
            };
            let dst = if op & 8 != 0 {
                MacAddr([0x02, 9, 9, 9, 9, 9])
            } else {
                port_mac(port)
            };
            let src = if port == 0 { CLIENT_MAC } else { SERVER_MAC };
            let mut f = vec![0u8; ethernet::HEADER_LEN + payload.len()];
            ethernet::Repr {
                src_addr: src,
                dst_addr: dst,
                ethertype: ty,
            }
            .emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
            f[ethernet::HEADER_LEN..].copy_from_slice(&payload);
            t.push(port, &f);
            frames += 1;
            if frames % 8 == 0 {
                t.step();
            }
        }
        check(&mut t, l4_checks);
    }
    t.step();
    t.advance(Duration::from_secs(3));
    check(&mut t, l4_checks);
    for (w, n) in t.workers.iter().zip(buffers) {
        assert!(w.punt_queues().is_empty(), "punts left behind");
        assert_eq!(w.punt_queues().free_buffers(), n, "punt buffers conserved");
    }
}

/// The invariants on what the router sent and holds.
fn check(t: &mut Testbed, l4_checks: bool) {
    for port in 0..2 {
        for f in t.take_tx(port) {
            let fr = ethernet::Frame::new_checked(&f[..]).expect("a sent frame parses");
            assert_eq!(fr.src_addr(), port_mac(port), "sent from the port's MAC");
            if fr.ethertype() != EtherType::Ipv4 {
                continue;
            }
            let ip = fr.payload();
            let p = ipv4::Packet::new_checked(ip).expect("a sent IPv4 packet parses");
            assert!(p.verify_checksum(), "sent IPv4 header checksum");
            assert!(usize::from(p.total_len()) <= if port == 1 { 1400 } else { 1500 });
            if l4_checks {
                assert!(l4_checksum_ok(ip), "sent L4 checksum");
            }
        }
    }
    let c = t.control();
    if let Some(n) = c.nat() {
        assert!(n.session_count() <= SESSIONS);
        assert!(n.reassembly_bytes() <= REASSEMBLY);
        for h in 0..=255u8 {
            assert!(n.host_sessions(Ipv4Addr::new(198, 18, 0, h)) <= PER_HOST);
        }
    }
    // The routes' one next hop is pinned (outside the limit).
    assert!(c.neighbors().len() <= NEIGHBOURS + 1);
}

/// The netlink feed: `data` is what one `recv` on the rtnetlink socket returned. Decoding
/// never panics and accounts for every message; the link state machine takes whatever
/// decodes (two ports, ifindex 2 and 3 as in the captured seeds) and stays consistent: a
/// port reported up is neither down nor gone.
pub fn netlink(data: &[u8]) {
    use xgw::{control::link::Links, kernel};
    let mut msgs = Vec::new();
    let st = kernel::decode(data, &mut msgs);
    assert_eq!(st.decoded, msgs.len());
    let mut links = Links::new([("p1".to_string(), 2, 1500), ("p0".to_string(), 3, 1500)]);
    links.begin_dump(1);
    for m in &msgs {
        for c in links.apply(m) {
            if let xgw::control::link::LinkChange::Up(p) = c {
                let l = &links.ports()[usize::from(p)];
                assert!(l.up && !l.gone, "{c:?} but {l:?}");
            }
        }
    }
    for (i, l) in links.ports().iter().enumerate() {
        assert_eq!(links.is_up(i), l.up);
        assert!(!(l.gone && l.up), "{l:?}");
    }
    // The same messages into the route import (bounded to 64 prefixes): it never holds
    // more, and resolving it neither panics nor yields more routes than it holds.
    use std::time::Duration;
    use xgw::control::kroutes::{ImportSettings, KernelRoutes};
    let mut kr = KernelRoutes::new(ImportSettings {
        table: 254,
        max_routes: 64,
        coalesce: Duration::from_millis(20),
    });
    kr.begin_dump(1);
    for (i, m) in msgs.iter().enumerate() {
        kr.apply(m, Duration::from_millis(i as u64));
        assert!(kr.len() <= 64);
    }
    let routes = kr.resolve(|ifindex| match ifindex {
        2 => Some(0),
        3 => Some(1),
        _ => None,
    });
    assert!(routes.len() <= 64);
}

/// Kernel mirror mode: the same bytes as `netlink` (its seeds), decoded and fed to a
/// mirror-mode control plane (its ports are ifindexes 100 and 101; the seeds' 2 and 3 are
/// mapped onto them, others are ignored): whatever the kernel says, the imported table
/// stays within `max_routes`, the neighbour table within its limit, the queue of
/// resolutions to the kernel within its bound, and kernel routes resolve only onto ports.
/// Apart from `netlink` because building a control plane costs a millisecond per input.
pub fn mirror(data: &[u8]) {
    use std::time::Duration;
    let mut msgs = Vec::new();
    xgw::kernel::decode(data, &mut msgs);
    let cfg = mirror_config();
    let ports: Vec<xgw::dataplane::PortInfo> = cfg
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| xgw::dataplane::PortInfo {
            name: iface.name.clone(),
            mac: xgw::runtime::testbed::port_mac(i),
            mtu: 1500,
            addresses: iface.addresses.clone(),
        })
        .collect();
    let mut plane = xgw::control::ControlPlane::new(cfg, ports);
    plane.watch_links(&[(100, 1500), (101, 1500)]);
    let now = plane.epoch();
    plane.set_mirror(xgw::control::mirror::Mirror::new(
        &cfg.kernel,
        &[],
        &[],
        now,
    ));
    // Two bursts, each built into the FIB: the first import resolves everything, the
    // second only what it changed (unless it needs everything again).
    let half = msgs.len() / 2;
    for (i, m) in msgs.iter().enumerate() {
        let m = retarget(m);
        plane.link_message(&m);
        plane.kernel_message(now, &m);
        if i + 1 == half {
            plane.publish_kernel_routes(now + Duration::from_millis(50));
        }
    }
    plane.publish_kernel_routes(now + Duration::from_secs(60));
    let mirror = plane.mirror().expect("mirror mode");
    assert!(mirror.kernel_routes().len() <= 64);
    let k = mirror.kernel_fib();
    assert!(k.len() <= 64);
    for (p, v) in k.builder().iter() {
        match k.nexthops().get(v) {
            Some(
                xgw::dataplane::NextHop::Via { port, .. }
                | xgw::dataplane::NextHop::Connected { port },
            ) => assert!(port < 2, "{p}: port {port}"),
            Some(_) => {}
            None => panic!("{p}: value {v} has no next hop"),
        }
    }
    assert!(plane.neighbors().len() <= 64 + 1);
    assert!(plane.take_solicits().len() <= xgw::control::mirror::MAX_SOLICITS);
}

/// The mirror-mode router of the netlink target, parsed once.
fn mirror_config() -> &'static xgw::config::ValidConfig {
    static CFG: std::sync::OnceLock<xgw::config::ValidConfig> = std::sync::OnceLock::new();
    CFG.get_or_init(|| xgw::config::parse(MIRROR_CFG, "fuzz.toml").expect("valid"))
}

const MIRROR_CFG: &str = "[[interface]]\nname = \"p0\"\naddress = \"198.18.0.1/24\"\n\
[[interface]]\nname = \"p1\"\naddress = \"198.19.0.1/24\"\n\
[neighbor]\nmax_entries = 64\n[kernel]\nmirror = true\nmax_routes = 64\n";

/// The captured seeds name ifindexes 2 and 3: the mirror testbed's ports are 100 and 101.
fn retarget(m: &xgw::kernel::KernelMsg) -> xgw::kernel::KernelMsg {
    use xgw::kernel::KernelMsg;
    let map = |i: u32| match i {
        2 => 100,
        3 => 101,
        other => other,
    };
    let mut m = m.clone();
    match &mut m {
        KernelMsg::Route(r) | KernelMsg::RouteDeleted(r) => {
            for p in &mut r.paths {
                p.oif = map(p.oif);
            }
        }
        KernelMsg::Neigh(n) | KernelMsg::NeighDeleted(n) => n.ifindex = map(n.ifindex),
        KernelMsg::Nexthop(n) => n.oif = map(n.oif),
        KernelMsg::Addr(a) | KernelMsg::AddrDeleted(a) => a.ifindex = map(a.ifindex),
        _ => {}
    }
    m
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed seed runs clean through its target (the corpora are regression
    /// tests too).
    #[test]
    fn corpora_replay_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let targets: [(&str, fn(&[u8])); 7] = [
            ("wire", super::wire),
            ("nat_translate", super::nat_translate),
            ("icmp_error", super::icmp_error),
            ("config", super::config),
            ("pipeline", super::pipeline),
            ("netlink", super::netlink),
            ("mirror", super::mirror),
        ];
        for (name, f) in targets {
            let dir = root.join(name);
            let mut n = 0;
            for e in std::fs::read_dir(&dir).expect("corpus directory") {
                let data = std::fs::read(e.unwrap().path()).unwrap();
                f(&data);
                n += 1;
            }
            assert!(n > 0, "{name}: empty corpus");
        }
    }
}

#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn pipeline_exec_time() {
        let seeds: Vec<Vec<u8>> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/pipeline"))
                .unwrap()
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect();
        let t = std::time::Instant::now();
        for _ in 0..50 {
            let _ = xgw::runtime::testbed::Testbed::new(super::PIPELINE_CONFIG);
        }
        eprintln!("Testbed::new: {:?}", t.elapsed() / 50);
        let t = std::time::Instant::now();
        for s in seeds.iter().cycle().take(60) {
            super::pipeline(s);
        }
        eprintln!("pipeline exec: {:?}", t.elapsed() / 60);
    }
}
