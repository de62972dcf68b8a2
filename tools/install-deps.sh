#!/usr/bin/env bash
# Installs the Debian packages clp needs to build, run the lab and test. Idempotent: apt is only
# asked when a package is missing.
set -euo pipefail
pkgs=(iproute2 util-linux nftables socat procps iputils-ping psmisc e2fsprogs kmod rsyslog
      python3 python3-venv python3-dev
      gcc libffi-dev make
      snmpd snmp snmptrapd smitools openssl systemd
      libxml2-utils)  # xmllint: the SMF manifests against smf/clp-service-bundle.dtd
command -v npm >/dev/null || pkgs+=(npm)  # fetches the IETF base MIB modules, below
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

# The IETF modules mib/CLP-CLUSTER-MIB.txt imports (SNMPv2-SMI, -TC, -CONF), for smilint and
# snmptranslate: Debian's snmp packages leave them out (snmp-mibs-downloader is in non-free), the
# npm package net-snmp ships them unchanged.
IETF_MIBS=/usr/local/share/clp/mibs
IETF_FROM=net-snmp@3.29.2
if [ "${1:-}" != "--bench" ] && [ ! -f "$IETF_MIBS/SNMPv2-CONF.mib" ]; then
  echo "installing the IETF base MIB modules into $IETF_MIBS (from npm $IETF_FROM)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$IETF_FROM" >/dev/null)
  mkdir -p "$IETF_MIBS"
  tar xzf "$tmp"/net-snmp-*.tgz -C "$IETF_MIBS" --strip-components=3 \
    package/lib/mibs/SNMPv2-SMI.mib package/lib/mibs/SNMPv2-TC.mib \
    package/lib/mibs/SNMPv2-CONF.mib
fi
