# Environment of the embedded default: SQLite metadata DB, local filesystem, local backend.
# Source it (`source scripts/env.sh`) to use the airflow CLI on this checkout by hand.
NIGHTSHARD_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NIGHTSHARD_REPO
export NIGHTSHARD_HOME="${NIGHTSHARD_HOME:-$NIGHTSHARD_REPO/var}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$NIGHTSHARD_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$NIGHTSHARD_REPO/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$NIGHTSHARD_REPO/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export PYTHONPATH="$NIGHTSHARD_REPO/plugins${PYTHONPATH:+:$PYTHONPATH}"
# Model weights come from installed packages; never reach for a hub at run time.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PATH="$NIGHTSHARD_REPO/.venv/bin:$NIGHTSHARD_REPO/tools/bin:$PATH"
