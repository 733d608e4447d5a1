#!/usr/bin/env bash
# README's test command: installs what is missing (the .venv, then the test-only tools and linters), lints,
# then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-test-tools.sh
bash scripts/lint.sh  # ruff + mypy --strict on the contract, config and validation (seconds)
exec .venv/bin/python -m pytest tests "$@"
