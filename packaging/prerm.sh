#!/bin/sh
# novanet prerm: stop the services on removal (not on upgrade: postinst
# restarts them then, and dnsmasq keeps serving across the agent's restart).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop novanet-serve.service novanet-agent.service >/dev/null 2>&1 || true
fi
exit 0
