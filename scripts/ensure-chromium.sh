#!/usr/bin/env bash
# Debian's Chromium and a CJK font for the console's browser tests (without the font,
# Chinese renders as boxes in screenshots). Installs with apt-get where missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei"; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: chromium or fonts-wqy-microhei missing and not root" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
