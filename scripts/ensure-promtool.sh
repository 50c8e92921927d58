#!/usr/bin/env bash
# Debian's promtool, which checks the sample alerting rules (docs/ops) the way
# Prometheus itself will load them. Installs with apt-get where missing.
set -euo pipefail
if command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-promtool: promtool missing and not root" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
