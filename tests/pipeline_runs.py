"""Helpers for end-to-end tests: demo data at test size, a DAG run through dag.test(), and readers
of what a run published."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "nightshard_pipelines.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run_pipeline(dag_id: str, ds: str, **conf: Any):
    """One DAG run for partition `ds` via dag.test(); returns the DagRun."""
    dag = load_dag(dag_id)
    logical_date = dt.datetime.fromisoformat(ds).replace(hour=3, tzinfo=dt.UTC)
    return dag.test(logical_date=logical_date, run_conf=conf or None)


def task_states(dag_run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def published_partition(home: Path, pipeline: str, model_version: str, ds: str) -> Path:
    return home / "predictions" / pipeline / f"model_version={model_version}" / f"ds={ds}"


def read_manifest(partition: Path) -> dict[str, Any]:
    return json.loads((partition / "_manifest.json").read_text())


def ids_in(files: list[Path], id_column: str) -> list[Any]:
    ids: list[Any] = []
    for path in files:
        ids.extend(pq.read_table(path, columns=[id_column]).column(id_column).to_pylist())
    return ids


def input_ids(home: Path, table: str, ds: str, id_column: str) -> list[Any]:
    folder = home / "data" / "features" / table / f"ds={ds}"
    return ids_in(sorted(folder.glob("*.parquet")), id_column)


def outbox_messages(home: Path, kind: str) -> list[dict[str, Any]]:
    folder = home / "outbox"
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"*-{kind}-*.json"))]
