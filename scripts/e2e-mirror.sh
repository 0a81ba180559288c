#!/usr/bin/env bash
# End-to-end tests of kernel mirror mode (`[kernel] mirror = true`): the router
# namespace's kernel owns the addresses, ARP and the routing table, with
# net.ipv4.ip_forward = 0, and xgw forwards by what it mirrors. Needs root, a built binary
# and BIRD 2 (Debian bird2; scripts/deps.sh installs it).
#
#   client ns ($LAB-cli)        router ns ($LAB-rtr)             server A ns ($LAB-sa)
#   c0 198.18.0.2/24 <--veth--> r0 198.18.0.1/24 | xgw
#                               r1 198.19.0.1/24 | (mirror) <--veth--> sa0 198.19.0.2/24
#                               r2 198.19.1.1/24 |  + bird  <--veth--> sb0 198.19.1.2/24
#                                                                     server B ns ($LAB-sb)
#   Both servers have dum0 203.0.113.1/24 (the "remote" prefix, announced by each; dum0 is
#   one end of a veth pair whose both ends are in the server).
#
# Phase "static": kernel routes written with `ip route` (unicast, multipath, blackhole,
# unreachable, prohibit), neighbours resolved by the kernel, host traffic (ping, TCP) to the
# kernel, ICMP errors from the kernel's addresses, NAT in mirror mode, an address that
# disagrees with the kernel refused.
# Phase "bird": BIRD 2 with OSPF in all three; ECMP across both servers, failover when one
# server's daemon stops or its link goes down, withdrawal everywhere.
#
# Phase "frr": FRR's zebra and ospfd in the router (routes through kernel nexthop objects),
# BIRD in the servers: ECMP, failover, withdrawal.
#
#   scripts/e2e-mirror.sh [path/to/xgw]      E2E_PHASES="static bird frr" to pick
#
# Every namespace is named after this run ($LAB-*) and removed on exit, even on failure;
# every daemon started is stopped by its pid. Only 198.18.0.0/15 and TEST-NET addresses.
set -uo pipefail

cd "$(dirname "$0")/.."
XGW=$(realpath "${1:-target/release/xgw}")
export LAB=xgwk$$
. scripts/lib.sh
. scripts/testlib.sh
SA=$LAB-sa SB=$LAB-sb
sa() { ip netns exec "$SA" "$@"; }
sb() { ip netns exec "$SB" "$@"; }
BIRD_PIDS=()

# Stop xgw and every daemon started, and remove the namespaces.
lab_down() {
    set +e
    for p in "${BIRD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    BIRD_PIDS=()
    stop_xgw >/dev/null 2>&1
    for ns in "$LAB-cli" "$LAB-rtr" "$SA" "$SB"; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        fi
    done
    set -u
}
trap 'lab_down; rm -rf "$WORK"' EXIT

# The lab: the namespaces, the veths (hosts' ends finish checksums in software and take
# redirected frames through GRO; the router's ends hand AF_XDP plain frames), addresses.
lab_up() {
    mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    for ns in "$LAB-cli" "$LAB-rtr" "$SA" "$SB"; do
        ip netns add "$ns" || return 1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip netns exec "$ns" ip link set lo up
    done
    ip link add c0 netns "$LAB-cli" type veth peer r0 netns "$LAB-rtr"
    ip link add sa0 netns "$SA" type veth peer r1 netns "$LAB-rtr"
    ip link add sb0 netns "$SB" type veth peer r2 netns "$LAB-rtr"
    cli ethtool -K c0 tx off gro on >/dev/null
    sa ethtool -K sa0 tx off gro on >/dev/null
    sb ethtool -K sb0 tx off gro on >/dev/null
    for d in r0 r1 r2; do rtr ethtool -K "$d" tx off gro off lro off >/dev/null 2>&1; done
    cli ip addr add 198.18.0.2/24 dev c0
    rtr ip addr add 198.18.0.1/24 dev r0
    rtr ip addr add 198.19.0.1/24 dev r1
    rtr ip addr add 198.19.1.1/24 dev r2
    sa ip addr add 198.19.0.2/24 dev sa0
    sb ip addr add 198.19.1.2/24 dev sb0
    for ns_dev in "cli c0" "rtr r0" "rtr r1" "rtr r2" "sa sa0" "sb sb0"; do
        set -- $ns_dev
        "$1" ip link set "$2" up
    done
    for s in sa sb; do
        # The remote network: a veth pair with both ends in the server (no dummy module
        # everywhere).
        "$s" ip link add dum0 type veth peer dum1
        "$s" ip addr add 203.0.113.1/24 dev dum0
        "$s" ip link set dum1 up
        "$s" ip link set dum0 up
        # Count what reaches the remote address's UDP port 9 (the flows of the ECMP tests).
        "$s" nft -f - <<'EOF'
table inet xgwt {
    chain in { type filter hook input priority 0; udp dport 9 counter; }
}
EOF
    done
    cli ip route add default via 198.18.0.1
    # xgw forwards; the kernel of the router namespace does not.
    rtr sysctl -qw net.ipv4.ip_forward=0
}

