#!/usr/bin/env bash
# Install what xgw needs to build and test on Debian 12 (as root). Idempotent.
set -euo pipefail
pkgs=(clang llvm libelf-dev zlib1g-dev m4 make pkg-config
      iproute2 ethtool iputils-ping traceroute iputils-tracepath tcpdump
      iperf3 curl python3 python3-prometheus-client procps nftables conntrack systemd bird2 frr)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# bird2's and frr's packages enable a system-wide daemon: the tests start their own, one
# per test namespace, and want none in the host's namespace.
for svc in bird frr; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled "$svc" >/dev/null 2>&1; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
