#!/bin/sh
# novanet postrm: forget the units. The store in /var/lib/novanet and the
# novanet user stay, even on purge: they hold the cluster's allocations.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
