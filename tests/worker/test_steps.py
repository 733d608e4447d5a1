"""Steps: small row groups scored together, committed together, and traced back to their row group."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    FEATURES,
    make_spec,
    output_ids,
    progress_record,
    read_result,
    run_worker,
    save_spec,
    start_worker,
    tabular_table,
    write_parquet,
)

from nightshard_worker.checkpoint import read_chunk
from nightshard_worker.contract import EXIT_OK, ModelSpec
from nightshard_worker.output_files import merge_chunks
from nightshard_worker.reader import Unit, plan_steps


def units(row_counts: list[int], types: list[tuple[str, ...]] | None = None) -> list[Unit]:
    types = types or [("int64", "double")] * len(row_counts)
    return [Unit(index=i, source_file=f"file-{i // 3}", row_group=i % 3, rows=rows, column_types=types[i])
            for i, rows in enumerate(row_counts)]


@pytest.mark.parametrize("row_counts,min_rows,expected", [
    ([100] * 7, 250, [[0, 1, 2], [3, 4, 5], [6]]),  # grouped up to the minimum, the rest last
    ([100, 500, 100, 100], 250, [[0, 1], [2, 3]]),  # a big row group closes a step, never splits
    ([600, 600], 250, [[0], [1]]),  # row groups at the minimum stay alone
    ([100] * 3, 1, [[0], [1], [2]]),  # step_batches 1 with tiny batches: one row group a step
    ([], 250, []),
])
def test_steps_cover_every_unit_once_in_order(row_counts, min_rows, expected):
    steps = plan_steps(units(row_counts), min_rows)
    assert [[unit.index for unit in step.units] for step in steps] == expected


def test_units_of_different_column_types_never_share_a_step():
    types = [("int64", "double")] * 2 + [("int64", "float")] * 2
    steps = plan_steps(units([10, 10, 10, 10], types), min_rows=1000)
    assert [[unit.index for unit in step.units] for step in steps] == [[0, 1], [2, 3]]


def test_step_where_names_file_and_row_groups():
    one_file, two_files = plan_steps(units([10, 10]), 1000)[0], plan_steps(units([10] * 5), 1000)[0]
    assert one_file.where == "input file-0 row groups 0-1"
    assert two_files.where == "inputs file-0 row group 0 to file-1 row group 1"
    assert plan_steps(units([10]), 1)[0].where == "input file-0 row group 0"


def with_nan_every(table: pa.Table, every: int, column: str = "f2") -> pa.Table:
    values = table.column(column).to_numpy().copy()
    values[::every] = np.nan
    position = table.schema.get_field_index(column)
    return table.set_column(position, column, pa.array(values, table.schema.field(column).type))


def test_quarantine_names_each_bad_rows_own_file_row_group_and_row_across_coalesced_steps(tmp_path, tabular_artifact):
    first = with_nan_every(tabular_table(700), 7)
    # The second file stores float32 features: a step never mixes it with the first file's doubles.
    second = with_nan_every(tabular_table(500, start_id=700, seed=1), 5)
    second = pa.table({"id": second.column("id"),
                       **{name: second.column(name).cast(pa.float32()) for name in FEATURES}})
    inputs = [write_parquet(tmp_path / "a.parquet", first, 100), write_parquet(tmp_path / "b.parquet", second, 60)]
    model = ModelSpec(handler="tabular", version="1", artifact=str(tabular_artifact),
                      options={"feature_columns": FEATURES})
    spec = make_spec(tmp_path, inputs, model, batch_size=64)  # 4 batches: steps of 300 rows and more

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    output = pq.read_table(spec.output_path)
    expected_good = [i for i in range(700) if i % 7] + [700 + i for i in range(500) if i % 5]
    assert output.column("id").to_pylist() == expected_good  # input order across steps and files
    quarantine = pq.read_table(spec.quarantine_path).to_pylist()
    expected_bad = ([("a.parquet", i // 100, i % 100, i) for i in range(0, 700, 7)]
                    + [("b.parquet", i // 60, i % 60, 700 + i) for i in range(0, 500, 5)])
    assert [(row["source_file"].rsplit("/", 1)[1], row["row_group"], row["row_in_group"], row["id"])
            for row in quarantine] == expected_bad
    assert read_result(spec).rows_in == 1200


@pytest.mark.parametrize("commit_every,units_per_commit", [(1, 2), (3, 4)])
def test_a_commit_covers_whole_steps_and_at_least_commit_every_row_groups(tmp_path, tabular_artifact,
                                                                          commit_every, units_per_commit):
    model = ModelSpec(handler="worker_test_handlers:SlowTabularHandler", version="1", artifact=str(tabular_artifact),
                      options={"feature_columns": FEATURES, "delay_seconds": 0.05})
    inputs = [write_parquet(tmp_path / "in.parquet", tabular_table(1200), 50)]  # 24 row groups
    # batch 25 x step_batches 4 = 100 rows: a step is two 50-row groups
    spec = make_spec(tmp_path, inputs, model, batch_size=25, commit_every_row_groups=commit_every,
                     commit_interval_seconds=0.0)
    process = start_worker(save_spec(spec, tmp_path))
    last_record = None
    while process.poll() is None:
        last_record = progress_record(spec) or last_record
        time.sleep(0.01)

    assert process.returncode == EXIT_OK, process.stdout.read()
    chunks = [(chunk["first_unit"], chunk["end_unit"]) for chunk in last_record["chunks"]]
    assert chunks[0][0] == 0 and all(end == nxt for (_, end), (nxt, _) in zip(chunks, chunks[1:]))
    assert all(end - first == units_per_commit for first, end in chunks)
    assert output_ids(spec) == list(range(1200))


def test_merge_reads_arrow_chunks_and_parquet_chunks_of_older_workers(tmp_path):
    schema = pa.schema([("id", pa.int64()), ("score", pa.float32())])
    older = tmp_path / "output-000000-000001.parquet"
    pq.write_table(pa.table({"id": [0, 1], "score": pa.array([0.1, 0.2], pa.float32())}), older)
    newer = tmp_path / "output-000001-000002.arrow"
    table = pa.table({"id": [2, 3], "score": pa.array([0.3, 0.4], pa.float32())})
    with pa.ipc.new_file(str(newer), schema) as writer:
        writer.write_table(table)

    size, digest = merge_chunks([str(older), str(newer)], schema, str(tmp_path / "part.parquet"))

    assert read_chunk(str(newer)).equals(table)
    merged = pq.read_table(tmp_path / "part.parquet")
    assert merged.column("id").to_pylist() == [0, 1, 2, 3] and size > 0 and len(digest) == 64
