#!/usr/bin/env bash
# The README's Quick tour, run line by line exactly as the README shows it
# (TestDemoAPIScript checks that the two agree): build novanet, tokens and
# a configuration in a temporary directory, serve on SQLite, a network,
# floating range, boots, a floating IP allocated and associated by
# hostname, the lists. No root needed; nothing outside the checkout's bin/
# and the temporary directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
tour=$(mktemp -d)
trap 'kill %1 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tour"' EXIT
export TMPDIR=$tour # the tour's mktemp -d lands inside it, and goes with it
while IFS= read -r line; do
  printf '\n$ %s\n' "$line"
  eval "$line"
done <<'TOUR'
go build -o bin/novanet ./cmd/novanet      # in the checkout (or install the package: docs/OPERATIONS.md)
export PATH=$PWD/bin:$PATH
cd "$(mktemp -d)"                          # any writable directory: tokens, config and state go here
ADMIN=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
DEMO=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s admin\n%s project demo\n' $ADMIN $DEMO > tokens
printf '[DEFAULT]\nstate_path = %s/state\nnetwork_host = controller\n[novanet]\nlisten = 127.0.0.1:0\ntokens_file = tokens\n' $PWD > novanet.conf
novanet --config-file novanet.conf serve --address_file addr 2>serve.log &
until [ -s addr ]; do sleep 0.1; done; export NOVANET_URL=http://$(cat addr) NOVANET_TOKEN=$ADMIN
novanet network create --label private --fixed_range_v4 10.0.0.0/24 --bridge br100 --bridge_interface eth2
novanet floating-ip create-range --ip_range 203.0.113.0/28 --pool nova
NOVANET_TOKEN=$DEMO novanet instance boot vm1 --host compute-1
FIP=$(NOVANET_TOKEN=$DEMO novanet floating-ip allocate -o value -c address)
NOVANET_TOKEN=$DEMO novanet floating-ip associate $FIP vm1
NOVANET_TOKEN=$DEMO novanet instance list
novanet network list -o json -c label
kill %1; wait
TOUR
