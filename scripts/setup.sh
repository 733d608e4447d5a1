#!/usr/bin/env bash
# README's setup command: install what running needs (.venv), make the demo data and models, then run the three demo
# pipelines end to end on the embedded default (SQLite, local filesystem, local backend).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/env.sh

mkdir -p "$NIGHTSHARD_HOME"
DEMO_DATES=(2026-11-20 2026-11-21 2026-11-22)
airflow db migrate > "$NIGHTSHARD_HOME/db-migrate.log" 2>&1 || { cat "$NIGHTSHARD_HOME/db-migrate.log"; exit 1; }
python -m nightshard_dev.demo $(printf -- '--ds %s ' "${DEMO_DATES[@]}")

for dag in nightshard_tabular_risk nightshard_text_embeddings nightshard_review_sentiment; do
  echo "=== $dag, partition ${DEMO_DATES[-1]} ==="
  airflow dags test "$dag" "${DEMO_DATES[-1]}"
done

echo
echo "Published partitions:"
find "$NIGHTSHARD_HOME/predictions" -name _SUCCESS -printf '  %h\n' | sort
echo "Messages:"
ls -1 "$NIGHTSHARD_HOME/outbox" | sed 's/^/  /'