mirror_config() { # FILE [EXTRA TOML]
    cat >"$1" <<EOF
[[interface]]
name = "r0"
[[interface]]
name = "r1"
[[interface]]
name = "r2"
[kernel]
mirror = true
[icmp]
rate = 1000
burst = 50
${2:-}
EOF
}

# settle: a kernel route change reaches the FIB after [kernel] coalesce (20 ms) and a
# control-loop round: wait well past that.
settle() { sleep 0.3; }
# udp_counter NS: datagrams to port 9 the namespace received so far.
udp_counter() { ip netns exec "$1" nft list table inet xgwt | grep -o 'packets [0-9]*' | awk '{print $2}'; }
# flows N PORT0: N one-datagram UDP flows from the client to 203.0.113.1:9, each its own
# source port (PORT0..PORT0+N-1).
flows() {
    cli python3 -c '
import socket, sys
n, p0 = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.0.2", p0 + i))
    s.sendto(b"x" * 32, ("203.0.113.1", 9))
    s.close()
' "$1" "$2"
}
# spread N PORT0 MIN_A MIN_B MAX_A MAX_B: send N flows; server A got between MIN_A and
# MAX_A of them, B between MIN_B and MAX_B, and together all N.
spread() {
    local n=$1 a0 b0 a1 b1
    a0=$(udp_counter "$SA"); b0=$(udp_counter "$SB")
    flows "$n" "$2"
    sleep 0.5
    a1=$(udp_counter "$SA"); b1=$(udp_counter "$SB")
    local da=$((a1 - a0)) db=$((b1 - b0))
    echo "server A $da, server B $db of $n"
    [ $((da + db)) -eq "$n" ] && [ "$da" -ge "$3" ] && [ "$db" -ge "$4" ] && [ "$da" -le "$5" ] && [ "$db" -le "$6" ]
}
# wait_route REGEX SECS: until `xgw route get 203.0.113.1` matches (prints the seconds taken).
wait_route() {
    local t0 now
    t0=$(date +%s.%N)
    while :; do
        if xc route get 203.0.113.1 2>&1 | grep -Eq -- "$1"; then
            now=$(date +%s.%N)
            python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$now"
            return 0
        fi
        now=$(date +%s.%N)
        python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) - float(sys.argv[1]) < float(sys.argv[3]) else 1)' "$t0" "$now" "$2" || break
        sleep 0.1
    done
    echo "not within $2 s:"; xc route get 203.0.113.1 2>&1; rtr ip route show 203.0.113.0/24
    return 1
}
# within SECS: the number piped in (seconds) is at most SECS.
at_most() { python3 -c 'import sys; t = float(sys.stdin.read().split()[-1]); print(t, "s"); sys.exit(0 if t <= float(sys.argv[1]) else 1)' "$1"; }
kernel_forwarded() { rtr awk '/^Ip:/ { if (h) print $7; h = 1 }' /proc/net/snmp; }
# tcp_to_router: the client fetches a page from a server the router's kernel runs on
# 198.18.0.1:8080 (the host path), as a test.
tcp_to_router() {
    mkdir -p "$WORK/www" && echo "hello from the router's kernel" >"$WORK/www/index.html"
    rtr python3 -m http.server 8080 --bind 198.18.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
    local www=$!
    sleep 0.5
    expect "TCP to a service on the router's own address (the host path)" "hello from the router's kernel" \
        cli curl -s --max-time 5 http://198.18.0.1:8080/index.html
    kill "$www" 2>/dev/null; wait "$www" 2>/dev/null
}

