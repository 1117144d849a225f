#!/bin/sh
# boot-replicas.sh: 64 clients boot and delete instances through three
# `novanet serve` replicas on one PostgreSQL, and through one serve on
# SQLite, in the same run (issue 13, BenchmarkBootDeleteReplicas), plus
# the manager's one-boot SQLite allocation cost at N = 100 .. 60,000.
# With BASE=<commit> the same benchmarks also run on that commit's code
# (extracted with git archive into a temporary directory, this
# benchmark's files copied in), interleaved round by round so both see
# the same machine load.
#   bench/boot-replicas.sh
#   BASE=5415634 ROUNDS=2 bench/boot-replicas.sh
set -eu
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
run() {
	(cd "$1" && go test -count=1 -run XXX -bench BootDeleteReplicas -benchtime 1x ./internal/cli | grep '^Benchmark' | sed "s/^/$2 /")
	(cd "$1" && go test -count=1 -run XXX -bench 'Allocate$/sqlite' -benchtime 200x ./internal/manager | grep '^Benchmark' | sed "s/^/$2 /")
}
base=""
if [ -n "${BASE:-}" ]; then
	base=$(mktemp -d)
	trap 'rm -rf "$base"' EXIT
	git archive "$BASE" | tar -x -C "$base"
	cp internal/cli/replicas_bench_test.go internal/cli/replicas_test.go "$base/internal/cli/"
fi
round=0
while [ "$round" -lt "${ROUNDS:-1}" ]; do
	round=$((round + 1))
	if [ -n "$base" ]; then run "$base" "base($BASE)"; fi
	run . "this"
done
