#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/): a few well-formed inputs
of each shape, so that AFL++ starts from valid packets and configs. Deterministic; run from
the repository root: python3 fuzz/seeds.py"""
import os
import socket
import struct


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def a(s):
    return socket.inet_aton(s)


def ip(src, dst, proto, l4, ttl=64, frag=0x4000, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, ttl, proto, 0, a(src), a(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4


def udp(src, sp, dst, dp, data=b"seed"):
    u = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    c = csum(a(src) + a(dst) + struct.pack("!BBH", 0, 17, len(u)) + u)
    return ip(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:])


def tcp(src, sp, dst, dp, flags=0x02):
    t = struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 5 << 4, flags, 65535, 0, 0)
    c = csum(a(src) + a(dst) + struct.pack("!BBH", 0, 6, len(t)) + t)
    return ip(src, dst, 6, t[:16] + struct.pack("!H", c) + t[18:])


def icmp(src, dst, typ, code, rest, data):
    m = struct.pack("!BBH", typ, code, 0) + rest + data
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    return ip(src, dst, 1, m)


def echo(src, dst, ident=0x1234, seq=1):
    return icmp(src, dst, 8, 0, struct.pack("!HH", ident, seq), b"ping")


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, a(spa), tha, a(tpa))


def eth(dst, src, ty, payload):
    return dst + src + struct.pack("!H", ty) + payload


CLIENT_MAC = bytes([2, 0, 0, 0, 0, 0x0C])
SERVER_MAC = bytes([2, 0, 0, 0, 0, 0x05])
R0 = bytes([2, 0, 0, 0, 1, 0])
R1 = bytes([2, 0, 0, 0, 1, 1])
BCAST = b"\xff" * 6
C, S, EXT, R = "198.18.0.2", "198.19.0.2", "198.19.0.1", "203.0.113.7"

out_udp = udp(C, 40000, R, 53)
in_udp = udp(R, 53, EXT, 40000)
syn = tcp(C, 40001, R, 80)
fwd_syn = tcp(R, 5000, EXT, 8080)
err = icmp(R, EXT, 3, 3, b"\0\0\0\0", in_udp[:28])
frag1 = ip(C, R, 17, udp(C, 40002, R, 53, b"x" * 40)[20:36], frag=0x2000, ident=9)
frag2 = ip(C, R, 17, b"y" * 32, frag=0x0002, ident=9)
arp_req = arp(1, CLIENT_MAC, C, b"\0" * 6, "198.18.0.1")
arp_rep = arp(2, SERVER_MAC, S, R1, EXT)
packets = [out_udp, in_udp, syn, fwd_syn, err, echo(C, R), frag1, frag2]

root = "fuzz/corpus"


def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for i, p in enumerate(packets):
    write("wire", f"ip{i}", p)
write("wire", "eth_ip", eth(R0, CLIENT_MAC, 0x0800, out_udp))
write("wire", "arp", arp_req)
write("wire", "eth_arp", eth(BCAST, CLIENT_MAC, 0x0806, arp_req))

rw = a("198.19.0.1") + struct.pack("!H", 1024) + a(R) + struct.pack("!H", 53)
for i, p in enumerate(packets):
    write("nat_translate", f"p{i}", rw + b"\x01" + p)
    write("nat_translate", f"raw{i}", rw + b"\x00" + p)

for i, p in enumerate([out_udp, syn, echo(C, R), in_udp]):
    hdr = bytes([1, 4]) + struct.pack("!H", 1400) + a("198.18.0.1") + b"\x01"
    write("icmp_error", f"unreach{i}", hdr + p)
    write("icmp_error", f"ttl{i}", bytes([0, 0, 0, 0]) + a("198.18.0.1") + b"\x01" + p)

for f in sorted(os.listdir("configs")):
    if f.endswith(".toml"):
        with open(os.path.join("configs", f), "rb") as src:
            write("config", f, src.read())


def rec(op, payload):
    if len(payload) > 255:  # long form: the length byte counts 8-byte units
        payload += b"\0" * (-len(payload) % 8)
        return bytes([op | 0x40, len(payload) // 8]) + payload
    return bytes([op, len(payload)]) + payload


def tick(n):
    return bytes([0x80, n])


# Inside ARP first (the client), then flows out, the server's ARP reply, answers in.
base = rec(2, arp_req) + rec(0, out_udp) + rec(3, arp_rep) + rec(1, in_udp)
write("pipeline", "udp_session", base + tick(5) + rec(1, in_udp))
write("pipeline", "tcp_forward", base + rec(1, fwd_syn) + rec(0, tcp("198.18.0.2", 80, R, 5000, 0x12)))
write("pipeline", "fragments", base + rec(0, frag2) + rec(0, frag1) + tick(100))
write("pipeline", "icmp", base + rec(1, err) + rec(0, echo(C, R)) + rec(0, echo(C, "198.18.0.1")))
write("pipeline", "ttl_mtu", base + rec(0, udp(C, 40003, R, 9)[:8] + bytes([1]) + udp(C, 40003, R, 9)[9:]) + rec(0, ip(C, R, 17, b"z" * 1440)))
write("pipeline", "unreachable", base + rec(0, udp(C, 40004, "198.51.100.1", 9)) + tick(200))

# netlink: the link messages captured for the unit tests (src/kernel/testdata), alone and
# several in one read.
nl = {}
for name in ["link_p1_up_lowerdown", "link_p1_oper_up", "link_p0_mtu1400", "link_p1_admin_down", "dellink_p0"]:
    with open(f"src/kernel/testdata/{name}.hex") as f:
        nl[name] = bytes.fromhex(f.read().strip())
    write("netlink", name, nl[name])
write("netlink", "flaps", nl["link_p1_up_lowerdown"] + nl["link_p1_oper_up"] + nl["link_p1_admin_down"] + nl["dellink_p0"])
# Routes, neighbours and nexthop objects (scripts/capture-netlink.py), and a mixed read.
for name in ["route_connected_and_local", "route_via", "route_multipath", "route_blackhole",
             "route_other_table", "route_deleted", "route_nhid", "nexthop_via", "nexthop_group",
             "nexthop_blackhole", "nexthop_deleted", "neigh_reachable", "neigh_deleted"]:
    with open(f"src/kernel/testdata/{name}.hex") as f:
        nl[name] = bytes.fromhex(f.read().strip())
    write("netlink", name, nl[name])
write("netlink", "mixed", nl["route_multipath"] + nl["nexthop_group"] + nl["neigh_reachable"] + nl["route_nhid"])
