# Shared by demo.sh, compare.sh, bench.sh and e2e.sh (sourced, not run). The caller sets LAB (a unique
# namespace prefix) and XGW (the binary) before using these.

WORK=$(mktemp -d /tmp/xgw-lab.XXXXXX)
XGW_PID=

cli() { ip netns exec "$LAB-cli" "$@"; }
srv() { ip netns exec "$LAB-srv" "$@"; }
rtr() { ip netns exec "$LAB-rtr" "$@"; }
# xc VERB...: ask the running xgw over its control socket.
xc() { ip netns exec "$LAB-rtr" "$XGW" --socket "$WORK/xgw.sock" "$@"; }

# start_xgw CONFIG [ARGS...]: run xgw in the router namespace, wait until it is up.
# XGW_CPUS (optional, a taskset list) pins it.
start_xgw() {
    local cfg=$1; shift
    # Not through a shell function: $! must be xgw itself (`ip netns exec` and taskset exec).
    ${XGW_CPUS:+taskset -c "$XGW_CPUS"} ip netns exec "$LAB-rtr" "$XGW" run --config "$cfg" --socket "$WORK/xgw.sock" "$@" >"$WORK/xgw.log" 2>&1 &
    XGW_PID=$!
    for _ in $(seq 100); do
        grep -q "xgw running" "$WORK/xgw.log" && return 0
        kill -0 "$XGW_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "xgw did not start:"; cat "$WORK/xgw.log"; return 1
}

# stop_xgw: SIGTERM, wait up to 5 s, then SIGKILL.
stop_xgw() {
    [ -n "$XGW_PID" ] || return 0
    kill -TERM "$XGW_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$XGW_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$XGW_PID" 2>/dev/null || true
    wait "$XGW_PID" 2>/dev/null || true
    XGW_PID=
}

# Runs on every exit (also under `set -e` in the caller: nothing here may fail).
lab_cleanup() {
    set +e
    stop_xgw >/dev/null 2>&1
    scripts/lab.sh down >/dev/null 2>&1
    rm -rf "$WORK"
}
trap lab_cleanup EXIT
trap 'exit 130' INT TERM
