"""Tabular shards end to end through the real CLI: output, quarantine, verdicts, bad input."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    FEATURES,
    make_spec,
    output_ids,
    read_result,
    run_worker,
    save_spec,
    tabular_table,
    with_runtime,
    worker_environment,
    write_parquet,
)

from nightshard_worker.contract import (
    EXIT_BAD_SPEC,
    EXIT_OK,
    EXIT_TOO_MANY_BAD_ROWS,
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    ModelSpec,
)


def tabular_model(artifact: Path) -> ModelSpec:
    return ModelSpec(handler="tabular", version="1", artifact=str(artifact), options={"feature_columns": FEATURES})


def with_bad_rows(table: pa.Table, bad_every: int) -> pa.Table:
    values = table.column("f2").to_numpy().copy()
    values[::bad_every] = np.nan
    return table.set_column(table.schema.get_field_index("f2"), "f2", pa.array(values))


def test_tabular_shard_scores_every_row_once_and_a_rerun_finds_it_done_without_torch(tmp_path, tabular_artifact):
    first = write_parquet(tmp_path / "a.parquet", tabular_table(1500), row_group_rows=400)
    second = write_parquet(tmp_path / "b.parquet", tabular_table(700, start_id=1500, seed=1), row_group_rows=300)
    spec = make_spec(tmp_path, [first, second], tabular_model(tabular_artifact))
    spec_path = save_spec(spec, tmp_path)

    completed = run_worker(spec_path)

    assert completed.returncode == EXIT_OK, completed.stdout
    assert "summary shard=0000 status=succeeded" in completed.stdout
    output = pq.read_table(spec.output_path)
    assert output.schema.names == ["id", "score"]
    assert output.schema.field("id").type == pa.int64() and output.schema.field("score").type == pa.float32()
    assert output.column("id").to_pylist() == list(range(2200))  # input order, every row once
    scores = output.column("score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    result = read_result(spec)
    assert result.status == STATUS_SUCCEEDED
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (2200, 2200, 0)
    assert result.output_bytes == Path(spec.output_path).stat().st_size and len(result.output_sha256) == 64
    assert result.output_columns == {"id": "int64", "score": "float"}
    assert sum(result.histogram.counts) == 2200 and len(result.histogram.edges) == 21
    assert set(result.stage_seconds) == {"read", "preprocess", "predict", "write"}
    assert result.device == "cpu" and result.peak_rss_bytes > 0 and result.started_at and result.finished_at
    assert not Path(spec.checkpoint_dir).exists()

    again = run_worker(spec_path)

    assert again.returncode == EXIT_OK
    assert "already succeeded" in again.stdout
    assert read_result(spec).finished_at == result.finished_at
    # A shard found done never pays for torch's import: only scoring needs it.
    probe = ("import sys; from nightshard_worker.cli import main; code = main(['run', '--spec', sys.argv[1]]); "
             "print('torch imported:', 'torch' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, str(spec_path)], capture_output=True, text=True,
                          timeout=120, env=worker_environment())
    assert done.returncode == EXIT_OK and "already succeeded" in done.stdout, done.stdout + done.stderr
    assert "torch imported: False" in done.stdout


def test_non_finite_features_are_quarantined_with_reason_and_counted(tmp_path, tabular_artifact):
    table = with_bad_rows(tabular_table(1000), bad_every=10)
    spec = make_spec(tmp_path, [write_parquet(tmp_path / "in.parquet", table, 250)], tabular_model(tabular_artifact))

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    result = read_result(spec)
    assert (result.rows_out, result.rows_quarantined) == (900, 100)
    quarantine = pq.read_table(spec.quarantine_path)
    assert quarantine.schema.names == ["id", "reason", "source_file", "row_group", "row_in_group"]
    assert quarantine.column("id").to_pylist() == list(range(0, 1000, 10))
    assert set(quarantine.column("reason").to_pylist()) == {"non-finite or null feature: f2"}
    assert quarantine.column("row_group").to_pylist()[:3] == [0, 0, 0]
    assert quarantine.column("row_in_group").to_pylist()[:3] == [0, 10, 20]
    assert sorted(output_ids(spec)) == list(range(1000))


def test_too_many_bad_rows_fails_with_count_threshold_and_quarantine_path(tmp_path, tabular_artifact):
    table = with_bad_rows(tabular_table(600), bad_every=2)
    spec = make_spec(tmp_path, [write_parquet(tmp_path / "in.parquet", table, 200)], tabular_model(tabular_artifact))
    spec = with_runtime(spec, max_bad_row_fraction=0.1)

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_TOO_MANY_BAD_ROWS, completed.stdout
    result = read_result(spec)
    assert result.status == STATUS_FAILED
    assert "300 of 600 rows quarantined" in result.error and "10.0%" in result.error
    assert spec.quarantine_path in result.error
    assert pq.read_table(spec.quarantine_path).num_rows == 300
    assert not Path(spec.output_path).exists()


def test_missing_column_exits_2_naming_file_and_column(tmp_path, tabular_artifact):
    table = tabular_table(100).drop_columns(["f3"])
    input_slice = write_parquet(tmp_path / "in.parquet", table, 50)
    spec = make_spec(tmp_path, [input_slice], tabular_model(tabular_artifact))

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_BAD_SPEC
    result = read_result(spec)
    assert result.status == STATUS_FAILED
    assert input_slice.path in result.error and "'f3'" in result.error and "numeric" in result.error
    assert "Traceback" not in completed.stdout + completed.stderr


def test_truncated_parquet_exits_2_naming_the_file(tmp_path, tabular_artifact):
    input_slice = write_parquet(tmp_path / "in.parquet", tabular_table(500), 100)
    content = Path(input_slice.path).read_bytes()
    Path(input_slice.path).write_bytes(content[: len(content) // 2])
    spec = make_spec(tmp_path, [input_slice], tabular_model(tabular_artifact))

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_BAD_SPEC
    assert input_slice.path in read_result(spec).error and "truncated or corrupt" in read_result(spec).error


def test_peak_memory_stays_flat_on_a_ten_times_larger_shard(tmp_path, tabular_artifact):
    peaks = {}
    for rows in (10_000, 100_000):
        folder = tmp_path / str(rows)
        folder.mkdir()
        spec = make_spec(folder, [write_parquet(folder / "in.parquet", tabular_table(rows), 1000)],
                         tabular_model(tabular_artifact), batch_size=1024)
        completed = run_worker(save_spec(spec, folder))
        assert completed.returncode == EXIT_OK, completed.stdout
        peaks[rows] = read_result(spec).peak_rss_bytes
    ratio = peaks[100_000] / peaks[10_000]
    print(f"peak rss: 10k rows {peaks[10_000] / 2**20:.0f} MiB, 100k rows {peaks[100_000] / 2**20:.0f} MiB, "
          f"ratio {ratio:.3f}")
    assert ratio < 1.3
    assert math.isfinite(ratio)


@pytest.mark.parametrize("arrow_type", [pa.float64(), pa.float32()])
@pytest.mark.parametrize("values,start,length", [
    ([1.5, None, -2.0, None, 4.0], 0, 5),
    ([float(i) if i % 3 else None for i in range(40)], 7, 20),  # a slice: offset inside the validity byte
    ([0.5, 1.5, float("inf"), float("nan")], 1, 3),  # no nulls: inf and NaN pass through
    ([None, None, None], 0, 3),
])
def test_feature_columns_read_from_arrow_buffers_turn_nulls_into_nan(values, start, length, arrow_type):
    from nightshard_worker.handlers.tabular import _values_with_nan_for_null

    chunk = pa.array(values, arrow_type).slice(start, length)
    expected = [math.nan if value is None else value for value in chunk.to_pylist()]
    np.testing.assert_array_equal(_values_with_nan_for_null(chunk), np.array(expected, dtype=np.float64))
