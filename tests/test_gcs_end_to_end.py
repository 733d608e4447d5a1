"""The same pipeline with its input and output on gs://, against a real GCS API on loopback.

Input partition, marker, staging, worker output and the published partition all live in the
emulator's bucket: the sensor, the planner, the worker subprocess and the object-store publish path
run exactly as on GKE, minus the cluster.
"""

from __future__ import annotations

import threading
import time

import fsspec
import pyarrow.parquet as pq
import pytest
import yaml
from gcs_emulator import gcs_emulator
from nightshard_dev import demo
from pipeline_runs import REPO, run_pipeline, task_states
from test_partition_wait import first_event

from nightshard.upstream.partition_trigger import PartitionMarkerTrigger

DS = "2026-11-22"
BUCKET = "nightshard-test"

pytestmark = pytest.mark.slow


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    with gcs_emulator(tmp_path / "gcs-emulator.log") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        fs = fsspec.filesystem("gs", token="anon")
        fs.mkdir(BUCKET)
        yield fs


def test_marker_trigger_sees_a_late_marker_on_gcs(gcs):
    marker = f"gs://{BUCKET}/late/ds={DS}/_SUCCESS"

    def upstream_finishes_late():
        time.sleep(0.5)
        gcs.pipe(marker, b"")

    threading.Thread(target=upstream_finishes_late).start()
    event = first_event(PartitionMarkerTrigger(marker_uri=marker, poke_interval=0.2, deadline=time.time() + 30))
    assert event["status"] == "ready"


def test_tabular_pipeline_reads_and_publishes_on_gcs(gcs, nightshard_home, airflow_db, tmp_path, monkeypatch):
    demo.train_risk_model(nightshard_home / "models", rows=2000, epochs=3)
    local = demo.make_risk_partition(nightshard_home / "data", DS, rows=3000, files=2, row_group_rows=500)
    remote = f"{BUCKET}/features/risk/ds={DS}"
    for path in sorted(local.glob("*.parquet")):
        gcs.put(str(path), f"{remote}/{path.name}")
    gcs.pipe(f"{remote}/_SUCCESS", b"")  # the marker last, as an upstream job writes it

    config = yaml.safe_load((REPO / "dags" / "pipelines" / "tabular_risk.yaml").read_text())
    config["name"] = "gcs_risk"
    config["input"]["uri"] = f"gs://{BUCKET}/features/risk"
    config["output"]["uri"] = f"gs://{BUCKET}/predictions"
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "gcs_risk.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("NIGHTSHARD_PIPELINES_DIR", str(pipelines))

    dag_run = run_pipeline("nightshard_gcs_risk", DS, shard_rows=1000)
    assert str(dag_run.state) == "success", task_states(dag_run)

    partition = f"{BUCKET}/predictions/gcs_risk/model_version=v1/ds={DS}"
    assert gcs.exists(f"{partition}/_SUCCESS")
    manifest = yaml.safe_load(gcs.cat(f"{partition}/_manifest.json"))
    ids = []
    for entry in manifest["files"] + manifest["quarantine_files"]:
        with gcs.open(f"{partition}/{entry['path']}", "rb") as handle:
            ids += pq.read_table(handle, columns=["customer_id"]).column("customer_id").to_pylist()
    expected = pq.read_table(local, columns=["customer_id"]).column("customer_id").to_pylist()
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert not gcs.exists(f"{BUCKET}/predictions/gcs_risk/model_version=v1/_staging/ds={DS}/_specs")
