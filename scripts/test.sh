#!/usr/bin/env bash
# Runs every test, the root-only namespace lab tests included (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go vet ./...
test -z "$(gofmt -l cmd internal)" || { echo "gofmt needed:"; gofmt -l cmd internal; exit 1; }
go test -count=1 -timeout 25m ./...
