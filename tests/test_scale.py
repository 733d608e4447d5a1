"""Planning at scale: bounded concurrency, shards that fit the orchestrator, the plan document out of
XCom, and uniqueness checked one hash bucket at a time from the workers' id indexes."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshard import storage
from nightshard.planning.plan_document import load_plan, write_plan
from nightshard.planning.sharding import (
    FileFooter,
    PlanError,
    cut_shards,
    id_index_buckets,
    read_footers,
    size_shards,
    startup_share,
    startup_share_line,
)
from nightshard.validation.id_check import check_unique_ids
from nightshard_worker.contract import ModelSpec, RuntimeSpec, ShardSpec
from nightshard_worker.id_index import bucket_of, write_index


def test_map_bounded_keeps_order_and_never_exceeds_its_concurrency():
    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow_square(value: int) -> int:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.002 * (value % 3))
        with lock:
            in_flight -= 1
        return value * value

    assert list(storage.map_bounded(slow_square, range(100), concurrency=5)) == [v * v for v in range(100)]
    assert 1 < peak <= 5


def test_map_bounded_takes_inputs_only_as_slots_free_up_and_reraises():
    taken = []

    def inputs():
        for value in range(1000):
            taken.append(value)
            yield value

    def fail_on_three(value: int) -> int:
        if value == 3:
            raise ValueError("three")
        return value

    results = storage.map_bounded(fail_on_three, inputs(), concurrency=4)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(results)
    assert len(taken) <= 8  # a bounded window, never the whole input


# (input rows, asked rows per shard, max_map_length) -> (rows per shard used, grown)
SIZING = [
    (1_000_000_000, 100_000, 1024, 976_563, True),
    (1_000_000, 100_000, 1024, 100_000, False),
    (102_400_000, 100_000, 1024, 100_000, False),  # exactly at the limit: as asked
    (102_400_001, 100_000, 1024, 100_001, True),
    (10, 1, 4, 3, True),
]


@pytest.mark.parametrize(("rows", "asked", "limit", "used", "grown"), SIZING)
def test_shards_grow_only_as_far_as_max_map_length_needs(rows, asked, limit, used, grown):
    sizing = size_shards(rows, asked, limit)
    assert (sizing.shard_rows, sizing.grown) == (used, grown)
    assert -(-rows // sizing.shard_rows) <= limit
    assert ("max_map_length" in sizing.describe()) and (("grow" in sizing.describe()) == grown)


def test_a_billion_row_partition_plans_into_at_most_max_map_length_shards():
    """10,000 files x 10 row groups x 10,000 rows, footers only (the issue's partition)."""
    footers = [FileFooter(f"/p/part-{i:05d}.parquet", 1, (10_000,) * 10, {"id": "int64"}) for i in range(10_000)]
    sizing = size_shards(sum(f.rows for f in footers), 100_000, 1024)
    shards = cut_shards(footers, sizing.shard_rows, max_shards=sizing.max_mapped_tasks)
    assert len(shards) <= 1024
    assert sum(s.rows for s in shards) == 1_000_000_000
    assert max(s.rows for s in shards) - min(s.rows for s in shards) <= 10_000  # one row group apart
    assert "10000 shards, above [core] max_map_length 1024" in sizing.describe()


def test_max_map_length_below_one_is_refused():
    with pytest.raises(PlanError, match="max_map_length is 0"):
        size_shards(10, 1, 0)


def test_plan_log_says_what_share_of_gpu_time_start_up_costs():
    assert startup_share(60, 600_000, 1000) == pytest.approx(60 / 660)
    line = startup_share_line(60, 600_000, 1000.0)
    assert line.startswith("start-up: 9.1% of GPU time") and "raise" not in line
    slow = startup_share_line(60, 10_000, 1000.0)
    assert "85.7%" in slow and "raise sharding.target_rows to >= 540000" in slow
    assert "unknown" in startup_share_line(60, 10_000, None)


def test_plan_document_lives_in_staging_and_xcom_carries_a_pointer(tmp_path):
    document = {"pipeline": "p", "ds": "2026-11-20", "model_version": "v1", "run_id": "r", "dry_run": False,
                "staging": str(tmp_path / "staging"), "input_files": [{"path": "x"}] * 1000}
    pointer = write_plan(document)
    assert pointer["plan_uri"] == str(tmp_path / "staging" / "_plan.json")
    assert "input_files" not in pointer and len(repr(pointer)) < 300
    assert load_plan(pointer) == document
    dry = write_plan({**document, "dry_run": True, "staging": str(tmp_path / "other")})
    assert dry["plan_uri"] is None and not (tmp_path / "other").exists()
    storage.remove(str(tmp_path / "staging"), recursive=True)
    with pytest.raises(FileNotFoundError, match="clear this run from plan"):
        load_plan(pointer)


def test_equal_ids_share_a_bucket_and_buckets_are_balanced():
    ids = pa.array(range(100_000), pa.int64())
    buckets = bucket_of(ids, 8)
    counts = [int((buckets == b).sum()) for b in range(8)]
    assert min(counts) > 11_000  # 12,500 each when even
    assert list(bucket_of(pa.array([5, 5, 7, 5]), 8)[[0, 1, 3]]) == [bucket_of(pa.array([5]), 8)[0]] * 3
    texts = bucket_of(pa.array(["a", "b", "a", None]), 4)
    assert texts[0] == texts[2] and texts[3] == 0


def _write(folder, name, ids, row_group_size):
    pq.write_table(pa.table({"id": ids, "x": [0.0] * len(ids)}), folder / name, row_group_size=row_group_size)


def _index_shards(partition, staging, shard_rows, buckets):
    """Cut the partition as plan does, and index each shard's ids as its worker does."""
    shards = cut_shards(read_footers(str(partition)), shard_rows)
    shard_ids = []
    for shard in shards:
        spec = ShardSpec(pipeline="p", ds="d", run_id="r", shard_id=f"s{shard.index}", shard_index=shard.index,
                         shard_count=len(shards), inputs=shard.slices, input_rows=shard.rows, id_column="id",
                         model=ModelSpec(handler="tabular", version="v1"), runtime=RuntimeSpec(), output_path="", quarantine_path="",
                         result_path="", checkpoint_dir="", id_index_dir=str(staging / "_ids"),
                         id_index_buckets=buckets)
        write_index(spec)
        shard_ids.append(spec.shard_id)
    return shard_ids


def test_unique_ids_pass_holding_one_bucket_at_a_time(tmp_path):
    partition = tmp_path / "in"
    partition.mkdir()
    _write(partition, "a.parquet", list(range(0, 4000)), 500)
    _write(partition, "b.parquet", list(range(4000, 8000)), 500)
    shard_ids = _index_shards(partition, tmp_path, 2000, buckets=8)
    check = check_unique_ids(str(tmp_path / "_ids"), shard_ids, buckets=8, id_column="id")
    assert check.passed, check.detail
    held = int(check.detail.split("at most ")[1].split()[0])
    assert held < 8000 / 4  # about a bucket's share (8000 / 8), never the whole column


def test_duplicates_across_shards_files_and_inside_one_row_group_are_named(tmp_path):
    partition = tmp_path / "in"
    partition.mkdir()
    first = list(range(0, 4000))
    first[3999] = 17  # across shards of one file: 17 is in row group 0 (shard 0) and row group 7 (shard 1)
    first[2] = first[1] = 1  # inside one row group: rows 1 and 2 of row group 0
    second = list(range(4000, 8000))
    second[10] = 100  # across files: a.parquet row 100 and b.parquet row 10
    _write(partition, "a.parquet", first, 500)
    _write(partition, "b.parquet", second, 500)
    shard_ids = _index_shards(partition, tmp_path, 2000, buckets=2)  # a.parquet holds two shards
    check = check_unique_ids(str(tmp_path / "_ids"), shard_ids, buckets=2, id_column="id")
    assert not check.passed
    detail = check.detail
    assert "column 'id' has 3 duplicated ids" in detail and "deduplicate upstream" in detail
    assert f"id 17 in shard s0 ({partition}/a.parquet row group 0 row 17), shard s1 ({partition}/a.parquet " \
           "row group 7 row 499)" in detail
    assert f"id 1 in shard s0 ({partition}/a.parquet row group 0 row 1), shard s0 ({partition}/a.parquet " \
           "row group 0 row 2)" in detail
    assert f"{partition}/b.parquet row group 0 row 10" in detail and f"{partition}/a.parquet row group 0 row 100" \
        in detail


def test_null_and_string_ids_are_checked_and_a_missing_index_names_the_shard(tmp_path):
    partition = tmp_path / "in"
    partition.mkdir()
    pq.write_table(pa.table({"id": pa.array(["a", None, "c", "a"])}), partition / "a.parquet", row_group_size=2)
    shard_ids = _index_shards(partition, tmp_path, 2, buckets=3)
    check = check_unique_ids(str(tmp_path / "_ids"), shard_ids, buckets=3, id_column="id")
    assert not check.passed and "1 duplicated ids and 1 null ids" in check.detail
    assert "id 'a' in shard s0" in check.detail and "id null in shard s0" in check.detail
    missing = check_unique_ids(str(tmp_path / "_ids"), [*shard_ids, "s9"], buckets=3, id_column="id")
    assert not missing.passed and "shard s9 wrote no id index" in missing.detail


def test_id_index_buckets_bound_the_ids_one_process_holds():
    assert id_index_buckets(1) == 1
    assert id_index_buckets(1_000_000_000) == 200


PIPELINE = """\
name: scale_unit
owner: tests
schedule: null
start_date: "2026-11-01"
input:
  uri: "{root}/input"
  id_column: id
model:
  handler: tabular
  version: v1
  options:
    feature_columns: [x]
output:
  uri: "{root}/output"
"""


def _plan(tmp_path, *, max_mapped_tasks, reprocess="missing"):
    from nightshard.config.pipeline_config import load_pipeline_config
    from nightshard.config.run_parameters import RunParameters
    from nightshard.planning.plan_task import plan_run

    config_path = tmp_path / "scale_unit.yaml"
    config_path.write_text(PIPELINE.format(root=tmp_path))
    run = RunParameters(ds="2026-11-20", model_version="v1", shard_rows=100, reprocess=reprocess, dry_run=False)
    return plan_run(load_pipeline_config(config_path), run, run_id="r1", max_mapped_tasks=max_mapped_tasks)


def test_plan_grows_shards_to_max_map_length_and_says_why_and_what_start_up_costs(tmp_path, monkeypatch):
    from nightshard.planning import plan_task

    logged = []  # recorded at the logger: where Airflow's logging setup sends it depends on the session
    monkeypatch.setattr(plan_task.log, "info", lambda message, *args: logged.append(message % args))
    partition = tmp_path / "input" / "ds=2026-11-20"
    partition.mkdir(parents=True)
    for index in range(3):
        _write(partition, f"part-{index}.parquet", list(range(index * 1000, (index + 1) * 1000)), 100)
    document = _plan(tmp_path, max_mapped_tasks=4)
    assert len(document["shards"]) == 4 and document["sharding"] == {
        "asked_rows": 100, "shard_rows": 750, "max_mapped_tasks": 4, "grown": True}
    plan_log = "\n".join(logged)
    assert "100 rows per shard would cut 30 shards, above [core] max_map_length 4" in plan_log
    assert "start-up: sharding.startup_seconds 60 s per shard" in plan_log
    assert document["id_index_buckets"] == 1
    spec = ShardSpec.from_json((tmp_path / "output" / "scale_unit" / "model_version=v1" / "_staging"
                                / "ds=2026-11-20" / "_specs" / f"part-{document['shards'][0]['shard_id']}.json")
                               .read_text())
    assert spec.id_index_buckets == 1 and spec.id_index_dir.endswith("_staging/ds=2026-11-20/_ids")


def test_a_committed_shard_counts_only_with_its_id_index(tmp_path):
    from nightshard_worker.contract import STATUS_SUCCEEDED, ShardResult

    partition = tmp_path / "input" / "ds=2026-11-20"
    partition.mkdir(parents=True)
    _write(partition, "part-0.parquet", list(range(400)), 100)
    first = _plan(tmp_path, max_mapped_tasks=1024)
    ticket = first["shards"][0]
    spec = ShardSpec.from_json(open(ticket["spec_uri"]).read())
    storage.write_text_atomic(spec.output_path, "scored")
    storage.write_text_atomic(spec.result_path, ShardResult(shard_id=spec.shard_id, status=STATUS_SUCCEEDED,
                                                            spec_fingerprint=spec.fingerprint()).to_json())
    assert [t["already_committed"] for t in _plan(tmp_path, max_mapped_tasks=1024)["shards"]] == [
        False] * 4  # no id index yet: scored before the check, so scored again
    write_index(spec)
    assert [t["already_committed"] for t in _plan(tmp_path, max_mapped_tasks=1024)["shards"]] == [
        True, False, False, False]


def test_infer_runs_in_the_configured_pool_with_the_configured_shards_in_flight(tmp_path):
    from nightshard.config.pipeline_config import load_pipeline_config
    from nightshard.dag_factory import build_pipeline_dag

    config_path = tmp_path / "scale_unit.yaml"
    config_path.write_text(PIPELINE.format(root=tmp_path) + "backend:\n  infer_pool: gpu_l4\n  max_active_shards: 7\n")
    infer = build_pipeline_dag(load_pipeline_config(config_path)).get_task("infer")
    assert (infer.pool, infer.max_active_tis_per_dagrun) == ("gpu_l4", 7)
    config_path.write_text(PIPELINE.format(root=tmp_path))
    infer = build_pipeline_dag(load_pipeline_config(config_path)).get_task("infer")
    assert (infer.pool, infer.max_active_tis_per_dagrun) == ("default_pool", None)
