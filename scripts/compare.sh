#!/usr/bin/env bash
# Rough comparison of xgw and the Linux kernel forwarding the same traffic in the same lab,
# one after the other: xgw routing, xgw NAT44 (configs/nat.toml), kernel ip_forward, kernel
# nftables masquerade; ping RTT, one TCP stream, and small UDP datagrams (iperf3). NAT rows
# are compared with the kernel's NAT, routing rows with the kernel's routing.
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
export LAB=xgwcmp$$ XGW=target/release/xgw
. scripts/lib.sh

# Frames received by the server's interface (what the router delivered, whether or not the
# iperf3 server, sharing this 2-core machine, keeps up with reading them).
s0_rx() { ip -n "$LAB-srv" -s -j link show s0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

measure() { # NAME -> appends a JSON line to $WORK/results
    local name=$1
    cli ping -c 3 -i 0.2 -W 2 198.19.0.2 >/dev/null # warm ARP on both sides
    local rtt; rtt=$(cli ping -q -c 100 -i 0.01 -W 2 198.19.0.2 | awk -F'[/ ]' '/^rtt/ {print $8}')
    srv timeout $((SECS + 10)) iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5
    cli timeout $((SECS + 10)) iperf3 -c 198.19.0.2 -t "$SECS" -J >"$WORK/tcp.json"
    srv timeout $((SECS + 10)) iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 & sleep 0.5
    local rx0; rx0=$(s0_rx)
    cli timeout $((SECS + 10)) iperf3 -c 198.19.0.2 -u -b 0 -l 64 -t "$SECS" -J >"$WORK/udp.json"
    local rx1; rx1=$(s0_rx)
    python3 - "$name" "$rtt" "$WORK/tcp.json" "$WORK/udp.json" "$((rx1 - rx0))" >>"$WORK/results" <<'PY'
import json, sys
name, rtt, tcp, udp = sys.argv[1], float(sys.argv[2]), json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
at_server = int(sys.argv[5])
t = tcp["end"]["sum_received"]["bits_per_second"] / 1e9
u = udp["end"]["sum"]
secs = u["seconds"] or 1
print(json.dumps({"router": name, "ping_avg_ms": rtt, "tcp_gbps": round(t, 3),
                  "udp64_sent_pps": round(u["packets"] / secs),
                  "udp64_forwarded_pps": round(min(at_server, u["packets"]) / secs),
                  "udp64_app_received_pps": round((u["packets"] - u["lost_packets"]) / secs)}))
PY
}

scripts/lab.sh up "$QUEUES"
start_xgw configs/lab.toml --queues "$QUEUES"
measure xgw
stop_xgw
start_xgw configs/nat.toml --queues "$QUEUES"
measure xgw-nat
stop_xgw
scripts/lab.sh kernel
measure kernel
# The kernel's NAT: nftables masquerade on the outside interface.
rtr nft -f - <<'NFT'
table ip xgwcmp {
    chain post { type nat hook postrouting priority srcnat; oifname "r1" masquerade; }
}
NFT
measure kernel-nat
rtr nft delete table ip xgwcmp

mkdir -p bench-results
python3 - "$WORK/results" "$QUEUES" <<'PY' | tee bench-results/compare.txt
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
k = next(r for r in rows if r["router"] == "kernel")
print(f"kernel {platform.release()}, veth, {sys.argv[2]} queue(s), iperf3 (one sender core)")
kn = next((r for r in rows if r["router"] == "kernel-nat"), k)
print(f"| router | ping avg ms | TCP Gbit/s | UDP 64 B sent pps | forwarded to server pps | iperf3 received pps | forwarded vs kernel |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    ref = kn if r["router"].endswith("nat") else k
    ratio = r["udp64_forwarded_pps"] / max(ref["udp64_forwarded_pps"], 1)
    print(f"| {r['router']} | {r['ping_avg_ms']:.3f} | {r['tcp_gbps']:.2f} | {r['udp64_sent_pps']} | {r['udp64_forwarded_pps']} | {r['udp64_app_received_pps']} | {ratio:.2f}x |")
json.dump({"kernel": platform.release(), "queues": int(sys.argv[2]), "results": rows}, open("bench-results/compare.json", "w"), indent=1)
PY
