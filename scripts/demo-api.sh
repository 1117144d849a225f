#!/usr/bin/env bash
# The API walkthrough: `novanet serve` on an embedded SQLite file, then
# network create, boot, floating IP allocate and associate, and lists.
# No root needed; nothing outside a temporary directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go build -o bin/novanet ./cmd/novanet
dir=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
admin=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
demo=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s admin\n%s project demo\n' "$admin" "$demo" > "$dir/tokens"
cat > "$dir/novanet.conf" <<CONF
[DEFAULT]
state_path = $dir/state
network_host = controller
force_dhcp_release = true
[novanet]
listen = 127.0.0.1:0
tokens_file = $dir/tokens
CONF
bin/novanet --config-file "$dir/novanet.conf" serve --address_file "$dir/addr" 2>"$dir/serve.log" &
serve_pid=$!
for _ in $(seq 50); do [ -s "$dir/addr" ] && break; sleep 0.1; done
export NOVANET_URL="http://$(cat "$dir/addr")"
run() { printf '\n$ novanet %s\n' "$*"; bin/novanet "$@"; }

export NOVANET_TOKEN=$admin
run network create --label private --fixed_range_v4 10.0.0.0/24 --bridge br100 --bridge_interface eth2
run floating-ip create-range --ip_range 203.0.113.0/28 --pool nova --interface eth0
export NOVANET_TOKEN=$demo
run instance boot vm1 --host compute-1
run instance boot vm2 --host compute-2
run floating-ip allocate --pool nova
fip=$(bin/novanet floating-ip list -o json | grep -Eo "\"(ip|address)\": *\"[0-9.]+\"" | grep -Eo "[0-9.]+\"$" | tr -d "\"" | head -1)
vm1=$(bin/novanet instance list -o json | sed -n 's/.*"uuid": *"\([0-9a-f-]*\)".*/\1/p' | head -1)
run floating-ip associate "$fip" "$vm1"
run instance list
run floating-ip list
export NOVANET_TOKEN=$admin
run network list
