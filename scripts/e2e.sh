#!/usr/bin/env bash
# End-to-end tests: xgw on real AF_XDP sockets between network namespaces, exercised with
# real clients (ping, traceroute, tracepath, curl, iperf3). Needs root and a built binary.
#
#   scripts/e2e.sh [path/to/xgw]        (default: target/release/xgw)
#
# Every namespace is named after this run ($LAB-*) and removed on exit, even on failure.
# Only 198.18.0.0/15 and TEST-NET addresses are used; every load is bounded in time.
set -uo pipefail

cd "$(dirname "$0")/.."
XGW=$(realpath "${1:-target/release/xgw}")
export LAB=xgwe$$
LAB_SH=scripts/lab.sh
. scripts/lib.sh
. scripts/testlib.sh

dump_counters() { kill -USR1 "$XGW_PID"; sleep 0.5; }

make_config() { # FILE R1_MTU [R0_TX_PATH]
    cat >"$1" <<EOF2
[[interface]]
name = "r0"
address = "198.18.0.1/24"
tx_path = "${3:-auto}"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
mtu = $2
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[icmp]
rate = 1000
burst = 50
EOF2
}

serve_files() { # start an HTTP server in the server namespace with a random 8 MiB file
    head -c 8388608 /dev/urandom >"$WORK/blob"
    (cd "$WORK" && exec ip netns exec "$LAB-srv" timeout 120 python3 -m http.server 8080 --bind 198.19.0.2) >/dev/null 2>"$WORK/http-srv.log" &
    disown
    for _ in $(seq 50); do srv bash -c 'exec 3<>/dev/tcp/198.19.0.2/8080' 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

download_intact() { # N parallel downloads, each must match
    local n=$1 i pids=() rc=0
    local want; want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
    for i in $(seq "$n"); do
        cli timeout 60 curl -s --max-time 60 -o "$WORK/dl$i" http://198.19.0.2:8080/blob & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    for i in $(seq "$n"); do
        [ "$(sha256sum <"$WORK/dl$i" | cut -d' ' -f1)" = "$want" ] || { echo "download $i corrupt or short: $(stat -c %s "$WORK/dl$i" 2>/dev/null)"; rc=1; }
    done
    return $rc
}

make_nat_config() { # FILE FILTERING
    cat >"$1" <<EOF2
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[nat]
outside = "r1"
inside = ["198.18.0.0/24"]
filtering = "$2"
max_sessions = 65536
[[nat.forward]]
protocol = "tcp"
port = 8080
to = "198.18.0.2:80"
EOF2
}

probe() { timeout 15 python3 scripts/natprobe.py "$@"; }

# The labels of the replies an inside socket receives when the server answers from the
# contacted endpoint ("same"), another port ("port") and another address ("addr").
filter_labels() { # INSIDE_PORT
    srv python3 scripts/natprobe.py reflect 198.19.0.2 5000 198.19.0.3 6000 5 >/dev/null 2>&1 &
    local r=$!
    sleep 0.5
    cli python3 scripts/natprobe.py probe 198.18.0.2 "$1" 198.19.0.2 5000 2
    wait "$r" 2>/dev/null
}

same_nonempty() { [ -s "$1" ] && [ -s "$2" ] && cmp -s "$1" "$2" && grep -q '^198\.19\.0\.1:' "$1"; }

xdp_detached() { ! rtr ip link show | grep -q 'prog/xdp'; }

# tx_path_is PORT WANT: the last transmit-path line xgw logged for PORT names WANT.
tx_path_is() {
    local last; last=$(grep "transmit path" "$WORK/xgw.log" | grep "port=$1 " | tail -1)
    [[ "$last" == *"$2"* ]] || { echo "port $1: last transmit-path line: ${last:-none}"; return 1; }
}
# wait_tx_path PORT WANT: up to 3 s for xgw to re-check the port (it does so every second).
wait_tx_path() {
    for _ in $(seq 30); do tx_path_is "$1" "$2" >/dev/null && return 0; sleep 0.1; done
    tx_path_is "$1" "$2"
}
# xdp_tx_frames: frames the workers sent through the XDP-redirect path (from the exit stats).
xdp_tx_frames() { grep -o 'xdp_tx.frames=[0-9]*' "$WORK/xgw.log" | cut -d= -f2 | awk '{s += $1} END {print s + 0}'; }

# E2E_PHASES="1 5" runs only those phases (all by default).

# ---------------------------------------------------------------- phase 1: one queue
if want_phase 1; then
    phase "one queue, MTU 1500"
    "$LAB_SH" up 1 || { bad "lab up"; exit 1; }
    make_config "$WORK/r.toml" 1500
    if start_xgw "$WORK/r.toml"; then
        if tx_path_is 0 "XDP redirect" && tx_path_is 1 "XDP redirect"; then
            ok "both ports transmit by XDP redirect (their peers accept it)"
        else
            bad "both ports transmit by XDP redirect" "$(grep 'transmit path' "$WORK/xgw.log")"
        fi
        check  "ping through the router"           cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        check  "ping the router (near side)"       cli ping -c 2 -i 0.2 -W 2 198.18.0.1
        check  "ping the router (far side)"        cli ping -c 2 -i 0.2 -W 2 198.19.0.1
        expect "ping -t 1 to the router is answered (RFC 1812 4.2.2.9)" "1 received" cli ping -c 1 -t 1 -W 2 198.18.0.1
        expect "ping -t 1 gets Time Exceeded from the router" "From 198\.18\.0\.1 .*Time to live exceeded" cli ping -c 1 -t 1 -W 2 198.19.0.2
        expect "traceroute shows the router then the server" "^ *1 +198\.18\.0\.1 .*"$'\n'" *2 +203\.0\.113\.1 " \
            cli traceroute -n -q 1 -w 2 -m 5 203.0.113.1
        expect "unrouted destination gets Net Unreachable" "From 198\.18\.0\.1 .*Destination Net Unreachable" cli ping -c 1 -W 3 192.0.2.1
        # SIGHUP re-reads the routes: the unrouted destination becomes reachable.
        srv ip addr add 192.0.2.1/32 dev lo
        printf '[[route]]\nprefix = "192.0.2.0/24"\nvia = "198.19.0.2"\n' >>"$WORK/r.toml"
        kill -HUP "$XGW_PID"
        sleep 0.5
        check "SIGHUP reloads routes (192.0.2.0/24 now routed)" cli ping -c 2 -i 0.2 -W 2 192.0.2.1
        expect "silent host gets Host Unreachable" "From 198\.18\.0\.1 .*Destination Host Unreachable" cli ping -c 1 -W 8 198.19.0.99
        if serve_files; then
            check "8 MiB TCP transfer arrives intact" download_intact 1
        else
            bad "http server in the server namespace"
        fi
        check  "iperf3 TCP through the router"     bash -c "ip netns exec $LAB-srv timeout 20 iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5; ip netns exec $LAB-cli timeout 20 iperf3 -c 198.19.0.2 -t 2"
        # The server's end stops accepting redirected frames (no GRO, no XDP): xgw notices
        # within a second and falls back to AF_XDP on r1, then returns when GRO is back.
        srv ethtool -K s0 gro off >/dev/null
        if wait_tx_path 1 "AF_XDP"; then ok "r1 falls back to AF_XDP when s0 stops accepting redirected frames"; else bad "r1 falls back to AF_XDP" "$(grep 'transmit path' "$WORK/xgw.log")"; fi
        check  "ping through the router on the AF_XDP fallback" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        check  "8 MiB TCP transfer intact on the AF_XDP fallback" download_intact 1
        srv ethtool -K s0 gro on >/dev/null
        if wait_tx_path 1 "XDP redirect"; then ok "r1 returns to XDP redirect when s0 accepts it again"; else bad "r1 returns to XDP redirect" "$(grep 'transmit path' "$WORK/xgw.log")"; fi
        check  "ping through the router after returning to XDP redirect" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        dump_counters
        stop_xgw
        check  "SIGTERM leaves no XDP program attached" xdp_detached
        expect "frames went out through the XDP-redirect path" '^[1-9][0-9]*$' xdp_tx_frames
        grep -q "final counters" "$WORK/xgw.log" && ok "clean shutdown logs final counters" || bad "clean shutdown logs final counters" "$(tail -20 "$WORK/xgw.log")"
    else
        bad "xgw starts (1 queue)" "$(cat "$WORK/xgw.log")"
    fi
    cp "$WORK/xgw.log" "$WORK/xgw-phase1.log" 2>/dev/null
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 2: smaller MTU
if want_phase 2; then
    phase "server link MTU 1400"
    SRV_MTU=1400 "$LAB_SH" up 1 || { bad "lab up (mtu)"; exit 1; }
    make_config "$WORK/m.toml" 1400
    if start_xgw "$WORK/m.toml"; then
        cli ping -c 1 -W 2 198.19.0.2 >/dev/null 2>&1   # resolve the server first
        expect "ping -M do gets Frag Needed with mtu 1400" "mtu = 1400" cli ping -c 1 -W 2 -M do -s 1472 198.19.0.2
        expect "tracepath reports pmtu 1400" "pmtu 1400" cli tracepath -n -m 5 198.19.0.2
        expect "DF-clear packets larger than the MTU are fragmented and arrive" "1 received" cli ping -c 1 -W 3 -M dont -s 1450 198.19.0.2
        # PMTUD keeps working while other (spoofed) inside hosts flood TTL=1 packets far
        # beyond the transit policer and the ICMP budget (frag needed has its own of both).
        cli python3 scripts/natprobe.py ttlflood 198.18.0 198.19.0.2 1000000 6 >"$WORK/ttlflood" 2>&1 &
        tf=$!
        sleep 1
        cli ip route flush cache   # forget the PMTU learned above, so ping sends 1500 again
        expect "ping -M do gets Frag Needed during a TTL=1 flood" "mtu = 1400" cli ping -c 3 -i 0.5 -W 2 -M do -s 1472 198.19.0.2
        wait "$tf" || true
        dump_counters
        check "the TTL=1 flood was policed (sent $(cat "$WORK/ttlflood"))" bash -c "grep -Eq 'punt.transit.policed[= ]+[1-9]' '$WORK/xgw.log'"
        stop_xgw
    else
        bad "xgw starts (mtu 1400)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 3: two queues
if want_phase 3; then
    phase "two queues, parallel flows"
    "$LAB_SH" up 2 || { bad "lab up (2 queues)"; exit 1; }
    make_config "$WORK/q.toml" 1500
    if start_xgw "$WORK/q.toml" --queues 2; then
        grep -q "workers=2" "$WORK/xgw.log" && ok "two workers started" || bad "two workers started" "$(cat "$WORK/xgw.log")"
        check "ping through the router (2 queues)" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        if serve_files; then
            check "4 parallel 8 MiB transfers arrive intact (2 queues)" download_intact 4
        else
            bad "http server (2 queues)"
        fi
        check "iperf3 -P 4 through the router (2 queues)" bash -c "ip netns exec $LAB-srv timeout 20 iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5; ip netns exec $LAB-cli timeout 20 iperf3 -c 198.19.0.2 -t 2 -P 4"
        stop_xgw
        check "SIGTERM leaves no XDP program attached (2 queues)" xdp_detached
    else
        bad "xgw starts (2 queues)" "$(cat "$WORK/xgw.log")"
    fi
    # Serving one of two RX queues would let queue 1's frames bypass xgw: refused.
    if start_xgw "$WORK/q.toml" --queues 1 >/dev/null 2>&1; then
        bad "xgw refuses queues = 1 on 2-queue ports" "$(cat "$WORK/xgw.log")"
        stop_xgw
    else
        expect "xgw refuses queues = 1 on 2-queue ports, naming the port" "r0 has 2 RX queues, queues = 1" cat "$WORK/xgw.log"
        XGW_PID=
    fi
    check "the refused start left no XDP program attached" xdp_detached
    # With the ports cut to one channel, one queue serves them all (the veth peers too:
    # native XDP on veth wants as many RX queues as the peer has TX queues).
    rtr ethtool -L r0 rx 1 tx 1 && rtr ethtool -L r1 rx 1 tx 1
    cli ethtool -L c0 rx 1 tx 1 && srv ethtool -L s0 rx 1 tx 1
    if start_xgw "$WORK/q.toml" --queues 1; then
        check "ping through the router after ethtool -L to one queue" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        stop_xgw
    else
        bad "xgw starts on one channel" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 4: generic XDP
if want_phase 4; then
    phase "generic (skb) XDP mode, r0 on the AF_XDP TX ring"
    "$LAB_SH" up 1 || { bad "lab up (generic)"; exit 1; }
    # r0 keeps the AF_XDP TX ring by configuration, r1 transmits by XDP redirect.
    make_config "$WORK/g.toml" 1500 af_xdp
    if start_xgw "$WORK/g.toml" --generic; then
        grep -q "mode=Generic" "$WORK/xgw.log" && ok "attached in generic mode" || bad "attached in generic mode" "$(cat "$WORK/xgw.log")"
        if ! grep 'transmit path' "$WORK/xgw.log" | grep -q 'port=0 ' && tx_path_is 1 "XDP redirect"; then
            ok "tx_path = \"af_xdp\" keeps r0 on AF_XDP; r1 uses XDP redirect"
        else
            bad "tx_path = \"af_xdp\" keeps r0 on AF_XDP; r1 uses XDP redirect" "$(grep 'transmit path' "$WORK/xgw.log")"
        fi
        check "ping through the router (generic)" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        check "ping the router (generic)" cli ping -c 2 -i 0.2 -W 2 198.18.0.1
        if serve_files; then
            check "8 MiB TCP transfer arrives intact (generic)" download_intact 1
        else
            bad "http server (generic)"
        fi
        stop_xgw
        check "SIGTERM leaves no XDP program attached (generic)" xdp_detached
        if start_xgw "$WORK/g.toml"; then
            kill -9 "$XGW_PID"; wait "$XGW_PID" 2>/dev/null; XGW_PID=
            sleep 0.3
            check "a crash (SIGKILL) leaves no XDP program attached (bpf_link)" xdp_detached
        fi
    else
        bad "xgw starts (generic)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 5: NAT44
if want_phase 5; then
    phase "NAT44: two inside hosts (198.18.0.2, 198.18.0.3 in its own namespace), a server with two addresses"
    INSIDE_HOSTS=2 "$LAB_SH" up 1 || { bad "lab up (nat)"; exit 1; }
    srv ip addr add 198.19.0.3/24 dev s0
    make_nat_config "$WORK/nat-adf.toml" address-dependent
    # Fragments reach virtual reassembly at any rate (the fragment flood below tests its
    # budget, not the punt policer in front of it).
    printf '[punt.fragment]\nrate = 10000000\nburst = 65536\nqueue = 8192\n' >>"$WORK/nat-adf.toml"
    if start_xgw "$WORK/nat-adf.toml"; then
        check "ping through the NAT" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        check "ping through the NAT from the second inside host" ip netns exec "$LAB-cl2" ping -c 3 -i 0.2 -W 2 198.19.0.2
        if serve_files; then
            check "8 MiB TCP transfer through the NAT arrives intact" download_intact 1
            expect "the server sees the external address" '"GET /blob' grep '^198\.19\.0\.1 ' "$WORK/http-srv.log"
        else
            bad "http server (nat)"
        fi
        check "iperf3 through the NAT" bash -c "ip netns exec $LAB-srv timeout 20 iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5; ip netns exec $LAB-cli timeout 20 iperf3 -c 198.19.0.2 -t 2"
        expect "traceroute from inside through the NAT completes" "^ *1 +198\.18\.0\.1 .*"$'\n'" *2 +203\.0\.113\.1 " \
            cli traceroute -n -q 1 -w 2 -m 5 203.0.113.1
        # EIM (RFC 4787 REQ-1): one inside socket, two servers, one external endpoint.
        srv python3 scripts/natprobe.py observe 198.19.0.2 5000 5 >"$WORK/eim1" 2>&1 &
        o1=$!
        srv python3 scripts/natprobe.py observe 198.19.0.3 5000 5 >"$WORK/eim2" 2>&1 &
        o2=$!
        sleep 0.5
        cli python3 scripts/natprobe.py send2 198.18.0.2 40000 198.19.0.2 5000 198.19.0.3 5000
        wait "$o1" "$o2"
        check "EIM: both servers see the same external address:port" same_nonempty "$WORK/eim1" "$WORK/eim2"
        expect "address-dependent filtering admits the contacted address only" '^port,same$' filter_labels 41000
        # Unsolicited inbound (no mapping) never reaches the inside.
        cli python3 scripts/natprobe.py listen 0.0.0.0 42000 3 >"$WORK/unsol" 2>&1 &
        l=$!
        sleep 0.3
        srv python3 scripts/natprobe.py send 198.19.0.2 5000 198.19.0.1 42000
        srv curl -s --max-time 2 -o /dev/null http://198.19.0.1:42000/ || true
        wait "$l"
        check "unsolicited inbound never reaches inside" test ! -s "$WORK/unsol"
        # Static port forward 198.19.0.1:8080 -> 198.18.0.2:80, from outside and hairpinned.
        (cd "$WORK" && exec ip netns exec "$LAB-cli" timeout 60 python3 -m http.server 80 --bind 198.18.0.2) >/dev/null 2>"$WORK/http-cli.log" &
        disown
        sleep 0.7
        want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
        check "static port forward reachable from outside" bash -c "[ \"\$(ip netns exec $LAB-srv curl -s --max-time 20 http://198.19.0.1:8080/blob | sha256sum | cut -d' ' -f1)\" = $want ]"
        # Malformed transport headers from outside (RFC 768, RFC 9293 §3.1) never reach the
        # inside, neither on a session nor through the forward; the well-formed twin does.
        # The inside veth is watched with AF_PACKET (the kernel would drop these itself).
        cli python3 scripts/natprobe.py sniff c0 46000 4 >"$WORK/malf-udp" 2>&1 &
        s1=$!
        cli python3 scripts/natprobe.py sniff c0 80 4 >"$WORK/malf-tcp" 2>&1 &
        s2=$!
        sleep 0.5
        cli python3 scripts/natprobe.py send 198.18.0.2 46000 198.19.0.2 7001
        for len in 0 7 200; do
            srv python3 scripts/natprobe.py raw 198.19.0.2 7001 198.19.0.1 46000 udp "$len" "udplen$len"
        done
        srv python3 scripts/natprobe.py raw 198.19.0.2 7001 198.19.0.1 46000 udp ok udpgood
        for off in 0 4 15; do
            srv python3 scripts/natprobe.py raw 198.19.0.2 7002 198.19.0.1 8080 tcp "$off" "tcpoff$off"
        done
        srv python3 scripts/natprobe.py raw 198.19.0.2 7002 198.19.0.1 8080 tcp 5 tcpgood
        wait "$s1" "$s2" || true
        check "malformed UDP lengths from outside never reach the inside (the good one does)" only_line "$WORK/malf-udp" udpgood
        check "malformed TCP data offsets through the forward never reach the inside (the good one does)" only_line "$WORK/malf-tcp" tcpgood
        # Fragments from outside whose first fragment never comes, from 250 (spoofed)
        # sources, far beyond virtual reassembly's 4 MiB budget: xgw's memory stays flat
        # (before the budget, 1024 datagrams x 64 fragments could be held: +64 MiB).
        rss() { awk '/^VmRSS/ {print $2}' "/proc/$XGW_PID/status"; }
        rss0=$(rss)
        sent=$(srv python3 scripts/natprobe.py fragflood 203.0.113 198.19.0.1 400000 8)
        rss1=$(rss)
        dump_counters
        check "a fragment flood ($sent x 1 KB from outside) leaves xgw's RSS flat (${rss0} -> ${rss1} KiB)" \
            bash -c "[ $sent -ge 50000 ] && [ $((rss1 - rss0)) -lt 16384 ]"
        check "the flood is accounted as reassembly drops" \
            bash -c "grep -Eq 'nat.fragments_(dropped|over_budget)[= ]+[1-9]' '$WORK/xgw.log'"
        check "hairpinning through the port forward (second inside host)" bash -c "[ \"\$(ip netns exec $LAB-cl2 curl -s --max-time 20 http://198.19.0.1:8080/blob | sha256sum | cut -d' ' -f1)\" = $want ]"
        expect "the hairpinned target sees the external address" '"GET /blob' grep '^198\.19\.0\.1 ' "$WORK/http-cli.log"
        dump_counters
        stop_xgw
        grep -q "nat.sessions_created" "$WORK/xgw.log" && ok "NAT counters in the log" || bad "NAT counters in the log" "$(tail -30 "$WORK/xgw.log")"
    else
        bad "xgw starts (nat)" "$(cat "$WORK/xgw.log")"
    fi
    for mode_want in "endpoint-independent:^addr,port,same$" "address-and-port-dependent:^same$"; do
        mode=${mode_want%%:*} want_re=${mode_want#*:}
        make_nat_config "$WORK/nat-$mode.toml" "$mode"
        if start_xgw "$WORK/nat-$mode.toml"; then
            expect "$mode filtering admits what it should" "$want_re" filter_labels 41001
            stop_xgw
        else
            bad "xgw starts (nat $mode)" "$(cat "$WORK/xgw.log")"
        fi
    done
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 6: NAT, two queues
if want_phase 6; then
    phase "NAT44 with two queues (one session table, two workers)"
    "$LAB_SH" up 2 || { bad "lab up (nat, 2 queues)"; exit 1; }
    make_nat_config "$WORK/nat-q.toml" address-dependent
    if start_xgw "$WORK/nat-q.toml" --queues 2; then
        check "ping through the NAT (2 queues)" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        if serve_files; then
            check "4 parallel 8 MiB transfers through the NAT arrive intact (2 queues)" download_intact 4
        else
            bad "http server (nat, 2 queues)"
        fi
        check "iperf3 -P 4 through the NAT (2 queues)" bash -c "ip netns exec $LAB-srv timeout 20 iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5; ip netns exec $LAB-cli timeout 20 iperf3 -c 198.19.0.2 -t 2 -P 4"
        stop_xgw
        check "SIGTERM leaves no XDP program attached (nat)" xdp_detached
    else
        bad "xgw starts (nat, 2 queues)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 8: NAT under a flood
# The outside floods the external address with UDP to every port (the benchmark generator at
# full rate, 60000 ports, 14 s); meanwhile the inside client keeps opening new UDP flows,
# pinging the server and reaching a server address xgw has not resolved yet. The XDP program's
# NAT prefilter drops the flood before it is copied to a socket, so the replies on the same
# link keep their receive ring. A flow counts as answered after the one retry a DNS client
# makes. Then the same with the prefilter off (`xdp_prefilter = false`, the workers drop the
# flood), paced at 1 Mpps: several times what a single slow path could drop, a third of what
# one worker drops, so a lost flow there is the exception path's fault and not an overflowing
# ring (at full rate a worker-only router loses replies on its input link, as any would).
if want_phase 8; then
    phase "NAT44 while the outside floods the external address with unmapped UDP"
    "$LAB_SH" up 1 || { bad "lab up (flood)"; exit 1; }
    srv ip addr add 198.19.0.4/24 dev s0
    make_nat_config "$WORK/nat-flood.toml" address-dependent
    sed 's/^\[nat\]$/[nat]\nxdp_prefilter = false/' "$WORK/nat-flood.toml" >"$WORK/nat-flood-workers.toml"
    for where in xdp workers; do
        if [ "$where" = xdp ]; then conf=nat-flood.toml; rate=""; else conf=nat-flood-workers.toml; rate="--rate 1000000"; fi
        if start_xgw "$WORK/$conf"; then
            R1_MAC=$(rtr cat /sys/class/net/r1/address)
            ip netns exec "$LAB-srv" timeout 40 python3 scripts/natprobe.py echo 198.19.0.2 7000 30 & echo1=$!
            ip netns exec "$LAB-srv" timeout 40 python3 scripts/natprobe.py echo 198.19.0.4 7000 30 & echo2=$!
            sleep 0.3
            # shellcheck disable=SC2086
            ip netns exec "$LAB-srv" timeout 30 "$XGW" loadgen gen --dev s0 --dst-mac "$R1_MAC" --src 203.0.113.9 \
                --dst 198.19.0.1 --flows 60000 --sport 2000 --vary-dport --secs 14 $rate >"$WORK/flood.json" 2>&1 &
            gen=$!
            sleep 1
            expect "[$where] new UDP flows through the NAT during the flood are all answered" '^50/50 ' \
                cli python3 scripts/natprobe.py flows 198.18.0.2 198.19.0.2 7000 50 2
            check "[$where] ping through the NAT during the flood" cli ping -c 5 -i 0.2 -W 2 198.19.0.2
            check "[$where] ping the router during the flood" cli ping -c 3 -i 0.2 -W 2 198.18.0.1
            expect "[$where] a server address not yet resolved is reached during the flood" '^10/10 ' \
                cli python3 scripts/natprobe.py flows 198.18.0.2 198.19.0.4 7000 10 1
            kill -0 "$gen" 2>/dev/null && ok "[$where] the flood was still running during the checks" || bad "[$where] the flood was still running during the checks" "$(cat "$WORK/flood.json")"
            wait "$gen" || true
            kill "$echo1" "$echo2" 2>/dev/null; wait "$echo1" "$echo2" 2>/dev/null || true
            expect "[$where] the generator sent at least 1M frames" '"frames": *[1-9][0-9]{6,}' cat "$WORK/flood.json"
            stop_xgw
            if [ "$where" = xdp ]; then
                expect "[xdp] the XDP program dropped the flood (xdp.nat_no_mapping)" 'xdp\.nat_no_mapping +[1-9][0-9]{6,}' cat "$WORK/xgw.log"
            else
                expect "[workers] the workers dropped the flood themselves (nat44.no_mapping)" 'nat44\.no_mapping +[1-9][0-9]{6,}' cat "$WORK/xgw.log"
            fi
            echo "       flood: $(cat "$WORK/flood.json"); xgw's exception-path and ring counters:"
            grep -E 'rx_packets|no_mapping|punt\.(nat|arp|resolve)|queue_full|policed|rx_dropped|rx_ring_full|fill' "$WORK/xgw.log" | sed 's/^/       /'
        else
            bad "xgw starts (nat flood, $where)" "$(cat "$WORK/xgw.log")"
        fi
    done
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 9: control socket
# The operator's view (`xgw show ...`, `route get`, `reload`, `clear counters`) over the
# control socket, checked against traffic of known size.
# jq-free JSON checks: jcheck 'PYTHON EXPR over v' COMMAND... (v = the command's JSON output).
# iface_counts: "r0rx r0tx r1rx r1tx" packets from show interfaces.
iface_counts() { xc show interfaces --json | python3 -c 'import json,sys; v={p["name"]: p for p in json.load(sys.stdin)}; print(v["r0"]["rx_packets"], v["r0"]["tx_packets"], v["r1"]["rx_packets"], v["r1"]["tx_packets"])'; }
# counts_moved BEFORE AFTER WANT: each of the four counters moved by exactly WANT.
counts_moved() { python3 -c 'import sys; b=list(map(int,sys.argv[1].split())); a=list(map(int,sys.argv[2].split())); d=[y-x for x,y in zip(b,a)]; assert d==[int(sys.argv[3])]*4, ("r0rx r0tx r1rx r1tx moved by", d)' "$1" "$2" "$3"; }
# A client that connects and never sends, and one whose request never ends: neither holds
# the socket for anyone else.
slow_clients() {
    rtr python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(4)' "$WORK/xgw.sock" &
    local idle=$!
    rtr python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"x" * 70000)
except OSError:
    pass
print(s.recv(4096).decode())' "$WORK/xgw.sock" >"$WORK/long-req" 2>&1 &
    local long=$!
    sleep 0.5
    local t0=$SECONDS
    xc show runtime >/dev/null || return 1
    [ $((SECONDS - t0)) -le 2 ] || { echo "show runtime took $((SECONDS - t0)) s with a silent client connected"; return 1; }
    wait "$long"; kill "$idle" 2>/dev/null; wait "$idle" 2>/dev/null
    grep -q "longer than 65536 bytes" "$WORK/long-req" || { echo "oversized request:"; cat "$WORK/long-req"; return 1; }
}
reload_refused() {
    local out
    out=$(xc reload 2>&1) && { echo "exit 0: $out"; return 1; }
    grep -q 'route\[1\]\.prefix: `192.0.2.0/33` is not an IPv4 prefix' <<<"$out" || { echo "$out"; return 1; }
}
cleared_counts() {
    xc clear counters >/dev/null &&
        jcheck 'not any(c["name"] == "punt.no_route" for c in v["counters"]) and v["since"] > 0' xc show errors --json
}
external_filter() {
    local e
    e=$(xc show nat sessions --inside 198.18.0.2:40001 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["external"])') &&
        jcheck 'len(v) == 1 and v[0]["inside"] == "198.18.0.2:40001"' xc show nat sessions --external "$e" --json
}
# metrics_match: scrape /metrics from the router's namespace with curl, parse it with the
# Prometheus client library's OpenMetrics parser, and compare drops and punts with show errors.
metrics_match() {
    rtr curl -s --max-time 5 -o "$WORK/metrics.txt" -w '%{http_code} %{content_type}\n' http://127.0.0.1:9482/metrics >"$WORK/metrics.status" || { echo "curl failed"; return 1; }
    grep -q '^200 application/openmetrics-text' "$WORK/metrics.status" || { cat "$WORK/metrics.status"; return 1; }
    xc show errors --json >"$WORK/errors.json" || return 1
    /usr/bin/python3 - "$WORK/metrics.txt" "$WORK/errors.json" <<'PY'
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
for need in ["xgw_interface_rx_packets", "xgw_interface_tx_bytes", "xgw_drops", "xgw_punts",
             "xgw_xsk_rx_ring_full", "xgw_neighbors", "xgw_fib_routes", "xgw_build_info"]:
    assert need in fams, (need, sorted(fams))
    assert fams["xgw_drops"].type == "counter"
def value(fam, **labels):
    for s in fams[fam].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError((fam, labels))
errors = json.load(open(sys.argv[2]))
checked = 0
for c in errors["counters"]:
    if c["kind"] in ("drop", "punt"):
        fam = "xgw_drops" if c["kind"] == "drop" else "xgw_punts"
        assert value(fam, reason=c["name"]) == c["count"], (c, value(fam, reason=c["name"]))
        checked += 1
assert value("xgw_punts", reason="punt.no_route") == 3
assert checked >= 1
assert value("xgw_interface_rx_packets", interface="r0") >= 100, value("xgw_interface_rx_packets", interface="r0")
assert value("xgw_xsk_rx_ring_full", interface="r0", queue="0") >= 0
assert value("xgw_fib_routes") == 8, value("xgw_fib_routes")
print("ok", checked, "counters match")
PY
}
# notify_seen FILE: the messages a test NOTIFY_SOCKET received, in order.
notify_listen() { # SOCKET OUT SECONDS
    /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
end = time.monotonic() + float(sys.argv[3])
with open(sys.argv[2], "w") as out:
    while (left := end - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(m.replace("\n", " ").strip() + "\n"); out.flush()' "$1" "$2" "$3" &
    NOTIFY_PID=$!
    for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done
}
notified_in_order() { # FILE: READY, WATCHDOG (twice), RELOADING, READY, STOPPING
    /usr/bin/python3 - "$1" <<'PY'
import sys
lines = [l.strip() for l in open(sys.argv[1])]
def first(pred, start=0):
    for i in range(start, len(lines)):
        if pred(lines[i]):
            return i
    raise AssertionError(("missing", lines))
r = first(lambda l: l.startswith("READY=1"))
assert sum("WATCHDOG=1" in l for l in lines) >= 2, lines
rl = first(lambda l: l.startswith("RELOADING=1") and "MONOTONIC_USEC=" in l, r)
r2 = first(lambda l: l.startswith("READY=1") and "reload applied" in l, rl)
first(lambda l: l.startswith("STOPPING=1"), r2)
PY
}
# The shipped unit file is valid (with this build's binary in place of /usr/local/bin/xgw).
unit_verifies() {
    command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed"; return 1; }
    sed "s|/usr/local/bin/xgw|$XGW|g" configs/xgw.service >"$WORK/xgw.service"
    local out; out=$(systemd-analyze verify "$WORK/xgw.service" 2>&1)
    [ -z "$out" ] || { echo "$out"; return 1; }
}
# forward_moved_live: a slow 4 MiB download from the inside server through the forward
# (198.19.0.1:8080 -> 198.18.0.2:80), and meanwhile a reload moving the forward to 9090:
# the download completes intact, 9090 answers, 8080 takes no new connection.
# A larger table applied by reload: same sessions (none expires in between), new capacity.
table_grown_live() {
    local before after
    before=$(xc show nat summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"])')
    sed -i 's/^max_sessions = 65536$/max_sessions = 131072/' "$WORK/cn.toml"
    xc reload || return 1
    after=$(xc show nat summary --json | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["sessions"], v["capacity"])')
    [ "$after" = "$before 131072" ] || { echo "before: $before sessions; after: $after"; return 1; }
    # The operator's view follows the new table.
    [ "$(xc show nat sessions --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$before" ]
}
forward_moved_live() {
    head -c 4194304 /dev/urandom >"$WORK/fwdblob"
    (cd "$WORK" && exec ip netns exec "$LAB-cli" timeout 60 python3 -m http.server 80 --bind 198.18.0.2) >/dev/null 2>&1 &
    local web=$! i
    for i in $(seq 50); do cli bash -c 'exec 3<>/dev/tcp/198.18.0.2/80' 2>/dev/null && break; sleep 0.1; done
    # 1 MiB/s: the transfer takes ~4 s, the reload lands in its middle.
    srv timeout 30 curl -s --limit-rate 1M -o "$WORK/fwd-dl" http://198.19.0.1:8080/fwdblob &
    local dl=$!
    sleep 1.5
    sed -i 's/^port = 8080$/port = 9090/' "$WORK/cn.toml"
    local r; r=$(xc reload 2>&1) || { echo "reload refused: $r"; kill "$web" "$dl"; return 1; }
    local rc=0
    wait "$dl" || { echo "download failed"; rc=1; }
    cmp -s "$WORK/fwdblob" "$WORK/fwd-dl" || { echo "download corrupt: $(stat -c %s "$WORK/fwd-dl" 2>/dev/null) bytes"; rc=1; }
    srv curl -s --max-time 5 -o /dev/null http://198.19.0.1:9090/fwdblob || { echo "9090 not forwarded"; rc=1; }
    if srv curl -s --max-time 3 -o /dev/null http://198.19.0.1:8080/fwdblob; then echo "8080 still forwarded"; rc=1; fi
    kill "$web" 2>/dev/null; wait "$web" 2>/dev/null
    echo "$r"
    return $rc
}
if want_phase 9; then
    phase "control socket: show interfaces/errors/runtime/route/neighbors/config, route get, reload, clear counters"
    check "configs/xgw.service passes systemd-analyze verify" unit_verifies
    "$LAB_SH" up 1 || { bad "lab up (control)"; exit 1; }
    make_config "$WORK/c.toml" 1500
    # No ARP during the counted pings: long reachable time here, static entries on the hosts.
    printf '[neighbor]\nreachable_time = "600s"\n' >>"$WORK/c.toml"
    if start_xgw "$WORK/c.toml"; then
        cli ip neigh replace 198.18.0.1 lladdr "$(rtr cat /sys/class/net/r0/address)" nud permanent dev c0
        srv ip neigh replace 198.19.0.1 lladdr "$(rtr cat /sys/class/net/r1/address)" nud permanent dev s0
        check "socket created with mode 0660" bash -c "[ \"\$(stat -c %a $WORK/xgw.sock)\" = 660 ]"
        cli ping -c 2 -i 0.2 -W 2 198.19.0.2 >/dev/null
        before=$(iface_counts)
        cli ping -c 100 -i 0.01 -W 2 -q 198.19.0.2 >/dev/null
        after=$(iface_counts)
        check "100 pings through: +100 packets in and out of both ports in show interfaces" counts_moved "$before" "$after" 100
        check "show interfaces: names, ifindex, MAC, MTU, addresses, XDP mode, per-queue AF_XDP stats" jcheck \
            'len(v) == 2 and v[0]["name"] == "r0" and v[0]["addresses"] == ["198.18.0.1/24"] and v[1]["mtu"] == 1500 and v[0]["ifindex"] > 0 and v[0]["xdp_mode"] == "native" and v[0]["state"] == "up" and len(v[0]["xsk"]) == 1 and "rx_ring_full" in v[0]["xsk"][0] and v[0]["rx_bytes"] >= 100 * 98' \
            xc show interfaces --json
        expect "show interfaces prints a table" '^r1 +[0-9]+ +([0-9a-f]{2}:){5}[0-9a-f]{2} +1500 +up ' xc show interfaces
        cli ping -c 3 -i 0.2 -W 1 192.0.2.1 >/dev/null
        check "show errors: 3 pings to an unrouted destination are 3 punt.no_route and 3 ICMP errors" jcheck \
            '{c["name"]: c["count"] for c in v["counters"]}.get("punt.no_route") == 3 and {c["name"]: c["count"] for c in v["counters"]}.get("icmp.errors_sent") == 3' \
            xc show errors --json
        expect "show errors --per-worker has a column per worker" '^COUNT +NAME +W0 +DESCRIPTION' xc show errors --per-worker
        check "show runtime: worker 0 looped and received" jcheck 'v[0]["loops"] > 0 and v[0]["rx_packets"] >= 200 and 0 <= v[0]["busy_share"] <= 1' xc show runtime --json
        expect "route get asks the running router" '^203\.0\.113\.9 via 198\.19\.0\.2 dev r1 prefix 203\.0\.113\.0/24$' xc route get 203.0.113.9
        expect "route get --json keeps its keys" '"dev":"r1".*"dst":"203.0.113.9".*"prefix":"203.0.113.0/24".*"type":"unicast".*"via":"198.19.0.2"' xc route get 203.0.113.9 --json
        expect "route get of an unrouted address fails with net unreachable" 'no route \(network unreachable\)' xc route get 192.0.2.1
        expect "show route lists static, connected and local routes" '203\.0\.113\.0/24 +unicast +198\.19\.0\.2 +r1 +static' xc show route
        check "show route PREFIX lists only routes inside it" jcheck '[r["prefix"] for r in v] == ["198.19.0.0/24", "198.19.0.1/32", "198.19.0.255/32"]' xc show route 198.19.0.0/24 --json
        check "show route summary counts routes by type" jcheck 'v["routes"] == 7 and v["by_type"]["unicast/static"] == 1 and v["by_type"]["local/local"] == 2' xc show route summary --json
        check "show neighbors: the server, reachable, on r1 with its MAC" jcheck \
            "any(n['address'] == '198.19.0.2' and n['dev'] == 'r1' and n['state'] == 'reachable' and n['mac'] == '$(srv cat /sys/class/net/s0/address)' for n in v)" \
            xc show neighbors --json
        check "show config: generation 1, the file's text" jcheck 'v["generation"] == 1 and "203.0.113.0/24" in v["text"] and v["last_reload"] is None' xc show config --json
        # A bad file is refused with its error and changes nothing.
        cp "$WORK/c.toml" "$WORK/c.good"
        printf '[[route]]\nprefix = "192.0.2.0/33"\nvia = "198.19.0.2"\n' >>"$WORK/c.toml"
        check "reload of a bad file exits 1 with the error" reload_refused
        check "after the refused reload: generation 1, last reload failed, routes unchanged" jcheck \
            'v["generation"] == 1 and v["last_reload"]["ok"] is False and "192.0.2.0/33" not in v["text"]' xc show config --json
        expect "after the refused reload 192.0.2.1 is still unrouted" 'no route' xc route get 192.0.2.1
        cp "$WORK/c.good" "$WORK/c.toml"
        srv ip addr add 192.0.2.1/32 dev lo
        printf '[[route]]\nprefix = "192.0.2.0/24"\nvia = "198.19.0.2"\n' >>"$WORK/c.toml"
        expect "reload applies a new route and answers" 'applied \(generation 2\)' xc reload
        check "the reloaded route carries traffic" cli ping -c 2 -i 0.2 -W 2 192.0.2.1
        check "metrics scraped with curl parse as OpenMetrics and match show errors" metrics_match
        check "route add: applied at once, a ping goes through the new route" bash -c "ip netns exec $LAB-rtr $XGW --socket $WORK/xgw.sock route add 198.51.100.0/24 via 198.19.0.2 && ip netns exec $LAB-srv ip addr add 198.51.100.1/32 dev lo && ip netns exec $LAB-cli ping -c 2 -i 0.2 -W 2 198.51.100.1"
        expect "show route marks it as a runtime route" '198\.51\.100\.0/24 +unicast +198\.19\.0\.2 +r1 +runtime' xc show route
        expect "route add validates like the file" 'route\.via: .*198\.18\.9\.9' xc route add 198.51.100.0/25 via 198.18.9.9
        check "route del: deleted" xc route del 198.51.100.0/24
        expect "after route del: net unreachable" "From 198\.18\.0\.1 .*Destination Net Unreachable" cli ping -c 1 -W 3 198.51.100.1
        check "neighbor flush dev r1 forgets the server" bash -c "ip netns exec $LAB-rtr $XGW --socket $WORK/xgw.sock neighbor flush dev r1 && ! ip netns exec $LAB-rtr $XGW --socket $WORK/xgw.sock show neighbors | grep -q '^198\.19\.0\.2 '"
        check "ping through after the flush (resolved again)" cli ping -c 2 -i 0.2 -W 2 198.19.0.2
        check "clear counters: show errors counts from zero" cleared_counts
        check "trace add 5 --port r0: armed" xc trace add 5 --port r0
        cli ping -c 7 -i 0.1 -W 2 -q 198.19.0.2 >/dev/null
        check "show trace: 5 ping requests, each through every stage to tx r1, TTL 64 in and 63 out" jcheck \
            'len(v["packets"]) == 5 and v["pending"] == 0 and all(p["rx"] == "r0" and "ICMP echo request" in p["input"] and " ttl 64 " in p["input"] and p["result"] == "tx r1" and " ttl 63 " in p["output"] and [s["stage"] for s in p["stages"]] == ["ethernet-input", "ip4-input", "ip4-lookup", "nat44", "ip4-rewrite"] for p in v["packets"])' \
            xc show trace --json
        expect "show trace prints each packet's stages" '^  ip4-rewrite +tx r1$' xc show trace
        check "a silent client and an oversized request hold nobody up" slow_clients
        expect "a client verb without a router names the socket" 'nonexistent.sock: .*is xgw running' rtr "$XGW" --socket /nonexistent.sock show runtime
        stop_xgw
        check "the socket is removed at exit" test ! -e "$WORK/xgw.sock"
        # sd_notify: READY=1, WATCHDOG=1 at half WATCHDOG_USEC, RELOADING=1/READY=1 around
        # a reload, STOPPING=1, at a test NOTIFY_SOCKET.
        notify_listen "$WORK/notify.sock" "$WORK/notify.log" 20
        if NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=400000 start_xgw "$WORK/c.toml"; then
            sleep 1
            xc reload >/dev/null
            sleep 0.5
            stop_xgw
            sleep 0.3
            kill "$NOTIFY_PID" 2>/dev/null; wait "$NOTIFY_PID" 2>/dev/null
            check "sd_notify: READY, WATCHDOG, RELOADING/READY around reload, STOPPING" notified_in_order "$WORK/notify.log"
        else
            bad "xgw starts under NOTIFY_SOCKET" "$(cat "$WORK/xgw.log")"
            kill "$NOTIFY_PID" 2>/dev/null
        fi
    else
        bad "xgw starts (control)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
    # NAT views: sessions with their endpoints, the summary, the mappings.
    "$LAB_SH" up 1 || { bad "lab up (control nat)"; exit 1; }
    make_nat_config "$WORK/cn.toml" address-dependent
    # The NAT event log to a Unix datagram socket (a syslog daemon's /dev/log stand-in).
    printf '[nat.log]\ntarget = "unix:%s"\ndestinations = true\n' "$WORK/natlog.sock" >>"$WORK/cn.toml"
    notify_listen "$WORK/natlog.sock" "$WORK/natlog.rcv" 90
    NATLOG_PID=$NOTIFY_PID
    if start_xgw "$WORK/cn.toml"; then
        cli python3 scripts/natprobe.py send 198.18.0.2 40000 198.19.0.2 5000
        cli python3 scripts/natprobe.py send 198.18.0.2 40001 198.19.0.2 5001
        cli ping -c 1 -W 2 198.19.0.2 >/dev/null
        check "show nat sessions: the UDP flow with its inside, external and remote endpoints" jcheck \
            'len(v) == 1 and v[0]["proto"] == "udp" and v[0]["inside"] == "198.18.0.2:40000" and v[0]["external"].startswith("198.19.0.1:") and v[0]["remote"] == "198.19.0.2:5000" and v[0]["idle"] <= 5' \
            xc show nat sessions --proto udp --inside 198.18.0.2:40000 --json
        check "show nat sessions: two UDP, one ICMP; --limit 1 stops at one" jcheck 'len(v) == 1' xc show nat sessions --limit 1 --json
        check "show nat sessions --external filters by the external endpoint" external_filter
        check "show nat summary: 3 sessions by protocol, ports in use on 198.19.0.1" jcheck \
            'v["sessions"] == 3 and v["by_proto"] == {"udp": 2, "icmp": 1} and v["capacity"] == 65536 and sum(p["ports"] for p in v["ports_in_use"] if p["proto"] == "udp") == 2' \
            xc show nat summary --json
        check "show nat mappings: the forward and the two UDP mappings" jcheck \
            'sorted((m["proto"], m["kind"]) for m in v) == [("icmp", "dynamic"), ("tcp", "forward"), ("udp", "dynamic"), ("udp", "dynamic")]' \
            xc show nat mappings --json
        expect "show nat sessions prints a table" '^udp +198\.18\.0\.2:40000 +198\.19\.0\.1:[0-9]+ +198\.19\.0\.2:5000 ' xc show nat sessions
        expect "a bad filter is refused" 'not tcp, udp or icmp' xc show nat sessions --proto sctp
        expect "nat del session removes the UDP flow's session" '^1 sessions deleted' xc nat del session --inside 198.18.0.2:40000 --proto udp
        check "the deleted session is gone from show nat sessions" jcheck 'v == []' xc show nat sessions --inside 198.18.0.2:40000 --json
        sleep 0.3
        expect "NAT log at a unix socket: RFC 5424 APMADD for the UDP flow's mapping" \
            '^<134>1 [0-9T:.-]+Z [^ ]+ xgw [0-9]+ APMADD \[APMADD SSUBIX="0" SVLAN="0" IATYP="IPv4" ISADDR="198\.18\.0\.2" ISPORT="40000" XATYP="IPv4" XSADDR="198\.19\.0\.1" XSPORT="[0-9]+" PROTO="17"\]$' \
            cat "$WORK/natlog.rcv"
        expect "NAT log: SADD with the destination (destinations = true)" \
            ' SADD \[SADD .*ISPORT="40000" .*PROTO="17" XDADDR="198\.19\.0\.2" XDPORT="5000"\]$' cat "$WORK/natlog.rcv"
        expect "NAT log: nat del session logs SDEL, then APMDEL for the released mapping" \
            ' APMDEL \[APMDEL .*ISPORT="40000" ' bash -c "grep -A1 'SDEL.*ISPORT=\"40000\"' $WORK/natlog.rcv" 
        check "the other sessions stay" jcheck 'len(v) == 2' xc show nat sessions --json
        check "reload moves the forward 8080 -> 9090 while a transfer through 8080 goes on unbroken" forward_moved_live
        check "reload with a larger nat.max_sessions: the table grows, every session kept" table_grown_live
        check "nat.log_written in show errors" jcheck '{c["name"]: c["count"] for c in v["counters"]}.get("nat.log_written", 0) >= 4' xc show errors --json
        stop_xgw
    else
        bad "xgw starts (control nat)" "$(cat "$WORK/xgw.log")"
    fi
    kill "$NATLOG_PID" 2>/dev/null; wait "$NATLOG_PID" 2>/dev/null
    # The NAT event log in a file, as JSON lines; what is buffered at exit is written.
    make_nat_config "$WORK/cf.toml" address-dependent
    printf '[nat.log]\ntarget = "file:%s"\nformat = "json"\n' "$WORK/natlog.json" >>"$WORK/cf.toml"
    if start_xgw "$WORK/cf.toml"; then
        cli python3 scripts/natprobe.py send 198.18.0.2 40002 198.19.0.2 5000
        stop_xgw
        check "NAT log in a file: a JSON APMADD line for the flow's mapping" python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
m = [l for l in lines if l["event"] == "APMADD" and l["inside"] == "198.18.0.2:40002"]
assert len(m) == 1 and m[0]["proto"] == "udp" and m[0]["external"].startswith("198.19.0.1:") and m[0]["time"].endswith("Z"), lines
' "$WORK/natlog.json"
    else
        bad "xgw starts (NAT log to a file)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 10: link monitoring
# The kernel tells xgw (netlink) when a port goes down or up, changes MTU or is deleted.
if want_phase 10; then
    phase "link monitoring: down/up, MTU change, mtu above the device, deleted interface"
    "$LAB_SH" up 1 || { bad "lab up (link)"; exit 1; }
    make_config "$WORK/l.toml" 3000
    expect "mtu above the device's MTU is refused, naming the field" "interface r1: mtu = 3000 is above the device's MTU 1500" \
        bash -c "ip netns exec $LAB-rtr timeout 10 $XGW run --config $WORK/l.toml --socket $WORK/l.sock 2>&1"
    make_config "$WORK/l.toml" 1500
    if start_xgw "$WORK/l.toml"; then
        cli ping -c 2 -i 0.2 -W 2 198.19.0.2 >/dev/null
        # Traffic flows throughout: 10 s of pings at 50/s while the link goes down and up.
        cli ping -c 500 -i 0.02 -W 1 -q 198.19.0.2 >"$WORK/flow-ping" 2>&1 &
        fp=$!
        sleep 1
        rtr ip link set r1 down
        check "r1 admin down is seen (link.down)" wait_count link.down 1
        expect "r1 down: its subnet is withdrawn (net unreachable)" "Destination Net Unreachable" cli ping -c 1 -W 2 198.19.0.2
        expect "r1 down: route get finds no route" "no route" xc route get 198.19.0.2
        check "r1 down: its neighbours flushed" jcheck 'all(n["dev"] != "r1" or n["mac"] is None for n in v)' xc show neighbors --json
        rtr ip link set r1 up
        check "r1 up again is seen (link.up)" wait_count link.up 1
        check "r1 up: ping through again" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        # The far end goes down: r1 loses its carrier (operstate lowerlayerdown).
        srv ip link set s0 down
        check "the peer going down takes r1 down (link.down 2)" wait_count link.down 2
        srv ip link set s0 up
        check "the peer back up brings r1 up (link.up 2)" wait_count link.up 2
        srv ip route replace default via 198.19.0.1 2>/dev/null || true
        check "ping through after the peer's flap" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        wait "$fp"
        expect "the pings during the flaps: at least 300 of 500 arrive" " ([3-9][0-9]{2}) received" cat "$WORK/flow-ping"
        # MTU change while traffic flows: path MTU discovery reflects it.
        rtr ip link set r1 mtu 1400
        srv ip link set s0 mtu 1400
        check "the MTU change is seen (link.mtu_changed)" wait_count link.mtu_changed 1
        check "show interfaces has r1's new MTU" jcheck 'v[1]["mtu"] == 1400' xc show interfaces --json
        cli ip route flush cache
        expect "ping -M do gets Frag Needed with the new mtu 1400" "mtu = 1400" cli ping -c 1 -W 2 -M do -s 1472 198.19.0.2
        expect "tracepath reports pmtu 1400" "pmtu 1400" cli tracepath -n -m 5 198.19.0.2
        rtr ip link set r1 mtu 1500
        srv ip link set s0 mtu 1500
        check "the MTU back to 1500 is seen" wait_count link.mtu_changed 2
        cli ip route flush cache
        check "1500-byte DF packets pass again" cli ping -c 1 -W 2 -M do -s 1472 198.19.0.2
        # Deleted: the port is gone (and says so); traffic to it gets net unreachable.
        rtr ip link del r1
        check "deleting r1 is seen (link.deleted)" wait_count link.deleted 1
        check "show interfaces says r1 is gone" jcheck 'v[1]["state"] == "gone"' xc show interfaces --json
        expect "r1 gone: net unreachable" "Destination Net Unreachable" cli ping -c 1 -W 2 198.19.0.2
        check "r0 still forwards to the router itself" cli ping -c 2 -i 0.2 -W 2 198.18.0.1
        check "xgw keeps running" kill -0 "$XGW_PID"
        # Created again (a new ifindex): xgw moves its sockets and XDP program there.
        ip link add s0 netns "$LAB-srv" type veth peer r1 netns "$LAB-rtr"
        srv ethtool -K s0 tx off gro on >/dev/null
        rtr ethtool -K r1 tx off gro off lro off >/dev/null 2>&1 || true
        srv ip addr add 198.19.0.2/24 dev s0
        srv ip link set s0 up
        rtr ip link set r1 up
        srv ip route replace default via 198.19.0.1
        check "the re-created r1 is attached (link.reattached)" wait_count link.reattached 1
        check "show interfaces says the new r1 is up, with its new ifindex" \
            jcheck "v[1][\"state\"] == \"up\" and v[1][\"ifindex\"] == $(rtr cat /sys/class/net/r1/ifindex)" xc show interfaces --json
        check "ping through the re-created r1" cli ping -c 3 -i 0.2 -W 2 198.19.0.2
        check "the worker took back the frames of r1's dead socket (logged)" grep -q "AF_XDP socket re-created on the new device.*frames_reclaimed=[1-9]" "$WORK/xgw.log"
        expect "no failed attach" "^0$" err_count link.reattach_failed
        # The first port's socket carries each worker's UMEM: its re-creation is refused
        # (counted and logged; the port stays down) and xgw keeps running.
        rtr ip link del r0
        ip link add c0 netns "$LAB-cli" type veth peer r0 netns "$LAB-rtr"
        rtr ip link set r0 up
        check "re-creating the first port is refused (link.reattach_failed)" wait_count link.reattach_failed 1
        check "show interfaces says r0 is gone" jcheck 'v[0]["state"] == "gone"' xc show interfaces --json
        check "xgw keeps running after a refused attach" kill -0 "$XGW_PID"
        stop_xgw
        grep -q "final counters" "$WORK/xgw.log" && ok "clean shutdown after a port was deleted" || bad "clean shutdown after a port was deleted" "$(tail -20 "$WORK/xgw.log")"
    else
        bad "xgw starts (link)" "$(cat "$WORK/xgw.log")"
    fi
    "$LAB_SH" down
fi

# ---------------------------------------------------------------- phase 7: benchmark harness
# The harness itself (not a performance test): every router in it delivers generated frames
# to the sink and the report has a row for each.
if want_phase 7; then
    phase "benchmark harness smoke run (scripts/bench.sh, 1 s per router)"
    if ZERO_LOSS=1 ZL_STEPS=2 ZL_SECS=0.5 BENCH_OUT="$WORK/bench" scripts/bench.sh 1 64 >"$WORK/bench.log" 2>&1; then
        check "bench.sh reports xgw, xgw-nat, kernel, kernel-nat and xdp-fwd, each delivering frames, and a zero-loss search for each" \
            python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
rows = {x["mode"]: x for x in r["results"]}
assert sorted(rows) == sorted(["xgw", "xgw-nat", "kernel", "kernel-nat", "xdp-fwd"]), rows.keys()
for m, x in rows.items():
    assert x["offered"] > 0 and 0 < x["delivered"] <= x["offered"], (m, x)
assert r["frame_size"] == 64 and r["flows"] == 64 and r["kernel"]
for m, x in rows.items():
    # Two bisection steps of the zero-loss search, each a rate with its verdict.
    steps = x["zero_loss_steps"].split()
    assert len(steps) == 2 and all(s.split(":")[1] in ("pass", "fail") for s in steps), (m, x)
    assert 0 <= x["zero_loss_mpps"] <= x["offered_mpps"], (m, x)
' "$WORK/bench/bench.json"
    else
        bad "bench.sh runs" "$(tail -30 "$WORK/bench.log")"
    fi
fi

echo
[ "$fail" -eq 0 ] || { echo "failed: ${failed_names[*]}"; echo "--- last xgw log"; cat "$WORK/xgw-phase1.log" 2>/dev/null | tail -40; }
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
