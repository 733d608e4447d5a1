"""The upstream partition late (the run waits deferred, then scores) and never (a clear timeout),
through the real DAG with dag.test(), which runs the deferred trigger inline as the triggerer would."""

from __future__ import annotations

import threading
import time

import pytest
import yaml
from nightshard_dev import demo
from pipeline_runs import REPO, published_partition, run_pipeline, task_states

DS = "2026-11-22"

pytestmark = pytest.mark.slow


@pytest.fixture
def impatient_pipeline(nightshard_home, airflow_db, tmp_path, monkeypatch):
    """tabular_risk with a wait of seconds instead of hours."""
    config = yaml.safe_load((REPO / "dags" / "pipelines" / "tabular_risk.yaml").read_text())
    config["name"] = "impatient_risk"
    config["retries"] = 0
    config["input"].update(wait_timeout_seconds=20, poke_interval_seconds=0.5)
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "impatient_risk.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("NIGHTSHARD_PIPELINES_DIR", str(pipelines))
    demo.train_risk_model(nightshard_home / "models", rows=2000, epochs=3)
    return nightshard_home


def test_a_late_partition_is_waited_for_then_scored(impatient_pipeline):
    home = impatient_pipeline

    def upstream_finishes_late():
        time.sleep(3)
        demo.make_risk_partition(home / "data", DS, rows=2000, files=2, row_group_rows=500)

    late = threading.Thread(target=upstream_finishes_late)
    late.start()
    dag_run = run_pipeline("nightshard_impatient_risk", DS, shard_rows=1000)
    late.join()
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert (published_partition(home, "impatient_risk", "v1", DS) / "_SUCCESS").exists()


def test_a_partition_that_never_comes_fails_wait_with_a_clear_message(impatient_pipeline):
    home = impatient_pipeline
    dag_run = run_pipeline("nightshard_impatient_risk", DS, shard_rows=1000)
    states = task_states(dag_run)
    assert states["wait"] == ["failed"] and states["publish"] == ["upstream_failed"], states
    assert not published_partition(home, "impatient_risk", "v1", DS).exists()
    alerts = sorted((home / "outbox").glob("*-alert-*-wait-*.json"))
    assert alerts, "no on-call alert for the wait timeout"
    alert = yaml.safe_load(alerts[-1].read_text())
    assert f"ds={DS}/_SUCCESS did not appear within 0:00:20" in alert["cause"]
    assert alert["next_step"].startswith("check the upstream job that writes this partition")
