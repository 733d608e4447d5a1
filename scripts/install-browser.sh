#!/usr/bin/env bash
# Install headless Chromium (Debian chromium + chromium-driver) for tests that render HTML pages.
# Idempotent: does nothing when both are there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
as_root=()
if [[ "$(id -u)" != "0" ]]; then
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "installed: $(chromium --version 2>/dev/null | head -n 1)"
