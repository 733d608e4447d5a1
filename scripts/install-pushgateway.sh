#!/usr/bin/env bash
# Install the Prometheus Pushgateway the reporting tests push run metrics to (Debian package,
# binary /usr/bin/prometheus-pushgateway). Idempotent: does nothing when the binary is there.
# The package's service is not started: the tests start their own gateway on a loopback port.
set -euo pipefail

if [[ -x /usr/bin/prometheus-pushgateway ]]; then
  echo "prometheus-pushgateway already installed: $(/usr/bin/prometheus-pushgateway --version 2>&1 | head -n 1)"
  exit 0
fi
as_root=()
if [[ "$(id -u)" != "0" ]]; then
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101 keeps the package's postinst from starting a system-wide gateway on :9091.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${as_root[@]}" chmod 0755 /usr/sbin/policy-rc.d
  trap '"${as_root[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
echo "installed: $(/usr/bin/prometheus-pushgateway --version 2>&1 | head -n 1)"
