#!/usr/bin/env bash
# ruff over the tree, mypy --strict over the contract, config, validation and hand-off modules, and a
# plain mypy over the whole plugins package. Installs the
# pinned linters into .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=".venv/.nightshard-lint-$(sha256sum requirements-lint.lock | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-lint.lock 2>&1 | grep -v '^WARNING: Location' || true
  rm -f .venv/.nightshard-lint-*
  touch "$stamp"
fi
.venv/bin/ruff check .
.venv/bin/mypy --config-file mypy.ini \
  worker/src/nightshard_worker/contract.py \
  plugins/nightshard/config/pipeline_config.py plugins/nightshard/config/sections.py plugins/nightshard/config/schema.py plugins/nightshard/validation/rules.py \
  plugins/nightshard/handoffs.py
.venv/bin/mypy --config-file mypy-plugins.ini plugins/nightshard
