"""What plan and the atomic writes ask of GCS, counted at a real GCS API on loopback (the emulator's
request log): one request per object written, one ranged read per footer, no request per shard beyond
its spec. Counts, not timings: bench/plan_scale.py measures the seconds."""

from __future__ import annotations

import tempfile

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gcs_emulator import gcs_emulator

from bench.emulator import request_counts
from nightshard_worker import storage as worker_storage
from nightshard_worker.contract import ShardSpec

BUCKET = "nightshard-requests"
DS = "2026-11-20"

PIPELINE = """\
name: gcs_requests
owner: tests
schedule: null
start_date: "2026-11-01"
input:
  uri: "gs://{bucket}/input"
  id_column: id
model:
  handler: tabular
  version: v1
  options:
    feature_columns: [x]
output:
  uri: "gs://{bucket}/output"
"""


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    log_path = tmp_path / "gcs-emulator.log"
    with gcs_emulator(log_path) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        fs = fsspec.filesystem("gs", token="anon")
        fs.mkdir(BUCKET)
        yield fs, log_path


def requests_during(log_path, action):
    offset = log_path.stat().st_size
    action()
    return request_counts(log_path, offset)


def test_an_object_store_write_is_one_upload_and_stages_no_temp_file(gcs, monkeypatch):
    fs, log_path = gcs
    staged = []
    make_temp_file = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: staged.append(a or k) or make_temp_file(*a, **k))
    uri = f"gs://{BUCKET}/staging/_specs/part-0.json"
    document = b'{"shard": 0}\n' * 100

    counts = requests_during(log_path, lambda: worker_storage.write_bytes_atomic(uri, document))

    assert counts == {"POST upload": 1}
    assert fs.cat_file(f"{BUCKET}/staging/_specs/part-0.json") == document
    assert staged == []  # the bytes are in memory already: staging them on disk cost more than the put


def test_plan_on_gcs_reads_each_footer_once_and_writes_each_spec_once(gcs, tmp_path):
    from nightshard.config.pipeline_config import load_pipeline_config
    from nightshard.config.run_parameters import RunParameters
    from nightshard.planning.plan_task import plan_run

    fs, log_path = gcs
    files = 5
    for index in range(files):
        local = tmp_path / f"part-{index}.parquet"
        ids = list(range(index * 400, (index + 1) * 400))
        pq.write_table(pa.table({"id": ids, "x": [0.5] * len(ids)}), local, row_group_size=100)
        fs.put_file(str(local), f"{BUCKET}/input/ds={DS}/part-{index}.parquet")
    fs.pipe_file(f"{BUCKET}/input/ds={DS}/_SUCCESS", b"")
    config_path = tmp_path / "gcs_requests.yaml"
    config_path.write_text(PIPELINE.format(bucket=BUCKET))
    run = RunParameters(ds=DS, model_version="v1", shard_rows=200, reprocess="missing", dry_run=False)
    planned = {}

    counts = requests_during(log_path, lambda: planned.update(
        plan_run(load_pipeline_config(config_path), run, run_id="r1", max_mapped_tasks=1024)))

    shards = planned["shards"]
    assert len(shards) == 10
    assert counts["GET download"] == files  # one ranged tail read per file, no stat
    assert counts["POST upload"] == len(shards) + 1  # each spec, and the staging owner file
    # listings and existence checks are per plan, not per shard or per file
    assert counts.get("GET list", 0) + counts.get("GET metadata", 0) < 20
    spec = ShardSpec.from_json(fs.cat_file(shards[3]["spec_uri"]).decode())
    assert (spec.shard_id, spec.input_rows) == (shards[3]["shard_id"], 200)
