#!/usr/bin/env bash
# The lab walk-through: seed 003's controller and two computes in network
# namespaces, three VMs across the computes, their addresses, gateways and
# pings, the source address the outside host sees, then tear down.
#
#   sudo bash scripts/lab-demo.sh               # single-host (seed 003)
#   sudo bash scripts/lab-demo.sh --multi-host  # every compute its VMs' gateway (seed 001)
#
# Needs root, iproute2, dnsmasq, iptables, busybox and tcpdump
# (scripts/install-deps.sh). Touches nothing outside namespaces named
# nnldemo-* and /run/novanet-lab/nnldemo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mode=()
case "${1:-}" in
"") ;;
--multi-host) mode=(--multi-host) ;;
*) echo "usage: $0 [--multi-host]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "the lab needs root (network namespaces): run it with sudo" >&2; exit 1; }

go build -o bin/novanet ./cmd/novanet
N="bin/novanet lab --name nnldemo"
if [ -e /run/novanet-lab/nnldemo ]; then $N down; fi
trap '$N down' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "up: namespaces, novanet serve on the controller, one novanet agent per host ${mode[*]:-}"
$N up "${mode[@]}"

step "boot three VMs: two on compute-1, one on compute-2"
$N boot vm1 --host compute-1
$N boot vm2 --host compute-1 --dhcp-client dhclient
$N boot vm3 --host compute-2

step "status: what the guests leased, from which dnsmasq, and the store's leased flag"
$N status

step "inside each guest: address and default route (configured by its DHCP client)"
addr() { $N exec "$1" -- ip -4 -o addr show eth0 | awk '{print $4}'; }
for vm in vm1 vm2 vm3; do
  printf '%-4s %-14s %s\n' "$vm" "$(addr $vm)" "$($N exec $vm -- ip -4 route show default)"
done

step "pings"
a1=$(addr vm1); a2=$(addr vm2); a3=$(addr vm3)
p() { if $N exec "$1" -- ping -c1 -W2 "$2" >/dev/null 2>&1; then echo "ok    $1 -> $2 ($3)"; else echo "FAIL  $1 -> $2 ($3)"; fi; }
p vm1 "${a3%/*}" "vm3, on the other compute"
p vm3 "${a2%/*}" "vm2, on the other compute"
p vm1 "${a2%/*}" "vm2, same compute"
if [ ${#mode[@]} = 0 ]; then
  p controller "${a1%/*}" "the network host reaches every VM"
  step "vm3 pings the outside host (203.0.113.254, no route back to 10.0.0.0/8); tcpdump there shows the source"
  $N exec outside -- timeout 5 tcpdump -nl -c1 -i eth0 'icmp[icmptype] == icmp-echo' 2>/dev/null &
  sleep 1
  p vm3 203.0.113.254 "SNATed to the controller's routing_source_ip"
  wait
else
  step "each compute's br100 carries its own VMs' gateway address"
  for h in compute-1 compute-2; do
    printf '%-10s %s\n' "$h" "$($N exec $h -- ip -4 -o addr show br100 | awk '{print $4}' | xargs)"
  done
  step "vm3 pings the outside host; compute-2 NATs it to its own 192.168.56.202 (tcpdump on its eth1)"
  $N exec compute-2 -- timeout 5 tcpdump -nl -c1 -i eth1 'icmp[icmptype] == icmp-echo' 2>/dev/null &
  sleep 1
  p vm3 203.0.113.254 "out through compute-2, then the controller as the site's router"
  wait
fi

step "delete vm3, boot vm4 on compute-2: with force_dhcp_release it gets the address back at once"
$N delete vm3
$N boot vm4 --host compute-2

step "tear down"
