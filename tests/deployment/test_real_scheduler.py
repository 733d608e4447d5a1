"""The pipeline on the real Airflow components (api-server, scheduler, dag-processor, triggerer) over
PostgreSQL, driven only through the REST API v2: a triggered run, then a three-day backfill."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hang_guard import hang_guard

from deployment.real_stack import PIPELINE_DAG_ID, REST_DATES, AirflowStack, require_worker

pytestmark = pytest.mark.slow

SHARD_ROWS = 1000
RUN_TIMEOUT_SECONDS = hang_guard(150)


def day_interval(ds: str) -> tuple[str, str]:
    """The data interval of partition `ds`: [ds 00:00, ds+1 00:00) UTC, as the DAG's schedule cuts it."""
    start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    return start.isoformat(), (start + dt.timedelta(days=1)).isoformat()


def partition(stack: AirflowStack, ds: str) -> Path:
    return stack.home / "predictions" / "tabular_risk" / "model_version=v1" / f"ds={ds}"


def assert_published(stack: AirflowStack, ds: str, run_id: str) -> dict:
    folder = partition(stack, ds)
    assert (folder / "_SUCCESS").exists(), f"{folder} has no _SUCCESS: {sorted(p.name for p in folder.glob('*'))}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    rows = manifest["rows"]
    assert manifest["ds"] == ds and manifest["run_id"] == run_id
    assert rows["input"] > 0 and rows["output"] == rows["input"] - rows["quarantined"], rows
    missing = [entry for entry in manifest["files"] if not (folder / entry["path"]).exists()]
    assert manifest["files"] and not missing, manifest["files"]
    return manifest


def unpause(stack: AirflowStack) -> None:
    stack.api("PATCH", f"/api/v2/dags/{PIPELINE_DAG_ID}", json={"is_paused": False})


def test_dry_run_through_the_scheduler_plans_and_publishes_nothing(airflow_stack: AirflowStack):
    """Scheduler, triggerer (wait defers or passes), LocalExecutor and XCom work without the worker."""
    start, end = day_interval("2026-11-21")
    run = airflow_stack.api("POST", f"/api/v2/dags/{PIPELINE_DAG_ID}/dagRuns", expect=(200,), json={
        "dag_run_id": "rest_dry_run_2026-11-21", "logical_date": start,
        "data_interval_start": start, "data_interval_end": end,
        "conf": {"ds": "2026-11-21", "shard_rows": SHARD_ROWS, "dry_run": True},
    })
    unpause(airflow_stack)
    airflow_stack.wait_for_runs({run["dag_run_id"]}, RUN_TIMEOUT_SECONDS)
    states = airflow_stack.task_states([run["dag_run_id"]])
    assert "plan[-1]=success" in states and "publish[-1]=skipped" in states, states
    assert not partition(airflow_stack, "2026-11-21").exists()


def test_triggered_run_publishes_the_partition(airflow_stack: AirflowStack):
    require_worker()
    start, end = day_interval("2026-11-22")
    run = airflow_stack.api("POST", f"/api/v2/dags/{PIPELINE_DAG_ID}/dagRuns", expect=(200,), json={
        "dag_run_id": "rest_2026-11-22", "logical_date": start,
        "data_interval_start": start, "data_interval_end": end,
        "conf": {"ds": "2026-11-22", "shard_rows": SHARD_ROWS},
    })
    unpause(airflow_stack)
    airflow_stack.wait_for_runs({run["dag_run_id"]}, RUN_TIMEOUT_SECONDS)
    assert_published(airflow_stack, "2026-11-22", run["dag_run_id"])


def test_backfill_from_the_rest_api_publishes_three_days(airflow_stack: AirflowStack):
    """Backfill dates are partition dates: 20..22 inclusive score ds 20, 21 and 22, one run after another."""
    require_worker()
    unpause(airflow_stack)
    airflow_stack.wait_for_backfills_to_complete()  # one running backfill per DAG: another test's may linger
    preview = airflow_stack.api("POST", "/api/v2/backfills/dry_run", json={
        "dag_id": PIPELINE_DAG_ID, "from_date": f"{REST_DATES[0]}T00:00:00Z", "to_date": f"{REST_DATES[-1]}T00:00:00Z",
        "reprocess_behavior": "completed",
    })
    assert [item["logical_date"][:10] for item in preview["backfills"]] == list(REST_DATES), preview
    backfill = airflow_stack.api("POST", "/api/v2/backfills", json={
        "dag_id": PIPELINE_DAG_ID,
        "from_date": f"{REST_DATES[0]}T00:00:00Z",
        "to_date": f"{REST_DATES[-1]}T00:00:00Z",
        # The 22nd may already be published by the triggered run: score it again, as an operator would.
        "reprocess_behavior": "completed",
        "max_active_runs": 1,
        "dag_run_conf": {"shard_rows": SHARD_ROWS},
    })
    runs = [run for run in airflow_stack.dag_runs() if run.get("run_type") == "backfill"
            and run["logical_date"][:10] in REST_DATES]
    assert sorted(run["logical_date"][:10] for run in runs) == list(REST_DATES), (backfill, runs)
    finished = airflow_stack.wait_for_runs({run["dag_run_id"] for run in runs}, RUN_TIMEOUT_SECONDS * len(runs))
    for run in finished.values():
        assert_published(airflow_stack, run["logical_date"][:10], run["dag_run_id"])
