#!/usr/bin/env bash
# Demo: build xgw, start it between a client and a server namespace, and show ping,
# traceroute and a TCP transfer going through it. Installs what it needs (Debian 12, root).
#
#   scripts/demo.sh [QUEUES] [nat]     (nat: run as a NAT44 gateway with configs/nat.toml)
#
# Everything it creates (namespaces xgwdemo<pid>-*, processes) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
QUEUES=${1:-1}
CONFIG=configs/lab.toml
[ "${2:-}" = nat ] && CONFIG=configs/nat.toml
scripts/deps.sh
echo "== building xgw (release)"
cargo build --release --quiet
export LAB=xgwdemo$$ XGW=target/release/xgw
. scripts/lib.sh
say() { echo; echo "== $*"; }

say "lab: client 198.18.0.2 -- r0 [xgw] r1 -- server 198.19.0.2 (+203.0.113.1), $QUEUES queue(s)"
scripts/lab.sh up "$QUEUES"
start_xgw "$CONFIG" --queues "$QUEUES"
sed 's/^/   xgw: /' "$WORK/xgw.log"

say "ping the router, then through it"
cli ping -c 3 -i 0.2 198.18.0.1
cli ping -c 5 -i 0.2 198.19.0.2

say "traceroute through xgw"
cli traceroute -n -q 1 -w 2 -m 5 203.0.113.1

say "ICMP errors: TTL 1, no route"
cli ping -c 1 -t 1 -W 2 198.19.0.2 || true
cli ping -c 1 -W 2 192.0.2.1 || true

say "TCP: 64 MiB over HTTP through xgw"
head -c 67108864 /dev/urandom >"$WORK/blob"
(cd "$WORK" && exec ip netns exec "$LAB-srv" timeout 60 python3 -m http.server 8080 --bind 198.19.0.2) >/dev/null 2>"$WORK/http.log" &
disown
sleep 1
cli curl -s -o "$WORK/got" -w '   %{size_download} bytes in %{time_total} s (%{speed_download} B/s)\n' http://198.19.0.2:8080/blob
if cmp -s "$WORK/blob" "$WORK/got"; then echo "   intact (bytes identical)"; else echo "   CORRUPT"; exit 1; fi
echo "   the server saw the client as: $(grep -o '^[0-9.]* ' "$WORK/http.log" | head -1)"

say "xgw counters (SIGUSR1)"
kill -USR1 "$XGW_PID"; sleep 0.5
sed -n '/counters:/,$p' "$WORK/xgw.log" | sed 's/^/   /'
say "stopping xgw (SIGTERM detaches XDP)"
