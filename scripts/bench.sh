#!/usr/bin/env bash
# One-command forwarding benchmark: the same 64-byte UDP load, over many flows, through
# xgw (routing), xgw (NAT44), the kernel (ip_forward), the kernel's NAT (nftables
# masquerade) and an in-kernel XDP forwarder (bpf_fib_lookup + bpf_redirect: the ceiling),
# one after the other in one lab.
#
#   generator ns ($LAB-cli)          router ns ($LAB-rtr)            sink ns ($LAB-srv)
#   c0: XDP generator  ---veth--->   r0 | router under test | r1  ---veth--->  s0: XDP counter
#
# The generator is an XDP program run with BPF_PROG_RUN in live-frames mode (`xgw loadgen
# gen`); the sink counts and drops the frames in XDP (`xgw loadgen attach --role sink`).
# On veth the receiving side's first steps (r0's XDP, and for the kernel its whole
# forwarding path) run in the softirq of the sending core, so the generator's core also
# carries that share of the router's work; xgw's worker is pinned to the other core.
#
#   scripts/bench.sh [SECONDS] [FLOWS]        (default 5 s per router, 1024 flows)
#
# Environment: BENCH_MODES (subset of "xgw xgw-nat kernel kernel-nat xdp-fwd"), QUEUES
# (default 1), GEN_CPU / ROUTER_CPU (default 0 / 1), BENCH_OUT (default bench-results).
# ZERO_LOSS=1 adds an RFC 2544-style throughput search per router: the highest paced rate
# (ZL_STEPS bisection steps of ZL_SECS seconds each, default 8 x 2 s) at which the sink
# receives every frame (ZL_TOLERANCE, a loss fraction, default 0) and the generator keeps
# up with the pace (the kernel routers forward inline on its core). A failed step is tried
# ZL_RETRIES more times (default 1) before it counts: on a shared VM a single scheduling
# hiccup of a few milliseconds loses frames at any rate.
# CPS=1 adds the connection-rate search (RFC 9693's connection establishment rate; FD.io
# CSIT's NAT44 "cps") for xgw-nat and kernel-nat (nftables snat to the same pool): every frame
# a new UDP flow (CPS_HOSTS inside hosts, 4096 by default, times ports; a 16-address pool;
# the next hop resolved), paced at a rate R for CPS_SECS (0.25); the highest R, bisected in
# CPS_STEPS (8) steps up to CPS_MAX (1000000/s), at which >= 99% of the flows' first packets
# arrive. Each trial starts from empty state (xgw restarted, conntrack flushed).
# XDP_PREFILTER=false runs xgw's trials with `[nat] xdp_prefilter = false` (default: as
# configs/nat.toml, on).
# OPS=1 adds the operator-load scenario (issue 11's budget: under 2%): xgw-nat with
# OPS_SESSIONS (1M) NAT sessions made first (4096 inside hosts from 198.18.32.0, the
# connection-rate lab's pool), measured as xgw-nat-1m, then again while a scrape of
# /metrics runs every 100 ms and `xgw show nat sessions` lists the whole table back to
# back, as xgw-nat-1m-ops; the report gives the ratio.
# DFZ=1 adds kernel mirror mode with the Internet table (DFZ_CSV, default the shared
# 886k-prefix table): the time to load it into the kernel with `ip -batch` and until xgw's
# FIB has all of it, the import time at start with the table loaded, the forwarding rate
# with it (xgw-dfz) and under DFZ_CHURN (10000) route changes per second (xgw-dfz-churn),
# the FIB builds' times and the control thread's round trip during the churn.
# FLOOD=1 adds the flood scenario for xgw-nat and kernel-nat (nftables masquerade): while
# the outside floods the external address with unmapped UDP (a second generator in the sink's
# namespace, full speed, 60000 destination ports, on the generator's core), established
# flows run paced at FLOOD_EST_RATE (300000/s) and FLOOD_NEW new UDP flows (200) open to an
# echo server; reported: established delivery with the flood as a share of that without it
# (FLOOD_SECS each, 3), and the share of new flows answered at the first try.
# The flood generator sends on s0, which carries the sink, so it attaches to a spare veth
# of that namespace (fx0) instead: a generator attached nowhere would take the kernel's XDP
# dispatcher mutex on every run and stall xgw's transmit runs.
# Prints a table and writes $BENCH_OUT/bench.json and $BENCH_OUT/bench.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
FLOWS=${2:-1024}
QUEUES=${QUEUES:-1}
MODES=${BENCH_MODES-"xgw xgw-nat kernel kernel-nat xdp-fwd"}
GEN_CPU=${GEN_CPU:-0}
ROUTER_CPU=${ROUTER_CPU:-1}
OUT=${BENCH_OUT:-bench-results}
ZERO_LOSS=${ZERO_LOSS:-0}
ZL_STEPS=${ZL_STEPS:-8}
ZL_SECS=${ZL_SECS:-2}
ZL_TOLERANCE=${ZL_TOLERANCE:-0}
ZL_RETRIES=${ZL_RETRIES:-1}
CPS=${CPS:-0}
CPS_SECS=${CPS_SECS:-0.25}
CPS_STEPS=${CPS_STEPS:-8}
CPS_MAX=${CPS_MAX:-1000000}
CPS_HOSTS=${CPS_HOSTS:-4096}
FLOOD=${FLOOD:-0}
OPS=${OPS:-0}
OPS_SESSIONS=${OPS_SESSIONS:-1000000}
DFZ=${DFZ:-0}
DFZ_CSV=${DFZ_CSV:-../shared/data/dfz-ipv4.csv}
DFZ_CHURN=${DFZ_CHURN:-10000}
OPS_RATE=${OPS_RATE:-250000}
FLOOD_SECS=${FLOOD_SECS:-3}
FLOOD_EST_RATE=${FLOOD_EST_RATE:-300000}
FLOOD_NEW=${FLOOD_NEW:-200}
[ "$(nproc)" -ge 2 ] || { GEN_CPU=0; ROUTER_CPU=0; }
scripts/deps.sh >/dev/null
cargo build --release --quiet
export LAB=xgwb$$ XGW=$PWD/target/release/xgw XGW_CPUS=$ROUTER_CPU
. scripts/lib.sh
# Our own bpffs for the pinned links: unmounting it detaches whatever is still attached.
BPF=$WORK/bpf
bench_cleanup() {
    set +e
    umount "$BPF" 2>/dev/null
    lab_cleanup
}
trap bench_cleanup EXIT

