#!/usr/bin/env bash
# Installs what novanet's datapath, lab and tests use on Debian 12.
# Run as root. Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "${NOVANET_SKIP_APT_UPDATE:-}" != 1 ]; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends \
  iproute2 procps iptables nftables ebtables ipset conntrack \
  dnsmasq-base dnsmasq-utils busybox isc-dhcp-client \
  tcpdump iputils-ping postgresql ca-certificates >/dev/null
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  echo "note: add /usr/local/go/bin to PATH" >&2
fi
