"""The DAG folder: no import errors, every DAG configured on purpose, parsing stays cheap, and a
broken pipeline config is one import error that spares the other pipelines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("torch", "pandas", "pyarrow", "transformers", "numpy")


def dag_bag(dags_folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dags_folder))


def test_dag_folder_imports_without_errors():
    bag = dag_bag(REPO / "dags")
    assert bag.import_errors == {}
    assert {"nightshard_tabular_risk", "nightshard_text_embeddings"} <= set(bag.dag_ids)


@pytest.mark.parametrize("dag_id", ["nightshard_tabular_risk", "nightshard_text_embeddings"])
def test_every_pipeline_dag_is_configured_on_purpose(dag_id):
    dag = dag_bag(REPO / "dags").dags[dag_id]
    assert dag.tags and "nightshard" in dag.tags
    assert dag.max_active_runs == 1
    assert dag.doc_md and "Waits for" in dag.doc_md
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", task.task_id
        assert task.retries is not None
        assert task.on_failure_callback, task.task_id
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait", "plan", "infer", "validate", "cost", "publish", "notify"]
    assert set(dag.params) == {"ds", "model_version", "shard_rows", "reprocess", "dry_run"}


def test_every_dag_in_the_folder_has_tags_owner_and_retries():
    bag = dag_bag(REPO / "dags")
    for dag in bag.dags.values():
        assert dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.owner, (dag.dag_id, task.task_id)
            assert task.retries is not None, (dag.dag_id, task.task_id)


def test_parsing_the_dag_files_imports_no_heavy_module():
    probe = f"""
import json, runpy, sys
for name in ("nightshard_pipelines.py", "nightshard_config_check.py"):
    runpy.run_path({str(REPO / 'dags')!r} + "/" + name)
print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))
"""
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ}).stdout
    assert json.loads(output.strip().splitlines()[-1]) == []


def test_broken_config_is_one_import_error_naming_file_field_and_fix(tmp_path, monkeypatch):
    pipelines = tmp_path / "pipelines"
    shutil.copytree(REPO / "dags" / "pipelines", pipelines)
    broken = yaml.safe_load((pipelines / "tabular_risk.yaml").read_text())
    broken["name"] = "broken_scores"
    broken["sharding"] = {"target_rows": "lots"}
    (pipelines / "broken_scores.yaml").write_text(yaml.safe_dump(broken))
    probe = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO / 'dags')!r})
print(json.dumps({{"dags": sorted(bag.dag_ids), "errors": bag.import_errors}}))
"""
    environment = {**os.environ, "NIGHTSHARD_PIPELINES_DIR": str(pipelines)}
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env=environment).stdout
    report = json.loads(output.strip().splitlines()[-1])
    assert {"nightshard_tabular_risk", "nightshard_text_embeddings"} <= set(report["dags"])
    assert "nightshard_broken_scores" not in report["dags"]
    [(failed_file, message)] = report["errors"].items()
    assert failed_file.endswith("nightshard_config_check.py")
    assert "broken_scores.yaml" in message
    assert "field 'sharding.target_rows'" in message
    assert "Fix:" in message


def test_plugin_loader_does_not_import_the_library_as_plugins():
    """Airflow imports every .py under plugins/ by file stem; .airflowignore keeps nightshard out, and
    the one plugin module (the task-log listener) is all it finds."""
    from airflow._shared.module_loading import find_path_from_directory

    found = list(find_path_from_directory(str(REPO / "plugins"), ".airflowignore", "glob"))
    assert found == [str(REPO / "plugins" / "nightshard_task_logs.py")]


def test_backfill_over_three_dates_plans_three_partition_runs(tmp_path, airflow_db):
    """`airflow backfill create` maps a date range onto exactly those partition dates."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
    output = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "nightshard_tabular_risk", "--from-date", "2026-11-20",
         "--to-date", "2026-11-22", "--dry-run"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    planned = [line.split("|")[1].strip() for line in output.splitlines() if line.startswith("| 2026")]
    assert planned == ["2026-11-20 00:00:00+00:00", "2026-11-21 00:00:00+00:00", "2026-11-22 00:00:00+00:00"]