scripts/lab.sh up "$QUEUES"
mkdir -p "$BPF" && mount -t bpf bpf "$BPF"
srv "$XGW" loadgen attach --dev s0 --role sink --pin "$BPF/sink"
R0_MAC=$(rtr cat /sys/class/net/r0/address)

gen() { # SECONDS [PPS] -> JSON from the generator (paced at PPS if given)
    cli taskset -c "$GEN_CPU" "$XGW" loadgen gen --dev c0 --dst-mac "$R0_MAC" \
        --src 198.18.0.2 --dst 198.19.0.2 --flows "$FLOWS" --secs "$1" ${2:+--rate "$2"}
}

# zero_loss MODE: bisect the paced rate between 0 and the rate the generator offered at full
# speed; appends {"mode", "zero_loss_mpps", "steps"} to $WORK/zl.
zero_loss() {
    local mode=$1 lo=0 hi mid c0 c1 out verdict steps=""
    hi=$(python3 -c 'import json, sys; r = [json.loads(l) for l in open(sys.argv[1])][-1]; print(int(r["offered"] / r["secs"]))' "$WORK/results")
    for _ in $(seq "$ZL_STEPS"); do
        mid=$(( (lo + hi) / 2 ))
        for _ in $(seq $((ZL_RETRIES + 1))); do
            c0=$("$XGW" loadgen count --pin "$BPF/sink")
            out=$(gen "$ZL_SECS" "$mid")
            sleep 0.5
            c1=$("$XGW" loadgen count --pin "$BPF/sink")
            verdict=$(python3 - "$out" "$((c1 - c0))" "$mid" "$ZL_TOLERANCE" <<'PY'
import json, sys
gen, delivered, pps, tol = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
kept_pace = gen["frames"] >= 0.99 * pps * gen["secs"]
lossless = delivered >= gen["frames"] * (1 - tol)
print("pass" if kept_pace and lossless else "fail")
PY
)
            [ "$verdict" = pass ] && break
        done
        steps="$steps $mid:$verdict"
        if [ "$verdict" = pass ]; then lo=$mid; else hi=$mid; fi
    done
    echo "{\"mode\": \"$mode\", \"zero_loss_mpps\": $(python3 -c "print(round($lo / 1e6, 3))"), \"steps\": \"${steps# }\"}" >>"$WORK/zl"
    tail -1 "$WORK/zl"
}

