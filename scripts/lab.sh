#!/usr/bin/env bash
# Build or remove the xgw lab: client and server namespaces joined by veth pairs to a
# router namespace.
#
#   client ns ($LAB-cli)         router ns ($LAB-rtr)          server ns ($LAB-srv)
#   c0 198.18.0.2/24  <--veth-->  r0 | xgw (198.18.0.1)
#                                 r1 | xgw (198.19.0.1)  <--veth-->  s0 198.19.0.2/24
#                                                                    lo 203.0.113.1/32 (a "remote" net)
#
# The router namespace's interfaces carry no kernel addresses: xgw owns them (it answers
# ARP and ICMP itself). `kernel` mode instead gives the kernel the router addresses and
# turns on ip_forward, for comparisons.
#
# With INSIDE_HOSTS=2 a second inside host ($LAB-cl2, c1 198.18.0.3/24) shares the client
# link: the client namespace bridges c0 and the second host's cable (br0 carries
# 198.18.0.2).
#
# Usage: scripts/lab.sh up [QUEUES] | down | kernel | xgwmode | status
# Environment: LAB (namespace prefix, default "xgw$$"-style unique name must be passed by
# the caller to keep several labs apart), SRV_MTU (MTU of the r1/s0 link, default 1500),
# INSIDE_HOSTS (1 or 2).
# Only 198.18.0.0/15 and TEST-NET addresses are used.
set -euo pipefail

LAB=${LAB:?set LAB to a unique namespace prefix, e.g. LAB=xgw$$}
CLI=$LAB-cli RTR=$LAB-rtr SRV=$LAB-srv CL2=$LAB-cl2
INSIDE_HOSTS=${INSIDE_HOSTS:-1}
SRV_MTU=${SRV_MTU:-1500}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

up() {
    local q=${1:-1}
    mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    for ns in "$CLI" "$RTR" "$SRV"; do
        ip netns add "$ns"
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    ip link add c0 netns "$CLI" numtxqueues "$q" numrxqueues "$q" type veth \
        peer r0 netns "$RTR" numtxqueues "$q" numrxqueues "$q"
    ip link add s0 netns "$SRV" numtxqueues "$q" numrxqueues "$q" type veth \
        peer r1 netns "$RTR" numtxqueues "$q" numrxqueues "$q"
    nsx "$RTR" ip link set r1 mtu "$SRV_MTU"
    nsx "$SRV" ip link set s0 mtu "$SRV_MTU"
    # Hosts' ends: finish TCP/UDP checksums in software (veth would leave them partial,
    # and xgw forwards frames, not skbs). GRO on gives them a NAPI context, which a veth
    # needs to accept frames redirected into its peer: xgw's XDP-redirect transmit path
    # (tx_path = "auto") uses it when it can, AF_XDP otherwise.
    nsx "$CLI" ethtool -K c0 tx off gro on >/dev/null
    nsx "$SRV" ethtool -K s0 tx off gro on >/dev/null
    # Router ends: no offloads that would hand AF_XDP aggregated or partial frames.
    for d in r0 r1; do nsx "$RTR" ethtool -K "$d" tx off gro off lro off >/dev/null 2>&1 || true; done
    if [ "$INSIDE_HOSTS" = 2 ]; then
        ip netns add "$CL2"
        nsx "$CL2" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$CL2" ip link set lo up
        ip link add c1 netns "$CL2" type veth peer c1p netns "$CLI"
        nsx "$CLI" ip link add br0 type bridge
        nsx "$CLI" ip link set c0 master br0
        nsx "$CLI" ip link set c1p master br0
        nsx "$CLI" ethtool -K br0 tx off >/dev/null
        nsx "$CL2" ethtool -K c1 tx off gro on >/dev/null
        nsx "$CLI" ip addr add 198.18.0.2/24 dev br0
        nsx "$CL2" ip addr add 198.18.0.3/24 dev c1
        nsx "$CLI" ip link set c1p up
        nsx "$CLI" ip link set br0 up
        nsx "$CL2" ip link set c1 up
        nsx "$CL2" ip route add default via 198.18.0.1
    else
        nsx "$CLI" ip addr add 198.18.0.2/24 dev c0
    fi
    nsx "$SRV" ip addr add 198.19.0.2/24 dev s0
    nsx "$SRV" ip addr add 203.0.113.1/32 dev lo
    for ns_dev in "$CLI c0" "$RTR r0" "$RTR r1" "$SRV s0"; do
        set -- $ns_dev
        nsx "$1" ip link set "$2" up
    done
    nsx "$CLI" ip route add default via 198.18.0.1
    nsx "$SRV" ip route add default via 198.19.0.1
}

kernel() {
    nsx "$RTR" ip addr add 198.18.0.1/24 dev r0
    nsx "$RTR" ip addr add 198.19.0.1/24 dev r1
    nsx "$RTR" ip route add 203.0.113.0/24 via 198.19.0.2
    nsx "$RTR" sysctl -qw net.ipv4.ip_forward=1
}

xgwmode() {
    nsx "$RTR" sysctl -qw net.ipv4.ip_forward=0
    nsx "$RTR" ip route del 203.0.113.0/24 2>/dev/null || true
    nsx "$RTR" ip addr flush dev r0
    nsx "$RTR" ip addr flush dev r1
    for ns in "$CLI" "$SRV"; do nsx "$ns" ip neigh flush all; done
}

down() {
    for ns in "$CLI" "$CL2" "$RTR" "$SRV"; do
        if ip netns list | grep -qw "$ns"; then
            # Kill anything still running in the namespace (xgw, iperf3, http servers).
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

status() {
    for ns in "$CLI" "$RTR" "$SRV"; do
        echo "== $ns"; nsx "$ns" ip -br addr 2>/dev/null || true
        nsx "$ns" ip link show 2>/dev/null | grep -o 'prog/xdp id [0-9]*' || true
    done
}

case "${1:-}" in
    up) up "${2:-1}" ;;
    down) down ;;
    kernel) kernel ;;
    xgwmode) xgwmode ;;
    status) status ;;
    *) echo "usage: LAB=name $0 up [QUEUES] | down | kernel | xgwmode | status" >&2; exit 2 ;;
esac