# ---------------------------------------------------------------- phase static
if want_phase static; then
    phase "mirror mode, kernel routes from ip route"
    lab_up || { bad "lab up"; exit 1; }
    sa ip route add default via 198.19.0.1
    sb ip route add default via 198.19.1.1
    rtr ip route add 203.0.113.0/24 via 198.19.0.2
    mirror_config "$WORK/k.toml"
    # An address the kernel does not have is refused, naming the field.
    mirror_config "$WORK/bad.toml"
    sed -i '0,/name = "r1"/s//name = "r1"\naddress = "198.19.9.1\/24"/' "$WORK/bad.toml"
    expect "an address that disagrees with the kernel is refused" "interface\[1\]\.address: disagrees with the kernel: r1 has 198\.19\.0\.1/24" \
        bash -c "ip netns exec $LAB-rtr timeout 10 $XGW run --config $WORK/bad.toml --socket $WORK/bad.sock 2>&1"
    if start_xgw "$WORK/k.toml"; then
        check "the kernel's routes are imported at start (kernel.fib_builds)" wait_count kernel.fib_builds 1
        check "ping through xgw to a kernel route (ip_forward = 0)" cli ping -c 3 -i 0.2 -W 2 203.0.113.1
        check "ping the router: the kernel answers" cli ping -c 2 -i 0.2 -W 2 198.18.0.1
        check "ping the router's far address" cli ping -c 2 -i 0.2 -W 2 198.19.1.1
        tcp_to_router
        check "show interfaces learned the addresses from the kernel" jcheck '[p["addresses"] for p in v] == [["198.18.0.1/24"], ["198.19.0.1/24"], ["198.19.1.1/24"]]' xc show interfaces --json
        check "the next hop was resolved by the kernel (neigh.kernel_learned)" wait_count neigh.kernel_learned 1
        check "show route marks the route as the kernel's" jcheck 'any(r["prefix"] == "203.0.113.0/24" and r["source"] == "kernel" and r["via"] == "198.19.0.2" for r in v)' xc show route --json
        # A route added in the kernel is forwarded by at once (after the coalescing delay).
        sb ip addr add 192.0.2.1/32 dev lo
        rtr ip route add 192.0.2.0/24 via 198.19.1.2
        settle
        check "a kernel route added while running is used" cli ping -c 2 -i 0.2 -W 2 192.0.2.1
        rtr ip route del 192.0.2.0/24
        settle
        expect "a kernel route deleted: net unreachable from the router" "From 198\.18\.0\.1 .*Destination Net Unreachable" cli ping -c 1 -W 2 192.0.2.1
        rtr ip route add blackhole 192.0.2.0/25
        rtr ip route add unreachable 192.0.2.128/26
        rtr ip route add prohibit 192.0.2.192/26
        settle
        expect "kernel blackhole: silently dropped" "1 packets transmitted, 0 received, 100% packet loss" cli ping -c 1 -W 1 192.0.2.1
        expect "kernel unreachable: ICMP net unreachable" "Destination Net Unreachable" cli ping -c 1 -W 2 192.0.2.129
        expect "kernel prohibit: ICMP communication administratively prohibited" "Packet filtered|Communication prohibited" cli ping -c 1 -W 2 192.0.2.193
        # A next hop the kernel cannot resolve: held, then host unreachable from xgw.
        rtr ip route add 198.51.100.0/24 via 198.19.1.99
        settle
        expect "a next hop nobody answers: host unreachable" "From 198\.18\.0\.1 .*Destination Host Unreachable" cli ping -c 1 -W 8 198.51.100.1
        # ICMP errors about forwarded packets come from the kernel's address on the port.
        expect "time exceeded comes from r0's kernel address" "From 198\.18\.0\.1 .*Time to live exceeded" cli ping -c 1 -t 1 -W 2 203.0.113.1
        # Multipath from the kernel (RTA_MULTIPATH): flows spread over both servers.
        rtr ip route replace 203.0.113.0/24 nexthop via 198.19.0.2 nexthop via 198.19.1.2
        settle
        check "a kernel multipath route spreads flows over both servers" spread 400 20000 40 40 400 400
        # Nexthop objects (as FRR installs them): a group, then one member removed.
        rtr ip nexthop add id 1 via 198.19.0.2 dev r1
        rtr ip nexthop add id 2 via 198.19.1.2 dev r2
        rtr ip nexthop add id 10 group 1/2
        rtr ip route replace 203.0.113.0/24 nhid 10
        settle
        check "a route through a nexthop group spreads flows over both servers" spread 400 21000 40 40 400 400
        rtr ip nexthop replace id 10 group 2
        settle
        check "the group shrunk to server B: every flow to B" spread 200 22000 0 200 0 200
        rtr ip route replace 203.0.113.0/24 via 198.19.0.2
        check "the kernel forwarded nothing itself (Ip ForwDatagrams = 0)" bash -c "[ \"\$(ip netns exec $LAB-rtr awk '/^Ip:/ { if (h) print \$7; h = 1 }' /proc/net/snmp)\" = 0 ]"
        stop_xgw
        grep -q "final counters" "$WORK/xgw.log" && ok "clean shutdown in mirror mode" || bad "clean shutdown in mirror mode" "$(tail -20 "$WORK/xgw.log")"
    else
        bad "xgw starts in mirror mode" "$(cat "$WORK/xgw.log")"
    fi
    # NAT in mirror mode: the pool address is the kernel's too (so the kernel answers ARP
    # for it), but its traffic is xgw's.
    rtr ip addr add 198.19.0.10/32 dev r1
    mirror_config "$WORK/n.toml" '[nat]