measure() { # MODE -> appends a JSON line to $WORK/results
    local mode=$1 rtt c0 c1 out
    cli ping -c 3 -i 0.2 -W 2 198.19.0.2 >/dev/null # ARP on both sides
    # The client on the generator's core, like the load: the router's core is the router's.
    rtt=$(cli taskset -c "$GEN_CPU" ping -q -c 50 -i 0.01 -W 2 198.19.0.2 | awk -F'[/ ]' '/^rtt/ {print $8}')
    gen 1 >/dev/null # warm-up: neighbours, NAT sessions / conntrack entries for every flow
    sleep 0.5
    c0=$("$XGW" loadgen count --pin "$BPF/sink")
    out=$(gen "$SECS")
    sleep 0.5 # frames still in flight
    c1=$("$XGW" loadgen count --pin "$BPF/sink")
    python3 - "$mode" "$out" "$((c1 - c0))" "${rtt:-0}" >>"$WORK/results" <<'PY'
import json, os, sys
mode, gen, delivered, rtt = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(json.dumps({"mode": mode, "offered": gen["frames"], "delivered": delivered, "secs": round(gen["secs"], 3),
                  "offered_mpps": round(gen["frames"] / gen["secs"] / 1e6, 3),
                  "delivered_mpps": round(delivered / gen["secs"] / 1e6, 3),
                  "loss": round(1 - delivered / max(gen["frames"], 1), 4),
                  "ping_avg_ms": rtt}))
PY
    tail -1 "$WORK/results"
}

# The connection-rate lab: inside hosts from 198.18.32.0, a 16-address pool 198.19.0.16-31.
make_cps_config() {
    local pool; pool=$(seq -s, -f '"198.19.0.%g"' 16 31)
    sed -e "s/^addresses = .*/addresses = [$pool]/" -e '/^inside = /d' \
        -e 's/^max_sessions = .*/max_sessions = 1048576/' configs/nat.toml | sed "${XDP_PREFILTER:+s/^\[nat\]$/[nat]\nxdp_prefilter = $XDP_PREFILTER/}" >"$WORK/cps.toml"
}

# cps_trial MODE RATE: one trial from empty state; prints pass/fail and the counts.
cps_trial() {
    local mode=$1 rate=$2 n flows c0 c1 out
    n=$(python3 -c "print(max(1, int($rate * $CPS_SECS)))")
    flows=$(( n / CPS_HOSTS + 1 ))
    if [ "$mode" = xgw-nat ]; then
        start_xgw "$WORK/cps.toml" --queues "$QUEUES" >/dev/null || { echo "fail xgw-did-not-start"; return; }
    else
        rtr conntrack -F >/dev/null 2>&1 || true
    fi
    cli ping -c 2 -i 0.1 -W 2 198.19.0.2 >/dev/null # the next hop is resolved
    c0=$("$XGW" loadgen count --pin "$BPF/sink")
    out=$(cli taskset -c "$GEN_CPU" "$XGW" loadgen gen --dev c0 --dst-mac "$R0_MAC" \
        --src 198.18.32.0 --src-hosts "$CPS_HOSTS" --dst 198.19.0.2 --flows "$flows" --sport 20000 \
        --rate "$rate" --max-frames "$n" --secs 5)
    sleep 0.5
    c1=$("$XGW" loadgen count --pin "$BPF/sink")
    [ "$mode" = xgw-nat ] && stop_xgw
    python3 - "$out" "$((c1 - c0))" "$n" "$CPS_SECS" <<'PY'
import json, sys
gen, delivered, n, secs = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
kept_pace = gen["frames"] >= 0.99 * n and gen["secs"] <= secs * 1.2 + 0.01
ok = kept_pace and delivered >= 0.99 * gen["frames"]
print(("pass" if ok else "fail"), gen["frames"], delivered)
PY
}

# cps MODE: bisect the connection rate; appends {"mode", "cps", "steps"} to $WORK/cps.
cps() {
    local mode=$1 lo=0 hi=$CPS_MAX mid r steps=""
    for _ in $(seq "$CPS_STEPS"); do
        mid=$(( (lo + hi) / 2 ))
        r=$(cps_trial "$mode" "$mid")
        steps="$steps $mid:${r// /:}"
        if [ "${r%% *}" = pass ]; then lo=$mid; else hi=$mid; fi
    done
    echo "{\"mode\": \"$mode\", \"cps\": $lo, \"steps\": \"${steps# }\"}" >>"$WORK/cps"
    tail -1 "$WORK/cps"
}

