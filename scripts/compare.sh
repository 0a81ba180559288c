#!/usr/bin/env bash
# Rough comparison of xgw and the Linux kernel forwarding the same traffic in the same lab,
# one after the other: ping RTT, one TCP stream, and small UDP datagrams (iperf3).
# Precise packet-rate benchmarking is `scripts/bench.sh` territory; this is the quick look.
#
#   scripts/compare.sh [SECONDS] [QUEUES]     (default 5 s per measurement, 1 queue)
#
# Prints a table and writes bench-results/compare.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
QUEUES=${2:-1}
scripts/deps.sh >/dev/null
cargo build --release --quiet
export LAB=xgwcmp$$
WORK=$(mktemp -d /tmp/xgw-cmp.XXXXXX)
XGW_PID=
cleanup() {
    [ -n "$XGW_PID" ] && kill -TERM "$XGW_PID" 2>/dev/null && wait "$XGW_PID" 2>/dev/null
    scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { ip netns exec "$LAB-cli" "$@"; }
srv() { ip netns exec "$LAB-srv" "$@"; }

measure() { # NAME -> appends a JSON line to $WORK/results
    local name=$1
    cli ping -c 3 -i 0.2 -W 2 198.19.0.2 >/dev/null # warm ARP on both sides
    local rtt; rtt=$(cli ping -q -c 100 -i 0.01 -W 2 198.19.0.2 | awk -F'[/ ]' '/^rtt/ {print $8}')
    srv timeout $((SECS + 10)) iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5
    cli timeout $((SECS + 10)) iperf3 -c 198.19.0.2 -t "$SECS" -J >"$WORK/tcp.json"
    srv timeout $((SECS + 10)) iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5
    cli timeout $((SECS + 10)) iperf3 -c 198.19.0.2 -u -b 0 -l 64 -t "$SECS" -J >"$WORK/udp.json"
    python3 - "$name" "$rtt" "$WORK/tcp.json" "$WORK/udp.json" >>"$WORK/results" <<'PY'
import json, sys
name, rtt, tcp, udp = sys.argv[1], float(sys.argv[2]), json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
t = tcp["end"]["sum_received"]["bits_per_second"] / 1e9
u = udp["end"]["sum"]
secs = u["seconds"] or 1
delivered = (u["packets"] - u["lost_packets"]) / secs
print(json.dumps({"router": name, "ping_avg_ms": rtt, "tcp_gbps": round(t, 3),
                  "udp64_sent_pps": round(u["packets"] / secs), "udp64_delivered_pps": round(delivered),
                  "udp64_loss_pct": round(u["lost_percent"], 2)}))
PY
}

scripts/lab.sh up "$QUEUES"
ip netns exec "$LAB-rtr" target/release/xgw run --config configs/lab.toml --queues "$QUEUES" 2>"$WORK/xgw.log" &
XGW_PID=$!
for _ in $(seq 100); do grep -q "xgw running" "$WORK/xgw.log" && break; sleep 0.1; done
measure xgw
kill -TERM "$XGW_PID"; wait "$XGW_PID" 2>/dev/null || true; XGW_PID=
scripts/lab.sh kernel
measure kernel

mkdir -p bench-results
python3 - "$WORK/results" "$QUEUES" <<'PY' | tee bench-results/compare.txt
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
k = next(r for r in rows if r["router"] == "kernel")
print(f"kernel {platform.release()}, veth, {sys.argv[2]} queue(s), iperf3 (one sender core)")
print(f"{'router':8} {'ping avg ms':>12} {'TCP Gbit/s':>11} {'UDP64 sent pps':>15} {'UDP64 delivered pps':>20} {'loss %':>7} {'delivered vs kernel':>20}")
for r in rows:
    ratio = r["udp64_delivered_pps"] / max(k["udp64_delivered_pps"], 1)
    print(f"{r['router']:8} {r['ping_avg_ms']:>12.3f} {r['tcp_gbps']:>11.2f} {r['udp64_sent_pps']:>15} {r['udp64_delivered_pps']:>20} {r['udp64_loss_pct']:>7} {ratio:>19.2f}x")
json.dump({"kernel": platform.release(), "queues": int(sys.argv[2]), "results": rows}, open("bench-results/compare.json", "w"), indent=1)
PY
