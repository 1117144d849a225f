#!/usr/bin/env bash
# Builds the novanet Debian package with nfpm into dist/ (or $1) and
# prints its path. The binary is stamped with the version, commit and
# build date (`novanet version`). NOVANET_VERSION overrides the version
# (default 0.1.0~git<commit date>.<short commit>); GOARCH picks the
# architecture (default the build machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
# nfpm is fetched and built by the Go toolchain at this pinned version; it
# is not a dependency of novanet's module.
nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ -z "${NOVANET_VERSION:-}" ]; then
  when=$(git log -1 --format=%cd --date=format-local:%Y%m%d%H%M 2>/dev/null || date -u +%Y%m%d%H%M)
  NOVANET_VERSION="0.1.0~git$when.${commit:0:7}"
fi
arch=${GOARCH:-$(go env GOARCH)}

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg=novanet/internal/version
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -o "$tmp/novanet" \
  -ldflags "-s -w -X $pkg.version=$NOVANET_VERSION -X $pkg.commit=$commit -X $pkg.date=$date" \
  ./cmd/novanet

deb="$out/novanet_${NOVANET_VERSION}_${arch}.deb"
# nfpm expands the environment in version and arch but not in contents:
# the binary's path is filled in here.
sed "s|\${NOVANET_BIN}|$tmp/novanet|" packaging/nfpm.yaml >"$tmp/nfpm.yaml"
NOVANET_VERSION="$NOVANET_VERSION" NOVANET_ARCH="$arch" \
  go run "$nfpm" package --config "$tmp/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