# flood_run MODE: established delivery without and with the flood, and new flows under it;
# appends {"mode", "established_share", "new_first_try", ...} to $WORK/flood.
flood_run() {
    local mode=$1 c0 c1 base under echo fl out new
    local r1_mac; r1_mac=$(rtr cat /sys/class/net/r1/address)
    cli ping -c 2 -i 0.1 -W 2 198.19.0.2 >/dev/null
    gen 1 "$FLOOD_EST_RATE" >/dev/null # sessions for the established flows
    c0=$("$XGW" loadgen count --pin "$BPF/sink")
    out=$(gen "$FLOOD_SECS" "$FLOOD_EST_RATE"); sleep 0.5
    c1=$("$XGW" loadgen count --pin "$BPF/sink")
    base=$(python3 -c "import json, sys; print(($c1 - $c0) / max(1, json.loads(sys.argv[1])['frames']))" "$out")
    # Not through the srv/cli functions: $! must be the process itself, to stop it by pid.
    ip netns exec "$LAB-srv" timeout $((FLOOD_SECS + 20)) python3 scripts/natprobe.py echo 198.19.0.2 7000 $((FLOOD_SECS + 10)) &
    echo=$!
    srv ip link show fx0 >/dev/null 2>&1 || srv ip link add fx0 type veth peer name fx1
    ip netns exec "$LAB-srv" taskset -c "$GEN_CPU" timeout $((FLOOD_SECS + 20)) "$XGW" loadgen gen --dev s0 --attach-dev fx0 --dst-mac "$r1_mac" \
        --src 203.0.113.9 --dst 198.19.0.1 --flows 60000 --sport 2000 --vary-dport \
        --secs $((FLOOD_SECS + 2)) >"$WORK/flood-gen.json" 2>&1 &
    fl=$!
    sleep 0.5
    ip netns exec "$LAB-cli" timeout $((FLOOD_SECS + 20)) python3 scripts/natprobe.py flows 198.18.0.2 198.19.0.2 7000 "$FLOOD_NEW" "$FLOOD_SECS" >"$WORK/flood-new" &
    new=$!
    c0=$("$XGW" loadgen count --pin "$BPF/sink")
    out=$(gen "$FLOOD_SECS" "$FLOOD_EST_RATE"); sleep 0.5
    c1=$("$XGW" loadgen count --pin "$BPF/sink")
    under=$(python3 -c "import json, sys; print(($c1 - $c0) / max(1, json.loads(sys.argv[1])['frames']))" "$out")
    wait "$new" "$fl" 2>/dev/null || true
    kill "$echo" 2>/dev/null; wait "$echo" 2>/dev/null || true
    python3 - "$mode" "$base" "$under" "$(cat "$WORK/flood-new")" "$(cat "$WORK/flood-gen.json")" "$FLOOD_NEW" >>"$WORK/flood" <<'PY'
import json, sys
mode, base, under, new, gen, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(), sys.argv[5], int(sys.argv[6])
try:
    g = json.loads(gen.strip().splitlines()[-1]); flood_mpps = round(g["frames"] / g["secs"] / 1e6, 3)
except Exception:
    flood_mpps = 0
answered, first = int(new[0].split("/")[0]), int(new[2]) if len(new) > 2 else 0
print(json.dumps({"mode": mode, "flood_mpps": flood_mpps, "established_delivered_without": round(base, 4),
                  "established_delivered_with": round(under, 4),
                  "established_share": round(under / base, 4) if base else 0,
                  "new_first_try": round(first / n, 4), "new_answered": round(answered / n, 4)}))
PY
    tail -1 "$WORK/flood"
}

XDP_ON_R0=
r0_prog() { # ROLE|none: what is attached to r0 for the kernel modes
    if [ -n "$XDP_ON_R0" ]; then rm -f "$BPF/r0/link"; rmdir "$BPF/r0"; XDP_ON_R0=; fi
    if [ "$1" != none ]; then
        rtr "$XGW" loadgen attach --dev r0 --role "$1" --pin "$BPF/r0"
        XDP_ON_R0=$1
    fi
}

KERNEL_ON=
kernel_on() {
    [ -n "$KERNEL_ON" ] && return 0
    scripts/lab.sh kernel
    KERNEL_ON=1
}
kernel_off() {
    [ -z "$KERNEL_ON" ] && return 0
    r0_prog none
    rtr nft delete table ip xgwbench 2>/dev/null || true
    scripts/lab.sh xgwmode
    KERNEL_ON=
}

: >"$WORK/results"
for mode in $MODES; do
    echo "== $mode"
    case $mode in
    xgw | xgw-nat)
        kernel_off
        cfg=configs/lab.toml; [ "$mode" = xgw-nat ] && cfg=configs/nat.toml
        start_xgw "$cfg" --queues "$QUEUES"
        measure "$mode"
        if [ "$ZERO_LOSS" = 1 ]; then zero_loss "$mode"; fi
        # Idle: CPU time xgw uses in 3 s without traffic.
        t0=$(awk '{print $14+$15}' "/proc/$XGW_PID/stat"); sleep 3
        t1=$(awk '{print $14+$15}' "/proc/$XGW_PID/stat")
        echo "{\"mode\": \"$mode\", \"idle_cpu_pct\": $(( (t1 - t0) * 100 / $(getconf CLK_TCK) / 3 ))}" >>"$WORK/idle"
        stop_xgw
        ;;
    kernel | kernel-nat)
        kernel_on
        # The peer of a veth that receives XDP-redirected frames needs an XDP program.
        r0_prog pass
        rtr nft delete table ip xgwbench 2>/dev/null || true
        if [ "$mode" = kernel-nat ]; then
            rtr nft -f - <<'NFT'
