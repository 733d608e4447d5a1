"""The Parquet floor: the shard through pyarrow with no model, and the ratios it is reported as."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from nightshard_dev.demo import RISK_FEATURES

from bench import parquet_floor, run, workloads


def test_floor_reads_the_shard_and_writes_one_score_a_row(tmp_path: Path) -> None:
    workload = workloads.write_tabular(tmp_path, 25_000, tmp_path / "unused-model.pt")
    seconds = parquet_floor.time_parquet_in_and_out(workload, list(RISK_FEATURES), tmp_path / "floor")
    assert seconds > 0
    written = pq.read_table(tmp_path / "floor" / "floor.parquet")
    assert written.column_names == [workloads.ID_COLUMN, "score"]
    assert written.column(workloads.ID_COLUMN).to_pylist() == list(range(25_000))


def test_floor_ratios_bound_the_worker_and_place_it() -> None:
    report = {"workload": "tabular", "parquet_floor": {"rows_per_second": 4e6, "floor_of_ceiling": 0.4,
                                                       "worker_of_floor": 0.25}}
    lines = run.parquet_floor_lines(report)
    assert "4,000,000" in lines[0]
    assert "0.40  (worker / ceiling can reach 0.40 with stages overlapped on spare cores, 0.29 where" in lines[1]
    assert "0.25" in lines[2]


def test_floor_measure_leaves_a_ratio_out_when_its_variant_was_not_run(tmp_path: Path) -> None:
    workload = workloads.write_tabular(tmp_path, 5_000, tmp_path / "unused-model.pt")
    measured = parquet_floor.measure(workload, list(RISK_FEATURES), tmp_path / "floor", 1,
                                     {"worker": {"steady": 1000.0}})
    assert measured["floor_of_ceiling"] is None
    assert measured["worker_of_floor"] == pytest.approx(1000.0 / measured["rows_per_second"], rel=1e-3)
    assert run.parquet_floor_lines({"workload": "tabular", "parquet_floor": measured})[1].startswith("INFO")


def test_a_floor_above_the_ceiling_bounds_only_where_stages_share_cores() -> None:
    report = {"workload": "tabular_wide", "parquet_floor": {"rows_per_second": 9e6, "floor_of_ceiling": 3.0,
                                                            "worker_of_floor": 0.03}}
    assert "can reach 1.00 with stages overlapped on spare cores, 0.75 where they share" in \
        run.parquet_floor_lines(report)[1]
