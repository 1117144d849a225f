#!/bin/sh
# metadata-wrk.sh: requests/s and p99 latency of novanet serve's metadata
# service under wrk on loopback, at 16 and 64 connections, beside a bare
# Go net/http handler measured in the same run. Everything runs in a
# private network namespace whose loopback also holds 10.0.0.3, the fixed
# address of the one instance, so wrk's requests come from that
# instance's address and take the real path: source identification, the
# per-source limiter (raised so one source is not throttled; its cost is
# still paid), a SQLite lookup per request (no cache).
# Targets: >= 70% of the baseline's requests/s, p99 <= 1.5x its p99.
#   sh bench/metadata-wrk.sh            # 10 s per run
#   DURATION=30s ROUNDS=5 sh bench/metadata-wrk.sh
# Rounds alternate baseline and metadata runs so both see the same load.
set -eu
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
NS="nnbenchmeta$$"
DIR=$(mktemp -d /tmp/nnbench-meta.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
go build -o "$DIR/novanet" ./cmd/novanet
go build -o "$DIR/barehttp" ./bench/barehttp
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 10.0.0.3/32 dev lo
TOKEN=benchadmintoken0123456789
echo "$TOKEN admin" > "$DIR/tokens"
cat > "$DIR/novanet.conf" <<CONF
[DEFAULT]
host = bench
my_ip = 10.0.0.3
state_path = $DIR
network_host = bench
metadata_listen = 10.0.0.3
[novanet]
listen = 127.0.0.1:8774
tokens_file = $DIR/tokens
metadata_rate_limit = 100000000
CONF
in_ns() { ip netns exec "$NS" "$@"; }
ip netns exec "$NS" "$DIR/novanet" --config-file "$DIR/novanet.conf" serve 2>"$DIR/serve.log" >/dev/null &
PIDS="$PIDS $!"
ip netns exec "$NS" "$DIR/barehttp" -listen 10.0.0.3:8080 >/dev/null 2>&1 &
PIDS="$PIDS $!"
export NOVANET_URL=http://127.0.0.1:8774 NOVANET_TOKEN=$TOKEN
for _ in $(seq 50); do in_ns "$DIR/novanet" network list >/dev/null 2>&1 && break; sleep 0.1; done
in_ns "$DIR/novanet" network create --label private --fixed_range_v4 10.0.0.0/24 --bridge br100 --bridge_interface eth2 >/dev/null
in_ns "$DIR/novanet" instance boot vm1 --host bench --project_id demo --fixed_address 10.0.0.3 --user_data '#!/bin/sh' >/dev/null
META=http://10.0.0.3:8775/latest/meta-data/instance-id
BARE=http://10.0.0.3:8080/latest/meta-data/instance-id
echo "instance-id answered: $(in_ns curl -s $META)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, kernel $(uname -r), wrk -t2 -d$DURATION"
printf '%-28s %6s %12s %10s\n' handler conns 'req/s' 'p99'
run() { # name conns url
	out=$(in_ns wrk -t2 -c"$2" -d"$DURATION" --latency "$3")
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
	printf '%-28s %6s %12s %10s %s\n' "$1" "$2" "$rps" "$p99" "${non2xx:+non-2xx: $non2xx}"
}
for r in $(seq "$ROUNDS"); do
	echo "round $r, load: $(cut -d' ' -f1-3 /proc/loadavg)"
	for c in 16 64; do
		run "bare net/http" "$c" "$BARE"
		run "metadata instance-id" "$c" "$META"
		run "metadata meta_data.json" "$c" http://10.0.0.3:8775/openstack/latest/meta_data.json
	done
done