table ip xgwbench {
    chain post { type nat hook postrouting priority srcnat; oifname "r1" masquerade; }
}
NFT
        fi
        measure "$mode"
        if [ "$ZERO_LOSS" = 1 ]; then zero_loss "$mode"; fi
        ;;
    xdp-fwd)
        kernel_on
        rtr nft delete table ip xgwbench 2>/dev/null || true
        r0_prog fwd
        measure "$mode"
        if [ "$ZERO_LOSS" = 1 ]; then zero_loss "$mode"; fi
        ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
done
kernel_off

# ops_load SECONDS: scrape /metrics every 100 ms and list every NAT session back to back
# for SECONDS; writes "scrapes listings sessions_last_listing" to $WORK/ops.
ops_load() {
    local end=$((SECONDS + $1)) scrapes=0 listings=0 n=0
    (
        while [ $SECONDS -lt "$end" ]; do
            rtr curl -s --max-time 2 -o /dev/null http://127.0.0.1:9482/metrics && scrapes=$((scrapes + 1))
            sleep 0.1
        done
        echo "$scrapes" >"$WORK/ops-scrapes"
    ) &
    local sp=$!
    while [ $SECONDS -lt "$end" ]; do
        n=$(timeout 60 ip netns exec "$LAB-rtr" "$XGW" --socket "$WORK/xgw.sock" show nat sessions --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))') || break
        listings=$((listings + 1))
    done
    wait "$sp"
    echo "$(cat "$WORK/ops-scrapes") $listings $n" >"$WORK/ops"
}

if [ "$OPS" = 1 ]; then
    echo "== xgw-nat with $OPS_SESSIONS sessions, then with operator load"
    kernel_off
    make_cps_config
    start_xgw "$WORK/cps.toml" --queues "$QUEUES"
    cli ping -c 2 -i 0.1 -W 2 198.19.0.2 >/dev/null
    flows=$(( OPS_SESSIONS / CPS_HOSTS + 1 ))
    cli taskset -c "$GEN_CPU" "$XGW" loadgen gen --dev c0 --dst-mac "$R0_MAC" \
        --src 198.18.32.0 --src-hosts "$CPS_HOSTS" --dst 198.19.0.2 --flows "$flows" --sport 20000 \
        --rate "$OPS_RATE" --max-frames "$OPS_SESSIONS" --secs $(( OPS_SESSIONS / OPS_RATE + 10 )) >/dev/null
    sleep 1
    have=$(ip netns exec "$LAB-rtr" "$XGW" --socket "$WORK/xgw.sock" show nat summary --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["sessions"])')
    echo "sessions: $have"
    measure xgw-nat-1m
    # The operator load starts first and outlasts the measurement.
    ops_load $((SECS + 4)) &
    ops=$!
    sleep 1
    measure xgw-nat-1m-ops
    wait "$ops"
    read -r scrapes listings listed <"$WORK/ops"
    echo "{\"sessions\": $have, \"scrapes\": $scrapes, \"listings\": $listings, \"listed\": $listed, \"secs\": $((SECS + 4))}" >"$WORK/opsinfo"
    cat "$WORK/opsinfo"
    stop_xgw
fi

if [ "$FLOOD" = 1 ]; then
    echo "== flood: unmapped UDP to the external address while flows run and open"
    kernel_off
    start_xgw configs/nat.toml --queues "$QUEUES"
    flood_run xgw-nat
    stop_xgw
    kernel_on
    r0_prog pass
    rtr nft delete table ip xgwbench 2>/dev/null || true
    rtr nft -f - <<'NFT'
table ip xgwbench {
    chain post { type nat hook postrouting priority srcnat; oifname "r1" masquerade; }
}
NFT
    flood_run kernel-nat
    kernel_off
fi

# dfz_batch DIR: iproute2 batch files from the DFZ table (prefixes overlapping the lab's
# 198.18.0.0/15 and 203.0.113.0/24 left out, so the lab's own routes stay): add.batch (every
# prefix via 198.19.0.2) and churn-a/b.batch (the first DFZ_CHURN of them via 198.19.0.3,
# then back via 198.19.0.2: one second of route changes each).
dfz_batch() {
    python3 - "$1" "$DFZ_CSV" "$DFZ_CHURN" <<'PY'
import ipaddress, sys
out, csv, churn = sys.argv[1], sys.argv[2], int(sys.argv[3])
lab = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("203.0.113.0/24")]
seen, order = set(), []
for i, line in enumerate(open(csv, encoding="utf-8-sig")):
    f = line.strip().split(",")
    if i == 0 or len(f) < 2:
        continue
    try:
        p = ipaddress.ip_network(f"{f[0]}/{f[1]}", strict=False)
    except ValueError:
        continue
    if p.prefixlen == 0 or p in seen or any(p.overlaps(x) for x in lab):
        continue
    seen.add(p)
    order.append(p)
