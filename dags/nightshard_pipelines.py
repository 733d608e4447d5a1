"""
### nightshard pipelines

One Airflow DAG per pipeline config in `dags/pipelines/*.yaml` (or `$NIGHTSHARD_PIPELINES_DIR`), each:

    wait >> plan >> infer (one task per shard) >> validate >> cost >> publish >> notify

It waits for the upstream partition's `_SUCCESS`, cuts it into row-balanced shards, scores every row
with the pipeline's PyTorch model, validates that rows in = rows out + quarantined, publishes the
partition (`_manifest.json`, then `_SUCCESS`), prices the run and announces it. Each DAG's own docs
say where it reads and writes. A broken config shows up as the import error of
`nightshard_config_check.py`, never here.
"""

from nightshard.dag_factory import pipeline_dags

globals().update(pipeline_dags())
