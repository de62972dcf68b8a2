#!/usr/bin/env bash
# Installs the Debian packages clp needs to build, run the lab and test. Idempotent: apt is only
# asked when a package is missing.
set -euo pipefail
pkgs=(iproute2 util-linux nftables socat procps iputils-ping psmisc e2fsprogs kmod rsyslog
      python3 python3-venv python3-dev
      gcc libffi-dev make)
# --bench: also what the benchmarks compare against or load the machine with
if [ "${1:-}" = "--bench" ]; then
  pkgs=(keepalived stress-ng linux-perf pacemaker pacemaker-cli-utils corosync resource-agents)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
