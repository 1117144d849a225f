#!/usr/bin/env bash
# Installs what novanet's datapath, lab and tests use on Debian 12.
# Run as root. Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "${NOVANET_SKIP_APT_UPDATE:-}" != 1 ]; then
  apt-get update -qq
fi
# busybox-static (udhcpc for the lab's VMs) replaces busybox: the two
# conflict, and QEMU guests need a static one in their initramfs. QEMU and
# a cloud kernel are for `novanet lab boot --qemu` and its test.
apt-get install -y -qq --no-install-recommends \
  iproute2 procps iptables nftables ebtables ipset conntrack \
  dnsmasq-base dnsmasq-utils busybox-static isc-dhcp-client \
  tcpdump iputils-ping postgresql ca-certificates curl wrk \
  systemd python3-openstackclient \
  qemu-system-x86 linux-image-cloud-amd64 >/dev/null
# Go: the build machines come with it at /usr/local/go. Elsewhere, fetch
# the version go.mod names from go.dev and check it against its published
# SHA-256 (Debian 12's golang package is far too old for this module).
if [ ! -x /usr/local/go/bin/go ]; then
  gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$(dirname "$0")/../go.mod")
  case "$(uname -m)" in
    x86_64) goarch=amd64 ;;
    aarch64) goarch=arm64 ;;
    *) echo "install-deps: no Go download for $(uname -m); install Go $gover at /usr/local/go by hand" >&2; exit 1 ;;
  esac
  apt-get install -y -qq --no-install-recommends curl >/dev/null
  tgz="go$gover.linux-$goarch.tar.gz"
  tmp=$(mktemp -d)
  if ! curl -fsSL -o "$tmp/$tgz" "https://dl.google.com/go/$tgz" ||
     ! want=$(curl -fsSL "https://dl.google.com/go/$tgz.sha256"); then
    rm -rf "$tmp"
    echo "install-deps: cannot download Go $gover from dl.google.com; install it at /usr/local/go by hand" >&2
    exit 1
  fi
  if [ "$(sha256sum "$tmp/$tgz" | cut -d' ' -f1)" != "$want" ]; then
    rm -rf "$tmp"
    echo "install-deps: $tgz does not match its published SHA-256; not installing it" >&2
    exit 1
  fi
  rm -rf /usr/local/go && tar -C /usr/local -xzf "$tmp/$tgz"
  rm -rf "$tmp"
  echo "install-deps: installed $(/usr/local/go/bin/go version)" >&2
fi
if ! command -v go >/dev/null 2>&1; then
  echo "note: add /usr/local/go/bin to PATH" >&2
fi
