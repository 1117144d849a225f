#!/bin/sh
# run-all.sh: every benchmark docs/BENCHMARKS.md records, each beside its
# baseline in the same run. Needs root (namespaces, dnsmasq, iptables)
# and PostgreSQL binaries for the store benchmarks. Takes ~10 minutes.
set -eu
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
go test -run XXX -bench Allocate -benchtime 200x ./internal/manager
# The CNI host-local baseline needs the plugin built outside this repository
# (containernetworking/plugins, plugins/ipam/host-local).
if [ -n "${NOVANET_HOSTLOCAL:-}" ]; then
  go test -run XXX -bench BaselineHostLocal -benchtime 10x ./internal/manager
fi
go test -run XXX -bench . ./internal/plan
go test -run XXX -bench 'BaselineNova' -benchtime 5x ./internal/agent
NOVANET_BENCH_DIR=/run go test -run XXX -bench 'Converge|HostStateDecode' -benchtime 200x ./internal/agent
go test -run XXX -bench 'DHCP|Apply' -benchtime 30x ./internal/datapath/dnsmasq 2>&1 | grep -v ' INFO '
go test -run XXX -bench 'ScriptEvent' -benchtime 300x ./internal/dhcpbridge
go test -run XXX -bench 'BootStorm' -benchtime 3x ./internal/lab
sh bench/agent-memory.sh
sh bench/serve-memory.sh
sh bench/boot-replicas.sh
