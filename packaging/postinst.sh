#!/bin/sh
# novanet postinst: the system user serve runs as, its state directory.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd novanet >/dev/null; then
    adduser --system --group --home /var/lib/novanet --no-create-home \
      --gecos "novanet API server" novanet >/dev/null
  fi
  chown novanet:novanet /var/lib/novanet
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
    # An upgrade restarts what was running; a first install starts
    # nothing: the tokens and the host's options come first.
    for unit in novanet-serve.service novanet-agent.service; do
      if systemctl is-active --quiet "$unit"; then
        systemctl restart "$unit" || true
      fi
    done
  fi
fi
exit 0