outside = "r1"
addresses = ["198.19.0.10"]
inside = ["198.18.0.0/24"]'
    if start_xgw "$WORK/n.toml"; then
        wait_count kernel.fib_builds 1 >/dev/null
        sa bash -c 'timeout 10 python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"198.19.0.2\", 7000)); s.settimeout(8)
d, a = s.recvfrom(100); open(\"'"$WORK"'/nat-peer\", \"w\").write(a[0]); s.sendto(d, a)
"' &
        np=$!
        sleep 0.3
        expect "NAT in mirror mode: a UDP exchange through the pool address" "^echo$" \
            cli timeout 5 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"echo", ("198.19.0.2", 7000)); print(s.recvfrom(100)[0].decode())'
        wait "$np"
        check "the server saw the pool address, not the inside host" only_line "$WORK/nat-peer" "198.19.0.10"
        check "ping the router's r1 address still reaches the kernel with NAT on" cli ping -c 2 -i 0.2 -W 2 198.19.0.1
        stop_xgw
    else
        bad "xgw starts in mirror mode with NAT" "$(cat "$WORK/xgw.log")"
    fi
    lab_down
fi

# ---------------------------------------------------------------- phase bird
# bird_conf NAME ROUTER_ID OSPF_INTERFACES: a BIRD 2 config for one namespace: OSPF
# routes into the kernel's main table (equal-cost paths as one multipath route).
bird_conf() {
    cat >"$WORK/bird-$1.conf" <<EOF
log "$WORK/bird-$1.log" all;
router id $2;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; scan time 1; }
protocol ospf v2 o {
    ecmp yes;
    ipv4 { import all; export none; };
    area 0 {
$3
    };
}
EOF
}
# bird_start NAME NETNS: start BIRD there; its pid is recorded for lab_down.
bird_start() {
    ip netns exec "$2" bird -c "$WORK/bird-$1.conf" -s "$WORK/bird-$1.ctl" -P "$WORK/bird-$1.pid" || return 1
    for _ in $(seq 50); do [ -s "$WORK/bird-$1.pid" ] && break; sleep 0.1; done
    BIRD_PIDS+=("$(cat "$WORK/bird-$1.pid")")
}
# bird_stop NAME: SIGKILL, so it says no goodbye (its neighbours wait out the dead interval).
bird_stop() {
    local pid; pid=$(cat "$WORK/bird-$1.pid")
    kill -9 "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$WORK/bird-$1.pid"
}
# vias: the gateways xgw forwards 203.0.113.1 through, sorted, comma-joined ("none": no route).
vias() {
    xc route get 203.0.113.1 --json 2>/dev/null | python3 -c '
import json, sys
try:
    v = json.load(sys.stdin)
except ValueError:
    print("none"); sys.exit()
hops = v.get("nexthops") or [{"via": v.get("via")}]
print(",".join(sorted(str(h.get("via")) for h in hops)))'
}
# wait_vias WANT SECS: until vias prints WANT; prints the seconds it took.
wait_vias() {
    local t0=$SECONDS start now got
    start=$(date +%s%N)
    while :; do
        got=$(vias)
        now=$(date +%s%N)
        if [ "$got" = "$1" ]; then
            python3 -c 'import sys; print("%.2f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9))' "$start" "$now"
            return 0
        fi
        [ $((SECONDS - t0)) -lt "$2" ] || { echo "vias = $got, wanted $1 within $2 s"; rtr ip route show 203.0.113.0/24; return 1; }
        sleep 0.05
    done
}
# took_at_most SECS COMMAND...: COMMAND succeeds and the seconds it prints are <= SECS.
took_at_most() {
    local max=$1 out; shift
    out=$("$@") || { echo "$out"; return 1; }
    echo "took $out s (at most $max)"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$out" "$max"
}
if want_phase bird; then
    phase "mirror mode under BIRD 2: OSPF to two servers announcing one prefix"
    lab_up || { bad "lab up"; exit 1; }
    bird_conf rtr 198.18.0.1 '        interface "r0" { stub yes; };
        interface "r1", "r2" { type ptp; hello 1; dead 3; };'
    bird_conf sa 198.19.0.2 '        interface "sa0" { type ptp; hello 1; dead 3; };
        interface "dum0" { stub yes; };'
    bird_conf sb 198.19.1.2 '        interface "sb0" { type ptp; hello 1; dead 3; };
        interface "dum0" { stub yes; };'
    mirror_config "$WORK/b.toml"
    if start_xgw "$WORK/b.toml"; then
        for n in "rtr $LAB-rtr" "sa $SA" "sb $SB"; do
            set -- $n
            bird_start "$1" "$2" || bad "bird starts in $2"
        done
        # OSPF runs between the kernels (its packets are host traffic) and installs the
        # remote prefix with both servers as next hops; xgw mirrors that.
        check "OSPF converges: xgw forwards 203.0.113.0/24 through both servers" wait_vias "198.19.0.2,198.19.1.2" 40
        check "OSPF adjacencies to both servers are Full in the router's BIRD" bash -c \
            "[ \$(ip netns exec $LAB-rtr birdc -s $WORK/bird-rtr.ctl show ospf neighbors | grep -c Full) -eq 2 ]"
        check "the client reaches the remote prefix through xgw" cli ping -c 3 -i 0.2 -W 2 203.0.113.1
        check "route get shows the group and the member a flow takes" jcheck 'len(v["nexthops"]) == 2 and v["via"] in ("198.19.0.2", "198.19.1.2")' \
            xc route get 203.0.113.1 --from 198.18.0.2 --ipproto udp --sport 20000 --dport 9 --json
        check "many flows: both servers receive traffic (ECMP)" spread 400 30000 40 40 400 400
        check "ping the router: the kernel answers" cli ping -c 2 -i 0.2 -W 2 198.18.0.1
        tcp_to_router
        # Server A's daemon dies without a word: its adjacency times out (dead 3 s).
        bird_stop sa
        check "server A's BIRD killed: every flow moves to B within dead interval + 1 s" took_at_most 4 wait_vias "198.19.1.2" 10
        check "after the failover all flows reach server B" spread 200 31000 0 200 0 200
        bird_start sa "$SA"
        check "server A's BIRD back: both servers again" wait_vias "198.19.0.2,198.19.1.2" 40
        check "flows spread over both servers again" spread 400 32000 40 40 400 400
        # Server A's link goes down: xgw withdraws r1 at once, OSPF follows.
        sa ip link set sa0 down
        check "server A's link down: every flow moves to B within dead interval + 1 s" took_at_most 4 wait_vias "198.19.1.2" 10
        check "with A's link down all flows reach server B" spread 200 33000 0 200 0 200
        sa ip link set sa0 up
        check "server A's link up: both servers again" wait_vias "198.19.0.2,198.19.1.2" 40
        # The prefix withdrawn everywhere: net unreachable from the router.
        sa ip link set dum0 down
        sb ip link set dum0 down
        check "the prefix withdrawn by both servers leaves xgw's FIB" wait_vias "none" 20
        expect "a withdrawn prefix gets net unreachable from the router" "From 198\.18\.0\.1 .*Destination Net Unreachable" \
            cli ping -c 1 -W 2 203.0.113.1
        check "the router's kernel forwarded nothing itself (Ip ForwDatagrams = 0)" bash -c "[ \"\$(ip netns exec $LAB-rtr awk '/^Ip:/ { if (h) print \$7; h = 1 }' /proc/net/snmp)\" = 0 ]"
        expect "xgw counted the imported route changes" "kernel\.route_changes" xc show errors
        stop_xgw
        grep -q "final counters" "$WORK/xgw.log" && ok "clean shutdown under BIRD" || bad "clean shutdown under BIRD" "$(tail -20 "$WORK/xgw.log")"
    else
        bad "xgw starts in mirror mode (BIRD)" "$(cat "$WORK/xgw.log")"
    fi
    lab_down
