#!/usr/bin/env python3
"""Record the rtnetlink messages the kernel sends for route, neighbour and nexthop changes,
as the hex fixtures of src/kernel/testdata/ (route_*.hex, neigh_*.hex, nexthop_*.hex).

Run as root: python3 scripts/capture-netlink.py src/kernel/testdata
It works in a scratch network namespace of its own (deleted on exit) with two veth pairs and
sends no packets; addresses are TEST-NET / RFC 2544 ones.
"""
import os
import socket
import subprocess
import sys
import time

RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_ROUTE = 0x40
RTNLGRP_NEXTHOP = 32  # bit 31 of the group mask

NS = f"xgw-cap-{os.getpid()}"


def main(out_dir):
    if os.environ.get("XGW_CAPTURE_INNER") != "1":
        subprocess.run(["ip", "netns", "add", NS], check=True)
        try:
            env = dict(os.environ, XGW_CAPTURE_INNER="1")
            subprocess.run(["ip", "netns", "exec", NS, sys.executable, __file__, out_dir],
                           check=True, env=env)
        finally:
            subprocess.run(["ip", "netns", "del", NS], check=False)
        return
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | (1 << (RTNLGRP_NEXTHOP - 1))))
    s.setblocking(False)
    run_child(s, out_dir)


def drain(s):
    out = b""
    deadline = time.time() + 0.3
    while time.time() < deadline:
        try:
            out += s.recv(65536)
        except BlockingIOError:
            time.sleep(0.02)
    return out


def run_child(s, out_dir):
    steps = [
        ("setup", [
            ["link", "add", "p0", "type", "veth", "peer", "name", "p1"],
            ["link", "add", "q0", "type", "veth", "peer", "name", "q1"],
            ["link", "set", "lo", "up"],
            ["link", "set", "p0", "up"], ["link", "set", "p1", "up"],
            ["link", "set", "q0", "up"], ["link", "set", "q1", "up"],
        ]),
        ("route_connected_and_local", [["addr", "add", "198.19.0.1/24", "dev", "p0"]]),
        ("setup", [["addr", "add", "192.0.2.1/24", "dev", "q0"]]),
        ("route_via", [["route", "add", "203.0.113.0/24", "via", "198.19.0.2", "dev", "p0",
                        "proto", "static", "metric", "10"]]),
        ("route_multipath", [["route", "add", "198.51.100.0/24", "proto", "bird",
                              "nexthop", "via", "198.19.0.2", "dev", "p0", "weight", "1",
                              "nexthop", "via", "192.0.2.2", "dev", "q0", "weight", "3"]]),
        ("route_blackhole", [["route", "add", "blackhole", "198.18.128.0/17"]]),
        ("route_unreachable", [["route", "add", "unreachable", "198.18.64.0/18"]]),
        ("route_prohibit", [["route", "add", "prohibit", "198.18.32.0/19"]]),
        ("route_other_table", [["route", "add", "203.0.113.0/24", "via", "192.0.2.2",
                                "table", "100"]]),
        ("route_deleted", [["route", "del", "203.0.113.0/24", "table", "main"]]),
        ("nexthop_via", [["nexthop", "add", "id", "10", "via", "198.19.0.2", "dev", "p0"]]),
        ("setup", [["nexthop", "add", "id", "11", "via", "192.0.2.2", "dev", "q0"]]),
        ("nexthop_group", [["nexthop", "add", "id", "20", "group", "10/11,2"]]),
        ("nexthop_blackhole", [["nexthop", "add", "id", "30", "blackhole"]]),
        ("route_nhid", [["route", "add", "203.0.113.128/25", "nhid", "20"]]),
        ("neigh_reachable", [["neigh", "add", "198.19.0.2", "lladdr", "02:5e:00:00:00:0a",
                              "dev", "p0", "nud", "reachable"]]),
        ("neigh_permanent", [["neigh", "add", "192.0.2.2", "lladdr", "02:5e:00:00:00:0b",
                              "dev", "q0", "nud", "permanent"]]),
        ("neigh_deleted", [["neigh", "del", "198.19.0.2", "dev", "p0"]]),
        ("nexthop_deleted", [["nexthop", "del", "id", "30"]]),
    ]
    for name, cmds in steps:
        for c in cmds:
            subprocess.run(["ip", *c], check=True)
        got = drain(s)
        if name == "setup":
            continue
        if not got:
            sys.exit(f"{name}: nothing received")
        with open(os.path.join(out_dir, f"{name}.hex"), "w") as f:
            f.write(got.hex() + "\n")
        print(f"{name}: {len(got)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "src/kernel/testdata")