with open(f"{out}/add.batch", "w") as w:
    w.writelines(f"route replace {p} via 198.19.0.2 proto 12\n" for p in order)
for name, gw in (("a", "198.19.0.3"), ("b", "198.19.0.2")):
    with open(f"{out}/churn-{name}.batch", "w") as w:
        w.writelines(f"route replace {p} via {gw} proto 12\n" for p in order[:churn])
print(len(order))
PY
}
route_count() { ip netns exec "$LAB-rtr" "$XGW" --socket "$WORK/xgw.sock" show route summary --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["routes"])'; }
# churn SECONDS: DFZ_CHURN route changes per second (alternating batches) for SECONDS;
# writes "changes seconds" to $WORK/churn.
churn() {
    local end=$((SECONDS + $1)) n=0 t0=$SECONDS f=a
    while [ $SECONDS -lt "$end" ]; do
        local s; s=$(date +%s%N)
        rtr ip -batch "$WORK/dfz/churn-$f.batch" || break
        n=$((n + DFZ_CHURN))
        f=$([ "$f" = a ] && echo b || echo a)
        local left=$(( 1000000000 - ($(date +%s%N) - s) ))
        [ "$left" -gt 0 ] && sleep "$(python3 -c "print($left / 1e9)")"
    done
    echo "$n $((SECONDS - t0))" >"$WORK/churn"
}
# stall_probe SECONDS: round trips of `xgw show errors` (answered by the control thread, as
# ARP and the NAT's slow path are) back to back; writes "count median_ms max_ms".
stall_probe() {
    local end=$((SECONDS + $1))
    : >"$WORK/probe"
    while [ $SECONDS -lt "$end" ]; do
        local s; s=$(date +%s%N)
        ip netns exec "$LAB-rtr" "$XGW" --socket "$WORK/xgw.sock" show errors >/dev/null || break
        echo $(( ($(date +%s%N) - s) / 1000000 )) >>"$WORK/probe"
        sleep 0.05
    done
    python3 -c 'import statistics, sys; v = [int(l) for l in open(sys.argv[1])]; print(len(v), statistics.median(v), max(v))' "$WORK/probe"
}

if [ "$DFZ" = 1 ]; then
    echo "== kernel mirror mode with the DFZ table ($DFZ_CSV), then under $DFZ_CHURN route changes/s"
    kernel_off
    mkdir -p "$WORK/dfz"
    total=$(dfz_batch "$WORK/dfz")
    scripts/lab.sh kernel
    rtr ip route del 203.0.113.0/24 2>/dev/null || true
    rtr ip route add 203.0.113.0/24 via 198.19.0.2
    rtr sysctl -qw net.ipv4.ip_forward=0
    printf '[[interface]]\nname = "r0"\n[[interface]]\nname = "r1"\n[kernel]\nmirror = true\n' >"$WORK/mirror.toml"
    start_xgw "$WORK/mirror.toml" --queues "$QUEUES"
    until grep -q "kernel routes imported" "$WORK/xgw.log"; do sleep 0.1; done
    base=$(route_count)
    t0=$(date +%s%N)
    rtr ip -batch "$WORK/dfz/add.batch"
    t1=$(date +%s%N)
    until [ "$(route_count)" -ge $((base + total)) ]; do sleep 0.2; done
    t2=$(date +%s%N)
    stop_xgw
    start_xgw "$WORK/mirror.toml" --queues "$QUEUES"
    until grep -q "kernel routes imported" "$WORK/xgw.log"; do sleep 0.1; done
    startup=$(grep -o 'kernel routes imported routes=[0-9]* ms=[0-9]*' "$WORK/xgw.log" | tail -1)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$XGW_PID/status")
    measure xgw-dfz
    churn $((SECS + 4)) &
    cp=$!
    sleep 1
    stall_probe $((SECS + 2)) >"$WORK/probe-churn" &
    pp=$!
    measure xgw-dfz-churn
    wait "$cp" "$pp"
    stall_probe 3 >"$WORK/probe-idle"
    read -r changes csecs <"$WORK/churn"
    builds=$(grep -c "kernel routes built into the FIB" "$WORK/xgw.log")
    build_ms=$(grep -o 'kernel routes built into the FIB routes=[0-9]* ms=[0-9]*' "$WORK/xgw.log" | grep -o 'ms=[0-9]*' | cut -d= -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] + 0, a[NR] + 0}')
    python3 - "$total" "$t0" "$t1" "$t2" "$startup" "$rss" "$changes" "$csecs" "$builds" "$build_ms" "$(cat "$WORK/probe-churn")" "$(cat "$WORK/probe-idle")" >"$WORK/dfzinfo" <<'PY'
