"""Two nightly runs through the real DAG: the second run's plan estimates from the first, publish
records an asset event with ds / model_version / manifest_uri, writes run_report.html with the
previous run overlaid, and pushes the run metrics. Runs with the real worker when
nightshard_worker.cli is installed, else with `stand_in_worker.py` (no model) in its place."""

from __future__ import annotations

import importlib.util
import urllib.request
from pathlib import Path

import pytest
import yaml
from dag_runner import runs_with_one_conf
from nightshard_dev import demo
from pipeline_runs import published_partition, read_manifest

from nightshard.reporting.report_page import CHART_NAMES
from nightshard.reporting.run_metrics import exported_metric_names

REPO = Path(__file__).resolve().parents[2]
FIRST_DS, SECOND_DS = "2026-11-21", "2026-11-22"

STAND_IN_WORKER = Path(__file__).with_name("stand_in_worker.py")
REAL_WORKER_MISSING = importlib.util.find_spec("nightshard_worker.cli") is None

pytestmark = pytest.mark.slow


@pytest.fixture
def two_days(nightshard_home, airflow_db, pushgateway, monkeypatch, tmp_path):
    if not REAL_WORKER_MISSING:
        demo.train_risk_model(nightshard_home / "models", rows=2000, epochs=3)
    else:
        artifact = nightshard_home / "models" / "tabular_risk" / "v1" / "model.pt"
        artifact.parent.mkdir(parents=True)
        artifact.write_bytes(b"the stand-in worker loads no model")
    for ds in (FIRST_DS, SECOND_DS):
        demo.make_risk_partition(nightshard_home / "data", ds, rows=3000, files=2, row_group_rows=500)
    # the shipped tabular_risk.yaml pushes nowhere: run a copy that names the test's gateway
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    document = yaml.safe_load((REPO / "dags" / "pipelines" / "tabular_risk.yaml").read_text())
    document["runtime"]["pushgateway_url"] = pushgateway
    (pipelines / "tabular_risk.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.setenv("NIGHTSHARD_PIPELINES_DIR", str(pipelines))
    return nightshard_home, (str(STAND_IN_WORKER) if REAL_WORKER_MISSING else None)


def asset_events(run_id: str) -> list:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [(event.source_task_id, dict(event.extra))
                for event in session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id))]


def test_second_run_estimates_reports_drift_and_records_the_asset_event(two_days, pushgateway):
    home, worker = two_days
    runs = dict(zip((FIRST_DS, SECOND_DS), runs_with_one_conf(
        "nightshard_tabular_risk", [FIRST_DS, SECOND_DS], {"shard_rows": 1500}, worker)))
    for states, _, output in runs.values():
        assert set(states["publish"]) == {"success"}, (states, output[-3000:])
    assert "no estimate: first run" in runs[FIRST_DS][2]
    _, second_run_id, output = runs[SECOND_DS]
    assert "estimate from 1 earlier run(s)" in output

    partition = published_partition(home, "tabular_risk", "v1", SECOND_DS)
    [(task, extra)] = asset_events(second_run_id)
    assert task == "publish"
    assert extra["ds"] == SECOND_DS and extra["model_version"] == "v1"
    assert extra["manifest_uri"] == str(partition / "_manifest.json")
    assert read_manifest(partition)["ds"] == SECOND_DS

    report = (home / "predictions" / "tabular_risk" / "_reports" / "model_version=v1" / f"ds={SECOND_DS}"
              / "run_report.html")
    assert f"run report: {report}" in output
    page = report.read_text()
    assert all(f'data-chart="{name}"' in page for name in CHART_NAMES)
    assert f"vs ds={FIRST_DS}" in page and 'class="mark previous"' in page

    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    for ds in (FIRST_DS, SECOND_DS):
        assert f'nightshard_run_last_success_timestamp_seconds{{ds="{ds}",' in metrics
    pushed = {line.split("{")[0].split(" ")[0] for line in metrics.splitlines() if line.startswith("nightshard_")}
    pushed = {name for name in pushed if not name.endswith("_created")}  # prometheus_client's counter birth times
    assert pushed <= exported_metric_names(), pushed - exported_metric_names()  # the dashboard can query them all
    if not REAL_WORKER_MISSING:
        assert {"nightshard_worker_rows_total", "nightshard_worker_batch_seconds_bucket"} <= pushed