fi

# ---------------------------------------------------------------- phase frr
# FRR (zebra + ospfd) in the router namespace, BIRD in the servers: zebra installs routes
# through kernel nexthop objects (RTM_NEWNEXTHOP, "nhid" in ip route), which xgw follows.
FRR=/usr/lib/frr
# frr_start: zebra, then ospfd, with this run's config, pid, zserv and vty paths; their
# pids are recorded for lab_down.
frr_start() {
    local d=$WORK/frr
    mkdir -p "$d"
    cat >"$d/zebra.conf" <<EOF
hostname rtr
log file $d/zebra.log
EOF
    cat >"$d/ospfd.conf" <<EOF
hostname rtr
log file $d/ospfd.log
router ospf
 ospf router-id 198.18.0.1
interface r0
 ip ospf area 0
 ip ospf passive
interface r1
 ip ospf area 0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 3
interface r2
 ip ospf area 0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 3
EOF
    # The daemons drop to the frr user (root is not in its vty group): their directory is
    # theirs, and the run's directory only traversable.
    chmod o+x "$WORK"
    chown -R frr:frr "$d"
    local common=(-u frr -g frr -A 127.0.0.1 -P 0 -z "$d/zserv.api" --vty_socket "$d")
    ip netns exec "$LAB-rtr" "$FRR/zebra" -f "$d/zebra.conf" -i "$d/zebra.pid" "${common[@]}" >"$WORK/zebra.out" 2>&1 &
    BIRD_PIDS+=($!)
    for _ in $(seq 50); do [ -S "$d/zserv.api" ] && break; sleep 0.1; done
    ip netns exec "$LAB-rtr" "$FRR/ospfd" -f "$d/ospfd.conf" -i "$d/ospfd.pid" "${common[@]}" >"$WORK/ospfd.out" 2>&1 &
    BIRD_PIDS+=($!)
    [ -S "$d/zserv.api" ]
}
if want_phase frr; then
    phase "mirror mode under FRR (zebra + ospfd, nexthop objects) with BIRD servers"
    if [ ! -x "$FRR/zebra" ]; then
        bad "FRR installed (Debian frr; scripts/deps.sh installs it)"
    else
        lab_up || { bad "lab up"; exit 1; }
        bird_conf sa 198.19.0.2 '        interface "sa0" { type ptp; hello 1; dead 3; };
        interface "dum0" { stub yes; };'
        bird_conf sb 198.19.1.2 '        interface "sb0" { type ptp; hello 1; dead 3; };
        interface "dum0" { stub yes; };'
        mirror_config "$WORK/f.toml"
        if start_xgw "$WORK/f.toml"; then
            check "zebra and ospfd start in the router namespace" frr_start
            for n in "sa $SA" "sb $SB"; do
                set -- $n
                bird_start "$1" "$2" || bad "bird starts in $2"
            done
            rtr sysctl -qw net.ipv4.ip_forward=0
            check "OSPF converges under FRR: xgw forwards 203.0.113.0/24 through both servers" wait_vias "198.19.0.2,198.19.1.2" 40
            check "zebra installed the route through a nexthop object (nhid)" bash -c \
                "ip netns exec $LAB-rtr ip route show 203.0.113.0/24 | grep -q nhid"
            check "xgw imported the nexthop group (route get shows two members)" jcheck 'len(v["nexthops"]) == 2' \
                xc route get 203.0.113.1 --from 198.18.0.2 --ipproto udp --sport 20000 --dport 9 --json
            # FRR paces its own router-LSA (it may list the links seconds after the
            # adjacencies are up): the way back to the client is there once both servers
            # have learned its subnet.
            check "both servers learn the client's subnet from FRR (the way back)" bash -c \
                "for _ in \$(seq 300); do ip netns exec $SA ip route show 198.18.0.0/24 | grep -q via && ip netns exec $SB ip route show 198.18.0.0/24 | grep -q via && exit 0; sleep 0.1; done; exit 1"
            check "the client reaches the remote prefix through xgw (FRR)" cli ping -c 3 -i 0.2 -W 2 203.0.113.1
            check "many flows: both servers receive traffic (ECMP through a nexthop group)" spread 400 40000 40 40 400 400
            bird_stop sa
            check "server A's BIRD killed: every flow moves to B within dead interval + 1 s (FRR)" took_at_most 4 wait_vias "198.19.1.2" 10
            check "after the failover all flows reach server B (FRR)" spread 200 41000 0 200 0 200
            sa ip link set dum0 down
            sb ip link set dum0 down
            check "the prefix withdrawn everywhere leaves xgw's FIB (FRR)" wait_vias "none" 20
            expect "a withdrawn prefix gets net unreachable from the router (FRR)" "From 198\.18\.0\.1 .*Destination Net Unreachable" \
                cli ping -c 1 -W 2 203.0.113.1
            check "the router's kernel forwarded nothing itself under FRR (Ip ForwDatagrams = 0)" bash -c "[ \"\$(ip netns exec $LAB-rtr awk '/^Ip:/ { if (h) print \$7; h = 1 }' /proc/net/snmp)\" = 0 ]"
            stop_xgw
            grep -q "final counters" "$WORK/xgw.log" && ok "clean shutdown under FRR" || bad "clean shutdown under FRR" "$(tail -20 "$WORK/xgw.log")"
        else
            bad "xgw starts in mirror mode (FRR)" "$(cat "$WORK/xgw.log")"
        fi
        lab_down
    fi
fi

echo
[ "$fail" -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "e2e-mirror: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