import json, sys
a = sys.argv
bm, pc, pi = a[10].split(), a[11].split(), a[12].split()
print(json.dumps({"routes": int(a[1]), "kernel_load_s": round((int(a[3]) - int(a[2])) / 1e9, 2),
                  "xgw_has_all_s": round((int(a[4]) - int(a[2])) / 1e9, 2), "startup": a[5],
                  "rss_kib": int(a[6]), "churn_changes": int(a[7]), "churn_secs": int(a[8]),
                  "slow_builds": int(a[9]), "build_ms_median": int(bm[0]), "build_ms_max": int(bm[1]),
                  "control_rtt_ms_churn": {"n": int(pc[0]), "median": float(pc[1]), "max": int(pc[2])},
                  "control_rtt_ms_idle": {"n": int(pi[0]), "median": float(pi[1]), "max": int(pi[2])}}))
PY
    cat "$WORK/dfzinfo"
    stop_xgw
    # The kernel forwarding with the same table, and under the same churn (which costs CPU
    # of its own on this machine's two cores): the reference for the ratio.
    rtr sysctl -qw net.ipv4.ip_forward=1
    r0_prog pass
    measure kernel-dfz
    churn $((SECS + 3)) &
    cp=$!
    sleep 1
    measure kernel-dfz-churn
    wait "$cp"
    r0_prog none
    rtr sysctl -qw net.ipv4.ip_forward=0
    rtr ip route flush proto 12
    scripts/lab.sh xgwmode
fi

if [ "$CPS" = 1 ]; then
    echo "== connection rate (new UDP flows/s with >= 99% of first packets delivered)"
    make_cps_config
    cps xgw-nat
    kernel_on
    r0_prog pass
    rtr ip route add 198.18.32.0/20 via 198.18.0.2 2>/dev/null || true
    rtr nft delete table ip xgwbench 2>/dev/null || true
    rtr nft -f - <<'NFT'
table ip xgwbench {
    chain post { type nat hook postrouting priority srcnat; oifname "r1" snat to 198.19.0.16-198.19.0.31; }
}
NFT
    cps kernel-nat
    rtr ip route del 198.18.32.0/20 2>/dev/null || true
    kernel_off
fi

mkdir -p "$OUT"
python3 - "$WORK/results" "$WORK/idle" "$QUEUES" "$FLOWS" "$SECS" "$OUT/bench.json" "$WORK/zl" "$WORK/cps" "$WORK/flood" "$WORK/opsinfo" "$WORK/dfzinfo" <<'PY' | tee "$OUT/bench.txt"
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
idle = {r["mode"]: r["idle_cpu_pct"] for r in map(json.loads, open(sys.argv[2]))} if os.path.exists(sys.argv[2]) else {}
zl = {r["mode"]: r for r in map(json.loads, open(sys.argv[7]))} if os.path.exists(sys.argv[7]) else {}
by = {r["mode"]: r for r in rows}
queues, flows, secs = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print(f"kernel {platform.release()}, {os.cpu_count()} CPUs, veth, native XDP (AF_XDP copy mode), "
      f"{queues} queue(s), 64-byte frames, {flows} UDP flows, {secs:g} s per router")
zl_head, zl_rule = (" zero-loss Mpps | zl vs kernel |", "---|---|") if zl else ("", "")
print(f"| router | offered Mpps | delivered Mpps | loss | vs kernel | ping ms | idle CPU % |{zl_head}")
print(f"|---|---|---|---|---|---|---|{zl_rule}")
for r in rows:
    ref_mode = "kernel-nat" if r["mode"].endswith("nat") else "kernel"
    if r["mode"].startswith("xgw-dfz"):
        ref_mode = r["mode"].replace("xgw", "kernel")
    ref = by.get(ref_mode)
    ratio = f"{r['delivered_mpps'] / ref['delivered_mpps']:.2f}x" if ref and ref["delivered_mpps"] else "-"
    cells = ""
    if zl:
        z, zref = zl.get(r["mode"]), zl.get(ref_mode)
        zr = f"{z['zero_loss_mpps'] / zref['zero_loss_mpps']:.2f}x" if z and zref and zref["zero_loss_mpps"] else "-"
        cells = f" {z['zero_loss_mpps']:.3f} | {zr} |" if z else " - | - |"
        if z:
            r["zero_loss_mpps"], r["zero_loss_steps"] = z["zero_loss_mpps"], z["steps"]
    print(f"| {r['mode']} | {r['offered_mpps']:.3f} | {r['delivered_mpps']:.3f} | {r['loss'] * 100:.1f}% | {ratio} "
          f"| {r['ping_avg_ms']:.3f} | {idle.get(r['mode'], '-')} |{cells}")
