#!/bin/sh
# agent-memory.sh: a lab whose compute-1 serves 5,000 instances (multi-host,
# 10.0.0.0/16); prints the agent's resident memory. Target: < 64 MiB.
set -eu
cd "$(dirname "$0")/.."
NOVANET_BENCH=1 go test -count=1 -timeout 20m -run '^TestAgentMemory5000$' -v ./internal/lab | grep -E 'RESULT|^(ok|FAIL|---)'
