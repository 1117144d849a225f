#!/bin/sh
# serve-memory.sh: start `novanet serve` on SQLite, allocate 60,000
# addresses in a /16 through the API, and report the server's resident
# memory (VmRSS from /proc). Target: < 128 MiB.
#   bench/serve-memory.sh            # 60,000 addresses
#   COUNT=10000 bench/serve-memory.sh
set -eu
cd "$(dirname "$0")/.."
NOVANET_MEMCHECK=1 NOVANET_MEMCHECK_COUNT="${COUNT:-60000}" \
	go test -count=1 -timeout 60m -run '^TestServeMemory$' -v ./internal/cli |
	grep -E 'RESULT|serve memory|^(ok|FAIL|---)'
