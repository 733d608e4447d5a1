"""Planner: shards are balanced by rows, cut on row-group boundaries, deterministic, stable ids."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshard.planning.sharding import (
    FileFooter,
    PlanError,
    check_schema,
    cut_shards,
    read_footers,
    shard_id,
)


def footer(path: str, *row_groups: int, columns: dict[str, str] | None = None) -> FileFooter:
    return FileFooter(path=path, size_bytes=1, row_group_rows=tuple(row_groups), columns=columns or {"id": "int64"})


@pytest.mark.parametrize(
    ("row_groups", "target", "expected_rows"),
    [
        ([[100, 100], [100, 100]], 200, [200, 200]),
        ([[100, 100], [100, 100]], 1000, [400]),
        ([[100, 100], [100, 100]], 1, [100, 100, 100, 100]),  # never below one row group
        ([[300, 10, 10, 10], [10, 10, 50]], 200, [300, 100]),  # uneven groups: closest boundary
        ([[50] * 10], 200, [150, 200, 150]),  # 500 rows / 3 shards ~ 167 each
        ([[0, 100], [0]], 100, [100]),  # empty row groups and files carry no work
    ],
)
def test_cut_shards_balances_rows_on_row_group_boundaries(row_groups, target, expected_rows):
    footers = [footer(f"/p/part-{i}.parquet", *groups) for i, groups in enumerate(row_groups)]
    shards = cut_shards(footers, target)
    assert [s.rows for s in shards] == expected_rows
    covered = [(s.path, g) for shard in shards for s in shard.slices for g in s.row_groups]
    expected = [(f.path, g) for f in footers for g, rows in enumerate(f.row_group_rows) if rows]
    assert covered == expected  # every non-empty row group exactly once, in file order


def test_cut_shards_is_independent_of_listing_order():
    footers = [footer("/p/b.parquet", 10, 10), footer("/p/a.parquet", 10)]
    assert cut_shards(footers, 15) == cut_shards(list(reversed(footers)), 15)


def test_cut_shards_of_an_empty_partition_is_empty():
    assert cut_shards([footer("/p/a.parquet", 0)], 10) == []


def test_shard_id_is_stable_and_depends_on_content():
    shards = cut_shards([footer("/data/ds=1/a.parquet", 10, 10)], 10)
    first = shard_id(shards[0], pipeline="p", ds="2026-11-22", model_version="v1", partition_uri="/data/ds=1")
    again = shard_id(shards[0], pipeline="p", ds="2026-11-22", model_version="v1", partition_uri="/data/ds=1")
    other_version = shard_id(shards[0], pipeline="p", ds="2026-11-22", model_version="v2", partition_uri="/data/ds=1")
    assert first == again
    assert first != other_version
    assert first.startswith("00000-")


def test_check_schema_fails_the_plan_naming_the_first_file_that_does_not_fit_and_the_fix():
    # What fits is input_requirements.schema_problem's rule (tests/worker/test_input_requirements.py).
    footers = [footer("/p/a.parquet", 10, columns={"extra": "string", "x": "float", "id": "int64"}),
               footer("/p/b.parquet", 10, columns={"id": "int64", "x": "string"})]
    with pytest.raises(PlanError, match=r"^/p/b.parquet: column 'x' has type string, .* Fix the upstream table or the pipeline config$"):
        check_schema(footers, {"x": "numeric"}, "id")


def test_read_footers_reads_row_groups_and_skips_hidden_files(tmp_path):
    table = pa.table({"id": list(range(25)), "x": [1.0] * 25})
    pq.write_table(table, tmp_path / "part-0.parquet", row_group_size=10)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-0.parquet.crc").write_text("")
    [only] = read_footers(str(tmp_path))
    assert only.row_group_rows == (10, 10, 5)
    assert only.columns == {"id": "int64", "x": "double"}


def test_read_footers_reports_a_truncated_file(tmp_path):
    pq.write_table(pa.table({"id": list(range(100))}), tmp_path / "part-0.parquet")
    data = (tmp_path / "part-0.parquet").read_bytes()
    (tmp_path / "part-0.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(PlanError, match=r"part-0.parquet: cannot read the Parquet footer .* truncated"):
        read_footers(str(tmp_path))


def test_read_footers_reads_a_footer_longer_than_one_tail_read(tmp_path, monkeypatch):
    from nightshard.planning import sharding

    monkeypatch.setattr(sharding, "FOOTER_TAIL_BYTES", 64)  # every footer needs the second read
    pq.write_table(pa.table({"id": list(range(30)), "x": [1.0] * 30}), tmp_path / "part-0.parquet", row_group_size=7)
    [only] = read_footers(str(tmp_path))
    assert only.row_group_rows == (7, 7, 7, 7, 2)
    assert only.size_bytes == (tmp_path / "part-0.parquet").stat().st_size


def test_read_footers_keeps_file_order_with_many_in_flight_and_shares_one_schema(tmp_path):
    for index in range(40):
        pq.write_table(pa.table({"id": list(range(index + 1))}), tmp_path / f"part-{index:03d}.parquet")
    footers = read_footers(str(tmp_path), concurrency=8)
    assert [f.rows for f in footers] == list(range(1, 41))
    assert len({id(f.columns) for f in footers}) == 1  # memory grows with files, not with schemas per file