print("(NAT rows are compared with kernel-nat, the others with kernel.)")
if by.get("xgw") and by.get("xdp-fwd") and by["xdp-fwd"]["delivered_mpps"]:
    print(f"xgw / xdp-fwd (the in-kernel ceiling): {by['xgw']['delivered_mpps'] / by['xdp-fwd']['delivered_mpps']:.2f}x")
cps = {r["mode"]: r for r in map(json.loads, open(sys.argv[8]))} if os.path.exists(sys.argv[8]) else {}
if cps:
    print("| connection rate | new flows/s (>= 99% first packets delivered) | vs kernel-nat | steps (rate:verdict:sent:delivered) |")
    print("|---|---|---|---|")
    kref = cps.get("kernel-nat", {}).get("cps")
    for m, r in cps.items():
        ratio = f"{r['cps'] / kref:.2f}x" if kref else "-"
        print(f"| {m} | {r['cps']} | {ratio} | {r['steps']} |")
flood = [json.loads(l) for l in open(sys.argv[9])] if os.path.exists(sys.argv[9]) else []
if flood:
    print("| under an unmapped flood | flood Mpps offered | established delivered, share of no-flood | new flows answered at first try |")
    print("|---|---|---|---|")
    for r in flood:
        print(f"| {r['mode']} | {r['flood_mpps']:.3f} | {r['established_share'] * 100:.1f}% | {r['new_first_try'] * 100:.1f}% |")
ops = json.load(open(sys.argv[10])) if os.path.exists(sys.argv[10]) else None
if ops and by.get("xgw-nat-1m") and by.get("xgw-nat-1m-ops") and by["xgw-nat-1m"]["delivered_mpps"]:
    ops["ratio"] = round(by["xgw-nat-1m-ops"]["delivered_mpps"] / by["xgw-nat-1m"]["delivered_mpps"], 4)
    print(f"operator load ({ops['sessions']} sessions; {ops['scrapes']} scrapes at 100 ms and {ops['listings']} "
          f"full listings of {ops['listed']} sessions in {ops['secs']} s): xgw-nat-1m-ops / xgw-nat-1m = {ops['ratio']:.3f}x")
dfz = json.load(open(sys.argv[11])) if os.path.exists(sys.argv[11]) else None
if dfz:
    d, c = by.get("xgw-dfz"), by.get("xgw-dfz-churn")
    ratio = f"{c['delivered_mpps'] / d['delivered_mpps']:.3f}x" if d and c and d["delivered_mpps"] else "-"
    print(f"DFZ in mirror mode: {dfz['routes']} routes loaded into the kernel with ip -batch in {dfz['kernel_load_s']} s, "
          f"all in xgw's FIB {dfz['xgw_has_all_s']} s after the load began; at start with the table loaded: {dfz['startup']}; "
          f"RSS {dfz['rss_kib'] // 1024} MiB")
    k, kc = by.get("kernel-dfz"), by.get("kernel-dfz-churn")
    if k and kc and k["delivered_mpps"]:
        ratio += f" (kernel-dfz-churn / kernel-dfz = {kc['delivered_mpps'] / k['delivered_mpps']:.3f}x)"
    print(f"under churn ({dfz['churn_changes']} route changes in {dfz['churn_secs']} s): xgw-dfz-churn / xgw-dfz = {ratio}; "
          f"FIB builds over 100 ms: {dfz['slow_builds']} (median {dfz['build_ms_median']} ms, max {dfz['build_ms_max']} ms); "
          f"control-thread round trip (show errors) median/max {dfz['control_rtt_ms_churn']['median']}/{dfz['control_rtt_ms_churn']['max']} ms "
          f"under churn, {dfz['control_rtt_ms_idle']['median']}/{dfz['control_rtt_ms_idle']['max']} ms idle")
json.dump({"dfz": dfz, "ops": ops, "flood": flood, "cps": list(cps.values()), "kernel": platform.release(), "cpus": os.cpu_count(), "interface": "veth",
           "xdp_mode": "native", "af_xdp": "copy", "queues": queues, "frame_size": 64,
           "flows": flows, "seconds": secs, "results": rows,
           "idle_cpu_pct": idle}, open(sys.argv[6], "w"), indent=1)
PY
